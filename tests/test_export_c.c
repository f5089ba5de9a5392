/* ecp_export_c: the generated C99 compiles warning-free under -pedantic -Werror, and its outputs
 * match the library's forward: within 1e-5 in float, and within the derived bound in int8.
 *
 * The int8 bound. Per output row o, s_o = max_k |w_ok| / 127 and |w_ok - s_o q_ok| <= s_o / 2.
 * With exact activations a (from the library) and an error bound e_k on the exported model's
 * inputs to a layer (0 for the network input), the pre-activation error of row o is at most
 *     sum_k (|w_ok| + s_o/2) e_k  +  s_o/2 sum_k |a_k|          (k over the row's kept inputs)
 * plus float rounding, and an activation with Lipschitz constant Lip (1 for relu, tanh,
 * identity; 1/4 sigmoid; 1.13 gelu) carries it to the next layer. The test propagates this
 * vector through the network and asserts |y_int8 - y| <= bound for every output. */
#include "testutil.h"

static ecp_mlp *random_model(const char *arch, ecp_act act, double prune, uint64_t seed)
{
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, arch, act, &err), ECP_OK);
    ecp_mlp_init(m, seed);
    ecp_rng r;
    ecp_rng_seed(&r, seed * 31 + 1);
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        for (size_t i = 0; i < nw; i++)
            if (ecp_rng_uniform(&r) < prune) {
                ecp_mlp_weights(m, l)[i] = 0.0f;
                ecp_mlp_pruned(m, l)[i] = 1;
            }
    }
    return m;
}

static const char *DRIVER =
    "#include <stdio.h>\n#include \"%s.h\"\n"
    "int main(int argc, char **argv)\n{\n"
    "    float in[%s_N_IN], out[%s_N_OUT];\n    int i;\n"
    "    FILE *f = fopen(argv[1], \"r\");\n    (void)argc;\n    if (!f)\n        return 1;\n"
    "    for (;;) {\n        for (i = 0; i < %s_N_IN; i++)\n"
    "            if (fscanf(f, \"%%f\", &in[i]) != 1)\n                return 0;\n"
    "        %s_predict(in, out);\n        for (i = 0; i < %s_N_OUT; i++)\n"
    "            printf(\"%%.9g\\n\", (double)out[i]);\n    }\n}\n";

/* Exports m, compiles it with a driver, runs it on n random inputs, returns the outputs
 * (n x n_out, malloc'd) and the inputs in *xs. */
static float *export_and_run(const ecp_mlp *m, const char *name, int int8, int n, float **xs)
{
    char dir[256], path[600], cmd[2400];
    tu_mkdtemp(dir, sizeof dir);
    ecp_error err;
    assert_int_equal(ecp_export_c(m, dir, name, int8, &err), ECP_OK);
    assert_int_equal(tu_count_files(dir), 2);
    snprintf(path, sizeof path, "%s/driver.c", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, DRIVER, name, name, name, name, name, name);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && gcc -std=c99 -Wall -Wextra -Werror -pedantic -O1 -o drv %s.c driver.c "
             "-lm",
             dir, name);
    assert_int_equal(system(cmd), 0);
    int n_in = ecp_mlp_n_in(m), n_out = ecp_mlp_n_out(m);
    float *x = malloc((size_t)n * n_in * sizeof *x);
    assert_non_null(x);
    ecp_rng r;
    ecp_rng_seed(&r, 99);
    snprintf(path, sizeof path, "%s/in.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < (size_t)n * n_in; i++) {
        x[i] = ecp_rng_uniform(&r) < 0.3 ? 0.0f : (float)(2 * ecp_rng_uniform(&r) - 1);
        fprintf(f, "%.9g\n", (double)x[i]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s/drv' '%s/in.txt'", dir, dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    float *y = malloc((size_t)n * n_out * sizeof *y);
    assert_non_null(y);
    for (size_t i = 0; i < (size_t)n * n_out; i++) {
        double v;
        assert_int_equal(fscanf(p, "%lf", &v), 1);
        y[i] = (float)v;
    }
    assert_int_equal(pclose(p), 0);
    tu_rmdir(dir);
    *xs = x;
    return y;
}

static void check_float(const char *arch, ecp_act act, double prune, const char *name)
{
    ecp_mlp *m = random_model(arch, act, prune, 7);
    const int n = 20;
    float *x;
    float *y = export_and_run(m, name, 0, n, &x);
    ecp_error err;
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, n, &err), ECP_OK);
    ecp_mlp_forward(m, ws, x, n);
    const float *ref = ecp_ws_output(ws);
    for (size_t i = 0; i < (size_t)n * ecp_mlp_n_out(m); i++)
        assert_close(y[i], ref[i], 1e-5, 1e-5);
    ecp_ws_free(ws);
    free(x);
    free(y);
    ecp_mlp_free(m);
}

static void test_float_matches(void **state)
{
    (void)state;
    check_float("20-13-7-5", ECP_ACT_RELU, 0.7, "net");
    check_float("784-300-100-10", ECP_ACT_RELU, 0.9, "mnist_mlp");
    check_float("6-4", ECP_ACT_TANH, 0.5, "one_layer");
    check_float("9-8-3", ECP_ACT_GELU, 0.0, "Dense_0");
    check_float("5-7-6-2", ECP_ACT_SIGMOID, 1.0, "allpruned");
    check_float("4-5-4-3-2", ECP_ACT_SOFTPLUS, 0.3, "deep");
    check_float("4-5-3", ECP_ACT_LEAKY_RELU, 0.3, "leaky");
    check_float("3-9000-2", ECP_ACT_RELU, 0.99, "wide"); /* static hidden buffers */
}

