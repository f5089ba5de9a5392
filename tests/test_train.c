/* Training options an embedder relies on: initialisation at creation, the validation set and
 * early stopping, the per-epoch callback, the thread count, and the original parameters kept
 * beside the mask (keep / restore / drop). */
#include "testutil.h"
#include <cblas.h>

/* Class = which third of the inputs holds the most mass; inputs ~85 % exact zeros, so training
 * runs in the sparse-input layout (layer 0 transposed), which snapshots must handle. */
static ecp_dataset *sparse_class(int64_t n, int n_in, uint64_t seed, int shift_labels)
{
    ecp_dataset *d;
    ecp_error err;
    assert_int_equal(ecp_dataset_create(&d, n, n_in, 3, 1, &err), ECP_OK);
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * n_in; i++)
        d->x[i] = ecp_rng_uniform(&r) < 0.85 ? 0.0f : (float)ecp_rng_uniform(&r);
    for (int64_t i = 0; i < n; i++) {
        double s[3] = {0, 0, 0};
        for (int k = 0; k < n_in; k++)
            s[k * 3 / n_in] += d->x[i * n_in + k];
        int c = s[0] >= s[1] && s[0] >= s[2] ? 0 : s[1] >= s[2] ? 1 : 2;
        d->label[i] = (c + shift_labels) % 3;
    }
    return d;
}

static void test_created_model_is_initialised(void **state)
{
    (void)state;
    ecp_mlp *a, *b;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&a, "9-7-3", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_create_arch(&b, "9-7-3", ECP_ACT_RELU, &err), ECP_OK);
    int nonzero = 0;
    for (int i = 0; i < 63; i++)
        nonzero += ecp_mlp_weights_c(a, 0)[i] != 0.0f;
    assert_true(nonzero >= 60);
    ecp_mlp_init(b, 99);
    assert_false(tu_same_params(a, b));
    ecp_mlp_init(b, ECP_INIT_SEED); /* creation is ecp_mlp_init with the documented seed */
    assert_true(tu_same_params(a, b));
    ecp_mlp_free(a);
    ecp_mlp_free(b);
}

typedef struct {
    int calls, stop_at;
    double valid_loss[64], train_loss[64];
} epochs_seen;

static int on_epoch(const ecp_epoch_info *info, void *user)
{
    epochs_seen *s = user;
    assert_int_equal(info->epoch, s->calls + 1);
    s->valid_loss[s->calls] = info->valid_loss;
    s->train_loss[s->calls] = info->train_loss;
    s->calls++;
    return s->stop_at && info->epoch >= s->stop_at;
}

static void base_opts(ecp_train_opts *o)
{
    ecp_train_opts_default(o);
    o->progress = 0;
    o->epochs = 6;
    o->batch = 25;
    o->optim.lr = 1e-2;
    o->threads = 1;
}

