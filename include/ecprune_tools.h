/*
 * ecprune tool support: what the ecprune command-line tool is built from beyond the core API of
 * ecprune.h. Useful to embedders who want the same conveniences; not needed to train, prune or
 * run a model. The conventions of ecprune.h (errors, NULL, threads) hold here too.
 */
#ifndef ECPRUNE_TOOLS_H
#define ECPRUNE_TOOLS_H

#include "ecprune.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ time, progress */

double ecp_now(void); /* monotonic seconds */

/* A one-line progress display on stderr; silent unless stderr is a terminal (or forced). */
typedef struct ecp_progress ecp_progress;
ecp_status ecp_progress_create(ecp_progress **out, const char *label, int64_t total, ecp_error *err);
void ecp_progress_update(ecp_progress *p, int64_t done, const char *extra); /* extra may be NULL */
void ecp_progress_finish(ecp_progress *p); /* clears the line */
void ecp_progress_free(ecp_progress *p);
/* When fn is set it replaces the terminal line (see ecp_progress_fn in ecprune.h). */
void ecp_progress_set_callback(ecp_progress *p, ecp_progress_fn fn, void *ctx);

/* The name among names[0..n) closest to word (edit distance 1 for words of up to 4 letters,
 * else 2), or NULL: for "did you mean" hints. */
const char *ecp_closest_name(const char *word, const char *const *names, int n);

/* ------------------------------------------------------------------ files */

/* Writes go to PATH.tmp.XXXXXX and are renamed onto PATH only on commit, so a failed or
 * interrupted write never leaves a partial output file behind. */
typedef struct {
    void *fp; /* FILE*, kept opaque so that this header does not need <stdio.h> */
    char *path;
    char *tmp;
} ecp_wfile;
ecp_status ecp_wfile_open(ecp_wfile *wf, const char *path, ecp_error *err);
/* Whether PATH may be written: it is missing (in an existing directory), a regular file, or a
 * symbolic link to a regular file (followed: the file it points to is replaced and the link
 * stays). Anything else (a device, FIFO, socket, directory, dangling link) is refused, so that
 * callers can check their outputs before the work starts; ecp_wfile_open checks it again. */
ecp_status ecp_output_check(const char *path, ecp_error *err);
ecp_status ecp_wfile_write(ecp_wfile *wf, const void *data, size_t n, ecp_error *err);
ecp_status ecp_wfile_commit(ecp_wfile *wf, ecp_error *err); /* closes, renames, frees */
void ecp_wfile_abort(ecp_wfile *wf);                        /* closes, unlinks, frees */

/* Cache directory for named datasets: $ECPRUNE_CACHE, else $XDG_CACHE_HOME/ecprune, else
 * $HOME/.cache/ecprune. Created if missing. */
ecp_status ecp_cache_dir(char *buf, size_t n, ecp_error *err);

/* ------------------------------------------------------------------ diffusion–sorption */

typedef struct {
    int n_c0;          /* values of c0 in [c0_min, c0_max]: 40 */
    double c0_min, c0_max;
    int cells;         /* finite-volume cells: 256 */
    int n_times;       /* saved times in [0, t_end]: 101 */
    double t_end;      /* 500 */
    int64_t n_train;   /* training points subsampled from the solutions: 20,000 */
    int64_t n_test;    /* test points: 5,000 */
    double noise;      /* nu: Gaussian noise of std nu*std(u) on training targets */
    uint64_t seed;
    int progress;
} ecp_diffsorp_opts;
void ecp_diffsorp_opts_default(ecp_diffsorp_opts *o);
/* Solves the PDE for every c0 and writes train_x/train_y/test_x/test_y.npy into dir. */
ecp_status ecp_diffsorp_generate(const ecp_diffsorp_opts *o, const char *dir, ecp_error *err);
/* The solution from u(x, 0) = c0 with o's cells, t_end and n_times (the other fields unused):
 * u receives n_times x cells values, u[k * cells + i] at t = t_end k / (n_times - 1) and
 * x = (i + 0.5) / cells. */
ecp_status ecp_diffsorp_profile(const ecp_diffsorp_opts *o, double c0, double *u,
                                ecp_error *err);

/* ------------------------------------------------------------------ sparse engine tuning */

/* Break-even densities: the fraction of weights kept below which the sparse kernel is faster
 * than OpenBLAS, for batch 1 on a layer that fits in L2 (dense size <= 2 MB), batch 1 on a
 * larger (memory-bound) layer, and batches > 1. */
typedef struct {
    double b1_small, b1_large, bn;
    int threads;   /* thread count the numbers were measured with (0 = defaults, not measured) */
} ecp_sparse_tune_result;

/* Times dense and sparse kernels on synthetic layers and bisects the break-even densities
 * (a few seconds). threads as in ecp_sparse_opts; the caller sets OpenBLAS's own count. */
ecp_status ecp_sparse_tune(int threads, ecp_sparse_tune_result *out, ecp_error *err);
/* The cache file ECP_CACHE/sparse_tune.txt: save writes it atomically; load fills the built-in
 * defaults and returns ECP_ERR_IO / ECP_ERR_FORMAT when the file is missing / bad. */
ecp_status ecp_sparse_tune_save(const ecp_sparse_tune_result *r, ecp_error *err);
ecp_status ecp_sparse_tune_load(ecp_sparse_tune_result *r, ecp_error *err);
void ecp_sparse_tune_default(ecp_sparse_tune_result *r);

/* ------------------------------------------------------------------ processes (MPI) */

/* Under mpirun, the calibration statistics of pruning are summed over processes: each takes a
 * contiguous share of the calibration batches. ecp_dist_init starts MPI only when the process
 * was started by mpirun (otherwise it does nothing and the process is rank 0 of 1); until it is
 * called the library never uses MPI. Every rank must then call the library's functions in the
 * same order with the same arguments and data. */
ecp_status ecp_dist_init(int *argc, char ***argv, ecp_error *err);
void ecp_dist_finalize(void);
int ecp_dist_rank(void);
int ecp_dist_size(void);
/* Processes of this job on this machine (to share its cores); 1 without MPI. */
int ecp_dist_local_size(void);
/* BLAS threads for a rank when the user sets none: the machine's cores shared among the ranks
 * on it; 0 (every core) without MPI. */
int ecp_dist_default_threads(void);
/* Collective: returns ECP_OK when s is ECP_OK on every rank; otherwise every rank returns the
 * status and message (in err) of the lowest failing rank. After a failure it returns that error
 * at once, without waiting for the others. */
ecp_status ecp_dist_agree(ecp_status s, ecp_error *err);
/* This rank's contiguous share [lo, hi) of n items (all of them without MPI). */
void ecp_dist_shard(int64_t n, int64_t *lo, int64_t *hi);
/* Collective: *v becomes its largest value over the ranks (nothing without MPI). */
ecp_status ecp_dist_max(double *v, ecp_error *err);
/* Collective: root's bytes to every rank (nothing without MPI). */
ecp_status ecp_dist_bcast(void *buf, size_t bytes, int root, ecp_error *err);
/* on = 1: until ecp_dist_solo(0), this process works alone (rank 0 of 1, no collectives) while
 * the other ranks do other work (whole sweep rows). Returns the previous setting. */
int ecp_dist_solo(int on);

#ifdef __cplusplus
}
#endif
#endif
