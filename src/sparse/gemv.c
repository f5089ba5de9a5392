/* The engine's dense layer at batch 1: y = act(W x + b) on the row-major weights.
 *
 * Why its own kernel: Debian's OpenBLAS runs its Haswell (AVX2) sgemv on this Zen 5 core, and
 * beyond the caches batch 1 is bound by how fast W streams in from memory. One core reaches
 * more of the bandwidth with several independent streams in flight than with one: a packed,
 * single-stream copy of W (the batch > 1 kernel's order) ran at ~21 GB/s where OpenBLAS, four
 * rows at a time, ran at ~27 (docs/PERF.md). So GR rows are read side by side, one vector of
 * each per step against one vector of x (x stays in L1), GR accumulator chains; each row's sum
 * is folded once at its end, and bias and ReLU are applied as it is stored. */
#include "sparse.h"

#ifndef GR
#define GR 8
#endif

static float hsum(vf v)
{
    float s = 0;
    for (int i = 0; i < VW; i++)
        s += v[i];
    return s;
}

/* y[0..nr) = sum_k W[r][k] x[k] for nr <= GR rows starting at w (row stride ld). */
static void rows_dot(const float *restrict w, size_t ld, int nr, int n_in,
                     const float *restrict x, float *restrict out)
{
    vf acc[GR];
    for (int r = 0; r < GR; r++)
        acc[r] = vsplat(0.0f);
    const int kv = n_in / VW * VW, tail = n_in - kv;
    if (nr == GR) {
        for (int k = 0; k < kv; k += VW) {
            const vf xv = vload(x + k);
            for (int r = 0; r < GR; r++)
                acc[r] = vfma(vload(w + r * ld + k), xv, acc[r]);
        }
        if (tail) {
            const vf xv = vload_part(x + kv, tail);
            for (int r = 0; r < GR; r++)
                acc[r] = vfma(vload_part(w + r * ld + kv, tail), xv, acc[r]);
        }
    } else
        for (int r = 0; r < nr; r++) {
            for (int k = 0; k < kv; k += VW)
                acc[r] = vfma(vload(w + r * ld + k), vload(x + k), acc[r]);
            if (tail)
                acc[r] = vfma(vload_part(w + r * ld + kv, tail), vload_part(x + kv, tail), acc[r]);
        }
    for (int r = 0; r < nr; r++)
        out[r] = hsum(acc[r]);
}

void ecp_gemv_rows(const float *W, int n_out, int n_in, const float *x, const float *b,
                   ecp_act act, const float *act_p, float *y)
{
    const int relu = act == ECP_ACT_RELU;
    for (int o = 0; o < n_out; o += GR) {
        const int nr = n_out - o < GR ? n_out - o : GR;
        float s[GR];
        rows_dot(W + (size_t)o * n_in, (size_t)n_in, nr, n_in, x, s);
        for (int r = 0; r < nr; r++) {
            const float t = b[o + r] + s[r];
            y[o + r] = relu ? (t > 0.0f ? t : 0.0f) : t;
        }
    }
    if (act != ECP_ACT_RELU && act != ECP_ACT_IDENTITY)
        ecp_act_forward_p(act, act_p, y, y, (size_t)n_out);
}
