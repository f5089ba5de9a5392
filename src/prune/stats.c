/* The calibration pass: one stream over the calibration set, batch by batch, with memory that
 * depends on the model only. Per batch the moments are two GEMMs per layer in float (a batch
 * sums at most ECP_STATS_BATCH terms) and are then added into double accumulators, so long
 * calibration sets do not lose digits.
 *
 * Under MPI each process takes a contiguous share of the batches (the same batches as one
 * process would form, so every float product is the same) and the double accumulators are
 * summed across processes at the end: the statistics differ from one process's only by the
 * order of the double additions. */
#include "prune.h"
#include <cblas.h>
#include <math.h>


void ecp_stats_free(ecp_stats *st)
{
    if (!st)
        return;
    for (int l = 0; l < st->n_layers; l++) {
        if (st->shift) free(st->shift[l]);
        if (st->m0) free(st->m0[l]);
        if (st->m1) free(st->m1[l]);
        if (st->m2) free(st->m2[l]);
        if (st->sa) free(st->sa[l]);
        if (st->sa2) free(st->sa2[l]);
        if (st->g1) free(st->g1[l]);
        if (st->g2) free(st->g2[l]);
    }
    free(st->shift);
    free(st->m0);
    free(st->m1);
    free(st->m2);
    free(st->sa);
    free(st->sa2);
    free(st->g1);
    free(st->g2);
    free(st->n_in);
    free(st->n_out);
    free(st);
}

static ecp_status stats_alloc(const ecp_mlp *m, int need, ecp_stats **out, ecp_error *err)
{
    int L = m->n_layers;
    ecp_stats *st = ecp_zalloc(1, sizeof *st, "statistics", err);
    if (!st)
        return ECP_ERR_MEMORY;
    st->n_layers = L;
    st->need = need;
#define ARR(f, T) (st->f = ecp_zalloc((size_t)L, sizeof(T), "statistics", err))
    if (!ARR(n_in, int) || !ARR(n_out, int) || !ARR(shift, float *) || !ARR(m0, double *) ||
        !ARR(m1, double *) || !ARR(m2, double *) || !ARR(sa, double *) || !ARR(sa2, double *) ||
        !ARR(g1, double *) || !ARR(g2, double *))
        goto fail;
#undef ARR
    for (int l = 0; l < L; l++) {
        size_t ni = (size_t)m->layer[l].n_in, no = (size_t)m->layer[l].n_out;
        st->n_in[l] = (int)ni;
        st->n_out[l] = (int)no;
        if (!(st->shift[l] = ecp_zalloc(ni, sizeof(float), "statistics", err)))
            goto fail;
        if (need & ECP_NEED_MOMENTS) {
            if (!(st->m0[l] = ecp_zalloc(no, sizeof(double), "statistics", err)) ||
                !(st->m1[l] = ecp_zalloc(no * ni, sizeof(double), "statistics", err)) ||
                !(st->m2[l] = ecp_zalloc(no * ni, sizeof(double), "statistics", err)))
                goto fail;
        }
        if (need & (ECP_NEED_COLS | ECP_NEED_MOMENTS)) {
            if (!(st->sa[l] = ecp_zalloc(ni, sizeof(double), "statistics", err)) ||
                !(st->sa2[l] = ecp_zalloc(ni, sizeof(double), "statistics", err)))
                goto fail;
        }
        if (need & ECP_NEED_GRAD) {
            if (!(st->g1[l] = ecp_zalloc(no * ni, sizeof(double), "statistics", err)) ||
                !(st->g2[l] = ecp_zalloc(no * ni, sizeof(double), "statistics", err)))
                goto fail;
        }
    }
    *out = st;
    return ECP_OK;
fail:
    ecp_stats_free(st);
    return ECP_ERR_MEMORY;
}

/* Scratch of one batch, sized for the widest layer. */
typedef struct {
    float **S;   /* per layer: B x n_out sensitivities */
    float **S1;  /* cross-entropy: sum_k p_k J_k (per layer) */
    float *A;    /* B x n_in: shifted inputs of the current layer */
    float *A2;   /* their squares (or |a| for g1) */
    float *D;    /* B x n_out scratch */
    float *T;    /* n_out x n_in GEMM result */
    float *dy;   /* B x K seed */
    float *prob; /* B x K softmax (cross-entropy) */
    void *arena; /* every array above lives in this one block */
} scratch;

