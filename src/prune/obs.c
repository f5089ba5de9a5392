/* Reconstruction pruning: Optimal Brain Surgeon in the column sweep of SparseGPT (Frantar &
 * Alistarh 2023), on rows augmented with the bias.
 *
 * For layer l every row i is w~ = [W_i | b_i] acting on a~ = [a | 1]. Removing a set of weights
 * and re-fitting the others to keep z_i on the calibration set is least squares on
 * H = sum_n r_n a~ a~^T. The sweep eliminates columns left to right with the upper Cholesky
 * factor U of H^-1 (H^-1 = U^T U): removing w_j costs w_j^2 / U_jj^2 and moves the columns to
 * its right by -(w_j / U_jj) U_j,. The bias is the last column and is never removed, so it
 * receives every update; were every other column frozen, its update would be EC's delta*.
 * Layers are done in order on the network as pruned so far (sequential), so layer l is fitted
 * to the inputs it will really see. The mask is chosen per block of columns on the weights as
 * updated by the blocks before (SparseGPT's adaptive selection), with the layer's count split
 * evenly over the blocks.
 *
 * ec-obs weighs samples and rows by EC's sensitivity (ecp_obs_weighting in ecprune.h) and
 * takes the per-layer counts from a global EC selection (ecp_prune_allocate). */
#include "prune.h"
#include "../core/lapack.h"
#include <cblas.h>
#include <math.h>

#define OBS_BATCH ECP_STATS_BATCH

/* What the method name and options ask of the sweep. */
typedef struct {
    ecp_obs_weighting wt;
    int block; /* columns per mask choice */
    int even;  /* SparseGPT's split: every block removes the same fraction */
    int refit; /* 1 always, 0 when cheap, -1 never */
    int correct; /* fit to the original network's outputs, not the original weights' */
} obs_cfg;

static obs_cfg obs_config(const ecp_prune_opts *o)
{
    int sgpt = !strcmp(o->method, "sparsegpt");
    obs_cfg c = {.wt = strcmp(o->method, "ec-obs") ? ECP_OBSW_NONE : o->weighting,
                 .block = o->block > 0 ? o->block : sgpt ? 128 : 16,
                 .even = sgpt,
                 .refit = o->refit ? o->refit : sgpt ? -1 : 0,
                 .correct = !sgpt};
    return c;
}

typedef struct {
    int l, rows, cols;  /* cols = n_in + 1: the bias is the last column */
    obs_cfg cfg;
    double *H;          /* cols x cols; H^-1 after obs_inverse, then U (obs_upper) */
    double *W;          /* rows x cols: [W | b] in double */
    double *Hd;         /* cols x cols: H + lambda I, kept for the final re-fit */
    double *C;          /* cols x cols: sum_n r_n a~ a~0^T against the original network's
                           inputs a~0 (only when layers before were pruned), else NULL */
    double *X0;         /* OBS_BATCH x cols: sqrt(r_n) [a0_n | 1] */
    double lambda;      /* the damping added to H's diagonal */
    double *G;          /* rows x cols: the original rows times Hd (the re-fit's right side) */
    int *keep;          /* cols: the kept columns of one row */
    double *rscale;     /* rows: c_i, the weight of row i's removal costs */
    double *Err;        /* rows x obs_lazy(block): scaled errors awaiting the lazy GEMM */
    double *X;          /* OBS_BATCH x cols: sqrt(r_n) [a_n | 1] */
    struct cand { double score; int64_t idx; } *cand; /* rows x n_in */
    int64_t *quota;     /* per block of columns: weights it removes */
} obs_layer;

static void obs_layer_free(obs_layer *L)
{
    free(L->H);
    free(L->W);
    free(L->Hd);
    free(L->C);
    free(L->X0);
    free(L->G);
    free(L->keep);
    free(L->rscale);
    free(L->Err);
    free(L->X);
    free(L->cand);
    free(L->quota);
}

/* Columns whose updates to the right are carried by one GEMM: the mask is chosen per `block`
 * columns (small blocks follow the updated weights closely), the far updates batched. */
static int obs_lazy(int block) { return block >= 128 ? block : 128 / block * block; }

/* Bytes one layer's reconstruction holds at once. */
static int64_t obs_bytes(int rows, int cols, int block)
{
    return 8 * (3 * (int64_t)cols * cols + 2 * (int64_t)rows * cols + OBS_BATCH * (int64_t)cols +
                (int64_t)rows * obs_lazy(block) +
                (int64_t)OBS_BATCH * cols + (int64_t)rows + cols / block + 1) +
           (int64_t)(sizeof(struct cand) + 1) * rows * (cols - 1);
}

