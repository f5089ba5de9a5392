/* Datasets read on demand (src/data/rows.c): IDX images left on disk and views that fetch a
 * chunk of rows at a time give the calibration passes bitwise the rows, statistics and pruned
 * models of the data in memory; bad or changed files fail with one line naming the file. */
#include "testutil.h"
#include "prune/prune.h"
#include <zlib.h>

/* 3,000 training images of 4 x 5 (about 40 % zeros, as images have), 50 test images. */
enum { N = 3000, H = 4, W = 5, F = H * W, NT = 50, CALIB = 2500 };

/* An IDX file of unsigned bytes: header, then the values. */
static void write_idx(const char *path, int gz, int nd, const uint32_t *dims, const uint8_t *v,
                      size_t n)
{
    unsigned char *b = malloc(4 + 4 * (size_t)nd + n);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    memcpy(b + 4 + 4 * nd, v, n);
    size_t len = 4 + 4 * (size_t)nd + n;
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, b, (unsigned)len), (int)len);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        tu_write(path, b, len);
    }
    free(b);
}

/* The four files of an IDX dataset (gzip-compressed or plain) in a directory of their own
 * (a plain file would be found before its .gz), whose path is returned. */
static const char *write_set(int gz)
{
    const char *dir = tu_path(gz ? "gz" : "plain");
    mkdir(dir, 0755);
    static uint8_t img[N * F], lab[N];
    uint64_t h = 88172645463325252ULL;
    for (int i = 0; i < N * F; i++) {
        h ^= h << 13, h ^= h >> 7, h ^= h << 17;
        img[i] = h % 5 < 2 ? 0 : (uint8_t)(h >> 24);
    }
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)((img[i * F] + img[i * F + 7]) % 10);
    char p[4][600];
    const char *name[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int k = 0; k < 4; k++)
        snprintf(p[k], sizeof p[k], "%s/%s%s", dir, name[k], gz ? ".gz" : "");
    uint32_t di[3] = {N, H, W}, dl[1] = {N}, ti[3] = {NT, H, W}, tl[1] = {NT};
    write_idx(p[0], gz, 3, di, img, sizeof img);
    write_idx(p[1], gz, 1, dl, lab, sizeof lab);
    write_idx(p[2], gz, 3, ti, img, (size_t)NT * F);
    write_idx(p[3], gz, 1, tl, lab, NT);
    return dir;
}

static void open_both(const char *dir, ecp_dataset **mem, ecp_dataset **lazy)
{
    ecp_error err = {0};
    assert_int_equal(ecp_data_open(dir, NULL, mem, NULL, &err), ECP_OK);
    assert_int_equal(ecp_data_open_streamed(dir, NULL, lazy, NULL, &err), ECP_OK);
    assert_non_null((*lazy)->rows);
    assert_null((*lazy)->x);
    assert_int_equal((*lazy)->n, N);
    assert_int_equal((*lazy)->n_in, F);
    assert_int_equal((*lazy)->n_out, (*mem)->n_out);
}

/* ecp_prune's calibration order. */
static int64_t *calib_perm(uint64_t seed)
{
    int64_t *perm = malloc(N * sizeof *perm);
    assert_non_null(perm);
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    ecp_rng_permutation(&r, perm, N);
    return perm;
}

/* The rows of every chunk of a view over the file, a subset of the file and a copy of it are the
 * in-memory rows bit for bit, in the shuffled order. */
