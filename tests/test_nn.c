/* The dense network: activations, losses, forward/backward against double-precision
 * re-implementations and finite differences, optimiser steps against hand-computed updates,
 * the pruning mask through training, determinism, and a real training run on mnist. */
#include "testutil.h"
#include "nn/sparse_input.h"

/* ------------------------------------------------------------------ double references */

/* Each activation written out from its definition (PyTorch's), p = its parameters. */
static double ref_act_p(ecp_act a, const float *p, double x)
{
    const double k = sqrt(2.0 / M_PI);
    switch (a) {
    case ECP_ACT_IDENTITY: return x;
    case ECP_ACT_RELU: return x > 0 ? x : 0;
    case ECP_ACT_LEAKY_RELU: return x > 0 ? x : p[0] * x;
    case ECP_ACT_TANH: return tanh(x);
    case ECP_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ECP_ACT_SOFTPLUS: return p[0] * x > 30 ? x : log1p(exp(p[0] * x)) / p[0];
    case ECP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ECP_ACT_SILU: return x / (1.0 + exp(-x));
    case ECP_ACT_ELU: return x > 0 ? x : p[0] * (exp(x) - 1.0);
    case ECP_ACT_CLIP: return x < p[0] ? p[0] : x > p[1] ? p[1] : x;
    case ECP_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
    case ECP_ACT_HARDSIGMOID: return fmin(fmax(p[0] * x + p[1], 0.0), 1.0);
    case ECP_ACT_HARDSWISH: return x * fmin(fmax(p[0] * x + p[1], 0.0), 1.0);
    default: break;
    }
    fail_msg("bad activation %d", (int)a);
    return 0;
}

static double ref_act(ecp_act a, double x)
{
    float p[ECP_ACT_NPARAM];
    ecp_act_defaults(a, p);
    return ref_act_p(a, p, x);
}

/* Central difference of the double reference at x, step h. */
static double ref_act_fd(ecp_act a, const float *p, double x, double h)
{
    return (ref_act_p(a, p, x + h) - ref_act_p(a, p, x - h)) / (2 * h);
}

/* Points spread over [-6, 6] that stay clear of 0 (the relu kink). */
static void act_points(float *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(-6.0 + 12.0 * (i + 0.37) / n);
}

/* Every activation with its default parameters (p[0] = NAN) and with others. */
static const struct {
    ecp_act a;
    float p[ECP_ACT_NPARAM];
} act_cases[] = {
    {ECP_ACT_IDENTITY, {NAN}},         {ECP_ACT_RELU, {NAN}},
    {ECP_ACT_LEAKY_RELU, {NAN}},       {ECP_ACT_LEAKY_RELU, {0.2f}},
    {ECP_ACT_TANH, {NAN}},             {ECP_ACT_SIGMOID, {NAN}},
    {ECP_ACT_SOFTPLUS, {NAN}},         {ECP_ACT_SOFTPLUS, {2.0f}},
    {ECP_ACT_SOFTPLUS, {0.5f}},        {ECP_ACT_GELU, {NAN}},
    {ECP_ACT_SILU, {NAN}},             {ECP_ACT_ELU, {NAN}},
    {ECP_ACT_ELU, {0.7f}},             {ECP_ACT_CLIP, {NAN}},
    {ECP_ACT_CLIP, {-2.0f, 1.5f}},     {ECP_ACT_GELU_TANH, {NAN}},
    {ECP_ACT_HARDSIGMOID, {NAN}},      {ECP_ACT_HARDSIGMOID, {0.25f, 0.4f}},
    {ECP_ACT_HARDSWISH, {NAN}},        {ECP_ACT_HARDSWISH, {0.2f, 0.5f}},
};
#define N_ACT_CASES (int)(sizeof act_cases / sizeof *act_cases)

/* The case's activation and parameters (the defaults filled in); its name in *name. */
static ecp_act act_case(int c, float *p, char *name, size_t n)
{
    ecp_act a = act_cases[c].a;
    if (isnan(act_cases[c].p[0]))
        ecp_act_defaults(a, p);
    else
        memcpy(p, act_cases[c].p, sizeof act_cases[c].p);
    ecp_act_format(a, p, name, n);
    return a;
}

/* ------------------------------------------------------------------ activations */

static void test_act_covers_every_activation(void **state)
{
    (void)state;
    int seen[ECP_ACT_COUNT] = {0};
    for (int c = 0; c < N_ACT_CASES; c++)
        seen[act_cases[c].a] = 1;
    for (int a = 0; a < ECP_ACT_COUNT; a++)
        assert_true(seen[a]);
}

static void test_act_forward_matches_double(void **state)
{
    (void)state;
    enum { N = 97 };
    float x[N], y[N], p[ECP_ACT_NPARAM];
    char name[64];
    act_points(x, N);
    for (int c = 0; c < N_ACT_CASES; c++) {
        ecp_act a = act_case(c, p, name, sizeof name);
        ecp_act_forward_p(a, p, x, y, N);
        for (int i = 0; i < N; i++) {
            double want = ref_act_p(a, p, x[i]);
            if (fabs(y[i] - want) > 2e-6 * fabs(want) + 1e-7)
                print_error("%s: x = %g: y = %.9g, want %.9g\n", name, x[i], y[i], want);
            assert_close(y[i], want, 2e-6, 1e-7);
            /* The double form the oracles use. */
            assert_close(ecp_act_eval_d(a, p, x[i], NULL), ref_act_p(a, p, x[i]), 1e-12, 1e-14);
        }
        /* In place (y == x) gives the same values. */
        float z[N];
        memcpy(z, x, sizeof z);
        ecp_act_forward_p(a, p, z, z, N);
        assert_memory_equal(z, y, sizeof z);
    }
    /* The parameter-free entry points use the defaults. */
    float y2[N];
    ecp_act_forward(ECP_ACT_ELU, x, y, N);
    ecp_act_forward_p(ECP_ACT_ELU, NULL, x, y2, N);
    assert_memory_equal(y, y2, sizeof y);
}

static void test_act_backward_vs_fd(void **state)
{
    (void)state;
    enum { N = 97 };
    float x[N], y[N], dy[N], dx[N], p[ECP_ACT_NPARAM];
    char name[64];
    act_points(x, N);
    ecp_rng r;
    ecp_rng_seed(&r, 7);
    for (int i = 0; i < N; i++)
        dy[i] = (float)(0.5 + ecp_rng_uniform(&r)); /* not 1: dy must multiply the derivative */
    for (int c = 0; c < N_ACT_CASES; c++) {
        ecp_act a = act_case(c, p, name, sizeof name);
        ecp_act_forward_p(a, p, x, y, N);
        ecp_act_backward_p(a, p, x, y, dy, dx, N);
        for (int i = 0; i < N; i++) {
            double want = dy[i] * ref_act_fd(a, p, x[i], 1e-6);
            if (fabs(dx[i] - want) > 1e-5 * fabs(want) + 2e-6)
                print_error("%s: x = %g: dx = %.9g, fd = %.9g\n", name, x[i], dx[i], want);
            assert_close(dx[i], want, 1e-5, 2e-6);
            /* The double derivative against central differences in double. */
            double d;
            ecp_act_eval_d(a, p, x[i], &d);
            assert_close(d, ref_act_fd(a, p, x[i], 1e-6), 1e-7, 1e-8);
        }
        /* Finite differences of the library's own float forward: forward and backward agree
         * (away from kinks, where a step of 1e-2 straddles two slopes). */
        for (int i = 0; i < N; i++) {
            if (fabs(ref_act_fd(a, p, x[i] + 0.015, 1e-6) - ref_act_fd(a, p, x[i] - 0.015, 1e-6)) >
                0.05)
                continue;
            float xp = x[i] + 1e-2f, xm = x[i] - 1e-2f, yp, ym;
            ecp_act_forward_p(a, p, &xp, &yp, 1);
            ecp_act_forward_p(a, p, &xm, &ym, 1);
            double fd = ((double)yp - ym) / ((double)xp - xm) * dy[i];
            assert_close(dx[i], fd, 1e-3, 2e-4);
        }
        /* In place (dx == dy). */
        float d2[N];
        memcpy(d2, dy, sizeof d2);
        ecp_act_backward_p(a, p, x, y, d2, d2, N);
        assert_memory_equal(d2, dx, sizeof d2);
    }
}

static void test_act_extremes_finite(void **state)
{
    (void)state;
    float x[6] = {-1000.0f, -100.0f, -20.0f, 20.0f, 100.0f, 1000.0f}, y[6], dy[6], dx[6];
    float p[ECP_ACT_NPARAM];
    char name[64];
    for (int i = 0; i < 6; i++)
        dy[i] = 1.0f;
    for (int c = 0; c < N_ACT_CASES; c++) {
        ecp_act a = act_case(c, p, name, sizeof name);
        ecp_act_forward_p(a, p, x, y, 6);
        ecp_act_backward_p(a, p, x, y, dy, dx, 6);
        for (int i = 0; i < 6; i++) {
            assert_true(isfinite(y[i]));
            assert_true(isfinite(dx[i]));
        }
    }
    ecp_act_forward(ECP_ACT_SIGMOID, x, y, 6);
    assert_true(y[0] == 0.0f && y[5] == 1.0f);
    ecp_act_forward(ECP_ACT_SOFTPLUS, x, y, 6);
    assert_true(y[0] == 0.0f);
    assert_close(y[5], 1000.0, 1e-7, 0);
    assert_close(y[3], 20.0 + log1p(exp(-20.0)), 1e-7, 0);
}

