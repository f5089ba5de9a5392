/* Mini-batch training and evaluation. Shuffling is drawn from one seeded stream, and every
 * reduction has a fixed order, so the same seed and BLAS thread count give a bit-identical model. */
#include "../internal.h"
#include "sparse_input.h"
#include <cblas.h>
#include <math.h>

void ecp_train_opts_default(ecp_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 128;
    o->seed = 1;
    ecp_optim_opts_default(&o->optim, ECP_OPT_ADAM);
    o->progress = 1;
}

ecp_loss ecp_dataset_loss(const ecp_dataset *d) { return d->is_class ? ECP_LOSS_XENT : ECP_LOSS_MSE; }

ecp_status ecp_check_fit(const ecp_mlp *m, const ecp_dataset *d, const char *model_name,
                         const char *data_name, ecp_error *err)
{
    if (ecp_mlp_n_in(m) != d->n_in)
        return ecp_fail(err, ECP_ERR_SHAPE, "%s takes %d inputs but %s has %d features",
                        model_name, ecp_mlp_n_in(m), data_name, d->n_in);
    if (ecp_mlp_n_out(m) != d->n_out)
        return ecp_fail(err, ECP_ERR_SHAPE, "%s has %d outputs but %s has %d %s", model_name,
                        ecp_mlp_n_out(m), data_name, d->n_out,
                        d->is_class ? "classes" : "targets");
    return ECP_OK;
}

/* Copies rows idx[0..b-1] of d into contiguous batch buffers. */
static void gather(const ecp_dataset *d, const int64_t *idx, int b, float *x, float *y,
                   int32_t *lab)
{
    for (int i = 0; i < b; i++) {
        memcpy(x + (size_t)i * d->n_in, d->x + (size_t)idx[i] * d->n_in,
               (size_t)d->n_in * sizeof *x);
        if (d->is_class)
            lab[i] = d->label[idx[i]];
        else
            memcpy(y + (size_t)i * d->n_out, d->y + (size_t)idx[i] * d->n_out,
                   (size_t)d->n_out * sizeof *y);
    }
}

/* Fraction of exact zeros among the inputs of the first (up to) 2,048 samples: decides whether
 * training runs in the layout made for sparse inputs (sparse_input.h). The per-batch choice of
 * kernel is made again from each batch's own density. */
static double input_zero_fraction(const ecp_dataset *d)
{
    int64_t rows = d->n < 2048 ? d->n : 2048, zeros = 0;
    size_t nv = (size_t)rows * d->n_in;
    for (size_t i = 0; i < nv; i++)
        zeros += d->x[i] == 0.0f;
    return nv ? (double)zeros / (double)nv : 0;
}

ecp_status ecp_train(ecp_mlp *m, const ecp_dataset *d, const ecp_train_opts *o,
                     ecp_train_report *rep, ecp_error *err)
{
    ecp_status s = ecp_check_fit(m, d, "model", "training data", err);
    if (s)
        return s;
    if (o->epochs < 0 || o->batch < 1)
        return ecp_fail(err, ECP_ERR_ARG, "epochs must be >= 0 and batch >= 1");
    if (d->n < 1)
        return ecp_fail(err, ECP_ERR_ARG, "training data is empty");
    int B = o->batch < d->n ? o->batch : (int)d->n;
    ecp_ws *ws = NULL;
    ecp_grads *g = NULL;
    ecp_optim *op = NULL;
    ecp_progress *pr = NULL;
    int64_t *perm = ecp_alloc((size_t)d->n, sizeof *perm, "training", err);
    float *yb = ecp_alloc((size_t)B * d->n_out, sizeof *yb, "training", err);
    float *dy = ecp_alloc((size_t)B * d->n_out, sizeof *dy, "training", err);
    int32_t *lab = ecp_alloc((size_t)B, sizeof *lab, "training", err);
    if (!perm || !yb || !dy || !lab) {
        s = ECP_ERR_MEMORY;
        goto done;
    }
    ecp_mlp_apply_mask(m);
    /* Data with at least 1 - ECP_SPIN_MAX_DENSITY zeros (mnist: 81 %) trains in the transposed
     * layer-0 layout with the sparse kernels; dense data (diffsorp) keeps the sgemm path.
     * Gradients and optimiser state follow the layout: create them after it. */
    if (1.0 - input_zero_fraction(d) <= ECP_SPIN_MAX_DENSITY &&
        (s = ecp_mlp_layout_begin(m, err)))
        goto done;
    if ((s = ecp_ws_create(&ws, m, B, err)) || (s = ecp_grads_create(&g, m, err)) ||
        (s = ecp_optim_create(&op, m, &o->optim, err)))
        goto done;
    if ((o->progress || o->progress_fn) &&
        (s = ecp_progress_create(&pr, "train", (int64_t)o->epochs * d->n, err)))
        goto done;
    ecp_progress_set_callback(pr, o->progress_fn, o->progress_ctx);
    /* Backward writes the gradients (no ecp_grads_zero pass over 266k floats per step). */
    ws->grad_overwrite = 1;
    /* The sparse kernels use as many threads as OpenBLAS (--threads); their results do not
     * depend on the count. */
    ws->sp_threads = openblas_get_num_threads();
    ecp_optim_use_threads(op, ws);
    ecp_rng rng;
    ecp_rng_seed(&rng, o->seed);
    ecp_loss lk = ecp_dataset_loss(d);
    double t0 = ecp_now(), epoch_loss = NAN;
    for (int e = 0; e < o->epochs; e++) {
        ecp_rng_permutation(&rng, perm, d->n);
        double sum = 0;
        for (int64_t at = 0; at < d->n; at += B) {
            int b = (int)(d->n - at < B ? d->n - at : B);
            /* Straight into the workspace's input (forward would copy it there). Building the
             * CSR straight from the dataset's rows instead was measured: the gather's 5 % of a
             * step moved into the CSR build (+5 %): fetching the rows is the cost, not the
             * copy. Software prefetch of the next rows, or splitting the copy over the
             * threads, did not help either (within the noise of this shared machine). */
            gather(d, perm + at, b, ws->a[0], yb, lab);
            ecp_mlp_forward(m, ws, ws->a[0], b);
            sum += ecp_loss_eval(lk, ecp_ws_output(ws), yb, lab, b, d->n_out, 1.0f / b, dy);
            ecp_mlp_backward(m, ws, dy, b, g);
            ecp_optim_step(op, m, g);
            if (pr) {
                char extra[96];
                double el = ecp_now() - t0;
                int64_t done = (int64_t)e * d->n + at + b;
                snprintf(extra, sizeof extra, "epoch %d/%d  loss %.4f  %.0f samples/s", e + 1,
                         o->epochs, sum / (double)(at + b), el > 0 ? done / el : 0.0);
                ecp_progress_update(pr, done, extra);
            }
        }
        epoch_loss = sum / (double)d->n;
        if (!isfinite(epoch_loss)) {
            s = ecp_fail(err, ECP_ERR_NUMERIC,
                         "training diverged in epoch %d (loss is %g): lower the learning rate",
                         e + 1, epoch_loss);
            goto done;
        }
    }
    if (rep) {
        rep->final_loss = epoch_loss;
        rep->seconds = ecp_now() - t0;
        rep->samples_per_s =
            rep->seconds > 0 ? (double)o->epochs * (double)d->n / rep->seconds : 0;
    }
done:
    ecp_mlp_layout_end(m); /* W of layer 0 back from the training layout (if it was on) */
    ecp_progress_free(pr);
    ecp_optim_free(op);
    ecp_grads_free(g);
    ecp_ws_free(ws);
    free(perm);
    free(yb);
    free(dy);
    free(lab);
    return s;
}

