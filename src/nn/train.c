/* Mini-batch training and evaluation. Shuffling is drawn from one seeded stream, and every
 * reduction has a fixed order, so the same seed and BLAS thread count give a bit-identical model.
 *
 * Under mpirun (ecp_dist_size() > 1) training is synchronous data parallelism: every rank draws
 * the same permutation, takes a contiguous share of each global batch, and the gradients (each
 * already scaled by 1 / global batch) are summed with one MPI_Allreduce per step, so every rank
 * takes the same optimiser step. Only the order of the float additions differs from one
 * process. Evaluation sums its loss and counts over the ranks' shares. */
#include "../internal.h"
#include "sparse_input.h"
#include <cblas.h>
#include <math.h>

void ecp_train_opts_default(ecp_train_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 128;
    o->seed = 1;
    ecp_optim_opts_default(&o->optim, ECP_OPT_ADAM);
    o->progress = 1;
}

ecp_loss ecp_dataset_loss(const ecp_dataset *d)
{
    return d && d->is_class ? ECP_LOSS_XENT : ECP_LOSS_MSE;
}

ecp_status ecp_check_fit(const ecp_mlp *m, const ecp_dataset *d, const char *model_name,
                         const char *data_name, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(d, err);
    if (ecp_mlp_n_in(m) != d->n_in)
        return ecp_fail(err, ECP_ERR_SHAPE, "%s takes %d inputs but %s has %d features",
                        model_name, ecp_mlp_n_in(m), data_name, d->n_in);
    if (ecp_mlp_n_out(m) != d->n_out)
        return ecp_fail(err, ECP_ERR_SHAPE, "%s has %d outputs but %s has %d %s", model_name,
                        ecp_mlp_n_out(m), data_name, d->n_out,
                        d->is_class ? "classes" : "targets");
    return ECP_OK;
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

/* Everything one training run holds. */
typedef struct {
    ecp_mlp *m;
    const ecp_dataset *d;
    const ecp_train_opts *o;
    int B;
    ecp_ws *ws;
    ecp_grads *g;
    ecp_optim *op;
    ecp_progress *pr;
    int64_t *perm;
    float *yb, *dy;
    int32_t *lab;
    float *best; /* the parameters of the best validation epoch (early stopping) */
    float *gbuf; /* the gradients packed for their sum across processes */
    size_t gn;
    int rank, size;
    double comm; /* seconds in the gradient sums */
    ecp_rng rng;
    double t0;
} trainer;

/* The parameters as the nn functions see them: in the training layout layer 0's weights live
 * transposed in m->w0t. A snapshot copies exactly those buffers. */
static float *param_w(ecp_mlp *m, int l) { return l == 0 && m->w0t ? m->w0t : m->layer[l].W; }

static size_t param_wn(const ecp_mlp *m, int l)
{
    return l == 0 && m->w0t ? (size_t)m->sizes[0] * (size_t)m->ld0t
                            : (size_t)m->layer[l].n_in * (size_t)m->layer[l].n_out;
}

static size_t param_count(const ecp_mlp *m)
{
    size_t n = 0;
    for (int l = 0; l < m->n_layers; l++)
        n += param_wn(m, l) + (size_t)m->layer[l].n_out;
    return n;
}

/* to_model = 0: model -> buf; 1: buf -> model. */
static void param_copy(ecp_mlp *m, float *buf, int to_model)
{
    for (int l = 0; l < m->n_layers; l++) {
        float *w = param_w(m, l), *b = m->layer[l].b;
        size_t nw = param_wn(m, l), nb = (size_t)m->layer[l].n_out;
        memcpy(to_model ? w : buf, to_model ? buf : w, nw * sizeof *w);
        buf += nw;
        memcpy(to_model ? b : buf, to_model ? buf : b, nb * sizeof *b);
        buf += nb;
    }
}

/* Training and evaluation walk the rows in any order: they need them in memory. */
static ecp_status in_memory(const ecp_dataset *d, const char *what, ecp_error *err)
{
    if (d && d->rows)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: read from its files on demand "
                        "(ecp_data_open_streamed); this needs it in memory (ecp_data_open)", what);
    return ECP_OK;
}