static void test_act_parse_names(void **state)
{
    (void)state;
    ecp_error err = {0};
    for (int a = 0; a < ECP_ACT_COUNT; a++) {
        ecp_act got = ECP_ACT_COUNT;
        assert_int_equal(ecp_act_parse(ecp_act_name((ecp_act)a), &got, &err), ECP_OK);
        assert_int_equal(got, a);
    }
    ecp_act got;
    assert_int_equal(ecp_act_parse("linear", &got, &err), ECP_OK);
    assert_int_equal(got, ECP_ACT_IDENTITY);
    assert_int_equal(ecp_act_parse("relu6", &got, &err), ECP_OK);
    assert_int_equal(got, ECP_ACT_CLIP);
    assert_int_equal(ecp_act_parse("swish", &got, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "swish"));
    /* Parameters other than the defaults need the full parser. */
    assert_int_equal(ecp_act_parse("elu:0.5", &got, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "ecp_act_parse_params"));
    assert_string_equal(ecp_act_name(ECP_ACT_COUNT), "?");
}

/* The spelling ecp_act_format writes reads back to the same activation and bit-equal floats. */
static void test_act_params_round_trip(void **state)
{
    (void)state;
    ecp_error err = {0};
    float p[ECP_ACT_NPARAM], q[ECP_ACT_NPARAM];
    char name[64];
    for (int c = 0; c < N_ACT_CASES; c++) {
        ecp_act a = act_case(c, p, name, sizeof name), got;
        assert_int_equal(ecp_act_parse_params(name, &got, q, &err), ECP_OK);
        assert_int_equal(got, a);
        assert_memory_equal(p, q, (size_t)ecp_act_n_params(a) * sizeof *p);
    }
    const float third = 1.0f / 3.0f;
    ecp_act_format(ECP_ACT_ELU, &third, name, sizeof name);
    assert_int_equal(ecp_act_parse_params(name, &(ecp_act){0}, q, &err), ECP_OK);
    assert_true(q[0] == third);
    static const struct {
        const char *spec;
        ecp_act a;
        float p0, p1;
    } ok[] = {{"leaky_relu:0.2", ECP_ACT_LEAKY_RELU, 0.2f, 0},
              {"elu", ECP_ACT_ELU, 1.0f, 0},
              {"relu6", ECP_ACT_CLIP, 0.0f, 6.0f},
              {"hardtanh", ECP_ACT_CLIP, -1.0f, 1.0f},
              {"clip:-2:3", ECP_ACT_CLIP, -2.0f, 3.0f},
              {"softplus:2", ECP_ACT_SOFTPLUS, 2.0f, 0},
              {"hardswish:0.25:0.5", ECP_ACT_HARDSWISH, 0.25f, 0.5f}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ecp_act a;
        assert_int_equal(ecp_act_parse_params(ok[i].spec, &a, q, &err), ECP_OK);
        assert_int_equal(a, ok[i].a);
        assert_true(q[0] == ok[i].p0);
        if (ecp_act_n_params(a) > 1)
            assert_true(q[1] == ok[i].p1);
    }
    ecp_act_format(ECP_ACT_CLIP, NULL, name, sizeof name);
    assert_string_equal(name, "clip:0:6"); /* the bounds are always shown */
    ecp_act_format(ECP_ACT_LEAKY_RELU, NULL, name, sizeof name);
    assert_string_equal(name, "leaky_relu");
}

/* Parameters out of range are refused with a message naming the field. */
static void test_act_bad_params(void **state)
{
    (void)state;
    ecp_error err = {0};
    float p[ECP_ACT_NPARAM];
    ecp_act a;
    static const struct {
        const char *spec, *want;
    } bad[] = {{"softplus:0", "beta 0 must be > 0"},
               {"softplus:-1", "beta -1 must be > 0"},
               {"clip:3:1", "min 3 is above max 1"},
               {"elu:nan", "alpha nan is not finite"},
               {"leaky_relu:inf", "slope inf is not finite"},
               {"hardsigmoid:0.2:-inf", "beta -inf is not finite"},
               {"elu:1:2", "elu takes 1 parameter"},
               {"clip:1", "give all of clip's 2 parameters"},
               {"elu:x", "alpha is not a number"},
               {"relu:1", "relu takes 0 parameters"},
               {"elux", "unknown activation 'elux'"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ecp_act_parse_params(bad[i].spec, &a, p, &err), ECP_ERR_ARG);
        if (!strstr(err.msg, bad[i].want))
            print_error("%s: '%s' lacks '%s'\n", bad[i].spec, err.msg, bad[i].want);
        assert_non_null(strstr(err.msg, bad[i].want));
    }
    const float inverted[2] = {1.0f, -1.0f};
    assert_int_equal(ecp_act_check(ECP_ACT_CLIP, inverted, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_act_check(ECP_ACT_COUNT, NULL, &err), ECP_ERR_ARG);
    /* The model's setter checks too, and leaves the layer as it was. */
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "3-4-2", ECP_ACT_ELU, &err), ECP_OK);
    const float beta0 = 0.0f, alpha = 0.5f;
    assert_int_equal(ecp_mlp_set_layer_act_params(m, 0, ECP_ACT_SOFTPLUS, &beta0, &err),
                     ECP_ERR_ARG);
    assert_int_equal(ecp_mlp_layer_act(m, 0), ECP_ACT_ELU);
    assert_int_equal(ecp_mlp_set_layer_act_params(m, 5, ECP_ACT_ELU, &alpha, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_mlp_set_layer_act_params(m, 0, ECP_ACT_ELU, &alpha, &err), ECP_OK);
    assert_true(ecp_mlp_layer_act_params(m, 0)[0] == 0.5f);
    /* Parameters travel with a clone. */
    ecp_mlp *c;
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    assert_true(ecp_mlp_layer_act_params(c, 0)[0] == 0.5f);
    ecp_mlp_free(c);
    ecp_mlp_free(m);
}

/* ------------------------------------------------------------------ losses */

static double ref_mse(const double *y, const float *t, int k)
{
    double s = 0;
    for (int j = 0; j < k; j++)
        s += (y[j] - t[j]) * (y[j] - t[j]);
    return s / k;
}

static double ref_xent(const double *y, int label, int k)
{
    double mx = y[0];
    for (int j = 1; j < k; j++)
        mx = y[j] > mx ? y[j] : mx;
    double se = 0;
    for (int j = 0; j < k; j++)
        se += exp(y[j] - mx);
    return mx + log(se) - y[label];
}

static void test_loss_mse(void **state)
{
    (void)state;
    enum { B = 5, K = 4 };
    float y[B * K], t[B * K], dy[B * K];
    ecp_rng r;
    ecp_rng_seed(&r, 3);
    for (int i = 0; i < B * K; i++) {
        y[i] = (float)(2 * ecp_rng_normal(&r));
        t[i] = (float)ecp_rng_normal(&r);
    }
    float scale = 1.0f / B;
    double total = ecp_loss_eval(ECP_LOSS_MSE, y, t, NULL, B, K, scale, dy);
    double want = 0;
    for (int n = 0; n < B; n++) {
        double yd[K];
        for (int j = 0; j < K; j++)
            yd[j] = y[n * K + j];
        want += ref_mse(yd, t + n * K, K);
    }
    assert_close(total, want, 1e-12, 0);
    /* The loss without a gradient is the same. */
    assert_close(ecp_loss_eval(ECP_LOSS_MSE, y, t, NULL, B, K, 0, NULL), total, 0, 0);
    /* dy = scale * d(loss_n)/dy against central differences in double. */
    for (int n = 0; n < B; n++)
        for (int j = 0; j < K; j++) {
            double yd[K];
            for (int q = 0; q < K; q++)
                yd[q] = y[n * K + q];
            const double h = 1e-5;
            yd[j] += h;
            double lp = ref_mse(yd, t + n * K, K);
            yd[j] -= 2 * h;
            double lm = ref_mse(yd, t + n * K, K);
            assert_close(dy[n * K + j], scale * (lp - lm) / (2 * h), 1e-5, 1e-7);
        }
    /* And against differences of the library's own loss (float inputs, exact denominators). */
    for (int i = 0; i < B * K; i++) {
        float save = y[i];
        y[i] = save + 0.01f;
        float up = y[i];
        double lp = ecp_loss_eval(ECP_LOSS_MSE, y, t, NULL, B, K, 0, NULL);
        y[i] = save - 0.01f;
        float dn = y[i];
        double lm = ecp_loss_eval(ECP_LOSS_MSE, y, t, NULL, B, K, 0, NULL);
        y[i] = save;
        assert_close(dy[i], scale * (lp - lm) / ((double)up - dn), 1e-5, 1e-7);
    }
}