/* Refuses a layer whose reconstruction would not fit in o->max_memory (or the memory budget),
 * naming it. */
static ecp_status obs_check_memory(int l, int rows, int cols, const ecp_prune_opts *o,
                                   ecp_error *err)
{
    int64_t need = obs_bytes(rows, cols, obs_config(o).block);
    uint64_t budget = o->max_memory > 0 ? (uint64_t)o->max_memory : ecp_max_memory();
    if ((uint64_t)need <= budget)
        return ECP_OK;
    char n[32], b[32];
    ecp_format_bytes((uint64_t)need, n, sizeof n);
    ecp_format_bytes(budget, b, sizeof b);
    return ecp_fail(err, ECP_ERR_MEMORY, "layer %d (%d x %d): reconstruction needs %s, over %s "
                    "(max_memory, or the memory budget)", l, rows, cols - 1, n, b);
}

static ecp_status obs_layer_alloc(obs_layer *L, const ecp_mlp *m, int l, int with_c,
                                  const ecp_prune_opts *o, ecp_error *err)
{
    memset(L, 0, sizeof *L);
    L->l = l;
    L->rows = m->layer[l].n_out;
    L->cols = m->layer[l].n_in + 1;
    L->cfg = obs_config(o);
    ecp_status s = obs_check_memory(l, L->rows, L->cols, o, err);
    if (s)
        return s;
    size_t c = (size_t)L->cols, r = (size_t)L->rows, B = (size_t)L->cfg.block;
    if (!(L->H = ecp_alloc(c * c, sizeof(double), "reconstruction", err)) ||
        !(L->W = ecp_alloc(r * c, sizeof(double), "reconstruction", err)) ||
        !(L->Hd = ecp_alloc(c * c, sizeof(double), "reconstruction", err)) ||
        !(L->G = ecp_alloc(r * c, sizeof(double), "reconstruction", err)) ||
        !(L->keep = ecp_alloc(c, sizeof(int), "reconstruction", err)) ||
        !(L->rscale = ecp_alloc(r, sizeof(double), "reconstruction", err)) ||
        !(L->Err = ecp_alloc(r * (size_t)obs_lazy(L->cfg.block), sizeof(double), "reconstruction",
                             err)) ||
        !(L->X = ecp_alloc((size_t)OBS_BATCH * c, sizeof(double), "reconstruction", err)) ||
        !(L->cand = ecp_alloc(r * (c - 1), sizeof *L->cand, "reconstruction", err)) ||
        !(L->quota = ecp_alloc(c / B + 1, sizeof *L->quota, "reconstruction", err)) ||
        (with_c && !(L->C = ecp_alloc(c * c, sizeof(double), "reconstruction", err))) ||
        (with_c && !(L->X0 = ecp_alloc((size_t)OBS_BATCH * c, sizeof(double), "reconstruction",
                                       err)))) {
        obs_layer_free(L);
        return ECP_ERR_MEMORY;
    }
    return ECP_OK;
}

/* sqrt(r) [a | 1] for the b samples of a batch, into X. */
static void obs_rows(double *X, const float *a, const double *q, int b, int ni)
{
    for (int n = 0; n < b; n++) {
        double *x = X + (size_t)n * (ni + 1);
        for (int j = 0; j < ni; j++)
            x[j] = q[n] * a[(size_t)n * ni + j];
        x[ni] = q[n];
    }
}

/* The inputs of the layer being pruned for the calibration samples this process sums, of the
 * network as pruned so far (a) and of the original network (a0), carried from layer to layer:
 * each layer then costs one layer's forward instead of a pass through the whole network (two,
 * with the original's). When the samples are weighted, the sensitivities still need the layers
 * above, but the forward starts from a instead of the samples. NULL where they are streamed
 * instead: when they would not fit in OBS_CACHE_MAX or a quarter of the memory budget. */
#define OBS_CACHE_MAX ((int64_t)256 << 20)
typedef struct {
    int64_t at, n;    /* the samples [at, at + n) */
    const float *a, *a0;
    float *x;         /* a copy of the samples when they are not in memory as one array */
    float *buf[2][2]; /* [a, a0][ping-pong]: the layers after the first */
    int turn;
} obs_cache;

static void obs_cache_free(obs_cache *c)
{
    for (int i = 0; i < 4; i++)
        free(c->buf[i / 2][i % 2]);
    free(c->x);
    memset(c, 0, sizeof *c);
}

