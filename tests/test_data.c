/* Datasets: .npy, IDX (plain and gzip), CSV, directory datasets, mnist and fashion. Every error
 * must come with the right status and a message naming the file. */
#include "testutil.h"
#include "data/csv.h"
#include <zlib.h>

/* ------------------------------------------------------------------ helpers */

/* A .npy file written by hand: version `major`, the header dict `dict` (padded with spaces and
 * a newline to a multiple of 64 bytes, as numpy does), then `n` bytes of data. */
static void npy_hand(const char *path, int major, const char *dict, const void *data, size_t n)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = pre + dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = dl + pad + 1;
    unsigned char *buf = malloc(pre + hlen + n);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)(hlen & 0xff);
        buf[9] = (unsigned char)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', pad);
    buf[pre + hlen - 1] = '\n';
    if (n)
        memcpy(buf + pre + hlen, data, n);
    tu_write(path, buf, pre + hlen + n);
    free(buf);
}

static void npy_dict(char *out, size_t n, const char *descr, const char *fortran,
                     const char *shape)
{
    snprintf(out, n, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran,
             shape);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void expect_npy_fail(const char *path, ecp_status code, const char *needle)
{
    ecp_npy a;
    ecp_error err = {0};
    ecp_status s = ecp_npy_read(path, &a, &err);
    if (s != code || !strstr(err.msg, path) || (needle && !strstr(err.msg, needle)))
        print_error("npy %s: got %s (%s), want %s with '%s'\n", path, ecp_status_name(s), err.msg,
                    ecp_status_name(code), needle ? needle : "");
    assert_int_equal(s, code);
    assert_null(a.data);
    assert_non_null(strstr(err.msg, path));
    if (needle)
        assert_non_null(strstr(err.msg, needle));
}

/* ------------------------------------------------------------------ .npy */

static void test_npy_write_read_f32(void **state)
{
    (void)state;
    float v[15];
    for (int i = 0; i < 15; i++)
        v[i] = (float)(i * 0.5 - 3.25);
    ecp_error err = {0};
    ecp_npy a;
    /* 2-D */
    assert_int_equal(ecp_npy_write_f32(tu_path("a.npy"), v, 5, 3, &err), ECP_OK);
    size_t len;
    unsigned char *raw = slurp(tu_path("a.npy"), &len);
    assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
    size_t hl = raw[8] | (size_t)raw[9] << 8;
    assert_int_equal((10 + hl) % 64, 0); /* data aligned as numpy writes it */
    assert_int_equal(raw[10 + hl - 1], '\n');
    assert_int_equal(len, 10 + hl + 15 * 4);
    assert_non_null(strstr((char *)raw + 10, "'shape': (5, 3)"));
    free(raw);
    assert_int_equal(ecp_npy_read(tu_path("a.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.dtype, ECP_NPY_F4);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 5);
    assert_int_equal(a.shape[1], 3);
    assert_memory_equal(a.data, v, sizeof v);
    float *f;
    assert_int_equal(ecp_npy_to_f32(&a, tu_path("a.npy"), &f, &err), ECP_OK);
    assert_memory_equal(f, v, sizeof v);
    free(f);
    int32_t *lab = NULL;
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("a.npy"), &lab, &err), ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, tu_path("a.npy")));
    ecp_npy_release(&a);
    assert_null(a.data);
    /* 1-D (cols = 0) */
    assert_int_equal(ecp_npy_write_f32(tu_path("b.npy"), v, 7, 0, &err), ECP_OK);
    assert_int_equal(ecp_npy_read(tu_path("b.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 7);
    assert_int_equal(a.shape[1], 1);
    assert_memory_equal(a.data, v, 7 * sizeof *v);
    ecp_npy_release(&a);
    /* No temporary file is left beside the outputs. */
    assert_int_equal(tu_count_files(tu_dir), 2);
    unlink(tu_path("a.npy"));
    unlink(tu_path("b.npy"));
}

static void test_npy_i8_and_f8(void **state)
{
    (void)state;
    int64_t l[6] = {0, 2, 1, 2, 9, 3};
    ecp_error err = {0};
    ecp_npy a;
    assert_int_equal(ecp_npy_write_i64(tu_path("l.npy"), l, 6, &err), ECP_OK);
    assert_int_equal(ecp_npy_read(tu_path("l.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.dtype, ECP_NPY_I8);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 6);
    assert_memory_equal(a.data, l, sizeof l);
    int32_t *lab;
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("l.npy"), &lab, &err), ECP_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(lab[i], l[i]);
    free(lab);
    float *f;
    assert_int_equal(ecp_npy_to_f32(&a, tu_path("l.npy"), &f, &err), ECP_OK);
    assert_true(f[4] == 9.0f);
    free(f);
    ecp_npy_release(&a);

    /* A negative label is refused. */
    int64_t neg[3] = {0, -1, 2};
    assert_int_equal(ecp_npy_write_i64(tu_path("n.npy"), neg, 3, &err), ECP_OK);
    assert_int_equal(ecp_npy_read(tu_path("n.npy"), &a, &err), ECP_OK);
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("n.npy"), &lab, &err), ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, tu_path("n.npy")));
    ecp_npy_release(&a);

    /* float64, 2-D, version 1.0 by hand; and int64 (N, 1) labels. */
    double d[6] = {1.5, -2.25, 1e-3, 3.0, 1e30, -0.0};
    char dict[200];
    npy_dict(dict, sizeof dict, "<f8", "False", "(2, 3)");
    npy_hand(tu_path("d.npy"), 1, dict, d, sizeof d);
    assert_int_equal(ecp_npy_read(tu_path("d.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.dtype, ECP_NPY_F8);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    assert_memory_equal(a.data, d, sizeof d);
    assert_int_equal(ecp_npy_to_f32(&a, tu_path("d.npy"), &f, &err), ECP_OK);
    for (int i = 0; i < 6; i++)
        assert_true(f[i] == (float)d[i]);
    free(f);
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("d.npy"), &lab, &err), ECP_ERR_FORMAT);
    ecp_npy_release(&a);

    npy_dict(dict, sizeof dict, "<i8", "False", "(3, 1)");
    npy_hand(tu_path("c.npy"), 1, dict, l, 3 * sizeof *l);
    assert_int_equal(ecp_npy_read(tu_path("c.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("c.npy"), &lab, &err), ECP_OK);
    assert_int_equal(lab[1], 2);
    free(lab);
    ecp_npy_release(&a);
    /* (N, 2) int64 is not a label vector. */
    npy_dict(dict, sizeof dict, "<i8", "False", "(3, 2)");
    npy_hand(tu_path("c2.npy"), 1, dict, l, 6 * sizeof *l);
    assert_int_equal(ecp_npy_read(tu_path("c2.npy"), &a, &err), ECP_OK);
    assert_int_equal(ecp_npy_to_labels(&a, tu_path("c2.npy"), &lab, &err), ECP_ERR_FORMAT);
    ecp_npy_release(&a);
}

static void test_npy_versions_and_layout(void **state)
{
    (void)state;
    float v[4] = {1, 2, 3, 4};
    char dict[200];
    ecp_error err = {0};
    ecp_npy a;
    /* Version 2.0 and 3.0 headers (4-byte length); keys in another order; 1-D "(4,)". */
    for (int major = 2; major <= 3; major++) {
        npy_hand(tu_path("v.npy"), major,
                 "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}", v, sizeof v);
        assert_int_equal(ecp_npy_read(tu_path("v.npy"), &a, &err), ECP_OK);
        assert_int_equal(a.shape[0], 2);
        assert_int_equal(a.shape[1], 2);
        assert_memory_equal(a.data, v, sizeof v);
        ecp_npy_release(&a);
    }
    npy_dict(dict, sizeof dict, "<f4", "False", "(4,)");
    npy_hand(tu_path("v.npy"), 1, dict, v, sizeof v);
    assert_int_equal(ecp_npy_read(tu_path("v.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 4);
    ecp_npy_release(&a);
    /* An empty array is valid. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(0, 3)");
    npy_hand(tu_path("v.npy"), 1, dict, NULL, 0);
    assert_int_equal(ecp_npy_read(tu_path("v.npy"), &a, &err), ECP_OK);
    assert_int_equal(a.shape[0], 0);
    assert_int_equal(a.shape[1], 3);
    ecp_npy_release(&a);
    unlink(tu_path("v.npy"));
}

static void test_npy_bad(void **state)
{
    (void)state;
    float v[6] = {0};
    char dict[200];
    /* Wrong magic. */
    {
        unsigned char b[80];
        memset(b, ' ', sizeof b);
        memcpy(b, "\x93NUMPX\x01\x00\x40\x00", 10);
        tu_write(tu_path("magic.npy"), b, sizeof b);
        expect_npy_fail(tu_path("magic.npy"), ECP_ERR_FORMAT, "magic");
        tu_write(tu_path("tiny.npy"), "\x93NUM", 4);
        expect_npy_fail(tu_path("tiny.npy"), ECP_ERR_FORMAT, NULL);
        tu_write(tu_path("empty.npy"), "", 0);
        expect_npy_fail(tu_path("empty.npy"), ECP_ERR_FORMAT, NULL);
    }
    /* Truncated header: the length says 118 bytes, the file stops after 30. */
    {
        npy_dict(dict, sizeof dict, "<f4", "False", "(2, 3)");
        npy_hand(tu_path("hdr.npy"), 1, dict, v, sizeof v);
        size_t len;
        unsigned char *raw = slurp(tu_path("hdr.npy"), &len);
        tu_write(tu_path("hdr.npy"), raw, 40);
        free(raw);
        expect_npy_fail(tu_path("hdr.npy"), ECP_ERR_FORMAT, "truncated");
        tu_write(tu_path("hdr2.npy"), "\x93NUMPY\x02\x00\x10\x00", 10); /* v2 needs 12 bytes */
        expect_npy_fail(tu_path("hdr2.npy"), ECP_ERR_FORMAT, "truncated");
    }
    /* Truncated data: 2 x 3 floats need 24 bytes, 20 are there. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(2, 3)");
    npy_hand(tu_path("data.npy"), 1, dict, v, 20);
    expect_npy_fail(tu_path("data.npy"), ECP_ERR_FORMAT, "truncated");
    /* Unsupported dtypes. */
    npy_dict(dict, sizeof dict, "<i4", "False", "(2, 3)");
    npy_hand(tu_path("i4.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("i4.npy"), ECP_ERR_UNSUPPORTED, "<i4");
    npy_dict(dict, sizeof dict, ">f4", "False", "(2, 3)");
    npy_hand(tu_path("be.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("be.npy"), ECP_ERR_UNSUPPORTED, ">f4");
    /* Fortran order. */
    npy_dict(dict, sizeof dict, "<f4", "True", "(2, 3)");
    npy_hand(tu_path("fo.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("fo.npy"), ECP_ERR_UNSUPPORTED, "Fortran");
    /* 3-D, 4-D and 0-D shapes. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(1, 2, 3)");
    npy_hand(tu_path("3d.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("3d.npy"), ECP_ERR_UNSUPPORTED, NULL);
    npy_dict(dict, sizeof dict, "<f4", "False", "(1, 1, 2, 3)");
    npy_hand(tu_path("4d.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("4d.npy"), ECP_ERR_UNSUPPORTED, NULL);
    npy_dict(dict, sizeof dict, "<f4", "False", "()");
    npy_hand(tu_path("0d.npy"), 1, dict, v, 4);
    expect_npy_fail(tu_path("0d.npy"), ECP_ERR_UNSUPPORTED, NULL);
    /* A shape whose product overflows 64 bits (2^64 elements) with a few bytes of data. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(4294967296, 4294967296)");
    npy_hand(tu_path("ovf.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("ovf.npy"), ECP_ERR_FORMAT, NULL);
    npy_dict(dict, sizeof dict, "<f8", "False", "(99999999999999999999999, 2)");
    npy_hand(tu_path("ovf2.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("ovf2.npy"), ECP_ERR_FORMAT, NULL);
    /* 2^62 x 4: each dimension alone is absurd but the product would wrap to 0. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(4611686018427387904, 4)");
    npy_hand(tu_path("ovf3.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("ovf3.npy"), ECP_ERR_FORMAT, NULL);
    /* Malformed headers. */
    npy_hand(tu_path("nodescr.npy"), 1, "{'fortran_order': False, 'shape': (2, 3), }", v, sizeof v);
    expect_npy_fail(tu_path("nodescr.npy"), ECP_ERR_FORMAT, "descr");
    npy_hand(tu_path("noshape.npy"), 1, "{'descr': '<f4', 'fortran_order': False, }", v, sizeof v);
    expect_npy_fail(tu_path("noshape.npy"), ECP_ERR_FORMAT, "shape");
    npy_dict(dict, sizeof dict, "<f4", "False", "(-2, 3)");
    npy_hand(tu_path("neg.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("neg.npy"), ECP_ERR_FORMAT, NULL);
    npy_dict(dict, sizeof dict, "<f4", "False", "(2, 3");
    npy_hand(tu_path("open.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("open.npy"), ECP_ERR_FORMAT, NULL);
    npy_dict(dict, sizeof dict, "<f4", "maybe", "(2, 3)");
    npy_hand(tu_path("fo2.npy"), 1, dict, v, sizeof v);
    expect_npy_fail(tu_path("fo2.npy"), ECP_ERR_FORMAT, NULL);
    /* Version 4 does not exist. */
    npy_dict(dict, sizeof dict, "<f4", "False", "(2, 3)");
    npy_hand(tu_path("v4.npy"), 1, dict, v, sizeof v);
    {
        size_t len;
        unsigned char *raw = slurp(tu_path("v4.npy"), &len);
        raw[6] = 4;
        tu_write(tu_path("v4.npy"), raw, len);
        free(raw);
    }
    expect_npy_fail(tu_path("v4.npy"), ECP_ERR_UNSUPPORTED, NULL);
    /* Missing file, a directory. */
    expect_npy_fail(tu_path("missing.npy"), ECP_ERR_IO, NULL);
    expect_npy_fail(tu_dir, ECP_ERR_IO, NULL);
    /* Writing into a missing directory fails with the path and leaves nothing. */
    ecp_error err = {0};
    assert_int_equal(ecp_npy_write_f32(tu_path("nodir/x.npy"), v, 2, 3, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, tu_path("nodir/x.npy")));
}

/* ------------------------------------------------------------------ IDX */

static size_t idx_build(unsigned char *b, int type, int nd, const uint32_t *dims,
                        const uint8_t *data, size_t n)
{
    b[0] = 0;
    b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (n)
        memcpy(b + 4 + 4 * nd, data, n);
    return 4 + 4 * (size_t)nd + n;
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static void expect_idx_fail(const char *path, ecp_status code, const char *needle)
{
    int nd = -1;
    int64_t dims[4];
    uint8_t *data = (uint8_t *)1;
    ecp_error err = {0};
    ecp_status s = ecp_idx_read(path, &nd, dims, &data, &err);
    if (s != code || !strstr(err.msg, path) || (needle && !strstr(err.msg, needle)))
        print_error("idx %s: got %s (%s), want %s with '%s'\n", path, ecp_status_name(s), err.msg,
                    ecp_status_name(code), needle ? needle : "");
    assert_int_equal(s, code);
    assert_null(data);
    assert_non_null(strstr(err.msg, path));
}

static void test_idx_roundtrip(void **state)
{
    (void)state;
    enum { N = 5, H = 3, W = 4 };
    uint8_t img[N * H * W];
    for (int i = 0; i < N * H * W; i++)
        img[i] = (uint8_t)(i * 37 + 11);
    unsigned char buf[4096];
    uint32_t dims[3] = {N, H, W};
    size_t n = idx_build(buf, 0x08, 3, dims, img, sizeof img);
    tu_write(tu_path("img"), buf, n);
    write_gz(tu_path("img.gz"), buf, n);
    for (int k = 0; k < 2; k++) {
        const char *path = k ? tu_path("img.gz") : tu_path("img");
        int nd;
        int64_t d[4];
        uint8_t *data;
        ecp_error err = {0};
        assert_int_equal(ecp_idx_read(path, &nd, d, &data, &err), ECP_OK);
        assert_int_equal(nd, 3);
        assert_int_equal(d[0], N);
        assert_int_equal(d[1], H);
        assert_int_equal(d[2], W);
        assert_memory_equal(data, img, sizeof img);
        free(data);
    }
    /* 1-D labels. */
    uint8_t lab[N] = {3, 0, 9, 1, 1};
    uint32_t ld[1] = {N};
    n = idx_build(buf, 0x08, 1, ld, lab, N);
    write_gz(tu_path("lab.gz"), buf, n);
    int nd;
    int64_t d[4];
    uint8_t *data;
    ecp_error err = {0};
    assert_int_equal(ecp_idx_read(tu_path("lab.gz"), &nd, d, &data, &err), ECP_OK);
    assert_int_equal(nd, 1);
    assert_int_equal(d[0], N);
    assert_memory_equal(data, lab, N);
    free(data);
}

static void test_idx_bad(void **state)
{
    (void)state;
    unsigned char buf[4096];
    uint8_t px[64] = {0};
    uint32_t dims[3] = {2, 4, 8};
    size_t n;
    /* Bad magic. */
    n = idx_build(buf, 0x08, 3, dims, px, 64);
    buf[0] = 1;
    tu_write(tu_path("bm"), buf, n);
    expect_idx_fail(tu_path("bm"), ECP_ERR_FORMAT, "magic");
    tu_write(tu_path("short"), "\0\0", 2);
    expect_idx_fail(tu_path("short"), ECP_ERR_FORMAT, NULL);
    /* Non-u8 types: int32 0x0C, float 0x0D. */
    n = idx_build(buf, 0x0D, 3, dims, px, 64);
    tu_write(tu_path("f32"), buf, n);
    expect_idx_fail(tu_path("f32"), ECP_ERR_UNSUPPORTED, "0x0d");
    n = idx_build(buf, 0x0C, 3, dims, px, 64);
    write_gz(tu_path("i32.gz"), buf, n);
    expect_idx_fail(tu_path("i32.gz"), ECP_ERR_UNSUPPORTED, NULL);
    /* Dimension counts 0 and 5. */
    n = idx_build(buf, 0x08, 0, dims, px, 8);
    tu_write(tu_path("nd0"), buf, n);
    expect_idx_fail(tu_path("nd0"), ECP_ERR_FORMAT, NULL);
    uint32_t d5[5] = {1, 1, 1, 1, 1};
    n = idx_build(buf, 0x08, 5, d5, px, 1);
    tu_write(tu_path("nd5"), buf, n);
    expect_idx_fail(tu_path("nd5"), ECP_ERR_FORMAT, NULL);
    /* Truncated header and truncated data. */
    n = idx_build(buf, 0x08, 3, dims, px, 64);
    tu_write(tu_path("th"), buf, 10);
    expect_idx_fail(tu_path("th"), ECP_ERR_FORMAT, "truncated");
    tu_write(tu_path("td"), buf, n - 1);
    expect_idx_fail(tu_path("td"), ECP_ERR_FORMAT, "truncated");
    write_gz(tu_path("td.gz"), buf, n - 1);
    expect_idx_fail(tu_path("td.gz"), ECP_ERR_FORMAT, "truncated");
    /* Dimensions whose product overflows (2^32-1 cubed), and one merely too large. */
    uint32_t big[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    n = idx_build(buf, 0x08, 3, big, px, 64);
    tu_write(tu_path("ovf"), buf, n);
    expect_idx_fail(tu_path("ovf"), ECP_ERR_FORMAT, NULL);
    uint32_t big2[4] = {65536, 65536, 65536, 65536};
    n = idx_build(buf, 0x08, 4, big2, px, 64);
    tu_write(tu_path("ovf2"), buf, n);
    expect_idx_fail(tu_path("ovf2"), ECP_ERR_FORMAT, NULL);
    /* Corrupt gzip: a valid member with its deflate data scrambled. */
    uint8_t noise[4096];
    ecp_rng r;
    ecp_rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)ecp_rng_u64(&r);
    uint32_t nd1[1] = {4000};
    n = idx_build(buf, 0x08, 1, nd1, noise, 4000);
    write_gz(tu_path("c.gz"), buf, n);
    size_t len;
    unsigned char *gz = slurp(tu_path("c.gz"), &len);
    assert_true(len > 200);
    for (size_t i = 40; i < len - 40; i += 7)
        gz[i] ^= 0x5a;
    tu_write(tu_path("corrupt.gz"), gz, len);
    expect_idx_fail(tu_path("corrupt.gz"), ECP_ERR_FORMAT, "gzip");
    /* Truncated gzip: half of the compressed stream. */
    tu_write(tu_path("half.gz"), gz, len / 2);
    free(gz);
    gz = slurp(tu_path("c.gz"), &len);
    tu_write(tu_path("half.gz"), gz, len / 2);
    expect_idx_fail(tu_path("half.gz"), ECP_ERR_FORMAT, NULL);
    /* Only the 8-byte trailer (CRC, size) missing: the data is complete but unchecked. */
    tu_write(tu_path("notrail.gz"), gz, len - 8);
    expect_idx_fail(tu_path("notrail.gz"), ECP_ERR_FORMAT, "gzip");
    /* A wrong CRC. */
    gz[len - 8] ^= 0xff;
    tu_write(tu_path("crc.gz"), gz, len);
    expect_idx_fail(tu_path("crc.gz"), ECP_ERR_FORMAT, "gzip");
    free(gz);
    expect_idx_fail(tu_path("nothere"), ECP_ERR_IO, NULL);
}

/* The four files of an IDX dataset directory. */
static void write_idx_dataset(const char *dir, int n_train, int n_test, int gz)
{
    for (int split = 0; split < 2; split++) {
        int n = split ? n_test : n_train;
        uint8_t *img = malloc((size_t)n * 4), lab[64];
        for (int i = 0; i < n * 4; i++)
            img[i] = (uint8_t)(split * 100 + i * 5);
        for (int i = 0; i < n; i++)
            lab[i] = (uint8_t)(i % 3);
        unsigned char buf[4096];
        uint32_t di[3] = {(uint32_t)n, 2, 2}, dl[1] = {(uint32_t)n};
        char path[600];
        const char *pre = split ? "t10k" : "train", *ext = gz ? ".gz" : "";
        size_t len = idx_build(buf, 0x08, 3, di, img, (size_t)n * 4);
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, pre, ext);
        if (gz)
            write_gz(path, buf, len);
        else
            tu_write(path, buf, len);
        len = idx_build(buf, 0x08, 1, dl, lab, (size_t)n);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, pre, ext);
        if (gz)
            write_gz(path, buf, len);
        else
            tu_write(path, buf, len);
        free(img);
    }
}

static void test_idx_dataset_dir(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/idx%d", tu_dir, gz);
        mkdir(dir, 0755);
        write_idx_dataset(dir, 12, 6, gz);
        ecp_dataset *tr, *te;
        ecp_error err = {0};
        assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_OK);
        assert_int_equal(tr->n, 12);
        assert_int_equal(te->n, 6);
        assert_int_equal(tr->n_in, 4);
        assert_int_equal(tr->n_out, 10); /* at least the 10 MNIST classes */
        assert_true(tr->is_class);
        assert_close(tr->x[3], 15 / 255.0, 1e-6, 0);
        assert_close(te->x[1], 105 / 255.0, 1e-6, 0);
        assert_int_equal(tr->label[4], 1);
        assert_int_equal(te->label[5], 2);
        ecp_dataset_free(tr);
        ecp_dataset_free(te);
    }
    /* Image and label counts that differ. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/idxbad", tu_dir);
    mkdir(dir, 0755);
    write_idx_dataset(dir, 12, 6, 0);
    unsigned char buf[64];
    uint8_t lab[5] = {0};
    uint32_t dl[1] = {5};
    char path[600];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    tu_write(path, buf, idx_build(buf, 0x08, 1, dl, lab, 5));
    ecp_dataset *tr = (ecp_dataset *)1, *te = (ecp_dataset *)1;
    ecp_error err = {0};
    assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_ERR_FORMAT);
    assert_null(tr);
    assert_null(te);
    assert_non_null(strstr(err.msg, path));
    /* No images, but image dimensions whose product overflows 64 bits: the feature count must
     * be checked without overflowing (signed overflow is undefined). */
    snprintf(dir, sizeof dir, "%s/idxzero", tu_dir);
    mkdir(dir, 0755);
    write_idx_dataset(dir, 12, 6, 0);
    uint32_t dz[4] = {0, 0xffffffffu, 0xffffffffu, 0xffffffffu}, dl0[1] = {0};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    tu_write(path, buf, idx_build(buf, 0x08, 4, dz, NULL, 0));
    char lpath[600];
    snprintf(lpath, sizeof lpath, "%s/train-labels-idx1-ubyte", dir);
    tu_write(lpath, buf, idx_build(buf, 0x08, 1, dl0, NULL, 0));
    tr = te = (ecp_dataset *)1;
    assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_ERR_FORMAT);
    assert_null(tr);
    assert_non_null(strstr(err.msg, path));
    /* A directory with none of the known layouts. */
    snprintf(dir, sizeof dir, "%s/emptydir", tu_dir);
    mkdir(dir, 0755);
    assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, dir));
}

/* ------------------------------------------------------------------ CSV */

static ecp_status csv(const char *name, const char *text, const char *targets, ecp_dataset **d,
                      ecp_error *err)
{
    tu_write(tu_path(name), text, strlen(text));
    memset(err, 0, sizeof *err);
    return ecp_csv_read(tu_path(name), targets, d, err);
}

static void expect_csv_fail(const char *name, const char *text, const char *targets,
                            ecp_status code, const char *needle)
{
    ecp_dataset *d = (ecp_dataset *)1;
    ecp_error err;
    ecp_status s = csv(name, text, targets, &d, &err);
    if (s != code || !strstr(err.msg, tu_path(name)) || (needle && !strstr(err.msg, needle)))
        print_error("csv %s: got %s (%s), want %s with '%s'\n", name, ecp_status_name(s), err.msg,
                    ecp_status_name(code), needle ? needle : "");
    assert_int_equal(s, code);
    assert_null(d);
    assert_non_null(strstr(err.msg, tu_path(name)));
    if (needle)
        assert_non_null(strstr(err.msg, needle));
}

static void test_csv_basic(void **state)
{
    (void)state;
    ecp_dataset *d;
    ecp_error err;
    /* A header, detected. */
    assert_int_equal(csv("h.csv", "x1,x2,y\n1,2,3\n4.5,-5,6e1\n", NULL, &d, &err), ECP_OK);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->n_in, 2);
    assert_int_equal(d->n_out, 1);
    assert_false(d->is_class);
    assert_true(d->x[0] == 1 && d->x[1] == 2 && d->x[2] == 4.5f && d->x[3] == -5);
    assert_true(d->y[0] == 3 && d->y[1] == 60);
    ecp_dataset_free(d);
    /* No header: the first line is data. */
    assert_int_equal(csv("n.csv", "1,2,3\n4,5,6\n7,8,9", NULL, &d, &err), ECP_OK);
    assert_int_equal(d->n, 3);
    assert_true(d->x[0] == 1 && d->y[2] == 9);
    ecp_dataset_free(d);
    /* CRLF, blank lines, spaces around fields. */
    assert_int_equal(csv("crlf.csv", "a,b,c\r\n1, 2 ,3\r\n\r\n 4,5,6\r\n\n", NULL, &d, &err),
                     ECP_OK);
    assert_int_equal(d->n, 2);
    assert_true(d->x[1] == 2 && d->x[2] == 4 && d->y[1] == 6);
    ecp_dataset_free(d);
    /* A UTF-8 BOM before a header and before data. */
    assert_int_equal(csv("bom.csv", "\xEF\xBB\xBFx,y\n1,2\n3,4\n", NULL, &d, &err), ECP_OK);
    assert_int_equal(d->n, 2);
    assert_true(d->x[0] == 1 && d->y[1] == 4);
    ecp_dataset_free(d);
    assert_int_equal(csv("bom2.csv", "\xEF\xBB\xBF" "1,2\n3,4\n", NULL, &d, &err), ECP_OK);
    assert_int_equal(d->n, 2);
    assert_true(d->x[0] == 1 && d->y[0] == 2);
    ecp_dataset_free(d);
    /* Header names that begin like numbers ("inf...", "nan...") are still a header. */
    assert_int_equal(csv("hn.csv", "infected,nanograms,level\n1,2,3\n", NULL, &d, &err), ECP_OK);
    assert_int_equal(d->n, 1);
    assert_true(d->x[0] == 1 && d->y[0] == 3);
    ecp_dataset_free(d);
}

static void test_csv_targets(void **state)
{
    (void)state;
    const char *text = "a,b,c,d\n1,2,3,4\n5,6,7,8\n";
    ecp_dataset *d;
    ecp_error err;
    assert_int_equal(csv("t.csv", text, "0,2", &d, &err), ECP_OK);
    assert_int_equal(d->n_in, 2);
    assert_int_equal(d->n_out, 2);
    assert_true(d->y[0] == 1 && d->y[1] == 3 && d->y[2] == 5 && d->y[3] == 7);
    assert_true(d->x[0] == 2 && d->x[1] == 4 && d->x[2] == 6 && d->x[3] == 8);
    ecp_dataset_free(d);
    assert_int_equal(csv("t.csv", text, "-1", &d, &err), ECP_OK);
    assert_int_equal(d->n_out, 1);
    assert_true(d->y[0] == 4 && d->x[2] == 3);
    ecp_dataset_free(d);
    assert_int_equal(csv("t.csv", text, "-4,1,1", &d, &err), ECP_OK); /* duplicates collapse */
    assert_int_equal(d->n_out, 2);
    assert_true(d->y[0] == 1 && d->y[1] == 2 && d->x[0] == 3);
    ecp_dataset_free(d);
    expect_csv_fail("t.csv", text, "4", ECP_ERR_ARG, "4");
    expect_csv_fail("t.csv", text, "-5", ECP_ERR_ARG, NULL);
    /* Syntax errors in the option name the option. */
    static const char *bad[] = {"x", "1,", "1;2", ",0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ecp_dataset *e = (ecp_dataset *)1;
        assert_int_equal(csv("t.csv", text, bad[i], &e, &err), ECP_ERR_ARG);
        assert_null(e);
        assert_non_null(strstr(err.msg, "target_cols '"));
    }
    expect_csv_fail("t.csv", text, "0,1,2,3", ECP_ERR_ARG, "no input column");
}

static void test_csv_bad(void **state)
{
    (void)state;
    expect_csv_fail("f.csv", "1,2,3\n4,x,6\n", NULL, ECP_ERR_FORMAT, "f.csv:2:");
    expect_csv_fail("f2.csv", "a,b,c\n1,2,3\n4,5,6x\n", NULL, ECP_ERR_FORMAT, "f2.csv:3:");
    expect_csv_fail("f3.csv", "1,2,3\n4,,6\n", NULL, ECP_ERR_FORMAT, "field 2");
    expect_csv_fail("few.csv", "a,b,c\n1,2,3\n4,5\n", NULL, ECP_ERR_FORMAT, "fewer");
    expect_csv_fail("more.csv", "a,b,c\n1,2,3\n4,5,6,7\n", NULL, ECP_ERR_FORMAT, "more");
    expect_csv_fail("trail.csv", "1,2,3\n4,5,6,\n", NULL, ECP_ERR_FORMAT, NULL);
    expect_csv_fail("nan.csv", "a,b\n1,2\nnan,3\n", NULL, ECP_ERR_NUMERIC, "NaN");
    expect_csv_fail("inf.csv", "a,b\n1,2\n3,-inf\n", NULL, ECP_ERR_NUMERIC, "Inf");
    expect_csv_fail("big.csv", "a,b\n1,1e999\n", NULL, ECP_ERR_NUMERIC, NULL);
    expect_csv_fail("empty.csv", "", NULL, ECP_ERR_FORMAT, "empty");
    expect_csv_fail("bomonly.csv", "\xEF\xBB\xBF", NULL, ECP_ERR_FORMAT, NULL);
    expect_csv_fail("hdronly.csv", "a,b,c\n", NULL, ECP_ERR_FORMAT, "no data");
    expect_csv_fail("onecol.csv", "1\n2\n", NULL, ECP_ERR_FORMAT, NULL);
    ecp_dataset *d = (ecp_dataset *)1;
    ecp_error err = {0};
    assert_int_equal(ecp_csv_read(tu_path("none.csv"), NULL, &d, &err), ECP_ERR_IO);
    assert_null(d);
    assert_non_null(strstr(err.msg, tu_path("none.csv")));
}

static void test_csv_open_split(void **state)
{
    (void)state;
    char text[4096], *p = text;
    p += sprintf(p, "x,y\n");
    for (int i = 0; i < 50; i++)
        p += sprintf(p, "%d,%d\n", i, 1000 + i);
    tu_write(tu_path("all.csv"), text, strlen(text));
    ecp_dataset *tr, *te, *tr2, *te2;
    ecp_error err = {0};
    ecp_data_opts o;
    ecp_data_opts_default(&o);
    assert_close(o.test_frac, 0.2, 0, 0);
    assert_int_equal(ecp_data_open(tu_path("all.csv"), &o, &tr, &te, &err), ECP_OK);
    assert_int_equal(tr->n, 40);
    assert_int_equal(te->n, 10);
    /* Each row appears once across the two splits, x and y still paired. */
    int seen[50] = {0};
    for (int k = 0; k < 2; k++) {
        ecp_dataset *d = k ? te : tr;
        for (int64_t i = 0; i < d->n; i++) {
            int v = (int)d->x[i];
            assert_true(v >= 0 && v < 50);
            assert_true(d->y[i] == 1000 + v);
            seen[v]++;
        }
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    /* The split is seeded: the same seed gives the same split, another seed another. */
    assert_int_equal(ecp_data_open(tu_path("all.csv"), &o, &tr2, &te2, &err), ECP_OK);
    assert_memory_equal(te->x, te2->x, 10 * sizeof(float));
    ecp_dataset_free(tr2);
    ecp_dataset_free(te2);
    o.split_seed = 99;
    assert_int_equal(ecp_data_open(tu_path("all.csv"), &o, &tr2, &te2, &err), ECP_OK);
    assert_true(memcmp(te->x, te2->x, 10 * sizeof(float)) != 0);
    ecp_dataset_free(tr2);
    ecp_dataset_free(te2);
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
    /* A fraction that leaves an empty split. */
    o.test_frac = 0.001;
    assert_int_equal(ecp_data_open(tu_path("all.csv"), &o, &tr, &te, &err), ECP_ERR_ARG);
    assert_null(tr);
    assert_non_null(strstr(err.msg, tu_path("all.csv")));
    /* train.csv + test.csv in a directory; different widths are refused. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/csvdir", tu_dir);
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/train.csv", dir);
    tu_write(path, "a,b,c\n1,2,3\n4,5,6\n", 18);
    snprintf(path, sizeof path, "%s/test.csv", dir);
    tu_write(path, "a,b,c\n7,8,9\n", 12);
    ecp_data_opts_default(&o);
    assert_int_equal(ecp_data_open(dir, &o, &tr, &te, &err), ECP_OK);
    assert_int_equal(tr->n, 2);
    assert_int_equal(te->n, 1);
    assert_true(te->y[0] == 9);
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
    o.target_cols = "0";
    assert_int_equal(ecp_data_open(dir, &o, &tr, &te, &err), ECP_OK);
    assert_true(te->y[0] == 7 && te->x[1] == 9);
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
    tu_write(path, "a,b\n7,8\n", 8);
    o.target_cols = NULL;
    assert_int_equal(ecp_data_open(dir, &o, &tr, &te, &err), ECP_ERR_SHAPE);
    assert_null(tr);
    assert_null(te);
    assert_non_null(strstr(err.msg, dir));
}

/* ------------------------------------------------------------------ .npy directories */

/* Writes split_x.npy (n x w, value 0.01*(r*w+c)) and split_y.npy. kind: 0 = int64 labels
 * i % k (1-D), 1 = float32 n x k targets, 2 = int64 labels as (n, 1). */
static void write_split(const char *dir, const char *split, int n, int w, int kind, int k)
{
    char path[600];
    float *x = malloc(sizeof(float) * n * w);
    for (int i = 0; i < n * w; i++)
        x[i] = 0.01f * i;
    ecp_error err = {0};
    snprintf(path, sizeof path, "%s/%s_x.npy", dir, split);
    assert_int_equal(ecp_npy_write_f32(path, x, n, w, &err), ECP_OK);
    free(x);
    snprintf(path, sizeof path, "%s/%s_y.npy", dir, split);
    if (kind == 1) {
        float *y = malloc(sizeof(float) * n * k);
        for (int i = 0; i < n * k; i++)
            y[i] = (float)(i * 0.5);
        assert_int_equal(ecp_npy_write_f32(path, y, n, k, &err), ECP_OK);
        free(y);
    } else {
        int64_t *l = malloc(sizeof(int64_t) * n);
        for (int i = 0; i < n; i++)
            l[i] = i % k;
        if (kind == 0)
            assert_int_equal(ecp_npy_write_i64(path, l, n, &err), ECP_OK);
        else {
            char dict[200];
            char shape[64];
            snprintf(shape, sizeof shape, "(%d, 1)", n);
            npy_dict(dict, sizeof dict, "<i8", "False", shape);
            npy_hand(path, 1, dict, l, sizeof(int64_t) * n);
        }
        free(l);
    }
}

static const char *mkdir_sub(const char *name)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tu_dir, name);
    mkdir(dir, 0755);
    return dir;
}

static void expect_open_fail(const char *spec, ecp_status code, const char *needle)
{
    ecp_dataset *tr = (ecp_dataset *)1, *te = (ecp_dataset *)1;
    ecp_error err = {0};
    ecp_status s = ecp_data_open(spec, NULL, &tr, &te, &err);
    if (s != code || (needle && !strstr(err.msg, needle)))
        print_error("open %s: got %s (%s), want %s with '%s'\n", spec, ecp_status_name(s),
                    err.msg, ecp_status_name(code), needle ? needle : "");
    assert_int_equal(s, code);
    assert_null(tr);
    assert_null(te);
    if (needle)
        assert_non_null(strstr(err.msg, needle));
}

static void test_npy_dir_classification(void **state)
{
    (void)state;
    const char *dir = mkdir_sub("cls");
    write_split(dir, "train", 30, 4, 0, 3);
    write_split(dir, "test", 10, 4, 2, 2); /* (N, 1) labels, one class fewer */
    ecp_dataset *tr, *te;
    ecp_error err = {0};
    assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_OK);
    assert_true(tr->is_class && te->is_class);
    assert_int_equal(tr->n, 30);
    assert_int_equal(te->n, 10);
    assert_int_equal(tr->n_in, 4);
    assert_int_equal(tr->n_out, 3);
    assert_int_equal(te->n_out, 3); /* the larger class count of the two splits */
    assert_null(tr->y);
    assert_int_equal(tr->label[29], 2);
    assert_int_equal(te->label[9], 1);
    assert_true(tr->x[13] == 0.13f);
    assert_int_equal(ecp_dataset_loss(tr), ECP_LOSS_XENT);
    ecp_dataset_free(tr);
    /* test may be NULL. */
    assert_int_equal(ecp_data_open(dir, NULL, &tr, NULL, &err), ECP_OK);
    assert_int_equal(tr->n, 30);
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
}

static void test_npy_dir_regression(void **state)
{
    (void)state;
    const char *dir = mkdir_sub("reg");
    write_split(dir, "train", 20, 3, 1, 2);
    /* test_x as float64: converted. */
    double xd[15];
    for (int i = 0; i < 15; i++)
        xd[i] = i * 0.25;
    char dict[200], path[600];
    npy_dict(dict, sizeof dict, "<f8", "False", "(5, 3)");
    snprintf(path, sizeof path, "%s/test_x.npy", dir);
    npy_hand(path, 1, dict, xd, sizeof xd);
    float y[10] = {0};
    snprintf(path, sizeof path, "%s/test_y.npy", dir);
    ecp_error err = {0};
    assert_int_equal(ecp_npy_write_f32(path, y, 5, 2, &err), ECP_OK);
    ecp_dataset *tr, *te;
    assert_int_equal(ecp_data_open(dir, NULL, &tr, &te, &err), ECP_OK);
    assert_false(tr->is_class);
    assert_int_equal(tr->n_out, 2);
    assert_int_equal(te->n, 5);
    assert_null(tr->label);
    assert_true(tr->y[7] == 3.5f);
    assert_true(te->x[14] == 3.5f);
    assert_int_equal(ecp_dataset_loss(te), ECP_LOSS_MSE);
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
}

static void test_npy_dir_bad(void **state)
{
    (void)state;
    char path[600];
    ecp_error err = {0};
    /* Rows of x and y differ. */
    const char *dir = mkdir_sub("rows");
    write_split(dir, "train", 20, 3, 1, 1);
    write_split(dir, "test", 5, 3, 1, 1);
    float y[7] = {0};
    snprintf(path, sizeof path, "%s/train_y.npy", dir);
    assert_int_equal(ecp_npy_write_f32(path, y, 7, 1, &err), ECP_OK);
    expect_open_fail(dir, ECP_ERR_SHAPE, path);
    /* NaN in x. */
    dir = mkdir_sub("nan");
    write_split(dir, "train", 20, 3, 1, 1);
    write_split(dir, "test", 5, 3, 1, 1);
    float x[6] = {1, 2, 3, 4, NAN, 6};
    snprintf(path, sizeof path, "%s/test_x.npy", dir);
    assert_int_equal(ecp_npy_write_f32(path, x, 2, 3, &err), ECP_OK);
    snprintf(path, sizeof path, "%s/test_y.npy", dir);
    assert_int_equal(ecp_npy_write_f32(path, y, 2, 1, &err), ECP_OK);
    snprintf(path, sizeof path, "%s/test_x.npy", dir);
    expect_open_fail(dir, ECP_ERR_NUMERIC, path);
    expect_open_fail(dir, ECP_ERR_NUMERIC, "row 1");
    /* Inf in regression targets. */
    dir = mkdir_sub("inf");
    write_split(dir, "train", 4, 2, 1, 1);
    write_split(dir, "test", 4, 2, 1, 1);
    float yi[4] = {0, INFINITY, 0, 0};
    snprintf(path, sizeof path, "%s/train_y.npy", dir);
    assert_int_equal(ecp_npy_write_f32(path, yi, 4, 1, &err), ECP_OK);
    expect_open_fail(dir, ECP_ERR_NUMERIC, "train");
    /* Train and test widths differ. */
    dir = mkdir_sub("width");
    write_split(dir, "train", 10, 3, 0, 2);
    write_split(dir, "test", 10, 4, 0, 2);
    expect_open_fail(dir, ECP_ERR_SHAPE, dir);
    /* Regression target widths differ. */
    dir = mkdir_sub("ywidth");
    write_split(dir, "train", 10, 3, 1, 2);
    write_split(dir, "test", 10, 3, 1, 1);
    expect_open_fail(dir, ECP_ERR_SHAPE, dir);
    /* Labels in one split, float targets in the other. */
    dir = mkdir_sub("kind");
    write_split(dir, "train", 10, 3, 0, 2);
    write_split(dir, "test", 10, 3, 1, 1);
    expect_open_fail(dir, ECP_ERR_FORMAT, dir);
    /* int64 inputs. */
    dir = mkdir_sub("intx");
    write_split(dir, "train", 4, 1, 0, 2);
    write_split(dir, "test", 4, 1, 0, 2);
    int64_t xi[4] = {1, 2, 3, 4};
    snprintf(path, sizeof path, "%s/train_x.npy", dir);
    assert_int_equal(ecp_npy_write_i64(path, xi, 4, &err), ECP_OK);
    expect_open_fail(dir, ECP_ERR_FORMAT, path);
    /* A negative class label. */
    dir = mkdir_sub("neglab");
    write_split(dir, "train", 4, 2, 0, 2);
    write_split(dir, "test", 4, 2, 0, 2);
    int64_t nl[4] = {0, 1, -3, 1};
    snprintf(path, sizeof path, "%s/test_y.npy", dir);
    assert_int_equal(ecp_npy_write_i64(path, nl, 4, &err), ECP_OK);
    expect_open_fail(dir, ECP_ERR_FORMAT, path);
    /* Missing test files; a truncated file. */
    dir = mkdir_sub("missing");
    write_split(dir, "train", 4, 2, 0, 2);
    snprintf(path, sizeof path, "%s/test_x.npy", dir);
    expect_open_fail(dir, ECP_ERR_IO, path);
    write_split(dir, "test", 4, 2, 0, 2);
    size_t len;
    unsigned char *raw = slurp(path, &len);
    tu_write(path, raw, len - 3);
    free(raw);
    expect_open_fail(dir, ECP_ERR_FORMAT, path);
}

static void test_open_unknown(void **state)
{
    (void)state;
    expect_open_fail("", ECP_ERR_ARG, NULL);
    /* A bare word is a bad argument (a misspelt name, with a hint when one is close); a path
     * that is not there is an i/o error. */
    expect_open_fail("no-such-dataset-xyz", ECP_ERR_ARG, "no-such-dataset-xyz");
    expect_open_fail("mnist2", ECP_ERR_ARG, "did you mean mnist?");
    expect_open_fail("fahsion", ECP_ERR_ARG, "did you mean fashion?");
    expect_open_fail("./mnist2", ECP_ERR_IO, "./mnist2");
    expect_open_fail(tu_path("missing.csv"), ECP_ERR_IO, tu_path("missing.csv"));
    tu_write(tu_path("file.txt"), "1,2\n", 4);
    expect_open_fail(tu_path("file.txt"), ECP_ERR_UNSUPPORTED, tu_path("file.txt"));
    /* A bad noise level is refused before anything is generated. */
    expect_open_fail("diffsorp:abc", ECP_ERR_ARG, "diffsorp:abc");
    expect_open_fail("diffsorp:-1", ECP_ERR_ARG, NULL);
    expect_open_fail("diffsorp:11", ECP_ERR_ARG, NULL);
    expect_open_fail("diffsorp:0.1x", ECP_ERR_ARG, NULL);
}

static void test_dataset_api(void **state)
{
    (void)state;
    ecp_dataset *d, *s;
    ecp_error err = {0};
    assert_int_equal(ecp_dataset_create(&d, 5, 2, 3, 1, &err), ECP_OK);
    for (int i = 0; i < 10; i++)
        d->x[i] = (float)i;
    for (int i = 0; i < 5; i++)
        d->label[i] = i % 3;
    assert_int_equal(ecp_dataset_validate(d, "ds", &err), ECP_OK);
    int64_t idx[3] = {4, 0, 4};
    assert_int_equal(ecp_dataset_subset(d, idx, 3, &s, &err), ECP_OK);
    assert_int_equal(s->n, 3);
    assert_true(s->x[0] == 8 && s->x[1] == 9 && s->x[2] == 0 && s->x[5] == 9);
    assert_int_equal(s->label[0], 1);
    assert_int_equal(s->label[1], 0);
    ecp_dataset_free(s);
    idx[1] = 5;
    s = (ecp_dataset *)1;
    assert_int_equal(ecp_dataset_subset(d, idx, 3, &s, &err), ECP_ERR_ARG);
    assert_null(s);
    d->label[2] = 3;
    assert_int_equal(ecp_dataset_validate(d, "ds", &err), ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "ds"));
    d->label[2] = 2;
    d->x[7] = INFINITY;
    assert_int_equal(ecp_dataset_validate(d, "where", &err), ECP_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "where"));
    assert_non_null(strstr(err.msg, "row 3"));
    ecp_dataset_free(d);
    assert_int_equal(ecp_dataset_create(&d, -1, 2, 3, 1, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_dataset_create(&d, 2, 0, 3, 1, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_dataset_create(&d, INT64_MAX / 2, 1 << 20, 1, 0, &err), ECP_ERR_MEMORY);
    assert_null(d);
}

/* ------------------------------------------------------------------ named datasets */

static void test_mnist(void **state)
{
    (void)state;
    ecp_dataset *tr, *te;
    ecp_error err = {0};
    tu_open_mnist_or_skip(&tr, &te);
    assert_int_equal(tr->n, 8000);
    assert_int_equal(te->n, 2000);
    assert_int_equal(tr->n_in, 784);
    assert_int_equal(te->n_in, 784);
    assert_int_equal(tr->n_out, 10);
    assert_true(tr->is_class && te->is_class);
    for (int k = 0; k < 2; k++) {
        ecp_dataset *d = k ? te : tr;
        int64_t count[10] = {0};
        for (int64_t i = 0; i < d->n; i++) {
            assert_true(d->label[i] >= 0 && d->label[i] <= 9);
            count[d->label[i]]++;
        }
        for (int c = 0; c < 10; c++)
            assert_true(count[c] > d->n / 20); /* every class, in roughly fair share */
        double sum = 0;
        float mn = 1, mx = 0;
        for (size_t i = 0; i < (size_t)d->n * 784; i++) {
            float v = d->x[i];
            assert_true(v >= 0.0f && v <= 1.0f);
            sum += v;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        assert_true(mn == 0.0f && mx > 0.99f);
        double mean = sum / ((double)d->n * 784);
        assert_true(mean > 0.08 && mean < 0.2); /* MNIST's mean intensity is about 0.13 */
        /* Shuffled: the labels are not grouped by class. */
        int changes = 0;
        for (int64_t i = 1; i < d->n; i++)
            changes += d->label[i] != d->label[i - 1];
        assert_true(changes > d->n / 2);
    }
    /* Deterministic: a second open gives the same split, bit for bit. */
    ecp_dataset *tr2, *te2;
    assert_int_equal(ecp_data_open("mnist", NULL, &tr2, &te2, &err), ECP_OK);
    assert_memory_equal(tr->x, tr2->x, (size_t)8000 * 784 * sizeof(float));
    assert_memory_equal(te->x, te2->x, (size_t)2000 * 784 * sizeof(float));
    assert_memory_equal(tr->label, tr2->label, 8000 * sizeof(int32_t));
    assert_memory_equal(te->label, te2->label, 2000 * sizeof(int32_t));
    ecp_dataset_free(tr2);
    ecp_dataset_free(te2);
    /* Train and test are disjoint: no test digit appears in train (spot check 50). */
    for (int i = 0; i < 2000; i += 40) {
        const float *q = te->x + (size_t)i * 784;
        for (int64_t j = 0; j < 8000; j++)
            assert_true(memcmp(q, tr->x + (size_t)j * 784, 784 * sizeof(float)) != 0);
    }
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
    /* Train only. */
    assert_int_equal(ecp_data_open("mnist", NULL, &tr, NULL, &err), ECP_OK);
    assert_int_equal(tr->n, 8000);
    ecp_dataset_free(tr);
}

static void test_fashion(void **state)
{
    (void)state;
    if (!ecp_dir_exists("/usr/share/datasets/fashion-mnist"))
        fail_msg("fashion: /usr/share/datasets/fashion-mnist missing (apt install "
                 "dataset-fashion-mnist)");
    ecp_dataset *tr, *te;
    ecp_error err = {0};
    ecp_status s = ecp_data_open("fashion", NULL, &tr, &te, &err);
    if (s)
        fail_msg("fashion: %s", err.msg);
    assert_int_equal(tr->n, 60000);
    assert_int_equal(te->n, 10000);
    assert_int_equal(tr->n_in, 784);
    assert_int_equal(tr->n_out, 10);
    for (int k = 0; k < 2; k++) {
        ecp_dataset *d = k ? te : tr;
        int64_t count[10] = {0};
        for (int64_t i = 0; i < d->n; i++) {
            assert_true(d->label[i] >= 0 && d->label[i] <= 9);
            count[d->label[i]]++;
        }
        for (int c = 0; c < 10; c++)
            assert_int_equal(count[c], d->n / 10); /* Fashion-MNIST is exactly balanced */
        float mn = 1, mx = 0;
        double sum = 0;
        for (size_t i = 0; i < (size_t)d->n * 784; i++) {
            mn = d->x[i] < mn ? d->x[i] : mn;
            mx = d->x[i] > mx ? d->x[i] : mx;
            sum += d->x[i];
        }
        assert_true(mn == 0.0f && mx == 1.0f);
        double mean = sum / ((double)d->n * 784);
        assert_true(mean > 0.2 && mean < 0.4); /* about 0.286 */
    }
    ecp_dataset_free(tr);
    ecp_dataset_free(te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_write_read_f32),
        cmocka_unit_test(test_npy_i8_and_f8),
        cmocka_unit_test(test_npy_versions_and_layout),
        cmocka_unit_test(test_npy_bad),
        cmocka_unit_test(test_idx_roundtrip),
        cmocka_unit_test(test_idx_bad),
        cmocka_unit_test(test_idx_dataset_dir),
        cmocka_unit_test(test_csv_basic),
        cmocka_unit_test(test_csv_targets),
        cmocka_unit_test(test_csv_bad),
        cmocka_unit_test(test_csv_open_split),
        cmocka_unit_test(test_npy_dir_classification),
        cmocka_unit_test(test_npy_dir_regression),
        cmocka_unit_test(test_npy_dir_bad),
        cmocka_unit_test(test_open_unknown),
        cmocka_unit_test(test_dataset_api),
        cmocka_unit_test(test_mnist),
        cmocka_unit_test(test_fashion),
    };
    return cmocka_run_group_tests_name("data", tests, tu_dir_setup, tu_dir_teardown);
}