static void test_loss_xent(void **state)
{
    (void)state;
    enum { B = 6, K = 5 };
    float y[B * K], dy[B * K];
    int32_t lab[B];
    ecp_rng r;
    ecp_rng_seed(&r, 4);
    for (int i = 0; i < B * K; i++)
        y[i] = (float)(3 * ecp_rng_normal(&r));
    for (int n = 0; n < B; n++)
        lab[n] = (int32_t)ecp_rng_below(&r, K);
    float scale = 0.25f;
    double total = ecp_loss_eval(ECP_LOSS_XENT, y, NULL, lab, B, K, scale, dy);
    double want = 0;
    for (int n = 0; n < B; n++) {
        double yd[K];
        for (int j = 0; j < K; j++)
            yd[j] = y[n * K + j];
        want += ref_xent(yd, lab[n], K);
    }
    assert_close(total, want, 1e-12, 1e-14);
    for (int n = 0; n < B; n++) {
        double rowsum = 0;
        for (int j = 0; j < K; j++) {
            double yd[K];
            for (int q = 0; q < K; q++)
                yd[q] = y[n * K + q];
            const double h = 1e-5;
            yd[j] += h;
            double lp = ref_xent(yd, lab[n], K);
            yd[j] -= 2 * h;
            double lm = ref_xent(yd, lab[n], K);
            assert_close(dy[n * K + j], scale * (lp - lm) / (2 * h), 1e-5, 1e-7);
            rowsum += dy[n * K + j];
        }
        assert_close(rowsum, 0, 0, 1e-6); /* softmax sums to 1 */
    }
}

static void test_loss_xent_stable(void **state)
{
    (void)state;
    /* Huge logits: naive exp would overflow. */
    float y[6] = {1000.0f, -1000.0f, 999.0f, -50000.0f, 0.0f, 50000.0f}, dy[6];
    int32_t lab[2] = {2, 0};
    double total = ecp_loss_eval(ECP_LOSS_XENT, y, NULL, lab, 2, 3, 1.0f, dy);
    /* Row 0: lse = 1000 + log(1 + e^-1 + e^-2000) -> loss = 1 + log(1 + e^-1).
     * Row 1: loss = 50000 - (-50000) = 100000. */
    assert_close(total, 1.0 + log1p(exp(-1.0)) + 100000.0, 1e-12, 0);
    for (int i = 0; i < 6; i++)
        assert_true(isfinite(dy[i]));
    assert_close(dy[3], -1.0, 0, 1e-7);
    assert_close(dy[5], 1.0, 0, 1e-7);
}

/* ------------------------------------------------------------------ network references */

typedef struct {
    int L;
    int sizes[8];
    ecp_act act[8];
    float act_p[8][ECP_ACT_NPARAM];
    double *W[8], *b[8];
} refnet;

static void refnet_from(refnet *R, const ecp_mlp *m)
{
    R->L = ecp_mlp_n_layers(m);
    for (int l = 0; l < R->L; l++) {
        int ni = ecp_mlp_layer_in(m, l), no = ecp_mlp_layer_out(m, l);
        R->sizes[l] = ni;
        R->sizes[l + 1] = no;
        R->act[l] = ecp_mlp_layer_act(m, l);
        memcpy(R->act_p[l], ecp_mlp_layer_act_params(m, l), sizeof R->act_p[l]);
        R->W[l] = malloc(sizeof(double) * ni * no);
        R->b[l] = malloc(sizeof(double) * no);
        for (int i = 0; i < ni * no; i++)
            R->W[l][i] = ecp_mlp_weights_c(m, l)[i];
        for (int i = 0; i < no; i++)
            R->b[l][i] = ecp_mlp_bias_c(m, l)[i];
    }
}

static void refnet_free(refnet *R)
{
    for (int l = 0; l < R->L; l++) {
        free(R->W[l]);
        free(R->b[l]);
    }
}

/* How far z is from the activation's kinks (where finite differences straddle two slopes). */
static double kink_dist(ecp_act a, const float *p, double z)
{
    switch (a) {
    case ECP_ACT_RELU:
    case ECP_ACT_LEAKY_RELU:
    case ECP_ACT_ELU: return fabs(z);
    case ECP_ACT_CLIP: return fmin(fabs(z - p[0]), fabs(z - p[1]));
    case ECP_ACT_HARDSIGMOID:
    case ECP_ACT_HARDSWISH:
        return fmin(fabs(p[0] * z + p[1]), fabs(p[0] * z + p[1] - 1)) / fabs(p[0]);
    default: return INFINITY;
    }
}

/* Naive triple loop in double: out (batch x n_out). Optionally the smallest distance of a
 * pre-activation to a kink. */
static void refnet_forward(const refnet *R, const float *x, int batch, double *out, double *minz)
{
    double a[64], z[64];
    if (minz)
        *minz = INFINITY;
    for (int n = 0; n < batch; n++) {
        for (int i = 0; i < R->sizes[0]; i++)
            a[i] = x[n * R->sizes[0] + i];
        for (int l = 0; l < R->L; l++) {
            int ni = R->sizes[l], no = R->sizes[l + 1];
            for (int o = 0; o < no; o++) {
                double s = R->b[l][o];
                for (int i = 0; i < ni; i++)
                    s += R->W[l][o * ni + i] * a[i];
                z[o] = s;
                if (minz && kink_dist(R->act[l], R->act_p[l], s) < *minz)
                    *minz = kink_dist(R->act[l], R->act_p[l], s);
            }
            for (int o = 0; o < no; o++)
                a[o] = ref_act_p(R->act[l], R->act_p[l], z[o]);
        }
        for (int o = 0; o < R->sizes[R->L]; o++)
            out[n * R->sizes[R->L] + o] = a[o];
    }
}

/* Mean loss over the batch, in double. */
static double refnet_loss(const refnet *R, const float *x, const float *t, const int32_t *lab,
                          int batch)
{
    double out[64 * 8];
    int K = R->sizes[R->L];
    refnet_forward(R, x, batch, out, NULL);
    double s = 0;
    for (int n = 0; n < batch; n++)
        s += lab ? ref_xent(out + n * K, lab[n], K) : ref_mse(out + n * K, t + n * K, K);
    return s / batch;
}

static ecp_mlp *make_net(int L, const int *sizes, ecp_act hidden, ecp_act out_act, uint64_t seed)
{
    ecp_act acts[8];
    for (int l = 0; l < L; l++)
        acts[l] = l == L - 1 ? out_act : hidden;
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_create(&m, L, sizes, acts, &err), ECP_OK);
    ecp_mlp_init(m, seed);
    return m;
}

static void test_forward_matches_naive(void **state)
{
    (void)state;
    const int sizes[4] = {20, 16, 9, 5};
    enum { B = 7 };
    float x[B * 20];
    ecp_rng r;
    ecp_rng_seed(&r, 11);
    for (int i = 0; i < B * 20; i++)
        x[i] = (float)ecp_rng_normal(&r);
    for (int a = 0; a < ECP_ACT_COUNT; a++) {
        ecp_mlp *m = make_net(3, sizes, (ecp_act)a, ECP_ACT_IDENTITY, 100 + a);
        ecp_ws *ws;
        ecp_error err;
        assert_int_equal(ecp_ws_create(&ws, m, 16, &err), ECP_OK);
        assert_int_equal(ecp_ws_max_batch(ws), 16);
        refnet R;
        refnet_from(&R, m);
        double want[B * 5];
        refnet_forward(&R, x, B, want, NULL);
        ecp_mlp_forward(m, ws, x, B);
        const float *y = ecp_ws_output(ws);
        for (int i = 0; i < B * 5; i++)
            assert_close(y[i], want[i], 1e-5, 1e-6);
        assert_ptr_equal(ecp_ws_act(ws, 3), y);
        /* z of the first layer and a[1] = act(z). */
        const float *z0 = ecp_ws_pre(ws, 0), *a1 = ecp_ws_act(ws, 1);
        for (int n = 0; n < B; n++)
            for (int o = 0; o < 16; o++) {
                double s = R.b[0][o];
                for (int i = 0; i < 20; i++)
                    s += R.W[0][o * 20 + i] * x[n * 20 + i];
                assert_close(z0[n * 16 + o], s, 1e-5, 1e-6);
                assert_close(a1[n * 16 + o], ref_act((ecp_act)a, z0[n * 16 + o]), 2e-6, 1e-7);
            }
        /* Batch 1 gives the same first row. */
        ecp_mlp_forward(m, ws, x, 1);
        for (int i = 0; i < 5; i++)
            assert_close(ecp_ws_output(ws)[i], want[i], 1e-5, 1e-6);
        refnet_free(&R);
        ecp_ws_free(ws);
        ecp_mlp_free(m);
    }
}

