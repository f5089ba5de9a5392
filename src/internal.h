/* Internal definitions shared by the library's modules (and white-box tests). */
#ifndef ECP_INTERNAL_H
#define ECP_INTERNAL_H

#include "ecprune.h"
#include "ecprune_tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n_in, n_out;
    ecp_act act;
    float *W;        /* n_out x n_in row-major */
    float *b;        /* n_out */
    uint8_t *pruned; /* n_out x n_in; 1 = pruned (and W == 0) */
} ecp_layer;

struct ecp_mlp {
    int n_layers;
    int *sizes; /* n_layers + 1 */
    ecp_layer *layer;
    /* Training layout (src/nn/sparse_input.h): while w0t != NULL, layer 0's weights and mask
     * live transposed here (n_in x n_out) and layer[0].W is stale. Only ecp_train sets it. */
    float *w0t;
    uint8_t *pruned0t;
    int ld0t; /* their row stride: n_out rounded up to 16 floats (64-byte rows), padding 0 */
    /* ecp_mlp_keep_original's copy: every layer's W, b and mask one after the other (NULL when
     * none is kept). */
    float *orig;
    uint8_t *orig_mask;
};

/* The scratch of layer 0's sparse-input kernels (src/nn/sparse_input.c): the batch as CSR and
 * CSC, and their worker threads. Buffers are allocated on first use. */
typedef struct {
    int mode;    /* ECP_SPARSE_INPUT_AUTO / _DENSE / _SPARSE */
    int used;    /* the last forward took the sparse path (its backward follows it) */
    int csc;     /* the CSC of that batch is built */
    int32_t *rowptr, *idx, *colptr, *cidx;
    float *val, *cval;
    float *wt, *dwt; /* transposed W0 / dW0 scratch when the model is in its usual layout */
    float *dz;       /* dz of layer 0 with 64-byte rows (the dW kernel's operand) */
    int threads;     /* threads for the kernels (ecp_train: OpenBLAS's count) */
    void *pool;      /* their worker threads, started on first use */
} ecp_sparse_input;

struct ecp_ws {
    int cap;
    int n_layers;
    float **a;  /* a[0..L]: batch x sizes[i] */
    float **z;  /* z[0..L-1]: pre-activation of layer l, batch x sizes[l+1] */
    float **dz; /* dL/dz of layer l */
    float *da;  /* scratch: dL/da of the current layer's input, batch x max width */
    int grad_overwrite; /* backward writes dW, db instead of adding (ecp_train: no zeroing pass) */
    ecp_sparse_input input; /* layer 0's sparse-input scratch */
};

struct ecp_grads {
    int n_layers;
    float **dW;
    float **db;
    size_t *nw; /* weights per layer */
    int *nb;    /* biases per layer */
};

/* The NULL contract of the public API (ecprune.h): a required pointer that is NULL is a bad
 * argument, reported with the function's and the parameter's names. */
#define ECP_REQUIRE(ptr, err)                                                                   \
    do {                                                                                        \
        if (!(ptr))                                                                             \
            return ecp_fail((err), ECP_ERR_ARG, "%s: %s is NULL", __func__, #ptr);              \
    } while (0)

/* Overflow-checked allocation: NULL (and an ECP_ERR_MEMORY message) on failure or overflow. */
void *ecp_alloc(size_t count, size_t size, const char *what, ecp_error *err);
void *ecp_zalloc(size_t count, size_t size, const char *what, ecp_error *err);

/* Reads a whole file into memory (for parsers that want random access). */
ecp_status ecp_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                         ecp_error *err);
/* Reads a whole file, inflating it when it is gzip-compressed (zlib). */
ecp_status ecp_read_file_gz(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                            ecp_error *err);

/* log(sum_j exp(y_j)), stable for any logits. */
double ecp_log_sum_exp(const float *y, int k);

/* An activation and its derivative in double, for the oracles that need more than float. */
double ecp_act_eval_d(ecp_act a, double x, double *deriv);

/* Online cores, capped at 256. */
int ecp_online_cores(void);
/* Sets OpenBLAS's thread count to threads (0 = every online core) and returns the previous
 * count, to be put back with ecp_blas_threads_pop when the call returns. */
int ecp_blas_threads_push(int threads);
void ecp_blas_threads_pop(int prev);

int ecp_file_exists(const char *path);
int ecp_dir_exists(const char *path);
ecp_status ecp_mkdir_p(const char *path, ecp_error *err);

#endif
