/* What a model keeps of the file it was read from (ecp_iface, internal.h): the accessors, the
 * metadata it carries, and its output transform. A model made by the library has no ecp_iface
 * until something is recorded on it; every reader here falls back to what ecp_onnx_save
 * writes for such a model. */
#include "../internal.h"
#include <math.h>

ecp_out_transform ecp_mlp_output_transform(const ecp_mlp *m)
{
    return m && m->iface ? m->iface->out_tf : ECP_OUT_NONE;
}

const char *ecp_out_transform_name(ecp_out_transform t)
{
    switch (t) {
    case ECP_OUT_SOFTMAX: return "softmax";
    case ECP_OUT_LOG_SOFTMAX: return "log_softmax";
    default: return "none";
    }
}

void ecp_out_transform_apply(ecp_out_transform t, float *y, int64_t batch, int k)
{
    if (!y || (t != ECP_OUT_SOFTMAX && t != ECP_OUT_LOG_SOFTMAX))
        return;
    for (int64_t i = 0; i < batch; i++) {
        float *r = y + (size_t)i * k;
        if (t == ECP_OUT_SOFTMAX) {
            ecp_softmax(r, k, r);
            continue;
        }
        double lse = ecp_log_sum_exp(r, k);
        for (int j = 0; j < k; j++)
            r[j] = (float)((double)r[j] - lse);
    }
}

void ecp_mlp_iface(const ecp_mlp *m, ecp_model_iface *o)
{
    memset(o, 0, sizeof *o);
    const ecp_iface *f = m ? m->iface : NULL;
    o->from_file = f && f->input;
    o->input = f && f->input ? f->input : "input";
    o->output = f && f->output ? f->output : "output";
    o->opset = f && f->opset ? f->opset : 13;
    o->producer_name = f && f->producer_name ? f->producer_name : "ecprune";
    o->producer_version = f && f->producer_version ? f->producer_version : ECP_VERSION;
    o->flatten = f && f->flatten;
    if (f && f->in_rank >= 2) {
        o->in_rank = f->in_rank;
        for (int i = 0; i < f->in_rank; i++) {
            o->in_dim[i] = f->in_dim[i];
            o->in_param[i] = f->in_param[i];
        }
        o->out_dim0 = f->out_dim0;
        o->out_param0 = f->out_param0;
    } else {
        o->in_rank = 2;
        o->in_dim[0] = o->out_dim0 = -1;
        o->in_param[0] = o->out_param0 = "N";
        o->in_dim[1] = ecp_mlp_n_in(m);
    }
}

int ecp_mlp_meta_count(const ecp_mlp *m)
{
    return m && m->iface ? m->iface->n_meta : 0;
}

const char *ecp_mlp_meta_key(const ecp_mlp *m, int i)
{
    return i >= 0 && i < ecp_mlp_meta_count(m) ? m->iface->meta_key[i] : NULL;
}

const char *ecp_mlp_meta_value(const ecp_mlp *m, int i)
{
    return i >= 0 && i < ecp_mlp_meta_count(m) ? m->iface->meta_val[i] : NULL;
}

/* Appends one slot to both arrays (the new slot's strings are NULL). */
static ecp_status meta_grow(ecp_iface *f, ecp_error *err)
{
    size_t n = (size_t)f->n_meta + 1;
    char **k = realloc(f->meta_key, n * sizeof *k);
    if (k)
        f->meta_key = k;
    char **v = k ? realloc(f->meta_val, n * sizeof *v) : NULL;
    if (v)
        f->meta_val = v;
    if (!k || !v)
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory adding metadata");
    f->meta_key[n - 1] = f->meta_val[n - 1] = NULL;
    return ECP_OK;
}

ecp_status ecp_mlp_set_meta(ecp_mlp *m, const char *key, const char *value, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(key, err);
    ECP_REQUIRE(value, err);
    if (!*key)
        return ecp_fail(err, ECP_ERR_ARG, "metadata key: empty");
    if (!m->iface && !(m->iface = ecp_zalloc(1, sizeof *m->iface, "model interface", err)))
        return ECP_ERR_MEMORY;
    ecp_iface *f = m->iface;
    char *v = strdup(value);
    if (!v)
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory adding metadata");
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_key[i], key)) {
            free(f->meta_val[i]);
            f->meta_val[i] = v;
            return ECP_OK;
        }
    char *k = strdup(key);
    if (!k || meta_grow(f, err)) {
        free(k);
        free(v);
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory adding metadata");
    }
    f->meta_key[f->n_meta] = k;
    f->meta_val[f->n_meta++] = v;
    return ECP_OK;
}