/* Whole-network gradient against central differences of the double re-implementation. */
/* hp: the hidden layers' activation parameters (NULL: the defaults). */
static void check_net_grad(ecp_act hidden, const float *hp, ecp_act out_act, int xent,
                           uint64_t seed)
{
    const int sizes[4] = {5, 7, 6, 3};
    enum { B = 4 };
    ecp_mlp *m = make_net(3, sizes, hidden, out_act, seed);
    for (int l = 0; l < 2; l++)
        assert_int_equal(ecp_mlp_set_layer_act_params(m, l, hidden, hp, NULL), ECP_OK);
    float x[B * 5], t[B * 3], dy[B * 3];
    int32_t lab[B];
    ecp_rng r;
    ecp_rng_seed(&r, seed + 1);
    for (int i = 0; i < B * 5; i++)
        x[i] = (float)ecp_rng_normal(&r);
    for (int i = 0; i < B * 3; i++)
        t[i] = (float)ecp_rng_normal(&r);
    for (int n = 0; n < B; n++)
        lab[n] = (int32_t)ecp_rng_below(&r, 3);
    /* Bigger biases so that the network is not nearly linear around 0. */
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < sizes[l + 1]; i++)
            ecp_mlp_bias(m, l)[i] = (float)(0.5 * ecp_rng_normal(&r));
    ecp_ws *ws;
    ecp_grads *g;
    ecp_error err;
    assert_int_equal(ecp_ws_create(&ws, m, B, &err), ECP_OK);
    assert_int_equal(ecp_grads_create(&g, m, &err), ECP_OK);
    ecp_grads_zero(g);
    ecp_mlp_forward(m, ws, x, B);
    ecp_loss lk = xent ? ECP_LOSS_XENT : ECP_LOSS_MSE;
    ecp_loss_eval(lk, ecp_ws_output(ws), t, lab, B, 3, 1.0f / B, dy);
    ecp_mlp_backward(m, ws, dy, B, g);

    refnet R;
    refnet_from(&R, m);
    double minz;
    double tmp[B * 3];
    refnet_forward(&R, x, B, tmp, &minz);
    if (!(minz > 1e-4))
        print_error("%s: a pre-activation is %g from the kink\n", ecp_act_name(hidden), minz);
    assert_true(minz > 1e-4); /* no pre-activation sits on a kink */
    const int32_t *lp = xent ? lab : NULL;
    const double h = 1e-6;
    for (int l = 0; l < 3; l++) {
        int nw = sizes[l] * sizes[l + 1], nb = sizes[l + 1];
        double gmax = 0;
        double *fdw = malloc(sizeof(double) * nw), fdb[8];
        for (int i = 0; i < nw; i++) {
            double s = R.W[l][i];
            R.W[l][i] = s + h;
            double up = refnet_loss(&R, x, t, lp, B);
            R.W[l][i] = s - h;
            double dn = refnet_loss(&R, x, t, lp, B);
            R.W[l][i] = s;
            fdw[i] = (up - dn) / (2 * h);
            gmax = fmax(gmax, fabs(fdw[i]));
        }
        for (int i = 0; i < nb; i++) {
            double s = R.b[l][i];
            R.b[l][i] = s + h;
            double up = refnet_loss(&R, x, t, lp, B);
            R.b[l][i] = s - h;
            double dn = refnet_loss(&R, x, t, lp, B);
            R.b[l][i] = s;
            fdb[i] = (up - dn) / (2 * h);
            gmax = fmax(gmax, fabs(fdb[i]));
        }
        assert_true(gmax > 1e-3); /* the check is not vacuous */
        const float *gw = ecp_grads_w(g, l), *gb = ecp_grads_b(g, l);
        for (int i = 0; i < nw; i++) {
            if (fabs(gw[i] - fdw[i]) > 1e-4 * fabs(fdw[i]) + 1e-5 * gmax)
                print_error("%s/%s %s: layer %d dW[%d] = %.9g, fd %.9g\n", ecp_act_name(hidden),
                            ecp_act_name(out_act), xent ? "xent" : "mse", l, i, gw[i], fdw[i]);
            assert_close(gw[i], fdw[i], 1e-4, 1e-5 * gmax);
        }
        for (int i = 0; i < nb; i++)
            assert_close(gb[i], fdb[i], 1e-4, 1e-5 * gmax);
        /* dL/dz of this layer summed over the batch is the bias gradient. */
        const float *dz = ecp_ws_dpre(ws, l);
        for (int i = 0; i < nb; i++) {
            double s = 0;
            for (int n = 0; n < B; n++)
                s += dz[n * nb + i];
            assert_close(gb[i], s, 1e-5, 1e-7);
        }
        free(fdw);
    }
    /* Backward adds into g: a second call doubles the gradient. */
    float w0 = ecp_grads_w(g, 0)[3], b2 = ecp_grads_b(g, 2)[1];
    ecp_mlp_backward(m, ws, dy, B, g);
    assert_close(ecp_grads_w(g, 0)[3], 2.0 * w0, 1e-6, 0);
    assert_close(ecp_grads_b(g, 2)[1], 2.0 * b2, 1e-6, 0);
    ecp_grads_zero(g);
    assert_true(ecp_grads_w(g, 0)[3] == 0.0f && ecp_grads_b(g, 2)[1] == 0.0f);
    refnet_free(&R);
    ecp_grads_free(g);
    ecp_ws_free(ws);
    ecp_mlp_free(m);
}

static void test_net_grad_all_acts(void **state)
{
    (void)state;
    for (int a = 0; a < ECP_ACT_COUNT; a++) {
        check_net_grad((ecp_act)a, NULL, ECP_ACT_IDENTITY, 0, 200 + a);
        check_net_grad((ecp_act)a, NULL, ECP_ACT_IDENTITY, 1, 300 + a);
    }
    /* Parameters other than the defaults reach forward and backward. */
    for (int c = 0; c < N_ACT_CASES; c++) {
        float p[ECP_ACT_NPARAM];
        char name[64];
        ecp_act a = act_case(c, p, name, sizeof name);
        if (!isnan(act_cases[c].p[0]))
            check_net_grad(a, p, ECP_ACT_IDENTITY, 0, 500 + (uint64_t)c);
    }
    /* A non-linear output layer exercises the top activation's backward. */
    check_net_grad(ECP_ACT_RELU, NULL, ECP_ACT_SIGMOID, 0, 401);
    check_net_grad(ECP_ACT_TANH, NULL, ECP_ACT_TANH, 0, 402);
    check_net_grad(ECP_ACT_GELU, NULL, ECP_ACT_SOFTPLUS, 1, 403);
}

/* ------------------------------------------------------------------ optimisers */

/* A 3-2 single-layer net with hand-set gradients; checks one or two steps of each optimiser. */
static void set_grads(ecp_grads *g, int step)
{
    for (int i = 0; i < 6; i++)
        ecp_grads_w(g, 0)[i] = (float)((i - 2.5) * 0.3 * (step == 1 ? 1 : -0.7));
    ecp_grads_b(g, 0)[0] = step == 1 ? 0.2f : 0.05f;
    ecp_grads_b(g, 0)[1] = step == 1 ? -0.4f : 0.3f;
}

static ecp_mlp *opt_net(void)
{
    const int sizes[2] = {3, 2};
    ecp_mlp *m = make_net(1, sizes, ECP_ACT_IDENTITY, ECP_ACT_IDENTITY, 5);
    for (int i = 0; i < 6; i++)
        ecp_mlp_weights(m, 0)[i] = (float)(0.1 * i - 0.2);
    ecp_mlp_bias(m, 0)[0] = 0.5f;
    ecp_mlp_bias(m, 0)[1] = -0.25f;
    /* Weight 4 is pruned (0 and marked); weight 5 is marked but nonzero: it must become 0. */
    ecp_mlp_weights(m, 0)[4] = 0.0f;
    ecp_mlp_pruned(m, 0)[4] = 1;
    ecp_mlp_pruned(m, 0)[5] = 1;
    return m;
}

static void test_adam_steps(void **state)
{
    (void)state;
    ecp_mlp *m = opt_net();
    ecp_grads *g;
    ecp_optim *op;
    ecp_error err;
    ecp_optim_opts o;
    ecp_optim_opts_default(&o, ECP_OPT_ADAM);
    assert_close(o.lr, 1e-3, 0, 0);
    assert_close(o.beta1, 0.9, 0, 0);
    assert_close(o.beta2, 0.999, 0, 0);
    o.lr = 0.01;
    o.weight_decay = 0.1;
    assert_int_equal(ecp_grads_create(&g, m, &err), ECP_OK);
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_OK);
    double p[8], mm[8] = {0}, vv[8] = {0};
    for (int i = 0; i < 6; i++)
        p[i] = ecp_mlp_weights(m, 0)[i];
    p[6] = ecp_mlp_bias(m, 0)[0];
    p[7] = ecp_mlp_bias(m, 0)[1];
    for (int step = 1; step <= 2; step++) {
        set_grads(g, step);
        double gr[8];
        for (int i = 0; i < 6; i++)
            gr[i] = ecp_grads_w(g, 0)[i];
        gr[6] = ecp_grads_b(g, 0)[0];
        gr[7] = ecp_grads_b(g, 0)[1];
        ecp_optim_step(op, m, g);
        double c1 = 1 - pow(0.9, step), c2 = 1 - pow(0.999, step);
        for (int i = 0; i < 8; i++) {
            if (i == 4 || i == 5)
                continue;
            mm[i] = 0.9 * mm[i] + 0.1 * gr[i];
            vv[i] = 0.999 * vv[i] + 0.001 * gr[i] * gr[i];
            double wd = i < 6 ? 0.1 : 0.0; /* decoupled, weights only */
            p[i] = p[i] * (1 - 0.01 * wd) - 0.01 * (mm[i] / c1) / (sqrt(vv[i] / c2) + 1e-8);
        }
        for (int i = 0; i < 6; i++) {
            if (i == 4 || i == 5) {
                assert_true(ecp_mlp_weights(m, 0)[i] == 0.0f);
                continue;
            }
            assert_close(ecp_mlp_weights(m, 0)[i], p[i], 1e-5, 1e-7);
        }
        assert_close(ecp_mlp_bias(m, 0)[0], p[6], 1e-5, 1e-7);
        assert_close(ecp_mlp_bias(m, 0)[1], p[7], 1e-5, 1e-7);
    }
    ecp_optim_free(op);
    ecp_grads_free(g);
    ecp_mlp_free(m);
}