/* The validation figures of the report and of the callback are ecp_evaluate's on that set. */
static void test_validation_and_callback(void **state)
{
    (void)state;
    ecp_dataset *d = sparse_class(300, 40, 3, 0), *v = sparse_class(120, 40, 4, 0);
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, "40-16-3", ECP_ACT_RELU, &err), ECP_OK);
    epochs_seen seen = {0};
    ecp_train_opts o;
    base_opts(&o);
    o.valid = v;
    o.on_epoch = on_epoch;
    o.user = &seen;
    ecp_train_report rep;
    assert_int_equal(ecp_train(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(seen.calls, 6);
    assert_int_equal(rep.epochs_run, 6);
    assert_int_equal(rep.stopped, ECP_STOP_NONE);
    assert_true(seen.valid_loss[5] < seen.valid_loss[0]); /* it learns */
    assert_close(rep.final_loss, seen.train_loss[5], 0, 0);
    ecp_eval_result ev;
    assert_int_equal(ecp_evaluate(m, v, &ev, &err), ECP_OK);
    /* Without patience the last model is returned; best_epoch still names the best. */
    assert_close(seen.valid_loss[5], ev.loss, 1e-5, 1e-7);
    assert_close(rep.valid_loss, seen.valid_loss[rep.best_epoch - 1], 0, 0);
    assert_true(rep.valid_accuracy >= 0 && rep.valid_accuracy <= 1);

    /* A callback that asks to stop after epoch 2. */
    seen = (epochs_seen){.stop_at = 2};
    assert_int_equal(ecp_train(m, d, &o, &rep, &err), ECP_OK);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(rep.epochs_run, 2);
    assert_int_equal(rep.stopped, ECP_STOP_CALLBACK);

    /* No validation set: NAN in the callback, -1 accuracy in the report. */
    seen = (epochs_seen){0};
    o.valid = NULL;
    o.epochs = 2;
    assert_int_equal(ecp_train(m, d, &o, &rep, &err), ECP_OK);
    assert_true(isnan(seen.valid_loss[0]) && isnan(rep.valid_loss));
    assert_true(rep.valid_accuracy == -1);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
    ecp_dataset_free(v);
}

/* Validation labels shifted by one class: the better the model fits the training data, the
 * worse it does on them, so the validation loss rises and patience runs out; the model of the
 * best epoch comes back, in the sparse-input layout too. */
static void test_early_stopping_keeps_best(void **state)
{
    (void)state;
    ecp_dataset *d = sparse_class(300, 40, 5, 0), *v = sparse_class(300, 40, 5, 1);
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1) /* dense inputs: the ordinary layout */
            for (size_t i = 0; i < 300 * 40; i++)
                d->x[i] += 0.25f, v->x[i] += 0.25f;
        ecp_mlp *m;
        ecp_error err;
        assert_int_equal(ecp_mlp_create_arch(&m, "40-16-3", ECP_ACT_RELU, &err), ECP_OK);
        epochs_seen seen = {0};
        ecp_train_opts o;
        base_opts(&o);
        o.epochs = 40;
        o.valid = v;
        o.patience = 3;
        o.on_epoch = on_epoch;
        o.user = &seen;
        ecp_train_report rep;
        assert_int_equal(ecp_train(m, d, &o, &rep, &err), ECP_OK);
        assert_int_equal(rep.stopped, ECP_STOP_EARLY);
        assert_int_equal(rep.epochs_run, seen.calls);
        assert_int_equal(rep.epochs_run - rep.best_epoch, 3);
        int best = 0;
        for (int e = 1; e < seen.calls; e++)
            if (seen.valid_loss[e] < seen.valid_loss[best])
                best = e;
        assert_int_equal(rep.best_epoch, best + 1);
        ecp_eval_result ev;
        assert_int_equal(ecp_evaluate(m, v, &ev, &err), ECP_OK);
        assert_close(ev.loss, seen.valid_loss[best], 1e-5, 1e-7);
        assert_close(rep.valid_loss, seen.valid_loss[best], 0, 0);
        ecp_mlp_free(m);
    }
    ecp_dataset_free(d);
    ecp_dataset_free(v);
}

static void test_train_option_errors(void **state)
{
    (void)state;
    ecp_dataset *d = sparse_class(30, 40, 3, 0), *v = sparse_class(10, 20, 3, 0);
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, "40-3", ECP_ACT_RELU, &err), ECP_OK);
    ecp_train_opts o;
    base_opts(&o);
    o.patience = 2;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "patience 2: needs a validation set"));
    o.valid = v; /* 20 features for a 40-input model */
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "validation data"));
    o.valid = NULL;
    o.patience = 0;
    o.threads = -1;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "threads -1"));
    o.threads = 0;
    o.epochs = -1;
    assert_int_equal(ecp_train(m, d, &o, NULL, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "epochs -1"));
    ecp_mlp_free(m);
    ecp_dataset_free(d);
    ecp_dataset_free(v);
}

