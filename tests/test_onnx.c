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

/* LeakyRelu's alpha is the layer's slope; one out of range is refused naming the node. */
static void test_leaky_alpha(void **state)
{
    (void)state;
    char dir[64], path[128];
    ecp_mlp *m;
    ecp_error err;
    tmp_path(dir, sizeof dir, path, sizeof path, "leaky.onnx");
    Onnx__ModelProto *mp = saved_model(path, ECP_ACT_LEAKY_RELU);
    mp->graph->node[1]->attribute[0]->f = 0.2f;
    pack_file(mp, path);
    assert_int_equal(ecp_onnx_load(&m, path, &err), ECP_OK);
    assert_true(ecp_mlp_layer_act_params(m, 0)[0] == 0.2f);
    ecp_mlp_free(m);
    mp->graph->node[1]->attribute[0]->f = NAN;
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    expect_fail(path, ECP_ERR_FORMAT, "(LeakyRelu): activation leaky_relu: slope nan is not "
                                      "finite");
    tu_rmdir(dir);
}

/* Activations with parameters other than the defaults, one per layer, come back with the
 * same floats (test_roundtrip_every_act_and_depth covers the defaults). */
static void test_roundtrip_act_params(void **state)
{
    (void)state;
    static const struct {
        ecp_act a;
        float p[ECP_ACT_NPARAM];
    } layers[] = {{ECP_ACT_ELU, {0.7f}},          {ECP_ACT_LEAKY_RELU, {0.2f}},
                  {ECP_ACT_SOFTPLUS, {2.5f}},     {ECP_ACT_CLIP, {-1.25f, 2.0f}},
                  {ECP_ACT_HARDSIGMOID, {0.3f, 0.4f}}, {ECP_ACT_HARDSWISH, {0.25f, 0.5f}},
                  {ECP_ACT_HARDSWISH, {1.0f / 6.0f, 0.5f}}};
    enum { L = sizeof layers / sizeof *layers + 1 };
    int sizes[L + 1];
    char dir[64], path[128];
    ecp_mlp *m, *back;
    ecp_error err;
    for (int l = 0; l <= L; l++)
        sizes[l] = 3 + l % 3;
    tmp_path(dir, sizeof dir, path, sizeof path, "params.onnx");
    m = make_model(L, sizes, ECP_ACT_RELU, 9);
    for (int l = 0; l + 1 < L; l++)
        assert_int_equal(ecp_mlp_set_layer_act_params(m, l, layers[l].a, layers[l].p, &err),
                         ECP_OK);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    assert_int_equal(ecp_onnx_load(&back, path, &err), ECP_OK);
    assert_same_model(m, back);
    for (int l = 0; l + 1 < L; l++) {
        assert_int_equal(ecp_mlp_layer_act(back, l), layers[l].a);
        assert_memory_equal(ecp_mlp_layer_act_params(back, l), ecp_mlp_layer_act_params(m, l),
                            ECP_ACT_NPARAM * sizeof(float));
    }
    ecp_mlp_free(m);
    ecp_mlp_free(back);
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

/* ------------------------------------------------------------------ folding and the interface */

/* A one-value BOOL initializer (Dropout's training_mode). */
static void add_bool_init(Onnx__ModelProto *mp, const char *name, int v)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    assert_non_null(t);
    onnx__tensor_proto__init(t);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    t->name = dupstr(name);
    t->has_raw_data = 1;
    t->raw_data.len = 1;
    t->raw_data.data = malloc(1);
    t->raw_data.data[0] = (uint8_t)v;
    add_init(mp, t);
}

/* [batch, 3] -> Gemm(alpha 2, beta 0.5) -> BatchNormalization -> Relu -> Dropout -> Gemm(no
 * bias) -> y. bn_var0 and eps let the callers make the BatchNormalization unfoldable. */
