/* ONNX import: walks the graph from its input to its output, one value at a time, and folds
 * each recognised node pattern into the MLP being built. Everything in the file is untrusted:
 * every count, dimension and name is checked before it is used. */
#include "onnx_read.h"
#include "onnx_store.h"
#include <math.h>

static const char *dtype_name(int32_t t)
{
    static const char *const names[] = {"UNDEFINED", "FLOAT",   "UINT8",     "INT8",
                                        "UINT16",    "INT16",   "INT32",     "INT64",
                                        "STRING",    "BOOL",    "FLOAT16",   "DOUBLE",
                                        "UINT32",    "UINT64",  "COMPLEX64", "COMPLEX128",
                                        "BFLOAT16"};
    return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* ------------------------------------------------------------------ tensors */

static ecp_status tensor_count(onnx_reader *r, const Onnx__TensorProto *t, const char *what,
                               onnx_fvec *v)
{
    if (t->n_dims > MAX_RANK)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: %s has rank %zu (at most %d supported)",
                        r->path, what, t->n_dims, MAX_RANK);
    v->ndim = (int)t->n_dims;
    v->count = 1;
    /* A tensor held inline cannot have more floats than a 2 GiB file has bytes / 4. */
    const uint64_t limit = ECP_ONNX_MAX_BYTES / sizeof(float);
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0 || (uint64_t)d > limit)
            return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: %s has invalid dimension %lld",
                            r->path, what, (long long)d);
        v->dims[i] = d;
        if (d && v->count > limit / (uint64_t)d)
            return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: %s: dimensions overflow", r->path, what);
        v->count *= (size_t)d;
    }
    return ECP_OK;
}

static ecp_status tensor_check_kind(onnx_reader *r, const Onnx__TensorProto *t, const char *what)
{
    int32_t dt = t->has_data_type ? t->data_type : 0;
    if (dt != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: %s has data type %s (%d); only float32 weights are supported",
                        r->path, what, dtype_name(dt), (int)dt);
    if (t->segment)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: %s is a segment (not supported)",
                        r->path, what);
    return ECP_OK;
}

static ecp_status check_finite(onnx_reader *r, const onnx_fvec *v, const char *what)
{
    for (size_t i = 0; i < v->count; i++)
        if (!isfinite(v->data[i]))
            return ecp_fail(r->err, ECP_ERR_NUMERIC, "%s: %s holds a non-finite value at index %zu",
                            r->path, what, i);
    return ECP_OK;
}

static ecp_status tensor_decode(onnx_reader *r, const Onnx__TensorProto *t, const char *what,
                                onnx_fvec *v)
{
    ecp_status s = tensor_check_kind(r, t, what);
    if (!s)
        s = tensor_count(r, t, what, v);
    const uint8_t *bytes; /* raw_data, or read from the external data file (then owned) */
    uint8_t *owned;
    if (!s)
        s = onnx_tensor_bytes(r->path, t, what, v->count * sizeof(float), &bytes, &owned, r->err);
    if (s)
        return s;
    if (!bytes && t->n_float_data != v->count)
        return ecp_fail(r->err, ECP_ERR_FORMAT,
                        "%s: %s: float_data holds %zu values, its dimensions need %zu", r->path,
                        what, t->n_float_data, v->count);
    v->data = ecp_alloc(v->count, sizeof(float), r->path, r->err);
    if (v->data && bytes)
        for (size_t i = 0; i < v->count; i++)
            v->data[i] = ecp_onnx_f32_le(bytes + 4 * i);
    else if (v->data && v->count)
        memcpy(v->data, t->float_data, v->count * sizeof(float));
    free(owned);
    return v->data ? check_finite(r, v, what) : ECP_ERR_MEMORY;
}

void fvec_free(onnx_fvec *v)
{
    free(v->data);
    v->data = NULL;
}

/* ------------------------------------------------------------------ graph lookups */

const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (streq(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static ecp_status attr_int(onnx_reader *r, const Onnx__NodeProto *n, const char *name,
                           int64_t dflt, int64_t *out)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    *out = dflt;
    if (!a)
        return ECP_OK;
    if (!a->has_i || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: node '%s' (%s): attribute %s is not an int",
                        r->path, str(n->name), str(n->op_type), name);
    *out = a->i;
    return ECP_OK;
}

ecp_status attr_float(onnx_reader *r, const Onnx__NodeProto *n, const char *name,
                             float dflt, float *out)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    *out = dflt;
    if (!a)
        return ECP_OK;
    if (!a->has_f || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
        return ecp_fail(r->err, ECP_ERR_FORMAT,
                        "%s: node '%s' (%s): attribute %s is not a float", r->path,
                        str(n->name), str(n->op_type), name);
    *out = a->f;
    return ECP_OK;
}

static const Onnx__TensorProto *find_initializer(const onnx_reader *r, const char *name)
{
    long i = ecp_strmap_get(&r->inits, name);
    return i < 0 ? NULL : r->g->initializer[i];
}

static const Onnx__SparseTensorProto *find_sparse(const onnx_reader *r, const char *name)
{
    long i = ecp_strmap_get(&r->sparse, name);
    return i < 0 ? NULL : r->g->sparse_initializer[i];
}

static const Onnx__NodeProto *find_producer(const onnx_reader *r, const char *name)
{
    long i = ecp_strmap_get(&r->producers, name);
    return i < 0 ? NULL : r->g->node[i];
}

static ecp_status constant_attr(onnx_reader *r, const Onnx__NodeProto *n, const char *what,
                                onnx_fvec *v)
{
    const Onnx__AttributeProto *a = find_attr(n, "value");
    if (a && a->t)
        return tensor_decode(r, a->t, what, v);
    if ((a = find_attr(n, "value_float")) && a->has_f) {
        v->ndim = 0;
        v->count = 1;
    } else if ((a = find_attr(n, "value_floats"))) {
        v->ndim = 1;
        v->count = a->n_floats;
        v->dims[0] = (int64_t)a->n_floats;
    } else {
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: %s: Constant node '%s' has no float tensor value", r->path, what,
                        str(n->name));
    }
    v->data = ecp_alloc(v->count, sizeof(float), r->path, r->err);
    if (!v->data)
        return ECP_ERR_MEMORY;
    if (v->ndim == 0)
        v->data[0] = a->f;
    else if (v->count)
        memcpy(v->data, a->floats, v->count * sizeof(float));
    return check_finite(r, v, what);
}

