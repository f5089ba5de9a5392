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

ecp_status ecp_select_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                            double sparsity, ecp_prune_report *rep, ecp_error *err)
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
    for (int pass = 0; pass < (o->scope_layer ? L : 1); pass++) {
        if (o->scope_layer && excluded(o, pass))
            continue;
        int64_t n = 0, target, have = 0;
        for (int l = 0; l < L; l++) {
            if (excluded(o, l) || (o->scope_layer && l != pass))
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
        int64_t pool = o->scope_layer ? (int64_t)m->layer[pass].n_in * m->layer[pass].n_out
                                      : prunable;
        target = llround(sparsity * (double)pool);
        qsort(cs, (size_t)n, sizeof *cs, cand_cmp);
        for (int64_t c = 0; c < n && have < target; c++) {
            int l = cs[c].layer;
            ecp_layer *Ly = &m->layer[l];
            if (remaining[l] <= 1) {
                guarded++; /* never remove the last weight of a layer */
                continue;
            }
            int64_t k = cs[c].idx;
            int i = (int)(k / Ly->n_in);
            if (sc->comp)
                Ly->b[i] += (float)sc->comp[l][k];
            Ly->W[k] = 0.0f;
            Ly->pruned[k] = 1;
            remaining[l]--;
            have++;
        }
    }
    free(cs);
    free(remaining);
    if (rep) {
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
    return ECP_OK;
}

ecp_status ecp_prune_apply(ecp_mlp *m, const ecp_scores *sc, const ecp_prune_opts *o,
                           ecp_prune_report *rep, ecp_error *err)
{
    if (!(o->sparsity >= 0 && o->sparsity < 1))
        return ecp_fail(err, ECP_ERR_ARG, "sparsity %g: must be in [0, 1)", o->sparsity);
    if (sc->n_layers != m->n_layers)
        return ecp_fail(err, ECP_ERR_SHAPE, "scores are for %d layers, the model has %d",
                        sc->n_layers, m->n_layers);
    if (rep)
        memset(rep, 0, sizeof *rep);
    return ecp_select_apply(m, sc, o, o->sparsity, rep, err);
}
