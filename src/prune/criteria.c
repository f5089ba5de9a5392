/* The pruning criteria: one function per method, all fed by the same statistics pass, and the
 * table that names them. Adding a criterion is one function and one row.
 * Scores are "cost of removal": the smallest go first. */
#include "prune.h"
#include <math.h>

#define W_(m, l, i) ((double)(m)->layer[l].W[i])

/* EC (METHOD.md): I = w^2 (m2 - m1^2/m0) / N and delta* = w (m1/m0 + c_j), with the moments
 * taken around c_j. A neuron that never reaches the output (m0 = 0) costs nothing to change. */
static void crit_ec(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng, double *score,
                    double *comp)
{
    int ni = st->n_in[l], no = st->n_out[l];
    double N = (double)st->n;
    for (int i = 0; i < no; i++) {
        double m0 = st->m0[l][i];
        for (int j = 0; j < ni; j++) {
            size_t k = (size_t)i * ni + j;
            double w = W_(m, l, k);
            if (!(m0 > 0)) {
                score[k] = 0;
                comp[k] = 0;
                continue;
            }
            double m1 = st->m1[l][k], var = st->m2[l][k] - m1 * m1 / m0;
            score[k] = w * w * (var > 0 ? var : 0) / N;
            comp[k] = w * (m1 / m0 + st->shift[l][j]);
        }
    }
}

/* OBD: 1/2 w^2 H_ww with the Gauss-Newton diagonal H_ww = (1/N) sum_n s_i a_j^2, i.e. EC's
 * uncompensated cost with the loss sensitivity (so EC vs OBD isolates the compensation). */
static void crit_obd(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng, double *score,
                     double *comp)
{
    int ni = st->n_in[l], no = st->n_out[l];
    double N = (double)st->n;
    for (int i = 0; i < no; i++)
        for (int j = 0; j < ni; j++) {
            size_t k = (size_t)i * ni + j;
            double c = st->shift[l][j], w = W_(m, l, k);
            /* sum s a^2 = sum s (a-c)^2 + 2c sum s (a-c) + c^2 sum s */
            double m2 = st->m2[l][k] + 2 * c * st->m1[l][k] + c * c * st->m0[l][i];
            score[k] = 0.5 * w * w * (m2 > 0 ? m2 : 0) / N;
        }
}

static void crit_random(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng, double *score,
                        double *comp)
{
    size_t n = (size_t)st->n_in[l] * st->n_out[l];
    for (size_t k = 0; k < n; k++)
        score[k] = ecp_rng_uniform(rng);
}

static void crit_magnitude(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng,
                           double *score, double *comp)
{
    size_t n = (size_t)st->n_in[l] * st->n_out[l];
    for (size_t k = 0; k < n; k++)
        score[k] = fabs(W_(m, l, k));
}

/* Magnitude selection, then the quantisation-style bias correction delta = w mean(a_j). */
static void crit_magnitude_bc(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng,
                              double *score, double *comp)
{
    int ni = st->n_in[l], no = st->n_out[l];
    double N = (double)st->n;
    crit_magnitude(m, st, l, rng, score, comp);
    for (int i = 0; i < no; i++)
        for (int j = 0; j < ni; j++) {
            size_t k = (size_t)i * ni + j;
            comp[k] = W_(m, l, k) * (st->sa[l][j] / N + st->shift[l][j]);
        }
}

static void crit_gradient(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng,
                          double *score, double *comp)
{
    size_t n = (size_t)st->n_in[l] * st->n_out[l];
    for (size_t k = 0; k < n; k++)
        score[k] = st->g1[l][k] / (double)st->n;
}

static void crit_taylor(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng, double *score,
                        double *comp)
{
    size_t n = (size_t)st->n_in[l] * st->n_out[l];
    for (size_t k = 0; k < n; k++) {
        double w = W_(m, l, k);
        score[k] = w * w * st->g2[l][k] / (double)st->n;
    }
}