/* acc[i] += sum over the B rows of x (B x n), in double. */
static void colsum_add(double *acc, const float *x, int B, int n)
{
    for (int b = 0; b < B; b++) {
        const float *r = x + (size_t)b * n;
        for (int i = 0; i < n; i++)
            acc[i] += r[i];
    }
}

/* acc += X^T Y for X (B x no), Y (B x ni): one sgemm per batch, then into double. */
static void gemm_add(double *acc, const float *X, const float *Y, int B, int no, int ni, float *T)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, B, 1.0f, X, no, Y, ni, 0.0f, T,
                ni);
    size_t n = (size_t)no * ni;
    for (size_t i = 0; i < n; i++)
        acc[i] += T[i];
}

/* Accumulates s_i of every layer from lo up for this batch into sc->S (forward already done). */
static void batch_sensitivities(const ecp_mlp *m, ecp_ws *ws, int B, ecp_sens sens, int probes,
                                ecp_loss lk, ecp_rng *rng, scratch *sc, int lo)
{
    int L = m->n_layers, K = m->sizes[L];
    for (int l = lo; l < L; l++) {
        memset(sc->S[l], 0, (size_t)B * m->sizes[l + 1] * sizeof(float));
        if (sc->S1)
            memset(sc->S1[l], 0, (size_t)B * m->sizes[l + 1] * sizeof(float));
    }
    int xent = sens == ECP_SENS_LOSS && lk == ECP_LOSS_XENT;
    if (xent) {
        const float *y = ecp_ws_output(ws);
        for (int b = 0; b < B; b++)
            ecp_softmax(y + (size_t)b * K, K, sc->prob + (size_t)b * K);
    }
    int passes = sens == ECP_SENS_PROBE ? probes : K;
    for (int p = 0; p < passes; p++) {
        if (sens == ECP_SENS_PROBE) {
            for (size_t i = 0; i < (size_t)B * K; i++)
                sc->dy[i] = (ecp_rng_u64(rng) >> 63) ? 1.0f : -1.0f;
        } else {
            memset(sc->dy, 0, (size_t)B * K * sizeof(float));
            for (int b = 0; b < B; b++)
                sc->dy[(size_t)b * K + p] = 1.0f;
        }
        ecp_mlp_backward_to(m, ws, sc->dy, B, lo);
        for (int l = lo; l < L; l++) {
            int no = m->sizes[l + 1];
            const float *dz = ecp_ws_dpre(ws, l);
            float *S = sc->S[l];
            if (xent) {
                /* J^T H J = sum_k p_k J_k^2 - (sum_k p_k J_k)^2, since sum_k p_k = 1 */
                for (int b = 0; b < B; b++) {
                    float pk = sc->prob[(size_t)b * K + p];
                    for (int i = 0; i < no; i++) {
                        float j = dz[(size_t)b * no + i];
                        S[(size_t)b * no + i] += pk * j * j;
                        sc->S1[l][(size_t)b * no + i] += pk * j;
                    }
                }
            } else {
                float w = sens == ECP_SENS_PROBE  ? 1.0f / (float)probes
                          : sens == ECP_SENS_LOSS ? 2.0f / (float)K
                                                  : 1.0f;
                size_t n = (size_t)B * no;
                for (size_t i = 0; i < n; i++)
                    S[i] += w * dz[i] * dz[i];
            }
        }
    }
    if (xent)
        for (int l = lo; l < L; l++)
            ecp_xent_fold(sc->S[l], sc->S1[l], (size_t)B * m->sizes[l + 1]);
}

static void scratch_free(scratch *sc)
{
    free(sc->S);
    free(sc->S1);
    free(sc->arena);
}