static void test_sgd_steps(void **state)
{
    (void)state;
    ecp_mlp *m = opt_net();
    ecp_grads *g;
    ecp_optim *op;
    ecp_error err;
    ecp_optim_opts o;
    ecp_optim_opts_default(&o, ECP_OPT_SGD);
    assert_close(o.lr, 0.05, 0, 0);
    assert_close(o.momentum, 0.9, 0, 0);
    o.lr = 0.1;
    o.weight_decay = 0.05;
    assert_int_equal(ecp_grads_create(&g, m, &err), ECP_OK);
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_OK);
    double p[8], v[8] = {0};
    for (int i = 0; i < 6; i++)
        p[i] = ecp_mlp_weights(m, 0)[i];
    p[6] = ecp_mlp_bias(m, 0)[0];
    p[7] = ecp_mlp_bias(m, 0)[1];
    for (int step = 1; step <= 3; step++) {
        set_grads(g, step);
        double gr[8];
        for (int i = 0; i < 6; i++)
            gr[i] = ecp_grads_w(g, 0)[i];
        gr[6] = ecp_grads_b(g, 0)[0];
        gr[7] = ecp_grads_b(g, 0)[1];
        ecp_optim_step(op, m, g);
        for (int i = 0; i < 8; i++) {
            double wd = i < 6 ? 0.05 : 0.0; /* L2 on weights only */
            v[i] = 0.9 * v[i] + gr[i] + wd * p[i];
            p[i] -= 0.1 * v[i];
        }
        for (int i = 0; i < 6; i++) {
            if (i == 4 || i == 5)
                assert_true(ecp_mlp_weights(m, 0)[i] == 0.0f);
            else
                assert_close(ecp_mlp_weights(m, 0)[i], p[i], 1e-5, 1e-7);
        }
        assert_close(ecp_mlp_bias(m, 0)[0], p[6], 1e-5, 1e-7);
        assert_close(ecp_mlp_bias(m, 0)[1], p[7], 1e-5, 1e-7);
    }
    ecp_optim_free(op);
    ecp_grads_free(g);
    ecp_mlp_free(m);
}

static void test_optim_bad_opts(void **state)
{
    (void)state;
    ecp_mlp *m = opt_net();
    ecp_optim *op = (ecp_optim *)1;
    ecp_error err = {0};
    ecp_optim_opts o;
    ecp_optim_opts_default(&o, ECP_OPT_ADAM);
    o.lr = 0;
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_ERR_ARG);
    assert_null(op);
    o.lr = NAN;
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_ERR_ARG);
    o.lr = 1e-3;
    o.weight_decay = -1;
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_ERR_ARG);
    ecp_optim_opts_default(&o, ECP_OPT_SGD);
    o.momentum = 1.0;
    assert_int_equal(ecp_optim_create(&op, m, &o, &err), ECP_ERR_ARG);
    ecp_mlp_free(m);
}

/* ------------------------------------------------------------------ training */

/* y = sin(x1) + x2^2 on x in [-1.5, 1.5]^2. */
static ecp_dataset *toy_regression(int64_t n, uint64_t seed)
{
    ecp_dataset *d;
    ecp_error err;
    assert_int_equal(ecp_dataset_create(&d, n, 2, 1, 0, &err), ECP_OK);
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        double a = 3 * ecp_rng_uniform(&r) - 1.5, b = 3 * ecp_rng_uniform(&r) - 1.5;
        d->x[2 * i] = (float)a;
        d->x[2 * i + 1] = (float)b;
        d->y[i] = (float)(sin(a) + b * b);
    }
    return d;
}

static void test_train_reduces_loss(void **state)
{
    (void)state;
    ecp_dataset *d = toy_regression(1000, 9);
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "2-32-32-1", ECP_ACT_TANH, &err), ECP_OK);
    ecp_mlp_init(m, 1);
    ecp_eval_result before, after;
    assert_int_equal(ecp_evaluate(m, d, &before, &err), ECP_OK);
    assert_int_equal(before.n, 1000);
    assert_true(before.accuracy < 0);
    /* ecp_evaluate's loss is the mean per-sample MSE of ecp_predict's outputs. */
    float *pred = malloc(sizeof(float) * 1000);
    assert_int_equal(ecp_predict(m, d, pred, &err), ECP_OK);
    double s = 0;
    for (int i = 0; i < 1000; i++)
        s += ((double)pred[i] - d->y[i]) * ((double)pred[i] - d->y[i]);
    assert_close(before.loss, s / 1000, 1e-9, 0);
    free(pred);

    ecp_train_opts o;
    ecp_train_opts_default(&o);
    o.progress = 0;
    o.epochs = 150;
    o.batch = 32;
    o.optim.lr = 3e-3;
    ecp_train_report rep;
    assert_int_equal(ecp_train(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(ecp_evaluate(m, d, &after, &err), ECP_OK);
    if (!(after.loss * 10 <= before.loss))
        print_error("MSE %g -> %g\n", before.loss, after.loss);
    assert_true(after.loss * 10 <= before.loss);
    assert_true(after.loss < 0.02);
    assert_true(isfinite(rep.final_loss) && rep.final_loss < before.loss / 10);
    assert_true(rep.seconds >= 0 && rep.samples_per_s > 0);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

/* The progress hook sees every update the terminal line would draw: the same label, a
 * non-decreasing count, and the last call at done == total (rate limit never drops it). */
typedef struct {
    int calls;
    int64_t last, total;
    int ordered;
    char label[16];
} progress_log;

static void log_progress(void *ctx, const char *label, int64_t done, int64_t total,
                         const char *extra)
{
    progress_log *pl = ctx;
    pl->ordered &= done >= pl->last;
    pl->calls++;
    pl->last = done;
    pl->total = total;
    snprintf(pl->label, sizeof pl->label, "%s", label);
    (void)extra;
}

static void test_train_progress_callback(void **state)
{
    (void)state;
    ecp_dataset *d = toy_regression(300, 10);
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "2-8-1", ECP_ACT_TANH, &err), ECP_OK);
    ecp_mlp_init(m, 3);
    ecp_train_opts o;
    ecp_train_opts_default(&o);
    assert_null(o.progress_fn); /* the default: no hook, the terminal line as before */
    progress_log pl = {.ordered = 1};
    o.progress = 0;
    o.epochs = 3;
    o.batch = 64;
    o.progress_fn = log_progress;
    o.progress_ctx = &pl;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_OK);
    assert_true(pl.calls >= 1);
    assert_true(pl.ordered);
    assert_int_equal(pl.total, 900);
    assert_int_equal(pl.last, 900);
    assert_string_equal(pl.label, "train");
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

static void test_train_mask_enforced(void **state)
{
    (void)state;
    ecp_dataset *d = toy_regression(300, 10);
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "2-16-16-1", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 2);
    ecp_rng r;
    ecp_rng_seed(&r, 77);
    /* Mark about half of every layer; a third of the marked weights keep a nonzero value that
     * training must zero. */
    for (int l = 0; l < 3; l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        for (size_t i = 0; i < nw; i++)
            if (ecp_rng_uniform(&r) < 0.5) {
                ecp_mlp_pruned(m, l)[i] = 1;
                if (ecp_rng_uniform(&r) < 0.67)
                    ecp_mlp_weights(m, l)[i] = 0.0f;
            }
    }
    int64_t np = ecp_mlp_n_pruned(m);
    assert_true(np > 100);
    ecp_mlp *before;
    assert_int_equal(ecp_mlp_clone(m, &before, &err), ECP_OK);
    for (int pass = 0; pass < 2; pass++) {
        ecp_train_opts o;
        ecp_train_opts_default(&o);
        o.progress = 0;
        o.epochs = 5;
        o.batch = 16;
        if (pass == 1) {
            ecp_optim_opts_default(&o.optim, ECP_OPT_SGD);
            o.optim.weight_decay = 0.01;
        }
        assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_OK);
        assert_int_equal(ecp_mlp_n_pruned(m), np);
        int64_t moved = 0;
        for (int l = 0; l < 3; l++) {
            size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            assert_memory_equal(ecp_mlp_pruned_c(m, l), ecp_mlp_pruned_c(before, l), nw);
            for (size_t i = 0; i < nw; i++) {
                if (ecp_mlp_pruned_c(m, l)[i]) {
                    assert_true(ecp_mlp_weights_c(m, l)[i] == 0.0f);
                } else
                    moved += ecp_mlp_weights_c(m, l)[i] != ecp_mlp_weights_c(before, l)[i];
            }
        }
        assert_true(moved > 0); /* training did something */
    }
    ecp_mlp_free(before);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

static ecp_mlp *train_toy(const ecp_dataset *d, uint64_t init_seed, uint64_t train_seed)
{
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "2-24-12-1", ECP_ACT_GELU, &err), ECP_OK);
    ecp_mlp_init(m, init_seed);
    ecp_train_opts o;
    ecp_train_opts_default(&o);
    o.progress = 0;
    o.epochs = 3;
    o.batch = 20;
    o.seed = train_seed;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_OK);
    return m;
}