static Onnx__ModelProto *bn_model(float bn_var0, float eps)
{
    static const float W0[4 * 3] = {0.5f, -1, 0.25f, 1, 0.3f, -0.5f, 2, 0.125f, 0.7f, -1, 1, 0.75f};
    static const float b0[4] = {0.1f, -0.2f, 0.3f, 0.4f};
    static const float W1[2 * 4] = {1, -2, 0.5f, 0.25f, -1, 3, 0.2f, -0.6f};
    float g[4] = {1.5f, -0.5f, 0.8f, 2}, be[4] = {0.1f, 0.2f, -0.3f, 0}, mu[4] = {0.2f, -1, 0.5f, 0};
    float var[4] = {bn_var0, 0.5f, 2, 0.01f};
    const int64_t in_dims[2] = {-1, 3}, w0d[2] = {4, 3}, c4[1] = {4}, w1d[2] = {2, 4};
    Onnx__ModelProto *mp = new_model("x", 2, in_dims, "y");
    add_init(mp, new_tensor("W0", 2, w0d, W0, 1));
    add_init(mp, new_tensor("b0", 1, c4, b0, 0));
    add_init(mp, new_tensor("W1", 2, w1d, W1, 1));
    add_init(mp, new_tensor("g", 1, c4, g, 1));
    add_init(mp, new_tensor("be", 1, c4, be, 1));
    add_init(mp, new_tensor("mu", 1, c4, mu, 1));
    add_init(mp, new_tensor("var", 1, c4, var, 1));
    add_bool_init(mp, "train", 0);
    add_scalar_const(mp, "ratio", 0.3f);
    Onnx__NodeProto *gemm = add_node(mp, "Gemm", "x", "W0", "b0", "z0");
    add_attr(gemm, "transB", 0, 0, 1);
    add_attr(gemm, "alpha", 1, 2.0f, 0);
    add_attr(gemm, "beta", 1, 0.5f, 0);
    Onnx__NodeProto *bn = add_node(mp, "BatchNormalization", "z0", "g", "be", "bn");
    bn->input = realloc(bn->input, 5 * sizeof *bn->input);
    bn->input[3] = dupstr("mu");
    bn->input[4] = dupstr("var");
    bn->n_input = 5;
    add_attr(bn, "epsilon", 1, eps, 0);
    add_node(mp, "Relu", "bn", NULL, NULL, "a0");
    add_node(mp, "Dropout", "a0", "ratio", "train", "d0");
    add_attr(add_node(mp, "Gemm", "d0", "W1", NULL, "y"), "transB", 0, 0, 1);
    return mp;
}

/* The folded model computes what the graph computes: checked in double against the formula. */
static void test_bn_gemm_fold(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "bn.onnx");
    Onnx__ModelProto *mp = bn_model(0.3f, 1e-3f);
    pack_file(mp, path);
    ecp_mlp *m;
    ecp_error err;
    if (ecp_onnx_load(&m, path, &err) != ECP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ecp_mlp_n_layers(m), 2);
    assert_int_equal(ecp_mlp_layer_act(m, 0), ECP_ACT_RELU);
    const float x[2][3] = {{0.3f, -0.7f, 1.2f}, {-1.5f, 0.2f, 0.9f}};
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, 2, &err), ECP_OK);
    ecp_mlp_forward(m, ws, &x[0][0], 2);
    Onnx__GraphProto *g = mp->graph;
    const float *W0 = (const float *)g->initializer[0]->raw_data.data;
    const float *b0 = g->initializer[1]->float_data, *W1 = (const float *)g->initializer[2]->raw_data.data;
    const float *ga = (const float *)g->initializer[3]->raw_data.data;
    const float *be = (const float *)g->initializer[4]->raw_data.data;
    const float *mu = (const float *)g->initializer[5]->raw_data.data;
    const float *var = (const float *)g->initializer[6]->raw_data.data;
    for (int n = 0; n < 2; n++) {
        double a[4];
        for (int i = 0; i < 4; i++) {
            double z = 0.5 * b0[i];
            for (int j = 0; j < 3; j++)
                z += 2.0 * W0[i * 3 + j] * x[n][j];
            z = ga[i] * (z - mu[i]) / sqrt((double)var[i] + 1e-3) + be[i];
            a[i] = z > 0 ? z : 0;
        }
        for (int k = 0; k < 2; k++) {
            double y = 0;
            for (int i = 0; i < 4; i++)
                y += W1[k * 4 + i] * a[i];
            assert_close(ecp_ws_output(ws)[n * 2 + k], y, 1e-5, 1e-6);
        }
    }
    /* The mean named through two Identity nodes (torch's shared initializers) folds the same. */
    float first[4];
    memcpy(first, ecp_ws_output(ws), sizeof first);
    Onnx__NodeProto *bn = mp->graph->node[2];
    assert_string_equal(bn->input[3], "mu");
    add_node(mp, "Identity", "mu", NULL, NULL, "mu1");
    add_node(mp, "Identity", "mu1", NULL, NULL, "mu2");
    free(bn->input[3]);
    bn->input[3] = dupstr("mu2");
    pack_file(mp, path);
    ecp_mlp *m2;
    if (ecp_onnx_load(&m2, path, &err) != ECP_OK)
        fail_msg("%s", err.msg);
    ecp_mlp_forward(m2, ws, &x[0][0], 2);
    assert_memory_equal(ecp_ws_output(ws), first, sizeof first);
    ecp_mlp_free(m2);
    ecp_ws_free(ws);
    ecp_mlp_free(m);
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

