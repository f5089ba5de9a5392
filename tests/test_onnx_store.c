/* ONNX storage: external data files and sparse initializers. Round trips through the writer,
 * the other forms the spec allows ([NNZ, rank] indices, links inside the model's directory),
 * and tables of damaged files: each must fail with the right code and a message naming the
 * model file, and nothing may be written. */
#include "testutil.h"
#include "onnx.pb-c.h"

#define ARCH "30-40-20-3" /* layer 0 is 4,800 bytes: above the 4 KiB page alignment */

/* Layers 0 and 1 at 90 % sparsity (every tenth weight kept), layer 2 dense. */
static ecp_mlp *make_pruned(void)
{
    ecp_mlp *m = tu_make_net(ARCH, ECP_ACT_RELU, 7);
    for (int l = 0; l < 2; l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        for (size_t i = 0; i < nw; i++)
            if (i % 10)
                ecp_mlp_weights(m, l)[i] = 0.0f;
    }
    ecp_mlp_mask_from_zeros(m);
    return m;
}

static void assert_same(const ecp_mlp *a, const ecp_mlp *b)
{
    assert_int_equal(ecp_mlp_n_layers(a), ecp_mlp_n_layers(b));
    for (int l = 0; l < ecp_mlp_n_layers(a); l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(a, l) * ecp_mlp_layer_out(a, l);
        assert_int_equal(ecp_mlp_layer_in(a, l), ecp_mlp_layer_in(b, l));
        assert_int_equal(ecp_mlp_layer_out(a, l), ecp_mlp_layer_out(b, l));
        assert_memory_equal(ecp_mlp_weights_c(a, l), ecp_mlp_weights_c(b, l), nw * 4);
        assert_memory_equal(ecp_mlp_bias_c(a, l), ecp_mlp_bias_c(b, l),
                            (size_t)ecp_mlp_layer_out(a, l) * 4);
        assert_memory_equal(ecp_mlp_pruned_c(a, l), ecp_mlp_pruned_c(b, l), nw);
    }
}

static void save(const ecp_mlp *m, const char *path, int sparse, int external)
{
    ecp_onnx_options o = {.sparse = sparse, .external_data = external};
    ecp_error err;
    ecp_status s = ecp_onnx_save_with(m, path, &o, &err);
    if (s)
        print_error("save %s: %s\n", path, err.msg);
    assert_int_equal(s, ECP_OK);
}

static ecp_mlp *load_ok(const char *path)
{
    ecp_mlp *m = NULL;
    ecp_error err;
    ecp_status s = ecp_onnx_load(&m, path, &err);
    if (s)
        print_error("load %s: %s\n", path, err.msg);
    assert_int_equal(s, ECP_OK);
    return m;
}

static Onnx__ModelProto *unpack_file(const char *path)
{
    unsigned char *buf;
    size_t len;
    ecp_error err;
    assert_int_equal(ecp_read_file(path, &buf, &len, (size_t)1 << 30, &err), ECP_OK);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(mp);
    return mp;
}

static void pack_file(const Onnx__ModelProto *mp, const char *path)
{
    size_t n = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    onnx__model_proto__pack(mp, buf);
    tu_write(path, buf, n);
    free(buf);
}

static Onnx__TensorProto *init_named(Onnx__ModelProto *mp, const char *name)
{
    for (size_t i = 0; i < mp->graph->n_initializer; i++)
        if (!strcmp(mp->graph->initializer[i]->name, name))
            return mp->graph->initializer[i];
    fail_msg("no initializer %s", name);
    return NULL;
}

static const char *ext_value(const Onnx__TensorProto *t, const char *key)
{
    for (size_t i = 0; i < t->n_external_data; i++)
        if (!strcmp(t->external_data[i]->key, key))
            return t->external_data[i]->value;
    return NULL;
}

