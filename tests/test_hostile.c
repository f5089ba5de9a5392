/* Hostile input for the library: crafted model and data files made here (a small protobuf
 * writer below, no binaries checked in), the memory budget, output targets that are not regular
 * files, escaping of names taken from files. Each test asserts the exact error and that nothing
 * was written or left behind. */
#include "testutil.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ protobuf writer */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} pb;

static void pb_raw(pb *p, const void *d, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        assert_non_null(p->b);
    }
    if (n)
        memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_varint(pb *p, uint64_t v)
{
    unsigned char t[10];
    int k = 0;
    do {
        t[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(p, t, (size_t)k);
}

static void pb_int(pb *p, int field, uint64_t v)
{
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, v);
}

static void pb_bytes(pb *p, int field, const void *d, size_t n)
{
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    pb_raw(p, d, n);
}

static void pb_str(pb *p, int field, const char *s) { pb_bytes(p, field, s, strlen(s)); }

/* Appends inner as a length-delimited field and frees it. */
static void pb_msg(pb *p, int field, pb *inner)
{
    pb_bytes(p, field, inner->b, inner->n);
    free(inner->b);
    memset(inner, 0, sizeof *inner);
}

/* ONNX field numbers (onnx.proto). */
enum { MODEL_IR = 1, MODEL_GRAPH = 7, MODEL_OPSET = 8, OPSET_VERSION = 2 };
enum { GRAPH_NODE = 1, GRAPH_INIT = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { NODE_IN = 1, NODE_OUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5 };
enum { ATTR_NAME = 1, ATTR_G = 6, ATTR_TYPE = 20 };
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_FLOATS = 4, TENSOR_NAME = 8 };
enum { VI_NAME = 1, VI_TYPE = 2, TYPE_SEQ = 4, SEQ_ELEM = 1 };

static void node(pb *g, const char *op, const char *in0, const char *in1, const char *out)
{
    pb n = {0};
    pb_str(&n, NODE_IN, in0);
    if (in1)
        pb_str(&n, NODE_IN, in1);
    pb_str(&n, NODE_OUT, out);
    pb_str(&n, NODE_OP, op);
    pb_msg(g, GRAPH_NODE, &n);
}

static void value_info(pb *g, int field, const char *name)
{
    pb v = {0};
    pb_str(&v, VI_NAME, name);
    pb_msg(g, field, &v);
}

/* A float initializer rows x cols with values 1, 2, 3, ... */
static void initializer(pb *g, const char *name, int rows, int cols)
{
    pb t = {0}, f = {0};
    pb_int(&t, TENSOR_DIMS, (uint64_t)rows);
    pb_int(&t, TENSOR_DIMS, (uint64_t)cols);
    pb_int(&t, TENSOR_TYPE, 1);
    for (int i = 0; i < rows * cols; i++) {
        float v = (float)(i + 1);
        pb_raw(&f, &v, 4);
    }
    pb_msg(&t, TENSOR_FLOATS, &f);
    pb_str(&t, TENSOR_NAME, name);
    pb_msg(g, GRAPH_INIT, &t);
}

/* Wraps a graph into a model (IR 7, opset 13) and writes it to path. */
static void write_model(const char *path, pb *g)
{
    pb m = {0}, op = {0};
    pb_int(&m, MODEL_IR, 7);
    pb_msg(&m, MODEL_GRAPH, g);
    pb_int(&op, OPSET_VERSION, 13);
    pb_msg(&m, MODEL_OPSET, &op);
    tu_write(path, m.b, m.n);
    free(m.b);
}

static void expect_load_fail(const char *path, ecp_status code, const char *needle)
{
    ecp_mlp *m = (ecp_mlp *)1;
    ecp_error err = {0};
    ecp_status s = ecp_onnx_load(&m, path, &err);
    if (s != code || !strstr(err.msg, needle) || !strstr(err.msg, path))
        print_error("load %s: got %s (%s), want %s with '%s'\n", path, ecp_status_name(s),
                    err.msg, ecp_status_name(code), needle);
    assert_int_equal(s, code);
    assert_null(m);
    assert_non_null(strstr(err.msg, needle));
    assert_non_null(strstr(err.msg, path));
}

/* ------------------------------------------------------------------ ONNX */

static void test_onnx_deep_type(void **state)
{
    (void)state;
    /* TypeProto { sequence_type { elem_type { sequence_type { ... } } } }, 6000 levels in
     * 42 KB: enough to overflow the stack in protobuf-c's recursive unpack. */
    pb t = {0};
    for (int i = 0; i < 6000; i++) {
        pb seq = {0}, outer = {0};
        pb_msg(&seq, SEQ_ELEM, &t);
        pb_msg(&outer, TYPE_SEQ, &seq);
        t = outer;
    }
    pb g = {0}, vi = {0};
    pb_str(&vi, VI_NAME, "x");
    pb_msg(&vi, VI_TYPE, &t);
    pb_msg(&g, GRAPH_INPUT, &vi);
    write_model(tu_path("deep.onnx"), &g);
    expect_load_fail(tu_path("deep.onnx"), ECP_ERR_FORMAT, "nesting deeper than 64 levels");
    /* Just inside the limit, the same shape is read (and refused for what it is). */
    for (int i = 0; i < 20; i++) {
        pb seq = {0}, outer = {0};
        pb_msg(&seq, SEQ_ELEM, &t);
        pb_msg(&outer, TYPE_SEQ, &seq);
        t = outer;
    }
    free(t.b);
    pb t2 = {0};
    for (int i = 0; i < 29; i++) { /* model, graph, value_info, 2 per level: depth 61 */
        pb seq = {0}, outer = {0};
        pb_msg(&seq, SEQ_ELEM, &t2);
        pb_msg(&outer, TYPE_SEQ, &seq);
        t2 = outer;
    }
    pb g2 = {0}, vi2 = {0};
    pb_str(&vi2, VI_NAME, "x");
    pb_msg(&vi2, VI_TYPE, &t2);
    pb_msg(&g2, GRAPH_INPUT, &vi2);
    write_model(tu_path("ok_depth.onnx"), &g2);
    expect_load_fail(tu_path("ok_depth.onnx"), ECP_ERR_UNSUPPORTED, "outputs");
}

static void test_onnx_deep_subgraph(void **state)
{
    (void)state;
    /* Graphs nested in node attributes: graph { node { attribute { g { node { ... } } } } } */
    pb g = {0};
    for (int i = 0; i < 3000; i++) {
        pb a = {0}, n = {0}, outer = {0};
        pb_str(&a, ATTR_NAME, "body");
        pb_int(&a, ATTR_TYPE, 5);
        pb_msg(&a, ATTR_G, &g);
        pb_str(&n, NODE_OP, "Loop");
        pb_msg(&n, NODE_ATTR, &a);
        pb_msg(&outer, GRAPH_NODE, &n);
        g = outer;
    }
    write_model(tu_path("loops.onnx"), &g);
    expect_load_fail(tu_path("loops.onnx"), ECP_ERR_FORMAT, "nesting deeper than 64 levels");
}

static void test_onnx_corrupt_wire(void **state)
{
    (void)state;
    /* A length running past the end, a group wire type, a truncated varint. */
    static const unsigned char bad[][4] = {{0x3a, 0x7f, 0x08, 0}, {0x3b, 0, 0, 0},
                                           {0x08, 0xff, 0xff, 0xff}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_write(tu_path("bad.onnx"), bad[i], i == 0 ? 3 : 4);
        expect_load_fail(tu_path("bad.onnx"), ECP_ERR_FORMAT,
                         "not an ONNX model or corrupt protobuf");
    }
}

/* 90,000 empty initializers: 180 KB on disk, about 27 MB once protobuf-c has made a struct of
 * each. The pre-scan weighs that against the budget before the unpack. */
static void test_onnx_empty_initializers(void **state)
{
    (void)state;
    pb g = {0};
    for (int i = 0; i < 90000; i++)
        pb_bytes(&g, GRAPH_INIT, "", 0);
    write_model(tu_path("empty_inits.onnx"), &g);
    ecp_set_max_memory((uint64_t)16 << 20);
    expect_load_fail(tu_path("empty_inits.onnx"), ECP_ERR_MEMORY,
                     "over the memory budget of 16.0 MiB");
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_onnx_load(&m, tu_path("empty_inits.onnx"), &err);
    assert_non_null(strstr(err.msg, "--max-memory"));
    assert_non_null(strstr(err.msg, "unpacking the protobuf needs"));
    /* Under the default budget it unpacks, and the graph is refused for what it is. */
    ecp_set_max_memory(0);
    expect_load_fail(tu_path("empty_inits.onnx"), ECP_ERR_UNSUPPORTED,
                     "the graph has 0 data inputs");
    /* Past the count limit, the pre-scan stops at the first entry too many. */
    pb g2 = {0};
    for (int i = 0; i < 100001; i++)
        pb_bytes(&g2, GRAPH_INIT, "", 0);
    write_model(tu_path("more_inits.onnx"), &g2);
    expect_load_fail(tu_path("more_inits.onnx"), ECP_ERR_UNSUPPORTED,
                     "more than 100000 'initializer' entries in a GraphProto (at most 100000 "
                     "supported)");
}

/* x -> Identity x 40,000 -> Gemm(W, b) -> y: linear time through the name maps (a linear
 * search per lookup would take tens of seconds). */
static void test_onnx_identity_chain(void **state)
{
    (void)state;
    enum { N = 40000 };
    pb g = {0};
    char a[32], b[32];
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, "v%d", i);
        snprintf(b, sizeof b, "v%d", i + 1);
        node(&g, "Identity", i ? a : "x", NULL, b);
    }
    snprintf(a, sizeof a, "v%d", N);
    pb n = {0};
    pb_str(&n, NODE_IN, a);
    pb_str(&n, NODE_IN, "W");
    pb_str(&n, NODE_IN, "B");
    pb_str(&n, NODE_OUT, "y");
    pb_str(&n, NODE_OP, "Gemm");
    pb_msg(&g, GRAPH_NODE, &n);
    initializer(&g, "W", 3, 2); /* [in, out] without transB */
    initializer(&g, "B", 1, 2);
    value_info(&g, GRAPH_INPUT, "x");
    value_info(&g, GRAPH_OUTPUT, "y");
    write_model(tu_path("chain.onnx"), &g);
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    assert_int_equal(ecp_onnx_load(&m, tu_path("chain.onnx"), &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_layers(m), 1);
    assert_int_equal(ecp_mlp_n_in(m), 3);
    assert_int_equal(ecp_mlp_n_out(m), 2);
    /* W[out][in] is the transpose of the stored [in, out] = 1..6 */
    const float *W = ecp_mlp_weights_c(m, 0);
    const float want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++)
        assert_true(W[i] == want[i]);
    assert_true(ecp_mlp_bias_c(m, 0)[1] == 2.0f);
    ecp_mlp_free(m);
}

