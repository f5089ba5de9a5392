/* The diffusion–sorption generator: Thomas solver, conservation, an analytic solution,
 * convergence orders, the maximum principle, and the dataset on disk. */
#include "testutil.h"
#include "data/diffsorp.h"

/* ------------------------------------------------------------------ helpers */

/* Runs the stepper from u0 for `steps` steps of dt; u receives the final state. */
static void run(const ecp_diffsorp_model *m, int cells, double dt, long steps, int order,
                const double *u0, double *u)
{
    ecp_diffsorp_solver s;
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_solver_init(&s, m, cells, dt, &err), ECP_OK);
    s.order = order;
    assert_int_equal(ecp_diffsorp_solver_reset(&s, u0, &err), ECP_OK);
    for (long k = 0; k < steps; k++)
        assert_int_equal(ecp_diffsorp_step(&s, &err), ECP_OK);
    memcpy(u, s.u, (size_t)cells * sizeof *u);
    ecp_diffsorp_solver_free(&s);
}

/* A smooth initial state compatible with both boundaries: u(0) = 1, u''(0) = 0 (so u_t = 0 at
 * the Dirichlet end) and the outflow condition -D u'(1) = beta u(1). */
static void smooth_u0(const ecp_diffsorp_model *m, int cells, double *u0)
{
    double s = m->beta / (m->beta + 3.0 * m->D);
    for (int i = 0; i < cells; i++) {
        double x = (i + 0.5) / cells;
        u0[i] = 1.0 - s * x * x * x;
    }
}

/* max_i |coarse_i - (fine_{2i} + fine_{2i+1}) / 2|: pair averages sit at the coarse centres. */
static double restrict_diff(const double *coarse, const double *fine, int n_coarse)
{
    double e = 0.0;
    for (int i = 0; i < n_coarse; i++)
        e = fmax(e, fabs(coarse[i] - 0.5 * (fine[2 * i] + fine[2 * i + 1])));
    return e;
}

static double max_diff(const double *a, const double *b, int n)
{
    double e = 0.0;
    for (int i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]));
    return e;
}

/* ------------------------------------------------------------------ Thomas */

static void dense_solve(int n, double *A, double *x)
{
    /* Gaussian elimination with partial pivoting: an independent reference. */
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i * n + k]) > fabs(A[p * n + k]))
                p = i;
        for (int j = 0; j < n; j++) {
            double t = A[k * n + j];
            A[k * n + j] = A[p * n + j];
            A[p * n + j] = t;
        }
        double t = x[k];
        x[k] = x[p];
        x[p] = t;
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++)
                A[i * n + j] -= f * A[k * n + j];
            x[i] -= f * x[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        for (int j = k + 1; j < n; j++)
            x[k] -= A[k * n + j] * x[j];
        x[k] /= A[k * n + k];
    }
}

static void test_thomas(void **state)
{
    (void)state;
    enum { N = 9 };
    ecp_rng r;
    ecp_rng_seed(&r, 42);
    double a[N], b[N], c[N], d[N], work[N], A[N * N] = {0}, ref[N], known[N];
    for (int i = 0; i < N; i++) {
        a[i] = ecp_rng_uniform(&r) - 0.5;
        c[i] = ecp_rng_uniform(&r) - 0.5;
        b[i] = 1.5 + ecp_rng_uniform(&r);
        known[i] = ecp_rng_uniform(&r) * 4 - 2;
    }
    for (int i = 0; i < N; i++) {
        A[i * N + i] = b[i];
        if (i > 0)
            A[i * N + i - 1] = a[i];
        if (i < N - 1)
            A[i * N + i + 1] = c[i];
    }
    for (int i = 0; i < N; i++) {
        d[i] = 0;
        for (int j = 0; j < N; j++)
            d[i] += A[i * N + j] * known[j];
        ref[i] = d[i];
    }
    dense_solve(N, A, ref);
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_thomas(N, a, b, c, d, work, &err), ECP_OK);
    for (int i = 0; i < N; i++) {
        assert_close(d[i], known[i], 0, 1e-12);
        assert_close(d[i], ref[i], 0, 1e-12);
    }
    /* n = 1 and a vanishing pivot */
    double b1 = 4, d1 = 2;
    assert_int_equal(ecp_diffsorp_thomas(1, a, &b1, c, &d1, work, &err), ECP_OK);
    assert_close(d1, 0.5, 0, 1e-15);
    double z[2] = {0, 0}, dz[2] = {1, 1};
    assert_int_equal(ecp_diffsorp_thomas(2, z, z, z, dz, work, &err), ECP_ERR_NUMERIC);
}

