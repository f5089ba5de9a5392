/* Sparse kernels: SpMV (one sample) and SpMM (a batch, feature-major), plain C11 written so that
 * gcc -O3 -march=native vectorises the inner loops (AVX2 / AVX-512) while any compiler still
 * gets a correct scalar loop. Every kernel is instantiated for uint16 and int32 indices by a
 * macro, so that the index width is a compile-time fact inside the hot loop, and the CSR ones
 * also for bf16 values (a CSR of 4 bytes per non-zero instead of 6; widening a bf16 is a shift).
 *
 * The choices (their measurements are in docs/PERF.md):
 *  - SpMV by rows keeps 16 partial sums per row: C forbids the compiler to reassociate a float
 *    sum, so a single accumulator is a serial add chain (~4 cycles per non-zero); 16 independent
 *    lanes let gcc emit one vgatherdps + one FMA per 16 non-zeros.
 *  - SpMV by columns (CSC) skips zero inputs and scatters into y; y is n_out floats and stays in
 *    L1, so the scatter is cheap, and it does work in proportion to the non-zero *inputs*.
 *  - SpMM puts the batch in the inner dimension and holds a tile of 32 batch columns of one
 *    output row in two zmm registers: per non-zero one index, one broadcast value, two loads of
 *    the XT row and two FMAs, no stores (see TNV below for the numbers).
 *  - Batch 1 over the list of non-zero inputs: CSC scatter, or DCOL (dense columns of W as rows
 *    of WT, whole output vectors in registers); the engine chooses (engine.c).
 */
#include "sparse.h"
#include "../core/bf16.h"

/* Values as the kernels read them: float32, or bf16 widened; and one value at p in every lane.
 * The SpMM broadcasts a value per non-zero: a bf16 one in a register is 4 instructions against
 * the float's one broadcast from memory, which cost its tile 13-15 % (1024-4096-4096-1024 at
 * 90 %, batch 256); a 16-bit broadcast from memory and a shift is 2. */
#define F32(v) (v)
#define BF16(v) ecp_bf16_to_float(v)
#define SPLAT_F32(p) vsplat(*(p))
#define SPLAT_BF16(p) vsplat_bf16(p)

static inline vf vsplat_bf16(const uint16_t *p)
{
#if VW == 16
    return (vf)_mm512_slli_epi32(_mm512_set1_epi16((short)*p), 16);
#elif VW == 8 && defined(__AVX2__)
    return (vf)_mm256_slli_epi32(_mm256_set1_epi16((short)*p), 16);
#else
    return vsplat(ecp_bf16_to_float(*p));
#endif
}

/* SpMM tile: TNV vectors of batch columns per output row (32 columns with AVX-512), TS
 * accumulator sets, the fastest of the tiles tried (docs/PERF.md). XT must be 64-byte aligned
 * (row segments that straddle lines nearly halve the speed).
 * 2 x 16 columns keep the XT slab of a 4096-input layer at 512 KB, inside L2 (with the engine's
 * padded row stride, ecp_fm_ld: at a stride of 2^k lines it missed L2 and one accumulator set
 * was as fast as two). Two sets (4 FMA chains), 784-300-100-10 at 90 %, batch 256:
 * 1.14-1.18M -> 1.25M samples/s; 1024-4096-4096-1024: 9.9-10.5k -> 9.6-12.0k (noisy). */
