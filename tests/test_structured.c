/* Structured (neuron) pruning: the EC neuron score and shift against a brute-force minimisation
 * in double precision, exact removals, the smaller model against the masked big one, the
 * baseline criteria, selection and guards, schedules, and bad input (library and CLI). */
#include "testutil.h"
#include "prune/prune.h"
#include "core/lapack.h"
#include <sys/wait.h>

/* ---- an independent double-precision forward */

static double act_d(ecp_act a, double x)
{
    switch (a) {
    case ECP_ACT_RELU: return x > 0 ? x : 0;
    case ECP_ACT_TANH: return tanh(x);
    case ECP_ACT_SIGMOID: return 1 / (1 + exp(-x));
    default: return x;
    }
}

/* From the pre-activation z of layer l (given) to the output y. */
static void fwd_from(const ecp_mlp *m, int l, const double *z, double *y)
{
    double a[256], t[256];
    int w = m->layer[l].n_out;
    for (int i = 0; i < w; i++)
        a[i] = act_d(m->layer[l].act, z[i]);
    for (int k = l + 1; k < m->n_layers; k++) {
        const ecp_layer *Ly = &m->layer[k];
        for (int i = 0; i < Ly->n_out; i++) {
            double s = Ly->b[i];
            for (int j = 0; j < Ly->n_in; j++)
                s += (double)Ly->W[(size_t)i * Ly->n_in + j] * a[j];
            t[i] = act_d(Ly->act, s);
        }
        memcpy(a, t, sizeof(double) * Ly->n_out);
        w = Ly->n_out;
    }
    memcpy(y, a, sizeof(double) * w);
}

/* Pre-activation z of layer l for input x. */
static void pre_of(const ecp_mlp *m, const float *x, int l, double *z)
{
    double a[256];
    for (int j = 0; j < m->sizes[0]; j++)
        a[j] = x[j];
    for (int k = 0; k <= l; k++) {
        const ecp_layer *Ly = &m->layer[k];
        for (int i = 0; i < Ly->n_out; i++) {
            double s = Ly->b[i];
            for (int j = 0; j < Ly->n_in; j++)
                s += (double)Ly->W[(size_t)i * Ly->n_in + j] * a[j];
            z[i] = s;
        }
        if (k < l)
            for (int i = 0; i < Ly->n_out; i++)
                a[i] = act_d(Ly->act, z[i]);
    }
}

static void fwd_d(const ecp_mlp *m, const float *x, double *y)
{
    double z[256];
    pre_of(m, x, 0, z);
    fwd_from(m, 0, z, y);
}

/* max |f_a(x) - f_b(x)| over the data set */
static double max_diff(const ecp_mlp *a, const ecp_mlp *b, const ecp_dataset *d)
{
    double ya[64], yb[64], mx = 0;
    for (int64_t n = 0; n < d->n; n++) {
        fwd_d(a, d->x + n * d->n_in, ya);
        fwd_d(b, d->x + n * d->n_in, yb);
        for (int k = 0; k < d->n_out; k++)
            mx = fmax(mx, fabs(ya[k] - yb[k]));
    }
    return mx;
}

static ecp_neuron_scores *nscores(const ecp_mlp *m, const ecp_dataset *d, const char *method)
{
    ecp_neuron_scores *sc;
    ecp_error err;
    ecp_status s = ecp_neuron_scores_compute(m, d, method, ECP_SENS_OUTPUT, 8, 7, &sc, &err);
    if (s)
        print_error("%s\n", err.msg);
    assert_int_equal(s, ECP_OK);
    return sc;
}

/* (1/N) sum_n s_i (delta - w a_n)^2, minimised over delta by golden section on [lo, hi]. */
static double golden_min(const double *s, const double *wa, int N, double lo, double hi,
                         double *arg)
{
    const double g = (sqrt(5.0) - 1) / 2;
    double c = hi - g * (hi - lo), d = lo + g * (hi - lo), fc = 0, fd = 0;
    for (int it = 0; it < 200; it++) {
        fc = fd = 0;
        for (int n = 0; n < N; n++) {
            fc += s[n] * (c - wa[n]) * (c - wa[n]);
            fd += s[n] * (d - wa[n]) * (d - wa[n]);
        }
        if (fc < fd) hi = d; else lo = c;
        c = hi - g * (hi - lo);
        d = lo + g * (hi - lo);
    }
    *arg = (lo + hi) / 2;
    double f = 0;
    for (int n = 0; n < N; n++)
        f += s[n] * (*arg - wa[n]) * (*arg - wa[n]);
    return f / N;
}