/* Copies c's samples from a dataset whose rows come a chunk at a time; NULL if that fails (the
 * streamed pass will then meet and report the same failure). */
static const float *obs_cache_copy(obs_cache *c, const ecp_dataset *calib)
{
    int64_t C = ecp_dataset_chunk_rows(calib);
    size_t row = (size_t)calib->n_in;
    if (!(c->x = ecp_alloc((size_t)c->n * row, sizeof(float), "reconstruction", NULL)))
        return NULL;
    for (int64_t k = 0; k < c->n; k += C) {
        ecp_dataset cx;
        if (ecp_dataset_rows(calib, c->at + k, c->n - k < C ? c->n - k : C, &cx, NULL))
            return NULL;
        memcpy(c->x + (size_t)k * row, cx.x, (size_t)cx.n * row * sizeof(float));
    }
    return c->x;
}

/* Sets c up for layer 0 (whose inputs are the samples themselves), or leaves it empty. */
static void obs_cache_init(obs_cache *c, const ecp_mlp *m, const ecp_dataset *calib,
                           const obs_cfg *cfg, const ecp_prune_opts *o)
{
    memset(c, 0, sizeof *c);
    int64_t b0, b1, width = 0;
    ecp_dist_shard((calib->n + OBS_BATCH - 1) / OBS_BATCH, &b0, &b1);
    c->at = b0 * OBS_BATCH;
    c->n = (b1 * OBS_BATCH < calib->n ? b1 * OBS_BATCH : calib->n) - c->at;
    for (int l = 1; l < m->n_layers; l++)
        width = m->layer[l].n_in > width ? m->layer[l].n_in : width;
    int streams = 1 + cfg->correct;
    uint64_t budget = o->max_memory > 0 ? (uint64_t)o->max_memory : ecp_max_memory();
    double need = 8.0 * streams * (double)(c->n > 0 ? c->n : 0) * (double)width +
                  (calib->x ? 0 : 4.0 * (double)(c->n > 0 ? c->n : 0) * calib->n_in);
    if (c->n <= 0 || need > (double)OBS_CACHE_MAX || need > budget / 4.0)
        return;
    const float *x0 = calib->x ? calib->x + (size_t)c->at * calib->n_in : NULL;
    if (!x0 && !(x0 = obs_cache_copy(c, calib))) {
        obs_cache_free(c);
        return;
    }
    for (int s = 0; s < 2; s++) {
        if (s == 1 && !cfg->correct)
            continue;
        for (int t = 0; t < 2 && m->n_layers > 1; t++)
            if (!(c->buf[s][t] = ecp_alloc((size_t)c->n * (size_t)width, sizeof(float),
                                           "reconstruction", NULL))) {
                obs_cache_free(c);
                return;
            }
        *(s ? &c->a0 : &c->a) = x0;
    }
}

/* From layer l's inputs to layer l + 1's, through m's layer l (pruned) and orig's. */
static void obs_cache_next(obs_cache *c, const ecp_mlp *m, const ecp_mlp *orig, int l)
{
    if (c->a) {
        ecp_layer_forward(&m->layer[l], c->a, c->buf[0][c->turn], (int)c->n);
        c->a = c->buf[0][c->turn];
    }
    if (c->a0) {
        ecp_layer_forward(&orig->layer[l], c->a0, c->buf[1][c->turn], (int)c->n);
        c->a0 = c->buf[1][c->turn];
    }
    c->turn ^= 1;
}

/* For the b samples of a batch with sensitivities S (NULL: unweighted): r_n = mean_i s_in
 * added to *rsum, q_n = sqrt(r_n) when samples are weighted (else 1), sum_n s_in added to
 * L->rscale. */
static void obs_batch_weights(obs_layer *L, const float *S, int b, int sample_w, double *q,
                              double *rsum)
{
    int no = L->rows;
    for (int n = 0; n < b; n++) {
        double r = 1;
        if (S) {
            double t = 0;
            for (int i = 0; i < no; i++) {
                t += S[(size_t)n * no + i];
                L->rscale[i] += S[(size_t)n * no + i];
            }
            r = t / no;
        }
        *rsum += r;
        q[n] = sample_w ? sqrt(r) : 1.0;
    }
}

/* H = sum_n r_n a~ a~^T over the calibration set on the current network, the row weights c_i,
 * with r_n = mean_i s_in and c_i = sum_n s_in / sum_n r_n (both 1 without weighting), and,
 * when orig is given, C = sum_n r_n a~ a~0^T against the inputs a~0 that the original network
 * gives the layer. */