static ecp_status check_opts(const ecp_mlp *m, const ecp_dataset *d, const ecp_train_opts *o,
                             ecp_error *err)
{
    ecp_status s = ecp_check_fit(m, d, "model", "training data", err);
    if (!s && !(s = in_memory(d, "training data", err)))
        s = in_memory(o->valid, "validation data", err);
    if (s)
        return s;
    if (o->epochs < 0)
        return ecp_fail(err, ECP_ERR_ARG, "epochs %d: must be >= 0", o->epochs);
    if (o->batch < 1)
        return ecp_fail(err, ECP_ERR_ARG, "batch %d: must be >= 1", o->batch);
    if (o->threads < 0)
        return ecp_fail(err, ECP_ERR_ARG, "threads %d: must be >= 0 (0 = every core)",
                        o->threads);
    if (o->patience < 0)
        return ecp_fail(err, ECP_ERR_ARG, "patience %d: must be >= 0", o->patience);
    if (o->patience > 0 && !o->valid)
        return ecp_fail(err, ECP_ERR_ARG, "patience %d: needs a validation set (valid)",
                        o->patience);
    if (d->n < 1)
        return ecp_fail(err, ECP_ERR_ARG, "training data is empty");
    if (o->valid && (s = ecp_check_fit(m, o->valid, "model", "validation data", err)))
        return s;
    if (o->valid && o->valid->n < 1)
        return ecp_fail(err, ECP_ERR_ARG, "valid: the validation set is empty");
    return ECP_OK;
}

static ecp_status trainer_open(trainer *t, ecp_error *err)
{
    const ecp_dataset *d = t->d;
    ecp_status s;
    int B = t->B;
    t->perm = ecp_alloc((size_t)d->n, sizeof *t->perm, "training", err);
    t->yb = ecp_alloc((size_t)B * d->n_out, sizeof *t->yb, "training", err);
    t->dy = ecp_alloc((size_t)B * d->n_out, sizeof *t->dy, "training", err);
    t->lab = ecp_alloc((size_t)B, sizeof *t->lab, "training", err);
    if (!t->perm || !t->yb || !t->dy || !t->lab)
        return ECP_ERR_MEMORY;
    ecp_mlp_apply_mask(t->m);
    /* Data with at least 1 - ECP_SPARSE_INPUT_MAX_DENSITY zeros (mnist: 81 %) trains in the transposed
     * layer-0 layout with the sparse kernels; dense data (diffsorp) keeps the sgemm path.
     * Gradients and optimiser state follow the layout: create them after it. */
    if (1.0 - input_zero_fraction(d) <= ECP_SPARSE_INPUT_MAX_DENSITY &&
        (s = ecp_mlp_layout_begin(t->m, err)))
        return s;
    int Bl = (B + t->size - 1) / t->size; /* the largest share of a batch */
    if ((s = ecp_ws_create(&t->ws, t->m, Bl, err)) || (s = ecp_grads_create(&t->g, t->m, err)) ||
        (s = ecp_optim_create(&t->op, t->m, &t->o->optim, err)))
        return s;
    for (int l = 0; l < t->m->n_layers && t->size > 1; l++)
        t->gn += t->g->nw[l] + (size_t)t->g->nb[l];
    if (t->gn && !(t->gbuf = ecp_alloc(t->gn, sizeof *t->gbuf, "gradient sums", err)))
        return ECP_ERR_MEMORY;
    if (t->o->patience > 0 &&
        !(t->best = ecp_alloc(param_count(t->m), sizeof(float), "early stopping", err)))
        return ECP_ERR_MEMORY;
    if (((t->o->progress && t->rank == 0) || t->o->progress_fn) &&
        (s = ecp_progress_create(&t->pr, "train", (int64_t)t->o->epochs * d->n, err)))
        return s;
    ecp_progress_set_callback(t->pr, t->o->progress_fn, t->o->progress_ctx);
    /* Backward writes the gradients (no ecp_grads_zero pass over 266k floats per step). */
    t->ws->grad_overwrite = 1;
    /* The sparse kernels use as many threads as OpenBLAS; their results do not depend on the
     * count. */
    t->ws->input.threads = openblas_get_num_threads();
    ecp_optim_use_threads(t->op, t->ws);
    ecp_rng_seed(&t->rng, t->o->seed);
    t->t0 = ecp_now();
    return ECP_OK;
}

static void trainer_close(trainer *t)
{
    ecp_mlp_layout_end(t->m); /* W of layer 0 back from the training layout (if it was on) */
    ecp_progress_free(t->pr);
    ecp_optim_free(t->op);
    ecp_grads_free(t->g);
    ecp_ws_free(t->ws);
    free(t->perm);
    free(t->yb);
    free(t->dy);
    free(t->lab);
    free(t->best);
    free(t->gbuf);
}