#define EVAL_BATCH 1024

void ecp_eval_accumulate(const ecp_dataset *d, int64_t at, int b, const float *y,
                         ecp_eval_acc *acc)
{
    int K = d->n_out;
    acc->loss_sum += ecp_loss_eval(ecp_dataset_loss(d), y, d->y ? d->y + (size_t)at * K : NULL,
                                   d->label ? d->label + at : NULL, b, K, 0, NULL);
    acc->n += b;
    if (!d->is_class)
        return;
    for (int n = 0; n < b; n++) {
        const float *yn = y + (size_t)n * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (yn[k] > yn[best])
                best = k;
        acc->correct += best == d->label[at + n];
    }
}

void ecp_eval_finish(const ecp_dataset *d, const ecp_eval_acc *acc, ecp_eval_result *out)
{
    out->n = acc->n;
    out->loss = acc->n ? acc->loss_sum / (double)acc->n : 0;
    out->accuracy = d->is_class && acc->n ? (double)acc->correct / (double)acc->n : -1;
}

/* Runs the network over d in batches: loss, accuracy and (if pred) the outputs. */
static ecp_status eval_pass(const ecp_mlp *m, const ecp_dataset *d, ecp_eval_result *res,
                            float *pred, ecp_error *err)
{
    ecp_status s = ecp_check_fit(m, d, "model", "data", err);
    if (s)
        return s;
    int B = d->n < EVAL_BATCH ? (int)(d->n > 0 ? d->n : 1) : EVAL_BATCH;
    ecp_ws *ws = NULL;
    if ((s = ecp_ws_create(&ws, m, B, err)))
        return s;
    ecp_eval_acc acc = {0};
    int K = d->n_out;
    for (int64_t at = 0; at < d->n; at += B) {
        int b = (int)(d->n - at < B ? d->n - at : B);
        ecp_mlp_forward(m, ws, d->x + (size_t)at * d->n_in, b);
        const float *y = ecp_ws_output(ws);
        if (pred)
            memcpy(pred + (size_t)at * K, y, (size_t)b * K * sizeof *y);
        ecp_eval_accumulate(d, at, b, y, &acc);
    }
    ecp_ws_free(ws);
    if (res)
        ecp_eval_finish(d, &acc, res);
    return ECP_OK;
}

ecp_status ecp_evaluate(const ecp_mlp *m, const ecp_dataset *d, ecp_eval_result *out,
                        ecp_error *err)
{
    return eval_pass(m, d, out, NULL, err);
}

ecp_status ecp_predict(const ecp_mlp *m, const ecp_dataset *d, float *out, ecp_error *err)
{
    return eval_pass(m, d, NULL, out, err);
}
