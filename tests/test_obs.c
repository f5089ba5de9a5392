/* Reconstruction pruning (sparsegpt, obs, ec-obs) and sequential statistics, each against an
 * independent computation: least squares by LAPACK's QR (dgels), EC's bias-only compensation
 * and no compensation written out in double, a forward in double through the pruned layers. */
#include "testutil.h"
#include "prune/prune.h"
#include "core/lapack.h"

static void obs_opts(ecp_prune_opts *o, const char *method, double damping, int block, int refit)
{
    ecp_prune_opts_default(o);
    o->method = method;
    o->damping = damping;
    o->block = block;
    o->refit = refit;
}

/* sum over samples and rows of (z - z_ref)^2 for one layer applied to x (N x ni), in double */
static double layer_sq_dev(const float *W, const float *b, const double *Wr, const double *br,
                           const float *x, int N, int ni, int no)
{
    double s = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < no; i++) {
            double z = b[i], zr = br[i];
            for (int j = 0; j < ni; j++) {
                z += (double)W[(size_t)i * ni + j] * x[(size_t)n * ni + j];
                zr += Wr[(size_t)i * ni + j] * x[(size_t)n * ni + j];
            }
            s += (z - zr) * (z - zr);
        }
    return s;
}

/* A fixed mask on one linear layer: the re-fit is the least-squares optimum (dgels on
 * [X_K | 1] against the original outputs), and even the sweep alone deviates less than EC's
 * bias-only compensation, which deviates less than no compensation. */
static void test_fixed_mask_least_squares(void **state)
{
    enum { NI = 9, NO = 4, N = 80 };
    ecp_dataset *d = tu_make_data(N, NI, NO, 5, 0.4f);
    ecp_mlp *m0 = tu_make_net("9-4", ECP_ACT_IDENTITY, 6);
    ecp_rng r;
    ecp_rng_seed(&r, 7);
    ecp_layer *L0 = &m0->layer[0];
    double W0[NO * NI], b0[NO];
    for (int k = 0; k < NO * NI; k++)
        W0[k] = L0->W[k];
    for (int i = 0; i < NO; i++)
        b0[i] = L0->b[i];
    uint8_t mask[NO * NI];
    int64_t npruned = 0;
    for (int k = 0; k < NO * NI; k++)
        npruned += mask[k] = ecp_rng_uniform(&r) < 0.45;
    double err_fit[2];
    for (int refit = 0; refit < 2; refit++) {
        ecp_mlp *m;
        ecp_error err;
        assert_int_equal(ecp_mlp_clone(m0, &m, &err), ECP_OK);
        /* White-box: the weights to remove are marked but still hold their values, so that
         * the fit aims at the original outputs. */
        for (int k = 0; k < NO * NI; k++)
            m->layer[0].pruned[k] = mask[k];
        ecp_prune_opts o;
        obs_opts(&o, "obs", 1e-12, 128, refit ? 1 : -1);
        ecp_status s = ecp_obs_layer(m, NULL, d, 0, npruned, &o, 1, &err);
        if (s)
            print_error("%s\n", err.msg);
        assert_int_equal(s, ECP_OK);
        for (int k = 0; k < NO * NI; k++)
            assert_int_equal(m->layer[0].pruned[k], mask[k]);
        err_fit[refit] = layer_sq_dev(m->layer[0].W, m->layer[0].b, W0, b0, d->x, N, NI, NO);
        if (refit) {
            /* each row: min || [X_K 1] w - X w0_row - b0 || by QR */
            for (int i = 0; i < NO; i++) {
                int K = 0, cols[NI + 1];
                for (int j = 0; j < NI; j++)
                    if (!mask[i * NI + j])
                        cols[K++] = j;
                cols[K++] = NI;
                double A[N * (NI + 1)], y[N];
                for (int n = 0; n < N; n++) {
                    double t = b0[i];
                    for (int j = 0; j < NI; j++)
                        t += W0[i * NI + j] * d->x[n * NI + j];
                    y[n] = t;
                    for (int c = 0; c < K; c++) /* column-major for LAPACK */
                        A[c * N + n] = cols[c] == NI ? 1.0 : d->x[n * NI + cols[c]];
                }
                int rows = N, nc = K, one = 1, lwork = 4096, info;
                double work[4096];
                dgels_("N", &rows, &nc, &one, A, &rows, y, &rows, work, &lwork, &info, 1);
                assert_int_equal(info, 0);
                for (int c = 0; c < K; c++) {
                    double got = cols[c] == NI ? m->layer[0].b[i]
                                               : m->layer[0].W[i * NI + cols[c]];
                    assert_close(got, y[c], 1e-6, 1e-6);
                }
            }
        }
        ecp_mlp_free(m);
    }
    /* EC's bias-only compensation (s = 1 in a single linear layer: delta = w mean(a_j)) and
     * none, in double. */
    float Wm[NO * NI], bec[NO], bnone[NO];
    for (int i = 0; i < NO; i++) {
        bec[i] = bnone[i] = (float)b0[i];
        for (int j = 0; j < NI; j++) {
            int k = i * NI + j;
            Wm[k] = mask[k] ? 0.0f : (float)W0[k];
            if (mask[k]) {
                double mean = 0;
                for (int n = 0; n < N; n++)
                    mean += d->x[n * NI + j];
                bec[i] += (float)(W0[k] * mean / N);
            }
        }
    }
    double err_ec = layer_sq_dev(Wm, bec, W0, b0, d->x, N, NI, NO);
    double err_none = layer_sq_dev(Wm, bnone, W0, b0, d->x, N, NI, NO);
    assert_true(err_fit[1] <= err_fit[0] * (1 + 1e-9));
    assert_true(err_fit[0] <= err_ec);
    assert_true(err_ec < err_none);
    assert_true(err_fit[1] < 0.9 * err_ec); /* and by a margin, or the test could not fail */
    ecp_mlp_free(m0);
    ecp_dataset_free(d);
}