/* Gradient buckets of at most 4 Mi floats (16 MB): one MPI_Allreduce per step for networks of
 * up to 4 M parameters, and no int count overflow beyond. */
#define GRAD_BUCKET ((size_t)1 << 22)

/* Sums the gradients over the ranks (packed, so one call covers every layer). */
static ecp_status sum_grads(trainer *t, ecp_error *err)
{
    if (t->size == 1)
        return ECP_OK;
    ecp_grads *g = t->g;
    float *p = t->gbuf;
    for (int l = 0; l < g->n_layers; l++) {
        memcpy(p, g->dW[l], g->nw[l] * sizeof *p);
        memcpy(p + g->nw[l], g->db[l], (size_t)g->nb[l] * sizeof *p);
        p += g->nw[l] + (size_t)g->nb[l];
    }
    double t0 = ecp_now();
    ecp_status s = ecp_dist_sum_f32(t->gbuf, t->gn, GRAD_BUCKET, err);
    t->comm += ecp_now() - t0;
    p = t->gbuf;
    for (int l = 0; l < g->n_layers && !s; l++) {
        memcpy(g->dW[l], p, g->nw[l] * sizeof *p);
        memcpy(g->db[l], p + g->nw[l], (size_t)g->nb[l] * sizeof *p);
        p += g->nw[l] + (size_t)g->nb[l];
    }
    return s;
}

/* This rank's share of the global batch of b samples starting at `at` of the permutation:
 * [*lo, *lo + return). */
static int batch_share(const trainer *t, int b, int *lo)
{
    *lo = (int)((int64_t)b * t->rank / t->size);
    return (int)((int64_t)b * (t->rank + 1) / t->size) - *lo;
}

/* One step on this rank's share; returns its summed loss in *loss. */
static ecp_status train_step(trainer *t, int64_t at, int b, double *loss, ecp_error *err)
{
    const ecp_dataset *d = t->d;
    int lo, bl = batch_share(t, b, &lo);
    if (bl > 0) {
        /* Straight into the workspace's input (forward would copy it there). */
        ecp_status gs = ecp_dataset_gather(d, t->perm + at + lo, bl, t->ws->a[0], t->yb,
                                           t->lab, err);
        if (gs)
            return gs;
        ecp_mlp_forward(t->m, t->ws, t->ws->a[0], bl);
        /* Scaled by the global batch: the ranks' gradients add up to the batch's. */
        *loss += ecp_loss_eval(ecp_dataset_loss(d), ecp_ws_output(t->ws), t->yb, t->lab, bl,
                               d->n_out, 1.0f / b, t->dy);
        ecp_mlp_backward(t->m, t->ws, t->dy, bl, t->g);
    } else {
        ecp_grads_zero(t->g);
    }
    ecp_status s = sum_grads(t, err);
    if (!s)
        ecp_optim_step(t->op, t->m, t->g);
    return s;
}

static void show_progress(trainer *t, int e, int64_t at, int b, double sum)
{
    char extra[96];
    double el = ecp_now() - t->t0;
    int64_t done = (int64_t)e * t->d->n + at + b, mine = (at + b) / t->size;
    snprintf(extra, sizeof extra, "epoch %d/%d  loss %.4f  %.0f samples/s", e + 1, t->o->epochs,
             mine > 0 ? sum / (double)mine : 0.0, el > 0 ? done / el : 0.0);
    ecp_progress_update(t->pr, done, extra);
}

/* One pass over the shuffled training set; the mean loss of the epoch in *loss (the progress
 * line shows this rank's share of it). */
static ecp_status train_epoch(trainer *t, int e, double *loss, ecp_error *err)
{
    const ecp_dataset *d = t->d;
    int B = t->B;
    ecp_rng_permutation(&t->rng, t->perm, d->n);
    double sum = 0;
    ecp_status s = ECP_OK;
    for (int64_t at = 0; at < d->n && !s; at += B) {
        int b = (int)(d->n - at < B ? d->n - at : B);
        s = train_step(t, at, b, &sum, err);
        if (t->pr)
            show_progress(t, e, at, b, sum);
    }
    if (!s)
        s = ecp_dist_sum(&sum, 1, err);
    *loss = sum / (double)d->n;
    return s;
}

