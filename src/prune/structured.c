/* Structured (neuron) pruning: whole hidden neurons are removed and the model shrinks to a
 * smaller dense network.
 *
 * Removing neuron j of hidden layer h deletes row j of W_h, entry j of b_h and column j of
 * W_{h+1}. For each row i of layer h+1 the EC algebra is the unstructured one: the deviation of
 * z_i is -w_ij a_j(x), the optimal shift of b_i is w_ij (sensitivity-weighted mean of a_j) and
 * what is left is w_ij^2 (sensitivity-weighted variance of a_j). Summing over the rows the neuron
 * feeds gives its importance, so the ec neuron score is the column sum of the ec weight scores of
 * W_{h+1}, and its compensation is that column's delta* (one shift per downstream bias). With
 * s = 1 the same algebra is mean replacement (Evci et al. 2019). */
#include "prune.h"
#include <math.h>

typedef enum { NM_EC, NM_L2, NM_L2_IN, NM_RANDOM, NM_MEAN } neuron_method;

static const struct {
    const char *name;
    neuron_method kind;
} neuron_methods[] = {
    {"ec", NM_EC},
    {"l2", NM_L2},
    {"l2-incoming", NM_L2_IN},
    {"random", NM_RANDOM},
    {"mean-replacement", NM_MEAN},
};
#define N_NEURON_METHODS ((int)(sizeof neuron_methods / sizeof *neuron_methods))

const char *ecp_neuron_method_name(int i)
{
    return i >= 0 && i < N_NEURON_METHODS ? neuron_methods[i].name : NULL;
}

static int neuron_method_find(const char *name)
{
    for (int i = 0; name && i < N_NEURON_METHODS; i++)
        if (!strcmp(neuron_methods[i].name, name))
            return (int)neuron_methods[i].kind;
    return -1;
}

int ecp_neuron_method_exists(const char *name) { return neuron_method_find(name) >= 0; }

int ecp_neuron_method_compensates(const char *name)
{
    int k = neuron_method_find(name);
    return k == NM_EC || k == NM_MEAN;
}

static ecp_status unknown_method(const char *name, ecp_error *err)
{
    return ecp_fail(err, ECP_ERR_ARG,
                    "method '%s': unknown for neurons (choose ec, l2, l2-incoming, random, "
                    "mean-replacement)", name ? name : "(null)");
}

void ecp_neuron_scores_free(ecp_neuron_scores *s)
{
    if (!s)
        return;
    for (int h = 0; h < s->n_hidden; h++) {
        if (s->score) free(s->score[h]);
        if (s->comp) free(s->comp[h]);
    }
    free(s->score);
    free(s->comp);
    free(s->width);
    free(s->fan_out);
    free(s);
}

static ecp_status neuron_scores_alloc(const ecp_mlp *m, int with_comp, ecp_neuron_scores **out,
                                      ecp_error *err)
{
    int H = m->n_layers - 1;
    ecp_neuron_scores *s = ecp_zalloc(1, sizeof *s, "neuron scores", err);
    if (!s)
        return ECP_ERR_MEMORY;
    s->n_hidden = H;
    s->width = ecp_zalloc((size_t)H, sizeof *s->width, "neuron scores", err);
    s->fan_out = ecp_zalloc((size_t)H, sizeof *s->fan_out, "neuron scores", err);
    s->score = ecp_zalloc((size_t)H, sizeof *s->score, "neuron scores", err);
    s->comp = ecp_zalloc((size_t)H, sizeof *s->comp, "neuron scores", err);
    if (!s->width || !s->fan_out || !s->score || !s->comp)
        goto fail;
    for (int h = 0; h < H; h++) {
        s->width[h] = m->sizes[h + 1];
        s->fan_out[h] = m->sizes[h + 2];
        if (!(s->score[h] = ecp_zalloc((size_t)s->width[h], sizeof(double), "neuron scores",
                                       err)))
            goto fail;
        if (with_comp && !(s->comp[h] = ecp_zalloc((size_t)s->width[h] * s->fan_out[h],
                                                   sizeof(double), "neuron scores", err)))
            goto fail;
    }
    if (!with_comp) {
        free(s->comp);
        s->comp = NULL;
    }
    *out = s;
    return ECP_OK;
fail:
    ecp_neuron_scores_free(s);
    return ECP_ERR_MEMORY;
}

/* EC: column sums of the unstructured EC scores of W_{h+1}; comp[i, j] is that weight's delta*.
 * The weight criterion is the same function the unstructured "ec" uses, so the two cannot
 * drift apart. */