/* Layer 1 is fitted on the inputs that the pruned layer 0 really produces, to the outputs the
 * original network gave: with the re-fit on and no damping, its kept weights are that
 * least-squares fit, computed here from double forwards through the final and the original
 * layer 0. Fitted on the dense network's inputs instead, they would differ. */
static void test_sequential_fit_uses_pruned_inputs(void **state)
{
    enum { NI = 6, NH = 10, NO = 3, N = 120 };
    ecp_dataset *d = tu_make_data(N, NI, NO, 11, 0.0f);
    ecp_mlp *m0 = tu_make_net("6-10-3", ECP_ACT_TANH, 12), *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m0, &m, &err), ECP_OK);
    ecp_prune_opts o;
    obs_opts(&o, "obs", 1e-12, 0, 1);
    o.allocation = ECP_ALLOC_UNIFORM;
    o.sparsity = 0.5;
    o.calib = N;
    ecp_status s = ecp_prune(m, d, &o, NULL, &err);
    if (s)
        print_error("%s\n", err.msg);
    assert_int_equal(s, ECP_OK);
    /* a = tanh(layer 0 as pruned), a0 = tanh(layer 0 as it was), target t = W1 a0 + b1 */
    static double a[N][NH], a0[N][NH];
    for (int n = 0; n < N; n++)
        for (int h = 0; h < NH; h++) {
            double z = m->layer[0].b[h], z0 = m0->layer[0].b[h];
            for (int j = 0; j < NI; j++) {
                z += (double)m->layer[0].W[h * NI + j] * d->x[n * NI + j];
                z0 += (double)m0->layer[0].W[h * NI + j] * d->x[n * NI + j];
            }
            a[n][h] = tanh(z);
            a0[n][h] = tanh(z0);
        }
    double maxdiff_dense = 0;
    for (int i = 0; i < NO; i++) {
        int K = 0, cols[NH + 1];
        for (int h = 0; h < NH; h++)
            if (!m->layer[1].pruned[i * NH + h])
                cols[K++] = h;
        cols[K++] = NH;
        for (int pass = 0; pass < 2; pass++) { /* 0: pruned inputs, 1: dense inputs */
            double A[N * (NH + 1)], y[N];
            for (int n = 0; n < N; n++) {
                double t = m0->layer[1].b[i];
                for (int h = 0; h < NH; h++)
                    t += (double)m0->layer[1].W[i * NH + h] * a0[n][h];
                y[n] = t;
                for (int c = 0; c < K; c++)
                    A[c * N + n] = cols[c] == NH ? 1.0 : pass ? a0[n][cols[c]] : a[n][cols[c]];
            }
            int rows = N, nc = K, one = 1, lwork = 4096, info;
            double work[4096];
            dgels_("N", &rows, &nc, &one, A, &rows, y, &rows, work, &lwork, &info, 1);
            assert_int_equal(info, 0);
            for (int c = 0; c < K; c++) {
                double got = cols[c] == NH ? m->layer[1].b[i] : m->layer[1].W[i * NH + cols[c]];
                if (pass == 0)
                    assert_close(got, y[c], 1e-5, 1e-6);
                else if (fabs(got - y[c]) > maxdiff_dense)
                    maxdiff_dense = fabs(got - y[c]);
            }
        }
    }
    assert_true(maxdiff_dense > 1e-3);
    ecp_mlp_free(m);
    ecp_mlp_free(m0);
    ecp_dataset_free(d);
}

