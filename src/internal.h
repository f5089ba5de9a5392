/* Internal definitions shared by the library's modules (and white-box tests). */
#ifndef ECP_INTERNAL_H
#define ECP_INTERNAL_H

#include "ecprune.h"
#include "ecprune_tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a model read from an ONNX file keeps of that file (src/io/onnx_iface.c reads and
 * writes it), so that the file ecprune writes replaces the original in any pipeline. Strings
 * are owned (NULL = absent). Created by the reader, freed and copied in mlp.c. */
typedef struct {
    char *input, *output;        /* the graph's input and output names */
    int in_rank;                 /* 2, or more when a Flatten(axis=1) comes first */
    int64_t in_dim[ECP_IFACE_RANK]; /* dim_value; -1 = symbolic (in_param) or unknown */
    char *in_param[ECP_IFACE_RANK];
    int64_t out_dim0;            /* the output's batch dimension, as in_dim */
    char *out_param0;
    int flatten;                 /* write Flatten(axis=1) in front of the first layer */
    int64_t opset, ir_version;   /* of the file (default domain) */
    char *producer_name, *producer_version, *domain, *doc_string, *graph_name, *graph_doc;
    int has_model_version;
    int64_t model_version;
    int n_meta;                  /* metadata_props other than ecprune's regenerated records */
    char **meta_key, **meta_val;
    ecp_out_transform out_tf;    /* a trailing Softmax / LogSoftmax */
    int out_axis;                /* its axis as written (1 or -1) */
} ecp_iface;
ecp_iface *ecp_iface_clone(const ecp_iface *f, ecp_error *err);
void ecp_iface_free(ecp_iface *f);

typedef struct {
    int n_in, n_out;
    ecp_act act;
    float act_p[ECP_ACT_NPARAM];
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
    /* How it was trained (epochs, batch, optim used), when known: kept in the ONNX file */
    int has_training;
    ecp_train_opts training;
    /* The N:M pattern the model promises (mlp_pattern.c), 0 = none; bit l: layer l. */
    int nm_n, nm_m;
    uint64_t nm_layers;
    /* ecp_mlp_keep_original's copy: every layer's W, b and mask one after the other (NULL when
     * none is kept). */
    float *orig;
    uint8_t *orig_mask;
    /* The interface of the file the model was read from (NULL: made by the library). */
    ecp_iface *iface;
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
    struct ecp_pool *pool; /* their worker threads, started on first use */
} ecp_sparse_input;

