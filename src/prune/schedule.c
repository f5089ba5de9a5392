/* Schedules: one-shot, or T steps on the cubic schedule of Zhu & Gupta (2017) with the
 * statistics recomputed on the masked network at every step, and optional fine-tuning (mask
 * enforced by the optimiser, biases trainable) after every step. */
#include "prune.h"
#include <math.h>

void ecp_prune_opts_default(ecp_prune_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->method = "ec";
    o->sens = ECP_SENS_OUTPUT;
    o->probes = 16;
    o->sparsity = 0.9;
    o->steps = 1;
    o->calib = 2000;
    o->seed = 1;
    ecp_train_opts_default(&o->finetune);
    o->finetune.progress = 0;
    o->allocation = ECP_ALLOC_AUTO;
    o->weighting = ECP_OBSW_RANK1;
    o->damping = 0.01;
}

/* Step t of T: s_t = s_f (1 - (1 - t/T)^3); one-shot is s_f. */
double ecp_schedule_target(const ecp_prune_opts *o, int t)
{
    if (o->steps == 1)
        return o->sparsity;
    double r = 1.0 - (double)t / o->steps;
    return o->sparsity * (1.0 - r * r * r);
}

/* The fine-tuning after step t (mask enforced by the optimiser), when asked for. */
ecp_status ecp_schedule_finetune(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                                 int t, ecp_error *err)
{
    if (o->finetune_epochs <= 0)
        return ECP_OK;
    ecp_train_opts to = o->finetune;
    to.epochs = o->finetune_epochs;
    to.seed = o->seed * 1000003ULL + (uint64_t)t;
    to.progress = o->progress;
    return ecp_train(m, train, &to, NULL, err);
}

/* The order of the calibration set: its samples are the first n of perm (train->n entries,
 * the training set shuffled by `seed`). */
static ecp_status calib_order(const ecp_dataset *train, int64_t n, uint64_t seed, int64_t **perm,
                              ecp_error *err)
{
    *perm = NULL;
    if (n < 1 || n > train->n)
        return ecp_fail(err, ECP_ERR_ARG, "calib %lld: must be between 1 and the %lld training "
                                          "samples", (long long)n, (long long)train->n);
    if (!(*perm = ecp_alloc((size_t)train->n, sizeof **perm, "calibration", err)))
        return ECP_ERR_MEMORY;
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    ecp_rng_permutation(&r, *perm, train->n);
    return ECP_OK;
}

/* The first `n` training samples after a shuffle seeded by `seed`. */
ecp_status ecp_prune_calib(const ecp_dataset *train, int64_t n, uint64_t seed,
                           ecp_dataset **out, ecp_error *err)
{
    ECP_REQUIRE(train, err);
    ECP_REQUIRE(out, err);
    int64_t *perm;
    ecp_status s = calib_order(train, n, seed, &perm, err);
    if (!s)
        s = ecp_dataset_subset(train, perm, n, out, err);
    free(perm);
    return s;
}

/* The same samples as a view of train: a pass copies (or reads from the files) a chunk of them
 * at a time, so memory does not grow with n. The order costs 8 bytes per training sample. */
static ecp_status calib_view(const ecp_dataset *train, int64_t n, uint64_t seed,
                             ecp_dataset **out, ecp_error *err)
{
    int64_t *perm;
    ecp_status s = calib_order(train, n, seed, &perm, err);
    return s ? s : ecp_dataset_view(train, perm, n, ECP_CHUNK_BYTES, out, err);
}

ecp_status ecp_prune(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                     ecp_prune_report *rep, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(train, err);
    ECP_REQUIRE(o, err);
    ecp_prune_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (!ecp_method_find(o->method))
        return ecp_fail(err, ECP_ERR_ARG,
                        "method '%s': unknown (choose ec, ec-exact, random, magnitude, "
                        "magnitude-bc, gradient, taylor, obd, wanda, sparsegpt, obs, ec-obs)",
                        o->method ? o->method : "(null)");
    if (o->nm_m > 0 && (ecp_method_find(o->method)->reconstructs || o->sequential))
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "pattern %d:%d: not with method '%s'%s (it "
                        "chooses its masks layer by layer)", o->nm_n, o->nm_m, o->method,
                        o->sequential ? " and sequential" : "");
    if (!(o->sparsity >= 0 && o->sparsity < 1))
        return ecp_fail(err, ECP_ERR_ARG, "sparsity %g: must be in [0, 1)", o->sparsity);
    if (o->steps < 1 || o->steps > 1000)
        return ecp_fail(err, ECP_ERR_ARG, "steps %d: must be in [1, 1000]", o->steps);
    if (o->finetune_epochs < 0)
        return ecp_fail(err, ECP_ERR_ARG, "finetune_epochs %d: must be >= 0", o->finetune_epochs);
    int any = 0;
    for (int l = 0; l < m->n_layers; l++)
        any |= l >= 64 || !((o->exclude_mask >> l) & 1); /* the mask names layers 0..63 */
    if (!any)
        return ecp_fail(err, ECP_ERR_ARG, "the model has no prunable layer (all excluded)");
    if (o->finetune_epochs > 0 && train->rows)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "finetune_epochs %d: fine-tuning needs the "
                        "training set in memory, not read on demand", o->finetune_epochs);
    ecp_status s = ecp_check_fit(m, train, "model", "data", err);
    if (s)
        return s;
    ecp_dataset *calib = NULL;
    if ((s = calib_view(train, o->calib, o->seed, &calib, err)))
        return s;
    int prev_threads = o->threads > 0 ? ecp_blas_threads_push(o->threads) : 0;
    double t0 = ecp_now();
    for (int t = 1; t <= o->steps && !s; t++) {
        double target = ecp_schedule_target(o, t);
        double ts = ecp_now();
        uint64_t seed = o->seed + (uint64_t)t;
        if (ecp_method_find(o->method)->reconstructs) {
            s = ecp_obs_step(m, calib, o, target, seed, err);
            if (!s)
                ecp_report_fill(m, ecp_prunable_weights(m, o), 0, rep);
        } else if (o->sequential) {
            s = ecp_sequential_step(m, calib, o, target, seed, rep, err);
        } else {
            ecp_scores *sc = NULL;
            s = ecp_prune_scores(m, calib, o->method, o->sens, o->probes, seed, &sc, err);
            if (!s)
                s = ecp_select_apply(m, sc, o, target, rep, err);
            ecp_scores_free(sc);
        }
        rep->stats_seconds += ecp_now() - ts;
        /* A finite model can still overflow a float bias with its compensation: say so here,
         * not when the file is written. */
        if (!s)
            s = ecp_mlp_check_finite(m, "the compensated model (a bias shift overflowed)", err);
        if (!s)
            s = ecp_schedule_finetune(m, train, o, t, err);
    }
    rep->seconds = ecp_now() - t0;
    ecp_blas_threads_pop(prev_threads);
    ecp_dataset_free(calib);
    return s;
}