/* The thread count is the call's own: the process-wide OpenBLAS setting is put back. */
static void test_threads_restored(void **state)
{
    (void)state;
    ecp_dataset *d = sparse_class(60, 40, 3, 0);
    ecp_mlp *a, *b;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&a, "40-8-3", ECP_ACT_RELU, &err), ECP_OK);
    assert_int_equal(ecp_mlp_clone(a, &b, &err), ECP_OK);
    openblas_set_num_threads(1);
    ecp_train_opts o;
    base_opts(&o);
    o.threads = 2;
    assert_int_equal(ecp_train(a, d, &o, NULL, &err), ECP_OK);
    assert_int_equal(openblas_get_num_threads(), 1);
    o.threads = 1; /* results do not depend on the count */
    assert_int_equal(ecp_train(b, d, &o, NULL, &err), ECP_OK);
    assert_true(tu_same_params(a, b));
    ecp_mlp_free(a);
    ecp_mlp_free(b);
    ecp_dataset_free(d);
}

/* keep / restore / drop, through pruning (weights zeroed, biases compensated) and training. */
static void test_keep_and_restore_original(void **state)
{
    (void)state;
    ecp_dataset *d = sparse_class(200, 40, 7, 0);
    ecp_mlp *m, *before;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, "40-12-3", ECP_ACT_TANH, &err), ECP_OK);
    assert_false(ecp_mlp_has_original(m));
    assert_null(ecp_mlp_original_weights(m, 0));
    assert_int_equal(ecp_mlp_restore_original(m, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "no original kept"));
    ecp_mlp_pruned(m, 1)[4] = 1; /* a mask that was there before is part of the original */
    ecp_mlp_apply_mask(m);
    assert_int_equal(ecp_mlp_clone(m, &before, &err), ECP_OK);
    assert_int_equal(ecp_mlp_keep_original(m, &err), ECP_OK);
    assert_true(ecp_mlp_has_original(m));

    ecp_prune_opts po;
    ecp_prune_opts_default(&po);
    po.sparsity = 0.5;
    po.calib = 100;
    po.finetune_epochs = 1;
    po.finetune.threads = 1;
    assert_int_equal(ecp_prune(m, d, &po, NULL, &err), ECP_OK);
    assert_true(ecp_mlp_n_pruned(m) > 200);
    assert_false(tu_same_params(m, before));
    /* The copy reads back as it was. */
    assert_memory_equal(ecp_mlp_original_weights(m, 0), ecp_mlp_weights_c(before, 0),
                        40 * 12 * sizeof(float));
    assert_memory_equal(ecp_mlp_original_bias(m, 1), ecp_mlp_bias_c(before, 1), 3 * sizeof(float));
    assert_null(ecp_mlp_original_weights(m, 2));

    /* A clone carries the copy. */
    ecp_mlp *c;
    assert_int_equal(ecp_mlp_clone(m, &c, &err), ECP_OK);
    assert_true(ecp_mlp_has_original(c));
    assert_int_equal(ecp_mlp_restore_original(c, &err), ECP_OK);
    assert_true(tu_same_params(c, before));
    ecp_mlp_free(c);

    assert_int_equal(ecp_mlp_restore_original(m, &err), ECP_OK);
    assert_true(tu_same_params(m, before));
    assert_int_equal(ecp_mlp_n_pruned(m), 1);
    assert_true(ecp_mlp_has_original(m)); /* restore keeps the copy: prune again, restore again */

    ecp_mlp_drop_original(m); /* permanent */
    assert_false(ecp_mlp_has_original(m));
    assert_int_equal(ecp_mlp_restore_original(m, &err), ECP_ERR_ARG);
    ecp_mlp_drop_original(m); /* twice is harmless */
    ecp_mlp_free(before);
    ecp_mlp_free(m);
    ecp_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_created_model_is_initialised),
        cmocka_unit_test(test_validation_and_callback),
        cmocka_unit_test(test_early_stopping_keeps_best),
        cmocka_unit_test(test_train_option_errors),
        cmocka_unit_test(test_threads_restored),
        cmocka_unit_test(test_keep_and_restore_original),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