static ecp_status obs_hessian(obs_layer *L, const ecp_mlp *m, const ecp_mlp *orig,
                              const ecp_dataset *calib, ecp_obs_weighting wt,
                              const obs_cache *c, const ecp_prune_opts *o, uint64_t seed,
                              ecp_error *err)
{
    int ni = L->cols - 1, no = L->rows, cols = L->cols;
    int sample_w = wt == ECP_OBSW_SAMPLE || wt == ECP_OBSW_RANK1;
    int row_w = wt == ECP_OBSW_ROW || wt == ECP_OBSW_RANK1;
    const float *ca = c ? c->a : NULL, *ca0 = c ? c->a0 : NULL;
    ecp_calib_pass *p = NULL, *p0 = NULL;
    double q[OBS_BATCH], rsum = 0;
    ecp_status s = ECP_OK;
    if (!ca || wt != ECP_OBSW_NONE)
        s = ecp_calib_pass_create(m, OBS_BATCH, wt != ECP_OBSW_NONE, o->sens, o->probes,
                                  ecp_dataset_loss(calib), seed, &p, err);
    if (!s && orig && !ca0)
        s = ecp_calib_pass_create(orig, OBS_BATCH, 0, o->sens, o->probes,
                                  ecp_dataset_loss(calib), seed, &p0, err);
    if (s) {
        ecp_calib_pass_free(p);
        return ecp_dist_agree(s, err);
    }
    if (p)
        ecp_calib_pass_from(p, L->l);
    memset(L->H, 0, (size_t)cols * cols * sizeof(double));
    if (orig)
        memset(L->C, 0, (size_t)cols * cols * sizeof(double));
    memset(L->rscale, 0, (size_t)no * sizeof(double));
    /* Under MPI each process sums a contiguous share of the batches (as stats.c). */
    int64_t b0, b1;
    ecp_dist_shard((calib->n + OBS_BATCH - 1) / OBS_BATCH, &b0, &b1);
    if (p)
        ecp_calib_pass_skip(p, b0 * OBS_BATCH);
    /* The rows come a chunk at a time (all at once when they are in memory); they are needed
     * only by a pass that starts from the samples. */
    int64_t end = b1 * OBS_BATCH < calib->n ? b1 * OBS_BATCH : calib->n;
    int64_t C = ecp_dataset_chunk_rows(calib);
    ecp_dataset cx = {0};
    for (int64_t c0 = b0 * OBS_BATCH; c0 < end; c0 += C) {
        int64_t cn = end - c0 < C ? end - c0 : C;
        if (((p && !ca) || p0) && (s = ecp_dataset_rows(calib, c0, cn, &cx, err)))
            break;
        for (int64_t at = c0; at < end && at < c0 + C; at += OBS_BATCH) {
            int b = (int)(end - at < OBS_BATCH ? end - at : OBS_BATCH);
            const float *x = cx.x ? cx.x + (size_t)(at - c0) * calib->n_in : NULL, *S = NULL;
            const float *a = ca ? ca + (size_t)(at - c->at) * ni : NULL;
            if (p) {
                if (a)
                    ecp_calib_pass_run_from(p, L->l, a, b);
                else
                    ecp_calib_pass_run(p, x, b);
                S = ecp_calib_pass_sens(p, L->l);
            }
            obs_batch_weights(L, S, b, sample_w, q, &rsum);
            obs_rows(L->X, a ? a : ecp_calib_pass_act(p, L->l), q, b, ni);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, cols, b, 1.0, L->X, cols, 1.0, L->H,
                        cols);
            if (orig) {
                if (p0)
                    ecp_calib_pass_run(p0, x, b);
                obs_rows(L->X0,
                         ca0 ? ca0 + (size_t)(at - c->at) * ni : ecp_calib_pass_act(p0, L->l), q,
                         b, ni);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, cols, b, 1.0, L->X, cols,
                            L->X0, cols, 1.0, L->C, cols);
            }
        }
    }
    ecp_calib_pass_free(p);
    ecp_calib_pass_free(p0);
    if ((s = ecp_dist_agree(s, err)) ||
        (s = ecp_dist_sum(L->H, (size_t)cols * cols, err)) ||
        (orig && (s = ecp_dist_sum(L->C, (size_t)cols * cols, err))) ||
        (s = ecp_dist_sum(L->rscale, (size_t)no, err)) || (s = ecp_dist_sum(&rsum, 1, err)))
        return s;
    for (int i = 0; i < cols; i++)
        for (int j = 0; j < i; j++)
            L->H[(size_t)i * cols + j] = L->H[(size_t)j * cols + i];
    for (int i = 0; i < no; i++)
        L->rscale[i] = row_w ? (rsum > 0 ? L->rscale[i] / rsum : 0) : 1.0;
    if (sample_w && !(L->H[(size_t)cols * cols - 1] > 0)) {
        /* No sample reaches the output through this layer: every weighting is zero, and any
         * fit is as good as another. Fall back to the unweighted one. */
        ecp_obs_weighting plain = row_w ? ECP_OBSW_ROW : ECP_OBSW_NONE;
        return obs_hessian(L, m, orig, calib, plain, NULL, o, seed, err);
    }
    return ECP_OK;
}