/* Layer inputs carried from layer to layer in memory give the network that streaming them
 * through the whole network batch by batch gives (a max_memory too small for the carried
 * inputs forces streaming): same masks, weights within float rounding. Three layers and a
 * calibration size that is not a multiple of the batch, for obs and ec-obs. */
static void test_carried_inputs_match_streaming(void **state)
{
    ecp_dataset *d = tu_make_data(300, 5, 3, 31, 0.2f);
    ecp_mlp *m0 = tu_make_net("5-12-9-3", ECP_ACT_TANH, 32);
    const char *methods[] = {"obs", "ec-obs"};
    for (int k = 0; k < 2; k++) {
        ecp_mlp *m[2];
        for (int v = 0; v < 2; v++) {
            ecp_error err;
            assert_int_equal(ecp_mlp_clone(m0, &m[v], &err), ECP_OK);
            ecp_prune_opts o;
            obs_opts(&o, methods[k], 0.01, 0, 0);
            o.sparsity = 0.6;
            o.calib = 300;
            o.max_memory = v ? 100000 : 0;
            ecp_status s = ecp_prune(m[v], d, &o, NULL, &err);
            if (s)
                print_error("%s\n", err.msg);
            assert_int_equal(s, ECP_OK);
        }
        for (int l = 0; l < 3; l++) {
            const ecp_layer *A = &m[0]->layer[l], *B = &m[1]->layer[l];
            size_t nw = (size_t)A->n_in * A->n_out;
            assert_memory_equal(A->pruned, B->pruned, nw);
            for (size_t j = 0; j < nw; j++)
                assert_close(A->W[j], B->W[j], 1e-5, 1e-6);
            for (int i = 0; i < A->n_out; i++)
                assert_close(A->b[i], B->b[i], 1e-5, 1e-6);
        }
        ecp_mlp_free(m[0]);
        ecp_mlp_free(m[1]);
    }
    ecp_mlp_free(m0);
    ecp_dataset_free(d);
}

/* --sequential for a scoring method: layer 1's selection is the one its scores give on the
 * network with layer 0 already pruned and compensated, which differs from the one-pass one. */
