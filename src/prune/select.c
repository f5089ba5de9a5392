/* Selection: rank the candidates (globally, since every score is in output^2 units in every
 * layer, or per layer), remove the lowest, apply the compensation, and keep the guards:
 * no layer loses every weight; neurons left with no input are reported. */
#include "prune.h"
#include <math.h>

typedef struct {
    double score;
    int layer;
    int64_t idx;
} cand;

/* Ties are broken by layer and index so that a selection is reproducible everywhere. */
static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->score < b->score) return -1;
    if (a->score > b->score) return 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int excluded(const ecp_prune_opts *o, int l) { return l < 64 && ((o->exclude_mask >> l) & 1); }

/* Fills rep from the model as it is now: counts per layer and neurons left with no input. */
void ecp_report_fill(const ecp_mlp *m, int64_t prunable, int guarded, ecp_prune_report *rep)
{
    int L = m->n_layers;
    rep->n_layers = L;
    rep->weights = ecp_mlp_n_weights(m);
    rep->prunable = prunable;
    rep->pruned = ecp_mlp_n_pruned(m);
    rep->guarded += guarded;
    for (int l = 0; l < L && l < ECP_PRUNE_MAX_LAYERS; l++) {
        const ecp_layer *Ly = &m->layer[l];
        rep->layer_pruned[l] = ecp_mlp_layer_n_pruned(m, l);
        int dead = 0;
        for (int i = 0; i < Ly->n_out; i++) {
            int alive = 0;
            for (int j = 0; j < Ly->n_in && !alive; j++)
                alive = !Ly->pruned[(size_t)i * Ly->n_in + j];
            dead += !alive;
        }
        rep->dead_inputs[l] = dead;
    }
}

int64_t ecp_prunable_weights(const ecp_mlp *m, const ecp_prune_opts *o)
{
    int64_t n = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (!excluded(o, l))
            n += (int64_t)m->layer[l].n_in * m->layer[l].n_out;
    return n;
}

ecp_status ecp_select_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                            double sparsity, ecp_prune_report *rep, ecp_error *err)
{
    if (o->nm_m > 0)
        return ecp_select_nm(m, sc, o, rep, err);
    return ecp_select_targets(m, sc, o, sparsity, NULL, rep, err);
}

/* Removes candidate c: its weight zeroed, its compensation added to the bias it fed. */
static void remove_one(ecp_mlp *m, const ecp_scores *sc, int l, int64_t k)
{
    ecp_layer *Ly = &m->layer[l];
    if (sc->comp)
        Ly->b[k / Ly->n_in] += (float)sc->comp[l][k];
    Ly->W[k] = 0.0f;
    Ly->pruned[k] = 1;
}

/* The slow path, when the cheapest `need` would empty a layer: in score order, skipping the
 * last weight of any layer (never removed) for the next cheapest. Returns how many were
 * skipped. */
static int remove_sorted(ecp_mlp *m, const ecp_scores *sc, cand *cs, int64_t n, int64_t need,
                         int64_t *remaining)
{
    int guarded = 0;
    qsort(cs, (size_t)n, sizeof *cs, cand_cmp);
    for (int64_t c = 0; c < n && need > 0; c++) {
        if (remaining[cs[c].layer] <= 1) {
            guarded++;
            continue;
        }
        remove_one(m, sc, cs[c].layer, cs[c].idx);
        remaining[cs[c].layer]--;
        need--;
    }
    return guarded;
}

/* Removes the `need` lowest-scoring of the n candidates. Only which ones matters, so a
 * selection finds them (a sort costs several times more on large layers); they are then
 * removed in weight order, so that the bias updates add up in an order that does not depend
 * on how the selection moved them. Returns how many the guard skipped. */
static int select_remove(ecp_mlp *m, const ecp_scores *sc, cand *cs, int64_t n, int64_t need,
                         int64_t *remaining)
{
    int L = m->n_layers;
    if (need <= 0 || n == 0)
        return 0;
    if (need > n)
        need = n;
    ecp_nth_smallest(cs, (size_t)n, sizeof *cs, (size_t)need, cand_cmp);
    for (int64_t c = 0; c < need; c++)
        if (--remaining[cs[c].layer] < 1) { /* would empty a layer: undo, go the slow way */
            for (int64_t u = 0; u <= c; u++)
                remaining[cs[u].layer]++;
            return remove_sorted(m, sc, cs, n, need, remaining);
        }
    int lo = L, hi = -1;
    for (int64_t c = 0; c < need; c++) { /* mark, then remove in weight order */
        m->layer[cs[c].layer].pruned[cs[c].idx] = 2;
        lo = cs[c].layer < lo ? cs[c].layer : lo;
        hi = cs[c].layer > hi ? cs[c].layer : hi;
    }
    for (int l = lo; l <= hi; l++) {
        ecp_layer *Ly = &m->layer[l];
        int64_t nw = (int64_t)Ly->n_in * Ly->n_out;
        for (int64_t k = 0; k < nw; k++)
            if (Ly->pruned[k] == 2)
                remove_one(m, sc, l, k);
    }
    return 0;
}