static void test_rows_match_memory(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        ecp_dataset *mem, *lazy, *view, *sub, *ref;
        open_both(write_set(gz), &mem, &lazy);
        ecp_error err = {0};
        int64_t *perm = calib_perm(7);
        assert_int_equal(ecp_dataset_subset(mem, perm, CALIB, &ref, &err), ECP_OK);
        assert_int_equal(ecp_dataset_subset(lazy, perm, CALIB, &sub, &err), ECP_OK);
        assert_memory_equal(sub->x, ref->x, (size_t)CALIB * F * sizeof(float));
        assert_memory_equal(sub->label, ref->label, CALIB * sizeof(int32_t));
        /* the whole file copied into memory: the in-memory loader's rows */
        ecp_dataset *all;
        assert_int_equal(ecp_dataset_copy(lazy, &all, &err), ECP_OK);
        assert_null(all->rows);
        assert_int_equal(all->n, mem->n);
        assert_memory_equal(all->x, mem->x, (size_t)mem->n * F * sizeof(float));
        assert_memory_equal(all->label, mem->label, (size_t)mem->n * sizeof(int32_t));
        ecp_dataset_free(all);
        /* the smallest chunk: 1024 rows, so 3 fetches */
        assert_int_equal(ecp_dataset_view(lazy, perm, CALIB, 1, &view, &err), ECP_OK);
        int64_t C = ecp_dataset_chunk_rows(view);
        assert_int_equal(C, 1024);
        int fetched = 0;
        for (int64_t at = 0; at < CALIB; at += C, fetched++) {
            ecp_dataset cx;
            int64_t n = CALIB - at < C ? CALIB - at : C;
            assert_int_equal(ecp_dataset_rows(view, at, n, &cx, &err), ECP_OK);
            assert_int_equal(cx.n, n);
            assert_memory_equal(cx.x, ref->x + (size_t)at * F, (size_t)n * F * sizeof(float));
            assert_memory_equal(cx.label, ref->label + at, (size_t)n * sizeof(int32_t));
        }
        assert_int_equal(fetched, 3);
        /* an in-memory dataset is handed out whole, as a pointer */
        ecp_dataset cm;
        assert_int_equal(ecp_dataset_chunk_rows(ref), CALIB);
        assert_int_equal(ecp_dataset_rows(ref, 5, 10, &cm, &err), ECP_OK);
        assert_ptr_equal(cm.x, ref->x + 5 * F);
        ecp_dataset_free(view);
        ecp_dataset_free(sub);
        ecp_dataset_free(ref);
        ecp_dataset_free(lazy);
        ecp_dataset_free(mem);
    }
}

static void assert_same_arrays(double *const *a, double *const *b, const ecp_stats *st,
                               int per_out)
{
    for (int l = 0; l < st->n_layers; l++) {
        assert_true((a[l] == NULL) == (b[l] == NULL));
        if (a[l])
            assert_memory_equal(a[l], b[l],
                                (size_t)(per_out ? st->n_out[l] : 1) * st->n_in[l] *
                                    sizeof(double));
    }
}

/* The streamed statistics (3 chunks of rows read from the gzip file) against the pass over the
 * calibration copy in memory: bitwise equal, for the sparse output pass (1 and 2 workers),
 * the loss and probe sensitivities and the per-sample gradients. */
static void test_stats_streamed_bitwise(void **state)
{
    (void)state;
    ecp_dataset *mem, *lazy, *ref, *view;
    open_both(write_set(1), &mem, &lazy);
    ecp_error err = {0};
    int64_t *perm = calib_perm(3);
    assert_int_equal(ecp_dataset_subset(mem, perm, CALIB, &ref, &err), ECP_OK);
    assert_int_equal(ecp_dataset_view(lazy, perm, CALIB, 1, &view, &err), ECP_OK);
    ecp_mlp *m = tu_make_net("20-16-12-10", ECP_ACT_RELU, 5);
    struct {
        int need;
        ecp_sens sens;
        int threads;
    } c[] = {{ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 1}, {ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 2},
             {ECP_NEED_MOMENTS, ECP_SENS_LOSS, 1},   {ECP_NEED_MOMENTS, ECP_SENS_PROBE, 1},
             {ECP_NEED_GRAD, ECP_SENS_LOSS, 1},      {ECP_NEED_COLS, ECP_SENS_OUTPUT, 1}};
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        int prev = ecp_blas_threads_push(c[k].threads);
        ecp_stats *a, *b;
        assert_int_equal(ecp_stats_compute(m, ref, c[k].need, c[k].sens, 4, 9, &a, &err), ECP_OK);
        assert_int_equal(ecp_stats_compute(m, view, c[k].need, c[k].sens, 4, 9, &b, &err),
                         ECP_OK);
        ecp_blas_threads_pop(prev);
        for (int l = 0; l < m->n_layers; l++) {
            assert_memory_equal(a->shift[l], b->shift[l], (size_t)a->n_in[l] * sizeof(float));
            if (a->m0[l])
                assert_memory_equal(a->m0[l], b->m0[l], (size_t)a->n_out[l] * sizeof(double));
        }
        assert_same_arrays(a->m1, b->m1, a, 1);
        assert_same_arrays(a->m2, b->m2, a, 1);
        assert_same_arrays(a->g1, b->g1, a, 1);
        assert_same_arrays(a->g2, b->g2, a, 1);
        assert_same_arrays(a->sa, b->sa, a, 0);
        assert_same_arrays(a->sa2, b->sa2, a, 0);
        /* and the statistics are real ones (not two empty passes) */
        double *any = a->m1[0] ? a->m1[0] : a->g1[0] ? a->g1[0] : a->sa[0];
        assert_true(fabs(any[1]) > 0);
        ecp_stats_free(a);
        ecp_stats_free(b);
    }
    ecp_mlp_free(m);
    ecp_dataset_free(view);
    ecp_dataset_free(ref);
    ecp_dataset_free(lazy);
    ecp_dataset_free(mem);
}

