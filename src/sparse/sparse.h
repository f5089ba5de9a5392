/* Internal interface of the sparse engine: the compressed formats (csr.c), the kernels
 * (kernels.c) and the threading helper they share. The public face is ecp_sparse_* in
 * include/ecprune.h (engine.c, tune.c) and ecp_export_c (export_c.c). */
#ifndef ECP_SPARSE_H
#define ECP_SPARSE_H

#include "../internal.h"
#include "../core/simd.h" /* ECP_VW: the engine pads its layouts to whole vectors */

/* A compressed sparse matrix of one layer, n_out x n_in, by rows (CSR, major = outputs) or by
 * columns (CSC, major = inputs). Minor indices are uint16 when the minor dimension is at most
 * 65,535 (6 bytes per non-zero instead of 8: the format is memory-bound at batch 1 on large
 * layers, so bytes per non-zero is the speed), int32 otherwise; exactly one of idx16/idx32 is
 * set. ptr has n_major + 1 entries, 64-bit because nnz can pass 2^31 (2^24 x 2^24 layers).
 * A CSR may hold its values as bf16 instead (val16, val NULL: ecp_spmat_bf16), which only the
 * CSR products read; the other users of the format need val. */
typedef struct {
    int by_col;      /* 0: CSR (rows = outputs); 1: CSC (rows = inputs) */
    int n_out, n_in;
    int n_major;     /* n_out for CSR, n_in for CSC */
    int64_t nnz;
    int64_t *ptr;    /* n_major + 1 */
    uint16_t *idx16; /* nnz minor indices, when the minor dimension <= 65535 */
    int32_t *idx32;  /* otherwise */
    float *val;      /* nnz */
    uint16_t *val16; /* nnz bf16 values instead of val, or NULL */
} ecp_spmat;

/* Builds the compressed form of W (n_out x n_in row-major) without the weights that are marked
 * in pruned (may be NULL) or exactly zero. */
ecp_status ecp_spmat_build(ecp_spmat *s, const float *W, const uint8_t *pruned, int n_out,
                           int n_in, int by_col, ecp_error *err);
void ecp_spmat_release(ecp_spmat *s);
/* Replaces the values of a CSR by their nearest bf16 (core/bf16.h): 4 bytes per non-zero with
 * uint16 indices instead of 6. On failure s is unchanged. */
ecp_status ecp_spmat_bf16(ecp_spmat *s, ecp_error *err);
/* Non-zeros of W that ecp_spmat_build would keep. */
int64_t ecp_spmat_count(const float *W, const uint8_t *pruned, int n_out, int n_in);

/* y = W x + b for one sample (CSR, gathers x). Rows [r0, r1) only. */
void ecp_spmv_csr(const ecp_spmat *A, const float *x, const float *b, float *y, int r0, int r1);
/* y = W x + b for one sample (CSC): walks only the non-zero inputs and scatters into y. */
void ecp_spmv_csc(const ecp_spmat *A, const float *x, const float *b, float *y);
/* YT = W XT + b for a batch held feature-major: XT is n_in x B, YT is n_out x B, both with row
 * stride ld >= B (ecp_fm_ld), so the batch is the inner, contiguous dimension. Rows [r0, r1)
 * only. */
void ecp_spmm_csr(const ecp_spmat *A, const float *XT, int B, size_t ld, const float *b,
                  float *YT, int r0, int r1);
/* The same two products split over the threads of pool (NULL: the calling thread) by row
 * blocks of equal non-zero count (on the calling thread alone when the work is too small to pay
 * for waking the workers). Every row is computed whole by one thread: the results do not depend
 * on the thread count. */
void ecp_spmv_csr_mt(const ecp_spmat *A, const float *x, const float *b, float *y,
                     ecp_pool *pool);
void ecp_spmm_csr_mt(const ecp_spmat *A, const float *XT, int B, size_t ld, const float *b,
                     float *YT, ecp_pool *pool);

/* Row stride of the engine's feature-major activations for a batch of B (B >= 16: whole 64-byte
 * lines, an odd count of them). With a stride of 2^k lines (batch 256: 1 KB) the rows of a
 * 4096-input layer fall in 1/16 of the L2 sets and 1/8 of the L1 sets, and the SpMM, which
 * reads a 128-byte segment of a different row per non-zero, missed L2: 1024-4096-4096-1024 at
 * 90 %, batch 256, 5.9k samples/s against 9.9k at batch 240 (docs/PERF.md). */
static inline size_t ecp_fm_ld(int B)
{
    if (B < 16)
        return (size_t)B;
    size_t lines = ((size_t)B + 15) / 16;
    return (lines | 1) * 16;
}


