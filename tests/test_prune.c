/* Pruning: the properties of docs/METHOD.md, each against an independent double-precision
 * computation, plus selection, schedules, guards and bad arguments. */
#include "testutil.h"
#include "prune/prune.h"

/* ---- an independent double-precision forward, with one optional edit: weight (l, i, j)
 * removed (if j >= 0) and delta added to bias b_i of layer l */

static void fwd_d(const ecp_mlp *m, const float *x, int N, double *y, int el, int ei, int ej,
                  double delta)
{
    int L = m->n_layers;
    for (int n = 0; n < N; n++) {
        double a[256], z[256];
        for (int j = 0; j < m->sizes[0]; j++)
            a[j] = x[(size_t)n * m->sizes[0] + j];
        for (int l = 0; l < L; l++) {
            const ecp_layer *Ly = &m->layer[l];
            for (int i = 0; i < Ly->n_out; i++) {
                double s = Ly->b[i];
                for (int j = 0; j < Ly->n_in; j++)
                    if (!(l == el && i == ei && j == ej))
                        s += (double)Ly->W[(size_t)i * Ly->n_in + j] * a[j];
                if (l == el && i == ei)
                    s += delta;
                /* test_nn checks this double form against each activation's definition. */
                z[i] = ecp_act_eval_d(Ly->act, Ly->act_p, s, NULL);
            }
            memcpy(a, z, sizeof(double) * Ly->n_out);
        }
        memcpy(y + (size_t)n * m->sizes[L], a, sizeof(double) * m->sizes[L]);
    }
}

/* (1/N) sum_n ||y_edit - y||^2 */
static double deviation(const ecp_mlp *m, const float *x, int N, int el, int ei, int ej,
                        double delta)
{
    int K = m->sizes[m->n_layers];
    double *y0 = malloc(sizeof(double) * N * K), *y1 = malloc(sizeof(double) * N * K);
    fwd_d(m, x, N, y0, -1, -1, -1, 0);
    fwd_d(m, x, N, y1, el, ei, ej, delta);
    double s = 0;
    for (int q = 0; q < N * K; q++)
        s += (y1[q] - y0[q]) * (y1[q] - y0[q]);
    free(y0);
    free(y1);
    return s / N;
}

/* tu_make_net with every weight scaled (larger weights: stronger non-linear effects). */
static ecp_mlp *make_net(const char *arch, ecp_act act, uint64_t seed, float scale)
{
    ecp_mlp *m = tu_make_net(arch, act, seed);
    for (int l = 0; l < m->n_layers; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        for (size_t k = 0; k < nw; k++)
            m->layer[l].W[k] *= scale;
    }
    return m;
}

static ecp_scores *scores_of(const ecp_mlp *m, const ecp_dataset *d, const char *method,
                             ecp_sens sens)
{
    ecp_scores *sc;
    ecp_error err;
    ecp_status s = ecp_prune_scores(m, d, method, sens, 8, 7, &sc, &err);
    if (s)
        print_error("%s\n", err.msg);
    assert_int_equal(s, ECP_OK);
    return sc;
}

/* Property 1: in a linear network, removing a weight and adding delta* deviates the output by
 * exactly I. The inputs carry an offset of 3 so that the shift of the moments matters. */
static void test_linear_network_exact(void **state)
{
    ecp_mlp *m = make_net("5-7-6-3", ECP_ACT_IDENTITY, 11, 1.0f);
    ecp_dataset *d = tu_make_data(300, 5, 3, 12, 3.0f);
    ecp_scores *sc = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
    int checked = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int i = 0; i < m->layer[l].n_out; i++)
            for (int j = 0; j < m->layer[l].n_in; j += 2) {
                size_t k = (size_t)i * m->layer[l].n_in + j;
                double dev = deviation(m, d->x, (int)d->n, l, i, j, sc->comp[l][k]);
                assert_close(dev, sc->score[l][k], 2e-4, 1e-9);
                checked++;
            }
    assert_true(checked > 30);
    ecp_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Output sensitivity of neuron (l, i) for each sample, by central differences of the bias. */