/* BatchNormalization that cannot be folded: refused with one line naming the node. */
static void test_bn_refused(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "bn.onnx");
    Onnx__ModelProto *mp = bn_model(0.0f, 0.0f); /* zero variance, zero epsilon */
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_NUMERIC, "'BatchNormalization_bn'");
    expect_fail(path, ECP_ERR_NUMERIC, "var 0 + epsilon 0 is not positive at channel 0");
    onnx__model_proto__free_unpacked(mp, NULL);

    mp = bn_model(0.3f, 1e-3f); /* after the activation: Gemm -> Relu -> BN */
    Onnx__GraphProto *g = mp->graph;
    Onnx__NodeProto *bn = g->node[2], *relu = g->node[3];
    assert_string_equal(bn->op_type, "BatchNormalization");
    free(relu->input[0]);
    relu->input[0] = dupstr("z0");
    free(bn->input[0]);
    bn->input[0] = dupstr("a0");
    free(g->node[4]->input[0]);
    g->node[4]->input[0] = dupstr("bn");
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "'BatchNormalization_bn' (BatchNormalization): "
                "follows an activation");
    onnx__model_proto__free_unpacked(mp, NULL);

    mp = bn_model(0.3f, 1e-3f); /* in front of the first layer */
    g = mp->graph;
    free(g->node[1]->input[0]);
    g->node[1]->input[0] = dupstr("x"); /* Gemm reads x ... */
    free(g->node[2]->input[0]);
    g->node[2]->input[0] = dupstr("x"); /* ... and so does BN: rewire BN -> Gemm */
    free(g->node[1]->input[0]);
    g->node[1]->input[0] = dupstr("bn");
    free(g->node[3]->input[0]);
    g->node[3]->input[0] = dupstr("z0");
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "comes before the first Gemm/MatMul layer");
    onnx__model_proto__free_unpacked(mp, NULL);

    mp = bn_model(0.3f, 1e-3f); /* a parameter of the wrong size */
    Onnx__TensorProto *mu = initializer(mp, "mu");
    mu->dims[0] = 3;
    mu->raw_data.len = 12;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_SHAPE, "mean has 3 values");
    onnx__model_proto__free_unpacked(mp, NULL);

    mp = bn_model(0.3f, 1e-3f); /* training mode */
    add_attr(mp->graph->node[2], "training_mode", 0, 0, 1);
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "training mode");
    onnx__model_proto__free_unpacked(mp, NULL);

    mp = bn_model(0.3f, 1e-3f); /* Dropout in training mode */
    initializer(mp, "train")->raw_data.data[0] = 1;
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "'Dropout_d0' (Dropout): training_mode is true");
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