/* ecp_prune on the training set on disk gives the model it gives on the set in memory, for a
 * statistics method and a reconstruction method (whose cache copies the streamed rows). */
static void test_prune_streamed_same_model(void **state)
{
    (void)state;
    ecp_dataset *mem, *lazy;
    open_both(write_set(1), &mem, &lazy);
    const char *methods[] = {"ec", "obs", "ec-exact"};
    for (int k = 0; k < 3; k++) {
        ecp_mlp *a = tu_make_net("20-16-10", ECP_ACT_TANH, 2), *b;
        ecp_error err = {0};
        assert_int_equal(ecp_mlp_clone(a, &b, &err), ECP_OK);
        ecp_prune_opts o;
        ecp_prune_opts_default(&o);
        o.method = methods[k];
        o.sparsity = 0.7;
        o.calib = k == 2 ? 300 : CALIB;
        assert_int_equal(ecp_prune(a, mem, &o, NULL, &err), ECP_OK);
        assert_int_equal(ecp_prune(b, lazy, &o, NULL, &err), ECP_OK);
        assert_true(tu_same_params(a, b));
        assert_true(tu_count_zero_pruned(a) > 0);
        ecp_mlp_free(a);
        ecp_mlp_free(b);
    }
    ecp_dataset_free(lazy);
    ecp_dataset_free(mem);
}

/* A .npy directory of the IDX set's values as floats: x float32 or float64 (which the streamed
 * reader converts row by row as the loader converts the whole), y int64 classes or float32
 * regression targets (3 columns). Returns the directory. */
static const char *write_npy(int f8, int regression)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/npy%d%d", tu_dir, f8, regression);
    mkdir(dir, 0755);
    uint64_t h = 2463534242ULL;
    for (int split = 0; split < 2; split++) {
        int n = split ? NT : N;
        double *x = malloc((size_t)n * F * sizeof *x);
        float *y = malloc((size_t)n * 3 * sizeof *y);
        int64_t *lab = malloc((size_t)n * sizeof *lab);
        assert_true(x && y && lab);
        for (int i = 0; i < n * F; i++) {
            h ^= h << 13, h ^= h >> 7, h ^= h << 17;
            x[i] = h % 3 == 0 ? 0 : ((double)(h >> 11) / 9007199254740992.0 - 0.3) * 2.7;
        }
        for (int i = 0; i < n; i++) {
            lab[i] = (x[i * F] > 0) + 2 * (x[i * F + 3] > 0.5);
            for (int k = 0; k < 3; k++)
                y[i * 3 + k] = (float)(x[i * F + k] - x[i * F + 9 - k]);
        }
        char px[700], py[700];
        snprintf(px, sizeof px, "%s/%s_x.npy", dir, split ? "test" : "train");
        snprintf(py, sizeof py, "%s/%s_y.npy", dir, split ? "test" : "train");
        ecp_error err = {0};
        if (f8) {
            char hd[128];
            int len = snprintf(hd, sizeof hd, "{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (%d, %d), }", n, F);
            while ((10 + len + 1) % 64)
                hd[len++] = ' ';
            hd[len++] = '\n';
            FILE *f = fopen(px, "wb");
            assert_non_null(f);
            unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                     (unsigned char)len, 0};
            fwrite(pre, 1, 10, f);
            fwrite(hd, 1, (size_t)len, f);
            fwrite(x, sizeof *x, (size_t)n * F, f);
            fclose(f);
        } else {
            float *x4 = malloc((size_t)n * F * sizeof *x4);
            assert_non_null(x4);
            for (int i = 0; i < n * F; i++)
                x4[i] = (float)x[i];
            assert_int_equal(ecp_npy_write_f32(px, x4, n, F, &err), ECP_OK);
            free(x4);
        }
        if (regression)
            assert_int_equal(ecp_npy_write_f32(py, y, n, 3, &err), ECP_OK);
        else
            assert_int_equal(ecp_npy_write_i64(py, lab, n, &err), ECP_OK);
        free(x);
        free(y);
        free(lab);
    }
    return dir;
}

/* .npy inputs (float32 and float64) with class labels or regression targets: the streamed
 * statistics and pruned models are the in-memory ones, bitwise. */