static void test_sequential_scores(void **state)
{
    ecp_dataset *d = tu_make_data(150, 6, 3, 21, 0.3f);
    ecp_mlp *m0 = tu_make_net("6-16-12-3", ECP_ACT_TANH, 22), *seq, *ref, *plain;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m0, &seq, &err), ECP_OK);
    assert_int_equal(ecp_mlp_clone(m0, &ref, &err), ECP_OK);
    assert_int_equal(ecp_mlp_clone(m0, &plain, &err), ECP_OK);
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.sparsity = 0.8;
    o.calib = 150;
    o.sequential = 1;
    assert_int_equal(ecp_prune(seq, d, &o, NULL, &err), ECP_OK);
    o.sequential = 0;
    assert_int_equal(ecp_prune(plain, d, &o, NULL, &err), ECP_OK);
    /* ref: layer 0 as the sequential run left it, then layer 1 scored on that network */
    ecp_dataset *cal;
    assert_int_equal(ecp_prune_calib(d, 150, o.seed, &cal, &err), ECP_OK);
    memcpy(ref->layer[0].W, seq->layer[0].W, sizeof(float) * 6 * 16);
    memcpy(ref->layer[0].b, seq->layer[0].b, sizeof(float) * 16);
    memcpy(ref->layer[0].pruned, seq->layer[0].pruned, 6 * 16);
    ecp_scores *sc;
    assert_int_equal(ecp_prune_scores(ref, cal, "ec", ECP_SENS_OUTPUT, 16, o.seed + 1, &sc, &err),
                     ECP_OK);
    int64_t t[3] = {-1, ecp_mlp_layer_n_pruned(seq, 1), -1};
    assert_int_equal(ecp_select_targets(ref, sc, &o, 0.8, t, NULL, &err), ECP_OK);
    ecp_scores_free(sc);
    int differs = 0;
    for (int k = 0; k < 16 * 12; k++) {
        assert_int_equal(ref->layer[1].pruned[k], seq->layer[1].pruned[k]);
        differs |= plain->layer[1].pruned[k] != seq->layer[1].pruned[k];
    }
    for (int i = 0; i < 12; i++)
        assert_true(ref->layer[1].b[i] == seq->layer[1].b[i]);
    assert_true(differs);
    assert_int_equal(ecp_mlp_n_pruned(seq), llround(0.8 * ecp_mlp_n_weights(seq)));
    ecp_dataset_free(cal);
    ecp_mlp_free(plain);
    ecp_mlp_free(ref);
    ecp_mlp_free(seq);
    ecp_mlp_free(m0);
    ecp_dataset_free(d);
}

/* Exactly round(s x weights) weights pruned, one-shot and iterative with fine-tuning; uniform
 * allocation gives every layer its own share. */
static void test_exact_counts(void **state)
{
    const char *methods[] = {"sparsegpt", "obs", "ec-obs"};
    double sp[] = {0.5, 0.77, 0.9};
    for (int mi = 0; mi < 3; mi++)
        for (int t = 0; t < 3; t++) {
            ecp_mlp *m = tu_make_net("6-20-12-3", ECP_ACT_RELU, 31);
            ecp_dataset *d = tu_make_data(120, 6, 3, 32, 0.0f);
            ecp_prune_opts o;
            ecp_prune_opts_default(&o);
            o.method = methods[mi];
            o.sparsity = sp[t];
            o.calib = 100;
            o.steps = t == 2 && mi > 0 ? 3 : 1;
            o.finetune_epochs = t == 2 ? 1 : 0;
            o.finetune.batch = 16;
            ecp_prune_report rep;
            ecp_error err;
            ecp_status s = ecp_prune(m, d, &o, &rep, &err);
            if (s)
                print_error("%s %g: %s\n", methods[mi], sp[t], err.msg);
            assert_int_equal(s, ECP_OK);
            int64_t want = llround(sp[t] * (double)ecp_mlp_n_weights(m));
            assert_int_equal(tu_count_zero_pruned(m), want);
            assert_int_equal(rep.pruned, want);
            if (mi == 0) /* sparsegpt: the same fraction in every layer */
                for (int l = 0; l < 3; l++)
                    assert_int_equal(rep.layer_pruned[l],
                                     llround(sp[t] * m->layer[l].n_in * m->layer[l].n_out));
            ecp_dataset_free(d);
            ecp_mlp_free(m);
        }
}

/* Fewer samples than inputs: H is singular; with no damping a clear error naming the layer,
 * with the default damping a regularised fit. An input that is always zero costs nothing:
 * its weights go first. */
