/* The engine's dense layer at batch > 1: YT = act(W XT + b) on weights packed once per model,
 * with the bias and ReLU applied in the register tile before it is stored (no second pass over
 * YT), in the engine's feature-major layout (XT is n_in x B, the batch contiguous).
 *
 * Why not OpenBLAS here: Debian's OpenBLAS 0.3.21 does not know Zen 5 and runs its Haswell
 * (AVX2) kernels, ~99 GFLOP/s on one core of this machine, where ONNX Runtime's MLAS uses
 * AVX-512; and OpenBLAS has no packed-operand API, so every call re-packs W. This kernel is the
 * textbook one (Goto's loop order): W in row blocks of MR rows, k-major (a broadcast per row
 * and step), XT packed per call into panels of NR batch columns and KC steps that stay in L2,
 * an MR x NR tile of accumulators in registers. Measured figures are in docs/PERF.md.
 * Exact zeros are not skipped: this is the reference-speed dense path. */
#include "sparse.h"

/* Tile: MR rows of W x NV vectors of batch columns. AVX-512: 12 x 2 zmm accumulators of its
 * 32 registers; AVX2 has 16 registers, so 6 x 2. */
#if VW == 16
#define MR 12
#else
#define MR 6
#endif
#define KC 256 /* steps per packed block: 256 x 32 columns x 4 B = 32 KB of XT per panel */
/* Steps ahead (x MR floats: 4.5 KB) the kernels prefetch the weights they stream, non-temporal
 * (each is read once per pass). The hardware prefetchers alone fell behind wherever the
 * weights come from memory: in one process, alternating calls, 4096 x 4096 ran at 120 GFLOP/s
 * at batches 32 and 64 without it and 161-180 with it, 158 -> 172 at batch 256, 300 x 784 at
 * batch 256 194 -> 210; 24, 48, 96 and 192 steps ahead differ only at batch 16 (133, 139, 152,
 * 158). */
/* Packed blocks per pass over the output at batches of two panels or more: each pass loads and
 * stores every C tile once, and the micro-kernel runs on across the blocks' weights in
 * registers. Same-process A/B, batch 256: 4096 x 1024 188 -> 191, 300 x 784 199 -> 204 GFLOP/s
 * best, means up 2-5 %; 4 blocks lost at batch 64. */
#define KS 2
#ifndef AHEAD
#define AHEAD 96
#endif

/* Offset of row block rb of the block of kc steps starting at k0. */
static size_t wpack_at(int n_rb, int k0, int kc, int rb)
{
    return (size_t)k0 * n_rb * MR + (size_t)rb * kc * MR;
}

ecp_status ecp_wpack_build(ecp_wpack *p, const float *W, int n_out, int n_in, ecp_error *err)
{
    memset(p, 0, sizeof *p);
    p->n_out = n_out;
    p->n_in = n_in;
    int n_rb = (n_out + MR - 1) / MR;
    size_t n = (size_t)n_rb * MR * (size_t)n_in;
    p->w = ecp_alloc_aligned(n, err);
    if (!p->w)
        return ECP_ERR_MEMORY;
    /* In the order ecp_gemm_packed reads them: blocks of KC steps, in each the row blocks, in
     * each a[k * MR + i] = W[rb * MR + i][k0 + k] (zero past n_out). One call reads the whole
     * pack as one sequential stream: at batch 16 on 4096 x 4096, where the product is bound by
     * reading W from memory, row-block-major packing (12 KB pieces 196 KB apart) reached a
     * third of the bandwidth of this order. */
    for (int k0 = 0; k0 < n_in; k0 += KC) {
        const int kc = n_in - k0 < KC ? n_in - k0 : KC;
        for (int rb = 0; rb < n_rb; rb++)
            for (int k = 0; k < kc; k++)
                for (int i = 0; i < MR; i++) {
                    int o = rb * MR + i;
                    p->w[wpack_at(n_rb, k0, kc, rb) + (size_t)k * MR + i] =
                        o < n_out ? W[(size_t)o * n_in + k0 + k] : 0;
                }
    }
    return ECP_OK;
}

void ecp_wpack_release(ecp_wpack *p)
{
    free(p->w);
    p->w = NULL;
}

size_t ecp_gemm_work_floats(int max_batch)
{
    size_t nr = 2 * VW;
    return (size_t)KC * KS * (((size_t)max_batch + nr - 1) / nr * nr);
}

/* acc[i][v] = sum over the steps of the nseg segments of as[s][k * MR + i] *
 * bp[k * NV * VW + v * VW + lane], bp running on across the segments (kcs[s] steps each). */
