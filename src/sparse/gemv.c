/* The engine's dense layer at batch 1: y = act(W x + b) on the row-major weights.
 *
 * Why its own kernel: Debian's OpenBLAS runs its Haswell (AVX2) sgemv on this Zen 5 core, and
 * beyond the caches batch 1 is bound by how fast W streams in from memory. One core reaches
 * more of the bandwidth with several independent streams in flight than with one: a packed,
 * single-stream copy of W (the batch > 1 kernel's order) was slower than OpenBLAS reading four
 * rows at a time (docs/PERF.md). So GR rows are read side by side, one vector of
 * each per step against one vector of x (x stays in L1), GR accumulator chains; each row's sum
 * is folded once at its end, and bias and ReLU are applied as it is stored. */
#include "sparse.h"

#ifndef GR
#define GR 8
#endif

/* The sum of a vector's lanes by a tree of shuffles: a loop over the lanes cost a large part of
 * a small layer's batch-1 time, and most of batch 4's (docs/PERF.md). */
static float hsum(vf v)
{
#if VW == 16
    return _mm512_reduce_add_ps((__m512)v);
#elif VW == 8
    __m128 h = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
#else
    float s = 0;
    for (int i = 0; i < VW; i++)
        s += v[i];
    return s;
#endif
}

/* out[r] = sum_k W[r][k] x[k] for GR rows starting at w (row stride ld). The accumulators are
 * only ever indexed by constants, so they stay in registers (a loop over a run-time row count
 * would put them on the stack). */
static void rows_dot(const float *restrict w, size_t ld, int n_in, const float *restrict x,
                     float *restrict out)
{
    vf acc[GR];
    for (int r = 0; r < GR; r++)
        acc[r] = vsplat(0.0f);
    const int kv = n_in / VW * VW, tail = n_in - kv;
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
    for (int r = 0; r < GR; r++)
        out[r] = hsum(acc[r]);
}

/* One row (the last n_out % GR rows). */
static float row_dot(const float *restrict w, int n_in, const float *restrict x)
{
    vf acc = vsplat(0.0f);
    const int kv = n_in / VW * VW, tail = n_in - kv;
    for (int k = 0; k < kv; k += VW)
        acc = vfma(vload(w + k), vload(x + k), acc);
    if (tail)
        acc = vfma(vload_part(w + kv, tail), vload_part(x + kv, tail), acc);
    return hsum(acc);
}

void ecp_gemv_rows(const float *W, int n_out, int n_in, const float *x, const float *b,
                   ecp_act act, const float *act_p, float *y)
{
    const int relu = act == ECP_ACT_RELU;
    for (int o = 0; o < n_out; o += GR) {
        const int nr = n_out - o < GR ? n_out - o : GR;
        float s[GR];
        if (nr == GR)
            rows_dot(W + (size_t)o * n_in, (size_t)n_in, n_in, x, s);
        else
            for (int r = 0; r < nr; r++)
                s[r] = row_dot(W + (size_t)(o + r) * n_in, n_in, x);
        for (int r = 0; r < nr; r++) {
            const float t = b[o + r] + s[r];
            y[o + r] = relu ? (t > 0.0f ? t : 0.0f) : t;
        }
    }
    if (act != ECP_ACT_RELU && act != ECP_ACT_IDENTITY)
        ecp_act_forward_p(act, act_p, y, y, (size_t)n_out);
}