/* For each neuron j of each hidden layer h: the score equals the sum over the rows i it feeds
 * of min_delta (1/N) sum_n s_i(x_n) (delta - w_ij a_j(x_n))^2, with a_j from a double forward,
 * s_i = ||dy/dz_i||^2 from central differences, the minimum by golden section; and comp[i, j]
 * equals the minimiser. */
static void test_ec_score_is_brute_force_minimum(void **state)
{
    ecp_mlp *m = tu_make_net("6-7-5-3", ECP_ACT_TANH, 21);
    ecp_dataset *d = tu_make_data(64, 6, 3, 22, 1.5f);
    ecp_neuron_scores *sc = nscores(m, d, "ec");
    int N = (int)d->n, K = 3;
    double *s = malloc(sizeof(double) * N), *wa = malloc(sizeof(double) * N);
    double *A = malloc(sizeof(double) * N * 8), *S = malloc(sizeof(double) * N * 8);
    for (int h = 0; h + 1 < m->n_layers; h++) {
        const ecp_layer *D = &m->layer[h + 1];
        for (int n = 0; n < N; n++) {
            double z[256], zp[256], y1[8], y2[8];
            pre_of(m, d->x + n * 6, h, z);
            for (int j = 0; j < D->n_in; j++)
                A[n * 8 + j] = act_d(m->layer[h].act, z[j]);
            pre_of(m, d->x + n * 6, h + 1, z);
            for (int i = 0; i < D->n_out; i++) {
                const double eps = 1e-5;
                memcpy(zp, z, sizeof(double) * D->n_out);
                zp[i] = z[i] + eps;
                fwd_from(m, h + 1, zp, y1);
                zp[i] = z[i] - eps;
                fwd_from(m, h + 1, zp, y2);
                double q = 0;
                for (int k = 0; k < K; k++)
                    q += pow((y1[k] - y2[k]) / (2 * eps), 2);
                S[n * 8 + i] = q;
            }
        }
        for (int j = 0; j < D->n_in; j++) {
            double total = 0;
            for (int i = 0; i < D->n_out; i++) {
                double w = D->W[(size_t)i * D->n_in + j], arg;
                for (int n = 0; n < N; n++) {
                    s[n] = S[n * 8 + i];
                    wa[n] = w * A[n * 8 + j];
                }
                total += golden_min(s, wa, N, -10, 10, &arg);
                assert_close(sc->comp[h][(size_t)i * D->n_in + j], arg, 1e-4, 1e-7);
            }
            assert_close(sc->score[h][j], total, 1e-3, 1e-10);
        }
    }
    free(s);
    free(wa);
    free(A);
    free(S);
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* One output and linear layers after the hidden one: the output deviation of removing a
 * neuron with its shift is exactly its score (there is one row and no linearisation). */
static void test_linear_single_output_exact(void **state)
{
    ecp_mlp *m = tu_make_net("4-6-1", ECP_ACT_IDENTITY, 5);
    ecp_dataset *d = tu_make_data(200, 4, 1, 6, 2.0f);
    ecp_neuron_scores *sc = nscores(m, d, "ec");
    for (int j = 0; j < 6; j++) {
        ecp_mlp *c;
        ecp_error err;
        assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
        c->layer[1].W[j] = 0;
        c->layer[1].b[0] += (float)sc->comp[0][j];
        double dev = 0, y0[2], y1[2];
        for (int n = 0; n < 200; n++) {
            fwd_d(m, d->x + n * 4, y0);
            fwd_d(c, d->x + n * 4, y1);
            dev += (y1[0] - y0[0]) * (y1[0] - y0[0]);
        }
        assert_close(dev / 200, sc->score[0][j], 1e-3, 1e-9);
        ecp_mlp_free(c);
    }
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* A neuron whose activation is constant on the calibration set costs nothing, is removed first
 * and its removal leaves the outputs unchanged. */
static void test_constant_neuron_removed_exactly(void **state)
{
    ecp_mlp *m = tu_make_net("5-8-6-2", ECP_ACT_TANH, 9);
    ecp_dataset *d = tu_make_data(100, 5, 2, 10, 0.5f);
    for (int k = 0; k < 5; k++)
        m->layer[0].W[3 * 5 + k] = 0;
    m->layer[0].b[3] = 0.7f;
    ecp_mlp *orig;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m, &orig, &err), ECP_OK);
    ecp_neuron_scores *sc = nscores(m, d, "ec");
    assert_true(sc->score[0][3] < 1e-12);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.scope_layer = 1;
    o.exclude_mask = 2; /* hidden layer 1 keeps its neurons */
    ecp_neuron_report rep = {0};
    assert_int_equal(ecp_prune_neurons_apply(m, sc, &o, 1.0 / 8, NULL, 1, &rep, &err), ECP_OK);
    assert_int_equal(m->sizes[1], 7);
    assert_int_equal(m->sizes[2], 6);
    assert_int_equal(rep.before[0], 8);
    assert_int_equal(rep.after[0], 7);
    /* the remaining neurons are the others, in order */
    assert_memory_equal(m->layer[0].W + 3 * 5, orig->layer[0].W + 4 * 5, 5 * sizeof(float));
    double ya[4], yb[4], mx = 0;
    for (int64_t n = 0; n < d->n; n++) {
        fwd_d(m, d->x + n * 5, ya);
        fwd_d(orig, d->x + n * 5, yb);
        for (int k = 0; k < 2; k++)
            mx = fmax(mx, fabs(ya[k] - yb[k]));
    }
    assert_true(mx < 1e-6);
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(orig);
    ecp_mlp_free(m);
}