/* Decodes the value `name` if it is an initializer or a Constant node's output; *found = 0
 * (and no error) when it is neither, so callers can report what they expected instead. */
/* torch.onnx.export stores equal parameters once and names the copies with Identity nodes
 * (a fresh BatchNorm1d's running mean is its bias, both zeros): follows such a chain to the
 * initializer or Constant it starts from, and marks its nodes as read. Else returns name. */
#define IDENTITY_HOPS 16
static const char *through_identity(onnx_reader *r, const char *name)
{
    long hop[IDENTITY_HOPS];
    const char *at = name;
    for (int n = 0; n < IDENTITY_HOPS; n++) {
        long i = ecp_strmap_get(&r->producers, at);
        const Onnx__NodeProto *p = i < 0 ? NULL : r->g->node[i];
        if (find_initializer(r, at) || (p && streq(p->op_type, "Constant"))) {
            for (int k = 0; k < n; k++)
                r->used[hop[k]] = 1;
            return at;
        }
        if (!p || !streq(p->op_type, "Identity") || p->n_input != 1 || !p->input[0])
            return name;
        hop[n] = i;
        at = p->input[0];
    }
    return name;
}

ecp_status get_const(onnx_reader *r, const char *name, onnx_fvec *v, int *found)
{
    char what[256];
    memset(v, 0, sizeof *v);
    *found = 0;
    name = through_identity(r, name);
    const Onnx__TensorProto *t = find_initializer(r, name);
    if (t) {
        *found = 1;
        snprintf(what, sizeof what, "initializer '%s'", name);
        return tensor_decode(r, t, what, v);
    }
    const Onnx__SparseTensorProto *sp = find_sparse(r, name);
    if (sp) {
        *found = 1;
        snprintf(what, sizeof what, "sparse initializer '%s'", name);
        return onnx_sparse_decode(r->path, sp, what, MAX_RANK, &v->ndim, v->dims, &v->count,
                                  &v->data, r->err);
    }
    const Onnx__NodeProto *p = find_producer(r, name);
    if (p && streq(p->op_type, "Constant")) {
        *found = 1;
        snprintf(what, sizeof what, "constant '%s'", name);
        return constant_attr(r, p, what, v);
    }
    return ECP_OK;
}

/* Up to 2 nodes that read `name` (each node counted once); returns how many there are. */
static size_t consumers(const onnx_reader *r, const char *name, size_t idx[2])
{
    long v = ecp_strmap_get(&r->values, name);
    if (v < 0)
        return 0;
    idx[0] = r->readers[v].idx[0];
    idx[1] = r->readers[v].idx[1];
    return r->readers[v].count;
}

/* The index of the only node reading `name`, if it has op type `op`; else -1. */
long sole_consumer(const onnx_reader *r, const char *name, const char *op)
{
    size_t idx[2];
    if (consumers(r, name, idx) != 1 || !streq(r->g->node[idx[0]]->op_type, op))
        return -1;
    return (long)idx[0];
}

/* For a two-input node reading `name`, the other input; NULL otherwise. */
const char *other_input(const Onnx__NodeProto *n, const char *name)
{
    if (n->n_input != 2 || n->n_output != 1)
        return NULL;
    if (streq(n->input[0], name))
        return n->input[1];
    if (streq(n->input[1], name))
        return n->input[0];
    return NULL;
}

/* ------------------------------------------------------------------ layers */

static ecp_status check_width(onnx_reader *r, const Onnx__NodeProto *n, int64_t d)
{
    if (d < 1 || d > ECP_ONNX_MAX_WIDTH)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (%s): layer width %lld outside [1, 2^24]", r->path,
                        str(n->name), str(n->op_type), (long long)d);
    return ECP_OK;
}

/* Takes ownership of W and b (freed on failure). */
static ecp_status push_layer(onnx_reader *r, const Onnx__NodeProto *n, float *W, float *b,
                             int n_in, int n_out)
{
    ecp_status s = ECP_OK;
    if (r->n_layers >= ECP_ONNX_MAX_LAYERS)
        s = ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: more than %d layers", r->path,
                     ECP_ONNX_MAX_LAYERS);
    else if (r->n_layers && r->layers[r->n_layers - 1].n_out != n_in)
        s = ecp_fail(r->err, ECP_ERR_SHAPE,
                     "%s: node '%s' (%s): weight takes %d inputs but the previous layer gives %d",
                     r->path, str(n->name), str(n->op_type), n_in,
                     r->layers[r->n_layers - 1].n_out);
    if (s) {
        free(W);
        free(b);
        return s;
    }
    onnx_rlayer *L = &r->layers[r->n_layers++];
    L->n_in = n_in;
    L->n_out = n_out;
    L->W = W;
    L->b = b;
    L->act = ECP_ACT_IDENTITY;
    L->has_act = 0;
    return ECP_OK;
}