/* Wanda: |w| ||a_j||_2 over the calibration set. */
static void crit_wanda(const ecp_mlp *m, const ecp_stats *st, int l, ecp_rng *rng, double *score,
                       double *comp)
{
    int ni = st->n_in[l], no = st->n_out[l];
    double N = (double)st->n;
    for (int j = 0; j < ni; j++) {
        double c = st->shift[l][j];
        double s2 = st->sa2[l][j] + 2 * c * st->sa[l][j] + N * c * c;
        double norm = sqrt(s2 > 0 ? s2 : 0);
        for (int i = 0; i < no; i++) {
            size_t k = (size_t)i * ni + j;
            score[k] = fabs(W_(m, l, k)) * norm;
        }
    }
}

static const ecp_method methods[] = {
    {"ec", ECP_NEED_MOMENTS, -1, 1, crit_ec,
     "elimination-compensation: output deviation left after the optimal bias shift", 0},
    {"ec-exact", ECP_NEED_MOMENTS, -1, 1, crit_ec,
     "EC with the true (non-linear) deviation minimised per weight: slow, small networks", 0},
    {"random", 0, -1, 0, crit_random, "uniform random scores (seeded)", 0},
    {"magnitude", 0, -1, 0, crit_magnitude, "|w|", 0},
    {"magnitude-bc", ECP_NEED_COLS, -1, 1, crit_magnitude_bc,
     "|w|, then bias correction by the plain input mean", 0},
    {"gradient", ECP_NEED_GRAD, -1, 0, crit_gradient, "mean per-sample |dloss/dw|", 0},
    {"taylor", ECP_NEED_GRAD, -1, 0, crit_taylor, "mean per-sample (w dloss/dw)^2", 0},
    {"obd", ECP_NEED_MOMENTS, ECP_SENS_LOSS, 0, crit_obd,
     "optimal brain damage, Gauss-Newton diagonal (= EC loss without compensation)", 0},
    {"wanda", ECP_NEED_COLS, -1, 0, crit_wanda, "|w| times the input norm", 0},
    {"sparsegpt", 0, -1, 0, NULL,
     "OBS as published by SparseGPT: same sparsity per layer, even split over 128-column "
     "blocks", 1},
    {"obs", 0, -1, 0, NULL,
     "optimal brain surgeon (SparseGPT's sweep): kept weights and bias re-fitted per row", 1},
    {"ec-obs", 0, -1, 0, NULL,
     "OBS with samples weighted by EC's sensitivity and EC's global per-layer allocation", 1},
};
#define N_METHODS ((int)(sizeof methods / sizeof *methods))

const ecp_method *ecp_method_find(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

const char *ecp_prune_method_name(int i) { return i >= 0 && i < N_METHODS ? methods[i].name : NULL; }
int ecp_prune_method_exists(const char *name) { return ecp_method_find(name) != NULL; }

int ecp_prune_method_reconstructs(const char *name)
{
    const ecp_method *me = ecp_method_find(name);
    return me && me->reconstructs;
}

int ecp_prune_method_compensates(const char *name)
{
    const ecp_method *me = ecp_method_find(name);
    return me && me->compensates;
}

static const char *const sens_names[] = {"output", "probe", "loss"};

const char *ecp_sens_name(ecp_sens s) { return (unsigned)s < 3 ? sens_names[s] : "?"; }

ecp_status ecp_sens_parse(const char *name, ecp_sens *out, ecp_error *err)
{
    ECP_REQUIRE(name, err);
    ECP_REQUIRE(out, err);
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, sens_names[i])) {
            *out = (ecp_sens)i;
            return ECP_OK;
        }
    return ecp_fail(err, ECP_ERR_ARG, "sens '%s': choose output, probe or loss", name);
}

void ecp_scores_free(ecp_scores *s)
{
    if (!s)
        return;
    for (int l = 0; l < s->n_layers; l++) {
        if (s->score) free(s->score[l]);
        if (s->comp) free(s->comp[l]);
    }
    free(s->score);
    free(s->comp);
    free(s);
}