/* shrink = 1 and shrink = 0 compute the same function, for every criterion. */
static void test_smaller_equals_masked(void **state)
{
    const char *methods[] = {"ec", "mean-replacement", "l2", "l2-incoming", "random"};
    ecp_dataset *d = tu_make_data(80, 6, 3, 31, 0.3f);
    for (int q = 0; q < 5; q++) {
        ecp_mlp *big = tu_make_net("6-12-9-3", ECP_ACT_RELU, 30), *small;
        ecp_error err;
        assert_int_equal(ecp_mlp_clone(big, &small, &err), ECP_OK);
        ecp_neuron_scores *sc = nscores(big, d, methods[q]);
        ecp_prune_opts o;
        ecp_prune_opts_default(&o);
        assert_int_equal(ecp_prune_neurons_apply(big, sc, &o, 0.5, NULL, 0, NULL, &err), ECP_OK);
        assert_int_equal(ecp_prune_neurons_apply(small, sc, &o, 0.5, NULL, 1, NULL, &err),
                         ECP_OK);
        assert_int_equal(big->sizes[1] + big->sizes[2], 21);
        assert_int_equal(small->sizes[1] + small->sizes[2], 21 - 11); /* llround(10.5) */
        assert_true(max_diff(big, small, d) < 1e-6);
        /* the masked model's removed neurons are marked: the function is the same with them
         * counted as pruned weights */
        assert_true(ecp_mlp_n_pruned(big) > 0);
        assert_int_equal(ecp_mlp_n_pruned(small), 0);
        ecp_neuron_scores_free(sc);
        ecp_mlp_free(big);
        ecp_mlp_free(small);
    }
    ecp_dataset_free(d);
}

/* The refit against LAPACK's QR least squares (dgels) on the explicit design matrix: every
 * kept row of every layer downstream of a removal fits the original network's pre-activations
 * from the inputs the pruned network gives it; the smaller model is the same function. */
static void refit_row_check(const ecp_mlp *m, const ecp_mlp *orig, const ecp_dataset *d, int l,
                            int i, const uint8_t *kept)
{
    const ecp_layer *Ly = &m->layer[l];
    int ni = Ly->n_in, N = (int)d->n, k = 0, one = 1, info, lwork = 4096;
    int idx[64];
    for (int j = 0; j < ni; j++)
        if (kept[j])
            idx[k++] = j;
    int cols = k + 1;
    double *A = malloc(sizeof(double) * (size_t)N * cols), *t = malloc(sizeof(double) * N);
    double *work = malloc(sizeof(double) * (size_t)lwork), z[256], z0[256];
    for (int n = 0; n < N; n++) { /* column-major for LAPACK */
        pre_of(m, d->x + (size_t)n * d->n_in, l - 1, z);
        for (int c = 0; c < k; c++)
            A[(size_t)c * N + n] = act_d(m->layer[l - 1].act, z[idx[c]]);
        A[(size_t)k * N + n] = 1;
        pre_of(orig, d->x + (size_t)n * d->n_in, l, z0);
        t[n] = z0[i];
    }
    dgels_("N", &N, &cols, &one, A, &N, t, &N, work, &lwork, &info, 1);
    assert_int_equal(info, 0);
    for (int c = 0; c < k; c++)
        assert_close(Ly->W[(size_t)i * ni + idx[c]], t[c], 1e-4, 1e-4);
    assert_close(Ly->b[i], t[k], 1e-4, 1e-4);
    for (int j = 0; j < ni; j++)
        if (!kept[j])
            assert_true(Ly->W[(size_t)i * ni + j] == 0 && Ly->pruned[(size_t)i * ni + j]);
    free(A);
    free(t);
    free(work);
}

