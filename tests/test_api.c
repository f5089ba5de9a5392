/* The NULL contract of the public API: every function given NULL where an object is required
 * returns ECP_ERR_ARG with a message naming the function (or, for those that cannot fail, does
 * nothing / returns 0), and never crashes. Run under ASan+UBSan like every suite. */
#include "testutil.h"

/* Checks one call's status and that the message names the function. */
#define EXPECT_ARG(call, fn)                                                                    \
    do {                                                                                        \
        ecp_error e_ = {0};                                                                     \
        ecp_error *err = &e_;                                                                   \
        ecp_status s_ = (call);                                                                 \
        if (s_ != ECP_ERR_ARG || !strstr(e_.msg, fn))                                           \
            print_error("%s: status %d, message '%s'\n", #call, (int)s_, e_.msg);              \
        assert_int_equal(s_, ECP_ERR_ARG);                                                      \
        assert_non_null(strstr(e_.msg, fn));                                                    \
        (void)err;                                                                              \
    } while (0)

static ecp_mlp *small_model(void)
{
    ecp_mlp *m;
    ecp_error e;
    assert_int_equal(ecp_mlp_create_arch(&m, "3-4-2", ECP_ACT_RELU, &e), ECP_OK);
    return m;
}

static ecp_dataset *small_data(void)
{
    ecp_dataset *d;
    ecp_error e;
    assert_int_equal(ecp_dataset_create(&d, 5, 3, 2, 0, &e), ECP_OK);
    memset(d->x, 0, 15 * sizeof(float));
    memset(d->y, 0, 10 * sizeof(float));
    return d;
}

static void test_status_functions_reject_null(void **state)
{
    (void)state;
    ecp_mlp *m = small_model(), *mo = (ecp_mlp *)m; /* mo: an out pointer that must be reset */
    ecp_dataset *d = small_data(), *dout;
    int sizes[] = {3, 2};
    ecp_act acts[] = {ECP_ACT_RELU};
    float buf[16];
    int64_t idx[1] = {0};
    ecp_act act;
    ecp_npy npy;
    ecp_train_opts to;
    ecp_train_opts_default(&to);
    ecp_optim_opts oo;
    ecp_optim_opts_default(&oo, ECP_OPT_ADAM);
    ecp_eval_result ev;
    ecp_ws *ws;
    ecp_grads *g;
    ecp_optim *op;
    ecp_sparse_net *sn;
    ecp_progress *pr;
    ecp_sparse_tune_result tr;
    ecp_wfile wf = {0};
    float *f32;
    int32_t *lab;
    int nd;
    int64_t dims[4];
    uint8_t *u8;

    EXPECT_ARG(ecp_mlp_create(NULL, 1, sizes, acts, err), "ecp_mlp_create");
    EXPECT_ARG(ecp_mlp_create(&mo, 1, NULL, acts, err), "ecp_mlp_create");
    assert_null(mo);
    EXPECT_ARG(ecp_mlp_create(&mo, 1, sizes, NULL, err), "ecp_mlp_create");
    EXPECT_ARG(ecp_mlp_create_arch(&mo, NULL, ECP_ACT_RELU, err), "ecp_mlp_create_arch");
    EXPECT_ARG(ecp_mlp_clone(NULL, &mo, err), "ecp_mlp_clone");
    assert_null(mo);
    EXPECT_ARG(ecp_mlp_clone(m, NULL, err), "ecp_mlp_clone");
    EXPECT_ARG(ecp_mlp_copy(NULL, m, err), "ecp_mlp_copy");
    EXPECT_ARG(ecp_mlp_copy(m, NULL, err), "ecp_mlp_copy");
    EXPECT_ARG(ecp_mlp_check_finite(NULL, "m", err), "ecp_mlp_check_finite");
    EXPECT_ARG(ecp_mlp_keep_original(NULL, err), "ecp_mlp_keep_original");
    EXPECT_ARG(ecp_mlp_restore_original(NULL, err), "ecp_mlp_restore_original");
    EXPECT_ARG(ecp_act_parse(NULL, &act, err), "ecp_act_parse");
    EXPECT_ARG(ecp_act_parse("relu", NULL, err), "ecp_act_parse");
    EXPECT_ARG(ecp_ws_create(&ws, NULL, 4, err), "ecp_ws_create");
    EXPECT_ARG(ecp_ws_create(NULL, m, 4, err), "ecp_ws_create");
    EXPECT_ARG(ecp_grads_create(&g, NULL, err), "ecp_grads_create");
    EXPECT_ARG(ecp_optim_create(&op, NULL, &oo, err), "ecp_optim_create");
    EXPECT_ARG(ecp_optim_create(&op, m, NULL, err), "ecp_optim_create");
    EXPECT_ARG(ecp_dataset_create(NULL, 5, 3, 2, 0, err), "ecp_dataset_create");
    EXPECT_ARG(ecp_dataset_subset(NULL, idx, 1, &dout, err), "ecp_dataset_subset");
    EXPECT_ARG(ecp_dataset_subset(d, NULL, 1, &dout, err), "ecp_dataset_subset");
    EXPECT_ARG(ecp_dataset_subset(d, idx, 1, NULL, err), "ecp_dataset_subset");
    EXPECT_ARG(ecp_dataset_validate(NULL, "d", err), "ecp_dataset_validate");
    EXPECT_ARG(ecp_data_open(NULL, NULL, &dout, NULL, err), "ecp_data_open");
    EXPECT_ARG(ecp_data_open("mnist", NULL, NULL, NULL, err), "ecp_data_open");
    EXPECT_ARG(ecp_data_open_streamed(NULL, NULL, &dout, NULL, err), "ecp_data_open_streamed");
    EXPECT_ARG(ecp_data_open_streamed("mnist", NULL, NULL, NULL, err), "ecp_data_open_streamed");
    EXPECT_ARG(ecp_npy_read(NULL, &npy, err), "ecp_npy_read");
    EXPECT_ARG(ecp_npy_read("x.npy", NULL, err), "ecp_npy_read");
    EXPECT_ARG(ecp_npy_to_f32(NULL, "p", &f32, err), "ecp_npy_to_f32");
    EXPECT_ARG(ecp_npy_to_labels(NULL, "p", &lab, err), "ecp_npy_to_labels");
    EXPECT_ARG(ecp_npy_write_f32(NULL, buf, 1, 1, err), "ecp_npy_write_f32");
    EXPECT_ARG(ecp_npy_write_f32("/tmp/x.npy", NULL, 1, 1, err), "ecp_npy_write_f32");
    EXPECT_ARG(ecp_npy_write_i64(NULL, idx, 1, err), "ecp_npy_write_i64");
    EXPECT_ARG(ecp_idx_read(NULL, &nd, dims, &u8, err), "ecp_idx_read");
    EXPECT_ARG(ecp_idx_read("x", &nd, dims, NULL, err), "ecp_idx_read");
    EXPECT_ARG(ecp_train(NULL, d, &to, NULL, err), "ecp_train");
    EXPECT_ARG(ecp_train(m, NULL, &to, NULL, err), "ecp_train");
    EXPECT_ARG(ecp_train(m, d, NULL, NULL, err), "ecp_train");
    EXPECT_ARG(ecp_evaluate(NULL, d, &ev, err), "ecp_evaluate");
    EXPECT_ARG(ecp_evaluate(m, NULL, &ev, err), "ecp_evaluate");
    EXPECT_ARG(ecp_predict(m, d, NULL, err), "ecp_predict");
    EXPECT_ARG(ecp_check_fit(m, NULL, "m", "d", err), "ecp_check_fit");
    EXPECT_ARG(ecp_check_fit(NULL, d, "m", "d", err), "ecp_check_fit");
    EXPECT_ARG(ecp_onnx_save(NULL, "/tmp/x.onnx", err), "ecp_onnx_save");
    EXPECT_ARG(ecp_onnx_save(m, NULL, err), "ecp_onnx_save");
    EXPECT_ARG(ecp_onnx_load(NULL, "x.onnx", err), "ecp_onnx_load");
    EXPECT_ARG(ecp_onnx_load(&mo, NULL, err), "ecp_onnx_load");
    EXPECT_ARG(ecp_sparse_create(&sn, NULL, NULL, err), "ecp_sparse_create");
    EXPECT_ARG(ecp_sparse_forward(NULL, buf, 1, buf, err), "ecp_sparse_forward");
    EXPECT_ARG(ecp_export_c(NULL, "/tmp", "net", 0, err), "ecp_export_c");
    EXPECT_ARG(ecp_export_c(m, "/tmp", NULL, 0, err), "ecp_export_c");
    EXPECT_ARG(ecp_progress_create(NULL, "x", 1, err), "ecp_progress_create");
    EXPECT_ARG(ecp_wfile_open(NULL, "/tmp/x", err), "ecp_wfile_open");
    EXPECT_ARG(ecp_wfile_open(&wf, NULL, err), "ecp_wfile_open");
    EXPECT_ARG(ecp_wfile_write(NULL, buf, 1, err), "ecp_wfile_write");
    EXPECT_ARG(ecp_wfile_write(&wf, buf, 1, err), "ecp_wfile_write"); /* never opened */
    EXPECT_ARG(ecp_wfile_commit(NULL, err), "ecp_wfile_commit");
    EXPECT_ARG(ecp_cache_dir(NULL, 10, err), "ecp_cache_dir");
    EXPECT_ARG(ecp_diffsorp_generate(NULL, "/tmp/x", err), "ecp_diffsorp_generate");
    EXPECT_ARG(ecp_sparse_tune(1, NULL, err), "ecp_sparse_tune");
    EXPECT_ARG(ecp_sparse_tune_save(NULL, err), "ecp_sparse_tune_save");
    EXPECT_ARG(ecp_sparse_tune_load(NULL, err), "ecp_sparse_tune_load");
    (void)tr;
    (void)pr;
    /* err itself may be NULL: the status alone comes back. */
    assert_int_equal(ecp_evaluate(m, NULL, &ev, NULL), ECP_ERR_ARG);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

/* Accessors and void functions given NULL (or a layer out of range) return 0 / NULL or do
 * nothing. */
/* The pruning entry points keep the same contract, and a threads setting is put back. */
static void test_pruning_rejects_null(void **state)
{
    (void)state;
    ecp_mlp *m = small_model();
    ecp_dataset *d = small_data();
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    ecp_prune_opts_default(NULL);
    ecp_scores *sc = (ecp_scores *)m, *sc_ok = NULL;
    ecp_sens sens;
    EXPECT_ARG(ecp_prune(NULL, d, &o, NULL, err), "ecp_prune");
    EXPECT_ARG(ecp_prune(m, NULL, &o, NULL, err), "ecp_prune");
    EXPECT_ARG(ecp_prune(m, d, NULL, NULL, err), "ecp_prune");
    EXPECT_ARG(ecp_prune_scores(NULL, d, "ec", ECP_SENS_OUTPUT, 4, 1, &sc, err),
               "ecp_prune_scores");
    assert_null(sc);
    EXPECT_ARG(ecp_prune_scores(m, NULL, "ec", ECP_SENS_OUTPUT, 4, 1, &sc_ok, err),
               "ecp_prune_scores");
    EXPECT_ARG(ecp_prune_scores(m, d, "ec", ECP_SENS_OUTPUT, 4, 1, NULL, err),
               "ecp_prune_scores");
    EXPECT_ARG(ecp_prune_scores(m, d, NULL, ECP_SENS_OUTPUT, 4, 1, &sc_ok, err), "(null)");
    EXPECT_ARG(ecp_prune_apply(NULL, sc_ok, &o, NULL, err), "ecp_prune_apply");
    EXPECT_ARG(ecp_prune_apply(m, NULL, &o, NULL, err), "ecp_prune_apply");
    EXPECT_ARG(ecp_prune_calib(NULL, 1, 1, &d, err), "ecp_prune_calib");
    EXPECT_ARG(ecp_sens_parse(NULL, &sens, err), "ecp_sens_parse");
    o.method = NULL;
    EXPECT_ARG(ecp_prune(m, d, &o, NULL, err), "(null)");
    assert_int_equal(ecp_prune_method_exists(NULL), 0);
    assert_int_equal(ecp_prune_method_reconstructs(NULL), 0);
    assert_int_equal(ecp_prune_method_compensates(NULL), 0);
    ecp_scores_free(NULL);
    /* threads: the call runs with its own count and puts the caller's back */
    ecp_prune_opts_default(&o);
    o.calib = 5;
    o.sparsity = 0.5;
    o.threads = 1;
    ecp_error e;
    int before = ecp_blas_threads_push(2);
    assert_int_equal(ecp_prune(m, d, &o, NULL, &e), ECP_OK);
    assert_int_equal(ecp_blas_threads_push(2), 2);
    ecp_blas_threads_pop(before);
    ecp_dataset_free(d);
    ecp_mlp_free(m);
}

static void test_accessors_and_void_functions_accept_null(void **state)
{
    (void)state;
    ecp_mlp *m = small_model();
    assert_int_equal(ecp_mlp_n_layers(NULL), 0);
    assert_int_equal(ecp_mlp_n_in(NULL), 0);
    assert_int_equal(ecp_mlp_n_out(NULL), 0);
    assert_int_equal(ecp_mlp_layer_in(NULL, 0), 0);
    assert_int_equal(ecp_mlp_layer_in(m, 2), 0);
    assert_int_equal(ecp_mlp_layer_out(m, -1), 0);
    assert_int_equal(ecp_mlp_layer_in(m, 1), 4); /* in range: the real value */
    assert_null(ecp_mlp_weights(m, 2));
    assert_null(ecp_mlp_bias(NULL, 0));
    assert_null(ecp_mlp_pruned(m, 7));
    assert_null(ecp_mlp_weights_c(NULL, 0));
    assert_null(ecp_mlp_bias_c(m, -3));
    assert_null(ecp_mlp_pruned_c(m, 2));
    assert_int_equal(ecp_mlp_n_weights(NULL), 0);
    assert_int_equal(ecp_mlp_n_params(NULL), 0);
    assert_int_equal(ecp_mlp_n_pruned(NULL), 0);
    assert_int_equal(ecp_mlp_layer_n_pruned(m, 5), 0);
    assert_int_equal(ecp_mlp_has_original(NULL), 0);
    assert_null(ecp_mlp_original_weights(NULL, 0));
    assert_null(ecp_ws_output(NULL));
    assert_null(ecp_ws_act(NULL, 0));
    assert_null(ecp_ws_pre(NULL, 0));
    assert_null(ecp_ws_dpre(NULL, 0));
    assert_int_equal(ecp_ws_max_batch(NULL), 0);
    assert_null(ecp_grads_w(NULL, 0));
    assert_null(ecp_grads_b(NULL, 0));
    assert_int_equal(ecp_sparse_n_in(NULL), 0);
    assert_int_equal(ecp_sparse_n_out(NULL), 0);
    assert_int_equal(ecp_sparse_nnz(NULL), 0);
    assert_int_equal(ecp_sparse_n_weights(NULL), 0);
    assert_true(ecp_sparse_density(NULL) == 0);
    assert_true(ecp_sparse_b1_bytes(NULL) == 0);
    assert_int_equal(ecp_sparse_layer_kernel(NULL, 0, 1), ECP_KERNEL_DENSE);
    assert_int_equal(ecp_dataset_loss(NULL), ECP_LOSS_MSE);
    assert_true(isnan(ecp_loss_eval(ECP_LOSS_XENT, NULL, NULL, NULL, 2, 3, 1, NULL)));
    float y[3] = {1, 2, 3};
    assert_true(isnan(ecp_loss_eval(ECP_LOSS_XENT, y, NULL, NULL, 1, 3, 1, NULL)));
    assert_int_equal(ecp_rng_u64(NULL), 0);
    /* None of these may crash. */
    ecp_mlp_set_layer_act(NULL, 0, ECP_ACT_TANH);
    ecp_mlp_set_layer_act(m, 9, ECP_ACT_TANH);
    ecp_mlp_init(NULL, 1);
    ecp_mlp_mask_from_zeros(NULL);
    ecp_mlp_apply_mask(NULL);
    ecp_mlp_drop_original(NULL);
    ecp_mlp_forward(NULL, NULL, NULL, 1);
    ecp_mlp_backward(m, NULL, NULL, 1, NULL);
    ecp_act_forward(ECP_ACT_RELU, NULL, NULL, 4);
    ecp_act_backward(ECP_ACT_RELU, NULL, NULL, NULL, NULL, 4);
    ecp_grads_zero(NULL);
    ecp_optim_step(NULL, m, NULL);
    ecp_eval_accumulate(NULL, 0, 1, NULL, NULL);
    ecp_eval_finish(NULL, NULL, NULL);
    ecp_rng_seed(NULL, 1);
    ecp_rng_permutation(NULL, NULL, 4);
    ecp_progress_update(NULL, 1, NULL);
    ecp_progress_finish(NULL);
    ecp_wfile_abort(NULL);
    ecp_npy_release(NULL);
    ecp_data_opts_default(NULL);
    ecp_optim_opts_default(NULL, ECP_OPT_SGD);
    ecp_train_opts_default(NULL);
    ecp_sparse_opts_default(NULL);
    ecp_sparse_tune_default(NULL);
    ecp_diffsorp_opts_default(NULL);
    ecp_mlp_free(NULL);
    ecp_ws_free(NULL);
    ecp_grads_free(NULL);
    ecp_optim_free(NULL);
    ecp_dataset_free(NULL);
    ecp_sparse_free(NULL);
    ecp_progress_free(NULL);
    assert_string_equal(ecp_version(), ECP_VERSION);
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_functions_reject_null),
        cmocka_unit_test(test_pruning_rejects_null),
        cmocka_unit_test(test_accessors_and_void_functions_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