/* 40,000 graph inputs, all but one named by an initializer (IR < 4 style). */
static void test_onnx_many_inputs(void **state)
{
    (void)state;
    enum { N = 40000 };
    pb g = {0};
    char name[32];
    node(&g, "MatMul", "x", "W", "y");
    initializer(&g, "W", 2, 2);
    value_info(&g, GRAPH_INPUT, "x");
    value_info(&g, GRAPH_INPUT, "W");
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "unused%d", i);
        pb t = {0};
        pb_int(&t, TENSOR_TYPE, 1);
        pb_str(&t, TENSOR_NAME, name);
        pb_msg(&g, GRAPH_INIT, &t);
        value_info(&g, GRAPH_INPUT, name);
    }
    value_info(&g, GRAPH_OUTPUT, "y");
    write_model(tu_path("inputs.onnx"), &g);
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    assert_int_equal(ecp_onnx_load(&m, tu_path("inputs.onnx"), &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_in(m), 2);
    ecp_mlp_free(m);
    /* One node more than the limit. */
    pb g2 = {0};
    for (int i = 0; i < 100001; i++)
        node(&g2, "Identity", "a", NULL, "b");
    write_model(tu_path("nodes.onnx"), &g2);
    expect_load_fail(tu_path("nodes.onnx"), ECP_ERR_UNSUPPORTED,
                     "more than 100000 'node' entries in a GraphProto");
}