/* Batch-1 helpers over the list of non-zero inputs (the engine builds it once per layer while
 * applying the activation, then every column kernel walks only those inputs).
 * ecp_nz_list: writes the indices i with x[i] != 0 (NaN counts as non-zero) to out (n slots),
 * returns their count. ecp_relu_nz_list: y = max(y, 0) in place (NaN -> 0, as ecp_act_forward),
 * and the list of the positive entries. */
int ecp_nz_list(const float *x, int n, int32_t *out);
int ecp_relu_nz_list(float *y, int n, int32_t *out);
/* ecp_nz_list restricted to the live inputs: bit i % 16 of live[i / 16] set ((n + 15) / 16
 * words). The engine drops the input columns whose every weight is pruned this way. */
int ecp_nz_list_mask(const float *x, int n, const uint16_t *live, int32_t *out);
/* The count ecp_nz_list_mask (live not NULL) or ecp_nz_list would return, without the list:
 * on a dense input the first layer runs a row kernel and never reads the list. */
int ecp_nz_count(const float *x, int n, const uint16_t *live);
/* y = W x + b (CSC) visiting only the nx columns listed in nz; b NULL: y += W x. */
void ecp_spmv_csc_list(const ecp_spmat *A, const float *x, const int32_t *nz, int nx,
                       const float *b, float *y);
/* y = b + sum over the nx listed inputs c = nz[q] of x[c] * WT[rows[q]]: WT holds dense
 * columns of W as rows of ld floats (ld a multiple of ECP_VW, zero past n_out); b and y have ld
 * entries. The outputs stay in vector registers (up to 8 vectors per pass over the list). */
void ecp_dcol_list(const float *WT, int ld, const float *x, const int32_t *nz,
                   const int32_t *rows, int nx, const float *b, float *y);

/* 64-byte aligned float buffer of n entries (ecp_aligned_alloc; free with free()). */
static inline float *ecp_alloc_aligned(size_t n, ecp_error *err)
{
    return ecp_aligned_alloc(n, sizeof(float), "sparse engine buffer", err);
}

/* Dense layer weights packed once for ecp_gemm_packed (gemm.c): row blocks of the kernel's tile
 * height, k-major, zero-padded. */
typedef struct {
    int n_out, n_in;
    float *w;
} ecp_wpack;
ecp_status ecp_wpack_build(ecp_wpack *p, const float *W, int n_out, int n_in, ecp_error *err);
void ecp_wpack_release(ecp_wpack *p);
/* Floats of the work buffer ecp_gemm_packed needs for batches up to max_batch (64-byte aligned). */
size_t ecp_gemm_work_floats(int max_batch);
/* YT = act(W XT + b), feature-major as ecp_spmm_csr (XT n_in x B, YT n_out x B, row stride ld);
 * ReLU and identity are applied in the register tile, other activations (parameters act_p,
 * NULL = the defaults) after. */
void ecp_gemm_packed(const ecp_wpack *p, const float *XT, int B, size_t ld, const float *b,
                     ecp_act act, const float *act_p, float *YT, float *work);
/* The same for 2 <= B <= ECP_GEMM_NARROW_MAX on the same pack (weights in the vector lanes, the
 * samples broadcast; work unused). */
#define ECP_GEMM_NARROW_MAX 12
void ecp_gemm_narrow(const ecp_wpack *p, const float *XT, int B, size_t ld, const float *b,
                     ecp_act act, const float *act_p, float *YT, float *work);
/* 1 when ecp_gemm_narrow is the faster of the two at batch B, for weights that stay in cache
 * (in_cache) or stream from memory (docs/PERF.md); 0 where it has no vector form. */
int ecp_gemm_narrow_pays(int B, int in_cache);
/* The same from the batch as rows: X is B x n_in with row stride ldx (the transpose into the
 * feature-major layout happens while packing). */
void ecp_gemm_packed_rows(const ecp_wpack *p, const float *X, int B, size_t ldx, size_t ld,
                          const float *b, ecp_act act, const float *act_p, float *YT,
                          float *work);

/* y = act(W x + b) for one sample, W row-major n_out x n_in (gemv.c). ReLU and identity are
 * applied as each row is stored, other activations after. */
void ecp_gemv_rows(const float *W, int n_out, int n_in, const float *x, const float *b,
                   ecp_act act, const float *act_p, float *y);

/* Name of the tuning cache file inside ecp_cache_dir(). */
#define ECP_SPARSE_TUNE_FILE "sparse_tune.txt"

#endif
