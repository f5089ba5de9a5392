/* How a target sparsity is split between layers, and pruning layer by layer: the statistics of
 * layer l taken on the network whose earlier layers are already pruned and compensated, so each
 * layer is judged on the inputs it will really see. */
#include "prune.h"
#include <math.h>

static int excluded(const ecp_prune_opts *o, int l) { return l < 64 && ((o->exclude_mask >> l) & 1); }

/* "ec:loss" -> "ec" and ECP_SENS_LOSS; a bare name keeps o->sens. */
static ecp_status parse_alloc(const char *spec, ecp_sens dflt, char *name, size_t n,
                              ecp_sens *sens, ecp_error *err)
{
    snprintf(name, n, "%s", spec);
    *sens = dflt;
    char *colon = strchr(name, ':');
    if (colon) {
        *colon = 0;
        if (ecp_sens_parse(colon + 1, sens, err))
            return ecp_fail(err, ECP_ERR_ARG, "allocation_method '%s': unknown sensitivity '%s' "
                            "(choose output, probe or loss)", spec, colon + 1);
    }
    if (!ecp_method_find(name))
        return ecp_fail(err, ECP_ERR_ARG, "allocation_method '%s': unknown method (choose e.g. "
                        "ec, ec:loss, ec-obs, magnitude, wanda)", spec);
    return ECP_OK;
}

ecp_status ecp_prune_allocate(const ecp_mlp *m, const ecp_dataset *calib,
                              const ecp_prune_opts *o, double sparsity, uint64_t seed,
                              int64_t *targets, ecp_error *err)
{
    int L = m->n_layers;
    int uniform = o->allocation == ECP_ALLOC_UNIFORM ||
                  (o->allocation == ECP_ALLOC_AUTO &&
                   (o->scope_layer || !strcmp(o->method, "sparsegpt")));
    if (uniform) {
        for (int l = 0; l < L; l++) {
            int64_t nw = (int64_t)m->layer[l].n_in * m->layer[l].n_out;
            int64_t t = llround(sparsity * (double)nw);
            targets[l] = excluded(o, l) ? -1 : t < nw ? t : nw - 1;
        }
        return ECP_OK;
    }
    char name[64];
    ecp_sens sens;
    const char *spec = o->allocation_method;
    if (!spec)
        spec = ecp_method_find(o->method)->reconstructs ? "ec:loss" : o->method;
    ecp_status s = parse_alloc(spec, o->sens, name, sizeof name, &sens, err);
    if (s)
        return s;
    ecp_mlp *copy = NULL;
    ecp_scores *sc = NULL;
    ecp_prune_opts go = *o;
    go.scope_layer = 0;
    if (!(s = ecp_mlp_clone(m, &copy, err)) &&
        !(s = ecp_prune_scores(m, calib, name, sens, o->probes, seed, &sc, err)) &&
        !(s = ecp_select_apply(copy, sc, &go, sparsity, NULL, err)))
        for (int l = 0; l < L; l++)
            targets[l] = excluded(o, l) ? -1 : ecp_mlp_layer_n_pruned(copy, l);
    ecp_scores_free(sc);
    ecp_mlp_free(copy);
    return s;
}

ecp_status ecp_sequential_step(ecp_mlp *m, const ecp_dataset *calib, const ecp_prune_opts *o,
                               double sparsity, uint64_t seed, ecp_prune_report *rep,
                               ecp_error *err)
{
    int L = m->n_layers;
    int64_t *targets = ecp_alloc((size_t)L, sizeof *targets, "selection", err);
    int64_t *one = ecp_alloc((size_t)L, sizeof *one, "selection", err);
    ecp_status s = targets && one ? ECP_OK : ECP_ERR_MEMORY;
    if (!s)
        s = ecp_prune_allocate(m, calib, o, sparsity, seed, targets, err);
    for (int l = 0; l < L && !s; l++) {
        if (targets[l] < 0 || targets[l] <= ecp_mlp_layer_n_pruned(m, l))
            continue;
        ecp_scores *sc = NULL;
        for (int k = 0; k < L; k++)
            one[k] = k == l ? targets[l] : -1;
        s = ecp_prune_scores(m, calib, o->method, o->sens, o->probes, seed, &sc, err);
        if (!s)
            s = ecp_select_targets(m, sc, o, sparsity, one, rep, err);
        ecp_scores_free(sc);
    }
    free(targets);
    free(one);
    return s;
}