/* The arrays of a batch of B, sized for the widest layer, from c (see ecp_carve). */
static void scratch_carve(const ecp_mlp *m, int B, scratch *sc, ecp_carve *c)
{
    int L = m->n_layers, K = m->sizes[L], wmax = 0;
    size_t tmax = 0;
    for (int i = 0; i <= L; i++)
        wmax = m->sizes[i] > wmax ? m->sizes[i] : wmax;
    for (int l = 0; l < L; l++) {
        size_t t = (size_t)m->sizes[l] * m->sizes[l + 1];
        tmax = t > tmax ? t : tmax;
    }
    sc->A = ecp_carve_take(c, (size_t)B * wmax, sizeof(float));
    sc->A2 = ecp_carve_take(c, (size_t)B * wmax, sizeof(float));
    sc->D = ecp_carve_take(c, (size_t)B * wmax, sizeof(float));
    sc->T = ecp_carve_take(c, tmax, sizeof(float));
    sc->dy = ecp_carve_take(c, (size_t)B * K, sizeof(float));
    sc->prob = ecp_carve_take(c, (size_t)B * K, sizeof(float));
    for (int l = 0; l < L; l++) {
        sc->S[l] = ecp_carve_take(c, (size_t)B * m->sizes[l + 1], sizeof(float));
        if (sc->S1)
            sc->S1[l] = ecp_carve_take(c, (size_t)B * m->sizes[l + 1], sizeof(float));
    }
}

/* One block for all of it: a few huge pages rather than hundreds of 4 KB first touches (a
 * calibration pass is created per layer by the reconstruction methods). */
static ecp_status scratch_alloc(const ecp_mlp *m, int B, int xent, scratch *sc, ecp_error *err)
{
    int L = m->n_layers;
    memset(sc, 0, sizeof *sc);
    sc->S = ecp_zalloc((size_t)L, sizeof(float *), "statistics", err);
    if (xent)
        sc->S1 = ecp_zalloc((size_t)L, sizeof(float *), "statistics", err);
    if (!sc->S || (xent && !sc->S1))
        return ECP_ERR_MEMORY;
    ecp_carve c = {0};
    scratch_carve(m, B, sc, &c);
    if (!(sc->arena = ecp_aligned_alloc(c.used, 1, "statistics", err)))
        return ECP_ERR_MEMORY;
    c = (ecp_carve){.base = sc->arena};
    scratch_carve(m, B, sc, &c);
    return ECP_OK;
}

static void set_shift(const ecp_mlp *m, const ecp_ws *ws, int b, ecp_stats *st)
{
    for (int l = 0; l < m->n_layers; l++) {
        /* The reference value c_j: the mean of a_j over the first batch. */
        const float *a = ecp_ws_act(ws, l);
        int ni = m->sizes[l];
        for (int j = 0; j < ni; j++) {
            double sum = 0;
            for (int r = 0; r < b; r++)
                sum += a[(size_t)r * ni + j];
            st->shift[l][j] = (float)(sum / b);
        }
    }
}

/* Sums the accumulators over the processes, once every process has reported s. */
static ecp_status stats_sum(ecp_stats *st, ecp_status s, ecp_error *err)
{
    if ((s = ecp_dist_agree(s, err)))
        return s;
    for (int l = 0; l < st->n_layers && !s; l++) {
        size_t ni = (size_t)st->n_in[l], no = (size_t)st->n_out[l];
        if (st->m0[l] && ((s = ecp_dist_sum(st->m0[l], no, err)) ||
                          (s = ecp_dist_sum(st->m1[l], no * ni, err)) ||
                          (s = ecp_dist_sum(st->m2[l], no * ni, err))))
            break;
        if (st->sa[l] && ((s = ecp_dist_sum(st->sa[l], ni, err)) ||
                          (s = ecp_dist_sum(st->sa2[l], ni, err))))
            break;
        if (st->g1[l] && ((s = ecp_dist_sum(st->g1[l], no * ni, err)) ||
                          (s = ecp_dist_sum(st->g2[l], no * ni, err))))
            break;
    }
    return s;
}

