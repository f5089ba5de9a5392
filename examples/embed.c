/* Embedding libecprune: train a classifier with a validation set and early stopping, prune it
 * with elimination-compensation while keeping the original weights, compare, go back, save and
 * reload it, and run it on the sparse engine. Only the public API, found through pkg-config:
 *
 *   cc embed.c $(pkg-config --cflags --libs ecprune) -lm -o embed
 *
 * Exits 0 when every step worked and the results agree. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <ecprune.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Three classes: which of three blocks of the 12 inputs holds the most mass. */
static ecp_dataset *make_data(int64_t n, uint64_t seed, ecp_error *err)
{
    ecp_dataset *d;
    if (ecp_dataset_create(&d, n, 12, 3, 1, err))
        return NULL;
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        double mass[3] = {0, 0, 0};
        for (int k = 0; k < 12; k++) {
            d->x[i * 12 + k] = (float)ecp_rng_uniform(&r);
            mass[k / 4] += d->x[i * 12 + k];
        }
        d->label[i] = mass[0] >= mass[1] && mass[0] >= mass[2] ? 0 : mass[1] >= mass[2] ? 1 : 2;
    }
    return d;
}

/* Per-epoch callback: logging (quiet here) and a way to cancel. */
static int on_epoch(const ecp_epoch_info *e, void *user)
{
    int *epochs = user;
    *epochs = e->epoch;
    return 0; /* nonzero would stop training after this epoch */
}

/* A classifier trained with a validation set, early stopping and a per-epoch callback. */
static ecp_status train_model(ecp_mlp **m, const ecp_dataset *train, const ecp_dataset *valid,
                              ecp_error *err)
{
    /* A new model is initialised (seeded): no separate init call needed. */
    ecp_status s = ecp_mlp_create_arch(m, "12-32-16-3", ECP_ACT_RELU, err);
    if (s)
        return s;
    ecp_train_opts to;
    ecp_train_opts_default(&to);
    to.epochs = 60;
    to.batch = 32;
    to.progress = 0;
    to.threads = 1;
    to.valid = valid;
    to.patience = 5;
    int seen = 0;
    to.on_epoch = on_epoch;
    to.user = &seen;
    ecp_train_report tr;
    if ((s = ecp_train(*m, train, &to, &tr, err)))
        return s;
    printf("trained %d epochs (best %d%s): validation accuracy %.3f\n", tr.epochs_run,
           tr.best_epoch, tr.stopped == ECP_STOP_EARLY ? ", stopped early" : "",
           tr.valid_accuracy);
    if (seen != tr.epochs_run || !(tr.valid_accuracy > 0.7))
        return ecp_fail(err, ECP_ERR_NUMERIC, "training did not learn the task");
    return ECP_OK;
}

/* Saves m, loads it back, runs it on the sparse engine and compares with ecp_predict. */
static ecp_status check_engine(const ecp_mlp *m, const ecp_dataset *test, ecp_error *err)
{
    char path[] = "/tmp/ecprune-embed-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return ecp_fail(err, ECP_ERR_IO, "cannot create a temporary file");
    close(fd);
    ecp_mlp *loaded = NULL;
    ecp_sparse_net *net = NULL;
    float *y_dense = malloc(sizeof(float) * (size_t)test->n * 3);
    float *y_sparse = malloc(sizeof(float) * (size_t)test->n * 3);
    ecp_sparse_opts so;
    ecp_sparse_opts_default(&so);
    so.threads = 1;
    ecp_status s = !y_dense || !y_sparse ? ecp_fail(err, ECP_ERR_MEMORY, "out of memory") : ECP_OK;
    if (!s && !(s = ecp_onnx_save(m, path, err)) && !(s = ecp_onnx_load(&loaded, path, err)) &&
        !(s = ecp_sparse_create(&net, loaded, &so, err)) &&
        !(s = ecp_predict(m, test, y_dense, err)))
        s = ecp_sparse_forward(net, test->x, (int)test->n, y_sparse, err);
    unlink(path);
    double maxdiff = 0;
    for (int64_t i = 0; !s && i < test->n * 3; i++)
        maxdiff = fmax(maxdiff, fabs((double)y_dense[i] - y_sparse[i]));
    if (!s) {
        printf("sparse engine: density %.2f, max |difference| %.2g\n", ecp_sparse_density(net),
               maxdiff);
        if (!(maxdiff < 1e-4))
            s = ecp_fail(err, ECP_ERR_NUMERIC, "the engine disagrees with the model");
    }
    free(y_dense);
    free(y_sparse);
    ecp_sparse_free(net);
    ecp_mlp_free(loaded);
    return s;
}

/* Prunes 80 % with EC while keeping the original, checks the engine, then goes back. */
static ecp_status prune_and_restore(ecp_mlp *m, const ecp_dataset *train,
                                    const ecp_dataset *test, ecp_error *err)
{
    ecp_eval_result dense, pruned, back;
    ecp_prune_opts po;
    ecp_prune_opts_default(&po);
    po.sparsity = 0.8;
    po.calib = 1000;
    ecp_prune_report pr;
    ecp_status s;
    if ((s = ecp_evaluate(m, test, &dense, err)) || (s = ecp_mlp_keep_original(m, err)) ||
        (s = ecp_prune(m, train, &po, &pr, err)) || (s = ecp_evaluate(m, test, &pruned, err)))
        return s;
    printf("pruned %lld of %lld weights: test accuracy %.3f -> %.3f\n", (long long)pr.pruned,
           (long long)pr.weights, dense.accuracy, pruned.accuracy);
    if (ecp_mlp_n_pruned(m) != pr.pruned || !(pruned.accuracy > 0.5))
        return ecp_fail(err, ECP_ERR_NUMERIC, "pruning lost the task");
    if ((s = check_engine(m, test, err)) || (s = ecp_mlp_restore_original(m, err)) ||
        (s = ecp_evaluate(m, test, &back, err)))
        return s;
    printf("restored: %lld pruned, test accuracy %.3f\n", (long long)ecp_mlp_n_pruned(m),
           back.accuracy);
    if (ecp_mlp_n_pruned(m) != 0 || back.accuracy != dense.accuracy)
        return ecp_fail(err, ECP_ERR_NUMERIC, "restoring did not give the model back");
    ecp_mlp_drop_original(m); /* pruning would now be permanent */
    return ECP_OK;
}

int main(void)
{
    ecp_error err = {0};
    printf("libecprune %s (header %s)\n", ecp_version(), ECP_VERSION);
    ecp_dataset *train = make_data(1500, 1, &err), *valid = make_data(300, 2, &err),
                *test = make_data(500, 3, &err);
    ecp_mlp *m = NULL;
    ecp_eval_result ev;
    int ok = strcmp(ecp_version(), ECP_VERSION) == 0 && train && valid && test &&
             !train_model(&m, train, valid, &err) && !prune_and_restore(m, train, test, &err) &&
             ecp_evaluate(m, NULL, &ev, &err) == ECP_ERR_ARG; /* bad input: an error, no crash */
    if (!ok)
        fprintf(stderr, "embed: %s\n", err.msg);
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(valid);
    ecp_dataset_free(test);
    return ok ? 0 : 1;
}
