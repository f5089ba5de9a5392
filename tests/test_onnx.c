/* ONNX import/export: round trips, hand-built graphs in the forms other exporters use, and
 * malformed files (each must fail with the right code and a message naming the file). */
#include "testutil.h"
#include "onnx.pb-c.h"

/* ------------------------------------------------------------------ helpers */

static ecp_mlp *make_model(int n_layers, const int *sizes, ecp_act act, uint64_t seed)
{
    ecp_act acts[8];
    ecp_mlp *m;
    ecp_error err;
    assert_true(n_layers <= 8);
    for (int l = 0; l < 8; l++)
        acts[l] = act;
    assert_int_equal(ecp_mlp_create(&m, n_layers, sizes, acts, &err), ECP_OK);
    ecp_mlp_init(m, seed);
    /* Prune every third weight so masks have something to carry. */
    for (int l = 0; l < n_layers; l++) {
        size_t nw = (size_t)sizes[l] * sizes[l + 1];
        for (size_t i = 0; i < nw; i += 3) {
            ecp_mlp_weights(m, l)[i] = 0.0f;
            ecp_mlp_pruned(m, l)[i] = 1;
        }
    }
    return m;
}

static void assert_same_model(const ecp_mlp *a, const ecp_mlp *b)
{
    assert_int_equal(ecp_mlp_n_layers(a), ecp_mlp_n_layers(b));
    for (int l = 0; l < ecp_mlp_n_layers(a); l++) {
        assert_int_equal(ecp_mlp_layer_in(a, l), ecp_mlp_layer_in(b, l));
        assert_int_equal(ecp_mlp_layer_out(a, l), ecp_mlp_layer_out(b, l));
        assert_int_equal(ecp_mlp_layer_act(a, l), ecp_mlp_layer_act(b, l));
        size_t nw = (size_t)ecp_mlp_layer_in(a, l) * ecp_mlp_layer_out(a, l);
        assert_memory_equal(ecp_mlp_weights_c(a, l), ecp_mlp_weights_c(b, l), nw * 4);
        assert_memory_equal(ecp_mlp_bias_c(a, l), ecp_mlp_bias_c(b, l),
                            (size_t)ecp_mlp_layer_out(a, l) * 4);
        assert_memory_equal(ecp_mlp_pruned_c(a, l), ecp_mlp_pruned_c(b, l), nw);
    }
}

static void tmp_path(char *dir, size_t n, char *path, size_t pn, const char *name)
{
    tu_mkdtemp(dir, n);
    snprintf(path, pn, "%s/%s", dir, name);
}

static void expect_fail(const char *path, ecp_status code, const char *needle)
{
    ecp_mlp *m = (ecp_mlp *)1;
    ecp_error err = {0};
    ecp_status s = ecp_onnx_load(&m, path, &err);
    if (s != code || !strstr(err.msg, path) || (needle && !strstr(err.msg, needle)))
        print_error("load %s: got %s (%s), want %s with '%s'\n", path, ecp_status_name(s),
                    err.msg, ecp_status_name(code), needle ? needle : "");
    assert_int_equal(s, code);
    assert_null(m);
    assert_non_null(strstr(err.msg, path));
    if (needle)
        assert_non_null(strstr(err.msg, needle));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *buf;
    ecp_error err;
    assert_int_equal(ecp_read_file(path, &buf, len, (size_t)1 << 30, &err), ECP_OK);
    return buf;
}

static Onnx__ModelProto *unpack_file(const char *path)
{
    size_t len;
    unsigned char *buf = slurp(path, &len);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(mp);
    return mp;
}

static void pack_file(const Onnx__ModelProto *mp, const char *path)
{
    size_t n = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(onnx__model_proto__pack(mp, buf), n);
    tu_write(path, buf, n);
    free(buf);
}