/* H + lambda I with lambda = damping x mean(diag H) (kept in Hd), then its inverse in H.
 * A dead input (a_j = 0 on every sample) then has H_jj = lambda: its weights cost nothing to
 * remove and take no part in the fit. LAPACK is column-major: on a symmetric matrix its 'L'
 * is our (row-major) upper triangle. */
static ecp_status obs_inverse(obs_layer *L, double damping, int64_t nsamples, ecp_error *err)
{
    int n = L->cols, info = 0;
    double *H = L->H, mean = 0;
    for (int j = 0; j < n; j++)
        mean += H[(size_t)j * n + j];
    mean /= n;
    double lambda = damping * (mean > 0 ? mean : 1.0);
    L->lambda = lambda;
    for (int j = 0; j < n; j++)
        H[(size_t)j * n + j] += lambda;
    memcpy(L->Hd, H, (size_t)n * n * sizeof(double));
    dpotrf_("L", &n, H, &n, &info, 1);
    if (info == 0)
        dpotri_("L", &n, H, &n, &info, 1);
    if (info != 0)
        return ecp_fail(err, ECP_ERR_NUMERIC,
                        "layer %d: the inputs' second-moment matrix (%d x %d, from %lld "
                        "calibration samples) is singular with damping %g; raise damping or "
                        "the calibration size", L->l, n, n, (long long)nsamples, damping);
    for (int i = 0; i < n; i++) /* H^-1 is in the upper triangle: mirror it */
        for (int j = 0; j < i; j++)
            H[(size_t)i * n + j] = H[(size_t)j * n + i];
    return ECP_OK;
}

/* The upper Cholesky factor U of H^-1 = U^T U, in place (H holds H^-1). */
static ecp_status obs_upper(obs_layer *L, double damping, ecp_error *err)
{
    int n = L->cols, info = 0;
    double *H = L->H;
    dpotrf_("L", &n, H, &n, &info, 1);
    if (info != 0)
        return ecp_fail(err, ECP_ERR_NUMERIC,
                        "layer %d: the inverse second-moment matrix is not positive definite "
                        "in double precision; raise damping (now %g)", L->l, damping);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            H[(size_t)i * n + j] = 0;
    return ECP_OK;
}

/* The starting point of the sweep and the right side of the re-fit. The fit minimises
 * sum_n r_n (w~ a~_n - w~0 a~0_n)^2 + lambda |w~ - w~0|^2: the layer's original output on the
 * original network's inputs (a~0), so that it also corrects what the layers before it lost.
 * Its normal equations are Hd w~ = G with G = W~0 (C + lambda I)^T; without C (nothing
 * pruned before, a~0 = a~) G = W~0 Hd and the optimum is W~0 itself. The OBS sweep starts
 * from the optimum: W~ = G H^-1. */
static void obs_target(obs_layer *L)
{
    int r = L->rows, c = L->cols;
    if (!L->C) {
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, r, c, 1.0, L->Hd, c, L->W, c, 0.0,
                    L->G, c);
        return;
    }
    for (int j = 0; j < c; j++)
        L->C[(size_t)j * c + j] += L->lambda;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, c, c, 1.0, L->W, c, L->C, c, 0.0,
                L->G, c);
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, r, c, 1.0, L->H, c, L->G, c, 0.0, L->W,
                c);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Chooses the mask of columns [c0, c1) of the prunable part: the already-pruned weights, then
 * the `quota` - forced cheapest others by c_i w^2 / U_jj^2 on the current weights. */