/* Replaces (or adds, when missing) the external_data entry key of t. */
static void ext_set(Onnx__TensorProto *t, const char *key, const char *value)
{
    for (size_t i = 0; i < t->n_external_data; i++)
        if (!strcmp(t->external_data[i]->key, key)) {
            free(t->external_data[i]->value);
            t->external_data[i]->value = strdup(value);
            return;
        }
    fail_msg("no external_data %s", key);
}

/* ------------------------------------------------------------------ round trips */

static void test_external_roundtrip(void **state)
{
    (void)state;
    char dir[64], path[128], data[160];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(data, sizeof data, "%s/m.onnx.data", dir);
    ecp_mlp *m = make_pruned();
    save(m, path, 0, 1);
    assert_true(ecp_file_exists(data));
    assert_int_equal(tu_count_files(dir), 2);
    Onnx__ModelProto *mp = unpack_file(path);
    for (size_t i = 0; i < mp->graph->n_initializer; i++) {
        const Onnx__TensorProto *t = mp->graph->initializer[i];
        assert_int_equal(t->data_location, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL);
        assert_false(t->has_raw_data);
        assert_string_equal(ext_value(t, "location"), "m.onnx.data");
    }
    /* A tensor of a page or more starts on a page (the spec's advice, for mmap). */
    assert_int_equal(atol(ext_value(init_named(mp, "l0.weight"), "offset")) % 4096, 0);
    assert_int_equal(atol(ext_value(init_named(mp, "l0.weight"), "length")), 1200 * 4);
    onnx__model_proto__free_unpacked(mp, NULL);
    ecp_mlp *back = load_ok(path);
    assert_same(m, back);
    /* Written again over itself: both files replaced, still two. */
    save(m, path, 0, 1);
    assert_int_equal(tu_count_files(dir), 2);
    ecp_mlp_free(back);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

static void test_sparse_roundtrip(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    ecp_mlp *m = make_pruned();
    for (int ext = 0; ext < 2; ext++) {
        save(m, path, 1, ext);
        Onnx__ModelProto *mp = unpack_file(path);
        /* Per tensor: the 90 % layers sparse, the dense last layer dense. */
        assert_int_equal(mp->graph->n_sparse_initializer, 2);
        for (int l = 0; l < 2; l++) {
            const Onnx__SparseTensorProto *sp = mp->graph->sparse_initializer[l];
            char name[32];
            snprintf(name, sizeof name, "l%d.weight", l);
            assert_string_equal(sp->values->name, name);
            assert_int_equal(sp->indices->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
            assert_int_equal(sp->indices->n_dims, 1);
            assert_int_equal(sp->values->dims[0],
                             ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l) / 10);
        }
        assert_non_null(init_named(mp, "l2.weight"));
        onnx__model_proto__free_unpacked(mp, NULL);
        ecp_mlp *back = load_ok(path);
        assert_same(m, back);
        ecp_mlp_free(back);
    }
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* A model above the size limit goes to external data without being asked. */
static void test_external_automatic(void **state)
{
    (void)state;
    char dir[64], path[128], data[160];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(data, sizeof data, "%s/m.onnx.data", dir);
    ecp_mlp *m = make_pruned();
    ecp_onnx_options o = {.external_above = 1 << 20};
    ecp_error err;
    assert_int_equal(ecp_onnx_save_with(m, path, &o, &err), ECP_OK);
    assert_false(ecp_file_exists(data)); /* ~9 KB: one file */
    o.external_above = 4096;
    assert_int_equal(ecp_onnx_save_with(m, path, &o, &err), ECP_OK);
    assert_true(ecp_file_exists(data));
    ecp_mlp *back = load_ok(path);
    assert_same(m, back);
    ecp_mlp_free(back);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* Indices as [NNZ, rank] tuples, the spec's other form, read the same. */
static void test_sparse_tuple_indices(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    ecp_mlp *m = make_pruned();
    save(m, path, 1, 0);
    Onnx__ModelProto *mp = unpack_file(path);
    for (size_t k = 0; k < mp->graph->n_sparse_initializer; k++) {
        Onnx__SparseTensorProto *sp = mp->graph->sparse_initializer[k];
        Onnx__TensorProto *ix = sp->indices;
        size_t nnz = (size_t)ix->dims[0];
        int64_t cols = sp->dims[1];
        uint8_t *two = malloc(16 * nnz);
        assert_non_null(two);
        for (size_t i = 0; i < nnz; i++) {
            int64_t lin;
            memcpy(&lin, ix->raw_data.data + 8 * i, 8); /* little-endian host */
            int64_t rc[2] = {lin / cols, lin % cols};
            memcpy(two + 16 * i, rc, 16);
        }
        free(ix->raw_data.data);
        ix->raw_data.data = two;
        ix->raw_data.len = 16 * nnz;
        free(ix->dims);
        ix->dims = malloc(2 * sizeof *ix->dims);
        ix->dims[0] = (int64_t)nnz;
        ix->dims[1] = 2;
        ix->n_dims = 2;
    }
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    ecp_mlp *back = load_ok(path);
    assert_same(m, back);
    ecp_mlp_free(back);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* A link inside the model's directory is followed. */
static void test_external_link_inside(void **state)
{
    (void)state;
    char dir[64], path[128], link[160];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(link, sizeof link, "%s/weights.bin", dir);
    ecp_mlp *m = make_pruned();
    save(m, path, 0, 1);
    assert_int_equal(symlink("m.onnx.data", link), 0);
    Onnx__ModelProto *mp = unpack_file(path);
    for (size_t i = 0; i < mp->graph->n_initializer; i++)
        ext_set(mp->graph->initializer[i], "location", "weights.bin");
    pack_file(mp, path);
    onnx__model_proto__free_unpacked(mp, NULL);
    ecp_mlp *back = load_ok(path);
    assert_same(m, back);
    ecp_mlp_free(back);
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------ damaged files */

typedef void (*mutate_fn)(Onnx__ModelProto *mp, const char *dir);

static void loc_dotdot(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "location", "../m.onnx.data");
}

static void loc_dotdot_l2(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l2.weight"), "location", "../m.onnx.data");
}

static void loc_dotdot_inner(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "location", "sub/../../m.onnx.data");
}

static void loc_absolute(Onnx__ModelProto *mp, const char *dir)
{
    char abs[160];
    snprintf(abs, sizeof abs, "%s/m.onnx.data", dir);
    ext_set(init_named(mp, "l0.weight"), "location", abs);
}

static void loc_missing_file(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "location", "nothing.data");
}

static void loc_link_out(Onnx__ModelProto *mp, const char *dir)
{
    char link[160];
    snprintf(link, sizeof link, "%s/out.data", dir);
    assert_int_equal(symlink("/etc/hostname", link), 0);
    ext_set(init_named(mp, "l0.weight"), "location", "out.data");
}

static void loc_directory(Onnx__ModelProto *mp, const char *dir)
{
    char sub[160];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    ext_set(init_named(mp, "l0.weight"), "location", "sub");
}

static void offset_past_end(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "offset", "999999");
}

static void offset_overflow(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir; /* offset + length wraps around 2^64 if added unchecked */
    ext_set(init_named(mp, "l0.weight"), "offset", "9223372036854775807");
}

static void offset_not_number(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "offset", "-4");
}