struct ecp_ws {
    int cap;
    int n_layers;
    float **a;  /* a[0..L]: batch x sizes[i] */
    float **z;  /* z[0..L-1]: pre-activation of layer l, batch x sizes[l+1] */
    float **dz; /* dL/dz of layer l */
    float *da;  /* scratch: dL/da of the current layer's input, batch x max width */
    void *arena; /* a, z, dz and da live in this one block */
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

/* The memory budget (src/core/budget.c): the default is this share of physical memory. */
#define ECP_BUDGET_DEFAULT_PERCENT 50
/* Refuses (ECP_ERR_MEMORY, naming `what`, the bytes and how to raise the budget) when an
 * allocation of `bytes` would exceed the budget. Ask before allocating anything sized by a file
 * or an option; ecp_alloc asks for every single block. */
ecp_status ecp_budget_check(uint64_t bytes, const char *what, ecp_error *err);
/* "12.0 GiB" */
void ecp_format_bytes(uint64_t n, char *buf, size_t len);
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

/* out = act(a W^T + b) for one layer of the model as it is (not in the training layout). */
void ecp_layer_forward(const ecp_layer *L, const float *a, float *out, int batch);

/* ecp_mlp_forward from layer l's inputs a (batch x sizes[l]) up: the layers below are not run
 * (their activations in ws are left as they were). */
void ecp_mlp_forward_from(const ecp_mlp *m, ecp_ws *ws, int l, const float *a, int batch);

/* ecp_mlp_backward without gradients, stopped at layer lo's dz: the sensitivities of layers
 * >= lo need nothing below it. */
void ecp_mlp_backward_to(const ecp_mlp *m, ecp_ws *ws, const float *dy, int batch, int lo);

/* Moves the k smallest of n elements (by cmp, which must break ties) to base[0..k), in no
 * particular order (src/core/nth.c). Elements of up to 64 bytes. */
void ecp_nth_smallest(void *base, size_t n, size_t size, size_t k,
                      int (*cmp)(const void *, const void *));

/* 64-byte aligned (cache lines, whole vectors), overflow- and budget-checked, the size rounded
 * up to whole lines; free with free(). The zalloc form zeroes it. */
void *ecp_aligned_alloc(size_t count, size_t size, const char *what, ecp_error *err);
void *ecp_aligned_zalloc(size_t count, size_t size, const char *what, ecp_error *err);

/* Many scratch arrays carved from one block: a first pass with base NULL only adds up their
 * sizes (the pointers it hands out are placeholders, never to be used), then the block is
 * allocated (ecp_aligned_zalloc(used, 1)) and a second pass with base set hands out the real,
 * 64-byte aligned, pieces. A block of a few MB comes in huge pages where hundreds of small
 * ones would each be first touched page by page (src/core/alloc.c). */
typedef struct {
    char *base;
    size_t used;
} ecp_carve;
void *ecp_carve_take(ecp_carve *c, size_t count, size_t size);

/* dst (cols x rows, row stride ldd) = src^T (rows x cols, row stride lds), or += when add
 * (src/core/transpose.c). */
void ecp_transpose(const float *src, int rows, int cols, size_t lds, float *dst, size_t ldd,
                   int add);

/* The thread pool (src/core/parallel.c): `threads` threads in all, the caller included, so
 * threads - 1 workers, started at creation and sleeping between jobs. ecp_pool_run runs
 * fn(arg, c) for every c in [0, n), each once, in any order and on any thread, and returns when
 * all are done; a NULL pool (or n == 1) runs them on the calling thread. One caller at a time:
 * a pool belongs to the object that runs jobs on it (engine, workspace, statistics pass). */
#define ECP_POOL_MAX_THREADS 256
typedef struct ecp_pool ecp_pool;
ecp_status ecp_pool_create(int threads, ecp_pool **out, ecp_error *err);
void ecp_pool_free(ecp_pool *p);
int ecp_pool_threads(const ecp_pool *p); /* 1 for NULL */
void ecp_pool_run(ecp_pool *p, void (*fn)(void *arg, int chunk), void *arg, int n);

/* String -> index map over borrowed keys (src/core/strmap.c), sized at init for at most n keys. */
typedef struct {
    const char **key;
    long *val;
    size_t cap, n, max;
    uint64_t seed[2];
} ecp_strmap;
ecp_status ecp_strmap_init(ecp_strmap *m, size_t n, const char *what, ecp_error *err);
void ecp_strmap_release(ecp_strmap *m);
long ecp_strmap_get(const ecp_strmap *m, const char *key); /* -1 if absent */
/* Adds key -> val unless key is present; returns the value now stored (-1 if full). */
long ecp_strmap_put(ecp_strmap *m, const char *key, long val);

/* Reads a whole file into memory (for parsers that want random access). */
ecp_status ecp_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                         ecp_error *err);
/* A file read through zlib, gzip-compressed or plain: open, read exactly what the header says
 * (*got < n only at the end of the data), close (which reports a truncated stream). Reading in
 * pieces lets a parser check its header's sizes against the memory budget before it
 * decompresses anything. */
ecp_status ecp_gz_open(const char *path, void **gz, ecp_error *err);
ecp_status ecp_gz_read(void *gz, const char *path, void *buf, size_t n, size_t *got,
                       ecp_error *err);
ecp_status ecp_gz_close(void *gz, const char *path, ecp_error *err);
/* 1 when the stream is a plain file read as it is, 0 when zlib decompresses it. */
int ecp_gz_direct(void *gz);
/* A regular file opened for reading (with pread). */
ecp_status ecp_open_read(const char *path, int *fd, ecp_error *err);
/* An unnamed temporary file in $TMPDIR (else /tmp), gone when closed. */
ecp_status ecp_temp_fd(int *fd, ecp_error *err);
/* All n bytes to fd, naming `what` on failure (a full disk included). */
ecp_status ecp_write_fd(int fd, const char *what, const void *buf, size_t n, ecp_error *err);
/* n bytes at off (*got < n only at the end of the file). */
ecp_status ecp_pread_full(int fd, const char *path, void *buf, size_t n, int64_t off,
                          size_t *got, ecp_error *err);
/* IDX files (idx.c): every check of ecp_idx_read, reading the data through without keeping
 * them. When copy_fd >= 0 and the file is gzip-compressed, the values go to copy_fd and
 * *copied is set to 1 (else 0). */