static void obs_block_mask(obs_layer *L, const uint8_t *pruned, int c0, int c1, int64_t quota,
                           uint8_t *mask)
{
    int ni = L->cols - 1, cols = L->cols;
    int64_t n = 0, forced = 0;
    for (int i = 0; i < L->rows; i++)
        for (int j = c0; j < c1; j++) {
            int64_t k = (int64_t)i * ni + j;
            mask[k] = pruned[k];
            if (pruned[k]) {
                forced++;
                continue;
            }
            double w = L->W[(size_t)i * cols + j], u = L->H[(size_t)j * cols + j];
            L->cand[n].score = L->rscale[i] * w * w / (u * u);
            L->cand[n].idx = k;
            n++;
        }
    int64_t take = quota - forced;
    if (take <= 0)
        return;
    if (take > n)
        take = n;
    ecp_nth_smallest(L->cand, (size_t)n, sizeof *L->cand, (size_t)take, cand_cmp);
    for (int64_t c = 0; c < take; c++)
        mask[L->cand[c].idx] = 1;
}

/* Columns [s0, s1) of the lazy block [c0, c1): each removed weight updates the columns to its
 * right exactly up to c1, and its scaled error is kept in Err for the GEMM past c1. */
static void obs_columns(obs_layer *L, const uint8_t *mask, int c0, int s0, int s1, int c1,
                        int lazy)
{
    int ni = L->cols - 1, cols = L->cols;
    for (int j = s0; j < s1; j++) {
        const double *u = L->H + (size_t)j * cols;
        for (int i = 0; i < L->rows; i++) {
            double *row = L->W + (size_t)i * cols;
            int drop = j < ni && mask[(size_t)i * ni + j];
            double e = drop ? row[j] / u[j] : 0.0;
            L->Err[(size_t)i * lazy + (j - c0)] = e;
            if (drop) {
                row[j] = 0;
                for (int k = j + 1; k < c1; k++)
                    row[k] -= e * u[k];
            }
        }
    }
}

/* How many weights each block of columns removes (quota[b] counts its already-pruned ones).
 * By default as many as one selection over the whole layer by c_i w^2 / U_jj^2, on the weights
 * before the sweep, puts there; the blocks then choose which on the weights as updated so far.
 * SparseGPT's even split forces the same sparsity on every block, where inputs differ widely
 * in worth (MNIST's border pixels are always zero): kept for the published recipe. */
static void obs_quotas(obs_layer *L, const uint8_t *pruned, int64_t target, int64_t *quota)
{
    int ni = L->cols - 1, cols = L->cols, block = L->cfg.block, nb = (cols + block - 1) / block;
    int64_t forced = 0, n = 0;
    for (int b = 0; b < nb; b++)
        quota[b] = 0;
    for (int i = 0; i < L->rows; i++)
        for (int j = 0; j < ni; j++) {
            int64_t k = (int64_t)i * ni + j;
            if (pruned[k]) {
                quota[j / block]++;
                forced++;
                continue;
            }
            double w = L->W[(size_t)i * cols + j], u = L->H[(size_t)j * cols + j];
            L->cand[n].score = L->rscale[i] * w * w / (u * u);
            L->cand[n].idx = k;
            n++;
        }
    if (L->cfg.even) {
        for (int b = 0; b < nb; b++) {
            int p0 = b * block, p1 = p0 + block < ni ? p0 + block : ni;
            int64_t q = p1 > p0 ? llround((double)target * p1 / ni) -
                                      llround((double)target * p0 / ni) : 0;
            quota[b] = q > quota[b] ? q : quota[b];
        }
        return;
    }
    int64_t take = target - forced;
    if (take <= 0)
        return;
    if (take > n)
        take = n;
    ecp_nth_smallest(L->cand, (size_t)n, sizeof *L->cand, (size_t)take, cand_cmp);
    for (int64_t c = 0; c < take; c++)
        quota[(int)(L->cand[c].idx % ni) / block]++;
}

/* Sweeps the columns left to right: per block of `block` columns the mask (quota[b] weights),
 * then the exact updates; past each lazy block one GEMM. */
static void obs_sweep(obs_layer *L, const uint8_t *pruned, const int64_t *quota, uint8_t *mask)
{
    int ni = L->cols - 1, cols = L->cols, block = L->cfg.block, lazy = obs_lazy(block);
    for (int c0 = 0; c0 < cols; c0 += lazy) {
        int c1 = c0 + lazy < cols ? c0 + lazy : cols;
        for (int s0 = c0; s0 < c1; s0 += block) {
            int s1 = s0 + block < c1 ? s0 + block : c1, p1 = s1 < ni ? s1 : ni;
            if (p1 > s0)
                obs_block_mask(L, pruned, s0, p1, quota[s0 / block], mask);
            obs_columns(L, mask, c0, s0, s1, c1, lazy);
        }
        if (c1 < cols)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L->rows, cols - c1, c1 - c0,
                        -1.0, L->Err, lazy, L->H + (size_t)c0 * cols + c1, cols, 1.0, L->W + c1,
                        cols);
    }
}