#define DEFINE_MICRO(NV)                                                                       \
    static void micro_##NV(int nseg, const int *kcs, const float *const *as,                   \
                           const float *restrict bp, vf acc[MR][NV])                           \
    {                                                                                          \
        vf c[MR][NV];                                                                          \
        for (int i = 0; i < MR; i++)                                                           \
            for (int v = 0; v < NV; v++)                                                       \
                c[i][v] = vsplat(0.0f);                                                        \
        for (int s = 0; s < nseg; s++, bp += (size_t)kcs[s - 1] * NV * VW) {                   \
        const int kc = kcs[s];                                                                 \
        const float *restrict a = as[s];                                                       \
        for (int k = 0; k < kc; k++) {                                                         \
            vf b[NV];                                                                          \
            __builtin_prefetch(a + (size_t)(k + AHEAD) * MR, 0, 0);                            \
            for (int v = 0; v < NV; v++)                                                       \
                b[v] = vload(bp + (size_t)k * NV * VW + v * VW);                               \
            for (int i = 0; i < MR; i++) {                                                     \
                const vf ai = vsplat(a[(size_t)k * MR + i]);                                   \
                for (int v = 0; v < NV; v++)                                                   \
                    c[i][v] = vfma(ai, b[v], c[i][v]);                                         \
            }                                                                                  \
        }                                                                                      \
        }                                                                                      \
        memcpy(acc, c, sizeof c);                                                              \
    }
DEFINE_MICRO(1)
DEFINE_MICRO(2)

/* Stores a tile of `rows` x `cols` (rows <= MR, cols <= nv * VW) at C (row stride ldc): on the
 * first block of steps C = acc + b, after it C += acc; on the last, ReLU when asked. */
static void store_tile(int nv, vf acc[][2], int rows, int cols, float *C, size_t ldc,
                       const float *b, int first, int last, int relu)
{
    for (int i = 0; i < rows; i++) {
        float *c = C + (size_t)i * ldc, tmp[2 * VW];
        const int full = cols == nv * VW;
        if (!full && !first)
            memcpy(tmp, c, (size_t)cols * sizeof *tmp);
        for (int v = 0; v < nv; v++) {
            float *dst = full ? c + v * VW : tmp + v * VW;
            vf r = acc[i][v] + (first ? vsplat(b[i]) : vload(dst));
            vstore(dst, last && relu ? vrelu(r) : r);
        }
        if (!full)
            memcpy(c, tmp, (size_t)cols * sizeof *tmp);
    }
}

/* bp[panel][k][NR] = X(k0 + k, panel * NR + j), zero past B, where X(k, j) is XT[k * ld + j]
 * (feature-major) or, when by_rows is set, X[j * ld + k] (the batch as it enters the engine,
 * sample-major: packing it is the transpose the engine would otherwise make in a pass of its
 * own, 11 % of a batch-1024 forward of 784-300-100-10 when the inputs come from beyond L2). */
static void pack_x(const float *X, int by_rows, int B, size_t ld, int k0, int kc, int nr, float *bp)
{
    const int n_p = (B + nr - 1) / nr;
    for (int p = 0; p < n_p; p++) {
        const int j0 = p * nr, w = B - j0 < nr ? B - j0 : nr;
        float *dst = bp + (size_t)p * kc * nr;
        if (by_rows)
            ecp_transpose(X + (size_t)j0 * ld + k0, w, kc, ld, dst, (size_t)nr, 0);
        for (int k = 0; k < kc; k++) {
            if (!by_rows)
                memcpy(dst + (size_t)k * nr, X + (size_t)(k0 + k) * ld + j0,
                       (size_t)w * sizeof *X);
            for (int j = w; j < nr; j++)
                dst[(size_t)k * nr + j] = 0.0f;
        }
    }
}