static void test_onnx_unnamed_output(void **state)
{
    (void)state;
    pb g = {0};
    node(&g, "MatMul", "x", "W", "y");
    initializer(&g, "W", 2, 2);
    value_info(&g, GRAPH_INPUT, "x");
    value_info(&g, GRAPH_OUTPUT, "");
    write_model(tu_path("noname.onnx"), &g);
    expect_load_fail(tu_path("noname.onnx"), ECP_ERR_FORMAT, "the graph output has no name");
}

/* A node type holding a newline and terminal escapes is quoted escaped. */
static void test_onnx_control_chars(void **state)
{
    (void)state;
    pb g = {0};
    node(&g, "Evil\n\x1b]0;title\x07\x1b[2J", "x", NULL, "y");
    value_info(&g, GRAPH_INPUT, "x");
    value_info(&g, GRAPH_OUTPUT, "y");
    write_model(tu_path("ctl.onnx"), &g);
    expect_load_fail(tu_path("ctl.onnx"), ECP_ERR_UNSUPPORTED,
                     "(Evil\\x0a\\x1b]0;title\\x07\\x1b[2J) is not supported");
}

/* ------------------------------------------------------------------ messages */

static void test_fail_escapes(void **state)
{
    (void)state;
    ecp_error err;
    ecp_fail(&err, ECP_ERR_FORMAT, "name '%s'", "a\nb\x1b\x7f");
    assert_string_equal(err.msg, "name 'a\\x0ab\\x1b\\x7f'");
    /* UTF-8 stays; invalid bytes, overlong forms and C1 controls (U+009B, CSI) do not. */
    ecp_fail(&err, ECP_ERR_FORMAT, "%s", "caf\xc3\xa9 \xff \xc0\xaf \xc2\x9b");
    assert_string_equal(err.msg, "caf\xc3\xa9 \\xff \\xc0\\xaf \\xc2\\x9b");
    /* A message longer than the buffer ends in "..." */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ecp_fail(&err, ECP_ERR_ARG, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    assert_string_equal(err.msg + sizeof err.msg - 4, "...");
}

static void test_arch_message(void **state)
{
    (void)state;
    char arch[4000] = "";
    for (int i = 0; i < 1002; i++)
        strcat(arch, i ? "-2" : "2");
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, arch, ECP_ACT_RELU, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "...': more than 1000 layers"));
    assert_int_equal(ecp_mlp_create_arch(&m, "4-0-2", ECP_ACT_RELU, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "'4-0-2'"));
    assert_non_null(strstr(err.msg, "(at width 2)"));
}

