/* The interface of a model file that ecprune keeps and writes back (ecp_iface, internal.h):
 * what a pipeline that feeds the file and reads its output relies on, and what describes the
 * file to people (producer, doc strings, metadata_props). Read after the graph was walked;
 * ecprune's own records ("ecprune.train.*", the N:M pattern) are left out of the
 * kept metadata because the writer makes them afresh from the model. */
#include "onnx_util.h"

static int regenerated_key(const char *k)
{
    return !strncmp(k, "ecprune.train.", 14) || !strcmp(k, ECP_ONNX_META_PATTERN) ||
           !strcmp(k, ECP_ONNX_META_PATTERN_LAYERS);
}

static const Onnx__TensorShapeProto *value_shape(const Onnx__ValueInfoProto *const *v, size_t n,
                                                 const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && v[i]->name && !strcmp(v[i]->name, name) && v[i]->type &&
            v[i]->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            v[i]->type->tensor_type)
            return v[i]->type->tensor_type->shape;
    return NULL;
}

/* One dimension: its value, or -1 with its symbolic name (NULL when it has neither). */
static int take_dim(const Onnx__TensorShapeProto__Dimension *d, int64_t *val, char **param)
{
    *val = -1;
    *param = NULL;
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
        *val = d->dim_value;
    else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
             d->dim_param && !(*param = strdup(d->dim_param)))
        return 1;
    return 0;
}

static int take_str(char **dst, const char *src)
{
    *dst = src && *src ? strdup(src) : NULL;
    return src && *src && !*dst;
}

static ecp_status take_shapes(ecp_iface *f, const Onnx__GraphProto *g, const char *path,
                              ecp_error *err)
{
    const Onnx__TensorShapeProto *in = value_shape((const Onnx__ValueInfoProto *const *)g->input,
                                                   g->n_input, f->input);
    const Onnx__TensorShapeProto *out =
        value_shape((const Onnx__ValueInfoProto *const *)g->output, g->n_output, f->output);
    int bad = 0;
    f->out_dim0 = -1;
    if (in && in->n_dim > ECP_IFACE_RANK)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: input '%s' has rank %zu (at most %d "
                        "supported)", path, f->input, in->n_dim, ECP_IFACE_RANK);
    if (in) {
        f->in_rank = (int)in->n_dim;
        for (int i = 0; i < f->in_rank; i++)
            bad |= take_dim(in->dim[i], &f->in_dim[i], &f->in_param[i]);
    }
    if (out && out->n_dim >= 1)
        bad |= take_dim(out->dim[0], &f->out_dim0, &f->out_param0);
    return bad ? ecp_fail(err, ECP_ERR_MEMORY, "%s: out of memory", path) : ECP_OK;
}

static ecp_status take_meta(ecp_iface *f, const Onnx__ModelProto *model, const char *path,
                            ecp_error *err)
{
    size_t n = model->n_metadata_props;
    if (n > ECP_ONNX_MAX_META)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: %zu metadata_props (at most %d)", path, n,
                        ECP_ONNX_MAX_META);
    if (!n)
        return ECP_OK;
    f->meta_key = ecp_zalloc(n, sizeof *f->meta_key, path, err);
    f->meta_val = ecp_zalloc(n, sizeof *f->meta_val, path, err);
    if (!f->meta_key || !f->meta_val)
        return ECP_ERR_MEMORY;
    for (size_t i = 0; i < n; i++) {
        const Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (!e || !e->key || !*e->key || regenerated_key(e->key))
            continue;
        /* Keys must be distinct (onnx.checker): the first of several is kept. Quadratic, but
         * metadata is a handful of entries; a file with thousands is odd, not dangerous. */
        int dup = 0;
        for (int j = 0; j < f->n_meta && !dup; j++)
            dup = !strcmp(f->meta_key[j], e->key);
        if (dup)
            continue;
        f->meta_key[f->n_meta] = strdup(e->key);
        f->meta_val[f->n_meta] = strdup(e->value ? e->value : "");
        if (!f->meta_key[f->n_meta++] || !f->meta_val[f->n_meta - 1])
            return ecp_fail(err, ECP_ERR_MEMORY, "%s: out of memory", path);
    }
    return ECP_OK;
}

static int64_t default_opset(const Onnx__ModelProto *model)
{
    for (size_t i = 0; i < model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = model->opset_import[i];
        const char *d = o->domain ? o->domain : "";
        if ((!*d || !strcmp(d, "ai.onnx")) && o->has_version)
            return o->version;
    }
    return ECP_ONNX_OPSET;
}

static ecp_status fill(ecp_iface *f, const Onnx__ModelProto *model, const onnx_iface_src *src,
                       const char *path, ecp_error *err)
{
    const Onnx__GraphProto *g = model->graph;
    f->flatten = src->flatten;
    f->out_tf = src->out_tf;
    f->out_axis = src->out_axis;
    f->opset = default_opset(model);
    f->ir_version = model->has_ir_version ? model->ir_version : ECP_ONNX_IR_VERSION;
    f->has_model_version = model->has_model_version;
    f->model_version = model->model_version;
    int bad = take_str(&f->input, src->input) | take_str(&f->output, src->output) |
              take_str(&f->producer_name, model->producer_name) |
              take_str(&f->producer_version, model->producer_version) |
              take_str(&f->domain, model->domain) | take_str(&f->doc_string, model->doc_string) |
              take_str(&f->graph_name, g->name) | take_str(&f->graph_doc, g->doc_string);
    if (bad)
        return ecp_fail(err, ECP_ERR_MEMORY, "%s: out of memory", path);
    ecp_status s = take_shapes(f, g, path, err);
    return s ? s : take_meta(f, model, path, err);
}

ecp_status onnx_iface_read(const Onnx__ModelProto *model, const onnx_iface_src *src,
                           ecp_mlp *m, const char *path, ecp_error *err)
{
    ecp_iface *f = ecp_zalloc(1, sizeof *f, path, err);
    if (!f)
        return ECP_ERR_MEMORY;
    ecp_status s = fill(f, model, src, path, err);
    if (s) {
        ecp_iface_free(f);
        return s;
    }
    ecp_iface_free(m->iface);
    m->iface = f;
    return ECP_OK;
}

/* The first opset that defines each op ecprune may write in the form it writes it; an op not
 * listed is in every opset from ECP_ONNX_MIN_OPSET on. */
int64_t onnx_op_opset(const char *op)
{
    static const struct {
        const char *op;
        int64_t opset;
    } need[] = {{"Celu", 12}, {"HardSwish", 14}, {"Mish", 18}, {"Gelu", 20}};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!strcmp(op, need[i].op))
            return need[i].opset;
    return ECP_ONNX_MIN_OPSET;
}

/* The oldest IR version that may carry an opset (onnx/helper.py's VERSION_TABLE). */
int64_t onnx_ir_for_opset(int64_t opset)
{
    return opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}
