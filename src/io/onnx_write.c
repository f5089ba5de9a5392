/* ONNX export: one Gemm per layer plus its activation, packed by protobuf-c straight into the
 * atomic writer. Every message lives in arrays sized up front from the layer count, so the
 * pointers protobuf-c follows stay valid and freeing those few arrays releases the graph. */
#include "onnx_store.h"

#define NAME_LEN 48
#define MAX_NODES_PER_LAYER 10  /* Gemm + the nine nodes of the tanh form of GELU */
#define MAX_TENSORS_PER_LAYER 6 /* weight, bias + its four constants */
#define MAX_ATTRS 2             /* HardSigmoid's alpha and beta */

typedef struct {
    Onnx__NodeProto node;
    char *in[3];
    char *out[1];
    Onnx__AttributeProto attr[MAX_ATTRS];
    Onnx__AttributeProto *attrp[MAX_ATTRS];
    char name[NAME_LEN];
    char in_buf[3][NAME_LEN];
    char out_buf[NAME_LEN];
} onnx_wnode;

typedef struct {
    Onnx__TensorProto t;
    int64_t dims[2];
    float scalar;
    uint8_t *le_copy; /* owned; only on big-endian hosts */
    char name[NAME_LEN];
} onnx_wtensor;

/* The graph's input or output: a float tensor of shape [N, width] (the input may have more
 * dimensions when a Flatten comes first). */
typedef struct {
    Onnx__ValueInfoProto vi;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dim[ECP_IFACE_RANK];
    Onnx__TensorShapeProto__Dimension *dimp[ECP_IFACE_RANK];
} onnx_wio;

typedef struct {
    onnx_wnode *nodes;
    Onnx__NodeProto **node_ptrs;
    size_t n_nodes;
    onnx_wtensor *tens;
    Onnx__TensorProto **tens_ptrs;
    size_t n_tens;
    onnx_wsparse *sparse; /* one per layer at most */
    Onnx__SparseTensorProto **sparse_ptrs;
    size_t n_sparse;
    ecp_onnx_options opts;
    onnx_wio io[2];
    Onnx__ValueInfoProto *in_ptr[1], *out_ptr[1];
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opset_ptr[1];
    Onnx__GraphProto graph;
    Onnx__ModelProto model;
    onnx_meta meta;
    ecp_model_iface io_desc; /* names, shapes, opset: the file's, or ecprune's defaults */
    int64_t opset_v;         /* what the nodes written need, at least the file's */
    const char *opset_why;   /* the op that raised it (NULL: not raised) */
} onnx_builder;

/* protobuf-c's streaming sink: the packed bytes go to the temporary file as they are made. */
typedef struct {
    ProtobufCBuffer base;
    ecp_wfile *wf;
    ecp_error *err;
    ecp_status status;
} onnx_sink;

static void sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
    onnx_sink *s = (onnx_sink *)buf;
    if (s->status == ECP_OK)
        s->status = ecp_wfile_write(s->wf, data, len, s->err);
}

static onnx_wnode *add_node(onnx_builder *b, const char *op, const char *name,
                            const char *const *inputs, int n_in, const char *output)
{
    onnx_wnode *w = &b->nodes[b->n_nodes];
    b->node_ptrs[b->n_nodes++] = &w->node;
    onnx__node_proto__init(&w->node);
    /* protobuf-c only reads these strings while packing, so literals are safe here. */
    w->node.op_type = (char *)op;
    snprintf(w->name, NAME_LEN, "%s", name);
    w->node.name = w->name;
    /* Names of ours are short and copied; a longer one is the model file's input or output
     * name, which lives as long as the model. */
    for (int i = 0; i < n_in; i++) {
        snprintf(w->in_buf[i], NAME_LEN, "%s", inputs[i]);
        w->in[i] = strlen(inputs[i]) < NAME_LEN ? w->in_buf[i] : (char *)inputs[i];
    }
    w->node.n_input = (size_t)n_in;
    w->node.input = w->in;
    snprintf(w->out_buf, NAME_LEN, "%s", output);
    w->out[0] = strlen(output) < NAME_LEN ? w->out_buf : (char *)output;
    w->node.n_output = 1;
    w->node.output = w->out;
    return w;
}