ecp_status ecp_select_targets(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                              double sparsity, const int64_t *targets, ecp_prune_report *rep,
                              ecp_error *err)
{
    int L = m->n_layers;
    int64_t prunable = 0, ncand = 0;
    int64_t *remaining = ecp_zalloc((size_t)L, sizeof *remaining, "selection", err);
    if (!remaining)
        return ECP_ERR_MEMORY;
    for (int l = 0; l < L; l++) {
        if (excluded(o, l))
            continue;
        int64_t nw = (int64_t)m->layer[l].n_in * m->layer[l].n_out;
        prunable += nw;
        remaining[l] = nw - ecp_mlp_layer_n_pruned(m, l);
        ncand += remaining[l];
    }
    if (prunable == 0) {
        free(remaining);
        return ecp_fail(err, ECP_ERR_ARG, "the model has no prunable layer (all excluded)");
    }
    cand *cs = ecp_alloc((size_t)(ncand ? ncand : 1), sizeof *cs, "selection", err);
    if (!cs) {
        free(remaining);
        return ECP_ERR_MEMORY;
    }
    int guarded = 0;
    /* Global: one list; per layer: one list per layer, each with its own quota. */
    int per_layer = o->scope_layer || targets;
    for (int pass = 0; pass < (per_layer ? L : 1); pass++) {
        if (per_layer && (excluded(o, pass) || (targets && targets[pass] < 0)))
            continue;
        int64_t n = 0, target, have = 0;
        for (int l = 0; l < L; l++) {
            if (excluded(o, l) || (per_layer && l != pass))
                continue;
            const ecp_layer *Ly = &m->layer[l];
            int64_t nw = (int64_t)Ly->n_in * Ly->n_out;
            for (int64_t k = 0; k < nw; k++) {
                if (Ly->pruned[k]) {
                    have++;
                    continue;
                }
                cs[n].score = isnan(sc->score[l][k]) ? INFINITY : sc->score[l][k];
                cs[n].layer = l;
                cs[n].idx = k;
                n++;
            }
        }
        int64_t pool = per_layer ? (int64_t)m->layer[pass].n_in * m->layer[pass].n_out
                                 : prunable;
        target = targets ? targets[pass] : llround(sparsity * (double)pool);
        guarded += select_remove(m, sc, cs, n, target - have, remaining);
    }
    free(cs);
    free(remaining);
    if (rep)
        ecp_report_fill(m, prunable, guarded, rep);
    return ECP_OK;
}

ecp_status ecp_prune_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                           ecp_prune_report *rep, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(sc, err);
    ECP_REQUIRE(o, err);
    if (!(o->sparsity >= 0 && o->sparsity < 1))
        return ecp_fail(err, ECP_ERR_ARG, "sparsity %g: must be in [0, 1)", o->sparsity);
    if (sc->n_layers != m->n_layers)
        return ecp_fail(err, ECP_ERR_SHAPE, "scores are for %d layers, the model has %d",
                        sc->n_layers, m->n_layers);
    if (rep)
        memset(rep, 0, sizeof *rep);
    return ecp_select_apply(m, sc, o, o->sparsity, rep, err);
}

/* One group of an N:M selection: removes the lowest-scoring kept weights of row i, inputs
 * [g, end), until at most n remain, and applies their compensation. Ties go by index. */
static int64_t nm_group(ecp_layer *Ly, const double *score, const double *comp, int i, int g,
                        int end, int n)
{
    int64_t removed = 0;
    for (;;) {
        int kept = 0, worst = -1;
        double wv = INFINITY;
        for (int j = g; j < end; j++) {
            size_t k = (size_t)i * Ly->n_in + j;
            if (Ly->pruned[k])
                continue;
            kept++;
            double v = isnan(score[k]) ? INFINITY : score[k];
            if (worst < 0 || v < wv) {
                worst = j;
                wv = v;
            }
        }
        if (kept <= n)
            return removed;
        size_t k = (size_t)i * Ly->n_in + worst;
        if (comp)
            Ly->b[i] += (float)comp[k];
        Ly->W[k] = 0.0f;
        Ly->pruned[k] = 1;
        removed++;
    }
}

ecp_status ecp_select_nm(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                         ecp_prune_report *rep, ecp_error *err)
{
    int L = m->n_layers, n = o->nm_n, M = o->nm_m;
    if (n < 1 || n >= M || M > ECP_PATTERN_MAX_M)
        return ecp_fail(err, ECP_ERR_ARG, "pattern %d:%d: expected 1 <= N < M <= %d", n, M,
                        ECP_PATTERN_MAX_M);
    uint64_t layers = 0;
    int64_t prunable = 0;
    for (int l = 0; l < L && l < 64; l++) {
        if (excluded(o, l))
            continue;
        ecp_layer *Ly = &m->layer[l];
        layers |= 1ULL << l;
        prunable += (int64_t)Ly->n_in * Ly->n_out;
        for (int i = 0; i < Ly->n_out; i++)
            for (int g = 0; g < Ly->n_in; g += M)
                nm_group(Ly, sc->score[l], sc->comp ? sc->comp[l] : NULL, i, g,
                         g + M < Ly->n_in ? g + M : Ly->n_in, n);
    }
    if (!layers)
        return ecp_fail(err, ECP_ERR_ARG, "the model has no prunable layer (all excluded)");
    ecp_status s = ecp_mlp_set_pattern(m, n, M, layers, err);
    if (s || !rep)
        return s;
    rep->n_layers = L;
    rep->weights = ecp_mlp_n_weights(m);
    rep->prunable = prunable;
    rep->pruned = ecp_mlp_n_pruned(m);
    for (int l = 0; l < L && l < ECP_PRUNE_MAX_LAYERS; l++)
        rep->layer_pruned[l] = ecp_mlp_layer_n_pruned(m, l);
    return ECP_OK;
}