/* ------------------------------------------------------------------ memory budget */

static void test_parse_bytes(void **state)
{
    (void)state;
    uint64_t b;
    assert_int_equal(ecp_parse_bytes("8G", &b), ECP_OK);
    assert_true(b == (uint64_t)8 << 30);
    assert_int_equal(ecp_parse_bytes("512m", &b), ECP_OK);
    assert_true(b == (uint64_t)512 << 20);
    assert_int_equal(ecp_parse_bytes("1.5GiB", &b), ECP_OK);
    assert_true(b == (uint64_t)3 << 29);
    assert_int_equal(ecp_parse_bytes("1000", &b), ECP_OK);
    assert_true(b == 1000);
    static const char *bad[] = {"", "0", "-1", "8X", "1e30", "G", "8GG", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(ecp_parse_bytes(bad[i], &b), ECP_ERR_ARG);
    /* The default is half of physical memory. */
    ecp_set_max_memory(0);
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    assert_true(ecp_max_memory() <= phys / 2 && ecp_max_memory() >= phys / 2 - phys / 50);
}

static void test_budget_model_and_workspace(void **state)
{
    (void)state;
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    ecp_set_max_memory((uint64_t)256 << 20);
    /* 8-16777216-3: 201 M parameters, 960 MiB with the mask. */
    assert_int_equal(ecp_mlp_create_arch(&m, "8-16777216-3", ECP_ACT_RELU, &err),
                     ECP_ERR_MEMORY);
    assert_null(m);
    assert_string_equal(err.msg, "the model's parameters needs 960.0 MiB of memory, over the "
                                 "memory budget of 256.0 MiB (raise it with --max-memory, or "
                                 "ecp_set_max_memory in the library)");
    /* A small model whose workspace is what does not fit: 3 x 4096 floats x 4 bytes x 4096. */
    assert_int_equal(ecp_mlp_create_arch(&m, "4-4096-2", ECP_ACT_RELU, &err), ECP_OK);
    ecp_ws *ws = NULL;
    assert_int_equal(ecp_ws_create(&ws, m, 1 << 14, &err), ECP_ERR_MEMORY);
    assert_null(ws);
    assert_non_null(strstr(err.msg, "the workspace for batches of 16384 needs 1.0 GiB"));
    assert_int_equal(ecp_ws_create(&ws, m, 256, &err), ECP_OK);
    ecp_ws_free(ws);
    ecp_mlp_free(m);
    ecp_set_max_memory(0);
}

static void write_gz(const char *path, const void *d, size_t n)
{
    char cmd[1400];
    tu_write(tu_path("raw.tmp"), d, n);
    snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s'", tu_path("raw.tmp"), path);
    assert_int_equal(system(cmd), 0);
}

/* An IDX header that promises 60,000 x 28 x 28 bytes: refused from its header alone, before
 * the stream is inflated. */
static void test_idx_budget(void **state)
{
    (void)state;
    unsigned char h[16] = {0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28};
    write_gz(tu_path("bomb-idx3-ubyte.gz"), h, sizeof h);
    ecp_set_max_memory((uint64_t)64 << 20);
    int nd;
    int64_t dims[4];
    uint8_t *data = (uint8_t *)1;
    ecp_error err = {0};
    assert_int_equal(ecp_idx_read(tu_path("bomb-idx3-ubyte.gz"), &nd, dims, &data, &err),
                     ECP_ERR_MEMORY);
    assert_null(data);
    assert_non_null(strstr(err.msg, "bomb-idx3-ubyte.gz: 47040000 values (as bytes, then as "
                                    "floats) needs 224.3 MiB of memory"));
    ecp_set_max_memory(0);
    /* Under the default budget the same header is just truncated data. */
    assert_int_equal(ecp_idx_read(tu_path("bomb-idx3-ubyte.gz"), &nd, dims, &data, &err),
                     ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated IDX data (47040000 values expected, 0 present)"));
}

/* ------------------------------------------------------------------ data files */

static void write_npy_dir(const char *dir, const float *x, int64_t n, int cols, const float *y)
{
    ecp_error err = {0};
    char p[700];
    mkdir(dir, 0755);
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s_x.npy", dir, k ? "test" : "train");
        assert_int_equal(ecp_npy_write_f32(p, x, n, cols, &err), ECP_OK);
        snprintf(p, sizeof p, "%s/%s_y.npy", dir, k ? "test" : "train");
        assert_int_equal(ecp_npy_write_f32(p, y, n, 1, &err), ECP_OK);
    }
}

static void expect_data_fail(const char *spec, ecp_status code, const char *needle)
{
    ecp_dataset *tr = (ecp_dataset *)1, *te = (ecp_dataset *)1;
    ecp_error err = {0};
    ecp_status s = ecp_data_open(spec, NULL, &tr, &te, &err);
    if (s != code || !strstr(err.msg, needle))
        print_error("data %s: got %s (%s), want %s with '%s'\n", spec, ecp_status_name(s),
                    err.msg, ecp_status_name(code), needle);
    assert_int_equal(s, code);
    assert_null(tr);
    assert_non_null(strstr(err.msg, needle));
}

static void test_data_values(void **state)
{
    (void)state;
    /* CSV: 1e39 is a finite double but not a float. */
    tu_write(tu_path("big.csv"), "a,b\n1,2\n3,1e39\n5,6\n7,8\n9,10\n", 28);
    char want[700];
    snprintf(want, sizeof want, "%s: line 3, column 2: 1e39 is beyond the float32 range",
             tu_path("big.csv"));
    expect_data_fail(tu_path("big.csv"), ECP_ERR_NUMERIC, want);
    /* A NaN target is reported in train_y.npy, not train_x.npy. */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[4] = {1, NAN, 3, 4};
    write_npy_dir(tu_path("nan"), x, 4, 2, y);
    snprintf(want, sizeof want, "%s/train_y.npy: target value 1 (row 1) is NaN", tu_path("nan"));
    expect_data_fail(tu_path("nan"), ECP_ERR_NUMERIC, want);
    /* float64 beyond float32. */
    ecp_error err = {0};
    double xd[4] = {1, 2, -3e300, 4};
    mkdir(tu_path("f8"), 0755);
    tu_write(tu_path("f8/train_x.npy"), "", 0);
    {
        char h[128];
        int hl = snprintf(h, sizeof h, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, "
                                       "2), }");
        unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl + 1),
                                 0};
        FILE *f = fopen(tu_path("f8/train_x.npy"), "wb");
        fwrite(pre, 1, 10, f);
        fwrite(h, 1, (size_t)hl, f);
        fputc('\n', f);
        fwrite(xd, sizeof xd, 1, f);
        fclose(f);
    }
    assert_int_equal(ecp_npy_write_f32(tu_path("f8/train_y.npy"), y + 2, 2, 1, &err), ECP_OK);
    snprintf(want, sizeof want, "%s/train_x.npy: value -3e+300 at row 1, column 0 is beyond "
                                "the float32 range", tu_path("f8"));
    expect_data_fail(tu_path("f8"), ECP_ERR_NUMERIC, want);
    /* No rows at all. */
    write_npy_dir(tu_path("empty"), x, 0, 2, y);
    snprintf(want, sizeof want, "%s/train_x.npy: holds no rows", tu_path("empty"));
    expect_data_fail(tu_path("empty"), ECP_ERR_FORMAT, want);
}