/* The weight operand as [out, in] row-major: B is [out, in] when transposed, else [in, out]. */
static ecp_status weight_matrix(onnx_reader *r, const Onnx__NodeProto *n, const char *name,
                                int trans, float **W, int *n_in, int *n_out)
{
    onnx_fvec v;
    int found;
    *W = NULL;
    ecp_status s = get_const(r, name, &v, &found);
    if (!s && !found)
        s = ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s): weight '%s' is not an initializer or a Constant",
                     r->path, str(n->name), str(n->op_type), name);
    if (!s && v.ndim != 2)
        s = ecp_fail(r->err, ECP_ERR_SHAPE, "%s: node '%s' (%s): weight '%s' has rank %d, not 2",
                     r->path, str(n->name), str(n->op_type), name, v.ndim);
    int64_t rows = v.ndim == 2 ? v.dims[0] : 0, cols = v.ndim == 2 ? v.dims[1] : 0;
    if (!s)
        s = check_width(r, n, rows);
    if (!s)
        s = check_width(r, n, cols);
    if (s) {
        fvec_free(&v);
        return s;
    }
    *n_out = (int)(trans ? rows : cols);
    *n_in = (int)(trans ? cols : rows);
    if (trans) {
        *W = v.data;
        return ECP_OK;
    }
    float *T = ecp_alloc(v.count, sizeof *T, r->path, r->err);
    if (!T) {
        fvec_free(&v);
        return ECP_ERR_MEMORY;
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            T[j * rows + i] = v.data[i * cols + j];
    fvec_free(&v);
    *W = T;
    return ECP_OK;
}

/* A bias of n_out values: shape [n_out] or [1, n_out], or one value broadcast. name may be
 * NULL (no bias). */
static ecp_status bias_vector(onnx_reader *r, const Onnx__NodeProto *n, const char *name,
                              int n_out, float **b)
{
    *b = ecp_zalloc((size_t)n_out, sizeof **b, r->path, r->err);
    if (!*b)
        return ECP_ERR_MEMORY;
    if (!name || !*name)
        return ECP_OK;
    onnx_fvec v;
    int found;
    ecp_status s = get_const(r, name, &v, &found);
    if (!s && !found)
        s = ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s): bias '%s' is not an initializer or a Constant",
                     r->path, str(n->name), str(n->op_type), name);
    int row = v.ndim <= 1 || (v.ndim == 2 && v.dims[0] == 1);
    if (!s && (!row || (v.count != (size_t)n_out && v.count != 1)))
        s = ecp_fail(r->err, ECP_ERR_SHAPE,
                     "%s: node '%s' (%s): bias '%s' has %zu values, the layer has %d outputs",
                     r->path, str(n->name), str(n->op_type), name, v.count, n_out);
    if (!s)
        for (int i = 0; i < n_out; i++)
            (*b)[i] = v.data[v.count == 1 ? 0 : i];
    fvec_free(&v);
    if (s) {
        free(*b);
        *b = NULL;
    }
    return s;
}

ecp_status require_io(onnx_reader *r, const Onnx__NodeProto *n, size_t min_in,
                             size_t max_in, const char *cur)
{
    if (n->n_input < min_in || n->n_input > max_in || n->n_output != 1)
        return ecp_fail(r->err, ECP_ERR_FORMAT,
                        "%s: node '%s' (%s) has %zu inputs and %zu outputs", r->path,
                        str(n->name), str(n->op_type), n->n_input, n->n_output);
    if (!streq(n->input[0], cur))
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (%s) takes '%s' as a parameter, not as its data input",
                        r->path, str(n->name), str(n->op_type), cur);
    return ECP_OK;
}

/* alpha and beta scale the weight and the bias: folded in (double, then rounded). transA=1
 * would take the data as [features, batch], which no Linear layer exports: refused. */
static ecp_status gemm_attrs(onnx_reader *r, const Onnx__NodeProto *n, int *trans_b,
                             float *alpha_out, float *beta_out)
{
    float alpha, beta;
    int64_t ta, tb;
    ecp_status s = attr_float(r, n, "alpha", 1.0f, &alpha);
    if (!s)
        s = attr_float(r, n, "beta", 1.0f, &beta);
    if (!s)
        s = attr_int(r, n, "transA", 0, &ta);
    if (!s)
        s = attr_int(r, n, "transB", 0, &tb);
    if (s)
        return s;
    if (!isfinite(alpha) || !isfinite(beta))
        return ecp_fail(r->err, ECP_ERR_NUMERIC, "%s: node '%s' (Gemm): alpha=%g beta=%g are "
                        "not finite", r->path, str(n->name), (double)alpha, (double)beta);
    if (ta != 0)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (Gemm): transA=%lld takes the data transposed "
                        "([features, batch]), which no Linear layer exports; need transA=0",
                        r->path, str(n->name), (long long)ta);
    if (tb != 0 && tb != 1)
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: node '%s' (Gemm): transB=%lld (0 or 1)",
                        r->path, str(n->name), (long long)tb);
    *trans_b = (int)tb;
    *alpha_out = alpha;
    *beta_out = beta;
    return ECP_OK;
}