/* A new attribute of the node (at most MAX_ATTRS), initialised with its name and type; the
 * caller sets the value. */
static Onnx__AttributeProto *node_attr(onnx_wnode *w, const char *name,
                                       Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = &w->attr[w->node.n_attribute];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    w->attrp[w->node.n_attribute++] = a;
    w->node.attribute = w->attrp;
    return a;
}

static void node_attr_int(onnx_wnode *w, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = node_attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void node_attr_float(onnx_wnode *w, const char *name, float v)
{
    Onnx__AttributeProto *a = node_attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static onnx_wtensor *add_tensor(onnx_builder *b, const char *name)
{
    onnx_wtensor *w = &b->tens[b->n_tens];
    b->tens_ptrs[b->n_tens++] = &w->t;
    onnx__tensor_proto__init(&w->t);
    snprintf(w->name, NAME_LEN, "%s", name);
    w->t.name = w->name;
    w->t.has_data_type = 1;
    w->t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    return w;
}

static void add_scalar(onnx_builder *b, const char *name, float v)
{
    onnx_wtensor *w = add_tensor(b, name);
    w->scalar = v;
    w->t.n_float_data = 1;
    w->t.float_data = &w->scalar;
}

static ecp_status add_array(onnx_builder *b, const char *name, const float *data, int ndim,
                            int64_t d0, int64_t d1, const char *path, ecp_error *err)
{
    onnx_wtensor *w = add_tensor(b, name);
    w->dims[0] = d0;
    w->dims[1] = d1;
    w->t.n_dims = (size_t)ndim;
    w->t.dims = w->dims;
    size_t n = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    w->t.has_raw_data = 1;
    w->t.raw_data.len = n * sizeof(float);
    if (ecp_onnx_host_le()) {
        w->t.raw_data.data = (uint8_t *)data;
        return ECP_OK;
    }
    w->le_copy = ecp_alloc(n, sizeof(float), path, err);
    if (!w->le_copy)
        return ECP_ERR_MEMORY;
    for (size_t i = 0; i < n; i++)
        ecp_onnx_put_f32_le(w->le_copy + 4 * i, data[i]);
    w->t.raw_data.data = w->le_copy;
    return ECP_OK;
}

/* A weight matrix [rows, cols]: a sparse initializer when asked for and smaller. */
static ecp_status add_weight(onnx_builder *b, const char *name, const float *W, int64_t rows,
                             int64_t cols, const char *path, ecp_error *err)
{
    int used = 0;
    if (b->opts.sparse) {
        onnx_wsparse *w = &b->sparse[b->n_sparse];
        ecp_status s = onnx_sparse_encode(w, name, W, rows, cols, &used, path, err);
        if (s)
            return s;
        if (used) {
            b->sparse_ptrs[b->n_sparse++] = &w->sp;
            return ECP_OK;
        }
    }
    return add_array(b, name, W, 2, rows, cols, path, err);
}

/* x * 0.5 * (1 + erf(x / sqrt 2)) in the node order torch.onnx.export uses at opset 13 (GELU
 * only became an ONNX operator in opset 20). */
static void add_gelu(onnx_builder *b, int l, const char *x, const char *y)
{
    char c_sqrt2[NAME_LEN], c_one[NAME_LEN], c_half[NAME_LEN];
    char div[NAME_LEN], erf[NAME_LEN], add[NAME_LEN], mul[NAME_LEN], nm[NAME_LEN];
    snprintf(c_sqrt2, NAME_LEN, "l%d.gelu.sqrt2", l);
    snprintf(c_one, NAME_LEN, "l%d.gelu.one", l);
    snprintf(c_half, NAME_LEN, "l%d.gelu.half", l);
    snprintf(div, NAME_LEN, "l%d.gelu.div", l);
    snprintf(erf, NAME_LEN, "l%d.gelu.erf", l);
    snprintf(add, NAME_LEN, "l%d.gelu.add", l);
    snprintf(mul, NAME_LEN, "l%d.gelu.mul", l);
    add_scalar(b, c_sqrt2, 1.41421356237309504880f);
    add_scalar(b, c_one, 1.0f);
    add_scalar(b, c_half, 0.5f);
    add_node(b, "Div", div, (const char *[]){x, c_sqrt2}, 2, div);
    add_node(b, "Erf", erf, (const char *[]){div}, 1, erf);
    add_node(b, "Add", add, (const char *[]){erf, c_one}, 2, add);
    add_node(b, "Mul", mul, (const char *[]){x, add}, 2, mul);
    snprintf(nm, NAME_LEN, "l%d.gelu.mul_half", l);
    add_node(b, "Mul", nm, (const char *[]){mul, c_half}, 2, y);
}

/* Names of layer l's activation nodes and constants: "l<l>.<act>.<what>". */
static const char *act_nm(char *buf, int l, ecp_act a, const char *what)
{
    snprintf(buf, NAME_LEN, "l%d.%s.%s", l, ecp_act_name(a), what);
    return buf;
}

/* x * 0.5 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in torch.onnx.export's node order. */
static void add_gelu_tanh(onnx_builder *b, int l, const char *x, const char *y)
{
    ecp_act a = ECP_ACT_GELU_TANH;
    char c0[NAME_LEN], c1[NAME_LEN], c2[NAME_LEN], c3[NAME_LEN], v[8][NAME_LEN];
    static const char *const vn[8] = {"sq", "cube", "cube_c", "inner", "scaled", "tanh",
                                      "one_plus", "mul"};
    add_scalar(b, act_nm(c0, l, a, "c"), 0.044715f);
    add_scalar(b, act_nm(c1, l, a, "k"), 0.7978845608f); /* sqrt(2 / pi) */
    add_scalar(b, act_nm(c2, l, a, "one"), 1.0f);
    add_scalar(b, act_nm(c3, l, a, "half"), 0.5f);
    for (int i = 0; i < 8; i++)
        act_nm(v[i], l, a, vn[i]);
    add_node(b, "Mul", v[0], (const char *[]){x, x}, 2, v[0]);
    add_node(b, "Mul", v[1], (const char *[]){x, v[0]}, 2, v[1]);
    add_node(b, "Mul", v[2], (const char *[]){c0, v[1]}, 2, v[2]);
    add_node(b, "Add", v[3], (const char *[]){x, v[2]}, 2, v[3]);
    add_node(b, "Mul", v[4], (const char *[]){c1, v[3]}, 2, v[4]);
    add_node(b, "Tanh", v[5], (const char *[]){v[4]}, 1, v[5]);
    add_node(b, "Add", v[6], (const char *[]){c2, v[5]}, 2, v[6]);
    add_node(b, "Mul", v[7], (const char *[]){x, v[6]}, 2, v[7]);
    add_node(b, "Mul", act_nm(v[0], l, a, "mul_half"), (const char *[]){c3, v[7]}, 2, y);
}

/* Softplus(beta): Mul(x, beta), Softplus, Div(., beta), as torch.onnx.export writes it. */
static void add_softplus_beta(onnx_builder *b, int l, float beta, const char *x, const char *y)
{
    ecp_act a = ECP_ACT_SOFTPLUS;
    char c[NAME_LEN], m[NAME_LEN], sp[NAME_LEN], nm[NAME_LEN];
    add_scalar(b, act_nm(c, l, a, "beta"), beta);
    add_node(b, "Mul", act_nm(m, l, a, "mul"), (const char *[]){x, c}, 2, m);
    add_node(b, "Softplus", act_nm(sp, l, a, "softplus"), (const char *[]){m}, 1, sp);
    add_node(b, "Div", act_nm(nm, l, a, "div"), (const char *[]){sp, c}, 2, y);
}

/* The op of each activation that is one ONNX node (valid from opset 11 on, as every form
 * below); NULL for those written as several. */
static const char *act_op(ecp_act a)
{
    switch (a) {
    case ECP_ACT_RELU: return "Relu";
    case ECP_ACT_LEAKY_RELU: return "LeakyRelu";
    case ECP_ACT_TANH: return "Tanh";
    case ECP_ACT_SIGMOID: return "Sigmoid";
    case ECP_ACT_SOFTPLUS: return "Softplus";
    case ECP_ACT_ELU: return "Elu";
    case ECP_ACT_HARDSIGMOID: return "HardSigmoid";
    default: return NULL;
    }
}

static void add_activation(onnx_builder *b, int l, ecp_act a, const float *p, const char *x,
                           const char *y)
{
    char nm[NAME_LEN], t[NAME_LEN], c0[NAME_LEN], c1[NAME_LEN];
    onnx_wnode *w;
    switch (a) {
    case ECP_ACT_GELU: add_gelu(b, l, x, y); return;
    case ECP_ACT_GELU_TANH: add_gelu_tanh(b, l, x, y); return;
    case ECP_ACT_SILU:
    case ECP_ACT_HARDSWISH:
        /* x * f(x): HardSwish is an op only from opset 14, and only with torch's slope. */
        w = add_node(b, a == ECP_ACT_SILU ? "Sigmoid" : "HardSigmoid", act_nm(t, l, a, "gate"),
                     (const char *[]){x}, 1, t);
        if (a == ECP_ACT_HARDSWISH) {
            node_attr_float(w, "alpha", p[0]);
            node_attr_float(w, "beta", p[1]);
        }
        add_node(b, "Mul", act_nm(nm, l, a, "mul"), (const char *[]){x, t}, 2, y);
        return;
    case ECP_ACT_CLIP:
        /* From opset 11 the bounds are inputs: scalar (rank-0) tensors. */
        add_scalar(b, act_nm(c0, l, a, "min"), p[0]);
        add_scalar(b, act_nm(c1, l, a, "max"), p[1]);
        add_node(b, "Clip", act_nm(nm, l, a, "clip"), (const char *[]){x, c0, c1}, 3, y);
        return;
    case ECP_ACT_SOFTPLUS:
        if (p[0] != 1.0f) {
            add_softplus_beta(b, l, p[0], x, y);
            return;
        }
        break;
    default: break;
    }
    snprintf(nm, NAME_LEN, "l%d.%s", l, ecp_act_name(a));
    w = add_node(b, act_op(a), nm, (const char *[]){x}, 1, y);
    if (a == ECP_ACT_LEAKY_RELU || a == ECP_ACT_ELU || a == ECP_ACT_HARDSIGMOID)
        node_attr_float(w, "alpha", p[0]);
    if (a == ECP_ACT_HARDSIGMOID)
        node_attr_float(w, "beta", p[1]);
}

/* Layer l reads `in` and writes `final` when it is the last layer, else "l<l>.a" (in out). */
static ecp_status add_layer(onnx_builder *b, const ecp_mlp *m, int l, const char *in,
                            char *out, const char *final, const char *path, ecp_error *err)
{
    char w_name[NAME_LEN], b_name[NAME_LEN], g_name[NAME_LEN], zbuf[NAME_LEN];
    int last = l == ecp_mlp_n_layers(m) - 1;
    int n_in = ecp_mlp_layer_in(m, l), n_out = ecp_mlp_layer_out(m, l);
    ecp_act a = ecp_mlp_layer_act(m, l);
    snprintf(w_name, NAME_LEN, "l%d.weight", l);
    snprintf(b_name, NAME_LEN, "l%d.bias", l);
    snprintf(g_name, NAME_LEN, "l%d.gemm", l);
    snprintf(out, NAME_LEN, "l%d.a", l);
    const char *y = last ? final : out;
    snprintf(zbuf, NAME_LEN, "l%d.z", l);
    const char *z = a == ECP_ACT_IDENTITY ? y : zbuf;
    ecp_status s = add_weight(b, w_name, ecp_mlp_weights_c(m, l), n_out, n_in, path, err);
    if (!s)
        s = add_array(b, b_name, ecp_mlp_bias_c(m, l), 1, n_out, 0, path, err);
    if (s)
        return s;
    onnx_wnode *g = add_node(b, "Gemm", g_name, (const char *[]){in, w_name, b_name}, 3, z);
    node_attr_int(g, "transB", 1); /* W is [out, in] as in torch.nn.Linear */
    if (a != ECP_ACT_IDENTITY)
        add_activation(b, l, a, ecp_mlp_layer_act_params(m, l), z, y);
    return ECP_OK;
}

static void set_dim(Onnx__TensorShapeProto__Dimension *d, int64_t value, const char *param)
{
    if (value >= 0) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = value;
    } else if (param) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = (char *)param;
    }
}