static void add_meta(Onnx__ModelProto *mp, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
    assert_non_null(e);
    onnx__string_string_entry_proto__init(e);
    e->key = dupstr(k);
    e->value = dupstr(v);
    GROW(mp->metadata_props, mp->n_metadata_props);
    mp->metadata_props[mp->n_metadata_props++] = e;
}

/* [batch, 2, 3] 'pixels' -> Flatten -> Gemm -> Relu -> Gemm -> LogSoftmax(axis 1) -> 'logp'. */
static Onnx__ModelProto *iface_model(int opset)
{
    float W0[4 * 6], W1[3 * 4], b1[3] = {0.1f, 0, -0.1f};
    for (int i = 0; i < 24; i++)
        W0[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    for (int i = 0; i < 12; i++)
        W1[i] = (float)((i * 5) % 7) / 7.0f - 0.5f;
    const int64_t in_dims[3] = {-1, 2, 3}, w0d[2] = {4, 6}, w1d[2] = {3, 4}, c3[1] = {3};
    Onnx__ModelProto *mp = new_model("pixels", 3, in_dims, "logp");
    mp->opset_import[0]->version = opset;
    mp->producer_name = dupstr("pytorch");
    mp->producer_version = dupstr("1.13.0");
    mp->doc_string = dupstr("a digit classifier");
    add_meta(mp, "author", "me");
    add_init(mp, new_tensor("W0", 2, w0d, W0, 1));
    add_init(mp, new_tensor("W1", 2, w1d, W1, 1));
    add_init(mp, new_tensor("b1", 1, c3, b1, 1));
    add_node(mp, "Flatten", "pixels", NULL, NULL, "f");
    add_attr(add_node(mp, "Gemm", "f", "W0", NULL, "z0"), "transB", 0, 0, 1);
    add_node(mp, "Relu", "z0", NULL, NULL, "a0");
    add_attr(add_node(mp, "Gemm", "a0", "W1", "b1", "z1"), "transB", 0, 0, 1);
    add_attr(add_node(mp, "LogSoftmax", "z1", NULL, NULL, "logp"), "axis", 0, 0, 1);
    return mp;
}

static void assert_iface(const ecp_mlp *m, int64_t opset)
{
    ecp_model_iface io;
    ecp_mlp_iface(m, &io);
    assert_true(io.from_file);
    assert_string_equal(io.input, "pixels");
    assert_string_equal(io.output, "logp");
    assert_int_equal(io.in_rank, 3);
    assert_int_equal(io.in_dim[0], -1);
    assert_string_equal(io.in_param[0], "batch");
    assert_int_equal(io.in_dim[1], 2);
    assert_int_equal(io.in_dim[2], 3);
    assert_true(io.flatten);
    assert_int_equal(io.opset, opset);
    assert_string_equal(io.producer_name, "pytorch");
    assert_int_equal(ecp_mlp_output_transform(m), ECP_OUT_LOG_SOFTMAX);
}

/* The interface survives load, clone and save; the output transform is applied by predict. */
static void test_interface_roundtrip(void **state)
{
    (void)state;
    char dir[64], path[128], back_path[160];
    tmp_path(dir, sizeof dir, path, sizeof path, "in.onnx");
    snprintf(back_path, sizeof back_path, "%s/out.onnx", dir);
    Onnx__ModelProto *mp = iface_model(12);
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    ecp_mlp *m, *c, *back;
    ecp_error err;
    if (ecp_onnx_load(&m, path, &err) != ECP_OK)
        fail_msg("%s", err.msg);
    assert_iface(m, 12);
    assert_int_equal(ecp_mlp_meta_count(m), 1);
    assert_string_equal(ecp_mlp_meta_key(m, 0), "author");
    assert_int_equal(ecp_mlp_set_meta(m, "ecprune.prune.method", "ec", &err), ECP_OK);
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    ecp_mlp_free(m);
    assert_iface(c, 12);
    assert_int_equal(ecp_onnx_save(c, back_path, &err), ECP_OK);

    mp = unpack_file(back_path);
    Onnx__GraphProto *g = mp->graph;
    assert_int_equal(mp->opset_import[0]->version, 12);
    assert_string_equal(mp->producer_name, "pytorch");
    assert_string_equal(mp->doc_string, "a digit classifier");
    assert_string_equal(g->input[0]->name, "pixels");
    assert_int_equal(g->input[0]->type->tensor_type->shape->n_dim, 3);
    assert_string_equal(g->input[0]->type->tensor_type->shape->dim[0]->dim_param, "batch");
    assert_string_equal(g->output[0]->name, "logp");
    assert_string_equal(g->node[0]->op_type, "Flatten");
    assert_string_equal(g->node[g->n_node - 1]->op_type, "LogSoftmax");
    assert_int_equal(g->node[g->n_node - 1]->attribute[0]->i, 1);
    assert_int_equal(mp->n_metadata_props, 2);
    assert_string_equal(mp->metadata_props[0]->key, "author");
    assert_string_equal(mp->metadata_props[1]->value, "ec");
    onnx__model_proto__free_unpacked(mp, NULL);

    assert_int_equal(ecp_onnx_load(&back, back_path, &err), ECP_OK);
    assert_iface(back, 12);
    assert_same_model(c, back);
    /* predict = log_softmax of the forward pass */
    ecp_dataset *d;
    assert_int_equal(ecp_dataset_create(&d, 2, 6, 3, 1, &err), ECP_OK);
    for (int i = 0; i < 12; i++)
        d->x[i] = (float)i / 6.0f - 1.0f;
    d->label[0] = d->label[1] = 0;
    float p[6];
    assert_int_equal(ecp_predict(back, d, p, &err), ECP_OK);
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, back, 2, &err), ECP_OK);
    ecp_mlp_forward(back, ws, d->x, 2);
    for (int n = 0; n < 2; n++) {
        const float *z = ecp_ws_output(ws) + 3 * n;
        double lse = log(exp((double)z[0]) + exp((double)z[1]) + exp((double)z[2]));
        for (int k = 0; k < 3; k++)
            assert_close(p[3 * n + k], z[k] - lse, 1e-6, 1e-6);
    }
    ecp_ws_free(ws);
    ecp_dataset_free(d);
    ecp_mlp_free(back);
    ecp_mlp_free(c);

    /* nothing but Identity may follow the output transform */
    mp = iface_model(13);
    Onnx__NodeProto *ls = mp->graph->node[mp->graph->n_node - 1];
    free(ls->output[0]);
    ls->output[0] = dupstr("ls");
    add_node(mp, "Relu", "ls", NULL, NULL, "logp");
    pack_file(mp, path);
    expect_fail(path, ECP_ERR_UNSUPPORTED, "follows the output transform");
    onnx__model_proto__free_unpacked(mp, NULL);
    tu_rmdir(dir);
}

/* An opset below 11 is raised to 11 on save, and the file says so. */
static void test_opset_floor(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmp_path(dir, sizeof dir, path, sizeof path, "old.onnx");
    Onnx__ModelProto *mp = iface_model(9);
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_onnx_load(&m, path, &err), ECP_OK);
    const char *why = NULL;
    assert_int_equal(ecp_onnx_save_opset(m, &why), 11);
    assert_non_null(why);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    ecp_mlp_free(m);
    mp = unpack_file(path);
    assert_int_equal(mp->opset_import[0]->version, 11);
    int found = 0;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        found |= !strcmp(mp->metadata_props[i]->key, "ecprune.opset_upgrade") &&
                 !strncmp(mp->metadata_props[i]->value, "9 -> 11", 7);
    assert_true(found);
    onnx__model_proto__free_unpacked(mp, NULL);
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
        cmocka_unit_test(test_leaky_alpha),
        cmocka_unit_test(test_roundtrip_act_params),
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
        cmocka_unit_test(test_bn_gemm_fold),
        cmocka_unit_test(test_bn_refused),
        cmocka_unit_test(test_interface_roundtrip),
        cmocka_unit_test(test_opset_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
