/* The N:M layout and its kernels against a double-precision dense product (brute force), for
 * 2:4, 1:4 and 3:8 on fan-ins that M does not divide, batches with a ragged tile end; and the
 * layout refusing a matrix that breaks the pattern. */
#include "testutil.h"
#include "sparse/nm.h"
#include "sparse/sparse.h"

/* A random n_out x n_in matrix obeying n:m, with some groups keeping fewer than n. */
static float *nm_matrix(int n_out, int n_in, int n, int m, ecp_rng *r)
{
    float *W = calloc((size_t)n_out * n_in, sizeof *W);
    for (int i = 0; i < n_out; i++)
        for (int g = 0; g < n_in; g += m) {
            int end = g + m < n_in ? g + m : n_in, kept = 0;
            for (int j = g; j < end && kept < n; j++)
                if (ecp_rng_uniform(r) < 0.6) {
                    W[(size_t)i * n_in + j] = (float)ecp_rng_normal(r);
                    kept++;
                }
        }
    return W;
}

static void test_nm_kernels_match_dense(void **state)
{
    const int cases[4][4] = {{2, 4, 13, 22}, {1, 4, 5, 8}, {3, 8, 9, 19}, {2, 4, 64, 784}};
    ecp_rng r;
    ecp_rng_seed(&r, 5);
    for (int q = 0; q < 4; q++) {
        int n = cases[q][0], m = cases[q][1], no = cases[q][2], ni = cases[q][3];
        float *W = nm_matrix(no, ni, n, m, &r), *b = malloc(sizeof(float) * no);
        for (int i = 0; i < no; i++)
            b[i] = (float)ecp_rng_normal(&r);
        ecp_nmmat a;
        ecp_error err;
        assert_int_equal(ecp_nmmat_build(&a, W, no, ni, n, m, &err), ECP_OK);
        const int Bs[3] = {1, 32, 45};
        for (int k = 0; k < 3; k++) {
            int B = Bs[k];
            /* the engine's padded row stride (B + 16 at 32 and 45) */
            const size_t ld = ecp_fm_ld(B);
            float *x = malloc(sizeof(float) * ni * B), *XT = malloc(sizeof(float) * ni * ld);
            float *y = malloc(sizeof(float) * no * ld);
            for (int t = 0; t < ni * B; t++)
                x[t] = (float)ecp_rng_normal(&r);
            for (int c = 0; c < B; c++)
                for (int j = 0; j < ni; j++)
                    XT[(size_t)j * ld + c] = x[(size_t)c * ni + j];
            if (B == 1)
                ecp_nm_gemv(&a, x, b, y);
            else
                ecp_nm_gemm(&a, XT, B, ld, b, y);
            for (int c = 0; c < B; c++)
                for (int i = 0; i < no; i++) {
                    double s = b[i], mag = fabs(b[i]);
                    for (int j = 0; j < ni; j++) {
                        s += (double)W[(size_t)i * ni + j] * x[(size_t)c * ni + j];
                        mag += fabs((double)W[(size_t)i * ni + j] * x[(size_t)c * ni + j]);
                    }
                    float got = B == 1 ? y[i] : y[(size_t)i * ld + c];
                    assert_close(got, s, 0, 1e-6 * mag + 1e-7);
                }
            free(x);
            free(XT);
            free(y);
        }
        ecp_nmmat_release(&a);
        free(W);
        free(b);
    }
}

static void test_nm_layout_refuses_broken_pattern(void **state)
{
    float W[2 * 6] = {1, 0, 0, 0, 1, 0, /* row 1, group 0 keeps 3 */ 1, 1, 1, 0, 0, 0};
    ecp_nmmat a;
    ecp_error err;
    assert_int_equal(ecp_nmmat_build(&a, W, 2, 6, 2, 4, &err), ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 1 inputs 0..3"));
    assert_null(a.val);
    assert_int_equal(ecp_nmmat_build(&a, W, 2, 6, 3, 4, &err), ECP_OK);
    assert_int_equal(a.groups, 2);
    assert_int_equal(a.idx[(1 * 3 + 2) * 2 + 0], 2); /* row 1, third slot, group 0: input 2 */
    ecp_nmmat_release(&a);
    assert_int_equal(ecp_nmmat_build(&a, W, 2, 6, 4, 4, &err), ECP_ERR_ARG);
}

/* The engine's N:M hook: forced on, it runs the N:M kernel on every patterned layer at batch > 1
 * and computes what the dense engine computes; forced off, never; by measurement (the default),
 * the same function whatever it picks. */
static void test_engine_nm_hook(void **state)
{
    ecp_mlp *m = tu_make_net("22-16-12-4", ECP_ACT_RELU, 71);
    ecp_error err;
    for (int l = 0; l < 3; l++) { /* keep two of every group of four, which two by row (a
                                   * column with no weight left would be removed by the engine) */
        ecp_layer *L = &m->layer[l];
        for (int i = 0; i < L->n_out; i++)
            for (int j = 0; j < L->n_in; j++)
                if ((j + i) % 4 >= 2) {
                    L->W[(size_t)i * L->n_in + j] = 0;
                    L->pruned[(size_t)i * L->n_in + j] = 1;
                }
    }
    assert_int_equal(ecp_mlp_set_pattern(m, 2, 4, 7, &err), ECP_OK);
    ecp_rng r;
    ecp_rng_seed(&r, 72);
    const int B = 37;
    float x[37 * 22], yd[37 * 4], y[37 * 4];
    for (int k = 0; k < B * 22; k++)
        x[k] = (float)ecp_rng_normal(&r);
    ecp_sparse_opts o;
    ecp_sparse_opts_default(&o);
    o.threads = 1;
    o.mode = ECP_ENGINE_DENSE;
    ecp_sparse_net *ref;
    assert_int_equal(ecp_sparse_create(&ref, m, &o, &err), ECP_OK);
    assert_int_equal(ecp_sparse_forward(ref, x, B, yd, &err), ECP_OK);
    o.mode = ECP_ENGINE_AUTO;
    for (int nm = -1; nm <= 1; nm++) {
        o.nm = nm;
        ecp_sparse_net *s;
        assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
        for (int l = 0; l < 3; l++)
            if (nm)
                assert_int_equal(ecp_sparse_layer_nm(s, l, B), nm > 0);
        assert_int_equal(ecp_sparse_forward(s, x, B, y, &err), ECP_OK);
        for (int k = 0; k < B * 4; k++)
            assert_close(y[k], yd[k], 1e-5, 1e-5);
        for (int n = 0; n < B; n++) { /* batch 1, one sample at a time */
            assert_int_equal(ecp_sparse_forward(s, x + n * 22, 1, y, &err), ECP_OK);
            for (int k = 0; k < 4; k++)
                assert_close(y[k], yd[n * 4 + k], 1e-5, 1e-5);
        }
        ecp_sparse_free(s);
    }
    ecp_sparse_free(ref);
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nm_kernels_match_dense),
        cmocka_unit_test(test_nm_layout_refuses_broken_pattern),
        cmocka_unit_test(test_engine_nm_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