/* The sweep freezes each column once passed, so a kept weight left of a removed one is never
 * re-fitted. With the mask final, each row's exact least-squares fit over its kept columns
 * (and bias) is a small system, (Hd)_KK w_K = (Hd w0)_K: cheap at the sparsities where it
 * matters most. Rows whose system is not positive definite keep the sweep's values. H (now U)
 * is no longer needed and serves as the scratch of these systems. */
static void obs_refit(obs_layer *L, const uint8_t *mask)
{
    int ni = L->cols - 1, cols = L->cols, one = 1, info;
    double *A = L->H, *rhs = L->Err;
    for (int i = 0; i < L->rows; i++) {
        int k = 0;
        for (int j = 0; j < ni; j++)
            if (!mask[(size_t)i * ni + j])
                L->keep[k++] = j;
        L->keep[k++] = ni;
        for (int a = 0; a < k; a++) {
            const double *h = L->Hd + (size_t)L->keep[a] * cols;
            for (int b = 0; b <= a; b++)
                A[(size_t)a * k + b] = h[L->keep[b]];
            rhs[a] = L->G[(size_t)i * cols + L->keep[a]];
        }
        /* Row-major lower = LAPACK's upper. */
        dpotrf_("U", &k, A, &k, &info, 1);
        if (info == 0)
            dpotrs_("U", &k, &one, A, &k, rhs, &k, &info, 1);
        if (info != 0)
            continue;
        for (int a = 0; a < k; a++)
            L->W[(size_t)i * cols + L->keep[a]] = rhs[a];
    }
}

/* The re-fit's Cholesky factorisations cost sum_i k_i^3 / 3 for k_i kept columns; in auto
 * mode it runs when that is no more than the cols^3 of the sweep's own factorisations, which
 * holds at high sparsity, where it gains most (at 0.5 it changes little and costs 10x). */
static int refit_pays(const obs_layer *L, const uint8_t *mask)
{
    if (L->cfg.refit)
        return L->cfg.refit > 0;
    int ni = L->cols - 1;
    double cost = 0, budget = 3.0 * L->cols * (double)L->cols * L->cols;
    for (int i = 0; i < L->rows; i++) {
        double k = 1;
        for (int j = 0; j < ni; j++)
            k += !mask[(size_t)i * ni + j];
        cost += k * k * k;
    }
    return cost <= budget;
}

/* ecp_obs_layer with the layer's inputs taken from c where it holds them. */
static ecp_status obs_layer_run(ecp_mlp *m, const ecp_mlp *orig, const ecp_dataset *calib,
                                int l, int64_t target, const obs_cache *c,
                                const ecp_prune_opts *o, uint64_t seed, ecp_error *err)
{
    ecp_layer *Ly = &m->layer[l];
    obs_layer L;
    if (!obs_config(o).correct)
        orig = NULL;
    ecp_status s = obs_layer_alloc(&L, m, l, orig != NULL, o, err);
    if (s)
        return s;
    uint8_t *mask = ecp_alloc((size_t)Ly->n_out * Ly->n_in, 1, "reconstruction", err);
    if (!mask) {
        obs_layer_free(&L);
        return ECP_ERR_MEMORY;
    }
    int ni = Ly->n_in;
    for (int i = 0; i < L.rows; i++) {
        for (int j = 0; j < ni; j++)
            L.W[(size_t)i * L.cols + j] = Ly->W[(size_t)i * ni + j];
        L.W[(size_t)i * L.cols + ni] = Ly->b[i];
    }
    if (!(s = obs_hessian(&L, m, orig, calib, L.cfg.wt, c, o, seed, err)) &&
        !(s = obs_inverse(&L, o->damping, calib->n, err)) && (obs_target(&L), 1) &&
        !(s = obs_upper(&L, o->damping, err))) {
        obs_quotas(&L, Ly->pruned, target, L.quota);
        obs_sweep(&L, Ly->pruned, L.quota, mask);
        if (refit_pays(&L, mask))
            obs_refit(&L, mask);
        for (int i = 0; i < L.rows; i++) {
            for (int j = 0; j < ni; j++) {
                size_t k = (size_t)i * ni + j;
                Ly->W[k] = mask[k] ? 0.0f : (float)L.W[(size_t)i * L.cols + j];
                Ly->pruned[k] = mask[k];
            }
            Ly->b[i] = (float)L.W[(size_t)i * L.cols + ni];
        }
        s = ecp_mlp_check_finite(m, "the reconstructed model", err);
    }
    free(mask);
    obs_layer_free(&L);
    return s;
}