/* ------------------------------------------------------------------ conservation */

/* The balance that each scheme enforces per step, with B = (inflow - outflow)(u^{n+1}):
 *   backward Euler:  M^{n+1} - M^n = dt B
 *   BDF2:            3/2 (M^{n+1} - M^n) - 1/2 (M^n - M^{n-1}) = dt B,
 * so the scheme's time integral of the fluxes over a step is q_{n+1} = 2/3 dt B + 1/3 q_n. */
static double mass_balance_error(int order)
{
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    enum { CELLS = 64 };
    double u0[CELLS];
    for (int i = 0; i < CELLS; i++)
        u0[i] = 0.05;
    ecp_diffsorp_solver s;
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_solver_init(&s, &m, CELLS, 0.5, &err), ECP_OK);
    s.order = order;
    s.newton_tol = 1e-13;
    assert_int_equal(ecp_diffsorp_solver_reset(&s, u0, &err), ECP_OK);
    double M0 = ecp_diffsorp_mass(&m, s.u, CELLS), q = 0, total = 0, out_total = 0;
    for (int k = 0; k < 400; k++) {
        assert_int_equal(ecp_diffsorp_step(&s, &err), ECP_OK);
        double in, out;
        ecp_diffsorp_boundary_flux(&m, s.u, CELLS, &in, &out);
        double B = s.dt * (in - out);
        q = (order == 2 && k > 0) ? 2.0 / 3.0 * B + q / 3.0 : B;
        total += q;
        out_total += s.dt * out;
    }
    double dM = ecp_diffsorp_mass(&m, s.u, CELLS) - M0;
    assert_true(dM > 0.01);          /* something happened */
    assert_true(out_total > 1e-4);   /* and the Robin end took part */
    ecp_diffsorp_solver_free(&s);
    return fabs(dM - total) / fabs(dM);
}

static void test_mass_balance(void **state)
{
    (void)state;
    double e2 = mass_balance_error(2), e1 = mass_balance_error(1);
    print_message("mass balance: relative error %.2e (BDF2), %.2e (backward Euler)\n", e2, e1);
    assert_true(e2 < 1e-6);
    assert_true(e1 < 1e-6);
}

/* ------------------------------------------------------------------ analytic solution */

static void test_erfc(void **state)
{
    (void)state;
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    m.k = 0;    /* no sorption: R = 1, plain diffusion */
    m.beta = 0; /* the front never reaches x = 1 by t = 50, so the end is irrelevant */
    enum { CELLS = 200 };
    const double c = 0.01, t = 50.0, dt = 0.05;
    double u0[CELLS], u[CELLS];
    for (int i = 0; i < CELLS; i++)
        u0[i] = c;
    run(&m, CELLS, dt, (long)(t / dt + 0.5), 2, u0, u);
    double e = 0;
    for (int i = 0; i < CELLS; i++) {
        double x = (i + 0.5) / CELLS;
        e = fmax(e, fabs(u[i] - (c + (1 - c) * erfc(x / (2 * sqrt(m.D * t))))));
    }
    print_message("erfc: max abs error %.2e at t = %g (%d cells, dt %g)\n", e, t, CELLS, dt);
    assert_true(e < 1e-3);
}

/* With a closed far end and constant initial data the non-linear problem on the half-line is
 * self-similar in x / sqrt(t) (Boltzmann): u(x, t) = u(2x, 4t) until the front feels x = 1.
 * The cell-centre x at t maps onto a face (2i+1)h at 4t, where the pair average lives. */