#define TNV 2
#define TS 2
#define DEFINE_KERNELS(SUF, ITYPE, VTYPE, TOF)                                                  \
    static void spmv_csr_##SUF(const int64_t *ptr, const ITYPE *idx, const VTYPE *val,          \
                               const float *x, const float *b, float *y, int r0, int r1)        \
    {                                                                                           \
        for (int o = r0; o < r1; o++) {                                                         \
            int64_t k = ptr[o];                                                                 \
            const int64_t e = ptr[o + 1];                                                       \
            float acc[16] = {0};                                                                \
            for (; k + 16 <= e; k += 16)                                                        \
                for (int t = 0; t < 16; t++)                                                    \
                    acc[t] = MADD(TOF(val[k + t]), x[idx[k + t]], acc[t]);              \
            float s = 0.0f;                                                                     \
            for (int t = 0; t < 16; t++)                                                        \
                s += acc[t];                                                                    \
            for (; k < e; k++)                                                                  \
                s = MADD(TOF(val[k]), x[idx[k]], s);                                            \
            y[o] = b[o] + s;                                                                    \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    /* Columns [j, B) of a batch too narrow for a vector tile: accumulate in place in YT. */  \
    static void spmm_tail_##SUF(const int64_t *ptr, const ITYPE *idx, const VTYPE *val,         \
                                const float *XT, int B, size_t ld, int j, const float *b,      \
                                float *YT, int r0, int r1)                                     \
    {                                                                                          \
        const int w = B - j;                                                                   \
        for (int o = r0; o < r1; o++) {                                                        \
            float *yr = YT + (size_t)o * ld + (size_t)j;                                       \
            for (int t = 0; t < w; t++)                                                        \
                yr[t] = b[o];                                                                  \
            for (int64_t k = ptr[o]; k < ptr[o + 1]; k++) {                                    \
                const float v = TOF(val[k]);                                                   \
                const float *xr = XT + (size_t)idx[k] * ld + (size_t)j;                        \
                for (int t = 0; t < w; t++)                                                    \
                    yr[t] = MADD(v, xr[t], yr[t]);                                             \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    SPMM_TILE(SUF, ITYPE, VTYPE, TOF, TNV, TS)                                                 \
    SPMM_TILE(SUF, ITYPE, VTYPE, TOF, 1, 4)                                                    \
                                                                                               \
    static void spmm_csr_##SUF(const int64_t *ptr, const ITYPE *idx, const VTYPE *val,         \
                               const float *XT, int B, size_t ld, const float *b, float *YT,   \
                               int r0, int r1)                                                 \
    {                                                                                          \
        int j = 0;                                                                             \
        for (; j + TNV * VW <= B; j += TNV * VW)                                               \
            SPMM_TNAME(TNV, SUF)(ptr, idx, val, XT + j, ld, b, YT + j, ld, r0, r1);            \
        for (; j + VW <= B; j += VW)                                                           \
            spmm_tile1_##SUF(ptr, idx, val, XT + j, ld, b, YT + j, ld, r0, r1);                \
        if (j < B)                                                                             \
            spmm_tail_##SUF(ptr, idx, val, XT, B, ld, j, b, YT, r0, r1);                       \
    }

/* NV vectors (NV * VW batch columns) of one output row held in registers, the row's non-zeros
 * split round-robin over S accumulator sets: an FMA has a 4-cycle latency, so one set of NV = 2
 * would wait on itself; S * NV = 4 independent chains keep the FMA pipe busy. Per non-zero: one
 * index, one broadcast value, NV contiguous loads from the XT row and NV FMAs; no stores. */
#define SPMM_TNAME_(NV, SUF) spmm_tile##NV##_##SUF
#define SPMM_TNAME(NV, SUF) SPMM_TNAME_(NV, SUF)
#define SPMM_TILE(SUF, ITYPE, VTYPE, TOF, NV, S)                                                \
    static void SPMM_TNAME(NV, SUF)(const int64_t *ptr, const ITYPE *idx, const VTYPE *val,   \
                                      const float *X, size_t ldx, const float *b, float *Y,    \
                                      size_t ldy, int r0, int r1)                              \
    {                                                                                          \
        for (int o = r0; o < r1; o++) {                                                        \
            const int64_t k1 = ptr[o + 1];                                                     \
            int64_t k = ptr[o];                                                                \
            vf acc[S][NV];                                                                     \
            for (int s = 0; s < S; s++)                                                        \
                for (int t = 0; t < NV; t++)                                                   \
                    acc[s][t] = vsplat(s == 0 ? b[o] : 0.0f);                                \
            for (; k + S <= k1; k += S)                                                        \
                for (int s = 0; s < S; s++) {                                                  \
                    const float *xr = X + (size_t)idx[k + s] * ldx;                            \
                    const vf v = SPLAT_##TOF(val + k + s);                                     \
                    for (int t = 0; t < NV; t++)                                               \
                        acc[s][t] = vfma(v, vload(xr + t * VW), acc[s][t]);                    \
                }                                                                              \
            for (int s = 0; s < S - 1; s++) /* constant s: acc stays in registers */         \
                if (k + s < k1) {                                                              \
                    const float *xr = X + (size_t)idx[k + s] * ldx;                            \
                    const vf v = SPLAT_##TOF(val + k + s);                                     \
                    for (int t = 0; t < NV; t++)                                               \
                        acc[s][t] = vfma(v, vload(xr + t * VW), acc[s][t]);                    \
                }                                                                              \
            for (int t = 0; t < NV; t++) {                                                     \
                vf r = acc[0][t];                                                              \
                for (int s = 1; s < S; s++)                                                    \
                    r += acc[s][t];                                                            \
                vstore(Y + (size_t)o * ldy + (size_t)t * VW, r);                               \
            }                                                                                  \
        }                                                                                      \
    }

DEFINE_KERNELS(u16, uint16_t, float, F32)
DEFINE_KERNELS(i32, int32_t, float, F32)
DEFINE_KERNELS(u16h, uint16_t, uint16_t, BF16)
DEFINE_KERNELS(i32h, int32_t, uint16_t, BF16)

#define DEFINE_CSC(SUF, ITYPE)                                                                  \
    static void spmv_csc_##SUF(const int64_t *ptr, const ITYPE *idx, const float *val,          \
                               int n_in, const float *x, float *y)                              \
    {                                                                                           \
        for (int c = 0; c < n_in; c++) {                                                        \
            const float xc = x[c];                                                              \
            if (xc == 0.0f)                                                                     \
                continue;                                                                       \
            const int64_t e = ptr[c + 1];                                                       \
            for (int64_t k = ptr[c]; k < e; k++)                                                \
                y[idx[k]] = MADD(val[k], xc, y[idx[k]]);                                        \
        }                                                                                       \
    }
DEFINE_CSC(u16, uint16_t)
DEFINE_CSC(i32, int32_t)

void ecp_spmv_csr(const ecp_spmat *A, const float *x, const float *b, float *y, int r0, int r1)
{
    if (A->val16 && A->idx16)
        spmv_csr_u16h(A->ptr, A->idx16, A->val16, x, b, y, r0, r1);
    else if (A->val16)
        spmv_csr_i32h(A->ptr, A->idx32, A->val16, x, b, y, r0, r1);
    else if (A->idx16)
        spmv_csr_u16(A->ptr, A->idx16, A->val, x, b, y, r0, r1);
    else
        spmv_csr_i32(A->ptr, A->idx32, A->val, x, b, y, r0, r1);
}

void ecp_spmv_csc(const ecp_spmat *A, const float *x, const float *b, float *y)
{
    memcpy(y, b, (size_t)A->n_out * sizeof *y);
    if (A->idx16)
        spmv_csc_u16(A->ptr, A->idx16, A->val, A->n_in, x, y);
    else
        spmv_csc_i32(A->ptr, A->idx32, A->val, A->n_in, x, y);
}

void ecp_spmm_csr(const ecp_spmat *A, const float *XT, int B, size_t ld, const float *b,
                  float *YT, int r0, int r1)
{
    if (A->val16 && A->idx16)
        spmm_csr_u16h(A->ptr, A->idx16, A->val16, XT, B, ld, b, YT, r0, r1);
    else if (A->val16)
        spmm_csr_i32h(A->ptr, A->idx32, A->val16, XT, B, ld, b, YT, r0, r1);
    else if (A->idx16)
        spmm_csr_u16(A->ptr, A->idx16, A->val, XT, B, ld, b, YT, r0, r1);
    else
        spmm_csr_i32(A->ptr, A->idx32, A->val, XT, B, ld, b, YT, r0, r1);
}

/* ------------------------------------------------------------------ batch 1 over non-zero inputs */

int ecp_nz_list(const float *x, int n, int32_t *out)
{
    int c = 0, i = 0;
#if VW == 16
    /* compress in a register, then a plain 64-byte store (vpcompressd to memory is microcoded
     * and slow on Zen 4); the store stays inside out[0, i + 16) <= out[0, n) */
    __m512i id = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (; i + 16 <= n; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(m, id));
        c += __builtin_popcount(m);
        id = _mm512_add_epi32(id, step);
    }
#endif
    for (; i < n; i++) { /* branch-free: out[c] is overwritten until a non-zero keeps it */
        out[c] = i;
        c += !(x[i] == 0.0f);
    }
    return c;
}

int ecp_nz_count(const float *x, int n, const uint16_t *live)
{
    int c = 0, i = 0;
#if VW == 16
    for (; i + 16 <= n; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        c += __builtin_popcount(live ? m & live[i / 16] : m);
    }
#endif
    for (; i < n; i++)
        c += (x[i] != 0.0f) & (!live || (live[i / 16] >> (i % 16) & 1));
    return c;
}

int ecp_nz_list_mask(const float *x, int n, const uint16_t *live, int32_t *out)
{
    int c = 0, i = 0;
#if VW == 16
    __m512i id = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (; i + 16 <= n; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        m &= live[i / 16];
        _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(m, id));
        c += __builtin_popcount(m);
        id = _mm512_add_epi32(id, step);
    }
#endif
    for (; i < n; i++) {
        out[c] = i;
        c += (x[i] != 0.0f) & (live[i / 16] >> (i % 16) & 1);
    }
    return c;
}