static void test_train_deterministic(void **state)
{
    (void)state;
    ecp_dataset *d = toy_regression(250, 12);
    ecp_mlp *a = train_toy(d, 1, 1), *b = train_toy(d, 1, 1), *c = train_toy(d, 1, 2),
            *e = train_toy(d, 2, 1);
    assert_true(tu_same_params(a, b));
    assert_false(tu_same_params(a, c)); /* another shuffle */
    assert_false(tu_same_params(a, e)); /* another initialisation */
    /* ecp_mlp_init itself is a pure function of the seed. */
    ecp_mlp *i1, *i2;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&i1, "7-5-3", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_create_arch(&i2, "7-5-3", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(i1, 42);
    ecp_mlp_init(i2, 42);
    assert_true(tu_same_params(i1, i2));
    /* Kaiming-uniform bound 1/sqrt(fan_in), as torch.nn.Linear. */
    for (int l = 0; l < 2; l++) {
        double bound = 1.0 / sqrt(ecp_mlp_layer_in(i1, l));
        size_t nw = (size_t)ecp_mlp_layer_in(i1, l) * ecp_mlp_layer_out(i1, l);
        for (size_t i = 0; i < nw; i++)
            assert_true(fabs(ecp_mlp_weights_c(i1, l)[i]) <= bound);
        for (int i = 0; i < ecp_mlp_layer_out(i1, l); i++)
            assert_true(fabs(ecp_mlp_bias_c(i1, l)[i]) <= bound);
    }
    ecp_mlp_init(i2, 43);
    assert_false(tu_same_params(i1, i2));
    ecp_mlp_free(i1);
    ecp_mlp_free(i2);
    ecp_mlp_free(a);
    ecp_mlp_free(b);
    ecp_mlp_free(c);
    ecp_mlp_free(e);
    ecp_dataset_free(d);
}

static void test_train_bad_args(void **state)
{
    (void)state;
    ecp_dataset *d = toy_regression(10, 1);
    ecp_mlp *m;
    ecp_error err = {0};
    ecp_train_opts o;
    ecp_train_opts_default(&o);
    o.progress = 0;
    assert_int_equal(ecp_mlp_create_arch(&m, "3-4-1", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "3 inputs"));
    ecp_mlp_free(m);
    assert_int_equal(ecp_mlp_create_arch(&m, "2-4-2", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_SHAPE);
    ecp_mlp_free(m);
    assert_int_equal(ecp_mlp_create_arch(&m, "2-4-1", ECP_ACT_RELU, &err), ECP_OK);
    o.batch = 0;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_ARG);
    o.batch = 4;
    o.optim.lr = 1e6; /* diverges: reported, not silently NaN */
    ecp_status s = ecp_train(m, d, &o, NULL, &err);
    if (s == ECP_OK)
        assert_int_equal(ecp_mlp_check_finite(m, "m", &err), ECP_OK);
    else
        assert_int_equal(s, ECP_ERR_NUMERIC);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

static void test_mnist_accuracy(void **state)
{
    (void)state;
    ecp_dataset *train, *test;
    ecp_error err = {0};
    tu_open_mnist_or_skip(&train, &test);
    assert_int_equal(train->n, 8000);
    assert_int_equal(test->n, 2000);
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "784-300-100-10", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 1);
    ecp_train_opts o;
    ecp_train_opts_default(&o); /* Adam 1e-3, batch 128, 10 epochs, seed 1: the CLI defaults */
    assert_int_equal(o.epochs, 10);
    assert_int_equal(o.batch, 128);
    assert_int_equal(o.optim.kind, ECP_OPT_ADAM);
    o.progress = 0;
    ecp_train_report rep;
    assert_int_equal(ecp_train(m, train, &o, &rep, &err), ECP_OK);
    ecp_eval_result ev;
    assert_int_equal(ecp_evaluate(m, test, &ev, &err), ECP_OK);
    print_message("mnist 784-300-100-10: test accuracy %.4f, loss %.4f, %.0f samples/s\n",
                  ev.accuracy, ev.loss, rep.samples_per_s);
    assert_int_equal(ev.n, 2000);
    assert_true(ev.accuracy >= 0.93);
    assert_true(ev.loss < 0.3);
    assert_true(rep.final_loss < 0.2);
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
}

/* ------------------------------------------------------------------ sparse input (layer 0) */

/* |got - want| <= 1e-5 |want| + 1e-6 max|want|: 1e-5 relative, with a floor at the array's scale
 * for entries that cancel to ~0 (the two paths sum in different orders). */
static void assert_close_arr(const float *got, const float *want, size_t n, const char *what)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double tol = 1e-5 * fabs(want[i]) + 1e-6 * mx;
        if (!(fabs((double)got[i] - want[i]) <= tol)) {
            print_error("%s[%zu]: sparse %.9g, dense %.9g\n", what, i, got[i], want[i]);
            fail();
        }
    }
}

/* Inputs with a given fraction of exact zeros (the rest uniform in [0.05, 1], as pixels). */
static void sparse_inputs(float *x, size_t n, double zero_frac, uint64_t seed)
{
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = ecp_rng_uniform(&r) < zero_frac ? 0.0f : (float)(0.05 + 0.95 * ecp_rng_uniform(&r));
}

/* The public forward/backward with the sparse path forced against the dense (sgemm) path:
 * pre-activations, outputs, and every gradient, on odd sizes (layer-0 widths below one vector,
 * a vector and a tail, and several register tiles) and 0 / 50 / 90 / 100 % zeros. */
static void test_sparse_input_matches_dense(void **state)
{
    (void)state;
    static const int widths[][4] = {{37, 29, 13, 5}, {61, 7, 9, 3}, {23, 211, 11, 4},
                                    {40, 53, 6, 2}};
    static const double zeros[] = {0.0, 0.5, 0.9, 1.0};
    static const int batches[] = {1, 19};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t zi = 0; zi < 4; zi++)
            for (int bi = 0; bi < 2; bi++) {
                const int *sz = widths[wi];
                int B = batches[bi], K = sz[3];
                ecp_mlp *m = make_net(3, sz, ECP_ACT_RELU, ECP_ACT_IDENTITY, 900 + wi);
                for (int l = 0; l < 3; l++) /* biases away from 0: relu kinks stay clear */
                    for (int i = 0; i < sz[l + 1]; i++)
                        ecp_mlp_bias(m, l)[i] = 0.1f + 0.01f * (float)(i % 7);
                float *x = malloc(sizeof(float) * B * sz[0]), dy[19 * 5];
                sparse_inputs(x, (size_t)B * sz[0], zeros[zi], 31 + zi);
                for (int i = 0; i < B * K; i++)
                    dy[i] = (float)(0.1 * ((i * 7) % 11) - 0.5);
                ecp_ws *wd, *wsp;
                ecp_grads *gd, *gs;
                ecp_error err;
                assert_int_equal(ecp_ws_create(&wd, m, B, &err), ECP_OK);
                assert_int_equal(ecp_ws_create(&wsp, m, B, &err), ECP_OK);
                assert_int_equal(ecp_grads_create(&gd, m, &err), ECP_OK);
                assert_int_equal(ecp_grads_create(&gs, m, &err), ECP_OK);
                wd->input.mode = ECP_SPARSE_INPUT_DENSE;
                wsp->input.mode = ECP_SPARSE_INPUT_SPARSE;
                ecp_grads_zero(gd);
                ecp_grads_zero(gs);
                ecp_mlp_forward(m, wd, x, B);
                ecp_mlp_forward(m, wsp, x, B);
                assert_true(wsp->input.used && !wd->input.used);
                assert_close_arr(ecp_ws_pre(wsp, 0), ecp_ws_pre(wd, 0), (size_t)B * sz[1], "z0");
                assert_close_arr(ecp_ws_output(wsp), ecp_ws_output(wd), (size_t)B * K, "y");
                /* Backward adds: twice gives twice (the sparse path transposes-and-adds). */
                for (int rep = 0; rep < 2; rep++) {
                    ecp_mlp_backward(m, wd, dy, B, gd);
                    ecp_mlp_backward(m, wsp, dy, B, gs);
                }
                for (int l = 0; l < 3; l++) {
                    assert_close_arr(ecp_grads_w(gs, l), ecp_grads_w(gd, l),
                                     (size_t)sz[l] * sz[l + 1], "dW");
                    assert_close_arr(ecp_grads_b(gs, l), ecp_grads_b(gd, l), (size_t)sz[l + 1],
                                     "db");
                }
                /* All-zero inputs: z0 is exactly the bias, dW of layer 0 exactly 0. */
                if (zeros[zi] == 1.0) {
                    for (int n = 0; n < B; n++)
                        assert_memory_equal(ecp_ws_pre(wsp, 0) + (size_t)n * sz[1],
                                            ecp_mlp_bias_c(m, 0), sizeof(float) * sz[1]);
                    for (int i = 0; i < sz[0] * sz[1]; i++)
                        assert_true(ecp_grads_w(gs, 0)[i] == 0.0f);
                }
                ecp_grads_free(gd);
                ecp_grads_free(gs);
                ecp_ws_free(wd);
                ecp_ws_free(wsp);
                ecp_mlp_free(m);
                free(x);
            }
}

/* The training layout (layer 0 transposed, padded rows): forward (sparse under AUTO for a sparse
 * batch, sgemm on W^T for a dense one), overwriting backward, and an Adam step with a partly
 * pruned layer 0, against the usual layout's dense path; and begin/end is an exact round trip. */
