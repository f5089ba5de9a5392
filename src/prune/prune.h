/* Internal interfaces of the pruning module: statistics, criteria, selection. */
#ifndef ECP_PRUNE_H
#define ECP_PRUNE_H
#include "../internal.h"

/* What a criterion needs from the calibration pass. */
enum {
    ECP_NEED_MOMENTS = 1, /* m0, M1, M2 of the sensitivity-weighted inputs (ec, obd) */
    ECP_NEED_GRAD = 2,    /* per-sample loss-gradient products (gradient, taylor) */
    ECP_NEED_COLS = 4     /* per-input sums of a and a^2 (magnitude-bc, wanda) */
};

/* Streaming statistics of one pass over the calibration set, per layer l (n_out x n_in):
 *   m0[i]    = sum_n s_i(x_n)
 *   m1[i,j]  = sum_n s_i (a_j - c_j),   m2[i,j] = sum_n s_i (a_j - c_j)^2
 *   sa[j]    = sum_n (a_j - c_j),       sa2[j]  = sum_n (a_j - c_j)^2
 *   g1[i,j]  = sum_n |dl_n/dz_i| |a_j|, g2[i,j] = sum_n (dl_n/dz_i)^2 a_j^2
 * c_j is the mean of a_j over the first batch: the moments are accumulated around it because
 * m2 - m1^2/m0 cancels catastrophically when the variance is small against the mean squared. */
typedef struct {
    int n_layers;
    int64_t n;
    int need;
    ecp_sens sens;
    int *n_in, *n_out;
    float **shift;
    double **m0, **m1, **m2;
    double **sa, **sa2;
    double **g1, **g2;
} ecp_stats;

ecp_status ecp_stats_compute(const ecp_mlp *m, const ecp_dataset *calib, int need, ecp_sens sens,
                             int probes, uint64_t seed, ecp_stats **out, ecp_error *err);
void ecp_stats_free(ecp_stats *st);
/* Samples per batch of the calibration passes: a float product sums at most this many terms
 * before it is added into a double accumulator. */
#define ECP_STATS_BATCH 256

/* Cross-entropy's sensitivity from its two sums, S = sum_k p_k J_k^2 and S1 = sum_k p_k J_k:
 * S - S1^2 (the Gauss-Newton form J^T (diag p - p p^T) J), >= 0 but for rounding. */
static inline void ecp_xent_fold(float *S, const float *S1, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = S[i] - S1[i] * S1[i];
        S[i] = v > 0 ? v : 0.0f;
    }
}
/* stats_sparse.c: ecp_stats_compute's pass for the output and loss sensitivities, skipping the
 * exact zeros. Fills st->shift, m0, m1, m2, sa, sa2 (allocated and zeroed by the caller). */
ecp_status ecp_stats_sparse(const ecp_mlp *m, const ecp_dataset *calib, ecp_sens sens,
                            ecp_stats *st, ecp_error *err);

/* One criterion: fills score (and comp, when not NULL) of layer l from the statistics. */
typedef void (*ecp_criterion_fn)(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng,
                                 double *score, double *comp);

typedef struct {
    const char *name;
    int need;         /* ECP_NEED_* */
    int sens_fixed;   /* -1: the user's --sensitivity; else the ecp_sens it always uses */
    int compensates;
    ecp_criterion_fn fn; /* NULL for the reconstruction methods */
    const char *summary;
    int reconstructs; /* obs, ec-obs: src/prune/obs.c prunes and re-fits layer by layer */
} ecp_method;

const ecp_method *ecp_method_find(const char *name);

/* ec-exact: minimises the true mean squared output deviation over delta for every weight. */
ecp_status ecp_exact_scores(const ecp_mlp *m, const ecp_dataset *calib, const ecp_scores *lin,
                            ecp_scores *out, int progress, ecp_error *err);

/* Selects weights to reach `target` pruned weights in total (global) or per layer, applies
 * W = 0, the mask and the compensation. */
ecp_status ecp_select_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                            double sparsity, ecp_prune_report *rep, ecp_error *err);
/* The same with explicit per-layer counts: layer l ends with targets[l] pruned weights
 * (targets[l] < 0: layer l is left alone). targets == NULL: ecp_select_apply. */
ecp_status ecp_select_targets(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                              double sparsity, const int64_t *targets, ecp_prune_report *rep,
                              ecp_error *err);
/* Weights of the layers that o allows to prune. */
int64_t ecp_prunable_weights(const ecp_mlp *m, const ecp_prune_opts *o);
/* Fills rep from the model as it is now (per-layer counts, neurons left with no input). */
void ecp_report_fill(const ecp_mlp *m, int64_t prunable, int guarded, ecp_prune_report *rep);