static void test_refit_is_least_squares(void **state)
{
    ecp_dataset *d = tu_make_data(120, 5, 3, 61, 0.2f);
    ecp_mlp *m = tu_make_net("5-8-6-3", ECP_ACT_TANH, 62), *orig, *small;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m, &orig, &err), ECP_OK);
    ecp_neuron_scores *sc = nscores(m, d, "ec");
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.scope_layer = 1;
    o.neuron_comp = ECP_NCOMP_REFIT;
    o.damping = 1e-12; /* the ridge negligible: plain least squares */
    assert_int_equal(ecp_mlp_clone(m, &small, &err), ECP_OK);
    assert_int_equal(ecp_prune_neurons_apply_calib(m, sc, &o, d, 0.5, NULL, 0, NULL, &err),
                     ECP_OK);
    assert_int_equal(ecp_prune_neurons_apply_calib(small, sc, &o, d, 0.5, NULL, 1, NULL, &err),
                     ECP_OK);
    assert_int_equal(small->sizes[1], 4);
    assert_int_equal(small->sizes[2], 3);
    assert_true(max_diff(m, small, d) < 1e-6);
    uint8_t kept[2][8];
    for (int h = 0; h < 2; h++) /* a neuron is kept when its incoming row is not all pruned */
        for (int j = 0; j < m->sizes[h + 1]; j++) {
            int all = 1;
            for (int q = 0; q < m->layer[h].n_in; q++)
                all &= m->layer[h].pruned[(size_t)j * m->layer[h].n_in + q];
            kept[h][j] = !all;
        }
    for (int l = 1; l < 3; l++)
        for (int i = 0; i < m->layer[l].n_out; i++)
            if (l == 2 || kept[l][i])
                refit_row_check(m, orig, d, l, i, kept[l - 1]);
    /* the refit beats the bias shift on the output deviation from the original */
    ecp_mlp *bias;
    assert_int_equal(ecp_mlp_clone(orig, &bias, &err), ECP_OK);
    o.neuron_comp = ECP_NCOMP_BIAS;
    assert_int_equal(ecp_prune_neurons_apply_calib(bias, sc, &o, d, 0.5, NULL, 1, NULL, &err),
                     ECP_OK);
    double ya[8], yb[8], e_refit = 0, e_bias = 0;
    for (int64_t n = 0; n < d->n; n++) {
        fwd_d(orig, d->x + n * 5, yb);
        fwd_d(small, d->x + n * 5, ya);
        for (int k = 0; k < 3; k++)
            e_refit += (ya[k] - yb[k]) * (ya[k] - yb[k]);
        fwd_d(bias, d->x + n * 5, ya);
        for (int k = 0; k < 3; k++)
            e_bias += (ya[k] - yb[k]) * (ya[k] - yb[k]);
    }
    assert_true(e_refit < e_bias);
    /* refit needs the calibration set; bias needs a method that gives shifts */
    o.neuron_comp = ECP_NCOMP_REFIT;
    assert_int_equal(ecp_prune_neurons_apply(orig, sc, &o, 0.5, NULL, 1, NULL, &err),
                     ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "calibration"));
    ecp_neuron_scores_free(sc);
    ecp_mlp_free(bias);
    ecp_mlp_free(small);
    ecp_mlp_free(orig);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

/* The baselines against their definitions: l2 = ||W_{h+1}[:, j]||, l2-incoming = ||W_h[j, :]||,
 * mean-replacement = ||W_{h+1}[:, j]||^2 var(a_j) with comp w mean(a_j). */