/* rank dimensions from dims/params (the batch dimension first; ecprune's own models have a
 * symbolic "N", which lets any runtime feed any number of rows). */
static void init_io(onnx_wio *io, const char *name, int rank, const int64_t *dims,
                    const char *const *params)
{
    onnx__value_info_proto__init(&io->vi);
    onnx__type_proto__init(&io->type);
    onnx__type_proto__tensor__init(&io->tensor);
    onnx__tensor_shape_proto__init(&io->shape);
    for (int i = 0; i < rank; i++) {
        onnx__tensor_shape_proto__dimension__init(&io->dim[i]);
        io->dimp[i] = &io->dim[i];
        set_dim(&io->dim[i], dims[i], params[i]);
    }
    io->shape.n_dim = (size_t)rank;
    io->shape.dim = io->dimp;
    io->tensor.has_elem_type = 1;
    io->tensor.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    io->tensor.shape = &io->shape;
    io->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    io->type.tensor_type = &io->tensor;
    io->vi.name = (char *)name;
    io->vi.type = &io->type;
}

static void builder_free(onnx_builder *b)
{
    if (b->tens)
        for (size_t i = 0; i < b->n_tens; i++)
            free(b->tens[i].le_copy);
    for (size_t i = 0; i < b->n_sparse; i++)
        onnx_sparse_release(&b->sparse[i]);
    free(b->sparse);
    free(b->sparse_ptrs);
    free(b->nodes);
    free(b->node_ptrs);
    free(b->tens);
    free(b->tens_ptrs);
}