/* The schedule shared by weight and neuron pruning: the target of step t (cubic over
 * o->steps, Zhu & Gupta 2017) and the fine-tuning after it. */
double ecp_schedule_target(const ecp_prune_opts *o, int t);
ecp_status ecp_schedule_finetune(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                                 int t, ecp_error *err);

/* Per-layer pruned counts at `sparsity`: uniform (the same fraction per layer), or those of a
 * global selection by o->allocation_method on a copy of m. Excluded layers get -1. */
ecp_status ecp_prune_allocate(const ecp_mlp *m, const ecp_dataset *calib,
                              const ecp_prune_opts *o, double sparsity, uint64_t seed,
                              int64_t *targets, ecp_error *err);

/* One step of a reconstruction method (obs.c): layer by layer, H from the calibration inputs
 * propagated through the layers already pruned, then OBS's column sweep on [W | b]. */
ecp_status ecp_obs_step(ecp_mlp *m, const ecp_dataset *calib, const ecp_prune_opts *o,
                        double sparsity, uint64_t seed, ecp_error *err);
/* Reconstructs layer l alone to `target` pruned weights (its already-pruned weights stay
 * pruned: with target equal to their count, the re-fit of a fixed mask). orig: the network
 * before pruning, whose outputs of layer l are the target (NULL: layer l's own outputs on the
 * inputs it sees now). */
ecp_status ecp_obs_layer(ecp_mlp *m, const ecp_mlp *orig, const ecp_dataset *calib, int l,
                         int64_t target, const ecp_prune_opts *o, uint64_t seed, ecp_error *err);
/* OBS's saliency of every weight (score[l]: n_out x n_in); see obs.c. */
ecp_status ecp_obs_scores(const ecp_mlp *m, const ecp_dataset *calib, const char *method,
                          ecp_sens sens, int probes, uint64_t seed, double **score,
                          ecp_error *err);
/* One step of a scoring method with sequential statistics (the scores of layer l recomputed
 * after the layers before it are pruned and compensated). */
ecp_status ecp_sequential_step(ecp_mlp *m, const ecp_dataset *calib, const ecp_prune_opts *o,
                               double sparsity, uint64_t seed, ecp_prune_report *rep,
                               ecp_error *err);

/* The forward (and, if with_sens, sensitivity) pass of ecp_stats_compute, one batch at a time,
 * for callers that need per-sample values. The model may change between runs (not its sizes). */
typedef struct ecp_calib_pass ecp_calib_pass;
ecp_status ecp_calib_pass_create(const ecp_mlp *m, int max_batch, int with_sens, ecp_sens sens,
                                 int probes, ecp_loss lk, uint64_t seed, ecp_calib_pass **out,
                                 ecp_error *err);
void ecp_calib_pass_run(ecp_calib_pass *p, const float *x, int b);
/* The same from layer l's inputs a (b x sizes[l]): only layers >= l are run, and only their
 * activations and sensitivities are then valid. */
void ecp_calib_pass_run_from(ecp_calib_pass *p, int l, const float *a, int b);
/* Advances the probe generator past n samples, as running them would (the samples of the
 * processes before this one). */
void ecp_calib_pass_skip(ecp_calib_pass *p, int64_t n);
const float *ecp_calib_pass_act(const ecp_calib_pass *p, int l);  /* b x sizes[l] */
const float *ecp_calib_pass_sens(const ecp_calib_pass *p, int l); /* b x sizes[l+1] or NULL */
/* Only the sensitivities of layers >= l are wanted (the backward passes stop there); those
 * below read NULL. */
void ecp_calib_pass_from(ecp_calib_pass *p, int l);
void ecp_calib_pass_free(ecp_calib_pass *p);

/* The N:M selection (o->nm_n of every o->nm_m consecutive inputs of a row kept, the lowest
 * scores removed and compensated); records the pattern in the model. */
ecp_status ecp_select_nm(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                         ecp_prune_report *rep, ecp_error *err);

/* Structured reconstruction (structured_refit.c): with keep[h][j] = 0 for the neurons to
 * remove, zeroes their rows and re-fits every layer downstream of the first shrunk one by least
 * squares to the outputs of the network as it was (the removed columns end zero and pruned). */
ecp_status ecp_neuron_refit(ecp_mlp *m, const ecp_dataset *calib, uint8_t *const *keep,
                            const ecp_prune_opts *o, uint64_t seed, ecp_error *err);

#endif