static void test_training_layout_matches_dense(void **state)
{
    (void)state;
    const int sz[4] = {45, 35, 17, 3};
    enum { B = 13 };
    for (int dense_batch = 0; dense_batch < 2; dense_batch++) {
        ecp_mlp *a = make_net(3, sz, ECP_ACT_RELU, ECP_ACT_IDENTITY, 77), *b;
        ecp_error err;
        for (int i = 0; i < sz[0] * sz[1]; i += 5) { /* prune every 5th weight of layer 0 */
            ecp_mlp_pruned(a, 0)[i] = 1;
            ecp_mlp_weights(a, 0)[i] = 0.0f;
        }
        for (int i = 0; i < sz[1]; i++)
            ecp_mlp_bias(a, 0)[i] = 0.2f;
        assert_int_equal(ecp_mlp_clone(a, &b, &err), ECP_OK);
        assert_int_equal(ecp_mlp_layout_begin(b, &err), ECP_OK);
        int ld = b->ld0t;
        assert_true(ld >= sz[1] && ld % 16 == 0);
        float x[B * 45], dy[B * 3];
        sparse_inputs(x, sizeof x / sizeof *x, dense_batch ? 0.1 : 0.85, 5);
        for (int i = 0; i < B * 3; i++)
            dy[i] = (float)(0.2 * ((i * 5) % 7) - 0.6);
        ecp_ws *wa, *wb;
        ecp_grads *ga, *gb;
        ecp_optim *oa, *ob;
        ecp_optim_opts o;
        ecp_optim_opts_default(&o, ECP_OPT_ADAM);
        o.lr = 0.01;
        assert_int_equal(ecp_ws_create(&wa, a, B, &err), ECP_OK);
        assert_int_equal(ecp_ws_create(&wb, b, B, &err), ECP_OK);
        assert_int_equal(ecp_grads_create(&ga, a, &err), ECP_OK);
        assert_int_equal(ecp_grads_create(&gb, b, &err), ECP_OK);
        assert_int_equal(ecp_optim_create(&oa, a, &o, &err), ECP_OK);
        assert_int_equal(ecp_optim_create(&ob, b, &o, &err), ECP_OK);
        wa->input.mode = ECP_SPARSE_INPUT_DENSE;
        wb->grad_overwrite = 1; /* as ecp_train: no zeroing; fill gb with garbage first */
        for (int l = 0; l < 3; l++)
            for (size_t i = 0; i < gb->nw[l]; i++)
                gb->dW[l][i] = (i % 16) < (size_t)sz[l + 1] || l ? 123.0f : 0.0f;
        ecp_grads_zero(ga);
        ecp_mlp_forward(a, wa, x, B);
        ecp_mlp_forward(b, wb, x, B);
        assert_int_equal(wb->input.used, !dense_batch);
        assert_close_arr(ecp_ws_output(wb), ecp_ws_output(wa), B * 3, "y");
        ecp_mlp_backward(a, wa, dy, B, ga);
        ecp_mlp_backward(b, wb, dy, B, gb);
        for (int o2 = 0; o2 < sz[1]; o2++)
            for (int k = 0; k < sz[0]; k++) {
                float want = ecp_grads_w(ga, 0)[o2 * sz[0] + k];
                float got = ecp_grads_w(gb, 0)[k * ld + o2];
                assert_close(got, want, 1e-5, 1e-6);
            }
        for (int l = 1; l < 3; l++)
            assert_close_arr(ecp_grads_w(gb, l), ecp_grads_w(ga, l), (size_t)sz[l] * sz[l + 1],
                             "dW");
        for (int l = 0; l < 3; l++)
            assert_close_arr(ecp_grads_b(gb, l), ecp_grads_b(ga, l), (size_t)sz[l + 1], "db");
        /* The padding of the transposed gradient stays 0 only if it started 0: reset it, as a
         * fresh ecp_grads_create (ecp_train's) has it. */
        for (int k = 0; k < sz[0]; k++)
            for (int c = sz[1]; c < ld; c++)
                gb->dW[0][k * ld + c] = 0.0f;
        ecp_optim_step(oa, a, ga);
        ecp_optim_step(ob, b, gb);
        ecp_mlp_layout_end(b);
        assert_null(b->w0t);
        for (int l = 0; l < 3; l++) {
            assert_close_arr(ecp_mlp_weights_c(b, l), ecp_mlp_weights_c(a, l),
                             (size_t)sz[l] * sz[l + 1], "W");
            assert_close_arr(ecp_mlp_bias_c(b, l), ecp_mlp_bias_c(a, l), (size_t)sz[l + 1], "b");
        }
        for (int i = 0; i < sz[0] * sz[1]; i += 5)
            assert_true(ecp_mlp_weights_c(b, 0)[i] == 0.0f);
        /* begin/end without a step: bit-identical weights. */
        ecp_mlp *c;
        assert_int_equal(ecp_mlp_clone(b, &c, &err), ECP_OK);
        assert_int_equal(ecp_mlp_layout_begin(c, &err), ECP_OK);
        ecp_mlp_layout_end(c);
        assert_true(tu_same_params(b, c));
        ecp_mlp_free(c);
        ecp_optim_free(oa);
        ecp_optim_free(ob);
        ecp_grads_free(ga);
        ecp_grads_free(gb);
        ecp_ws_free(wa);
        ecp_ws_free(wb);
        ecp_mlp_free(a);
        ecp_mlp_free(b);
    }
}

/* Training on sparse inputs (the training layout and sparse kernels): deterministic, the mask
 * holds, and the result is close to the same training on the dense path. */
static ecp_dataset *toy_sparse_class(int64_t n, int n_in, uint64_t seed)
{
    ecp_dataset *d;
    ecp_error err;
    assert_int_equal(ecp_dataset_create(&d, n, n_in, 3, 1, &err), ECP_OK);
    sparse_inputs(d->x, (size_t)n * n_in, 0.85, seed);
    for (int64_t i = 0; i < n; i++) { /* the class: which third of the inputs holds most mass */
        double s[3] = {0, 0, 0};
        for (int k = 0; k < n_in; k++)
            s[k * 3 / n_in] += d->x[i * n_in + k];
        d->label[i] = s[0] >= s[1] && s[0] >= s[2] ? 0 : s[1] >= s[2] ? 1 : 2;
    }
    return d;
}

static ecp_mlp *train_sparse_toy(const ecp_dataset *d)
{
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "61-37-9-3", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 4);
    for (int i = 3; i < 61 * 37; i += 4) { /* a quarter of layer 0 pruned, some still nonzero */
        ecp_mlp_pruned(m, 0)[i] = 1;
        if (i % 8 == 3)
            ecp_mlp_weights(m, 0)[i] = 0.0f;
    }
    ecp_train_opts o;
    ecp_train_opts_default(&o);
    o.progress = 0;
    o.epochs = 6;
    o.batch = 24;
    o.optim.lr = 1e-2;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_OK);
    return m;
}

static void test_train_sparse_input(void **state)
{
    (void)state;
    ecp_dataset *d = toy_sparse_class(300, 61, 8);
    ecp_mlp *a = train_sparse_toy(d), *b = train_sparse_toy(d);
    assert_null(a->w0t); /* the layout is off again */
    assert_true(tu_same_params(a, b));
    for (int i = 0; i < 61 * 37; i++)
        if (i >= 3 && (i - 3) % 4 == 0) {
            assert_true(ecp_mlp_pruned_c(a, 0)[i] == 1);
            assert_true(ecp_mlp_weights_c(a, 0)[i] == 0.0f);
        } else
            assert_true(ecp_mlp_pruned_c(a, 0)[i] == 0);
    ecp_eval_result ev;
    ecp_error err;
    assert_int_equal(ecp_evaluate(a, d, &ev, &err), ECP_OK);
    if (!(ev.accuracy > 0.6))
        print_error("accuracy %g\n", ev.accuracy);
    assert_true(ev.accuracy > 0.6); /* it learned something (chance: 1/3) */
    ecp_mlp_free(a);
    ecp_mlp_free(b);
    ecp_dataset_free(d);
}

/* ------------------------------------------------------------------ architecture strings */