static ecp_status builder_alloc(onnx_builder *b, int n_layers, const char *path, ecp_error *err)
{
    size_t nn = (size_t)n_layers * MAX_NODES_PER_LAYER + 2; /* + Flatten, Softmax */
    size_t nt = (size_t)n_layers * MAX_TENSORS_PER_LAYER;
    memset(b, 0, sizeof *b);
    b->nodes = ecp_zalloc(nn, sizeof *b->nodes, path, err);
    b->node_ptrs = ecp_zalloc(nn, sizeof *b->node_ptrs, path, err);
    b->tens = ecp_zalloc(nt, sizeof *b->tens, path, err);
    b->tens_ptrs = ecp_zalloc(nt, sizeof *b->tens_ptrs, path, err);
    b->sparse = ecp_zalloc((size_t)n_layers, sizeof *b->sparse, path, err);
    b->sparse_ptrs = ecp_zalloc((size_t)n_layers, sizeof *b->sparse_ptrs, path, err);
    if (!b->nodes || !b->node_ptrs || !b->tens || !b->tens_ptrs || !b->sparse ||
        !b->sparse_ptrs) {
        builder_free(b);
        return ECP_ERR_MEMORY;
    }
    return ECP_OK;
}

/* The opset the nodes need: the file's (at least ECP_ONNX_MIN_OPSET), raised to what the
 * newest op written needs. */