int ecp_relu_nz_list(float *y, int n, int32_t *out)
{
    int c = 0, i = 0;
#if VW == 16
    __m512i id = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
        _mm512_storeu_ps(y + i, _mm512_maskz_mov_ps(m, v));
        _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(m, id));
        c += __builtin_popcount(m);
        id = _mm512_add_epi32(id, step);
    }
#endif
    for (; i < n; i++) {
        const int pos = y[i] > 0.0f;
        y[i] = pos ? y[i] : 0.0f;
        out[c] = i;
        c += pos;
    }
    return c;
}

#define DEFINE_CSC_LIST(SUF, ITYPE)                                                             \
    static void csc_list_##SUF(const int64_t *ptr, const ITYPE *idx, const float *val,          \
                               const float *x, const int32_t *nz, int nx, float *y)            \
    {                                                                                          \
        for (int q = 0; q < nx; q++) {                                                         \
            const int c = nz[q];                                                               \
            const float xc = x[c];                                                             \
            const int64_t e = ptr[c + 1];                                                      \
            for (int64_t k = ptr[c]; k < e; k++)                                               \
                y[idx[k]] = MADD(val[k], xc, y[idx[k]]);                                       \
        }                                                                                      \
    }
DEFINE_CSC_LIST(u16, uint16_t)
DEFINE_CSC_LIST(i32, int32_t)