static void test_self_similar(void **state)
{
    (void)state;
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    m.beta = 0;
    enum { CELLS = 400 };
    const double t = 25.0, dt = 0.05;
    double u0[CELLS], u1[CELLS], u4[CELLS];
    for (int i = 0; i < CELLS; i++)
        u0[i] = 0.05;
    run(&m, CELLS, dt, (long)(t / dt + 0.5), 2, u0, u1);
    run(&m, CELLS, dt, (long)(4 * t / dt + 0.5), 2, u0, u4);
    assert_true(u4[CELLS - 1] - 0.05 < 1e-9); /* the far end has not been reached */
    double e = restrict_diff(u1, u4, CELLS / 2);
    print_message("self-similarity u(x,t) = u(2x,4t): max abs difference %.2e\n", e);
    assert_true(e < 2e-3);
}

/* ------------------------------------------------------------------ convergence orders */

static void test_space_order(void **state)
{
    (void)state;
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    enum { LEVELS = 4, N0 = 20 };
    const double dt = 0.5, t = 100.0;
    double *u[LEVELS];
    for (int l = 0; l < LEVELS; l++) {
        int n = N0 << l;
        double *u0 = malloc((size_t)n * sizeof *u0);
        u[l] = malloc((size_t)n * sizeof *u[l]);
        smooth_u0(&m, n, u0);
        run(&m, n, dt, (long)(t / dt + 0.5), 2, u0, u[l]);
        free(u0);
    }
    /* Same dt on every grid: the time error is (to leading order) common and cancels in the
     * differences of successive grids. */
    double e[LEVELS - 1];
    for (int l = 0; l < LEVELS - 1; l++)
        e[l] = restrict_diff(u[l], u[l + 1], N0 << l);
    for (int l = 0; l < LEVELS - 2; l++) {
        double p = log2(e[l] / e[l + 1]);
        print_message("space: %d/%d/%d cells: differences %.2e, %.2e, order %.2f\n", N0 << l,
                      N0 << (l + 1), N0 << (l + 2), e[l], e[l + 1], p);
        if (l == LEVELS - 3)
            assert_true(p >= 1.8);
    }
    for (int l = 0; l < LEVELS; l++)
        free(u[l]);
}

static void time_order(int order, double *p_out)
{
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    enum { LEVELS = 4, CELLS = 100 };
    const double t = 100.0, dt0 = 4.0;
    double u0[CELLS], u[LEVELS][CELLS];
    smooth_u0(&m, CELLS, u0);
    for (int l = 0; l < LEVELS; l++) {
        double dt = dt0 / (1 << l);
        run(&m, CELLS, dt, (long)(t / dt + 0.5), order, u0, u[l]);
    }
    double e1 = max_diff(u[LEVELS - 3], u[LEVELS - 2], CELLS);
    double e2 = max_diff(u[LEVELS - 2], u[LEVELS - 1], CELLS);
    *p_out = log2(e1 / e2);
    print_message("time (%s): dt %g/%g/%g: differences %.2e, %.2e, order %.2f\n",
                  order == 2 ? "BDF2" : "backward Euler", dt0 / 2, dt0 / 4, dt0 / 8, e1, e2,
                  *p_out);
}

static void test_time_order(void **state)
{
    (void)state;
    double p2, p1;
    time_order(2, &p2);
    time_order(1, &p1);
    assert_true(p2 >= 1.8);
    assert_true(p1 >= 0.9);
}

/* ------------------------------------------------------------------ maximum principle */

static void check_bounds(const ecp_diffsorp_model *m, double c0, double lo, double hi,
                         int strict_lo)
{
    enum { CELLS = 64, TIMES = 26 };
    static double u[TIMES * CELLS];
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_solve_c0(m, CELLS, c0, 500.0, TIMES, u, &err), ECP_OK);
    for (int k = 0; k < TIMES * CELLS; k++) {
        if (strict_lo)
            assert_true(u[k] > lo);
        else
            assert_true(u[k] >= lo - 1e-12);
        assert_true(u[k] <= hi + 1e-12);
    }
}