static void test_baseline_definitions(void **state)
{
    ecp_mlp *m = tu_make_net("5-6-4-2", ECP_ACT_SIGMOID, 41);
    ecp_dataset *d = tu_make_data(50, 5, 2, 42, 0.0f);
    ecp_neuron_scores *l2 = nscores(m, d, "l2"), *in = nscores(m, d, "l2-incoming");
    ecp_neuron_scores *mr = nscores(m, d, "mean-replacement");
    assert_null(l2->comp);
    for (int h = 0; h < 2; h++) {
        const ecp_layer *U = &m->layer[h], *D = &m->layer[h + 1];
        for (int j = 0; j < U->n_out; j++) {
            double so = 0, si = 0, mean = 0, sq = 0;
            for (int i = 0; i < D->n_out; i++)
                so += pow(D->W[i * D->n_in + j], 2);
            for (int k = 0; k < U->n_in; k++)
                si += pow(U->W[j * U->n_in + k], 2);
            for (int n = 0; n < 50; n++) {
                double z[16];
                pre_of(m, d->x + n * 5, h, z);
                double a = act_d(U->act, z[j]);
                mean += a / 50;
                sq += a * a / 50;
            }
            assert_close(l2->score[h][j], sqrt(so), 1e-12, 0);
            assert_close(in->score[h][j], sqrt(si), 1e-12, 0);
            assert_close(mr->score[h][j], so * (sq - mean * mean), 1e-3, 1e-9);
            for (int i = 0; i < D->n_out; i++)
                assert_close(mr->comp[h][i * D->n_in + j], D->W[i * D->n_in + j] * mean, 1e-5,
                             1e-8);
        }
    }
    ecp_neuron_scores_free(l2);
    ecp_neuron_scores_free(in);
    ecp_neuron_scores_free(mr);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Global: the lowest scores go first across layers; per layer: round(S n_h) in each. */
static void test_selection_counts_and_order(void **state)
{
    ecp_mlp *m = tu_make_net("4-10-6-2", ECP_ACT_RELU, 51);
    ecp_dataset *d = tu_make_data(40, 4, 2, 52, 0.0f);
    ecp_neuron_scores *sc = nscores(m, d, "l2");
    /* hand-made scores: layer 1 cheaper than everything in layer 0 */
    for (int j = 0; j < 10; j++) sc->score[0][j] = 10 + j;
    for (int j = 0; j < 6; j++) sc->score[1][j] = j;
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    ecp_error err;
    ecp_mlp *c;
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    ecp_neuron_report rep = {0};
    /* 0.5 * 16 = 8: 5 of layer 1 (the guard keeps its last), then the 3 cheapest of layer 0 */
    assert_int_equal(ecp_prune_neurons_apply(c, sc, &o, 0.5, NULL, 1, &rep, &err), ECP_OK);
    assert_int_equal(c->sizes[2], 1);
    assert_int_equal(c->sizes[1], 7);
    assert_int_equal(rep.guarded, 1);
    /* neurons 0,1,2 of layer 0 went: the first kept row is old row 3 */
    assert_memory_equal(c->layer[0].W, m->layer[0].W + 3 * 4, 4 * sizeof(float));
    /* the last neuron of layer 1 stayed: its outgoing column is the old column 5 */
    assert_true(c->layer[2].W[0] == m->layer[2].W[5]);
    ecp_mlp_free(c);
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    o.scope_layer = 1;
    assert_int_equal(ecp_prune_neurons_apply(c, sc, &o, 0.5, NULL, 1, NULL, &err), ECP_OK);
    assert_int_equal(c->sizes[1], 5);
    assert_int_equal(c->sizes[2], 3);
    ecp_mlp_free(c);
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* A fraction that would empty a layer keeps one neuron and says so. */
static void test_guard_keeps_one_neuron(void **state)
{
    ecp_mlp *m = tu_make_net("3-2-2", ECP_ACT_TANH, 61);
    ecp_dataset *d = tu_make_data(30, 3, 2, 62, 0.0f);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.method = "ec";
    o.sparsity = 0.9;
    o.calib = 30;
    ecp_neuron_report rep;
    ecp_error err;
    assert_int_equal(ecp_prune_neurons(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(m->sizes[1], 1);
    assert_int_equal(rep.guarded, 1);
    assert_int_equal(rep.after[0], 1);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Iterative with fine-tuning: the final widths are the target, training works on the smaller
 * model, and the result is reproducible. */
static void test_iterative_with_finetuning(void **state)
{
    ecp_dataset *d = tu_make_data(128, 4, 2, 72, 0.0f);
    int widths[2][2];
    for (int rep_i = 0; rep_i < 2; rep_i++) {
        ecp_mlp *m = tu_make_net("4-20-10-2", ECP_ACT_RELU, 71);
        ecp_prune_opts o;
        ecp_prune_opts_default(&o);
        o.sparsity = 0.6;
        o.steps = 3;
        o.finetune_epochs = 1;
        o.finetune.batch = 32;
        o.calib = 64;
        ecp_neuron_report rep;
        ecp_error err;
        assert_int_equal(ecp_prune_neurons(m, d, &o, &rep, &err), ECP_OK);
        assert_int_equal(m->sizes[1] + m->sizes[2], 30 - 18);
        assert_int_equal(rep.before[0], 20);
        assert_int_equal(rep.before[1], 10);
        assert_int_equal(rep.after[0] + rep.after[1], 12);
        ecp_eval_result r;
        assert_int_equal(ecp_evaluate(m, d, &r, &err), ECP_OK);
        assert_true(isfinite(r.loss));
        widths[rep_i][0] = m->sizes[1];
        widths[rep_i][1] = m->sizes[2];
        ecp_mlp_free(m);
    }
    assert_memory_equal(widths[0], widths[1], sizeof widths[0]);
    ecp_dataset_free(d);
}

/* The smaller model goes through ONNX with its new shapes. */
static void test_onnx_round_trip(void **state)
{
    ecp_mlp *m = tu_make_net("5-9-7-3", ECP_ACT_RELU, 81);
    ecp_dataset *d = tu_make_data(60, 5, 3, 82, 0.0f);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.sparsity = 0.5;
    o.calib = 60;
    o.scope_layer = 1;
    ecp_error err;
    assert_int_equal(ecp_prune_neurons(m, d, &o, NULL, &err), ECP_OK);
    char dir[64], path[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.onnx", dir);
    assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
    ecp_mlp *r;
    assert_int_equal(ecp_onnx_load(&r, path, &err), ECP_OK);
    assert_int_equal(r->sizes[1], 4); /* round(4.5) = 5 removed */
    assert_int_equal(r->sizes[2], 3); /* round(3.5) = 4 removed */
    assert_true(max_diff(m, r, d) == 0);
    ecp_mlp_free(r);
    tu_rmdir(dir);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

static void test_bad_arguments(void **state)
{
    ecp_dataset *d = tu_make_data(20, 3, 2, 91, 0.0f);
    ecp_mlp *m = tu_make_net("3-2", ECP_ACT_RELU, 90), *h = tu_make_net("3-4-2", ECP_ACT_RELU, 92);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.calib = 20;
    ecp_error err;
    assert_int_equal(ecp_prune_neurons(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "no hidden layer"));
    o.method = "magnitude";
    assert_int_equal(ecp_prune_neurons(h, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "magnitude"));
    o.method = "ec";
    o.sparsity = 1.0;
    assert_int_equal(ecp_prune_neurons(h, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "sparsity 1"));
    o.sparsity = 0.5;
    o.exclude_mask = 1;
    assert_int_equal(ecp_prune_neurons(h, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "excluded"));
    assert_int_equal(h->sizes[1], 4);
    uint8_t none[4] = {0}, *keep[1] = {none};
    assert_int_equal(ecp_mlp_remove_neurons(h, keep, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "keep at least one"));
    assert_int_equal(h->sizes[1], 4);
    ecp_mlp_free(m);
    ecp_mlp_free(h);
    ecp_dataset_free(d);
}

/* ---- the CLI: a smaller file on success; a clear error and nothing written on bad input */

static char g_bin[1024], g_dir[256];

static int run_cli(const char *args, char *err_text, size_t n)
{
    char cmd[4096], errf[400];
    snprintf(errf, sizeof errf, "%s/stderr.txt", g_dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s' </dev/null", g_bin, args, errf);
    int st = system(cmd);
    FILE *f = fopen(errf, "r");
    size_t got = f ? fread(err_text, 1, n - 1, f) : 0;
    err_text[got] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cli(void **state)
{
    const char *b = getenv("ECPRUNE_BUILD");
    char cwd[512] = "", e[2048], args[3000], path[400];
    b = b && *b ? b : "build";
    if (b[0] != '/')
        assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(g_bin, sizeof g_bin, "%s%s%s/ecprune", cwd, cwd[0] ? "/" : "", b);
    tu_mkdtemp(g_dir, sizeof g_dir);
    ecp_dataset *d = tu_make_data(64, 3, 2, 101, 0.0f);
    ecp_error err;
    snprintf(path, sizeof path, "%s/data", g_dir);
    assert_int_equal(ecp_mkdir_p(path, &err), ECP_OK);
    const char *names[] = {"train", "test"};
    for (int k = 0; k < 2; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s_x.npy", path, names[k]);
        assert_int_equal(ecp_npy_write_f32(p, d->x, 64, 3, &err), ECP_OK);
        snprintf(p, sizeof p, "%s/%s_y.npy", path, names[k]);
        assert_int_equal(ecp_npy_write_f32(p, d->y, 64, 2, &err), ECP_OK);
    }
    ecp_mlp *flat = tu_make_net("3-2", ECP_ACT_RELU, 1), *deep = tu_make_net("3-8-6-2", ECP_ACT_RELU, 2);
    char flat_p[400], deep_p[400];
    snprintf(flat_p, sizeof flat_p, "%s/flat.onnx", g_dir);
    snprintf(deep_p, sizeof deep_p, "%s/deep.onnx", g_dir);
    assert_int_equal(ecp_onnx_save(flat, flat_p, &err), ECP_OK);
    assert_int_equal(ecp_onnx_save(deep, deep_p, &err), ECP_OK);

    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' -o '%s/o1.onnx'",
             flat_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "no hidden layer"));
    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --sparsity 1 "
             "-o '%s/o1.onnx'", deep_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "--sparsity"));
    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --method wanda "
             "-o '%s/o1.onnx'", deep_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "--method 'wanda'"));
    snprintf(args, sizeof args, "prune '%s' --structure block --data '%s' -o '%s/o1.onnx'",
             deep_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "--structure 'block'"));
    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --method l2 "
             "--compensation bias -o '%s/o1.onnx'", deep_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "--compensation bias"));
    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --compensation x "
             "-o '%s/o1.onnx'", deep_p, path, g_dir);
    assert_int_equal(run_cli(args, e, sizeof e), 2);
    assert_non_null(strstr(e, "--compensation 'x'"));
    char o1[500];
    snprintf(o1, sizeof o1, "%s/o1.onnx", g_dir);
    assert_false(ecp_file_exists(o1));

    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --sparsity 0.95 "
             "--scope layer -o '%s'", deep_p, path, o1);
    assert_int_equal(run_cli(args, e, sizeof e), 0);
    ecp_mlp *r;
    assert_int_equal(ecp_onnx_load(&r, o1, &err), ECP_OK);
    assert_int_equal(r->sizes[1], 1);
    assert_int_equal(r->sizes[2], 1);
    ecp_mlp_free(r);
    /* a smaller network, then sparse, in one command; then info/eval/run/export-c on it */
    snprintf(args, sizeof args, "prune '%s' --structure neuron --data '%s' --sparsity 0.5 "
             "--scope layer --weight-sparsity 0.5 --finetune-epochs 1 -o '%s'", deep_p, path, o1);
    assert_int_equal(run_cli(args, e, sizeof e), 0);
    assert_int_equal(ecp_onnx_load(&r, o1, &err), ECP_OK);
    assert_int_equal(r->sizes[1], 4);
    assert_int_equal(r->sizes[2], 3);
    assert_int_equal(ecp_mlp_n_pruned(r), 15); /* 0.5 * (3*4 + 4*3 + 3*2) */
    ecp_mlp_free(r);
    const char *follow[] = {"info '%s'", "eval '%s' --data '%s'", "run '%s' --data '%s'",
                            "export-c '%s' -o '%s/c' --name small"};
    for (int k = 0; k < 4; k++) {
        char a2[2000];
        snprintf(a2, sizeof a2, follow[k], o1, k == 3 ? g_dir : path);
        assert_int_equal(run_cli(a2, e, sizeof e), 0);
    }
    /* --structure weight is the ordinary weight pruning */
    snprintf(args, sizeof args, "prune '%s' --structure weight --data '%s' --sparsity 0.5 -o '%s'",
             deep_p, path, o1);
    assert_int_equal(run_cli(args, e, sizeof e), 0);
    assert_int_equal(ecp_onnx_load(&r, o1, &err), ECP_OK);
    assert_int_equal(r->sizes[1], 8);
    assert_int_equal(ecp_mlp_n_pruned(r), 42); /* 0.5 * 84 */
    ecp_mlp_free(r);
    ecp_mlp_free(flat);
    ecp_mlp_free(deep);
    ecp_dataset_free(d);
    tu_rmdir(g_dir);
}