static ecp_status step_gemm(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    int tb = 0, n_in = 0, n_out = 0;
    float *W, *b, alpha = 1, beta = 1;
    ecp_status s = require_io(r, n, 2, 3, *cur);
    if (!s)
        s = gemm_attrs(r, n, &tb, &alpha, &beta);
    if (!s)
        s = weight_matrix(r, n, n->input[1], tb, &W, &n_in, &n_out);
    if (s)
        return s;
    s = bias_vector(r, n, n->n_input == 3 ? n->input[2] : NULL, n_out, &b);
    if (s) {
        free(W);
        return s;
    }
    if (alpha != 1.0f)
        for (size_t i = 0; i < (size_t)n_in * n_out; i++)
            W[i] = (float)((double)alpha * W[i]);
    if (beta != 1.0f)
        for (int i = 0; i < n_out; i++)
            b[i] = (float)((double)beta * b[i]);
    onnx_fvec fw = {.count = (size_t)n_in * n_out, .data = W}, fb = {.count = (size_t)n_out,
                                                                     .data = b};
    if ((alpha != 1.0f && (s = check_finite(r, &fw, "Gemm weight times alpha"))) ||
        (beta != 1.0f && (s = check_finite(r, &fb, "Gemm bias times beta")))) {
        free(W);
        free(b);
        return s;
    }
    *cur = n->output[0];
    return push_layer(r, n, W, b, n_in, n_out);
}

/* MatMul(x, W[in, out]), optionally followed by Add(., bias) in either operand order. */
static ecp_status step_matmul(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    int n_in, n_out;
    float *W, *b;
    ecp_status s = require_io(r, n, 2, 2, *cur);
    if (!s)
        s = weight_matrix(r, n, n->input[1], 0, &W, &n_in, &n_out);
    if (s)
        return s;
    const char *bias = NULL;
    *cur = n->output[0];
    long a = sole_consumer(r, n->output[0], "Add");
    if (a >= 0) {
        const Onnx__NodeProto *add = r->g->node[a];
        const char *o = other_input(add, n->output[0]);
        onnx_fvec v = {0};
        int found = 0;
        /* Only a constant operand is a bias; anything else stays for the walk to reject. */
        s = o ? get_const(r, o, &v, &found) : ECP_OK;
        fvec_free(&v);
        if (s) {
            free(W);
            return s;
        }
        if (found) {
            bias = o;
            r->used[a] = 1;
            *cur = add->output[0];
        }
    }
    s = bias_vector(r, n, bias, n_out, &b);
    if (s) {
        free(W);
        return s;
    }
    return push_layer(r, n, W, b, n_in, n_out);
}

/* ------------------------------------------------------------------ folded and skipped nodes */

static ecp_status node_fail(onnx_reader *r, const Onnx__NodeProto *n, ecp_status code,
                            const char *what)
{
    return ecp_fail(r->err, code, "%s: node '%s' (%s): %s", r->path, str(n->name),
                    str(n->op_type), what);
}

/* Whether the value is read by a node or is a graph output. */
static int value_used(const onnx_reader *r, const char *name)
{
    size_t idx[2];
    if (!name || !*name)
        return 0;
    if (consumers(r, name, idx))
        return 1;
    for (size_t i = 0; i < r->g->n_output; i++)
        if (streq(r->g->output[i]->name, name))
            return 1;
    return 0;
}

/* The BatchNormalization parameter input k, which must hold one value per output of the
 * layer it folds into. */
static ecp_status bn_param(onnx_reader *r, const Onnx__NodeProto *n, size_t k, int width,
                           onnx_fvec *v)
{
    static const char *const names[] = {"", "scale", "B", "mean", "var"};
    char msg[200];
    int found = 0;
    ecp_status s = get_const(r, n->input[k], v, &found);
    if (s)
        return s;
    if (!found)
        snprintf(msg, sizeof msg, "%s '%.80s' is not a constant (initializer or Constant); "
                 "cannot fold", names[k], n->input[k]);
    else if (v->count != (size_t)width || v->ndim != 1)
        snprintf(msg, sizeof msg, "%s has %zu values in rank %d, the layer before it has %d "
                 "outputs; cannot fold", names[k], v->count, v->ndim, width);
    else
        return ECP_OK;
    fvec_free(v);
    return node_fail(r, n, found ? ECP_ERR_SHAPE : ECP_ERR_UNSUPPORTED, msg);
}

static ecp_status bn_check(onnx_reader *r, const Onnx__NodeProto *n, onnx_rlayer **L,
                           double *eps)
{
    int64_t training;
    float e;
    ecp_status s = attr_int(r, n, "training_mode", 0, &training);
    if (!s)
        s = attr_float(r, n, "epsilon", 1e-5f, &e);
    if (s)
        return s;
    *L = r->n_layers ? &r->layers[r->n_layers - 1] : NULL;
    if (n->n_input != 5)
        return node_fail(r, n, ECP_ERR_FORMAT, "needs 5 inputs (X, scale, B, mean, var)");
    for (size_t i = 1; i < n->n_output; i++)
        if (value_used(r, n->output[i]))
            training = 1;
    if (training)
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "training mode (it updates running "
                         "statistics); export the model in eval mode to fold it");
    if (!*L)
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "comes before the first Gemm/MatMul layer; "
                         "only a BatchNormalization right after a layer can be folded");
    if ((*L)->has_act)
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "follows an activation; only a "
                         "BatchNormalization right after a Gemm/MatMul layer can be folded");
    if (!isfinite(e) || e < 0)
        return node_fail(r, n, ECP_ERR_FORMAT, "epsilon is negative or not finite");
    *eps = e;
    return ECP_OK;
}

/* BatchNormalization(X, scale, B, mean, var) in inference mode right after a layer: folded
 * into that layer's weights and bias. */