/* A saved 3-5-4-2 relu model, unpacked for a test to damage. */
static Onnx__ModelProto *saved_model(const char *path, ecp_act act)
{
    const int sizes[] = {3, 5, 4, 2};
    ecp_mlp *m = make_model(3, sizes, act, 7);
    ecp_error err;
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    ecp_mlp_free(m);
    return unpack_file(path);
}

static Onnx__TensorProto *initializer(Onnx__ModelProto *mp, const char *name)
{
    for (size_t i = 0; i < mp->graph->n_initializer; i++)
        if (strcmp(mp->graph->initializer[i]->name, name) == 0)
            return mp->graph->initializer[i];
    fail_msg("no initializer %s", name);
    return NULL;
}

/* ------------------------------------------------------------------ graph builder
 * Everything is malloc'ed so that onnx__model_proto__free_unpacked releases it. */

static char *dupstr(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

#define GROW(arr, n) \
    do { \
        (arr) = realloc((arr), ((n) + 1) * sizeof *(arr)); \
        assert_non_null(arr); \
    } while (0)

static Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = calloc(1, sizeof *vi);
    Onnx__TypeProto *tp = calloc(1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
    assert_true(vi && tp && tt && sh);
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    sh->dim = calloc((size_t)rank, sizeof *sh->dim);
    sh->n_dim = (size_t)rank;
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = calloc(1, sizeof *d);
        assert_non_null(d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = dupstr("batch");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = dupstr(name);
    vi->type = tp;
    return vi;
}

static Onnx__ModelProto *new_model(const char *in, int in_rank, const int64_t *in_dims,
                                   const char *out)
{
    Onnx__ModelProto *mp = calloc(1, sizeof *mp);
    Onnx__GraphProto *g = calloc(1, sizeof *g);
    Onnx__OperatorSetIdProto *op = calloc(1, sizeof *op);
    assert_true(mp && g && op);
    onnx__model_proto__init(mp);
    onnx__graph_proto__init(g);
    onnx__operator_set_id_proto__init(op);
    mp->has_ir_version = 1;
    mp->ir_version = 7;
    op->has_version = 1;
    op->version = 13;
    mp->opset_import = malloc(sizeof *mp->opset_import);
    mp->opset_import[0] = op;
    mp->n_opset_import = 1;
    mp->graph = g;
    g->input = malloc(sizeof *g->input);
    g->input[0] = value_info(in, in_rank, in_dims);
    g->n_input = 1;
    g->output = malloc(sizeof *g->output);
    g->output[0] = value_info(out, 0, NULL);
    /* rank 0 would be a scalar; drop the shape so the output is "unknown shape" */
    free(g->output[0]->type->tensor_type->shape->dim);
    free(g->output[0]->type->tensor_type->shape);
    g->output[0]->type->tensor_type->shape = NULL;
    g->n_output = 1;
    return mp;
}

static Onnx__TensorProto *new_tensor(const char *name, int ndim, const int64_t *dims,
                                     const float *data, int raw)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    assert_non_null(t);
    onnx__tensor_proto__init(t);
    size_t n = 1;
    t->dims = malloc(((size_t)ndim + 1) * sizeof *t->dims);
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    t->n_dims = (size_t)ndim;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = name ? dupstr(name) : NULL;
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = n * 4;
        t->raw_data.data = malloc(n * 4);
        memcpy(t->raw_data.data, data, n * 4); /* the test host is little-endian (x86-64) */
    } else {
        t->n_float_data = n;
        t->float_data = malloc(n * 4);
        memcpy(t->float_data, data, n * 4);
    }
    return t;
}

static void add_init(Onnx__ModelProto *mp, Onnx__TensorProto *t)
{
    Onnx__GraphProto *g = mp->graph;
    GROW(g->initializer, g->n_initializer);
    g->initializer[g->n_initializer++] = t;
}

