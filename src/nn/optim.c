/* Optimisers. The mask is enforced here, in the one place parameters move: a pruned weight
 * gets no update and no optimiser state, and is written back as exactly 0. */
#include "../internal.h"
#include <math.h>

struct ecp_optim {
    ecp_optim_opts o;
    int n_layers;
    int64_t t;    /* Adam step count (bias correction) */
    float **mw;   /* momentum (SGD) or first moment (Adam), per layer weights */
    float **mb;
    float **vw;   /* Adam second moment */
    float **vb;
};

void ecp_optim_opts_default(ecp_optim_opts *o, ecp_optim_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = kind == ECP_OPT_ADAM ? 1e-3 : 0.05;
    o->momentum = 0.9;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 0;
}

void ecp_optim_free(ecp_optim *op)
{
    if (!op)
        return;
    for (int l = 0; l < op->n_layers; l++) {
        if (op->mw) free(op->mw[l]);
        if (op->mb) free(op->mb[l]);
        if (op->vw) free(op->vw[l]);
        if (op->vb) free(op->vb[l]);
    }
    free(op->mw);
    free(op->mb);
    free(op->vw);
    free(op->vb);
    free(op);
}

ecp_status ecp_optim_create(ecp_optim **out, const ecp_mlp *m, const ecp_optim_opts *o,
                            ecp_error *err)
{
    *out = NULL;
    if (!(o->lr > 0) || !isfinite(o->lr))
        return ecp_fail(err, ECP_ERR_ARG, "learning rate must be > 0, not %g", o->lr);
    if (o->weight_decay < 0 || o->momentum < 0 || o->momentum >= 1)
        return ecp_fail(err, ECP_ERR_ARG, "weight decay must be >= 0 and momentum in [0, 1)");
    ecp_optim *op = ecp_zalloc(1, sizeof *op, "optimiser", err);
    if (!op)
        return ECP_ERR_MEMORY;
    op->o = *o;
    op->n_layers = m->n_layers;
    size_t L = (size_t)m->n_layers;
    op->mw = ecp_zalloc(L, sizeof(float *), "optimiser", err);
    op->mb = ecp_zalloc(L, sizeof(float *), "optimiser", err);
    op->vw = ecp_zalloc(L, sizeof(float *), "optimiser", err);
    op->vb = ecp_zalloc(L, sizeof(float *), "optimiser", err);
    if (!op->mw || !op->mb || !op->vw || !op->vb)
        goto fail;
    for (int l = 0; l < m->n_layers; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out, nb = m->layer[l].n_out;
        op->mw[l] = ecp_zalloc(nw, sizeof(float), "optimiser", err);
        op->mb[l] = ecp_zalloc(nb, sizeof(float), "optimiser", err);
        if (!op->mw[l] || !op->mb[l])
            goto fail;
        if (o->kind == ECP_OPT_ADAM) {
            op->vw[l] = ecp_zalloc(nw, sizeof(float), "optimiser", err);
            op->vb[l] = ecp_zalloc(nb, sizeof(float), "optimiser", err);
            if (!op->vw[l] || !op->vb[l])
                goto fail;
        }
    }
    *out = op;
    return ECP_OK;
fail:
    ecp_optim_free(op);
    return ECP_ERR_MEMORY;
}

/* Weight decay applies to weights only: decaying biases would fight the EC compensation,
 * which lives in the biases. */
static void sgd_update(const ecp_optim_opts *o, float *p, const float *g, float *v,
                       const uint8_t *pruned, size_t n, double wd)
{
    float lr = (float)o->lr, mu = (float)o->momentum, fwd = (float)wd;
    for (size_t i = 0; i < n; i++) {
        if (pruned && pruned[i]) {
            p[i] = 0.0f;
            continue;
        }
        float gi = g[i] + fwd * p[i];
        v[i] = mu * v[i] + gi;
        p[i] -= lr * v[i];
    }
}

static void adam_update(const ecp_optim_opts *o, float *p, const float *g, float *m, float *v,
                        const uint8_t *pruned, size_t n, double wd, double c1, double c2)
{
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float step = (float)(o->lr / c1), fc2 = (float)(1.0 / sqrt(c2)), decay = (float)(o->lr * wd);
    for (size_t i = 0; i < n; i++) {
        if (pruned && pruned[i]) {
            p[i] = 0.0f;
            continue;
        }
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        /* AdamW: decoupled decay, applied to the parameter directly. */
        p[i] -= step * m[i] / (sqrtf(v[i]) * fc2 + eps) + decay * p[i];
    }
}

void ecp_optim_step(ecp_optim *op, ecp_mlp *m, const ecp_grads *g)
{
    const ecp_optim_opts *o = &op->o;
    op->t++;
    double c1 = 1 - pow(o->beta1, (double)op->t), c2 = 1 - pow(o->beta2, (double)op->t);
    for (int l = 0; l < m->n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        size_t nw = (size_t)L->n_in * L->n_out, nb = L->n_out;
        if (o->kind == ECP_OPT_SGD) {
            sgd_update(o, L->W, g->dW[l], op->mw[l], L->pruned, nw, o->weight_decay);
            sgd_update(o, L->b, g->db[l], op->mb[l], NULL, nb, 0);
        } else {
            adam_update(o, L->W, g->dW[l], op->mw[l], op->vw[l], L->pruned, nw, o->weight_decay,
                        c1, c2);
            adam_update(o, L->b, g->db[l], op->mb[l], op->vb[l], NULL, nb, 0, c1, c2);
        }
    }
}