static ecp_status step_batchnorm(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    onnx_rlayer *L = NULL;
    double eps = 0;
    onnx_fvec v[5] = {{0}};
    ecp_status s = n->n_input && streq(n->input[0], *cur) ? bn_check(r, n, &L, &eps)
                                                          : require_io(r, n, 5, 5, *cur);
    for (size_t k = 1; k < 5 && !s; k++)
        s = bn_param(r, n, k, L->n_out, &v[k]);
    for (int i = 0; !s && i < L->n_out; i++)
        if (!((double)v[4].data[i] + eps > 0)) {
            char msg[200];
            snprintf(msg, sizeof msg, "var %g + epsilon %g is not positive at channel %d; "
                     "cannot fold", (double)v[4].data[i], eps, i);
            s = node_fail(r, n, ECP_ERR_NUMERIC, msg);
        }
    if (!s)
        onnx_fold_bn(L->W, L->b, L->n_out, L->n_in, v[1].data, v[2].data, v[3].data, v[4].data,
                     eps);
    for (int k = 1; k < 5; k++)
        fvec_free(&v[k]);
    if (!s)
        *cur = n->output[0];
    return s;
}

/* A BOOL (or integer) constant's single value. */
static ecp_status bool_const(onnx_reader *r, const Onnx__NodeProto *n, const char *name,
                             int *value)
{
    const Onnx__TensorProto *t = find_initializer(r, name);
    const Onnx__NodeProto *p = t ? NULL : find_producer(r, name);
    const Onnx__AttributeProto *a = p && streq(p->op_type, "Constant") ? find_attr(p, "value")
                                                                        : NULL;
    if (a)
        t = a->t;
    if (t && t->has_raw_data && t->raw_data.len >= 1 && t->raw_data.len <= 8) {
        *value = 0;
        for (size_t i = 0; i < t->raw_data.len; i++)
            *value |= t->raw_data.data[i] != 0;
        return ECP_OK;
    }
    if (t && !t->has_raw_data && t->n_int32_data == 1) {
        *value = t->int32_data[0] != 0;
        return ECP_OK;
    }
    return node_fail(r, n, ECP_ERR_UNSUPPORTED, "training_mode is not a constant; only "
                     "inference-mode Dropout is skipped");
}

/* Dropout in inference mode is the identity: skipped. */
static ecp_status step_dropout(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    int training = 0;
    if (n->n_input < 1 || n->n_input > 3 || n->n_output < 1 || n->n_output > 2 ||
        !streq(n->input[0], *cur))
        return require_io(r, n, 1, 3, *cur);
    ecp_status s = n->n_input == 3 && n->input[2] && *n->input[2]
                       ? bool_const(r, n, n->input[2], &training)
                       : ECP_OK;
    if (s)
        return s;
    if (training)
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "training_mode is true; only "
                         "inference-mode Dropout is skipped");
    if (n->n_output == 2 && value_used(r, n->output[1]))
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "its mask output is used; only "
                         "inference-mode Dropout is skipped");
    *cur = n->output[0];
    return ECP_OK;
}

/* A Softmax / LogSoftmax over the features of the last layer's output: the model's output
 * transform. Only Identity may follow it. */
static ecp_status step_softmax(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    int64_t axis;
    ecp_status s = require_io(r, n, 1, 1, *cur);
    if (!s)
        s = attr_int(r, n, "axis", r->opset < 13 ? 1 : -1, &axis);
    if (s)
        return s;
    if (!r->n_layers)
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, "comes before the first Gemm/MatMul "
                         "layer; only a trailing Softmax/LogSoftmax is supported");
    if (axis != 1 && axis != -1) {
        char msg[120];
        snprintf(msg, sizeof msg, "axis=%lld; only the feature axis (1 or -1) is supported",
                 (long long)axis);
        return node_fail(r, n, ECP_ERR_UNSUPPORTED, msg);
    }
    r->out_tf = streq(n->op_type, "Softmax") ? ECP_OUT_SOFTMAX : ECP_OUT_LOG_SOFTMAX;
    r->out_axis = (int)axis;
    r->tf_node = n;
    *cur = n->output[0];
    return ECP_OK;
}

static ecp_status step_flatten(onnx_reader *r, const Onnx__NodeProto *n, const char **cur)
{
    int64_t axis;
    ecp_status s = require_io(r, n, 1, 1, *cur);
    if (!s)
        s = attr_int(r, n, "axis", 1, &axis);
    if (s)
        return s;
    if (axis != 1 || r->n_layers)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (Flatten): only Flatten(axis=1) before the first layer "
                        "is supported (axis=%lld)",
                        r->path, str(n->name), (long long)axis);
    r->flattened = 1;
    *cur = n->output[0];
    return ECP_OK;
}

/* ------------------------------------------------------------------ the walk */

static ecp_status check_domain(onnx_reader *r, const Onnx__NodeProto *n)
{
    const char *d = str(n->domain);
    if (!*d || streq(d, "ai.onnx") || (streq(d, "com.microsoft") && streq(n->op_type, "Gelu")))
        return ECP_OK;
    return ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: node '%s' (%s) from domain '%s' is not "
                    "supported", r->path, str(n->name), str(n->op_type), d);
}