static void test_npy_streamed_bitwise(void **state)
{
    (void)state;
    for (int v = 0; v < 3; v++) {
        int f8 = v == 1, regression = v == 2;
        const char *dir = write_npy(f8, regression);
        ecp_dataset *mem, *lazy, *ref, *view;
        ecp_error err = {0};
        assert_int_equal(ecp_data_open(dir, NULL, &mem, NULL, &err), ECP_OK);
        assert_int_equal(ecp_data_open_streamed(dir, NULL, &lazy, NULL, &err), ECP_OK);
        assert_non_null(lazy->rows);
        assert_int_equal(lazy->is_class, !regression);
        assert_int_equal(lazy->n_out, mem->n_out);
        int64_t *perm = calib_perm(5);
        assert_int_equal(ecp_dataset_subset(mem, perm, CALIB, &ref, &err), ECP_OK);
        assert_int_equal(ecp_dataset_view(lazy, perm, CALIB, 1, &view, &err), ECP_OK);
        ecp_mlp *m = tu_make_net(regression ? "20-16-3" : "20-16-4", ECP_ACT_TANH, 3);
        int needs[2] = {ECP_NEED_MOMENTS, ECP_NEED_GRAD};
        for (int k = 0; k < 2; k++) {
            ecp_stats *a, *b;
            assert_int_equal(ecp_stats_compute(m, ref, needs[k], ECP_SENS_LOSS, 1, 2, &a, &err),
                             ECP_OK);
            assert_int_equal(ecp_stats_compute(m, view, needs[k], ECP_SENS_LOSS, 1, 2, &b, &err),
                             ECP_OK);
            assert_same_arrays(a->m1, b->m1, a, 1);
            assert_same_arrays(a->m2, b->m2, a, 1);
            assert_same_arrays(a->g1, b->g1, a, 1);
            assert_same_arrays(a->g2, b->g2, a, 1);
            ecp_stats_free(a);
            ecp_stats_free(b);
        }
        ecp_mlp *p;
        assert_int_equal(ecp_mlp_clone(m, &p, &err), ECP_OK);
        ecp_prune_opts o;
        ecp_prune_opts_default(&o);
        o.sparsity = 0.6;
        o.calib = CALIB;
        assert_int_equal(ecp_prune(m, mem, &o, NULL, &err), ECP_OK);
        assert_int_equal(ecp_prune(p, lazy, &o, NULL, &err), ECP_OK);
        assert_true(tu_same_params(m, p));
        ecp_mlp_free(m);
        ecp_mlp_free(p);
        ecp_dataset_free(view);
        ecp_dataset_free(ref);
        ecp_dataset_free(lazy);
        ecp_dataset_free(mem);
    }
}

static void expect_fail(ecp_status s, const ecp_error *err, ecp_status code, const char *path,
                        const char *needle)
{
    if (s != code || (path && !strstr(err->msg, path)) || !strstr(err->msg, needle))
        print_error("got %s (%s), want %s naming '%s' with '%s'\n", ecp_status_name(s), err->msg,
                    ecp_status_name(code), path ? path : "", needle);
    assert_int_equal(s, code);
    assert_true(!path || strstr(err->msg, path));
    assert_non_null(strstr(err->msg, needle));
    assert_null(strchr(err->msg, '\n'));
}

/* Bad files when opened, rows out of range, a file cut short after it was opened, and the
 * operations that need the rows in memory. */