/* The validation set through the training workspace (the model may be in the training layout,
 * which only the nn functions understand). */
static ecp_status validate(trainer *t, ecp_eval_result *r, ecp_error *err)
{
    const ecp_dataset *v = t->o->valid;
    ecp_eval_acc acc = {0};
    int64_t lo, hi, Bl = t->ws->cap;
    ecp_dist_shard(v->n, &lo, &hi);
    for (int64_t at = lo; at < hi; at += Bl) {
        int b = (int)(hi - at < Bl ? hi - at : Bl);
        ecp_mlp_forward(t->m, t->ws, v->x + (size_t)at * v->n_in, b);
        ecp_eval_accumulate(v, at, b, ecp_ws_output(t->ws), &acc);
    }
    ecp_status s = ecp_eval_acc_sum(&acc, err);
    ecp_eval_finish(v, &acc, r);
    return s;
}

/* Keeps the best validation epoch; returns 1 when it improved. */
static int track_best(trainer *t, const ecp_eval_result *vr, int e, ecp_train_report *rep)
{
    /* The first epoch is always the best so far, even with a NaN validation loss. */
    if (e > 0 && !(vr->loss < rep->valid_loss))
        return 0;
    rep->valid_loss = vr->loss;
    rep->valid_accuracy = vr->accuracy;
    rep->best_epoch = e + 1;
    if (t->best)
        param_copy(t->m, t->best, 0);
    return 1;
}

/* The callback decides on rank 0; the others follow, so every rank stops at the same epoch.
 * Rank 0's parameters go to all at each epoch's end: MPI does not promise that every rank gets
 * bit-identical float sums (it does for 2 ranks), and this keeps the models identical. */
static ecp_status epoch_end(trainer *t, ecp_epoch_info *info, int *stop, ecp_error *err)
{
    const ecp_train_opts *o = t->o;
    double flag = t->rank == 0 && o->on_epoch && o->on_epoch(info, o->user);
    ecp_status s = ecp_dist_max(&flag, err);
    *stop = flag != 0;
    if (s || t->size == 1)
        return s;
    for (int l = 0; l < t->m->n_layers && !s; l++)
        if (!(s = ecp_dist_bcast(param_w(t->m, l), param_wn(t->m, l) * sizeof(float), 0, err)))
            s = ecp_dist_bcast(t->m->layer[l].b, (size_t)t->m->layer[l].n_out * sizeof(float),
                               0, err);
    return s;
}

static ecp_status train_loop(trainer *t, ecp_train_report *rep, ecp_error *err)
{
    const ecp_train_opts *o = t->o;
    int since_best = 0, stop = 0;
    ecp_status s = ECP_OK;
    for (int e = 0; e < o->epochs && !s && !stop; e++) {
        ecp_epoch_info info = {e + 1, o->epochs, NAN, NAN, -1, 0};
        if ((s = train_epoch(t, e, &info.train_loss, err)))
            break;
        rep->final_loss = info.train_loss;
        rep->epochs_run = e + 1;
        if (!isfinite(info.train_loss))
            return ecp_fail(err, ECP_ERR_NUMERIC,
                            "training diverged in epoch %d (loss is %g): lower the learning rate",
                            e + 1, info.train_loss);
        if (!o->valid) {
            rep->best_epoch = e + 1;
        } else {
            ecp_eval_result vr;
            if ((s = validate(t, &vr, err)))
                break;
            info.valid_loss = vr.loss;
            info.valid_accuracy = vr.accuracy;
            since_best = track_best(t, &vr, e, rep) ? 0 : since_best + 1;
        }
        info.seconds = ecp_now() - t->t0;
        s = epoch_end(t, &info, &stop, err);
        if (stop)
            rep->stopped = ECP_STOP_CALLBACK;
        else if (o->patience > 0 && since_best >= o->patience) {
            rep->stopped = ECP_STOP_EARLY;
            stop = 1;
        }
    }
    if (!s && t->best && rep->best_epoch > 0 && rep->best_epoch < rep->epochs_run)
        param_copy(t->m, t->best, 1);
    return s;
}