static ecp_status step_node(onnx_reader *r, size_t idx, const char **cur)
{
    const Onnx__NodeProto *n = r->g->node[idx];
    int handled = 0;
    ecp_status s = check_domain(r, n);
    r->used[idx] = 1;
    if (s)
        return s;
    if (r->out_tf && !streq(n->op_type, "Identity"))
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: node '%s' (%s) follows the output "
                        "transform '%s' (%s); only a trailing Softmax/LogSoftmax is supported",
                        r->path, str(n->name), str(n->op_type), str(r->tf_node->name),
                        str(r->tf_node->op_type));
    if (streq(n->op_type, "Gemm"))
        return step_gemm(r, n, cur);
    if (streq(n->op_type, "BatchNormalization"))
        return step_batchnorm(r, n, cur);
    if (streq(n->op_type, "Dropout"))
        return step_dropout(r, n, cur);
    if (streq(n->op_type, "Softmax") || streq(n->op_type, "LogSoftmax"))
        return step_softmax(r, n, cur);
    if (streq(n->op_type, "MatMul"))
        return step_matmul(r, n, cur);
    if (streq(n->op_type, "Flatten"))
        return step_flatten(r, n, cur);
    if (streq(n->op_type, "Identity")) {
        s = require_io(r, n, 1, 1, *cur);
        if (!s)
            *cur = n->output[0];
        return s;
    }
    s = onnx_act_step(r, n, cur, &handled);
    if (s || handled)
        return s;
    return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                    "%s: node '%s' (%s) is not supported (ecprune reads Gemm, MatMul+Add, "
                    "Flatten, Identity, Dropout, BatchNormalization, a trailing Softmax/"
                    "LogSoftmax and activations: Relu, LeakyRelu, Elu, Tanh, Sigmoid, "
                    "Softplus, Clip, HardSigmoid, HardSwish, Gelu, and torch's SiLU and GELU "
                    "subgraphs)",
                    r->path, str(n->name), str(n->op_type));
}

static ecp_status step_branch(onnx_reader *r, const char **cur, const size_t *idx, size_t n)
{
    int matched = 0;
    ecp_status s = onnx_act_branch(r, cur, idx, n, &matched);
    if (s || matched)
        return s;
    return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                    "%s: value '%s' feeds %zu nodes (e.g. '%s' (%s) and '%s' (%s)); only a "
                    "linear chain of layers is supported",
                    r->path, *cur, n, str(r->g->node[idx[0]]->name),
                    str(r->g->node[idx[0]]->op_type), str(r->g->node[idx[1]]->name),
                    str(r->g->node[idx[1]]->op_type));
}

static ecp_status walk(onnx_reader *r)
{
    const char *cur = r->input;
    while (!streq(cur, r->output)) {
        size_t idx[2];
        size_t n = consumers(r, cur, idx);
        if (n == 0)
            return ecp_fail(r->err, ECP_ERR_FORMAT,
                            "%s: value '%s' is not used by any node and is not the graph output "
                            "'%s' (the graph must be a chain from input to output)",
                            r->path, cur, r->output);
        for (size_t k = 0; k < (n < 2 ? n : 2); k++)
            if (r->used[idx[k]])
                return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: node '%s' (%s) is reached twice "
                                "(the graph has a cycle)", r->path,
                                str(r->g->node[idx[k]]->name), str(r->g->node[idx[k]]->op_type));
        ecp_status s = n == 1 ? step_node(r, idx[0], &cur) : step_branch(r, &cur, idx, n);
        if (s)
            return s;
    }
    for (size_t i = 0; i < r->g->n_node; i++)
        if (!r->used[i] && !streq(r->g->node[i]->op_type, "Constant"))
            return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                            "%s: node '%s' (%s) is not on the chain from '%s' to '%s'", r->path,
                            str(r->g->node[i]->name), str(r->g->node[i]->op_type), r->input,
                            r->output);
    if (!r->n_layers)
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: the graph has no Gemm or MatMul layer",
                        r->path);
    return ECP_OK;
}

/* ------------------------------------------------------------------ inputs and outputs */

static ecp_status find_io(onnx_reader *r)
{
    const Onnx__GraphProto *g = r->g;
    size_t n_in = 0;
    /* Before IR 4 (and with keep_initializers_as_inputs) weights are listed as inputs too. */
    for (size_t i = 0; i < g->n_input; i++)
        if (!find_initializer(r, g->input[i]->name) && !find_sparse(r, g->input[i]->name)) {
            if (!g->input[i]->name || !*g->input[i]->name)
                return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: graph input %zu has no name",
                                r->path, i);
            r->input = g->input[i]->name;
            n_in++;
        }
    if (n_in != 1)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: the graph has %zu data inputs; an MLP takes exactly one", r->path,
                        n_in);
    if (g->n_output != 1)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: the graph has %zu outputs; an MLP gives exactly one", r->path,
                        g->n_output);
    if (!g->output[0]->name || !*g->output[0]->name)
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: the graph output has no name", r->path);
    r->output = g->output[0]->name;
    return ECP_OK;
}

static const Onnx__TypeProto__Tensor *tensor_type(const Onnx__ValueInfoProto *vi)
{
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return NULL;
    return vi->type->tensor_type;
}

/* The declared type and shape (when given) must agree with the layers: float, [N, width]
 * (or [N, ...] whose trailing dims multiply to width when the graph starts with Flatten). */
static ecp_status check_value_info(onnx_reader *r, const Onnx__ValueInfoProto *vi, int width,
                                   int flattened)
{
    const Onnx__TypeProto__Tensor *tt = tensor_type(vi);
    if (!tt)
        return ECP_OK;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED, "%s: '%s' has element type %s, not float",
                        r->path, vi->name, dtype_name(tt->elem_type));
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (!sh)
        return ECP_OK;
    if (sh->n_dim < 2 || (!flattened && sh->n_dim != 2))
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: '%s' has rank %zu; ecprune takes [batch, features]%s", r->path,
                        vi->name, sh->n_dim, flattened ? "" : " (or a leading Flatten)");
    uint64_t prod = 1;
    for (size_t i = 1; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            return ECP_OK; /* symbolic: nothing to compare */
        if (d->dim_value < 1 || (uint64_t)d->dim_value > (uint64_t)width)
            return ecp_fail(r->err, ECP_ERR_SHAPE, "%s: '%s' has dimension %lld, the model "
                            "needs %d features", r->path, vi->name, (long long)d->dim_value,
                            width);
        prod *= (uint64_t)d->dim_value; /* each factor <= width <= 2^24, prod stays small */
        if (prod > (uint64_t)width)
            break;
    }
    if (prod != (uint64_t)width)
        return ecp_fail(r->err, ECP_ERR_SHAPE, "%s: '%s' has %llu features, the model needs %d",
                        r->path, vi->name, (unsigned long long)prod, width);
    return ECP_OK;
}

