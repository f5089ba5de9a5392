/* Sparse-input kernels of the dense MLP (src/nn/sparse_input.c), shared by mlp.c and train.c.
 *
 * Why: on mnist ~81 % of the input values are exactly 0, and layer 0 (784 x 300) holds ~120 of
 * the ~145 MFLOP of a batch-128 training step (forward X W^T and dW = dZ^T X). Dense sgemm
 * multiplies all those zeros at its peak; walking only the non-zeros does ~5x less work. */
#ifndef ECP_NN_SPARSE_INPUT_H
#define ECP_NN_SPARSE_INPUT_H

#include "../internal.h"

/* ws->input.mode: how layer 0 treats its input. AUTO takes the sparse path when the batch's density
 * (non-zeros / values) is at most ECP_SPARSE_INPUT_MAX_DENSITY and the model is in the training layout
 * (ecp_train); the public forward/backward on a model in the ordinary layout stay dense under AUTO
 * (they would have to transpose W on every call). DENSE and SPARSE force a path (tests). */
enum { ECP_SPARSE_INPUT_AUTO = 0, ECP_SPARSE_INPUT_DENSE = 1, ECP_SPARSE_INPUT_SPARSE = 2 };

/* The densest batch that takes the sparse path: below the measured break-even (~0.55, see
 * docs/PERF.md) with a margin for layers where sgemm is more efficient. mnist batches: ~0.19. */
#define ECP_SPARSE_INPUT_MAX_DENSITY 0.4

/* Lazily allocates the CSR/CSC buffers of ws (0 on allocation failure: the caller stays dense). */
int ecp_sparse_input_ensure(ecp_ws *ws, int n_in, int n_out);
/* Frees the batch's CSR/CSC buffers and dz that ecp_sparse_input_ensure allocates (the weight
 * scratch wt, dwt and the pool stay), leaving them NULL. */
void ecp_sparse_input_release(ecp_sparse_input *in);

/* CSR of the batch x (batch x n_in, row-major) into ws->input.rowptr/sp_idx/sp_val. Stops and
 * returns -1 as soon as the non-zeros exceed max_nnz; else returns the number of non-zeros. */
int64_t ecp_sparse_input_build_csr(ecp_ws *ws, const float *x, int batch, int n_in, int64_t max_nnz);

/* CSC (per input column, samples ascending) from the CSR, into ws->input.colptr/sp_cidx/sp_cval. */
void ecp_sparse_input_build_csc(ecp_ws *ws, int batch, int n_in);

/* out[r][0..n) = (accumulate ? out[r] : bias ? bias : 0) + sum_j val[j] * M[idx[j]][0..n),
 * j over [ptr[r], ptr[r+1]), in that order (a fixed order: results are deterministic and
 * independent of the thread count). M is row-major with leading dimension ldm. */
void ecp_spmm_rows(int nrows, const int32_t *ptr, const int32_t *idx, const float *val,
                   const float *M, size_t ldm, int n, const float *bias, int accumulate, float *out,
                   size_t ldo);

/* As ecp_spmm_rows, same results bit for bit, with narrow column panels outermost: faster when
 * M has few rows (fits L1 a panel at a time), as dZ in the dW product. */
void ecp_spmm_cols(int nrows, const int32_t *ptr, const int32_t *idx, const float *val,
                   const float *M, size_t ldm, int n, const float *bias, int accumulate, float *out,
                   size_t ldo);

/* The two layer-0 products of a training step, split over ws->input.threads threads by chunks of
 * output rows claimed from a shared counter. Every output row is computed whole by one thread
 * with the same arithmetic, so results are bit-identical for any thread count. */
void ecp_sparse_input_forward(ecp_ws *ws, int batch, const float *wt, size_t ldw, int n,
                      const float *bias, float *z);
void ecp_sparse_input_dw(ecp_ws *ws, int n_in, const float *dz, size_t lddz, int n, int accumulate,
                 float *dwt, size_t lddw);

/* Runs fn(arg, c) for c in [0, n) on the pool of ws (in any order and thread), started on first
 * use with ws->input.threads threads. */
void ecp_sparse_input_parallel(ecp_ws *ws, void (*fn)(void *arg, int c), void *arg, int n);

/* The optimiser's update runs on the threads of ws (borrowed; NULL: the calling thread). */
void ecp_optim_use_threads(ecp_optim *op, ecp_ws *ws);

/* Row stride of the transposed layer-0 arrays: n rounded up to 16 floats, so that every row
 * starts on a 64-byte line; unaligned rows split most 64-byte loads across two lines
 * (docs/PERF.md). */
static inline int ecp_sparse_input_ld(int n) { return (n + 15) / 16 * 16; }

/* The training layout: layer 0's weights and mask held transposed (n_in x n_out) in m->w0t and
 * m->pruned0t, so that the sparse forward and dW run contiguous AXPYs over the outputs. While it
 * is on, m->layer[0].W is stale and every nn function (forward, backward, optimiser) uses w0t;
 * gradients of layer 0 are then transposed too. Only ecp_train turns it on, and turns it off
 * (writing W back) before it returns. */
ecp_status ecp_mlp_layout_begin(ecp_mlp *m, ecp_error *err);
void ecp_mlp_layout_end(ecp_mlp *m);

#endif
