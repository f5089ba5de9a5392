/* Kernels for the N:M layout (nm.h). Batch 1 gathers x at group base + offset with N
 * independent partial sums per row (C forbids reassociating a float sum, so one accumulator
 * would be a serial add chain); a batch keeps a tile of TB batch columns of one output row in
 * registers, as the CSR SpMM does, and reads one value and one byte per kept weight. */
#include "nm.h"
#include <math.h>

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

#define TB 32 /* batch columns per register tile */

void ecp_nmmat_release(ecp_nmmat *a)
{
    free(a->val);
    free(a->idx);
    memset(a, 0, sizeof *a);
}

ecp_status ecp_nmmat_build(ecp_nmmat *a, const float *W, int n_out, int n_in, int n, int m,
                           ecp_error *err)
{
    memset(a, 0, sizeof *a);
    if (n < 1 || m < 2 || n >= m || m > ECP_PATTERN_MAX_M)
        return ecp_fail(err, ECP_ERR_ARG, "pattern %d:%d: expected 1 <= N < M <= %d", n, m,
                        ECP_PATTERN_MAX_M);
    int G = (n_in + m - 1) / m;
    size_t slots = (size_t)n_out * G * n;
    a->val = ecp_zalloc(slots, sizeof *a->val, "N:M layout", err);
    a->idx = ecp_zalloc(slots, 1, "N:M layout", err);
    if (!a->val || !a->idx) {
        ecp_nmmat_release(a);
        return ECP_ERR_MEMORY;
    }
    a->n_out = n_out;
    a->n_in = n_in;
    a->n = n;
    a->m = m;
    a->groups = G;
    for (int i = 0; i < n_out; i++)
        for (int g = 0; g < G; g++) {
            size_t at = ((size_t)i * G + g) * n;
            int t = 0, end = (g + 1) * m < n_in ? (g + 1) * m : n_in;
            for (int j = g * m; j < end; j++) {
                float w = W[(size_t)i * n_in + j];
                if (w == 0.0f)
                    continue;
                if (t == n) {
                    ecp_nmmat_release(a);
                    return ecp_fail(err, ECP_ERR_FORMAT, "pattern %d:%d does not hold: row %d "
                                    "inputs %d..%d keep more than %d", n, m, i, g * m, end - 1, n);
                }
                a->val[at + t] = w;
                a->idx[at + t] = (uint8_t)(j - g * m);
                t++;
            }
            /* padding slots: value 0 at offset 0, inside the group (also for a short last one) */
        }
    return ECP_OK;
}

void ecp_nm_gemv(const ecp_nmmat *a, const float *x, const float *b, float *y)
{
    int G = a->groups, n = a->n, m = a->m;
    for (int i = 0; i < a->n_out; i++) {
        const float *v = a->val + (size_t)i * G * n;
        const uint8_t *o = a->idx + (size_t)i * G * n;
        float s[4] = {0, 0, 0, 0};
        if (n == 2) {
            for (int g = 0; g < G; g++) {
                const float *xg = x + (size_t)g * m;
                s[g & 1] = MADD(v[2 * g], xg[o[2 * g]], s[g & 1]);
                s[2 + (g & 1)] = MADD(v[2 * g + 1], xg[o[2 * g + 1]], s[2 + (g & 1)]);
            }
        } else {
            for (int g = 0; g < G; g++) {
                const float *xg = x + (size_t)g * m;
                for (int t = 0; t < n; t++)
                    s[t & 3] = MADD(v[g * n + t], xg[o[g * n + t]], s[t & 3]);
            }
        }
        y[i] = (b ? b[i] : 0.0f) + ((s[0] + s[1]) + (s[2] + s[3]));
    }
}

void ecp_nm_gemm(const ecp_nmmat *a, const float *XT, int B, const float *b, float *YT)
{
    int G = a->groups, n = a->n, m = a->m;
    size_t per_row = (size_t)G * n;
    for (int i = 0; i < a->n_out; i++) {
        const float *v = a->val + i * per_row;
        const uint8_t *o = a->idx + i * per_row;
        float bi = b ? b[i] : 0.0f;
        int c0 = 0;
        for (; c0 + TB <= B; c0 += TB) {
            float acc[TB];
            for (int c = 0; c < TB; c++)
                acc[c] = bi;
            for (int g = 0; g < G; g++) {
                const float *xg = XT + (size_t)g * m * B + c0;
                for (int t = 0; t < n; t++) {
                    const float *xr = xg + (size_t)o[g * n + t] * B;
                    float w = v[g * n + t];
                    for (int c = 0; c < TB; c++)
                        acc[c] = MADD(w, xr[c], acc[c]);
                }
            }
            memcpy(YT + (size_t)i * B + c0, acc, sizeof acc);
        }
        for (int c = c0; c < B; c++) { /* the ragged end of the batch */
            float s = bi;
            for (int g = 0; g < G; g++)
                for (int t = 0; t < n; t++)
                    s = MADD(v[g * n + t], XT[((size_t)g * m + o[g * n + t]) * B + c], s);
            YT[(size_t)i * B + c] = s;
        }
    }
}
