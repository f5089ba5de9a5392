/* The original parameters kept beside the mask, as torch.nn.utils.prune keeps weight_orig until
 * prune.remove: pruning stays in place (the model is always usable as it is), and the copy lets
 * a caller go back to where it started or compare against it. */
#include "../internal.h"

/* Offsets of layer l's W and b in m->orig, and of its mask in m->orig_mask. */
static void orig_offsets(const ecp_mlp *m, int l, size_t *w, size_t *b, size_t *mask)
{
    size_t p = 0, q = 0;
    for (int k = 0; k < l; k++) {
        size_t nw = (size_t)m->layer[k].n_in * m->layer[k].n_out;
        p += nw + (size_t)m->layer[k].n_out;
        q += nw;
    }
    *w = p;
    *b = p + (size_t)m->layer[l].n_in * m->layer[l].n_out;
    *mask = q;
}

ecp_status ecp_mlp_keep_original(ecp_mlp *m, ecp_error *err)
{
    if (!m)
        return ecp_fail(err, ECP_ERR_ARG, "ecp_mlp_keep_original: model is NULL");
    if (!m->orig) {
        m->orig = ecp_alloc((size_t)ecp_mlp_n_params(m), sizeof *m->orig, "original weights", err);
        m->orig_mask = ecp_alloc((size_t)ecp_mlp_n_weights(m), 1, "original mask", err);
        if (!m->orig || !m->orig_mask) {
            ecp_mlp_drop_original(m);
            return ECP_ERR_MEMORY;
        }
    }
    for (int l = 0; l < m->n_layers; l++) {
        const ecp_layer *L = &m->layer[l];
        size_t w, b, q, nw = (size_t)L->n_in * L->n_out;
        orig_offsets(m, l, &w, &b, &q);
        memcpy(m->orig + w, L->W, nw * sizeof *L->W);
        memcpy(m->orig + b, L->b, (size_t)L->n_out * sizeof *L->b);
        memcpy(m->orig_mask + q, L->pruned, nw);
    }
    return ECP_OK;
}

int ecp_mlp_has_original(const ecp_mlp *m) { return m && m->orig; }

ecp_status ecp_mlp_restore_original(ecp_mlp *m, ecp_error *err)
{
    if (!m || !m->orig)
        return ecp_fail(err, ECP_ERR_ARG, "ecp_mlp_restore_original: %s",
                        m ? "no original kept (call ecp_mlp_keep_original first)"
                          : "model is NULL");
    for (int l = 0; l < m->n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        size_t w, b, q, nw = (size_t)L->n_in * L->n_out;
        orig_offsets(m, l, &w, &b, &q);
        memcpy(L->W, m->orig + w, nw * sizeof *L->W);
        memcpy(L->b, m->orig + b, (size_t)L->n_out * sizeof *L->b);
        memcpy(L->pruned, m->orig_mask + q, nw);
    }
    return ECP_OK;
}

void ecp_mlp_drop_original(ecp_mlp *m)
{
    if (!m)
        return;
    free(m->orig);
    free(m->orig_mask);
    m->orig = NULL;
    m->orig_mask = NULL;
}

const float *ecp_mlp_original_weights(const ecp_mlp *m, int l)
{
    if (!m || !m->orig || l < 0 || l >= m->n_layers)
        return NULL;
    size_t w, b, q;
    orig_offsets(m, l, &w, &b, &q);
    return m->orig + w;
}

const float *ecp_mlp_original_bias(const ecp_mlp *m, int l)
{
    if (!m || !m->orig || l < 0 || l >= m->n_layers)
        return NULL;
    size_t w, b, q;
    orig_offsets(m, l, &w, &b, &q);
    return m->orig + b;
}