static void write_idx(const char *path, int nd, const uint32_t *dims, size_t count)
{
    unsigned char buf[256] = {0, 0, 8, (unsigned char)nd};
    size_t n = 4;
    for (int i = 0; i < nd; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24);
        buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8);
        buf[n++] = (unsigned char)dims[i];
    }
    memset(buf + n, 1, count);
    tu_write(path, buf, n + count);
}

static void test_idx_messages(void **state)
{
    (void)state;
    const char *dirs[] = {"idx2d", "idx0"};
    for (int k = 0; k < 2; k++) {
        char d[700], p[800];
        snprintf(d, sizeof d, "%s", tu_path(dirs[k]));
        mkdir(d, 0755);
        uint32_t img[3] = {4, 2, k ? 0 : 2}, lab1[1] = {4}, lab2[2] = {4, 2};
        static const char *const pre[2] = {"train", "t10k"};
        for (int s = 0; s < 2; s++) {
            snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", d, pre[s]);
            write_idx(p, 3, img, k ? 0 : 16);
            snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", d, pre[s]);
            if (k)
                write_idx(p, 1, lab1, 4);
            else
                write_idx(p, 2, lab2, 8);
        }
        char want[900];
        if (k)
            snprintf(want, sizeof want, "%s/train-images-idx3-ubyte: images have a zero-sized "
                                        "dimension", d);
        else
            snprintf(want, sizeof want, "%s/train-labels-idx1-ubyte: labels must be "
                                        "one-dimensional (N), not 2-D", d);
        expect_data_fail(d, ECP_ERR_FORMAT, want);
    }
}