static ecp_status check_io_shapes(onnx_reader *r)
{
    const Onnx__GraphProto *g = r->g;
    for (size_t i = 0; i < g->n_input; i++)
        if (streq(g->input[i]->name, r->input)) {
            ecp_status s = check_value_info(r, g->input[i], r->layers[0].n_in, r->flattened);
            if (s)
                return s;
        }
    return check_value_info(r, g->output[0], r->layers[r->n_layers - 1].n_out, 0);
}

/* ------------------------------------------------------------------ the model */

static ecp_status build_mlp(onnx_reader *r, ecp_mlp **out)
{
    int sizes[ECP_ONNX_MAX_LAYERS + 1];
    ecp_act acts[ECP_ONNX_MAX_LAYERS];
    sizes[0] = r->layers[0].n_in;
    for (int l = 0; l < r->n_layers; l++) {
        sizes[l + 1] = r->layers[l].n_out;
        acts[l] = r->layers[l].act;
    }
    ecp_status s = ecp_mlp_create(out, r->n_layers, sizes, acts, r->err);
    if (s)
        return s;
    for (int l = 0; l < r->n_layers; l++) {
        const onnx_rlayer *L = &r->layers[l];
        memcpy(ecp_mlp_weights(*out, l), L->W, (size_t)L->n_in * L->n_out * sizeof(float));
        memcpy(ecp_mlp_bias(*out, l), L->b, (size_t)L->n_out * sizeof(float));
        if (L->has_act)
            memcpy((*out)->layer[l].act_p, L->act_p, sizeof L->act_p);
    }
    /* The file has no mask: a stored zero is a pruned weight. */
    ecp_mlp_mask_from_zeros(*out);
    return ECP_OK;
}

/* Any protobuf parses as a ModelProto with unknown fields; a graph and the default-domain
 * opset (which every ONNX model must import) tell an actual model apart. */
static ecp_status check_model(onnx_reader *r, const Onnx__ModelProto *model)
{
    if (!model->graph)
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: not an ONNX model (no graph)", r->path);
    for (size_t i = 0; i < model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = model->opset_import[i];
        const char *d = str(o->domain);
        if ((!*d || streq(d, "ai.onnx")) && o->has_version && o->version >= 1)
            return ECP_OK;
    }
    return ecp_fail(r->err, ECP_ERR_FORMAT,
                    "%s: not an ONNX model (no opset_import for the default domain)", r->path);
}

/* Counts far beyond any MLP are refused before anything is sized by them. */
static ecp_status check_counts(onnx_reader *r)
{
    const Onnx__GraphProto *g = r->g;
    const struct {
        size_t n;
        const char *what;
        size_t max;
    } c[] = {{g->n_node, "nodes", ECP_ONNX_MAX_NODES},
             {g->n_initializer, "initializers", ECP_ONNX_MAX_VALUES},
             {g->n_sparse_initializer, "sparse initializers", ECP_ONNX_MAX_VALUES},
             {g->n_input, "inputs", ECP_ONNX_MAX_VALUES},
             {g->n_output, "outputs", ECP_ONNX_MAX_VALUES},
             {g->n_value_info, "value_info entries", ECP_ONNX_MAX_VALUES}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        if (c[i].n > c[i].max)
            return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                            "%s: the graph has %zu %s (at most %zu supported)", r->path, c[i].n,
                            c[i].what, c[i].max);
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->n_input > ECP_ONNX_MAX_ATTRS || n->n_output > ECP_ONNX_MAX_ATTRS ||
            n->n_attribute > ECP_ONNX_MAX_ATTRS)
            return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                            "%s: node '%s' (%s) has %zu inputs, %zu outputs and %zu attributes "
                            "(at most %d each)", r->path, str(n->name), str(n->op_type),
                            n->n_input, n->n_output, n->n_attribute, ECP_ONNX_MAX_ATTRS);
    }
    return ECP_OK;
}

/* Adds node i as a reader of every value it takes (once per value, however often it is
 * named). */
static void add_readers(onnx_reader *r, size_t i)
{
    const Onnx__NodeProto *n = r->g->node[i];
    for (size_t j = 0; j < n->n_input; j++) {
        long v = ecp_strmap_put(&r->values, n->input[j], (long)r->values.n);
        if (v < 0)
            continue;
        onnx_readers *rd = &r->readers[v];
        if (rd->count && rd->last == i)
            continue;
        if (rd->count < 2)
            rd->idx[rd->count] = i;
        rd->count++;
        rd->last = i;
    }
}