ecp_status ecp_stats_compute(const ecp_mlp *m, const ecp_dataset *calib, int need, ecp_sens sens,
                             int probes, uint64_t seed, ecp_stats **out, ecp_error *err)
{
    *out = NULL;
    ecp_status s = ecp_check_fit(m, calib, "model", "calibration data", err);
    if (s)
        return s;
    if (calib->n < 1)
        return ecp_fail(err, ECP_ERR_ARG, "calib: the calibration set is empty");
    if (sens == ECP_SENS_PROBE && probes < 1)
        return ecp_fail(err, ECP_ERR_ARG, "probes %d: must be >= 1", probes);
    ecp_stats *st;
    if ((s = stats_alloc(m, need, &st, err)))
        return ecp_dist_agree(s, err);
    st->sens = sens;
    st->n = calib->n;
    if ((sens == ECP_SENS_OUTPUT || sens == ECP_SENS_LOSS) && (need & ECP_NEED_MOMENTS) &&
        !(need & ECP_NEED_GRAD)) {
        if ((s = stats_sum(st, ecp_stats_sparse(m, calib, sens, st, err), err))) {
            ecp_stats_free(st);
            return s;
        }
        *out = st;
        return ECP_OK;
    }
    int L = m->n_layers, K = m->sizes[L];
    int B = calib->n < ECP_STATS_BATCH ? (int)calib->n : ECP_STATS_BATCH;
    ecp_loss lk = ecp_dataset_loss(calib);
    ecp_ws *ws = NULL;
    scratch sc;
    int xent = sens == ECP_SENS_LOSS && lk == ECP_LOSS_XENT;
    if ((s = scratch_alloc(m, B, xent, &sc, err)) || (s = ecp_ws_create(&ws, m, B, err)))
        goto done;
    ecp_rng rng;
    ecp_rng_seed(&rng, seed ^ 0x5eed5eedULL);
    int64_t b0, b1;
    ecp_dist_shard((calib->n + B - 1) / B, &b0, &b1);
    /* The rows come a chunk at a time (all at once when they are in memory). */
    ecp_dataset cx;
    int64_t end = b1 * B < calib->n ? b1 * B : calib->n, C = ecp_dataset_chunk_rows(calib);
    /* The reference values c_j come from the first batch on every process. */
    if ((s = ecp_dataset_rows(calib, 0, B, &cx, err)))
        goto done;
    ecp_mlp_forward(m, ws, cx.x, B);
    set_shift(m, ws, B, st);
    if (sens == ECP_SENS_PROBE && (need & ECP_NEED_MOMENTS))
        for (int64_t k = 0; k < b0 * B * K * probes; k++)
            ecp_rng_u64(&rng); /* the probes the processes before this one draw */
    for (int64_t c0 = b0 * B; c0 < end; c0 += C) {
        if ((s = ecp_dataset_rows(calib, c0, end - c0 < C ? end - c0 : C, &cx, err)))
            break;
        for (int64_t at = c0; at < c0 + cx.n; at += B) {
            int b = (int)(end - at < B ? end - at : B);
            if (at)
                ecp_mlp_forward(m, ws, cx.x + (size_t)(at - c0) * calib->n_in, b);
            if (need & ECP_NEED_MOMENTS)
                batch_sensitivities(m, ws, b, sens, probes, lk, &rng, &sc, 0);
            for (int l = 0; l < L && (need & (ECP_NEED_MOMENTS | ECP_NEED_COLS)); l++) {
                int ni = m->sizes[l], no = m->sizes[l + 1];
                const float *a = ecp_ws_act(ws, l);
                for (int r = 0; r < b; r++)
                    for (int j = 0; j < ni; j++) {
                        float v = a[(size_t)r * ni + j] - st->shift[l][j];
                        sc.A[(size_t)r * ni + j] = v;
                        sc.A2[(size_t)r * ni + j] = v * v;
                    }
                colsum_add(st->sa[l], sc.A, b, ni);
                colsum_add(st->sa2[l], sc.A2, b, ni);
                if (need & ECP_NEED_MOMENTS) {
                    colsum_add(st->m0[l], sc.S[l], b, no);
                    gemm_add(st->m1[l], sc.S[l], sc.A, b, no, ni, sc.T);
                    gemm_add(st->m2[l], sc.S[l], sc.A2, b, no, ni, sc.T);
                }
            }
            if (need & ECP_NEED_GRAD) {
                /* Per-sample loss gradients dl_n/dz: seed with dl_n/dy (scale 1, not 1/B). */
                ecp_loss_eval(lk, ecp_ws_output(ws), cx.y ? cx.y + (size_t)(at - c0) * K : NULL,
                              cx.label ? cx.label + (at - c0) : NULL, b, K, 1.0f, sc.dy);
                ecp_mlp_backward(m, ws, sc.dy, b, NULL);
                for (int l = 0; l < L; l++) {
                    int ni = m->sizes[l], no = m->sizes[l + 1];
                    const float *a = ecp_ws_act(ws, l), *dz = ecp_ws_dpre(ws, l);
                    for (size_t i = 0; i < (size_t)b * ni; i++) {
                        sc.A[i] = fabsf(a[i]);
                        sc.A2[i] = a[i] * a[i];
                    }
                    for (size_t i = 0; i < (size_t)b * no; i++)
                        sc.D[i] = fabsf(dz[i]);
                    gemm_add(st->g1[l], sc.D, sc.A, b, no, ni, sc.T);
                    for (size_t i = 0; i < (size_t)b * no; i++)
                        sc.D[i] = dz[i] * dz[i];
                    gemm_add(st->g2[l], sc.D, sc.A2, b, no, ni, sc.T);
                }
            }
        }
    }
done:
    if (!(s = stats_sum(st, s, err))) {
        *out = st;
        st = NULL;
    }
    scratch_free(&sc);
    ecp_ws_free(ws);
    ecp_stats_free(st);
    return s;
}