/* ------------------------------------------------------------------ outputs */

static void test_output_targets(void **state)
{
    (void)state;
    ecp_error err = {0};
    char want[800];
    assert_int_equal(ecp_output_check(tu_path("new.npy"), &err), ECP_OK);
    tu_write(tu_path("reg"), "x", 1);
    assert_int_equal(ecp_output_check(tu_path("reg"), &err), ECP_OK);
    assert_int_equal(ecp_output_check(tu_path("nodir/x.npy"), &err), ECP_ERR_IO);
    snprintf(want, sizeof want, "%s: cannot write: directory %s does not exist",
             tu_path("nodir/x.npy"), tu_path("nodir"));
    assert_string_equal(err.msg, want);
    assert_int_equal(ecp_output_check("/dev/null", &err), ECP_ERR_IO);
    assert_string_equal(err.msg, "/dev/null: exists and is a character device; ecprune only "
                                 "replaces regular files");
    assert_int_equal(ecp_output_check(tu_dir, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "exists and is a directory"));
    assert_int_equal(mkfifo(tu_path("fifo"), 0600), 0);
    assert_int_equal(ecp_output_check(tu_path("fifo"), &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "exists and is a FIFO"));
    assert_int_equal(symlink(tu_path("missing"), tu_path("dangling")), 0);
    assert_int_equal(ecp_output_check(tu_path("dangling"), &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "is a symbolic link to a missing file"));
    assert_int_equal(ecp_output_check("", &err), ECP_ERR_ARG);

    /* Every writer refuses them: the FIFO stays a FIFO, nothing else appears. */
    int before = tu_count_files(tu_dir);
    float v[2] = {1, 2};
    assert_int_equal(ecp_npy_write_f32(tu_path("fifo"), v, 2, 0, &err), ECP_ERR_IO);
    assert_int_equal(ecp_npy_write_f32(tu_path("dangling"), v, 2, 0, &err), ECP_ERR_IO);
    ecp_mlp *m = NULL;
    assert_int_equal(ecp_mlp_create_arch(&m, "2-3-1", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_onnx_save(m, tu_path("fifo"), &err), ECP_ERR_IO);
    struct stat st;
    assert_int_equal(lstat(tu_path("fifo"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(tu_count_files(tu_dir), before);

    /* A link to a regular file is followed: the file is replaced, the link stays. */
    tu_write(tu_path("target.onnx"), "old", 3);
    assert_int_equal(symlink("target.onnx", tu_path("link.onnx")), 0);
    assert_int_equal(ecp_onnx_save(m, tu_path("link.onnx"), &err), ECP_OK);
    assert_int_equal(lstat(tu_path("link.onnx"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    ecp_mlp *back = NULL;
    assert_int_equal(ecp_onnx_load(&back, tu_path("target.onnx"), &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_in(back), 2);
    ecp_mlp_free(back);
    ecp_mlp_free(m);
    assert_int_equal(tu_count_files(tu_dir), before + 2);
}

static void test_read_special(void **state)
{
    (void)state;
    /* Reading a FIFO must fail at once, not wait for a writer. */
    mkfifo(tu_path("rfifo"), 0600);
    alarm(20);
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    assert_int_equal(ecp_onnx_load(&m, tu_path("rfifo"), &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "cannot read: it is a FIFO"));
    int nd;
    int64_t dims[4];
    uint8_t *data;
    assert_int_equal(ecp_idx_read(tu_path("rfifo"), &nd, dims, &data, &err), ECP_ERR_IO);
    assert_int_equal(ecp_onnx_load(&m, "/dev/zero", &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "/dev/zero: cannot read: it is a character device"));
    alarm(0);
}

/* A writer killed mid-way leaves TARGET.ecprune-tmp.PID.XXXXXX; the next write to the same
 * target removes it once PID is gone, and leaves a live process's file alone. */
static void test_stale_temps(void **state)
{
    (void)state;
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char stale[700], live[700], other[700];
    snprintf(stale, sizeof stale, "%s.ecprune-tmp.%d.AbC123", tu_path("s.npy"), (int)dead);
    snprintf(live, sizeof live, "%s.ecprune-tmp.%d.XyZ789", tu_path("s.npy"), (int)getppid());
    snprintf(other, sizeof other, "%s.ecprune-tmp.%d.AbC123", tu_path("t.npy"), (int)dead);
    tu_write(stale, "partial", 7);
    tu_write(live, "partial", 7);
    tu_write(other, "partial", 7);
    float v[2] = {1, 2};
    ecp_error err = {0};
    assert_int_equal(ecp_npy_write_f32(tu_path("s.npy"), v, 2, 0, &err), ECP_OK);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    unlink(live);
    unlink(other);
}

/* export-c removes the directories it created when it fails (here: a write over the file
 * size limit, in a child process). */
static void test_export_c_cleanup(void **state)
{
    (void)state;
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "4-64-3", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 1);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100, 100};
        setrlimit(RLIMIT_FSIZE, &rl);
        ecp_status s = ecp_export_c(m, tu_path("exp/a/b"), "net", 0, &err);
        _exit(s == ECP_ERR_IO && strstr(err.msg, "write failed") ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(access(tu_path("exp"), F_OK), -1);
    /* An existing directory stays, emptied of nothing it held. */
    mkdir(tu_path("keep"), 0755);
    tu_write(tu_path("keep/mine.txt"), "x", 1);
    ecp_set_max_memory(64);
    assert_int_equal(ecp_export_c(m, tu_path("keep/new"), "net", 0, &err), ECP_ERR_MEMORY);
    ecp_set_max_memory(0);
    assert_int_equal(tu_count_files(tu_path("keep")), 1);
    ecp_mlp_free(m);
}

static int teardown(void **state)
{
    ecp_set_max_memory(0);
    return tu_dir_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_deep_type),
        cmocka_unit_test(test_onnx_deep_subgraph),
        cmocka_unit_test(test_onnx_corrupt_wire),
        cmocka_unit_test(test_onnx_empty_initializers),
        cmocka_unit_test(test_onnx_identity_chain),
        cmocka_unit_test(test_onnx_many_inputs),
        cmocka_unit_test(test_onnx_unnamed_output),
        cmocka_unit_test(test_onnx_control_chars),
        cmocka_unit_test(test_fail_escapes),
        cmocka_unit_test(test_arch_message),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_budget_model_and_workspace),
        cmocka_unit_test(test_idx_budget),
        cmocka_unit_test(test_data_values),
        cmocka_unit_test(test_idx_messages),
        cmocka_unit_test(test_output_targets),
        cmocka_unit_test(test_read_special),
        cmocka_unit_test(test_stale_temps),
        cmocka_unit_test(test_export_c_cleanup),
    };
    return cmocka_run_group_tests(tests, tu_dir_setup, teardown);
}