static ecp_status scores_alloc(const ecp_mlp *m, int with_comp, ecp_scores **out, ecp_error *err)
{
    ecp_scores *s = ecp_zalloc(1, sizeof *s, "scores", err);
    if (!s)
        return ECP_ERR_MEMORY;
    s->n_layers = m->n_layers;
    s->score = ecp_zalloc((size_t)m->n_layers, sizeof(double *), "scores", err);
    s->comp = ecp_zalloc((size_t)m->n_layers, sizeof(double *), "scores", err);
    if (!s->score || !s->comp)
        goto fail;
    for (int l = 0; l < m->n_layers; l++) {
        size_t n = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        if (!(s->score[l] = ecp_zalloc(n, sizeof(double), "scores", err)))
            goto fail;
        if (with_comp && !(s->comp[l] = ecp_zalloc(n, sizeof(double), "scores", err)))
            goto fail;
    }
    if (!with_comp) {
        free(s->comp);
        s->comp = NULL;
    }
    *out = s;
    return ECP_OK;
fail:
    ecp_scores_free(s);
    return ECP_ERR_MEMORY;
}

ecp_status ecp_prune_scores(const ecp_mlp *m, const ecp_dataset *calib, const char *method,
                            ecp_sens sens, int probes, uint64_t seed, ecp_scores **out,
                            ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(calib, err);
    const ecp_method *me = ecp_method_find(method ? method : "(null)");
    if (!me)
        return ecp_fail(err, ECP_ERR_ARG,
                        "method '%s': unknown (choose ec, ec-exact, random, magnitude, "
                        "magnitude-bc, gradient, taylor, obd, wanda, sparsegpt, obs, ec-obs)", method);
    if (me->sens_fixed >= 0)
        sens = (ecp_sens)me->sens_fixed;
    ecp_stats *st = NULL;
    ecp_scores *sc = NULL;
    ecp_status s;
    if ((s = scores_alloc(m, me->compensates, &sc, err)))
        goto done;
    if (me->reconstructs) {
        /* Their saliency on the network as it is, for a global allocation and --dump-scores;
         * pruning with them re-fits layer by layer instead (ecp_obs_step). */
        if ((s = ecp_obs_scores(m, calib, me->name, sens, probes, seed, sc->score, err)))
            goto done;
    } else {
        if ((s = ecp_stats_compute(m, calib, me->need, sens, probes, seed, &st, err)))
            goto done;
        ecp_rng rng;
        ecp_rng_seed(&rng, seed ^ 0x2a2a2a2aULL);
        for (int l = 0; l < m->n_layers; l++)
            me->fn(m, st, l, &rng, sc->score[l], sc->comp ? sc->comp[l] : NULL);
    }
    if (!strcmp(me->name, "ec-exact")) {
        ecp_scores *ex;
        if ((s = scores_alloc(m, 1, &ex, err)))
            goto done;
        ecp_dataset *mem = NULL; /* the oracle walks every sample at once */
        if (calib->rows && !(s = ecp_dataset_copy(calib, &mem, err)))
            calib = mem;
        if (s || (s = ecp_exact_scores(m, calib, sc, ex, 1, err))) {
            ecp_dataset_free(mem);
            ecp_scores_free(ex);
            goto done;
        }
        ecp_dataset_free(mem);
        ecp_scores_free(sc);
        sc = ex;
    }
    /* Already-pruned weights are never candidates again. */
    for (int l = 0; l < m->n_layers; l++) {
        size_t n = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        for (size_t k = 0; k < n; k++)
            if (m->layer[l].pruned[k]) {
                sc->score[l][k] = INFINITY;
                if (sc->comp)
                    sc->comp[l][k] = 0;
            }
    }
    *out = sc;
    sc = NULL;
done:
    ecp_scores_free(sc);
    ecp_stats_free(st);
    return s;
}