static void choose_opset(onnx_builder *b)
{
    b->opset_v = b->io_desc.opset > ECP_ONNX_MIN_OPSET ? b->io_desc.opset : ECP_ONNX_MIN_OPSET;
    b->opset_why = NULL;
    for (size_t i = 0; i < b->n_nodes; i++) {
        int64_t need = onnx_op_opset(b->nodes[i].node.op_type);
        if (need > b->opset_v) {
            b->opset_v = need;
            b->opset_why = b->nodes[i].node.op_type;
        }
    }
    if (!b->opset_why && b->opset_v > b->io_desc.opset)
        b->opset_why = "ecprune writes opset 11 or later";
}

static void finish_model(onnx_builder *b, const ecp_mlp *m)
{
    const ecp_model_iface *d = &b->io_desc;
    const ecp_iface *f = m->iface;
    int64_t out_dims[2] = {d->out_dim0, ecp_mlp_n_out(m)};
    const char *out_params[2] = {d->out_param0, NULL};
    init_io(&b->io[0], d->input, d->in_rank, d->in_dim, d->in_param);
    init_io(&b->io[1], d->output, 2, out_dims, out_params);
    b->in_ptr[0] = &b->io[0].vi;
    b->out_ptr[0] = &b->io[1].vi;
    choose_opset(b);

    onnx__graph_proto__init(&b->graph);
    b->graph.name = f && f->graph_name ? f->graph_name : (char *)"ecprune_mlp";
    b->graph.doc_string = f ? f->graph_doc : NULL;
    b->graph.n_node = b->n_nodes;
    b->graph.node = b->node_ptrs;
    b->graph.n_initializer = b->n_tens;
    b->graph.initializer = b->tens_ptrs;
    b->graph.n_sparse_initializer = b->n_sparse;
    b->graph.sparse_initializer = b->sparse_ptrs;
    b->graph.n_input = 1;
    b->graph.input = b->in_ptr;
    b->graph.n_output = 1;
    b->graph.output = b->out_ptr;

    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = (char *)"";
    b->opset.has_version = 1;
    b->opset.version = b->opset_v;
    b->opset_ptr[0] = &b->opset;

    onnx__model_proto__init(&b->model);
    b->model.has_ir_version = 1;
    int64_t ir = f && f->ir_version > ECP_ONNX_IR_VERSION ? f->ir_version : ECP_ONNX_IR_VERSION;
    b->model.ir_version = ir > onnx_ir_for_opset(b->opset_v) ? ir : onnx_ir_for_opset(b->opset_v);
    /* The producer is the exporter the model came from; ecprune's part is in metadata_props. */
    int ours = !d->from_file || !strcmp(d->producer_name, ECP_ONNX_PRODUCER);
    b->model.producer_name = ours ? (char *)ECP_ONNX_PRODUCER : (char *)d->producer_name;
    b->model.producer_version = ours ? (char *)ECP_VERSION : (char *)d->producer_version;
    if (f) {
        b->model.domain = f->domain;
        b->model.doc_string = f->doc_string;
        b->model.has_model_version = f->has_model_version;
        b->model.model_version = f->model_version;
    }
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opset_ptr;
    b->model.graph = &b->graph;
    if (b->opset_why && d->from_file)
        snprintf(b->meta.upgrade, sizeof b->meta.upgrade, "%lld -> %lld (%s)",
                 (long long)d->opset, (long long)b->opset_v, b->opset_why);
}