static void sens_fd(const ecp_mlp *m, const float *x, int N, int l, int i, double *s)
{
    int K = m->sizes[m->n_layers];
    double h = 1e-5;
    double *yp = malloc(sizeof(double) * N * K), *ym = malloc(sizeof(double) * N * K);
    fwd_d(m, x, N, yp, l, i, -1, h);
    fwd_d(m, x, N, ym, l, i, -1, -h);
    for (int n = 0; n < N; n++) {
        s[n] = 0;
        for (int k = 0; k < K; k++) {
            double J = (yp[n * K + k] - ym[n * K + k]) / (2 * h);
            s[n] += J * J;
        }
    }
    free(yp);
    free(ym);
}

/* Property 2: delta* and I are the minimiser and minimum of C(delta), found by dense search. */
static void test_closed_form_vs_dense_search(void **state)
{
    ecp_mlp *m = make_net("4-6-5-2", ECP_ACT_TANH, 21, 1.0f);
    ecp_dataset *d = tu_make_data(80, 4, 2, 22, 0.5f);
    ecp_scores *sc = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
    int N = (int)d->n;
    double *s = malloc(sizeof(double) * N), *aj = malloc(sizeof(double) * N);
    int cases[][3] = {{0, 1, 2}, {0, 4, 0}, {1, 2, 3}, {1, 0, 5}, {2, 1, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int l = cases[c][0], i = cases[c][1], j = cases[c][2];
        sens_fd(m, d->x, N, l, i, s);
        /* a_j: input j of layer l, from the double forward of the layers below. */
        for (int n = 0; n < N; n++) {
            ecp_mlp tmp = *m;
            tmp.n_layers = l;
            double yl[256];
            if (l == 0)
                aj[n] = d->x[(size_t)n * 4 + j];
            else {
                fwd_d(&tmp, d->x + (size_t)n * 4, 1, yl, -1, -1, -1, 0);
                aj[n] = yl[j];
            }
        }
        double w = m->layer[l].W[(size_t)i * m->layer[l].n_in + j];
        double lo = 1e300, hi = -1e300;
        for (int n = 0; n < N; n++) {
            lo = fmin(lo, w * aj[n]);
            hi = fmax(hi, w * aj[n]);
        }
        double best = 1e300, arg = 0;
        int G = 200001;
        for (int g = 0; g < G; g++) {
            double delta = lo + (hi - lo) * g / (G - 1), C = 0;
            for (int n = 0; n < N; n++)
                C += s[n] * (delta - w * aj[n]) * (delta - w * aj[n]);
            C /= N;
            if (C < best) {
                best = C;
                arg = delta;
            }
        }
        size_t k = (size_t)i * m->layer[l].n_in + j;
        assert_close(sc->comp[l][k], arg, 1e-3, 2e-5 * (hi - lo));
        assert_close(sc->score[l][k], best, 1e-3, 1e-12);
    }
    free(s);
    free(aj);
    ecp_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Property 3: on a tanh network, exact deviation / I -> 1 as w -> 0. */
static void test_nonlinear_ratio_tends_to_one(void **state)
{
    double ws[] = {0.1, 0.01, 0.001}, tol[] = {0.05, 0.006, 0.001};
    for (int t = 0; t < 3; t++) {
        ecp_mlp *m = make_net("3-8-8-2", ECP_ACT_TANH, 31, 1.5f);
        ecp_dataset *d = tu_make_data(200, 3, 2, 32, 0.0f);
        int l = 1, i = 3, j = 5;
        size_t k = (size_t)i * m->layer[l].n_in + j;
        m->layer[l].W[k] = (float)ws[t];
        ecp_scores *sc = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
        double dev = deviation(m, d->x, (int)d->n, l, i, j, sc->comp[l][k]);
        double ratio = dev / sc->score[l][k];
        if (fabs(ratio - 1) > tol[t])
            print_error("w = %g: deviation / I = %.6f\n", ws[t], ratio);
        assert_true(fabs(ratio - 1) <= tol[t]);
        ecp_scores_free(sc);
        ecp_dataset_free(d);
        ecp_mlp_free(m);
    }
}

/* Property 4: an input that is constant over the calibration set costs nothing and its removal
 * is exact (the compensation absorbs it into the bias). */
static void test_constant_input_is_free(void **state)
{
    ecp_mlp *m = make_net("4-6-2", ECP_ACT_TANH, 41, 1.0f);
    ecp_dataset *d = tu_make_data(150, 4, 2, 42, 0.0f);
    for (int n = 0; n < d->n; n++)
        d->x[(size_t)n * 4 + 2] = 0.7f;
    ecp_scores *sc = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
    for (int i = 0; i < 6; i++) {
        size_t k = (size_t)i * 4 + 2;
        assert_true(sc->score[0][k] == 0.0);
        double w = m->layer[0].W[k];
        assert_close(sc->comp[0][k], w * 0.7f, 1e-12, 1e-15);
        assert_true(deviation(m, d->x, (int)d->n, 0, i, 2, sc->comp[0][k]) < 1e-20);
        /* and the other inputs of the same neuron are not free */
        assert_true(sc->score[0][(size_t)i * 4 + 1] > 0);
    }
    ecp_scores_free(sc);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Property 5: sensitivities (m0 of a one-sample calibration set) equal finite differences of
 * the output, for the output and the loss (MSE and cross-entropy) sensitivities. */
static void test_sensitivity_vs_finite_differences(void **state)
{
    ecp_mlp *m = make_net("4-7-5-3", ECP_ACT_TANH, 51, 1.0f);
    ecp_dataset *d = tu_make_data(5, 4, 3, 52, 0.2f);
    ecp_error err;
    for (int n = 0; n < 5; n++) {
        int64_t idx = n;
        ecp_dataset *one;
        assert_int_equal(ecp_dataset_subset(d, &idx, 1, &one, &err), ECP_OK);
        ecp_stats *st;
        assert_int_equal(
            ecp_stats_compute(m, one, ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 1, 1, &st, &err), ECP_OK);
        ecp_stats *sl;
        assert_int_equal(
            ecp_stats_compute(m, one, ECP_NEED_MOMENTS, ECP_SENS_LOSS, 1, 1, &sl, &err), ECP_OK);
        for (int l = 0; l < 3; l++)
            for (int i = 0; i < m->sizes[l + 1]; i++) {
                double s;
                sens_fd(m, one->x, 1, l, i, &s);
                assert_close(st->m0[l][i], s, 1e-4, 1e-9);
                assert_close(sl->m0[l][i], 2.0 / 3.0 * s, 1e-4, 1e-9); /* MSE: H = (2/K) I */
            }
        ecp_stats_free(st);
        ecp_stats_free(sl);
        ecp_dataset_free(one);
    }
    /* Cross-entropy: s = sum_k p_k (J_k - sum_m p_m J_m)^2 with J by finite differences. */
    ecp_dataset *c;
    assert_int_equal(ecp_dataset_create(&c, 1, 4, 3, 1, &err), ECP_OK);
    memcpy(c->x, d->x, 4 * sizeof(float));
    c->label[0] = 1;
    ecp_stats *sx;
    assert_int_equal(ecp_stats_compute(m, c, ECP_NEED_MOMENTS, ECP_SENS_LOSS, 1, 1, &sx, &err),
                     ECP_OK);
    double y[3], yp[3], ym[3], h = 1e-5;
    fwd_d(m, c->x, 1, y, -1, -1, -1, 0);
    double mx = fmax(y[0], fmax(y[1], y[2])), se = 0, p[3];
    for (int k = 0; k < 3; k++)
        se += exp(y[k] - mx);
    for (int k = 0; k < 3; k++)
        p[k] = exp(y[k] - mx) / se;
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < m->sizes[l + 1]; i++) {
            fwd_d(m, c->x, 1, yp, l, i, -1, h);
            fwd_d(m, c->x, 1, ym, l, i, -1, -h);
            double J[3], mean = 0, s = 0;
            for (int k = 0; k < 3; k++) {
                J[k] = (yp[k] - ym[k]) / (2 * h);
                mean += p[k] * J[k];
            }
            for (int k = 0; k < 3; k++)
                s += p[k] * (J[k] - mean) * (J[k] - mean);
            assert_close(sx->m0[l][i], s, 1e-3, 1e-8);
        }
    ecp_stats_free(sx);
    ecp_dataset_free(c);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* The sensitivities of both statistics passes (output: stats_sparse.c; loss: stats.c) carry each
 * activation's derivative with its parameters: against finite differences of the double
 * forward. */
static void test_sensitivity_every_activation(void **state)
{
    static const struct {
        ecp_act a;
        float p[ECP_ACT_NPARAM];
    } acts[] = {{ECP_ACT_ELU, {0.7f}},          {ECP_ACT_SOFTPLUS, {2.0f}},
                {ECP_ACT_LEAKY_RELU, {0.2f}},   {ECP_ACT_SILU, {0}},
                {ECP_ACT_GELU_TANH, {0}},       {ECP_ACT_CLIP, {-1.0f, 1.5f}},
                {ECP_ACT_HARDSIGMOID, {0.25f, 0.4f}}, {ECP_ACT_HARDSWISH, {1.0f / 6, 0.5f}}};
    ecp_error err;
    for (size_t c = 0; c < sizeof acts / sizeof *acts; c++) {
        ecp_mlp *m = make_net("4-7-5-3", ECP_ACT_RELU, 151 + c, 1.0f);
        for (int l = 0; l < 2; l++)
            assert_int_equal(ecp_mlp_set_layer_act_params(m, l, acts[c].a, acts[c].p, &err),
                             ECP_OK);
        ecp_dataset *d = tu_make_data(3, 4, 3, 152 + c, 0.2f);
        for (int n = 0; n < 3; n++) {
            int64_t idx = n;
            ecp_dataset *one;
            ecp_stats *st, *sl;
            assert_int_equal(ecp_dataset_subset(d, &idx, 1, &one, &err), ECP_OK);
            assert_int_equal(ecp_stats_compute(m, one, ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 1, 1,
                                               &st, &err), ECP_OK);
            assert_int_equal(ecp_stats_compute(m, one, ECP_NEED_MOMENTS, ECP_SENS_LOSS, 1, 1,
                                               &sl, &err), ECP_OK);
            for (int l = 0; l < 3; l++)
                for (int i = 0; i < m->sizes[l + 1]; i++) {
                    double fd;
                    sens_fd(m, one->x, 1, l, i, &fd);
                    if (fabs(st->m0[l][i] - fd) > 1e-4 * fabs(fd) + 1e-7)
                        print_error("%s: layer %d unit %d: s = %g, fd %g\n",
                                    ecp_act_name(acts[c].a), l, i, st->m0[l][i], fd);
                    assert_close(st->m0[l][i], fd, 1e-4, 1e-7);
                    assert_close(sl->m0[l][i], 2.0 / 3.0 * fd, 1e-4, 1e-7);
                }
            ecp_stats_free(st);
            ecp_stats_free(sl);
            ecp_dataset_free(one);
        }
        ecp_dataset_free(d);
        ecp_mlp_free(m);
    }
}

/* The probe estimate is unbiased: with many probes it approaches the exact sensitivity. */
static void test_probe_sensitivity_unbiased(void **state)
{
    ecp_mlp *m = make_net("4-6-8", ECP_ACT_TANH, 55, 1.0f);
    ecp_dataset *d = tu_make_data(64, 4, 8, 56, 0.0f);
    ecp_error err;
    ecp_stats *se, *sp;
    assert_int_equal(ecp_stats_compute(m, d, ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 1, 1, &se, &err),
                     ECP_OK);
    assert_int_equal(ecp_stats_compute(m, d, ECP_NEED_MOMENTS, ECP_SENS_PROBE, 400, 3, &sp, &err),
                     ECP_OK);
    for (int i = 0; i < 6; i++)
        assert_close(sp->m0[0][i], se->m0[0][i], 0.08, 0);
    ecp_stats_free(se);
    ecp_stats_free(sp);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Property 6: exactly round(s x prunable) weights are zero, and they stay zero through
 * fine-tuning; the iterative schedule ends at exactly the target too. */
static void test_exact_count_and_finetune_keeps_zeros(void **state)
{
    const char *methods[] = {"ec", "magnitude", "random", "gradient", "taylor", "obd", "wanda",
                             "magnitude-bc"};
    double sp[] = {0.5, 0.77, 0.9};
    for (size_t mi = 0; mi < sizeof methods / sizeof *methods; mi++)
        for (int t = 0; t < 3; t++) {
            ecp_mlp *m = make_net("6-20-12-3", ECP_ACT_RELU, 61, 1.0f);
            ecp_dataset *d = tu_make_data(120, 6, 3, 62, 0.0f);
            ecp_prune_opts o;
            ecp_prune_opts_default(&o);
            o.method = methods[mi];
            o.sparsity = sp[t];
            o.calib = 100;
            o.steps = t == 2 ? 3 : 1;
            o.finetune_epochs = t >= 1 ? 2 : 0;
            o.finetune.batch = 16;
            ecp_prune_report rep;
            ecp_error err;
            ecp_status s = ecp_prune(m, d, &o, &rep, &err);
            if (s)
                print_error("%s\n", err.msg);
            assert_int_equal(s, ECP_OK);
            int64_t total = ecp_mlp_n_weights(m);
            assert_int_equal(tu_count_zero_pruned(m), llround(sp[t] * (double)total));
            assert_int_equal(rep.pruned, llround(sp[t] * (double)total));
            ecp_dataset_free(d);
            ecp_mlp_free(m);
        }
}

/* Per-layer scope: each layer reaches its own quota. */
static void test_layer_scope(void **state)
{
    ecp_mlp *m = make_net("6-20-12-3", ECP_ACT_RELU, 71, 1.0f);
    ecp_dataset *d = tu_make_data(100, 6, 3, 72, 0.0f);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.sparsity = 0.6;
    o.scope_layer = 1;
    o.calib = 100;
    ecp_error err;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_OK);
    for (int l = 0; l < 3; l++)
        assert_int_equal(ecp_mlp_layer_n_pruned(m, l),
                         llround(0.6 * m->layer[l].n_in * m->layer[l].n_out));
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Pruning takes any model that loads: 80 layers (past the old limit of 64), EC by layer, every
 * layer's count exact and reported. */
static void test_deep_model(void **state)
{
    (void)state;
    char arch[512] = "4";
    for (int l = 0; l < 79; l++)
        strcat(arch, "-4");
    strcat(arch, "-2");
    ecp_mlp *m = make_net(arch, ECP_ACT_TANH, 75, 1.0f);
    assert_int_equal(ecp_mlp_n_layers(m), 80);
    ecp_dataset *d = tu_make_data(60, 4, 2, 76, 0.0f);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.sparsity = 0.5;
    o.scope_layer = 1;
    o.calib = 60;
    ecp_prune_report rep;
    ecp_error err;
    assert_int_equal(ecp_prune(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(rep.n_layers, 80);
    for (int l = 0; l < 80; l++) {
        int64_t want = llround(0.5 * m->layer[l].n_in * m->layer[l].n_out);
        assert_int_equal(ecp_mlp_layer_n_pruned(m, l), want);
        assert_int_equal(rep.layer_pruned[l], want);
    }
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Guard: a layer whose weights all rank lowest still keeps one; the count stays exact. */
static void test_guard_keeps_a_weight_per_layer(void **state)
{
    ecp_mlp *m = make_net("6-20-2", ECP_ACT_RELU, 81, 1.0f);
    /* make the output layer the cheapest by far for magnitude */
    for (int k = 0; k < 40; k++)
        m->layer[1].W[k] *= 1e-6f;
    ecp_dataset *d = tu_make_data(50, 6, 2, 82, 0.0f);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.method = "magnitude";
    o.sparsity = 0.95;
    o.calib = 50;
    ecp_prune_report rep;
    ecp_error err;
    assert_int_equal(ecp_prune(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(ecp_mlp_layer_n_pruned(m, 1), 39);
    assert_int_equal(ecp_mlp_n_pruned(m), llround(0.95 * 160));
    assert_true(rep.guarded >= 1);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Compensation is applied: biases move by the sum of delta* of the removed weights. */
static void test_compensation_applied(void **state)
{
    ecp_mlp *m = make_net("5-8-3", ECP_ACT_TANH, 91, 1.0f);
    ecp_mlp *orig;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m, &orig, &err), ECP_OK);
    ecp_dataset *d = tu_make_data(60, 5, 3, 92, 1.0f);
    ecp_scores *sc = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.sparsity = 0.5;
    assert_int_equal(ecp_select_apply(m, sc, &o, 0.5, NULL, &err), ECP_OK);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < m->layer[l].n_out; i++) {
            double expect = orig->layer[l].b[i];
            for (int j = 0; j < m->layer[l].n_in; j++) {
                size_t k = (size_t)i * m->layer[l].n_in + j;
                if (m->layer[l].pruned[k])
                    expect += sc->comp[l][k];
            }
            assert_close(m->layer[l].b[i], expect, 1e-5, 1e-6);
        }
    ecp_scores_free(sc);
    ecp_mlp_free(orig);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* ec-exact agrees with ec within 2% on weights with |w| <= 1e-3, and is never worse than the
 * linear delta* on the true deviation. */
static void test_exact_matches_ec_for_small_weights(void **state)
{
    ecp_mlp *m = make_net("3-6-5-2", ECP_ACT_TANH, 101, 1.5f);
    ecp_rng r;
    ecp_rng_seed(&r, 5);
    for (int l = 0; l < 3; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        for (size_t k = 0; k < nw; k += 2)
            m->layer[l].W[k] = (float)((2 * ecp_rng_uniform(&r) - 1) * 1e-3);
    }
    ecp_dataset *d = tu_make_data(100, 3, 2, 102, 0.0f);
    ecp_scores *ec = scores_of(m, d, "ec", ECP_SENS_OUTPUT);
    ecp_scores *ex = scores_of(m, d, "ec-exact", ECP_SENS_OUTPUT);
    int checked = 0;
    for (int l = 0; l < 3; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        for (size_t k = 0; k < nw; k++) {
            int i = (int)(k / m->layer[l].n_in), j = (int)(k % m->layer[l].n_in);
            double lin_dev = deviation(m, d->x, (int)d->n, l, i, j, ec->comp[l][k]);
            assert_true(ex->score[l][k] <= lin_dev * (1 + 1e-4) + 1e-12);
            if (fabs(m->layer[l].W[k]) <= 1e-3 && ec->score[l][k] > 1e-14) {
                assert_close(ex->score[l][k], ec->score[l][k], 0.02, 0);
                checked++;
            }
        }
    }
    assert_true(checked >= 10);
    ecp_scores_free(ec);
    ecp_scores_free(ex);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Bad arguments fail with ECP_ERR_ARG, a message naming the option, and an untouched model. */
static void test_bad_arguments(void **state)
{
    ecp_mlp *m = make_net("4-5-2", ECP_ACT_RELU, 111, 1.0f);
    ecp_dataset *d = tu_make_data(30, 4, 2, 112, 0.0f);
    ecp_prune_opts o;
    ecp_error err;
    ecp_prune_opts_default(&o);
    o.calib = 30;
    o.sparsity = 1.0;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "sparsity 1: "));
    o.sparsity = -0.1;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    o.sparsity = 0.5;
    o.method = "nonsense";
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "nonsense"));
    o.method = "ec";
    o.calib = 0;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "calib "));
    o.calib = 31;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    o.calib = 30;
    o.exclude_mask = 3;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "no prunable layer"));
    assert_int_equal(ecp_mlp_n_pruned(m), 0);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_network_exact),
        cmocka_unit_test(test_closed_form_vs_dense_search),
        cmocka_unit_test(test_nonlinear_ratio_tends_to_one),
        cmocka_unit_test(test_constant_input_is_free),
        cmocka_unit_test(test_sensitivity_vs_finite_differences),
        cmocka_unit_test(test_sensitivity_every_activation),
        cmocka_unit_test(test_probe_sensitivity_unbiased),
        cmocka_unit_test(test_exact_count_and_finetune_keeps_zeros),
        cmocka_unit_test(test_layer_scope),
        cmocka_unit_test(test_deep_model),
        cmocka_unit_test(test_guard_keeps_a_weight_per_layer),
        cmocka_unit_test(test_compensation_applied),
        cmocka_unit_test(test_exact_matches_ec_for_small_weights),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