static Onnx__NodeProto *add_node(Onnx__ModelProto *mp, const char *op, const char *in0,
                                 const char *in1, const char *in2, const char *out)
{
    Onnx__NodeProto *n = calloc(1, sizeof *n);
    assert_non_null(n);
    onnx__node_proto__init(n);
    n->op_type = dupstr(op);
    n->name = malloc(64);
    snprintf(n->name, 64, "%s_%s", op, out);
    const char *ins[3] = {in0, in1, in2};
    n->input = malloc(3 * sizeof *n->input);
    for (int i = 0; i < 3 && ins[i]; i++)
        n->input[n->n_input++] = dupstr(ins[i]);
    n->output = malloc(sizeof *n->output);
    n->output[0] = dupstr(out);
    n->n_output = 1;
    Onnx__GraphProto *g = mp->graph;
    GROW(g->node, g->n_node);
    g->node[g->n_node++] = n;
    return n;
}

static void add_attr(Onnx__NodeProto *n, const char *name, int is_float, float f, int64_t i)
{
    Onnx__AttributeProto *a = calloc(1, sizeof *a);
    assert_non_null(a);
    onnx__attribute_proto__init(a);
    a->name = dupstr(name);
    a->has_type = 1;
    if (is_float) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = f;
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = i;
    }
    GROW(n->attribute, n->n_attribute);
    n->attribute[n->n_attribute++] = a;
}

static void add_constant(Onnx__ModelProto *mp, const char *out, Onnx__TensorProto *t)
{
    Onnx__NodeProto *n = add_node(mp, "Constant", NULL, NULL, NULL, out);
    Onnx__AttributeProto *a = calloc(1, sizeof *a);
    assert_non_null(a);
    onnx__attribute_proto__init(a);
    a->name = dupstr("value");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    a->t = t;
    n->attribute = malloc(sizeof *n->attribute);
    n->attribute[0] = a;
    n->n_attribute = 1;
}

static void add_scalar_const(Onnx__ModelProto *mp, const char *out, float v)
{
    add_constant(mp, out, new_tensor(NULL, 0, NULL, &v, 1));
}

/* ------------------------------------------------------------------ round trips */

static void roundtrip_one(int n_layers, const int *sizes, ecp_act act, const char *path)
{
    ecp_mlp *m = make_model(n_layers, sizes, act, 100 + (uint64_t)act);
    ecp_mlp *back = NULL;
    ecp_error err;
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    if (ecp_onnx_load(&back, path, &err) != ECP_OK)
        fail_msg("load %s (%s, %d layers): %s", path, ecp_act_name(act), n_layers, err.msg);
    assert_same_model(m, back);

    /* Identical parameters must give bit-identical outputs. */
    float x[4 * 6];
    for (int i = 0; i < 4 * sizes[0]; i++)
        x[i] = (float)(i % 7) * 0.37f - 1.1f;
    ecp_ws *wa, *wb;
    assert_int_equal(ecp_ws_create(&wa, m, 4, &err), ECP_OK);
    assert_int_equal(ecp_ws_create(&wb, back, 4, &err), ECP_OK);
    ecp_mlp_forward(m, wa, x, 4);
    ecp_mlp_forward(back, wb, x, 4);
    assert_memory_equal(ecp_ws_output(wa), ecp_ws_output(wb),
                        (size_t)4 * sizes[n_layers] * sizeof(float));
    ecp_ws_free(wa);
    ecp_ws_free(wb);
    ecp_mlp_free(m);
    ecp_mlp_free(back);
}

static void test_roundtrip_every_act_and_depth(void **state)
{
    (void)state;
    const int sizes[] = {6, 5, 4, 3, 2};
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "m.onnx");
    for (int a = 0; a < ECP_ACT_COUNT; a++)
        for (int depth = 1; depth <= 4; depth++)
            roundtrip_one(depth, sizes, (ecp_act)a, path);
    /* The atomic writer leaves the model and nothing else. */
    assert_int_equal(tu_count_files(dir), 1);
    tu_rmdir(dir);
}