/* Both entry points: X as pack_x reads it (by_rows, ldx), YT feature-major with row stride ld. */
static void gemm_run(const ecp_wpack *p, const float *X, int by_rows, size_t ldx, int B, size_t ld,
                     const float *b, ecp_act act, const float *act_p, float *YT, float *work)
{
    const int K = p->n_in, N = p->n_out, n_rb = (N + MR - 1) / MR;
    const int nv = B <= VW ? 1 : 2, nr = nv * VW, n_p = (B + nr - 1) / nr;
    const int relu = act == ECP_ACT_RELU;
    if (K == 0)
        return;
    const int ks = n_p > 1 ? KS : 1;
    for (int k0 = 0; k0 < K; k0 += ks * KC) {
        int kcs[KS], nseg = 0, kc = 0;
        for (; nseg < ks && k0 + kc < K; nseg++) {
            kcs[nseg] = K - (k0 + kc) < KC ? K - (k0 + kc) : KC;
            kc += kcs[nseg];
        }
        const int first = k0 == 0, last = k0 + kc == K;
        pack_x(X, by_rows, B, ldx, k0, kc, nr, work);
        for (int rb = 0; rb < n_rb; rb++) {
            const float *as[KS];
            for (int s = 0, ks0 = k0; s < nseg; ks0 += kcs[s], s++)
                as[s] = p->w + wpack_at(n_rb, ks0, kcs[s], rb);
            const int r0 = rb * MR, rows = N - r0 < MR ? N - r0 : MR;
            for (int q = 0; q < n_p; q++) {
                vf acc[MR][2];
                const float *bp = work + (size_t)q * kc * nr;
                if (nv == 1) {
                    vf a1[MR][1];
                    micro_1(nseg, kcs, as, bp, a1);
                    for (int i = 0; i < MR; i++)
                        acc[i][0] = a1[i][0];
                } else
                    micro_2(nseg, kcs, as, bp, acc);
                const int j0 = q * nr, cols = B - j0 < nr ? B - j0 : nr;
                store_tile(nv, acc, rows, cols, YT + (size_t)r0 * ld + j0, ld, b + r0, first,
                           last, relu);
            }
        }
    }
    if (act != ECP_ACT_RELU && act != ECP_ACT_IDENTITY)
        for (int o = 0; o < N; o++)
            ecp_act_forward_p(act, act_p, YT + (size_t)o * ld, YT + (size_t)o * ld, (size_t)B);
}

void ecp_gemm_packed(const ecp_wpack *p, const float *XT, int B, size_t ld, const float *b,
                     ecp_act act, const float *act_p, float *YT, float *work)
{
    gemm_run(p, XT, 0, ld, B, ld, b, act, act_p, YT, work);
}

void ecp_gemm_packed_rows(const ecp_wpack *p, const float *X, int B, size_t ldx, size_t ld,
                          const float *b, ecp_act act, const float *act_p, float *YT,
                          float *work)
{
    gemm_run(p, X, 1, ldx, B, ld, b, act, act_p, YT, work);
}

/* ------------------------------------------------------------------ narrow batches */

/* Batches of 2 to ECP_GEMM_NARROW_MAX on the same packed weights, roles turned round: a row
 * tile's MR weights of one step fill the lanes of one vector (MR = 12 of 16), each sample's
 * input of that step is broadcast, and rt row tiles x B samples of accumulators stay in
 * registers over a block of steps (with AVX-512 4 tiles up to 6 samples, 2 up to 12: rt * B
 * >= 8 independent FMA chains for a 4-cycle latency at 2 per cycle, rt * B + rt + 1 <= 32
 * registers; NARROW_TILES). The batch-32 tile of the kernel above would do the work of 32
 * samples for B; the row kernel of gemv.c would reduce every dot product across lanes
 * (784-300-100-10's 300 x 784 at batch 4: 24 us there, 15 us here). Blocks of steps outside,
 * as above: the weights are then one sequential stream (a row tile's blocks lie 12 KB x tiles
 * apart), and every output gets the same sums in the same order as from ecp_gemm_packed at one
 * panel (batches up to 32). */
#if MR <= VW
#define RT 4
/* As AHEAD, for RT streams at once: 4096 x 4096 at batches 2 / 4 / 6 ran 3.5 / 4.1 / 4.7 ms
 * without prefetching, 2.5 / 2.8 / 2.9 ms at 48 steps ahead, 2.5 / 2.8 / 3.1 at 96, 3.0 / 3.5 /
 * 4.1 at 192 (alternating calls in one process). */