void ecp_spmv_csc_list(const ecp_spmat *A, const float *x, const int32_t *nz, int nx,
                       const float *b, float *y)
{
    if (b)
        memcpy(y, b, (size_t)A->n_out * sizeof *y);
    if (A->idx16)
        csc_list_u16(A->ptr, A->idx16, A->val, x, nz, nx, y);
    else
        csc_list_i32(A->ptr, A->idx32, A->val, x, nz, nx, y);
}

/* NV output vectors in registers; every listed input c adds x_c times its row rows[q] of WT.
 * Below 4 vectors the FMA latency (4 cycles) would serialise the list, so the inputs alternate
 * between two accumulator sets. */
#define DEFINE_DCOL(NV)                                                                         \
    static void dcol_##NV(const float *WT, size_t ld, const float *x, const int32_t *nz,       \
                          const int32_t *rows, int nx, const float *b, float *y)               \
    {                                                                                          \
        enum { S = NV < 4 ? 2 : 1 };                                                           \
        vf acc[S][NV];                                                                         \
        for (int t = 0; t < NV; t++) {                                                         \
            acc[0][t] = vload(b + t * VW);                                                     \
            for (int s = 1; s < S; s++)                                                        \
                acc[s][t] = vsplat(0.0f);                                                      \
        }                                                                                      \
        int q = 0;                                                                             \
        for (; q + S <= nx; q += S)                                                            \
            for (int s = 0; s < S; s++) {                                                      \
                const float *w = WT + (size_t)rows[q + s] * ld;                                \
                const vf xv = vsplat(x[nz[q + s]]);                                            \
                for (int t = 0; t < NV; t++)                                                   \
                    acc[s][t] = vfma(xv, vload(w + t * VW), acc[s][t]);                        \
            }                                                                                  \
        if (q < nx) {                                                                          \
            const float *w = WT + (size_t)rows[q] * ld;                                        \
            const vf xv = vsplat(x[nz[q]]);                                                    \
            for (int t = 0; t < NV; t++)                                                       \
                acc[0][t] = vfma(xv, vload(w + t * VW), acc[0][t]);                            \
        }                                                                                      \
        for (int t = 0; t < NV; t++) {                                                         \
            vf r = acc[0][t];                                                                  \
            for (int s = 1; s < S; s++)                                                        \
                r += acc[s][t];                                                                \
            vstore(y + t * VW, r);                                                             \
        }                                                                                      \
    }