static void length_short(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    ext_set(init_named(mp, "l0.weight"), "length", "4796");
}

static void data_truncated(Onnx__ModelProto *mp, const char *dir)
{
    (void)mp;
    char data[160];
    snprintf(data, sizeof data, "%s/m.onnx.data", dir);
    assert_int_equal(truncate(data, 5000), 0);
}

static void not_external_location(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    init_named(mp, "l0.weight")->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
}

static void no_location(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    Onnx__TensorProto *t = init_named(mp, "l0.weight");
    ext_set(t, "location", "");
}

static Onnx__SparseTensorProto *sparse0(Onnx__ModelProto *mp)
{
    assert_true(mp->graph->n_sparse_initializer > 0);
    return mp->graph->sparse_initializer[0];
}

static void set_index(Onnx__ModelProto *mp, size_t i, int64_t v)
{
    memcpy(sparse0(mp)->indices->raw_data.data + 8 * i, &v, 8); /* little-endian host */
}

static int64_t get_index(Onnx__ModelProto *mp, size_t i)
{
    int64_t v;
    memcpy(&v, sparse0(mp)->indices->raw_data.data + 8 * i, 8);
    return v;
}

static void sp_out_of_range(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    size_t last = (size_t)sparse0(mp)->indices->dims[0] - 1;
    set_index(mp, last, 1200);
}