static void test_rows_bad(void **state)
{
    (void)state;
    ecp_error err = {0};
    ecp_dataset *d = NULL;
    char img[600];
    /* a gzip stream cut short: found when the file is checked at open */
    const char *dir = write_set(1);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    unsigned char *buf;
    size_t len;
    assert_int_equal(ecp_read_file(img, &buf, &len, 1 << 24, &err), ECP_OK);
    tu_write(img, buf, len / 2);
    expect_fail(ecp_data_open_streamed(dir, NULL, &d, NULL, &err), &err, ECP_ERR_FORMAT, img,
                "truncated");
    assert_null(d);
    free(buf);
    /* plain files: more labels than images */
    dir = write_set(0);
    snprintf(img, sizeof img, "%s/train-labels-idx1-ubyte", dir);
    uint8_t lab[N + 1] = {0};
    uint32_t dl[1] = {N + 1};
    write_idx(img, 0, 1, dl, lab, sizeof lab);
    expect_fail(ecp_data_open_streamed(dir, NULL, &d, NULL, &err), &err, ECP_ERR_FORMAT, img,
                "labels");
    /* rows out of range */
    dir = write_set(0);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
    assert_int_equal(ecp_data_open_streamed(dir, NULL, &d, NULL, &err), ECP_OK);
    int64_t idx[2] = {5, N};
    ecp_dataset *sub = NULL, cx;
    expect_fail(ecp_dataset_subset(d, idx, 2, &sub, &err), &err, ECP_ERR_ARG, img,
                "out of range");
    assert_null(sub);
    idx[1] = -1;
    expect_fail(ecp_dataset_subset(d, idx, 2, &sub, &err), &err, ECP_ERR_ARG, img,
                "out of range");
    expect_fail(ecp_dataset_rows(d, N - 10, 20, &cx, &err), &err, ECP_ERR_ARG, NULL,
                "rows [2990, 3010)");
    /* the file cut short after it was checked: the rows past the cut cannot be read (through
     * a view in chunks of 1024 rows, which reads from the file at every fetch) */
    ecp_dataset *v;
    int64_t *all = malloc(N * sizeof *all);
    assert_non_null(all);
    for (int i = 0; i < N; i++)
        all[i] = i;
    assert_int_equal(ecp_dataset_view(d, all, N, 1, &v, &err), ECP_OK);
    assert_int_equal(ecp_dataset_rows(v, 0, 100, &cx, &err), ECP_OK);
    assert_int_equal(ecp_read_file(img, &buf, &len, 1 << 24, &err), ECP_OK);
    tu_write(img, buf, len - 3 * F);
    free(buf);
    expect_fail(ecp_dataset_rows(v, 2048, N - 2048, &cx, &err), &err, ECP_ERR_FORMAT, img,
                "truncated (row 29");
    /* rows before the cut still come */
    assert_int_equal(ecp_dataset_rows(v, 1024, 100, &cx, &err), ECP_OK);
    assert_true(cx.x[0] >= 0 && cx.x[0] <= 1 && cx.label[0] >= 0 && cx.label[0] < 10);
    ecp_dataset_free(v);
    /* .npy inputs are checked as they are read: a NaN in a calibration row, a float64 beyond
     * float32, a file cut short */
    for (int k = 0; k < 3; k++) {
        const char *nd = write_npy(k == 1, 0);
        char px[700];
        snprintf(px, sizeof px, "%s/train_x.npy", nd);
        assert_int_equal(ecp_read_file(px, &buf, &len, 1 << 24, &err), ECP_OK);
        size_t at = len - (size_t)(N - 1500) * F * (k == 1 ? 8 : 4); /* row 1500 */
        if (k == 0)
            memcpy(buf + at, &(float){NAN}, 4);
        else if (k == 1)
            memcpy(buf + at + 8, &(double){1e300}, 8);
        tu_write(px, buf, k == 2 ? len - 5 : len);
        free(buf);
        ecp_dataset *nl = NULL;
        ecp_status st = ecp_data_open_streamed(nd, NULL, &nl, NULL, &err);
        if (k == 2) {
            expect_fail(st, &err, ECP_ERR_FORMAT, px, "truncated");
            continue;
        }
        assert_int_equal(st, ECP_OK);
        ecp_mlp *mm = tu_make_net("20-8-4", ECP_ACT_RELU, 1);
        ecp_prune_opts po;
        ecp_prune_opts_default(&po);
        po.calib = N;
        expect_fail(ecp_prune(mm, nl, &po, NULL, &err), &err, ECP_ERR_NUMERIC, px,
                    k == 0 ? "(row 1500, column 0) is NaN" : "row 1500, column 1 is beyond");
        ecp_mlp_free(mm);
        ecp_dataset_free(nl);
    }
    /* training, evaluation and fine-tuning need the rows in memory */
    ecp_mlp *m = tu_make_net("20-8-10", ECP_ACT_RELU, 1);
    ecp_train_opts to;
    ecp_train_opts_default(&to);
    to.progress = 0;
    expect_fail(ecp_train(m, d, &to, NULL, &err), &err, ECP_ERR_UNSUPPORTED, NULL,
                "training data");
    ecp_eval_result ev;
    expect_fail(ecp_evaluate(m, d, &ev, &err), &err, ECP_ERR_UNSUPPORTED, NULL, "in memory");
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.finetune_epochs = 1;
    o.calib = 100;
    expect_fail(ecp_prune(m, d, &o, NULL, &err), &err, ECP_ERR_UNSUPPORTED, NULL,
                "finetune_epochs 1");
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_match_memory),
        cmocka_unit_test(test_stats_streamed_bitwise),
        cmocka_unit_test(test_prune_streamed_same_model),
        cmocka_unit_test(test_npy_streamed_bitwise),
        cmocka_unit_test(test_rows_bad),
    };
    return cmocka_run_group_tests_name("rows", tests, tu_dir_setup, tu_dir_teardown);
}