ecp_status ecp_train(ecp_mlp *m, const ecp_dataset *d, const ecp_train_opts *o,
                     ecp_train_report *rep, ecp_error *err)
{
    if (!m || !d || !o)
        return ecp_fail(err, ECP_ERR_ARG, "ecp_train: model, data and options are required");
    ecp_status s = check_opts(m, d, o, err);
    if (s)
        return s;
    ecp_train_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->final_loss = NAN;
    rep->valid_loss = NAN;
    rep->valid_accuracy = -1;
    int prev_threads = ecp_blas_threads_push(o->threads);
    trainer t = {.m = m, .d = d, .o = o, .B = o->batch < d->n ? o->batch : (int)d->n,
                 .rank = ecp_dist_rank(), .size = ecp_dist_size()};
    /* a rank that could not allocate stops all before the first sum */
    if (!(s = ecp_dist_agree(trainer_open(&t, err), err)))
        s = ecp_dist_agree(train_loop(&t, rep, err), err);
    if (!s) {
        rep->seconds = ecp_now() - t.t0;
        rep->comm_seconds = t.comm;
        rep->samples_per_s =
            rep->seconds > 0 ? (double)rep->epochs_run * (double)d->n / rep->seconds : 0;
    }
    trainer_close(&t);
    ecp_blas_threads_pop(prev_threads);
    return s;
}

#define EVAL_BATCH 1024

void ecp_eval_accumulate(const ecp_dataset *d, int64_t at, int b, const float *y,
                         ecp_eval_acc *acc)
{
    if (!d || !y || !acc)
        return;
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

ecp_status ecp_eval_acc_sum(ecp_eval_acc *acc, ecp_error *err)
{
    if (ecp_dist_size() == 1)
        return ECP_OK;
    /* counts below 2^53 are exact in double */
    double v[3] = {acc->loss_sum, (double)acc->correct, (double)acc->n};
    ecp_status s = ecp_dist_sum(v, 3, err);
    acc->loss_sum = v[0];
    acc->correct = (int64_t)v[1];
    acc->n = (int64_t)v[2];
    return s;
}

void ecp_eval_finish(const ecp_dataset *d, const ecp_eval_acc *acc, ecp_eval_result *out)
{
    if (!d || !acc || !out)
        return;
    out->n = acc->n;
    out->loss = acc->n ? acc->loss_sum / (double)acc->n : 0;
    out->accuracy = d->is_class && acc->n ? (double)acc->correct / (double)acc->n : -1;
}

/* Runs the network over d in batches: loss, accuracy and (if pred) the outputs. Without pred,
 * each rank takes its share of the samples and the sums are added across ranks. */
static ecp_status eval_pass(const ecp_mlp *m, const ecp_dataset *d, ecp_eval_result *res,
                            float *pred, ecp_error *err)
{
    ecp_status s = ecp_check_fit(m, d, "model", "data", err);
    if (!s)
        s = in_memory(d, "data", err);
    int64_t lo = 0, hi = d->n;
    if (!pred)
        ecp_dist_shard(d->n, &lo, &hi);
    int B = hi - lo < EVAL_BATCH ? (int)(hi - lo > 0 ? hi - lo : 1) : EVAL_BATCH;
    ecp_ws *ws = NULL;
    if (!s)
        s = ecp_ws_create(&ws, m, B, err);
    if (!pred && (s = ecp_dist_agree(s, err)))
        return s;
    if (s)
        return s;
    ecp_eval_acc acc = {0};
    int K = d->n_out;
    for (int64_t at = lo; at < hi; at += B) {
        int b = (int)(hi - at < B ? hi - at : B);
        ecp_mlp_forward(m, ws, d->x + (size_t)at * d->n_in, b);
        const float *y = ecp_ws_output(ws);
        if (pred)
            memcpy(pred + (size_t)at * K, y, (size_t)b * K * sizeof *y);
        ecp_eval_accumulate(d, at, b, y, &acc);
    }
    ecp_ws_free(ws);
    if (!pred)
        s = ecp_eval_acc_sum(&acc, err);
    if (res)
        ecp_eval_finish(d, &acc, res);
    return s;
}

ecp_status ecp_evaluate(const ecp_mlp *m, const ecp_dataset *d, ecp_eval_result *out,
                        ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(d, err);
    return eval_pass(m, d, out, NULL, err);
}

ecp_status ecp_predict(const ecp_mlp *m, const ecp_dataset *d, float *out, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(d, err);
    ECP_REQUIRE(out, err);
    ecp_status s = eval_pass(m, d, NULL, out, err);
    if (!s)
        ecp_out_transform_apply(ecp_mlp_output_transform(m), out, d->n, d->n_out);
    return s;
}