static void sp_negative(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    set_index(mp, 0, -1);
}

static void sp_duplicate(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    set_index(mp, 5, get_index(mp, 4));
}

static void sp_decreasing(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    int64_t a = get_index(mp, 4);
    set_index(mp, 4, get_index(mp, 5));
    set_index(mp, 5, a);
}

static void sp_count_mismatch(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    sparse0(mp)->indices->dims[0] -= 1;
}

static void sp_too_many_values(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    sparse0(mp)->dims[0] = 1; /* 1 x 30 positions for 120 values */
}

static void sp_raw_short(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    sparse0(mp)->values->raw_data.len -= 4;
}

static void sp_int32_indices(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    sparse0(mp)->indices->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
}

static void sp_nan_value(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    float nan = NAN;
    memcpy(sparse0(mp)->values->raw_data.data, &nan, 4);
}

static void sp_no_indices(Onnx__ModelProto *mp, const char *dir)
{
    (void)dir;
    onnx__tensor_proto__free_unpacked(sparse0(mp)->indices, NULL);
    sparse0(mp)->indices = NULL;
}

static const struct {
    const char *name;
    int sparse, external;
    mutate_fn fn;
    ecp_status code;
    const char *needle;
} bad[] = {
    {"location ..", 0, 1, loc_dotdot, ECP_ERR_FORMAT, "leaves the model's directory (..)"},
    {"location a/../..", 0, 1, loc_dotdot_inner, ECP_ERR_FORMAT, "leaves the model's directory"},
    {"absolute location", 0, 1, loc_absolute, ECP_ERR_FORMAT, "is an absolute path"},
    {"missing data file", 0, 1, loc_missing_file, ECP_ERR_IO, "'nothing.data'"},
    {"link leaving the directory", 0, 1, loc_link_out, ECP_ERR_FORMAT, "link that leaves"},
    {"data file is a directory", 0, 1, loc_directory, ECP_ERR_IO, "not a regular file"},
    {"offset past the end", 0, 1, offset_past_end, ECP_ERR_FORMAT, "go past its end"},
    {"offset + length overflow", 0, 1, offset_overflow, ECP_ERR_FORMAT, "go past its end"},
    {"offset not a count", 0, 1, offset_not_number, ECP_ERR_FORMAT, "not a byte count"},
    {"length short", 0, 1, length_short, ECP_ERR_FORMAT, "external data holds 4796 bytes"},
    {"data file truncated", 0, 1, data_truncated, ECP_ERR_FORMAT, "go past its end"},
    {"entries without EXTERNAL", 0, 1, not_external_location, ECP_ERR_FORMAT,
     "data_location is not EXTERNAL"},
    {"empty location", 0, 1, no_location, ECP_ERR_FORMAT, "names no location"},
    {"index out of range", 1, 0, sp_out_of_range, ECP_ERR_FORMAT, "out of range [0, 1200)"},
    {"negative index", 1, 0, sp_negative, ECP_ERR_FORMAT, "index -1 of value 0 is out of range"},
    {"duplicate index", 1, 0, sp_duplicate, ECP_ERR_FORMAT, "is the same as the one before"},
    {"decreasing index", 1, 0, sp_decreasing, ECP_ERR_FORMAT, "strictly increasing"},
    {"indices != values", 1, 0, sp_count_mismatch, ECP_ERR_FORMAT, "119 indices for 120 values"},
    {"more values than positions", 1, 0, sp_too_many_values, ECP_ERR_FORMAT,
     "120 values for 30 positions"},
    {"values raw_data short", 1, 0, sp_raw_short, ECP_ERR_FORMAT, "raw_data holds 476 bytes"},
    {"int32 indices", 1, 0, sp_int32_indices, ECP_ERR_FORMAT, "indices are not int64"},
    {"NaN value", 1, 0, sp_nan_value, ECP_ERR_NUMERIC, "non-finite"},
    {"no indices", 1, 0, sp_no_indices, ECP_ERR_FORMAT, "has no indices"},
    {"sparse + external, ..", 1, 1, loc_dotdot_l2, ECP_ERR_FORMAT, "(..)"},
};