static ecp_status build_maps(onnx_reader *r)
{
    const Onnx__GraphProto *g = r->g;
    size_t n_reads = 0, n_writes = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        n_reads += g->node[i]->n_input;
        n_writes += g->node[i]->n_output;
    }
    ecp_status s = ecp_strmap_init(&r->inits, g->n_initializer, r->path, r->err);
    if (!s)
        s = ecp_strmap_init(&r->sparse, g->n_sparse_initializer, r->path, r->err);
    if (!s)
        s = ecp_strmap_init(&r->producers, n_writes, r->path, r->err);
    if (!s)
        s = ecp_strmap_init(&r->values, n_reads, r->path, r->err);
    if (!s && !(r->readers = ecp_zalloc(n_reads ? n_reads : 1, sizeof *r->readers, r->path,
                                        r->err)))
        s = ECP_ERR_MEMORY;
    if (s)
        return s;
    /* The first of several same-named entries wins, as the linear search it replaces did. */
    for (size_t i = 0; i < g->n_initializer; i++)
        ecp_strmap_put(&r->inits, g->initializer[i]->name, (long)i);
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        ecp_strmap_put(&r->sparse, onnx_sparse_name(g->sparse_initializer[i]), (long)i);
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_output; j++)
            ecp_strmap_put(&r->producers, g->node[i]->output[j], (long)i);
    for (size_t i = 0; i < g->n_node; i++)
        add_readers(r, i);
    return ECP_OK;
}

static ecp_status convert(onnx_reader *r, const Onnx__ModelProto *model, ecp_mlp **out)
{
    ecp_status s = check_model(r, model);
    if (s)
        return s;
    r->g = model->graph;
    r->opset = ECP_ONNX_OPSET;
    for (size_t i = 0; i < model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = model->opset_import[i];
        if ((!*str(o->domain) || streq(o->domain, "ai.onnx")) && o->has_version)
            r->opset = o->version;
    }
    if ((s = check_counts(r)) || (s = build_maps(r)))
        return s;
    r->used = ecp_zalloc(r->g->n_node, 1, r->path, r->err);
    r->layers = ecp_zalloc(ECP_ONNX_MAX_LAYERS, sizeof *r->layers, r->path, r->err);
    if (!r->used || !r->layers)
        return ECP_ERR_MEMORY;
    s = find_io(r);
    if (!s)
        s = walk(r);
    if (!s)
        s = check_io_shapes(r);
    if (!s)
        s = build_mlp(r, out);
    onnx_iface_src src = {r->input, r->output, r->flattened, r->out_tf, r->out_axis};
    if (!s && ((s = onnx_meta_read(model, *out, r->path, r->err)) ||
               (s = onnx_iface_read(model, &src, *out, r->path, r->err)))) {
        ecp_mlp_free(*out);
        *out = NULL;
    }
    return s;
}

/* The N:M pattern recorded by ecp_onnx_save ("ecprune.pattern" = "2:4",
 * "ecprune.pattern_layers" = "0,1,2"). Only the claim is read here; `info` checks it. */
static ecp_status read_pattern(const char *path, const Onnx__ModelProto *model, ecp_mlp *m,
                               ecp_error *err)
{
    const char *pat = NULL, *lay = NULL;
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (e && e->key && e->value && !strcmp(e->key, ECP_ONNX_META_PATTERN))
            pat = e->value;
        if (e && e->key && e->value && !strcmp(e->key, ECP_ONNX_META_PATTERN_LAYERS))
            lay = e->value;
    }
    if (!pat)
        return ECP_OK;
    int n, mm;
    uint64_t layers = 0;
    ecp_error e2;
    if (ecp_pattern_parse(pat, &n, &mm, &e2))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata %s: %s", path, ECP_ONNX_META_PATTERN,
                        e2.msg);
    for (const char *p = lay ? lay : ""; *p;) {
        char *end;
        long l = strtol(p, &end, 10);
        if (end == p || l < 0 || l >= m->n_layers || l > 63 || (*end && *end != ','))
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata %s '%.100s': expected layer "
                            "numbers below %d", path, ECP_ONNX_META_PATTERN_LAYERS, lay,
                            m->n_layers);
        layers |= 1ULL << l;
        p = *end ? end + 1 : end;
    }
    if (!layers)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: metadata %s without %s", path,
                        ECP_ONNX_META_PATTERN, ECP_ONNX_META_PATTERN_LAYERS);
    return ecp_mlp_set_pattern(m, n, mm, layers, err);
}

static void reader_free(onnx_reader *r)
{
    if (r->layers)
        for (int l = 0; l < r->n_layers; l++) {
            free(r->layers[l].W);
            free(r->layers[l].b);
        }
    free(r->layers);
    free(r->used);
    free(r->readers);
    ecp_strmap_release(&r->inits);
    ecp_strmap_release(&r->sparse);
    ecp_strmap_release(&r->producers);
    ecp_strmap_release(&r->values);
}

ecp_status ecp_onnx_load(ecp_mlp **out, const char *path, ecp_error *err)
{
    unsigned char *buf;
    size_t len;
    if (!out || !path)
        return ecp_fail(err, ECP_ERR_ARG, "ecp_onnx_load: output and path are required");
    *out = NULL;
    ecp_status s = ecp_read_file(path, &buf, &len, ECP_ONNX_MAX_BYTES, err);
    if (s)
        return s;
    if (len == 0) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: empty file, not an ONNX model", path);
    }
    /* Depth and memory are checked on the wire format: protobuf-c's unpack has no limit on
     * either. The file buffer stays alive during the unpack, so it counts too. */
    uint64_t need = 0;
    s = ecp_onnx_prescan(buf, len, path, &need, err);
    if (!s) {
        char what[4200];
        snprintf(what, sizeof what, "%s: unpacking the protobuf", path);
        s = ecp_budget_check(need + len, what, err);
    }
    if (s) {
        free(buf);
        return s;
    }
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!model)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: not an ONNX model or corrupt protobuf", path);
    onnx_reader r = {.path = path, .err = err};
    s = convert(&r, model, out);
    if (!s && (s = read_pattern(path, model, *out, err))) {
        ecp_mlp_free(*out);
        *out = NULL;
    }
    reader_free(&r);
    onnx__model_proto__free_unpacked(model, NULL);
    return s;
}