static void test_roundtrip_mixed_acts_linear_output(void **state)
{
    (void)state;
    char dir[64], path[128];
    ecp_mlp *m, *back;
    ecp_error err;
    tmp_path(dir, sizeof dir, path, sizeof path, "mixed.onnx");
    assert_int_equal(ecp_mlp_create_arch(&m, "7-6-5-4-3-2", ECP_ACT_GELU, &err), ECP_OK);
    ecp_mlp_init(m, 3);
    ecp_mlp_set_layer_act(m, 1, ECP_ACT_LEAKY_RELU);
    ecp_mlp_set_layer_act(m, 2, ECP_ACT_SOFTPLUS);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    assert_same_model(m, back);
    assert_int_equal(ecp_mlp_layer_act(back, 4), ECP_ACT_IDENTITY);
    ecp_mlp_free(m);
    ecp_mlp_free(back);
    tu_rmdir(dir);
}

static void test_masks_from_zeros(void **state)
{
    (void)state;
    const int sizes[] = {4, 3};
    const ecp_act acts[] = {ECP_ACT_RELU};
    char dir[64], path[128];
    ecp_mlp *m, *back;
    ecp_error err;
    tmp_path(dir, sizeof dir, path, sizeof path, "z.onnx");
    assert_int_equal(ecp_mlp_create(&m, 1, sizes, acts, &err), ECP_OK);
    ecp_mlp_init(m, 1);
    /* Zeros that were never marked pruned still come back pruned: the file has no mask. */
    ecp_mlp_weights(m, 0)[0] = 0.0f;
    ecp_mlp_weights(m, 0)[5] = -0.0f;
    ecp_mlp_weights(m, 0)[11] = 0.0f;
    assert_int_equal(ecp_mlp_n_pruned(m), 0);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_pruned(back), 3);
    assert_true(ecp_mlp_pruned_c(back, 0)[0] && ecp_mlp_pruned_c(back, 0)[5] &&
                ecp_mlp_pruned_c(back, 0)[11]);
    assert_false(ecp_mlp_pruned_c(back, 0)[1]);
    ecp_mlp_free(m);
    ecp_mlp_free(back);
    tu_rmdir(dir);
}