/* ---- N:M patterns */

/* 2:4 and 3:8 on fan-ins that M does not divide (10, 7): every group keeps at most N, the kept
 * ones are the N best scores of their group, and each bias moved by exactly the compensation
 * of its row's removed weights. The pattern survives ONNX and a violation is named. */
static void test_nm_pattern(void **state)
{
    const int pats[2][2] = {{2, 4}, {3, 8}};
    ecp_dataset *d = tu_make_data(90, 10, 3, 111, 0.7f);
    for (int q = 0; q < 2; q++) {
        int N = pats[q][0], M = pats[q][1];
        ecp_mlp *m = tu_make_net("10-7-3", ECP_ACT_TANH, 110), *orig;
        ecp_error err;
        assert_int_equal(ecp_mlp_clone(m, &orig, &err), ECP_OK);
        ecp_scores *sc;
        assert_int_equal(ecp_prune_scores(m, d, "ec", ECP_SENS_OUTPUT, 8, 7, &sc, &err), ECP_OK);
        ecp_prune_opts o;
        ecp_prune_opts_default(&o);
        o.nm_n = N;
        o.nm_m = M;
        ecp_prune_report rep;
        assert_int_equal(ecp_prune_apply(m, sc, &o, &rep, &err), ECP_OK);
        int64_t expect = 0;
        for (int l = 0; l < 2; l++) {
            ecp_layer *Ly = &m->layer[l];
            for (int i = 0; i < Ly->n_out; i++) {
                double shift = 0;
                for (int g = 0; g < Ly->n_in; g += M) {
                    int end = g + M < Ly->n_in ? g + M : Ly->n_in, kept = 0;
                    expect += end - g > N ? end - g - N : 0;
                    for (int j = g; j < end; j++) {
                        size_t k = (size_t)i * Ly->n_in + j;
                        int better = 0; /* weights of the group with a higher score */
                        for (int t = g; t < end; t++)
                            better += sc->score[l][(size_t)i * Ly->n_in + t] > sc->score[l][k];
                        int is_kept = Ly->W[k] != 0;
                        kept += is_kept;
                        assert_int_equal(is_kept, better < N);
                        assert_int_equal(Ly->pruned[k], !is_kept);
                        if (!is_kept)
                            shift += sc->comp[l][k];
                    }
                    assert_true(kept <= N);
                }
                assert_close(Ly->b[i], orig->layer[l].b[i] + shift, 1e-6, 1e-6);
            }
        }
        assert_int_equal(rep.pruned, expect);
        int pn, pm;
        uint64_t layers;
        assert_true(ecp_mlp_pattern(m, &pn, &pm, &layers));
        assert_int_equal(pn, N);
        assert_int_equal(pm, M);
        assert_int_equal(layers, 3);
        assert_int_equal(ecp_mlp_check_pattern(m, &err), ECP_OK);
        char dir[64], path[128];
        tu_mkdtemp(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/p.onnx", dir);
        assert_int_equal(ecp_onnx_save(m, path, &err), ECP_OK);
        ecp_mlp *r;
        assert_int_equal(ecp_onnx_load(&r, path, &err), ECP_OK);
        assert_true(ecp_mlp_pattern(r, &pn, &pm, &layers));
        assert_int_equal(pn * 100 + pm, N * 100 + M);
        assert_int_equal(layers, 3);
        r->layer[1].W[2] = 0.5f; /* row 0 of layer 1 keeps 3 of 4 in group 0 (2:4) */
        r->layer[1].W[0] = r->layer[1].W[1] = 0.5f;
        r->layer[1].W[3] = 0.5f;
        assert_int_equal(ecp_mlp_check_pattern(r, &err), ECP_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "layer 1 row 0"));
        ecp_mlp_free(r);
        tu_rmdir(dir);
        /* shrinking the hidden layer shifts the next layer's groups: its promise is dropped */
        uint8_t k0[7] = {1, 0, 1, 1, 1, 1, 1}, *keep[1] = {k0};
        assert_int_equal(ecp_mlp_remove_neurons(m, keep, &err), ECP_OK);
        assert_true(ecp_mlp_pattern(m, NULL, NULL, &layers));
        assert_int_equal(layers, 1);
        ecp_scores_free(sc);
        ecp_mlp_free(orig);
        ecp_mlp_free(m);
    }
    ecp_error err;
    int n, mm;
    assert_int_equal(ecp_pattern_parse("2:4", &n, &mm, &err), ECP_OK);
    assert_int_equal(ecp_pattern_parse("4:2", &n, &mm, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_pattern_parse("2:4x", &n, &mm, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_pattern_parse("0:4", &n, &mm, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_pattern_parse("1:999", &n, &mm, &err), ECP_ERR_ARG);
    ecp_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_score_is_brute_force_minimum),
        cmocka_unit_test(test_linear_single_output_exact),
        cmocka_unit_test(test_constant_neuron_removed_exactly),
        cmocka_unit_test(test_smaller_equals_masked),
        cmocka_unit_test(test_refit_is_least_squares),
        cmocka_unit_test(test_baseline_definitions),
        cmocka_unit_test(test_selection_counts_and_order),
        cmocka_unit_test(test_guard_keeps_one_neuron),
        cmocka_unit_test(test_iterative_with_finetuning),
        cmocka_unit_test(test_onnx_round_trip),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_nm_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