/* Flatten(axis=1) in front of the first layer and Softmax / LogSoftmax after the last, when
 * the file the model came from had them. The values between them and the layers have names
 * no exporter uses, so they cannot clash with the file's input and output names. */
static ecp_status build_model(onnx_builder *b, const ecp_mlp *m, const char *path,
                              ecp_error *err)
{
    char in[NAME_LEN], out[NAME_LEN];
    const char *x = b->io_desc.input, *final = b->io_desc.output;
    ecp_out_transform tf = ecp_mlp_output_transform(m);
    if (b->io_desc.flatten) {
        node_attr_int(add_node(b, "Flatten", "flatten", &x, 1, "ecprune.flat"), "axis", 1);
        x = "ecprune.flat";
    }
    snprintf(in, NAME_LEN, "%s", x);
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        ecp_status s = add_layer(b, m, l, l ? in : x, out,
                                 tf != ECP_OUT_NONE ? "ecprune.logits" : final, path, err);
        if (s)
            return s;
        memcpy(in, out, NAME_LEN);
    }
    if (tf != ECP_OUT_NONE) {
        const char *op = tf == ECP_OUT_SOFTMAX ? "Softmax" : "LogSoftmax";
        const char *logits = "ecprune.logits";
        onnx_wnode *w = add_node(b, op, "output_transform", &logits, 1, final);
        node_attr_int(w, "axis", m->iface->out_axis ? m->iface->out_axis : -1);
    }
    finish_model(b, m);
    return onnx_meta_attach(&b->meta, m, &b->model, path, err);
}