/* The saved graph is Gemm(transB=1) + activation nodes at opset 13, as ecp_onnx_save documents. */
static void test_saved_graph_layout(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "g.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_LEAKY_RELU);
    assert_true(mp->ir_version == 7 || mp->ir_version == 8);
    assert_string_equal(mp->producer_name, "ecprune");
    assert_int_equal(mp->n_opset_import, 1);
    assert_int_equal(mp->opset_import[0]->version, 13);
    Onnx__GraphProto *g = mp->graph;
    assert_int_equal(g->n_node, 6);
    assert_string_equal(g->node[0]->op_type, "Gemm");
    assert_string_equal(g->node[1]->op_type, "LeakyRelu");
    assert_float_equal(g->node[1]->attribute[0]->f, 0.01f, 0);
    assert_string_equal(g->input[0]->name, "input");
    assert_string_equal(g->output[0]->name, "output");
    assert_string_equal(g->input[0]->type->tensor_type->shape->dim[0]->dim_param, "N");
    assert_int_equal(g->input[0]->type->tensor_type->shape->dim[1]->dim_value, 3);
    Onnx__TensorProto *w = initializer(mp, "l0.weight");
    assert_int_equal(w->n_dims, 2);
    assert_int_equal(w->dims[0], 5);
    assert_int_equal(w->dims[1], 3);
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------ other exporters' forms */

/* Flatten -> MatMul(Constant W[in,out]) -> Add(bias, .) -> Relu -> Gemm(transB=0, no C)
 * -> Identity -> Div/Erf/Add/Mul(0.5 first) GELU, on a [N, 2, 2] input. */
static void test_matmul_constant_flatten_gelu(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "built.onnx");
    const float W0[4 * 3] = {0.5f, -1, 0.25f, 1, 0, -0.5f, 2, 0.125f, 0, -1, 1, 0.75f};
    const float b0[3] = {0.1f, -0.2f, 0.3f};
    const float W1[3 * 2] = {1, -2, 0.5f, 0.25f, -1, 3};
    const int64_t in_dims[3] = {-1, 2, 2}, w0d[2] = {4, 3}, b0d[1] = {3}, w1d[2] = {3, 2};
    Onnx__ModelProto *mp = new_model("x", 3, in_dims, "y");
    add_init(mp, new_tensor("b0", 1, b0d, b0, 0));
    add_init(mp, new_tensor("W1", 2, w1d, W1, 1));
    add_constant(mp, "W0", new_tensor(NULL, 2, w0d, W0, 1));
    add_node(mp, "Flatten", "x", NULL, NULL, "f");
    add_node(mp, "MatMul", "f", "W0", NULL, "mm");
    add_node(mp, "Add", "b0", "mm", NULL, "z0");
    add_node(mp, "Relu", "z0", NULL, NULL, "a0");
    add_attr(add_node(mp, "Gemm", "a0", "W1", NULL, "z1"), "transB", 0, 0, 0);
    add_node(mp, "Identity", "z1", NULL, NULL, "z1i");
    add_scalar_const(mp, "inv_sqrt2", 0.70710678f);
    add_scalar_const(mp, "one", 1.0f);
    add_scalar_const(mp, "half", 0.5f);
    add_node(mp, "Mul", "z1i", "inv_sqrt2", NULL, "s");
    add_node(mp, "Erf", "s", NULL, NULL, "e");
    add_node(mp, "Add", "one", "e", NULL, "e1");
    add_node(mp, "Mul", "half", "z1i", NULL, "h");
    add_node(mp, "Mul", "e1", "h", NULL, "y");
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);

    ecp_mlp *m;
    ecp_error err;
    if (ecp_onnx_load(&m, path, &err) != ECP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ecp_mlp_n_layers(m), 2);
    assert_int_equal(ecp_mlp_n_in(m), 4);
    assert_int_equal(ecp_mlp_n_out(m), 2);
    assert_int_equal(ecp_mlp_layer_act(m, 0), ECP_ACT_RELU);
    assert_int_equal(ecp_mlp_layer_act(m, 1), ECP_ACT_GELU);
    /* MatMul's [in, out] weight is stored transposed as [out, in]; the zero is pruned. */
    assert_float_equal(ecp_mlp_weights(m, 0)[0 * 4 + 1], 1.0f, 0);
    assert_float_equal(ecp_mlp_weights(m, 0)[2 * 4 + 3], 0.75f, 0);
    assert_true(ecp_mlp_pruned_c(m, 0)[1 * 4 + 1]);
    assert_int_equal(ecp_mlp_n_pruned(m), 2);

    const float x[4] = {0.3f, -0.7f, 1.2f, 0.05f};
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, 1, &err), ECP_OK);
    ecp_mlp_forward(m, ws, x, 1);
    float a0[3];
    for (int j = 0; j < 3; j++) {
        double s = b0[j];
        for (int i = 0; i < 4; i++)
            s += x[i] * W0[i * 3 + j];
        a0[j] = s > 0 ? (float)s : 0.0f;
    }
    for (int k = 0; k < 2; k++) {
        double z = 0;
        for (int j = 0; j < 3; j++)
            z += a0[j] * W1[j * 2 + k];
        double want = 0.5 * z * (1 + erf(z / sqrt(2.0)));
        assert_close(ecp_ws_output(ws)[k], want, 1e-5, 1e-6);
    }
    ecp_ws_free(ws);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------ bad input */

static void test_missing_and_empty(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "absent.onnx");
    expect_fail(path, ECP_ERR_IO, NULL);
    tu_write(path, "", 0);
    expect_fail(path, ECP_ERR_FORMAT, NULL);
    tu_rmdir(dir);
}