ecp_status ecp_idx_check(const char *path, int *ndim, int64_t dims[4], int copy_fd, int *copied,
                         ecp_error *err);

/* Datasets whose rows stay on disk or are another dataset's rows in another order (rows.c):
 * d->rows is set and d->x (and d->y, and d->label of a view) are NULL. Code that walks the
 * rows asks for them a chunk at a time. */
void ecp_rows_free(ecp_rows *r);
/* Inputs n x feat stored from byte data_at of fd (-1: of path itself, opened here; else an
 * uncompressed copy, owned from the call on), esz bytes a value: 1 (IDX bytes, scaled to
 * [0, 1]), 4 or 8 (.npy float32, float64). label (classes) or y (targets), checked and in
 * memory, become the dataset's on success. Every row is read when asked for, one pread each,
 * and checked as the in-memory loaders check whole files (finite, within float32). */
ecp_status ecp_dataset_file_rows(const char *path, int fd, int64_t data_at, int esz,
                                 int64_t n, int feat, int n_out, int32_t *label, float *y,
                                 ecp_dataset **out, ecp_error *err);
/* The header of a .npy file (out->data NULL) with its size checks, and the file open for
 * reading its rows from byte *data_at. */
ecp_status ecp_npy_open(const char *path, ecp_npy *out, int *fd, int64_t *data_at,
                        ecp_error *err);
/* Rows idx[0..n) of base (idx has at least n entries; the view owns it from the call on, even
 * on failure), fetched chunk_bytes of inputs at a time; base must outlive the view. */
ecp_status ecp_dataset_view(const ecp_dataset *base, int64_t *idx, int64_t n, size_t chunk_bytes,
                            ecp_dataset **out, ecp_error *err);
/* The chunk the memory bound allows for calib passes: 16 MiB of inputs. */
#define ECP_CHUNK_BYTES ((size_t)16 << 20)
/* Rows per ecp_dataset_rows call: all of them for a dataset in memory, else the chunk (a
 * multiple of 1024, so of every calibration batch, unless it holds every row). */
int64_t ecp_dataset_chunk_rows(const ecp_dataset *d);
/* Rows [at, at + n) of d (n <= ecp_dataset_chunk_rows) as an in-memory dataset *view of n rows,
 * pointing into d or into d's fetch buffer (valid until the next call on d); not
 * thread-safe. */
ecp_status ecp_dataset_rows(const ecp_dataset *d, int64_t at, int64_t n, ecp_dataset *view,
                            ecp_error *err);
/* Rows idx[0..n) of d (in memory or not) into x (n x n_in) and label or y. */
ecp_status ecp_dataset_gather(const ecp_dataset *d, const int64_t *idx, int64_t n, float *x,
                              float *y, int32_t *label, ecp_error *err);

/* log(sum_j exp(y_j)), stable for any logits. */
double ecp_log_sum_exp(const float *y, int k);
/* p = softmax(y) over k logits (p may be y). */
void ecp_softmax(const float *y, int k, float *p);

/* An activation and its derivative in double, for the oracles that need more than float. */
double ecp_act_eval_d(ecp_act a, const float *p, double x, double *deriv);

/* ecp_dataset_validate naming the inputs' and the targets' files apart. */
ecp_status ecp_dataset_validate_files(const ecp_dataset *d, const char *xwhat, const char *ywhat,
                                      ecp_error *err);
/* Online cores, capped at 256. */
int ecp_online_cores(void);
/* Sets OpenBLAS's thread count to threads (0 = every online core) and returns the previous
 * count, to be put back with ecp_blas_threads_pop when the call returns. */
int ecp_blas_threads_push(int threads);
void ecp_blas_threads_pop(int prev);

int ecp_file_exists(const char *path);
int ecp_dir_exists(const char *path);
ecp_status ecp_mkdir_p(const char *path, ecp_error *err);

/* Sums across processes (src/core/dist.c). Call ecp_dist_agree right before them, so a rank
 * that failed is known to all before any waits in a sum. In place, over MPI_COMM_WORLD. */
ecp_status ecp_dist_sum(double *buf, size_t n, ecp_error *err);
/* Float sums (training gradients), one MPI_Allreduce per bucket of at most `bucket` floats
 * (0: as few as MPI's int counts allow). */
ecp_status ecp_dist_sum_f32(float *buf, size_t n, size_t bucket, ecp_error *err);

#endif