static void test_maximum_principle(void **state)
{
    (void)state;
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    /* A closed right end: u stays in [c0, 1]. */
    m.beta = 0;
    check_bounds(&m, 0.01, 0.01, 1.0, 0);
    check_bounds(&m, 0.2, 0.2, 1.0, 0);
    /* The data's outflow end drains mass, so u may fall below c0 there, but stays in (0, 1]. */
    m.beta = 1;
    check_bounds(&m, 0.01, 0.0, 1.0, 1);
    check_bounds(&m, 0.2, 0.0, 1.0, 1);
}

/* ------------------------------------------------------------------ the dataset on disk */

static ecp_diffsorp_opts small_opts(double noise)
{
    ecp_diffsorp_opts o;
    ecp_diffsorp_opts_default(&o);
    o.cells = 32;
    o.n_c0 = 6;
    o.n_times = 11;
    o.n_train = 600;
    o.n_test = 200;
    o.noise = noise;
    o.seed = 7;
    return o;
}

static float *load(const char *dir, const char *name, int64_t rows, int64_t cols)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ecp_npy a;
    ecp_error err = {0};
    assert_int_equal(ecp_npy_read(path, &a, &err), ECP_OK);
    assert_int_equal(a.dtype, ECP_NPY_F4);
    assert_int_equal(a.shape[0], rows);
    assert_int_equal(a.shape[1], cols);
    float *f = NULL;
    assert_int_equal(ecp_npy_to_f32(&a, path, &f, &err), ECP_OK);
    ecp_npy_release(&a);
    return f;
}

static double sd(const float *y, int64_t n)
{
    double mean = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
        mean += y[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        v += (y[i] - mean) * (y[i] - mean);
    return sqrt(v / (double)n);
}

/* Test targets are the solver's values at their grid point, exactly (as float). */
static void check_clean(const ecp_diffsorp_opts *o, const float *x, const float *y, int64_t n)
{
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    double *u = malloc((size_t)o->n_times * (size_t)o->cells * sizeof *u);
    for (int i = 0; i < o->n_c0; i++) {
        double c0 = o->c0_min + (o->c0_max - o->c0_min) * i / (o->n_c0 - 1);
        ecp_error err = {0};
        assert_int_equal(ecp_diffsorp_solve_c0(&m, o->cells, c0, o->t_end, o->n_times, u, &err),
                         ECP_OK);
        for (int64_t k = 0; k < n; k++) {
            if (x[3 * k + 2] != (float)c0)
                continue;
            int cell = (int)lrint(x[3 * k] * o->cells - 0.5);
            int tk = (int)lrint(x[3 * k + 1] * (o->n_times - 1));
            assert_true(y[k] == (float)u[(size_t)tk * (size_t)o->cells + (size_t)cell]);
        }
    }
    free(u);
}

static void test_generate(void **state)
{
    (void)state;
    char root[256], a[300], b[300];
    tu_mkdtemp(root, sizeof root);
    snprintf(a, sizeof a, "%s/clean", root);
    snprintf(b, sizeof b, "%s/noisy", root);
    ecp_diffsorp_opts oa = small_opts(0.0), ob = small_opts(0.1);
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_generate(&oa, a, &err), ECP_OK);
    assert_int_equal(ecp_diffsorp_generate(&ob, b, &err), ECP_OK);
    assert_int_equal(tu_count_files(root), 2); /* no temporary directory left behind */
    assert_int_equal(tu_count_files(a), 4);

    float *xa = load(a, "train_x.npy", 600, 3), *ya = load(a, "train_y.npy", 600, 1);
    float *xb = load(b, "train_x.npy", 600, 3), *yb = load(b, "train_y.npy", 600, 1);
    float *txa = load(a, "test_x.npy", 200, 3), *tya = load(a, "test_y.npy", 200, 1);
    float *txb = load(b, "test_x.npy", 200, 3), *tyb = load(b, "test_y.npy", 200, 1);
    /* Same seed, same points; the noise touches only the training targets. */
    assert_memory_equal(xa, xb, 600 * 3 * sizeof(float));
    assert_memory_equal(txa, txb, 200 * 3 * sizeof(float));
    assert_memory_equal(tya, tyb, 200 * sizeof(float));
    check_clean(&oa, txa, tya, 200);
    check_clean(&oa, xa, ya, 600);
    float *diff = malloc(600 * sizeof *diff);
    for (int i = 0; i < 600; i++)
        diff[i] = yb[i] - ya[i];
    double ratio = sd(diff, 600) / (0.1 * sd(ya, 600));
    print_message("generate: noise std / (nu std(u)) = %.3f\n", ratio);
    assert_close(ratio, 1.0, 0.15, 0);
    /* Inputs in range, and held-out c0 values: no test c0 among the training ones. */
    for (int i = 0; i < 600; i++) {
        assert_true(xa[3 * i] > 0 && xa[3 * i] < 1);
        assert_true(xa[3 * i + 1] >= 0 && xa[3 * i + 1] <= 1);
        assert_true(ya[i] > 0 && ya[i] <= 1);
        for (int j = 0; j < 200; j++)
            assert_true(xa[3 * i + 2] != txa[3 * j + 2]);
    }
    float *bufs[] = {xa, ya, xb, yb, txa, tya, txb, tyb, diff};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);

    /* Regenerating over an old dataset replaces it; a directory of other files is refused. */
    assert_int_equal(ecp_diffsorp_generate(&ob, a, &err), ECP_OK);
    assert_int_equal(tu_count_files(root), 2);
    char foreign[400];
    snprintf(foreign, sizeof foreign, "%s/notes.txt", b);
    tu_write(foreign, "x", 1);
    assert_int_equal(ecp_diffsorp_generate(&oa, b, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, b));
    assert_int_equal(tu_count_files(b), 5);
    assert_int_equal(tu_count_files(root), 2);
    tu_rmdir(root);
}

