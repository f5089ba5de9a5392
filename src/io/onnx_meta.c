/* What ecprune writes as ONNX metadata_props: the model's kept metadata (other producers' and
 * ecprune's pruning record, which names the version), an opset upgrade, and the training record of a model (epochs, batch,
 * optimiser), so that a baseline trained from scratch later can be trained the way the model
 * was. Training keys are "ecprune.train.*". A file that has any of our keys
 * must have all of them, each valid: the values are untrusted like everything in the file. */
#include "onnx_util.h"
#include <errno.h>
#include <math.h>

#define P "ecprune.train."

/* Adds the next entry of meta->e under key; returns its value buffer. */
static char *meta_add(onnx_meta *meta, Onnx__ModelProto *model, const char *key)
{
    int i = meta->n_e++;
    onnx__string_string_entry_proto__init(&meta->e[i]);
    meta->e[i].key = (char *)key;
    meta->e[i].value = meta->val[i];
    meta->val[i][0] = 0;
    meta->p[model->n_metadata_props++] = &meta->e[i];
    return meta->val[i];
}

void onnx_meta_release(onnx_meta *meta)
{
    free(meta->kept);
    free(meta->p);
    meta->kept = NULL;
    meta->p = NULL;
}

/* The model's kept metadata first, in its order (a key ecprune writes afresh is left out). */
static void meta_kept(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model)
{
    for (int i = 0; i < ecp_mlp_meta_count(m); i++) {
        const char *k = ecp_mlp_meta_key(m, i);
        if (meta->upgrade[0] && !strcmp(k, ECP_ONNX_META_OPSET_UPGRADE))
            continue;
        Onnx__StringStringEntryProto *e = &meta->kept[i];
        onnx__string_string_entry_proto__init(e);
        e->key = (char *)k;
        e->value = (char *)ecp_mlp_meta_value(m, i);
        meta->p[model->n_metadata_props++] = e;
    }
}

static void meta_training(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model)
{
    ecp_train_opts o;
    if (!ecp_mlp_training(m, &o))
        return;
    static const char *const keys[ONNX_META_N] = {P "epochs", P "batch", P "optim", P "lr",
                                                  P "momentum", P "weight_decay"};
    char *v[ONNX_META_N];
    for (int i = 0; i < ONNX_META_N; i++)
        v[i] = meta_add(meta, model, keys[i]);
    snprintf(v[0], 800, "%d", o.epochs);
    snprintf(v[1], 800, "%d", o.batch);
    snprintf(v[2], 800, "%s", o.optim.kind == ECP_OPT_SGD ? "sgd" : "adam");
    snprintf(v[3], 800, "%.17g", o.optim.lr);
    snprintf(v[4], 800, "%.17g", o.optim.momentum);
    snprintf(v[5], 800, "%.17g", o.optim.weight_decay);
}

/* "ecprune.pattern" = "N:M" and "ecprune.pattern_layers" = "0,1,2": what `info` verifies. */
static void meta_pattern(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model)
{
    int n, mm;
    uint64_t layers;
    if (!ecp_mlp_pattern(m, &n, &mm, &layers))
        return;
    snprintf(meta_add(meta, model, ECP_ONNX_META_PATTERN), 800, "%d:%d", n, mm);
    char *v = meta_add(meta, model, ECP_ONNX_META_PATTERN_LAYERS);
    size_t at = 0;
    for (int l = 0; l < 64; l++)
        if ((layers >> l) & 1)
            at += (size_t)snprintf(v + at, 800 - at, "%s%d", at ? "," : "", l);
}

ecp_status onnx_meta_attach(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model,
                            const char *path, ecp_error *err)
{
    size_t n_kept = (size_t)ecp_mlp_meta_count(m);
    meta->kept = ecp_zalloc(n_kept ? n_kept : 1, sizeof *meta->kept, path, err);
    meta->p = ecp_zalloc(n_kept + ONNX_META_MAX, sizeof *meta->p, path, err);
    if (!meta->kept || !meta->p)
        return ECP_ERR_MEMORY;
    meta->n_e = 0;
    model->n_metadata_props = 0;
    model->metadata_props = meta->p;
    meta_kept(meta, m, model);
    if (meta->upgrade[0])
        snprintf(meta_add(meta, model, ECP_ONNX_META_OPSET_UPGRADE), 800, "%s", meta->upgrade);
    meta_training(meta, m, model);
    meta_pattern(meta, m, model);
    return ECP_OK;
}

static const char *meta_get(const Onnx__ModelProto *model, const char *key)
{
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (e && e->key && e->value && !strcmp(e->key, key))
            return e->value;
    }
    return NULL;
}

static ecp_status meta_num(const Onnx__ModelProto *model, const char *key, double lo, double hi,
                           double *out, const char *path, ecp_error *err)
{
    const char *v = meta_get(model, key);
    if (!v)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata %s is missing (the other "
                        P "* keys are there)", path, key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x) || x < lo || x > hi)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata %s '%.40s': expected a number in "
                        "[%g, %g]", path, key, v, lo, hi);
    *out = x;
    return ECP_OK;
}

ecp_status onnx_meta_read(const Onnx__ModelProto *model, ecp_mlp *m, const char *path,
                          ecp_error *err)
{
    int any = 0;
    for (size_t i = 0; i < model->n_metadata_props && !any; i++) {
        const Onnx__StringStringEntryProto *e = model->metadata_props[i];
        any = e && e->key && !strncmp(e->key, P, strlen(P));
    }
    if (!any)
        return ECP_OK;
    double epochs, batch, lr, mom, wd;
    const char *optim = meta_get(model, P "optim");
    ecp_status s = meta_num(model, P "epochs", 0, 100000, &epochs, path, err);
    if (!s)
        s = meta_num(model, P "batch", 1, 1 << 20, &batch, path, err);
    if (!s)
        s = meta_num(model, P "lr", 1e-12, 100, &lr, path, err);
    if (!s)
        s = meta_num(model, P "momentum", 0, 1, &mom, path, err);
    if (!s)
        s = meta_num(model, P "weight_decay", 0, 10, &wd, path, err);
    if (s)
        return s;
    if (epochs != floor(epochs) || batch != floor(batch))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata " P "epochs and " P "batch must be "
                        "integers", path);
    if (!optim || (strcmp(optim, "adam") && strcmp(optim, "sgd")))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata " P "optim '%.40s': expected adam "
                        "or sgd", path, optim ? optim : "(missing)");
    ecp_train_opts o;
    ecp_train_opts_default(&o);
    o.epochs = (int)epochs;
    o.batch = (int)batch;
    ecp_optim_opts_default(&o.optim, strcmp(optim, "sgd") ? ECP_OPT_ADAM : ECP_OPT_SGD);
    o.optim.lr = lr;
    o.optim.momentum = mom;
    o.optim.weight_decay = wd;
    ecp_mlp_set_training(m, &o);
    return ECP_OK;
}
