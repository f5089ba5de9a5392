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

/* ------------------------------------------------------------------ small batches */

/* The same walk for NB samples at once (X holds them as rows of ldx floats): each vector of W is
 * loaded once and used NB times, so 2-4 samples cost about one pass over W where the packed GEMM
 * kernel, whose tile is 16 batch columns wide, does the work of 16. R rows side by side, R x NB
 * accumulators within the 32 AVX-512 registers (16-24; more rows, more streams in flight). At
 * 8 samples the two or three rows that fit left too few streams: 1024-4096-4096-1024 ran at
 * 724-1043 samples/s against the packed kernel's 1214-1355 (docs/PERF.md), so it stops at 4. */
#define DEFINE_ROWS_NB(NB, R)                                                                  \
    static void rows_nb_##NB(const float *restrict w, size_t ld, int nr, int n_in,              \
                             const float *restrict X, size_t ldx, float *restrict out)          \
    {                                                                                          \
        const int kv = n_in / VW * VW, tail = n_in - kv;                                       \
        if (nr == R) {                                                                         \
            vf acc[R][NB];                                                                     \
            for (int r = 0; r < R; r++)                                                        \
                for (int j = 0; j < NB; j++)                                                   \
                    acc[r][j] = vsplat(0.0f);                                                  \
            for (int k = 0; k < kv; k += VW) {                                                 \
                vf xv[NB];                                                                     \
                for (int j = 0; j < NB; j++)                                                   \
                    xv[j] = vload(X + j * ldx + k);                                            \
                for (int r = 0; r < R; r++) {                                                  \
                    const vf wv = vload(w + r * ld + k);                                       \
                    for (int j = 0; j < NB; j++)                                               \
                        acc[r][j] = vfma(wv, xv[j], acc[r][j]);                                \
                }                                                                              \
            }                                                                                  \
            if (tail)                                                                          \
                for (int r = 0; r < R; r++) {                                                  \
                    const vf wv = vload_part(w + r * ld + kv, tail);                           \
                    for (int j = 0; j < NB; j++)                                               \
                        acc[r][j] = vfma(wv, vload_part(X + j * ldx + kv, tail), acc[r][j]);   \
                }                                                                              \
            for (int r = 0; r < R; r++)                                                        \
                for (int j = 0; j < NB; j++)                                                   \
                    out[r * NB + j] = hsum(acc[r][j]);                                         \
            return;                                                                            \
        }                                                                                      \
        for (int r = 0; r < nr; r++) { /* the last rows, one at a time */                      \
            vf acc[NB];                                                                        \
            for (int j = 0; j < NB; j++)                                                       \
                acc[j] = vsplat(0.0f);                                                         \
            for (int k = 0; k < kv; k += VW) {                                                 \
                const vf wv = vload(w + r * ld + k);                                           \
                for (int j = 0; j < NB; j++)                                                   \
                    acc[j] = vfma(wv, vload(X + j * ldx + k), acc[j]);                         \
            }                                                                                  \
            if (tail) {                                                                        \
                const vf wv = vload_part(w + r * ld + kv, tail);                               \
                for (int j = 0; j < NB; j++)                                                   \
                    acc[j] = vfma(wv, vload_part(X + j * ldx + kv, tail), acc[j]);             \
            }                                                                                  \
            for (int j = 0; j < NB; j++)                                                       \
                out[r * NB + j] = hsum(acc[j]);                                                \
        }                                                                                      \
    }
DEFINE_ROWS_NB(2, 8)
DEFINE_ROWS_NB(3, 5)
DEFINE_ROWS_NB(4, 6)

size_t ecp_gemv_ldx(int n_in) { return ((size_t)n_in + VW - 1) / VW * VW + 16; }

void ecp_gemv_rows_batch(const float *W, int n_out, int n_in, const float *XT, int B,
                         const float *b, ecp_act act, const float *act_p, float *YT, float *X)
{
    static const int rows_of[ECP_GEMV_MAX_BATCH + 1] = {0, 0, 8, 5, 6};
    if (B < 2) { /* one sample: both layouts are the same vector */
        if (B == 1)
            ecp_gemv_rows(W, n_out, n_in, XT, b, act, act_p, YT);
        return;
    }
    const int R = rows_of[B], relu = act == ECP_ACT_RELU;
    /* the batch as rows, each sample's inputs contiguous; the row stride is padded by one line
     * past whole vectors so that the rows do not all fall in the same L1 set (4096 inputs: a
     * 16 KB stride, and with R rows of W on the same stride the set overflows) */
    const size_t ldx = ecp_gemv_ldx(n_in);
    for (int i = 0; i < n_in; i++)
        for (int j = 0; j < B; j++)
            X[(size_t)j * ldx + i] = XT[(size_t)i * B + j];
    for (int o = 0; o < n_out; o += R) {
        const int nr = n_out - o < R ? n_out - o : R;
        const float *w = W + (size_t)o * n_in;
        float s[24]; /* R x B <= 24 */
        switch (B) {
        case 2: rows_nb_2(w, (size_t)n_in, nr, n_in, X, ldx, s); break;
        case 3: rows_nb_3(w, (size_t)n_in, nr, n_in, X, ldx, s); break;
        default: rows_nb_4(w, (size_t)n_in, nr, n_in, X, ldx, s); break;
        }
        for (int r = 0; r < nr; r++)
            for (int j = 0; j < B; j++) {
                const float t = b[o + r] + s[r * B + j];
                YT[(size_t)(o + r) * B + j] = relu ? (t > 0.0f ? t : 0.0f) : t;
            }
    }
    if (act != ECP_ACT_RELU && act != ECP_ACT_IDENTITY)
        ecp_act_forward_p(act, act_p, YT, YT, (size_t)n_out * B);
}