static void test_random_bytes(void **state)
{
    (void)state;
    char dir[64], path[128];
    unsigned char junk[4096];
    ecp_rng r;
    tmp_path(dir, sizeof dir, path, sizeof path, "junk.onnx");
    ecp_rng_seed(&r, 42);
    for (int trial = 0; trial < 20; trial++) {
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)ecp_rng_u64(&r);
        tu_write(path, junk, 64 + 200 * (size_t)trial);
        expect_fail(path, ECP_ERR_FORMAT, NULL);
    }
    tu_rmdir(dir);
}

static void test_every_truncation(void **state)
{
    (void)state;
    char dir[64], path[128], cut[160];
    size_t len;
    tmp_path(dir, sizeof dir, path, sizeof path, "full.onnx");
    snprintf(cut, sizeof cut, "%s/cut.onnx", dir);
    onnx__model_proto__free_unpacked(saved_model(path, ECP_ACT_GELU), NULL);
    unsigned char *buf = slurp(path, &len);
    for (size_t n = 0; n < len; n++) {
        tu_write(cut, buf, n);
        ecp_mlp *m = NULL;
        ecp_error err = {0};
        ecp_status s = ecp_onnx_load(&m, cut, &err);
        if (s == ECP_OK)
            fail_msg("a %zu-byte prefix of a %zu-byte model loaded", n, len);
        assert_null(m);
        assert_non_null(strstr(err.msg, cut));
    }
    expect_fail(cut, ECP_ERR_FORMAT, NULL); /* len - 1 bytes */
    free(buf);
    tu_rmdir(dir);
}

/* Every single-byte corruption either loads a model or fails with a message; none crashes
 * (the ASan build runs this too). */
static void test_byte_flips(void **state)
{
    (void)state;
    char dir[64], path[128], bad[160];
    const unsigned char flips[] = {0x01, 0x80, 0xff};
    size_t len;
    tmp_path(dir, sizeof dir, path, sizeof path, "full.onnx");
    snprintf(bad, sizeof bad, "%s/bad.onnx", dir);
    onnx__model_proto__free_unpacked(saved_model(path, ECP_ACT_GELU), NULL);
    unsigned char *buf = slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof flips; k++) {
            buf[i] ^= flips[k];
            tu_write(bad, buf, len);
            buf[i] ^= flips[k];
            ecp_mlp *m = NULL;
            ecp_error err = {0};
            if (ecp_onnx_load(&m, bad, &err) == ECP_OK)
                ecp_mlp_free(m);
            else
                assert_non_null(strstr(err.msg, bad));
        }
    free(buf);
    tu_rmdir(dir);
}

static void test_unsupported_node(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "conv.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_RELU);
    char *keep = mp->graph->node[2]->op_type;
    mp->graph->node[2]->op_type = (char *)"Conv";
    pack_file(mp, path);
    mp->graph->node[2]->op_type = keep; /* free_unpacked must not free the literal */
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "'l1.gemm' (Conv)");
    tu_rmdir(dir);
}

static void test_bad_leaky_alpha(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "leaky.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_LEAKY_RELU);
    mp->graph->node[1]->attribute[0]->f = 0.2f;
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "alpha=0.2");
    tu_rmdir(dir);
}

static void test_bad_gemm_attributes(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "gemm.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_RELU);
    Onnx__NodeProto *g = mp->graph->node[2];
    add_attr(g, "alpha", 1, INFINITY, 0);
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_NUMERIC, "alpha=inf");
    g->attribute[1]->f = 1.0f;
    add_attr(g, "transA", 0, 0, 1);
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "transA=1");
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

static void test_weight_dims_mismatch(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "dims.onnx");
    /* Swapping [5, 3] to [3, 5] keeps the byte count but breaks the 3 -> 5 -> 4 chain. */
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_TANH);
    Onnx__TensorProto *w = initializer(mp, "l0.weight");
    w->dims[0] = 3;
    w->dims[1] = 5;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_SHAPE, "'l0.gemm' (Gemm): bias");
    /* A dimension that the data cannot fill. */
    w->dims[0] = 5;
    w->dims[1] = 4;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_FORMAT, "l0.weight");
    /* Dimensions whose product overflows. */
    w->dims[0] = INT64_C(1) << 20;
    w->dims[1] = INT64_C(1) << 20;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_FORMAT, "overflow");
    w->dims[0] = -5;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_FORMAT, "invalid dimension");
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