/* The same forward and sensitivity pass, batch by batch, for callers that need the per-sample
 * values rather than their moments (reconstruction weighs each sample by its sensitivity). */
struct ecp_calib_pass {
    const ecp_mlp *m;
    ecp_ws *ws;
    scratch sc;
    int with_sens, probes;
    int lo; /* the lowest layer whose sensitivities are wanted */
    ecp_sens sens;
    ecp_loss lk;
    ecp_rng rng;
};

ecp_status ecp_calib_pass_create(const ecp_mlp *m, int max_batch, int with_sens, ecp_sens sens,
                                 int probes, ecp_loss lk, uint64_t seed, ecp_calib_pass **out,
                                 ecp_error *err)
{
    *out = NULL;
    if (sens == ECP_SENS_PROBE && probes < 1)
        return ecp_fail(err, ECP_ERR_ARG, "probes %d: must be >= 1", probes);
    ecp_calib_pass *p = ecp_zalloc(1, sizeof *p, "calibration pass", err);
    if (!p)
        return ECP_ERR_MEMORY;
    p->m = m;
    p->with_sens = with_sens;
    p->sens = sens;
    p->probes = probes;
    p->lk = lk;
    ecp_rng_seed(&p->rng, seed ^ 0x5eed5eedULL);
    ecp_status s = scratch_alloc(m, max_batch, sens == ECP_SENS_LOSS && lk == ECP_LOSS_XENT,
                                 &p->sc, err);
    if (!s)
        s = ecp_ws_create(&p->ws, m, max_batch, err);
    if (s) {
        ecp_calib_pass_free(p);
        return s;
    }
    *out = p;
    return ECP_OK;
}

void ecp_calib_pass_run(ecp_calib_pass *p, const float *x, int b)
{
    ecp_calib_pass_run_from(p, 0, x, b);
}

void ecp_calib_pass_run_from(ecp_calib_pass *p, int l, const float *a, int b)
{
    ecp_mlp_forward_from(p->m, p->ws, l, a, b);
    if (p->with_sens)
        batch_sensitivities(p->m, p->ws, b, p->sens, p->probes, p->lk, &p->rng, &p->sc,
                            p->lo > l ? p->lo : l);
}

void ecp_calib_pass_skip(ecp_calib_pass *p, int64_t n)
{
    if (p->with_sens && p->sens == ECP_SENS_PROBE)
        for (int64_t k = 0; k < n * p->m->sizes[p->m->n_layers] * p->probes; k++)
            ecp_rng_u64(&p->rng);
}

const float *ecp_calib_pass_act(const ecp_calib_pass *p, int l) { return ecp_ws_act(p->ws, l); }
const float *ecp_calib_pass_sens(const ecp_calib_pass *p, int l)
{
    return p->with_sens && l >= p->lo ? p->sc.S[l] : NULL;
}

void ecp_calib_pass_from(ecp_calib_pass *p, int l)
{
    p->lo = l > 0 && l < p->m->n_layers ? l : 0;
}

void ecp_calib_pass_free(ecp_calib_pass *p)
{
    if (!p)
        return;
    scratch_free(&p->sc);
    ecp_ws_free(p->ws);
    free(p);
}
