/* The training record of a model (epochs, batch, optimiser) as ONNX metadata_props, so that a
 * baseline trained from scratch later can be trained the way the model was. Keys are
 * "ecprune.train.*"; other producers' metadata is left alone. A file that has any of our keys
 * must have all of them, each valid: the values are untrusted like everything in the file. */
#include "onnx_util.h"
#include <errno.h>
#include <math.h>

#define P "ecprune.train."

static void meta_add(onnx_meta *meta, Onnx__ModelProto *model, const char *key)
{
    size_t i = model->n_metadata_props;
    onnx__string_string_entry_proto__init(&meta->e[i]);
    meta->e[i].key = (char *)key;
    meta->e[i].value = meta->val[i];
    meta->p[i] = &meta->e[i];
    model->n_metadata_props = i + 1;
    model->metadata_props = meta->p;
}

void onnx_meta_attach(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model)
{
    ecp_train_opts o;
    model->n_metadata_props = 0;
    if (ecp_mlp_training(m, &o)) {
        static const char *const keys[ONNX_META_N] = {P "epochs", P "batch", P "optim", P "lr",
                                                      P "momentum", P "weight_decay"};
        for (int i = 0; i < ONNX_META_N; i++)
            meta_add(meta, model, keys[i]);
        snprintf(meta->val[0], sizeof meta->val[0], "%d", o.epochs);
        snprintf(meta->val[1], sizeof meta->val[1], "%d", o.batch);
        snprintf(meta->val[2], sizeof meta->val[2], "%s",
                 o.optim.kind == ECP_OPT_SGD ? "sgd" : "adam");
        snprintf(meta->val[3], sizeof meta->val[3], "%.17g", o.optim.lr);
        snprintf(meta->val[4], sizeof meta->val[4], "%.17g", o.optim.momentum);
        snprintf(meta->val[5], sizeof meta->val[5], "%.17g", o.optim.weight_decay);
    }
    int n, mm;
    uint64_t layers;
    if (ecp_mlp_pattern(m, &n, &mm, &layers)) {
        size_t k = model->n_metadata_props;
        meta_add(meta, model, ECP_ONNX_META_PATTERN);
        meta_add(meta, model, ECP_ONNX_META_PATTERN_LAYERS);
        snprintf(meta->val[k], sizeof meta->val[k], "%d:%d", n, mm);
        char *v = meta->val[k + 1];
        size_t at = 0;
        v[0] = 0;
        for (int l = 0; l < 64; l++)
            if ((layers >> l) & 1)
                at += (size_t)snprintf(v + at, sizeof meta->val[k + 1] - at, "%s%d",
                                       at ? "," : "", l);
    }
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