static void test_bias_dims_mismatch(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "bias.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_TANH);
    Onnx__TensorProto *b = initializer(mp, "l1.bias");
    b->dims[0] = 2;
    b->raw_data.len = 8;
    pack_file(mp, path);
    b->raw_data.len = 16;
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_SHAPE, "l1.bias");
    tu_rmdir(dir);
}

static void test_raw_data_short(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "short.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_SIGMOID);
    Onnx__TensorProto *w = initializer(mp, "l2.weight");
    w->raw_data.len -= 4;
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_FORMAT, "raw_data");
    tu_rmdir(dir);
}

static void test_nan_and_inf_weight(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "nan.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_SOFTPLUS);
    Onnx__TensorProto *w = initializer(mp, "l1.weight");
    const float bad[2] = {NAN, -INFINITY};
    for (int k = 0; k < 2; k++) {
        memcpy(w->raw_data.data + 8, &bad[k], 4);
        pack_file(mp, path);
        expect_fail(path, ECP_ERR_NUMERIC, "l1.weight");
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

static void test_double_weights(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "f64.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_RELU);
    initializer(mp, "l0.weight")->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "DOUBLE");
    tu_rmdir(dir);
}

static void test_broken_chain(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "chain.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_RELU);
    /* The second Gemm reads a value nothing produces: l0.a dangles. */
    char *keep = mp->graph->node[2]->input[0];
    mp->graph->node[2]->input[0] = (char *)"nowhere";
    pack_file(mp, path);
    mp->graph->node[2]->input[0] = keep;
    expect_fail(path, ECP_ERR_FORMAT, "'l0.a'");
    /* A second output. */
    mp->graph->n_output = 2;
    GROW(mp->graph->output, 1);
    mp->graph->output[1] = mp->graph->output[0];
    pack_file(mp, path);
    mp->graph->n_output = 1;
    expect_fail(path, ECP_ERR_UNSUPPORTED, "outputs");
    /* A branch: the first activation feeds two Gemms. */
    keep = mp->graph->node[4]->input[0];
    mp->graph->node[4]->input[0] = (char *)"l0.a";
    pack_file(mp, path);
    mp->graph->node[4]->input[0] = keep;
    expect_fail(path, ECP_ERR_UNSUPPORTED, "feeds 2 nodes");
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

static void test_wrong_input_width(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "width.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_RELU);
    mp->graph->input[0]->type->tensor_type->shape->dim[1]->dim_value = 9;
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_SHAPE, "'input'");
    tu_rmdir(dir);
}

static void test_save_unwritable(void **state)
{
    (void)state;
    const int sizes[] = {3, 2};
    char dir[64], path[160];
    ecp_mlp *m = make_model(1, sizes, ECP_ACT_RELU, 1);
    ecp_error err = {0};
    assert_int_equal(ecp_onnx_save(m, "/proc/x/m.onnx", &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "/proc/x/m.onnx"));
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/no/such/dir/m.onnx", dir);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(tu_count_files(dir), 0);
    /* Non-finite parameters are refused before anything is written. */
    snprintf(path, sizeof path, "%s/nan.onnx", dir);
    ecp_mlp_bias(m, 0)[1] = NAN;
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "nan.onnx not written: the model: layer 0 bias 1 is not "
                                    "finite (the model was damaged before saving"));
    assert_int_equal(tu_count_files(dir), 0);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* The training record travels in metadata_props; without one a model has none, and bad or
 * partial records are refused with the key named. */