static ecp_status score_ec(const ecp_mlp *m, const ecp_stats *st, int h, ecp_neuron_scores *ns,
                           ecp_error *err)
{
    const ecp_layer *D = &m->layer[h + 1];
    size_t nw = (size_t)D->n_in * D->n_out;
    double *w = ecp_alloc(nw, sizeof *w, "neuron scores", err);
    if (!w)
        return ECP_ERR_MEMORY;
    ecp_method_find("ec")->fn(m, st, h + 1, NULL, w, ns->comp[h]);
    for (int i = 0; i < D->n_out; i++)
        for (int j = 0; j < D->n_in; j++)
            ns->score[h][j] += w[(size_t)i * D->n_in + j];
    free(w);
    return ECP_OK;
}

/* Mean replacement: the EC algebra with s = 1, i.e. the plain mean and variance of a_j. */
static void score_mean(const ecp_mlp *m, const ecp_stats *st, int h, ecp_neuron_scores *ns)
{
    const ecp_layer *D = &m->layer[h + 1];
    double N = (double)st->n;
    for (int j = 0; j < D->n_in; j++) {
        double mean = st->sa[h + 1][j] / N;
        double var = st->sa2[h + 1][j] / N - mean * mean, col = 0;
        for (int i = 0; i < D->n_out; i++) {
            double wij = D->W[(size_t)i * D->n_in + j];
            col += wij * wij;
            ns->comp[h][(size_t)i * D->n_in + j] = wij * (mean + st->shift[h + 1][j]);
        }
        ns->score[h][j] = col * (var > 0 ? var : 0);
    }
}

/* ||W_{h+1}[:, j]||_2 (outgoing, as torch's ln_structured on the next layer's columns) or
 * ||W_h[j, :]||_2 (incoming). */
static void score_l2(const ecp_mlp *m, int h, int incoming, ecp_neuron_scores *ns)
{
    const ecp_layer *U = &m->layer[h], *D = &m->layer[h + 1];
    for (int j = 0; j < U->n_out; j++) {
        double s = 0;
        if (incoming)
            for (int k = 0; k < U->n_in; k++) {
                double v = U->W[(size_t)j * U->n_in + k];
                s += v * v;
            }
        else
            for (int i = 0; i < D->n_out; i++) {
                double v = D->W[(size_t)i * D->n_in + j];
                s += v * v;
            }
        ns->score[h][j] = sqrt(s);
    }
}

ecp_status ecp_neuron_scores_compute(const ecp_mlp *m, const ecp_dataset *calib,
                                     const char *method, ecp_sens sens, int probes,
                                     uint64_t seed, ecp_neuron_scores **out, ecp_error *err)
{
    *out = NULL;
    int kind = neuron_method_find(method);
    if (kind < 0)
        return unknown_method(method, err);
    if (m->n_layers < 2)
        return ecp_fail(err, ECP_ERR_ARG, "neuron pruning: the model (%d-%d) has no hidden layer",
                        m->sizes[0], m->sizes[1]);
    int need = kind == NM_EC ? ECP_NEED_MOMENTS : kind == NM_MEAN ? ECP_NEED_COLS : 0;
    ecp_stats *st = NULL;
    ecp_neuron_scores *ns = NULL;
    ecp_status s = ECP_OK;
    if ((need && (s = ecp_stats_compute(m, calib, need, sens, probes, seed, &st, err))) ||
        (s = neuron_scores_alloc(m, kind == NM_EC || kind == NM_MEAN, &ns, err)))
        goto done;
    ecp_rng rng;
    ecp_rng_seed(&rng, seed ^ 0x2a2a2a2aULL);
    for (int h = 0; h < ns->n_hidden && !s; h++) {
        switch ((neuron_method)kind) {
        case NM_EC: s = score_ec(m, st, h, ns, err); break;
        case NM_MEAN: score_mean(m, st, h, ns); break;
        case NM_L2: score_l2(m, h, 0, ns); break;
        case NM_L2_IN: score_l2(m, h, 1, ns); break;
        case NM_RANDOM:
            for (int j = 0; j < ns->width[h]; j++)
                ns->score[h][j] = ecp_rng_uniform(&rng);
            break;
        }
    }
    if (!s) {
        *out = ns;
        ns = NULL;
    }
done:
    ecp_neuron_scores_free(ns);
    ecp_stats_free(st);
    return s;
}