static void test_singular_and_dead_inputs(void **state)
{
    ecp_dataset *d = tu_make_data(12, 20, 2, 41, 0.0f);
    ecp_mlp *m = tu_make_net("20-8-2", ECP_ACT_TANH, 42);
    ecp_prune_opts o;
    obs_opts(&o, "obs", 0, 0, 0);
    o.sparsity = 0.5;
    o.calib = 12;
    ecp_error err;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "layer 0"));
    assert_non_null(strstr(err.msg, "singular"));
    o.damping = 0.01;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_OK);
    assert_int_equal(ecp_mlp_n_pruned(m), llround(0.5 * ecp_mlp_n_weights(m)));
    ecp_mlp_free(m);
    ecp_dataset_free(d);

    d = tu_make_data(100, 6, 2, 43, 0.5f);
    for (int n = 0; n < 100; n++)
        d->x[n * 6 + 2] = 0;
    m = tu_make_net("6-8-2", ECP_ACT_TANH, 44);
    obs_opts(&o, "obs", 0.01, 0, 0);
    o.sparsity = 0.3;
    o.calib = 100;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(m->layer[0].pruned[i * 6 + 2], 1);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

/* Too little memory, bad options: an error naming the layer or the field, the model as it was. */
static void test_memory_and_bad_options(void **state)
{
    ecp_dataset *d = tu_make_data(50, 6, 2, 51, 0.0f);
    ecp_mlp *m = tu_make_net("6-8-2", ECP_ACT_TANH, 52), *m0;
    ecp_error err;
    assert_int_equal(ecp_mlp_clone(m, &m0, &err), ECP_OK);
    ecp_prune_opts o;
    obs_opts(&o, "ec-obs", 0.01, 0, 0);
    o.sparsity = 0.5;
    o.calib = 50;
    o.max_memory = 1000;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_MEMORY);
    assert_non_null(strstr(err.msg, "layer 0"));
    assert_non_null(strstr(err.msg, "max_memory"));
    assert_non_null(strstr(err.msg, "reconstruction needs"));
    o.max_memory = 0;
    o.damping = -1;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "damping"));
    o.damping = 0.01;
    o.block = -3;
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "block"));
    o.block = 0;
    o.allocation_method = "nonsense:loss";
    assert_int_equal(ecp_prune(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "nonsense"));
    for (int l = 0; l < 2; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        assert_memory_equal(m->layer[l].W, m0->layer[l].W, nw * sizeof(float));
        assert_memory_equal(m->layer[l].b, m0->layer[l].b, m->layer[l].n_out * sizeof(float));
    }
    ecp_mlp_free(m0);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

/* ec-obs's saliency is EC's importance with the whole row compensating: never above EC's
 * bias-only residual for the same weight in a single linear layer (where both are exact). */
static void test_saliency_below_ec(void **state)
{
    ecp_dataset *d = tu_make_data(200, 7, 3, 61, 0.2f);
    ecp_mlp *m = tu_make_net("7-3", ECP_ACT_IDENTITY, 62);
    ecp_error err;
    ecp_scores *ec, *ob;
    assert_int_equal(ecp_prune_scores(m, d, "ec", ECP_SENS_OUTPUT, 8, 1, &ec, &err), ECP_OK);
    assert_int_equal(ecp_prune_scores(m, d, "ec-obs", ECP_SENS_OUTPUT, 8, 1, &ob, &err), ECP_OK);
    int below = 0;
    for (int k = 0; k < 21; k++) {
        /* the default damping of 1 % raises the OBS figure a little */
        assert_true(ob->score[0][k] <= ec->score[0][k] * 1.02 + 1e-12);
        below += ob->score[0][k] < 0.999 * ec->score[0][k];
    }
    assert_true(below > 0);
    ecp_scores_free(ec);
    ecp_scores_free(ob);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_mask_least_squares),
        cmocka_unit_test(test_sequential_fit_uses_pruned_inputs),
        cmocka_unit_test(test_carried_inputs_match_streaming),
        cmocka_unit_test(test_sequential_scores),
        cmocka_unit_test(test_exact_counts),
        cmocka_unit_test(test_singular_and_dead_inputs),
        cmocka_unit_test(test_memory_and_bad_options),
        cmocka_unit_test(test_saliency_below_ec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