static double lipschitz(ecp_act a)
{
    return a == ECP_ACT_SIGMOID ? 0.25 : a == ECP_ACT_GELU ? 1.13 : 1.0;
}

static void check_int8(const char *arch, ecp_act act, double prune)
{
    ecp_mlp *m = random_model(arch, act, prune, 11);
    const int n = 20;
    float *x;
    float *y = export_and_run(m, "q8", 1, n, &x);
    ecp_error err;
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, n, &err), ECP_OK);
    ecp_mlp_forward(m, ws, x, n);
    int L = ecp_mlp_n_layers(m), wmax = 0;
    for (int l = 0; l < L; l++) {
        wmax = ecp_mlp_layer_in(m, l) > wmax ? ecp_mlp_layer_in(m, l) : wmax;
        wmax = ecp_mlp_layer_out(m, l) > wmax ? ecp_mlp_layer_out(m, l) : wmax;
    }
    double *e = malloc((size_t)wmax * sizeof *e), *en = malloc((size_t)wmax * sizeof *en);
    assert_true(e && en);
    for (int s = 0; s < n; s++) {
        for (int k = 0; k < ecp_mlp_n_in(m); k++)
            e[k] = 0.0;
        for (int l = 0; l < L; l++) {
            int ni = ecp_mlp_layer_in(m, l), no = ecp_mlp_layer_out(m, l);
            const float *W = ecp_mlp_weights_c(m, l);
            const float *a = ecp_ws_act(ws, l) + (size_t)s * ni;
            for (int o = 0; o < no; o++) {
                double mx = 0, sa = 0, prop = 0, mag = fabs(ecp_mlp_bias_c(m, l)[o]);
                for (int k = 0; k < ni; k++)
                    mx = fmax(mx, fabs(W[(size_t)o * ni + k]));
                double half = mx / 127.0 / 2.0;
                for (int k = 0; k < ni; k++) {
                    double w = W[(size_t)o * ni + k];
                    if (w == 0.0)
                        continue;
                    sa += fabs(a[k]);
                    prop += (fabs(w) + half) * e[k];
                    mag += fabs(w * a[k]);
                }
                en[o] = lipschitz(ecp_mlp_layer_act(m, l)) * (prop + half * sa + 1e-5 * (1 + mag));
            }
            memcpy(e, en, (size_t)no * sizeof *e);
        }
        const float *ref = ecp_ws_output(ws) + (size_t)s * ecp_mlp_n_out(m);
        for (int o = 0; o < ecp_mlp_n_out(m); o++)
            assert_close(y[(size_t)s * ecp_mlp_n_out(m) + o], ref[o], 0, e[o]);
    }
    free(e);
    free(en);
    ecp_ws_free(ws);
    free(x);
    free(y);
    ecp_mlp_free(m);
}

static void test_int8_within_bound(void **state)
{
    (void)state;
    check_int8("784-300-100-10", ECP_ACT_RELU, 0.9);
    check_int8("20-13-7-5", ECP_ACT_TANH, 0.5);
    check_int8("9-8-3", ECP_ACT_SIGMOID, 0.0);
    check_int8("5-7-6-2", ECP_ACT_RELU, 1.0);
}

static void test_bad_input(void **state)
{
    (void)state;
    char dir[256], sub[600], file[600];
    tu_mkdtemp(dir, sizeof dir);
    ecp_mlp *m = random_model("4-3-2", ECP_ACT_RELU, 0.5, 3);
    ecp_error err;
    static const char *bad[] = {"9net", "a-b", "", "has space", "x.y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ecp_export_c(m, dir, bad[i], 0, &err), ECP_ERR_ARG);
        assert_non_null(strstr(err.msg, "C identifier"));
    }
    assert_int_equal(ecp_export_c(m, dir, NULL, 0, &err), ECP_ERR_ARG);
    assert_int_equal(tu_count_files(dir), 0);
    /* an output "directory" that is a regular file, or lies below one */
    snprintf(file, sizeof file, "%s/afile", dir);
    tu_write(file, "x", 1);
    assert_int_equal(ecp_export_c(m, file, "net", 0, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "afile"));
    snprintf(sub, sizeof sub, "%s/afile/out", dir);
    assert_int_equal(ecp_export_c(m, sub, "net", 1, &err), ECP_ERR_IO);
    assert_int_equal(tu_count_files(dir), 1);
    assert_true(ecp_export_c_name_ok("ok_9"));
    assert_false(ecp_export_c_name_ok("0k"));
    /* reserved identifiers, and names whose NAME.h would stand in for a standard header */
    assert_false(ecp_export_c_name_ok("_ok9"));
    assert_false(ecp_export_c_name_ok("_STDINT"));
    assert_false(ecp_export_c_name_ok("stdint"));
    assert_false(ecp_export_c_name_ok("Math"));
    ecp_mlp_free(m);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_matches),
        cmocka_unit_test(test_int8_within_bound),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