static void test_generate_bad_options(void **state)
{
    (void)state;
    char root[256], out[300];
    tu_mkdtemp(root, sizeof root);
    snprintf(out, sizeof out, "%s/out", root);
    ecp_error err = {0};

    ecp_diffsorp_opts o = small_opts(0.0);
    o.cells = 0;
    assert_int_equal(ecp_diffsorp_generate(&o, out, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "cells"));

    o = small_opts(-0.1);
    assert_int_equal(ecp_diffsorp_generate(&o, out, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "noise"));

    o = small_opts(0.0);
    o.n_train = 1000000; /* more than cells x times x c0 */
    assert_int_equal(ecp_diffsorp_generate(&o, out, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "n_train = "));
    assert_int_equal(tu_count_files(root), 0);

    o = small_opts(0.0);
    assert_int_equal(ecp_diffsorp_generate(&o, "/proc/forbidden", &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, "/proc/forbidden"));
    snprintf(out, sizeof out, "%s/missing/out", root);
    assert_int_equal(ecp_diffsorp_generate(&o, out, &err), ECP_ERR_IO);
    assert_int_equal(tu_count_files(root), 0);
    tu_rmdir(root);
}

static void test_cached_path(void **state)
{
    (void)state;
    char root[256], dir[4200], expect[4300], probe[4400];
    tu_mkdtemp(root, sizeof root);
    setenv("ECPRUNE_CACHE", root, 1);
    /* A dataset already in the cache is used as it is (nothing is regenerated). */
    snprintf(expect, sizeof expect, "%s/diffsorp-nu0.05-v1", root);
    assert_int_equal(mkdir(expect, 0755), 0);
    snprintf(probe, sizeof probe, "%s/test_y.npy", expect);
    tu_write(probe, "x", 1);
    ecp_error err = {0};
    assert_int_equal(ecp_diffsorp_cached(0.05, 0, dir, sizeof dir, &err), ECP_OK);
    assert_string_equal(dir, expect);
    assert_int_equal(ecp_diffsorp_cached(-1, 0, dir, sizeof dir, &err), ECP_ERR_ARG);
    unsetenv("ECPRUNE_CACHE");
    tu_rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thomas),
        cmocka_unit_test(test_mass_balance),
        cmocka_unit_test(test_erfc),
        cmocka_unit_test(test_self_similar),
        cmocka_unit_test(test_space_order),
        cmocka_unit_test(test_time_order),
        cmocka_unit_test(test_maximum_principle),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_generate_bad_options),
        cmocka_unit_test(test_cached_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