DEFINE_DCOL(1)
DEFINE_DCOL(2)
DEFINE_DCOL(3)
DEFINE_DCOL(4)
DEFINE_DCOL(5)
DEFINE_DCOL(6)
DEFINE_DCOL(7)
DEFINE_DCOL(8)
DEFINE_DCOL(9)
DEFINE_DCOL(10)
DEFINE_DCOL(11)
DEFINE_DCOL(12)

/* Widest tile: 12 accumulators of 32 zmm registers (AVX-512), 8 of 16 otherwise; an output of nv
 * vectors is cut into ceil(nv / max) tiles of near-equal width (19 -> 10 + 9, not 8 + 8 + 3). */
#define DCOL_MAX (VW == 16 ? 12 : 8)

void ecp_dcol_list(const float *WT, int ld, const float *x, const int32_t *nz,
                   const int32_t *rows, int nx, const float *b, float *y)
{
    static void (*const tile[13])(const float *, size_t, const float *, const int32_t *,
                                  const int32_t *, int, const float *, float *) = {
        NULL,   dcol_1, dcol_2, dcol_3, dcol_4,  dcol_5,  dcol_6,
        dcol_7, dcol_8, dcol_9, dcol_10, dcol_11, dcol_12};
    const int nv = ld / VW, nt = (nv + DCOL_MAX - 1) / DCOL_MAX;
    for (int t = 0, v = 0; t < nt; t++) {
        const int w = (nv - v) / (nt - t);
        tile[w](WT + (size_t)v * VW, (size_t)ld, x, nz, rows, nx, b + (size_t)v * VW,
                y + (size_t)v * VW);
        v += w;
    }
}

/* ------------------------------------------------------------------ threads */

/* Below this many multiply-adds a product runs on the calling thread: waking the pool's
 * sleeping workers costs about as much as ~MT_MIN_WORK FMAs of these kernels (docs/PERF.md). */
#define MT_MIN_WORK (1 << 20)

typedef struct {
    const ecp_spmat *A;
    const float *x, *b;
    float *y;
    int B; /* 0: SpMV */
    size_t ld;
    int blocks;
} mt_job;

/* First row r with ptr[r] >= target (rows split so that every block gets the same number of
 * non-zeros, not of rows: pruning leaves rows of very different lengths). */
static int row_at(const ecp_spmat *A, int64_t target)
{
    int lo = 0, hi = A->n_major;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (A->ptr[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mt_block(void *arg, int t)
{
    const mt_job *j = arg;
    const ecp_spmat *A = j->A;
    int r0 = t == 0 ? 0 : row_at(A, A->nnz * t / j->blocks);
    int r1 = t == j->blocks - 1 ? A->n_major : row_at(A, A->nnz * (t + 1) / j->blocks);
    if (r1 <= r0)
        return;
    if (j->B == 0)
        ecp_spmv_csr(A, j->x, j->b, j->y, r0, r1);
    else
        ecp_spmm_csr(A, j->x, j->B, j->ld, j->b, j->y, r0, r1);
}

static void mt_product(const ecp_spmat *A, const float *x, int B, size_t ld, const float *b,
                       float *y, ecp_pool *pool)
{
    int64_t work = A->nnz * (int64_t)(B ? B : 1);
    int blocks = ecp_pool_threads(pool);
    if (blocks > A->n_major)
        blocks = A->n_major;
    if (work < MT_MIN_WORK || blocks < 1)
        blocks = 1;
    mt_job j = {A, x, b, y, B, ld, blocks};
    ecp_pool_run(pool, mt_block, &j, blocks);
}

void ecp_spmv_csr_mt(const ecp_spmat *A, const float *x, const float *b, float *y,
                     ecp_pool *pool)
{
    mt_product(A, x, 0, 0, b, y, pool);
}

void ecp_spmm_csr_mt(const ecp_spmat *A, const float *XT, int B, size_t ld, const float *b,
                     float *YT, ecp_pool *pool)
{
    mt_product(A, XT, B, ld, b, YT, pool);
}