static void test_training_record(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "rec.onnx");
    const int sizes[] = {3, 5, 2};
    ecp_mlp *m = make_model(2, sizes, ECP_ACT_TANH, 3), *back;
    ecp_error err = {0};
    ecp_train_opts o, got;
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    ecp_train_opts_default(&got);
    assert_int_equal(ecp_mlp_training(back, &got), 0);
    ecp_mlp_free(back);
    ecp_train_opts_default(&o);
    o.epochs = 37;
    o.batch = 19;
    ecp_optim_opts_default(&o.optim, ECP_OPT_SGD);
    o.optim.lr = 0.0123;
    o.optim.momentum = 0.8;
    o.optim.weight_decay = 1e-4;
    ecp_mlp_set_training(m, &o);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    ecp_mlp_free(m);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    assert_int_equal(ecp_mlp_training(back, &got), 1);
    assert_int_equal(got.epochs, 37);
    assert_int_equal(got.batch, 19);
    assert_int_equal(got.optim.kind, ECP_OPT_SGD);
    assert_true(got.optim.lr == 0.0123 && got.optim.momentum == 0.8 &&
                got.optim.weight_decay == 1e-4);
    /* a clone keeps it */
    ecp_mlp *c;
    assert_int_equal(ecp_mlp_clone(back, &c, &err), ECP_OK);
    ecp_train_opts_default(&got);
    assert_int_equal(ecp_mlp_training(c, &got), 1);
    assert_int_equal(got.epochs, 37);
    ecp_mlp_free(c);
    ecp_mlp_free(back);
    static const struct { const char *key, *value, *needle; } bad[] = {
        {"ecprune.train.epochs", "-3", "ecprune.train.epochs '-3'"},
        {"ecprune.train.batch", "2.5", "integers"},
        {"ecprune.train.lr", "nan", "ecprune.train.lr 'nan'"},
        {"ecprune.train.optim", "rmsprop", "'rmsprop': expected adam or sgd"},
        {"ecprune.train.momentum", "", "ecprune.train.momentum ''"},
        {"ecprune.train.weight_decay", NULL, "ecprune.train.weight_decay is missing"},
    };
    char orig[128];
    snprintf(orig, sizeof orig, "%s/orig.onnx", dir);
    assert_int_equal(rename(path, orig), 0);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        Onnx__ModelProto *mp = unpack_file(orig);
        assert_int_equal(mp->n_metadata_props, 6);
        for (size_t i = 0; i < mp->n_metadata_props; i++) {
            Onnx__StringStringEntryProto *e = mp->metadata_props[i];
            if (strcmp(e->key, bad[b].key))
                continue;
            if (bad[b].value) {
                free(e->value);
                e->value = strdup(bad[b].value);
            } else {
                free(e->key);
                e->key = strdup("someone.else");
            }
        }
        pack_file(mp, path);
        onnx__model_proto__free_unpacked(mp, NULL);
        expect_fail(path, ECP_ERR_FORMAT, bad[b].needle);
    }
    /* other producers' metadata alone is not a record */
    Onnx__ModelProto *mp = unpack_file(orig);
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        free(mp->metadata_props[i]->key);
        mp->metadata_props[i]->key = strdup(i ? "x" : "author");
    }
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    assert_int_equal(ecp_mlp_training(back, &got), 0);
    ecp_mlp_free(back);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_act_and_depth),
        cmocka_unit_test(test_roundtrip_mixed_acts_linear_output),
        cmocka_unit_test(test_masks_from_zeros),
        cmocka_unit_test(test_saved_graph_layout),
        cmocka_unit_test(test_matmul_constant_flatten_gelu),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_unsupported_node),
        cmocka_unit_test(test_bad_leaky_alpha),
        cmocka_unit_test(test_bad_gemm_attributes),
        cmocka_unit_test(test_weight_dims_mismatch),
        cmocka_unit_test(test_bias_dims_mismatch),
        cmocka_unit_test(test_raw_data_short),
        cmocka_unit_test(test_nan_and_inf_weight),
        cmocka_unit_test(test_double_weights),
        cmocka_unit_test(test_broken_chain),
        cmocka_unit_test(test_wrong_input_width),
        cmocka_unit_test(test_save_unwritable),
        cmocka_unit_test(test_training_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