static void test_damaged_files(void **state)
{
    (void)state;
    ecp_mlp *m = make_pruned();
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        char dir[64], path[128];
        tu_mkdtemp(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/m.onnx", dir);
        save(m, path, bad[c].sparse, bad[c].external);
        Onnx__ModelProto *mp = unpack_file(path);
        bad[c].fn(mp, dir);
        pack_file(mp, path);
        onnx__model_proto__free_unpacked(mp, NULL);
        int files = tu_count_files(dir);
        ecp_mlp *got = (ecp_mlp *)1;
        ecp_error err = {0};
        ecp_status s = ecp_onnx_load(&got, path, &err);
        int ok = s == bad[c].code && strstr(err.msg, path) && strstr(err.msg, bad[c].needle) &&
                 !strchr(err.msg, '\n');
        if (!ok)
            print_error("%s: got %s (%s), want %s with '%s'\n", bad[c].name,
                        ecp_status_name(s), err.msg, ecp_status_name(bad[c].code),
                        bad[c].needle);
        assert_true(ok);
        assert_null(got);
        assert_int_equal(tu_count_files(dir), files);
        tu_rmdir(dir);
    }
    ecp_mlp_free(m);
}

/* The data file's place holds something that is not a regular file (or a link): the write is
 * refused, the model file is not touched, no temporary is left. */
static void test_external_write_refusals(void **state)
{
    (void)state;
    ecp_mlp *m = make_pruned();
    for (int kind = 0; kind < 3; kind++) {
        char dir[64], path[128], data[160];
        tu_mkdtemp(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/m.onnx", dir);
        snprintf(data, sizeof data, "%s/m.onnx.data", dir);
        save(m, path, 0, 0);
        size_t len0;
        unsigned char *before;
        ecp_error err;
        assert_int_equal(ecp_read_file(path, &before, &len0, 1 << 20, &err), ECP_OK);
        if (kind == 0)
            assert_int_equal(mkdir(data, 0755), 0);
        else if (kind == 1)
            assert_int_equal(symlink("elsewhere.bin", data), 0);
        else
            assert_int_equal(mkfifo(data, 0644), 0);
        int files = tu_count_files(dir);
        ecp_onnx_options o = {.external_data = 1};
        /* What a caller checks before the work starts says the same. */
        assert_int_equal(ecp_onnx_output_check(path, &o, &err), ECP_ERR_IO);
        assert_non_null(strstr(err.msg, data));
        o.external_data = 0;
        assert_int_equal(ecp_onnx_output_check(path, &o, &err), ECP_OK);
        o.external_data = 1;
        ecp_status s = ecp_onnx_save_with(m, path, &o, &err);
        assert_int_equal(s, ECP_ERR_IO);
        assert_non_null(strstr(err.msg, data));
        assert_int_equal(tu_count_files(dir), files);
        size_t len1;
        unsigned char *after;
        assert_int_equal(ecp_read_file(path, &after, &len1, 1 << 20, &err), ECP_OK);
        assert_int_equal(len0, len1);
        assert_memory_equal(before, after, len0);
        free(before);
        free(after);
        tu_rmdir(dir);
    }
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_external_roundtrip),
        cmocka_unit_test(test_sparse_roundtrip),
        cmocka_unit_test(test_external_automatic),
        cmocka_unit_test(test_sparse_tuple_indices),
        cmocka_unit_test(test_external_link_inside),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_external_write_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
