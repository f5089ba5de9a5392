/* Kernels for the N:M layout (nm.h). Batch 1 gathers x at group base + offset with N
 * independent partial sums per row (C forbids reassociating a float sum, so one accumulator
 * would be a serial add chain); a batch keeps a tile of TB batch columns of one output row in
 * registers, as the CSR SpMM does, and reads one value and one byte per kept weight. */
#include "nm.h"
#include "../core/simd.h"

#define TB 32    /* batch columns per register tile */
#define LANES 16 /* batch 1: independent partial sums per row (a vector of gathers) */

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
            size_t at = (size_t)i * G * n + g; /* slot t of group g: at + t * G */
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
                a->val[at + (size_t)t * G] = w;
                a->idx[at + (size_t)t * G] = (uint8_t)(j - g * m);
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
        float acc[LANES] = {0};
        float tail = 0;
        for (int t = 0; t < n; t++) {
            const float *v = a->val + ((size_t)i * n + t) * G;
            const uint8_t *o = a->idx + ((size_t)i * n + t) * G;
            int g0 = 0;
#if defined(__AVX512F__)
            /* gcc does not turn the byte offsets into a gather by itself: 16 groups at a time,
             * column = group * m + offset, one vgatherdps and one FMA */
            const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                   14, 15);
            __m512 va = _mm512_setzero_ps();
            for (; g0 + LANES <= G; g0 += LANES) {
                __m512i col = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(g0), iota),
                                                 _mm512_set1_epi32(m));
                col = _mm512_add_epi32(col, _mm512_cvtepu8_epi32(
                                                _mm_loadu_si128((const __m128i *)(o + g0))));
                va = _mm512_fmadd_ps(_mm512_loadu_ps(v + g0), _mm512_i32gather_ps(col, x, 4), va);
            }
            tail += _mm512_reduce_add_ps(va);
#else
            for (; g0 + LANES <= G; g0 += LANES)
                for (int k = 0; k < LANES; k++)
                    acc[k] = MADD(v[g0 + k], x[(g0 + k) * m + o[g0 + k]], acc[k]);
#endif
            for (int g = g0; g < G; g++)
                tail = MADD(v[g], x[g * m + o[g]], tail);
        }
        float s = tail;
        for (int k = 0; k < LANES; k++)
            s += acc[k];
        y[i] = (b ? b[i] : 0.0f) + s;
    }
}

void ecp_nm_gemm(const ecp_nmmat *a, const float *XT, int B, size_t ld, const float *b,
                 float *YT)
{
    int G = a->groups, n = a->n, m = a->m;
    /* batch tiles outside, rows inside: the n_in x TB tile of XT stays in cache for every row */
    int c0 = 0;
    for (; c0 + TB <= B; c0 += TB)
        for (int i = 0; i < a->n_out; i++) {
            const float *v = a->val + (size_t)i * n * G;
            const uint8_t *o = a->idx + (size_t)i * n * G;
            float bi = b ? b[i] : 0.0f;
#if defined(__AVX512F__)
            /* the tile in two registers: per kept weight one broadcast, two loads, two FMAs
             * (a float array here went through memory on every step: 2.5x slower) */
            __m512 acc0 = _mm512_set1_ps(bi), acc1 = acc0;
            for (int g = 0; g < G; g++) {
                const float *xg = XT + (size_t)g * m * ld + c0;
                for (int t = 0; t < n; t++) {
                    const float *xr = xg + (size_t)o[t * G + g] * ld;
                    __m512 w = _mm512_set1_ps(v[t * G + g]);
                    acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xr), acc0);
                    acc1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(xr + 16), acc1);
                }
            }
            _mm512_storeu_ps(YT + (size_t)i * ld + c0, acc0);
            _mm512_storeu_ps(YT + (size_t)i * ld + c0 + 16, acc1);
#else
            float acc[TB];
            for (int c = 0; c < TB; c++)
                acc[c] = bi;
            for (int g = 0; g < G; g++) {
                const float *xg = XT + (size_t)g * m * ld + c0;
                for (int t = 0; t < n; t++) {
                    const float *xr = xg + (size_t)o[t * G + g] * ld;
                    float w = v[t * G + g];
                    for (int c = 0; c < TB; c++)
                        acc[c] = MADD(w, xr[c], acc[c]);
                }
            }
            memcpy(YT + (size_t)i * ld + c0, acc, sizeof acc);
#endif
        }
    for (int i = 0; i < a->n_out; i++) {
        const float *v = a->val + (size_t)i * n * G;
        const uint8_t *o = a->idx + (size_t)i * n * G;
        float bi = b ? b[i] : 0.0f;
        for (int c = c0; c < B; c++) { /* the ragged end of the batch */
            float s = bi;
            for (int g = 0; g < G; g++)
                for (int t = 0; t < n; t++)
                    s = MADD(v[t * G + g], XT[((size_t)g * m + o[t * G + g]) * ld + c], s);
            YT[(size_t)i * ld + c] = s;
        }
    }
}