#define NARROW_AHEAD 48
static inline __attribute__((always_inline)) void narrow_tile(const float *a, size_t a_step,
                                                              const int rt, const float *x,
                                                              size_t ld, int kc, const int B,
                                                              vf res[RT][ECP_GEMM_NARROW_MAX])
{
    vf acc[RT][ECP_GEMM_NARROW_MAX];
#pragma GCC unroll 4
    for (int r = 0; r < rt; r++)
#pragma GCC unroll 12
        for (int j = 0; j < B; j++)
            acc[r][j] = vsplat(0.0f);
    for (int k = 0; k < kc; k++, x += ld) {
        vf w[RT];
#pragma GCC unroll 4
        for (int r = 0; r < rt; r++) {
            w[r] = vload_part(a + r * a_step + (size_t)k * MR, MR);
            __builtin_prefetch(a + r * a_step + (size_t)(k + NARROW_AHEAD * RT / rt) * MR, 0, 0);
        }
#pragma GCC unroll 12
        for (int j = 0; j < B; j++) {
            const vf xj = vsplat(x[j]);
#pragma GCC unroll 4
            for (int r = 0; r < rt; r++)
                acc[r][j] = vfma(w[r], xj, acc[r][j]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < rt; r++)
#pragma GCC unroll 12
        for (int j = 0; j < B; j++)
            res[r][j] = acc[r][j];
}

/* Row tiles per pass for B samples: 4, 2 or 1, as many as keep rt * B accumulators, rt weight
 * vectors and a broadcast within the vector registers (32 with AVX-512, 16 with AVX2; more
 * spill to the stack). A constant expression, so that each case below is compiled for it. */
#if VW == 16
#define NREG 32
#else
#define NREG 16
#endif
#define NARROW_TILES(B) (4 * (B) + 5 <= NREG ? 4 : 2 * (B) + 3 <= NREG ? 2 : 1)
static int narrow_rt(int B) { return NARROW_TILES(B); }

/* One call per constant B and tile count, so that each tile above is compiled for them. */
#define NARROW_CASE(NB)                                                                        \
    case NB:                                                                                   \
        if (rt == NARROW_TILES(NB))                                                            \
            narrow_tile(a, a_step, NARROW_TILES(NB), x, ld, kc, NB, res);                      \
        else                                                                                   \
            narrow_tile(a, a_step, 1, x, ld, kc, NB, res);                                     \
        break;
static void narrow_run(const float *a, size_t a_step, int rt, const float *x, size_t ld, int kc,
                       int B, vf res[RT][ECP_GEMM_NARROW_MAX])
{
    switch (B) {
        NARROW_CASE(2)
        NARROW_CASE(3)
        NARROW_CASE(4)
        NARROW_CASE(5)
        NARROW_CASE(6)
        NARROW_CASE(7)
        NARROW_CASE(8)
        NARROW_CASE(9)
        NARROW_CASE(10)
        NARROW_CASE(11)
    default:
        NARROW_CASE(12)
    }
}
#endif

int ecp_gemm_narrow_pays(int B, int in_cache)
{
#if MR <= VW
    if (B < 2 || B > ECP_GEMM_NARROW_MAX)
        return 0;
    /* In cache both kernels are bound by their FMAs: the narrow one wastes MR/VW of its lanes,
     * the wide one the columns of its tile past B, none when B fills it (AVX2 at batch 8: wide
     * 49 us against narrow 60 on 300 x 784). From memory the narrow kernel keeps up with the
     * weight stream only with 4 row tiles (4096 x 4096, AVX-512: batch 6 3.5 against the wide
     * 4.8 ms, batch 8 on 2 tiles 5.3 against 4.8; AVX2 at batch 4 on 2 tiles 4.5 against
     * 3.9 ms). */
    return in_cache ? B % VW != 0 : NARROW_TILES(B) == 4;
#else
    (void)B;
    (void)in_cache;
    return 0;
#endif
}

void ecp_gemm_narrow(const ecp_wpack *p, const float *XT, int B, size_t ld, const float *b,
                     ecp_act act, const float *act_p, float *YT, float *work)
{
#if MR <= VW
    const int K = p->n_in, N = p->n_out, n_rb = (N + MR - 1) / MR;
    const int relu = act == ECP_ACT_RELU, rt_full = narrow_rt(B);
    vf res[RT][ECP_GEMM_NARROW_MAX];
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC, first = k0 == 0, last = k0 + kc == K;
        for (int rb = 0; rb < n_rb;) {
            const int rt = n_rb - rb >= rt_full ? rt_full : 1, r0 = rb * MR;
            narrow_run(p->w + wpack_at(n_rb, k0, kc, rb), (size_t)kc * MR, rt,
                       XT + (size_t)k0 * ld, ld, kc, B, res);
            for (int i = 0; i < rt * MR && r0 + i < N; i++) {
                float *y = YT + (size_t)(r0 + i) * ld;
                for (int j = 0; j < B; j++) {
                    const float t = res[i / MR][j][i % MR] + (first ? b[r0 + i] : y[j]);
                    y[j] = last && relu && !(t > 0.0f) ? 0.0f : t;
                }
            }
            rb += rt;
        }
    }
    if (act != ECP_ACT_RELU && act != ECP_ACT_IDENTITY)
        for (int o = 0; o < N; o++)
            ecp_act_forward_p(act, act_p, YT + (size_t)o * ld, YT + (size_t)o * ld, (size_t)B);
    (void)work;
#else
    ecp_gemm_packed(p, XT, B, ld, b, act, act_p, YT, work);
#endif
}
