/* Structured (neuron) pruning, second half: select the neurons to remove (globally or per
 * hidden layer, never the last one of a layer), add their compensation to the downstream biases,
 * and shrink the model to a smaller dense network; and the one-shot / iterative schedule. */
#include "prune.h"
#include <math.h>

typedef struct {
    double score;
    int h, j;
} neuron_cand;

static int neuron_cmp(const void *pa, const void *pb)
{
    const neuron_cand *a = pa, *b = pb;
    if (a->score < b->score) return -1;
    if (a->score > b->score) return 1;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static int hidden_excluded(const ecp_prune_opts *o, int h)
{
    return h < 64 && ((o->exclude_mask >> h) & 1);
}

/* One layer's new arrays: rows kept by krow (NULL = all), columns by kcol (NULL = all). */
typedef struct {
    int n_in, n_out;
    float *W, *b;
    uint8_t *pruned;
} new_layer;

static ecp_status shrink_layer(const ecp_layer *Ly, const uint8_t *krow, const uint8_t *kcol,
                               new_layer *nl, ecp_error *err)
{
    nl->n_out = 0;
    nl->n_in = 0;
    for (int i = 0; i < Ly->n_out; i++)
        nl->n_out += !krow || krow[i];
    for (int j = 0; j < Ly->n_in; j++)
        nl->n_in += !kcol || kcol[j];
    size_t nw = (size_t)nl->n_in * nl->n_out;
    nl->W = ecp_alloc(nw, sizeof *nl->W, "smaller model", err);
    nl->b = ecp_alloc((size_t)nl->n_out, sizeof *nl->b, "smaller model", err);
    nl->pruned = ecp_alloc(nw, 1, "smaller model", err);
    if (!nl->W || !nl->b || !nl->pruned)
        return ECP_ERR_MEMORY;
    size_t q = 0;
    int r = 0;
    for (int i = 0; i < Ly->n_out; i++) {
        if (krow && !krow[i])
            continue;
        nl->b[r++] = Ly->b[i];
        for (int j = 0; j < Ly->n_in; j++)
            if (!kcol || kcol[j]) {
                nl->W[q] = Ly->W[(size_t)i * Ly->n_in + j];
                nl->pruned[q] = Ly->pruned[(size_t)i * Ly->n_in + j];
                q++;
            }
    }
    return ECP_OK;
}

ecp_status ecp_mlp_remove_neurons(ecp_mlp *m, uint8_t *const *keep, ecp_error *err)
{
    int L = m->n_layers;
    if (m->w0t)
        return ecp_fail(err, ECP_ERR_ARG, "neuron removal: the model is in its training layout");
    for (int h = 0; h + 1 < L; h++) {
        int k = 0;
        for (int j = 0; j < m->sizes[h + 1]; j++)
            k += keep[h][j] != 0;
        if (k == 0)
            return ecp_fail(err, ECP_ERR_ARG, "neuron removal: hidden layer %d would lose all "
                            "%d neurons (keep at least one)", h, m->sizes[h + 1]);
    }
    new_layer *nl = ecp_zalloc((size_t)L, sizeof *nl, "smaller model", err);
    int *nl_in_before = ecp_alloc((size_t)L, sizeof *nl_in_before, "smaller model", err);
    if (!nl || !nl_in_before) {
        free(nl);
        free(nl_in_before);
        return ECP_ERR_MEMORY;
    }
    for (int l = 0; l < L; l++)
        nl_in_before[l] = m->layer[l].n_in;
    ecp_status s = ECP_OK;
    for (int l = 0; l < L && !s; l++)
        s = shrink_layer(&m->layer[l], l + 1 < L ? keep[l] : NULL, l > 0 ? keep[l - 1] : NULL,
                         &nl[l], err);
    /* Swapped only once every allocation succeeded: a failure leaves the model as it was. */
    for (int l = 0; l < L; l++) {
        ecp_layer *Ly = &m->layer[l];
        if (!s) {
            float *W = Ly->W, *b = Ly->b;
            uint8_t *p = Ly->pruned;
            Ly->W = nl[l].W;
            Ly->b = nl[l].b;
            Ly->pruned = nl[l].pruned;
            Ly->n_in = nl[l].n_in;
            Ly->n_out = nl[l].n_out;
            m->sizes[l + 1] = nl[l].n_out;
            nl[l].W = W;
            nl[l].b = b;
            nl[l].pruned = p;
        }
        free(nl[l].W);
        free(nl[l].b);
        free(nl[l].pruned);
    }
    free(nl);
    /* Removed inputs shift the groups of the next layer: its N:M promise no longer holds. */
    for (int l = 1; l < L && !s && l < 64; l++)
        if (nl_in_before[l] != m->layer[l].n_in)
            m->nm_layers &= ~(1ULL << l);
    free(nl_in_before);
    if (!m->nm_layers)
        m->nm_n = m->nm_m = 0;
    return s;
}

/* Zeroes (and marks) what removing the neuron deletes, for the masked equivalent of the
 * smaller model: the neuron's incoming row, its bias and its outgoing column. */
static void mask_neuron(ecp_mlp *m, int h, int j)
{
    ecp_layer *U = &m->layer[h], *D = &m->layer[h + 1];
    for (int k = 0; k < U->n_in; k++) {
        U->W[(size_t)j * U->n_in + k] = 0;
        U->pruned[(size_t)j * U->n_in + k] = 1;
    }
    U->b[j] = 0;
    for (int i = 0; i < D->n_out; i++) {
        D->W[(size_t)i * D->n_in + j] = 0;
        D->pruned[(size_t)i * D->n_in + j] = 1;
    }
}

static void free_keep(uint8_t **keep, int H)
{
    if (keep)
        for (int h = 0; h < H; h++)
            free(keep[h]);
    free(keep);
}

/* Picks the neurons to remove into keep[h][j] = 0; returns the count of guard skips. */
static int select_neurons(const ecp_mlp *m, const ecp_neuron_scores *sc,
                          const ecp_prune_opts *o, double fraction, const int *orig,
                          neuron_cand *cs, uint8_t **keep, int *remaining)
{
    int H = m->n_layers - 1, guarded = 0;
    for (int pass = 0; pass < (o->scope_layer ? H : 1); pass++) {
        if (o->scope_layer && hidden_excluded(o, pass))
            continue;
        int64_t n = 0, pool = 0, gone = 0;
        for (int h = 0; h < H; h++) {
            if (hidden_excluded(o, h) || (o->scope_layer && h != pass))
                continue;
            pool += orig[h];
            gone += orig[h] - m->sizes[h + 1];
            for (int j = 0; j < m->sizes[h + 1]; j++) {
                double v = sc->score[h][j];
                cs[n++] = (neuron_cand){isnan(v) ? INFINITY : v, h, j};
            }
        }
        int64_t target = llround(fraction * (double)pool);
        qsort(cs, (size_t)n, sizeof *cs, neuron_cmp);
        for (int64_t c = 0; c < n && gone < target; c++) {
            if (remaining[cs[c].h] <= 1) {
                guarded++;
                continue;
            }
            keep[cs[c].h][cs[c].j] = 0;
            remaining[cs[c].h]--;
            gone++;
        }
    }
    return guarded;
}

/* What o->neuron_comp means for this method, with or without a calibration set. */
static ecp_status neuron_comp_resolve(const ecp_prune_opts *o, const ecp_neuron_scores *sc,
                                      const ecp_dataset *calib, ecp_neuron_comp *out,
                                      ecp_error *err)
{
    ecp_neuron_comp c = o->neuron_comp;
    if ((unsigned)c > ECP_NCOMP_REFIT)
        return ecp_fail(err, ECP_ERR_ARG, "neuron_comp %d: unknown", (int)c);
    if (c == ECP_NCOMP_AUTO)
        c = o->method && !strcmp(o->method, "ec") && calib ? ECP_NCOMP_REFIT
            : sc->comp ? ECP_NCOMP_BIAS : ECP_NCOMP_NONE;
    if (c == ECP_NCOMP_BIAS && !sc->comp)
        return ecp_fail(err, ECP_ERR_ARG, "compensation bias: method '%s' gives no bias shifts "
                        "(ec and mean-replacement do)", o->method ? o->method : "(null)");
    if (c == ECP_NCOMP_REFIT && !calib)
        return ecp_fail(err, ECP_ERR_ARG, "compensation refit needs the calibration set");
    *out = c;
    return ECP_OK;
}

ecp_status ecp_prune_neurons_apply(ecp_mlp *m, const ecp_neuron_scores *sc,
                                   const ecp_prune_opts *o, double fraction, const int *orig,
                                   int shrink, ecp_neuron_report *rep, ecp_error *err)
{
    return ecp_prune_neurons_apply_calib(m, sc, o, NULL, fraction, orig, shrink, rep, err);
}

ecp_status ecp_prune_neurons_apply_calib(ecp_mlp *m, const ecp_neuron_scores *sc,
                                         const ecp_prune_opts *o, const ecp_dataset *calib,
                                         double fraction, const int *orig, int shrink,
                                         ecp_neuron_report *rep, ecp_error *err)
{
    int H = m->n_layers - 1;
    if (H < 1)
        return ecp_fail(err, ECP_ERR_ARG, "neuron pruning: the model (%d-%d) has no hidden layer",
                        m->sizes[0], m->sizes[1]);
    if (!(fraction >= 0 && fraction < 1))
        return ecp_fail(err, ECP_ERR_ARG, "sparsity %g: the fraction of hidden neurons removed "
                        "must be in [0, 1)", fraction);
    if (sc->n_hidden != H)
        return ecp_fail(err, ECP_ERR_SHAPE, "neuron scores are for %d hidden layers, the model "
                        "has %d", sc->n_hidden, H);
    for (int h = 0; h < H; h++)
        if (sc->width[h] != m->sizes[h + 1] || sc->fan_out[h] != m->sizes[h + 2])
            return ecp_fail(err, ECP_ERR_SHAPE, "neuron scores of hidden layer %d are for another "
                            "model", h);
    ecp_neuron_comp comp = ECP_NCOMP_NONE;
    ecp_status rs = neuron_comp_resolve(o, sc, calib, &comp, err);
    if (rs)
        return rs;
    int any = 0;
    for (int h = 0; h < H; h++)
        any |= !hidden_excluded(o, h);
    if (!any)
        return ecp_fail(err, ECP_ERR_ARG, "neuron pruning: every hidden layer is excluded");
    int *cur = orig ? NULL : ecp_alloc((size_t)H, sizeof *cur, "neuron selection", err);
    int *remaining = ecp_alloc((size_t)H, sizeof *remaining, "neuron selection", err);
    uint8_t **keep = ecp_zalloc((size_t)H, sizeof *keep, "neuron selection", err);
    int64_t total = 0;
    for (int h = 0; h < H; h++)
        total += m->sizes[h + 1];
    neuron_cand *cs = ecp_alloc((size_t)total, sizeof *cs, "neuron selection", err);
    ecp_status s = ECP_OK;
    if ((!orig && !cur) || !remaining || !keep || !cs) {
        s = ECP_ERR_MEMORY;
        goto done;
    }
    for (int h = 0; h < H; h++) {
        remaining[h] = m->sizes[h + 1];
        if (cur)
            cur[h] = m->sizes[h + 1];
        if (!(keep[h] = ecp_alloc((size_t)m->sizes[h + 1], 1, "neuron selection", err))) {
            s = ECP_ERR_MEMORY;
            goto done;
        }
        memset(keep[h], 1, (size_t)m->sizes[h + 1]);
    }
    int guarded = select_neurons(m, sc, o, fraction, orig ? orig : cur, cs, keep, remaining);
    if (rep) {
        rep->n_hidden = H;
        rep->guarded += guarded;
        for (int h = 0; h < H; h++) {
            if (rep->before[h] == 0)
                rep->before[h] = orig ? orig[h] : m->sizes[h + 1];
            rep->after[h] = remaining[h];
        }
    }
    if (comp == ECP_NCOMP_REFIT &&
        (s = ecp_neuron_refit(m, calib, keep, o, o->seed ^ 0x5eedULL, err)))
        goto done;
    for (int h = 0; h < H; h++) {
        ecp_layer *D = &m->layer[h + 1];
        for (int j = 0; j < D->n_in; j++) {
            if (keep[h][j])
                continue;
            if (comp == ECP_NCOMP_BIAS)
                for (int i = 0; i < D->n_out; i++)
                    D->b[i] += (float)sc->comp[h][(size_t)i * D->n_in + j];
            if (!shrink)
                mask_neuron(m, h, j);
        }
    }
    if (shrink)
        s = ecp_mlp_remove_neurons(m, keep, err);
done:
    free(cs);
    free_keep(keep, H);
    free(remaining);
    free(cur);
    return s;
}

static ecp_status check_neuron_opts(const ecp_mlp *m, const ecp_prune_opts *o, ecp_error *err)
{
    if (!ecp_neuron_method_exists(o->method))
        return ecp_fail(err, ECP_ERR_ARG, "method '%s': unknown for neurons (choose ec, l2, "
                        "l2-incoming, random, mean-replacement)", o->method ? o->method : "");
    if (!(o->sparsity >= 0 && o->sparsity < 1))
        return ecp_fail(err, ECP_ERR_ARG, "sparsity %g: the fraction of hidden neurons removed "
                        "must be in [0, 1)", o->sparsity);
    if (o->steps < 1 || o->steps > 1000)
        return ecp_fail(err, ECP_ERR_ARG, "steps %d: must be in [1, 1000]", o->steps);
    if (o->finetune_epochs < 0)
        return ecp_fail(err, ECP_ERR_ARG, "finetune_epochs must be >= 0");
    if (m->n_layers < 2)
        return ecp_fail(err, ECP_ERR_ARG, "neuron pruning: the model (%d-%d) has no hidden layer",
                        m->sizes[0], m->sizes[1]);
    return ECP_OK;
}

ecp_status ecp_prune_neurons(ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                             ecp_neuron_report *rep, ecp_error *err)
{
    ecp_neuron_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    ecp_status s;
    if ((s = check_neuron_opts(m, o, err)) || (s = ecp_check_fit(m, train, "model", "data", err)))
        return s;
    int H = m->n_layers - 1, orig[ECP_MAX_LAYERS];
    for (int h = 0; h < H; h++)
        orig[h] = m->sizes[h + 1];
    ecp_dataset *calib = NULL;
    if ((s = ecp_prune_calib(train, o->calib, o->seed, &calib, err)))
        return s;
    double t0 = ecp_now();
    for (int t = 1; t <= o->steps && !s; t++) {
        double target = ecp_schedule_target(o, t); /* the weights' schedule, on neurons */
        double ts = ecp_now();
        ecp_neuron_scores *sc = NULL;
        s = ecp_neuron_scores_compute(m, calib, o->method, o->sens, o->probes,
                                      o->seed + (uint64_t)t, &sc, err);
        rep->stats_seconds += ecp_now() - ts;
        if (!s)
            s = ecp_prune_neurons_apply_calib(m, sc, o, calib, target, orig, 1, rep, err);
        ecp_neuron_scores_free(sc);
        if (!s)
            s = ecp_schedule_finetune(m, train, o, t, err);
    }
    rep->seconds = ecp_now() - t0;
    ecp_dataset_free(calib);
    return s;
}