ecp_status onnx_pack_model(const Onnx__ModelProto *model, ecp_wfile *wf, ecp_error *err)
{
    onnx_sink sink = {.base = {sink_append}, .wf = wf, .err = err, .status = ECP_OK};
    onnx__model_proto__pack_to_buffer(model, &sink.base);
    return sink.status;
}

/* A model too large for one protobuf goes to external data unasked. */
static ecp_status write_model(Onnx__ModelProto *model, const ecp_onnx_options *o,
                              const char *path, ecp_error *err)
{
    size_t size = onnx__model_proto__get_packed_size(model);
    size_t above = o->external_above && o->external_above < ECP_ONNX_MAX_BYTES
                       ? o->external_above : ECP_ONNX_MAX_BYTES;
    if (o->external_data || size > above)
        return onnx_ext_save(model, path, err);
    ecp_wfile wf;
    ecp_status s = ecp_wfile_open(&wf, path, err);
    if (s)
        return s;
    if ((s = onnx_pack_model(model, &wf, err))) {
        ecp_wfile_abort(&wf);
        return s;
    }
    return ecp_wfile_commit(&wf, err);
}

ecp_status ecp_onnx_save(const ecp_mlp *m, const char *path, ecp_error *err)
{
    return ecp_onnx_save_with(m, path, NULL, err);
}

ecp_status ecp_onnx_save_with(const ecp_mlp *m, const char *path, const ecp_onnx_options *opts,
                              ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(path, err);
    if (!m || !path)
        return ecp_fail(err, ECP_ERR_ARG, "ecp_onnx_save_with: model and path are required");
    /* NaN/Inf would make a file that ecp_onnx_load (rightly) refuses. The fault is the
     * model's (an overflow in training or pruning), not the output file's: say so. */
    ecp_error bad;
    if (ecp_mlp_check_finite(m, "the model", &bad))
        return ecp_fail(err, ECP_ERR_NUMERIC, "%s not written: %s (the model was damaged "
                        "before saving, e.g. by an overflow in training or pruning)", path,
                        bad.msg);
    onnx_builder *b = ecp_zalloc(1, sizeof *b, path, err);
    if (!b)
        return ECP_ERR_MEMORY;
    ecp_status s = builder_alloc(b, ecp_mlp_n_layers(m), path, err);
    if (!s) {
        if (opts)
            b->opts = *opts;
        ecp_mlp_iface(m, &b->io_desc);
        s = build_model(b, m, path, err);
        if (!s)
            s = write_model(&b->model, &b->opts, path, err);
        onnx_meta_release(&b->meta);
        builder_free(b);
    }
    free(b);
    return s;
}

int64_t ecp_onnx_save_opset(const ecp_mlp *m, const char **why)
{
    onnx_builder *b = m ? calloc(1, sizeof *b) : NULL;
    int64_t opset = ECP_ONNX_OPSET;
    if (why)
        *why = NULL;
    if (b && !builder_alloc(b, ecp_mlp_n_layers(m), "model", NULL)) {
        ecp_mlp_iface(m, &b->io_desc);
        if (!build_model(b, m, "model", NULL)) {
            opset = b->opset_v;
            /* A static string: the op names written are literals. */
            if (why && b->io_desc.from_file && b->opset_v > b->io_desc.opset)
                *why = b->opset_why;
        }
        onnx_meta_release(&b->meta);
        builder_free(b);
    }
    free(b);
    return opset;
}