ecp_status ecp_obs_layer(ecp_mlp *m, const ecp_mlp *orig, const ecp_dataset *calib, int l,
                         int64_t target, const ecp_prune_opts *o, uint64_t seed, ecp_error *err)
{
    return obs_layer_run(m, orig, calib, l, target, NULL, o, seed, err);
}

ecp_status ecp_obs_step(ecp_mlp *m, const ecp_dataset *calib, const ecp_prune_opts *o,
                        double sparsity, uint64_t seed, ecp_error *err)
{
    if (!(o->damping >= 0 && o->damping < 1e6))
        return ecp_fail(err, ECP_ERR_ARG, "damping %g: must be >= 0", o->damping);
    if (o->block < 0 || o->block > 1 << 16)
        return ecp_fail(err, ECP_ERR_ARG, "block %d: must be in [1, 65536] (0: the method's)",
                        o->block);
    if ((unsigned)o->weighting > ECP_OBSW_RANK1)
        return ecp_fail(err, ECP_ERR_ARG, "weighting %d: unknown", (int)o->weighting);
    int L = m->n_layers;
    int64_t *targets = ecp_alloc((size_t)L, sizeof *targets, "reconstruction", err);
    if (!targets)
        return ECP_ERR_MEMORY;
    ecp_mlp *orig = NULL;
    ecp_status s = ecp_mlp_clone(m, &orig, err);
    if (!s)
        s = ecp_prune_allocate(m, calib, o, sparsity, seed, targets, err);
    for (int l = 0; l < L && !s; l++) {
        if (targets[l] < 0 || targets[l] <= ecp_mlp_layer_n_pruned(m, l))
            continue;
        /* Every layer is checked before the first is touched: nothing half-done. */
        s = obs_check_memory(l, m->layer[l].n_out, m->layer[l].n_in + 1, o, err);
    }
    obs_cache c;
    obs_cfg cfg = obs_config(o);
    obs_cache_init(&c, m, calib, &cfg, o);
    for (int l = 0; l < L && !s; l++) {
        int64_t nw = (int64_t)m->layer[l].n_in * m->layer[l].n_out;
        if (targets[l] >= 0 && targets[l] > ecp_mlp_layer_n_pruned(m, l))
            s = obs_layer_run(m, l ? orig : NULL, calib, l, targets[l] < nw ? targets[l] : nw - 1,
                              &c, o, seed, err);
        if (!s && l + 1 < L)
            obs_cache_next(&c, m, orig, l);
    }
    obs_cache_free(&c);
    ecp_mlp_free(orig);
    free(targets);
    return s;
}

/* OBS's saliency of every weight on the network as it is: c_i w_ij^2 / [H^-1]_jj / N, the mean
 * squared change of z_i when w_ij is removed and the rest of its row re-fitted. For ec-obs the
 * samples and rows are weighted by the rank-one sensitivity (ECP_OBSW_RANK1), so the score is
 * EC's importance with the whole row compensating instead of the bias alone: output^2, the
 * same units in every layer, and fit for a global selection. For obs and sparsegpt it is in
 * the units of each layer's z. */
ecp_status ecp_obs_scores(const ecp_mlp *m, const ecp_dataset *calib, const char *method,
                          ecp_sens sens, int probes, uint64_t seed, double **score,
                          ecp_error *err)
{
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.method = method;
    o.sens = sens;
    o.probes = probes;
    ecp_obs_weighting wt = strcmp(method, "ec-obs") ? ECP_OBSW_NONE : ECP_OBSW_RANK1;
    ecp_status s = ECP_OK;
    for (int l = 0; l < m->n_layers && !s; l++) {
        obs_layer L;
        if ((s = obs_layer_alloc(&L, m, l, 0, &o, err)))
            break;
        if (!(s = obs_hessian(&L, m, NULL, calib, wt, NULL, &o, seed, err)) &&
            !(s = obs_inverse(&L, o.damping, calib->n, err))) {
            int ni = L.cols - 1;
            for (int i = 0; i < L.rows; i++)
                for (int j = 0; j < ni; j++) {
                    double w = m->layer[l].W[(size_t)i * ni + j];
                    score[l][(size_t)i * ni + j] =
                        L.rscale[i] * w * w / L.H[(size_t)j * L.cols + j] / (double)calib->n;
                }
        }
        obs_layer_free(&L);
    }
    return s;
}