static void test_create_arch(void **state)
{
    (void)state;
    ecp_mlp *m;
    ecp_error err = {0};
    assert_int_equal(ecp_mlp_create_arch(&m, "784-300-100-10", ECP_ACT_TANH, &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_layers(m), 3);
    assert_int_equal(ecp_mlp_n_in(m), 784);
    assert_int_equal(ecp_mlp_n_out(m), 10);
    assert_int_equal(ecp_mlp_layer_in(m, 1), 300);
    assert_int_equal(ecp_mlp_layer_out(m, 1), 100);
    assert_int_equal(ecp_mlp_layer_act(m, 0), ECP_ACT_TANH);
    assert_int_equal(ecp_mlp_layer_act(m, 1), ECP_ACT_TANH);
    assert_int_equal(ecp_mlp_layer_act(m, 2), ECP_ACT_IDENTITY);
    assert_int_equal(ecp_mlp_n_weights(m), 784 * 300 + 300 * 100 + 100 * 10);
    assert_int_equal(ecp_mlp_n_params(m), 784 * 300 + 300 * 100 + 100 * 10 + 410);
    assert_int_equal(ecp_mlp_n_pruned(m), 0);
    ecp_mlp_free(m);
    assert_int_equal(ecp_mlp_create_arch(&m, "4-1", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_layers(m), 1);
    assert_int_equal(ecp_mlp_layer_act(m, 0), ECP_ACT_IDENTITY);
    ecp_mlp_free(m);

    static const char *bad[] = {"",        "784",        "784-",      "-784-10",  "784--10",
                                "784-0-10", "784-abc-10", "784-10x",   "784_10",   "784-10-",
                                "784-16777217", "784-99999999999999999999", "784,10", "a-b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = (ecp_mlp *)1;
        memset(&err, 0, sizeof err);
        ecp_status s = ecp_mlp_create_arch(&m, bad[i], ECP_ACT_RELU, &err);
        if (s != ECP_ERR_ARG)
            print_error("--arch '%s' gave %s, want invalid argument\n", bad[i],
                        ecp_status_name(s));
        assert_int_equal(s, ECP_ERR_ARG);
        assert_null(m);
        assert_non_null(strstr(err.msg, "arch '"));
        ecp_mlp_free(m);
    }
    /* 1,000 layers are allowed, 1,001 are not. */
    char *arch = malloc(1002 * 2 + 1);
    char *p = arch;
    for (int i = 0; i < 1001; i++)
        p += sprintf(p, i ? "-1" : "1");
    assert_int_equal(ecp_mlp_create_arch(&m, arch, ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_layers(m), 1000);
    ecp_mlp_free(m);
    strcat(arch, "-1");
    assert_int_equal(ecp_mlp_create_arch(&m, arch, ECP_ACT_RELU, &err), ECP_ERR_ARG);
    assert_null(m);
    free(arch);

    /* ecp_mlp_create checks its arguments too. */
    const int sz0[2] = {3, 0};
    ecp_act acts[2] = {ECP_ACT_RELU, ECP_ACT_RELU};
    assert_int_equal(ecp_mlp_create(&m, 1, sz0, acts, &err), ECP_ERR_ARG);
    const int sz[2] = {3, 2};
    assert_int_equal(ecp_mlp_create(&m, 0, sz, acts, &err), ECP_ERR_ARG);
    acts[0] = ECP_ACT_COUNT;
    assert_int_equal(ecp_mlp_create(&m, 1, sz, acts, &err), ECP_ERR_ARG);
    assert_null(m);
}

static void test_mlp_mask_helpers(void **state)
{
    (void)state;
    ecp_mlp *m, *c;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, "4-3-2", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 3);
    ecp_mlp_weights(m, 0)[1] = 0.0f;
    ecp_mlp_weights(m, 1)[5] = 0.0f;
    ecp_mlp_mask_from_zeros(m);
    assert_int_equal(ecp_mlp_n_pruned(m), 2);
    assert_int_equal(ecp_mlp_layer_n_pruned(m, 0), 1);
    assert_int_equal(ecp_mlp_pruned_c(m, 1)[5], 1);
    ecp_mlp_pruned(m, 0)[2] = 1;
    ecp_mlp_apply_mask(m);
    assert_true(ecp_mlp_weights_c(m, 0)[2] == 0.0f);
    assert_true(ecp_mlp_weights_c(m, 0)[3] != 0.0f);
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    assert_true(tu_same_params(m, c));
    assert_int_equal(ecp_mlp_n_pruned(c), 3);
    ecp_mlp_bias(m, 1)[0] = NAN;
    assert_int_equal(ecp_mlp_check_finite(m, "model.onnx", &err), ECP_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "model.onnx"));
    assert_int_equal(ecp_mlp_check_finite(c, "c", &err), ECP_OK);
    ecp_mlp *o;
    assert_int_equal(ecp_mlp_create_arch(&o, "4-5-2", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_copy(o, c, &err), ECP_ERR_SHAPE);
    ecp_mlp_free(o);
    ecp_mlp_free(c);
    ecp_mlp_free(m);
}

/* ------------------------------------------------------------------ architectures of a size */

/* Brute force in integers: every factor at which a width changes is k / sizes[i]; the widths
 * there are max(1, floor(k * sizes[j] / sizes[i])). The answer is the largest of those
 * architectures within the budget (the count never decreases with the factor). */
static int64_t brute_fit(int L, const int *sz, int64_t budget, int *best)
{
    int64_t best_p = -1;
    int w[16];
    for (int i = 1; i < L; i++)
        for (int64_t k = 0; k <= 3 * (int64_t)sz[i]; k++) {
            w[0] = sz[0];
            w[L] = sz[L];
            for (int j = 1; j < L; j++) {
                int64_t v = k * sz[j] / sz[i];
                w[j] = v < 1 ? 1 : (int)v;
            }
            int64_t p = 0;
            for (int l = 0; l < L; l++)
                p += ((int64_t)w[l] + 1) * w[l + 1];
            if (p <= budget && p > best_p) {
                best_p = p;
                memcpy(best, w, sizeof(int) * (size_t)(L + 1));
            }
        }
    return best_p;
}

static void test_arch_fit_params(void **state)
{
    static const int archs[][6] = {{3, 784, 300, 100, 10}, {4, 3, 64, 64, 64, 1},
                                   {3, 5, 7, 3, 2}, {2, 10, 1, 10}, {2, 4, 16, 3}};
    ecp_error err;
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
        int L = archs[a][0];
        const int *sz = &archs[a][1];
        int64_t full = ecp_arch_params(L, sz);
        int ones[16];
        for (int i = 0; i <= L; i++)
            ones[i] = (i == 0 || i == L) ? sz[i] : 1;
        int64_t least = ecp_arch_params(L, ones);
        int64_t budgets[] = {least, least + 1, full / 50, full / 10, full / 3, full / 2,
                             full - 1, full, full + 7, 2 * full};
        for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
            int64_t B = budgets[b];
            if (B < least)
                continue;
            int got[16], want[16];
            int64_t p = -1;
            assert_int_equal(ecp_arch_fit_params(L, sz, B, got, &p, &err), ECP_OK);
            int64_t wp = brute_fit(L, sz, B, want);
            assert_true(p <= B);
            assert_int_equal(p, wp);
            assert_int_equal(p, ecp_arch_params(L, got));
            for (int i = 0; i <= L; i++)
                assert_int_equal(got[i], want[i]);
            for (int i = 1; i < L; i++)
                assert_true(got[i] >= 1);
            /* the next larger scaling: the smallest factor above the chosen one that changes a
             * width; its network must not fit */
            double f = 1e300;
            for (int i = 1; i < L; i++)
                f = fmin(f, (double)(got[i] + 1) / sz[i]);
            int next[16];
            for (int i = 0; i <= L; i++)
                next[i] = (i == 0 || i == L) ? sz[i] : (int)fmax(1, floor(f * sz[i] + 1e-9));
            assert_true(ecp_arch_params(L, next) > B);
        }
        /* the original's own count gives back the original */
        int got[16];
        assert_int_equal(ecp_arch_fit_params(L, sz, full, got, NULL, &err), ECP_OK);
        for (int i = 0; i <= L; i++)
            assert_int_equal(got[i], sz[i]);
        /* below one unit per hidden layer: a clear error naming the budget and the minimum */
        assert_int_equal(ecp_arch_fit_params(L, sz, least - 1, got, NULL, &err), ECP_ERR_ARG);
        char want_msg[128];
        snprintf(want_msg, sizeof want_msg, "needs %lld weights + biases", (long long)least);
        assert_non_null(strstr(err.msg, want_msg));
    }
    int one[2] = {4, 3}, got[2];
    assert_int_equal(ecp_arch_fit_params(1, one, 1000, got, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "no hidden layer"));
}

static void test_params_at_sparsity(void **state)
{
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, "4-16-3", ECP_ACT_RELU, &err), ECP_OK);
    /* 112 weights, 19 biases: 0.5 removes 56, 0.9 removes round(100.8) = 101 */
    assert_int_equal(ecp_mlp_params_at_sparsity(m, 0), 131);
    assert_int_equal(ecp_mlp_params_at_sparsity(m, 0.5), 131 - 56);
    assert_int_equal(ecp_mlp_params_at_sparsity(m, 0.9), 131 - 101);
    /* a model already sparser than the target keeps its own count */
    for (int k = 0; k < 64; k++)
        ecp_mlp_pruned(m, 0)[k] = 1;
    for (int k = 0; k < 6; k++)
        ecp_mlp_pruned(m, 1)[k] = 1;
    assert_int_equal(ecp_mlp_params_at_sparsity(m, 0.5), 131 - 70);
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_forward_matches_double),
        cmocka_unit_test(test_act_backward_vs_fd),
        cmocka_unit_test(test_act_extremes_finite),
        cmocka_unit_test(test_act_parse_names),
        cmocka_unit_test(test_act_covers_every_activation),
        cmocka_unit_test(test_act_params_round_trip),
        cmocka_unit_test(test_act_bad_params),
        cmocka_unit_test(test_loss_mse),
        cmocka_unit_test(test_loss_xent),
        cmocka_unit_test(test_loss_xent_stable),
        cmocka_unit_test(test_forward_matches_naive),
        cmocka_unit_test(test_net_grad_all_acts),
        cmocka_unit_test(test_adam_steps),
        cmocka_unit_test(test_sgd_steps),
        cmocka_unit_test(test_optim_bad_opts),
        cmocka_unit_test(test_train_reduces_loss),
        cmocka_unit_test(test_train_progress_callback),
        cmocka_unit_test(test_train_mask_enforced),
        cmocka_unit_test(test_train_deterministic),
        cmocka_unit_test(test_train_bad_args),
        cmocka_unit_test(test_create_arch),
        cmocka_unit_test(test_mlp_mask_helpers),
        cmocka_unit_test(test_sparse_input_matches_dense),
        cmocka_unit_test(test_training_layout_matches_dense),
        cmocka_unit_test(test_train_sparse_input),
        cmocka_unit_test(test_arch_fit_params),
        cmocka_unit_test(test_params_at_sparsity),
        cmocka_unit_test(test_mnist_accuracy),
    };
    return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
