/* ec-exact, the paper's non-linear oracle: for each weight, remove it and minimise the true mean
 * squared output deviation over the bias shift delta by Gauss-Newton steps with backtracking,
 * started at the linear delta*. Removing w_ij changes only z_i of its layer, so each evaluation
 * propagates a rank-one change (and its tangent d/d delta) through the layers downstream.
 * Everything here is double: the deviations of small weights are far below float rounding of
 * the outputs, and an oracle must be more accurate than what it checks.
 * Cost: weights x N x downstream work, over the whole calibration set -- for small networks
 * and for tests; choose --calib to bound it.
 *
 * Under MPI the weights, not the samples, are shared out: each minimisation evaluates its sum
 * over the samples tens of times, and one collective per evaluation would cost more than the
 * sums. Every process holds the whole calibration set and takes every P-th weight (layers differ
 * in cost, so a strided share balances them); the scores then add up across processes with all
 * other entries zero, which makes the result exactly the single process's. */
#include "prune.h"
#include <cblas.h>
#include <math.h>

#define EXACT_ITERS 12

typedef struct {
    const ecp_mlp *m;
    int N;
    double **W;       /* per layer: weights in double */
    double **z0, **a; /* unperturbed forward: z0[l] (N x n_out), a[0..L] (N x width) */
    double **z, **y, **t; /* per layer scratch: perturbed pre-activation, activation, tangent */
} exact_ctx;

static void ctx_free(exact_ctx *c)
{
    int L = c->m->n_layers;
    for (int l = 0; l <= L; l++) {
        if (c->a) free(c->a[l]);
        if (l == L) break;
        if (c->W) free(c->W[l]);
        if (c->z0) free(c->z0[l]);
        if (c->z) free(c->z[l]);
        if (c->y) free(c->y[l]);
        if (c->t) free(c->t[l]);
    }
    free(c->W);
    free(c->z0);
    free(c->a);
    free(c->z);
    free(c->y);
    free(c->t);
}

static ecp_status ctx_init(exact_ctx *c, const ecp_mlp *m, const ecp_dataset *calib, int N,
                           ecp_error *err)
{
    int L = m->n_layers;
    memset(c, 0, sizeof *c);
    c->m = m;
    c->N = N;
    if (!(c->W = ecp_zalloc((size_t)L, sizeof(double *), "ec-exact", err)) ||
        !(c->z0 = ecp_zalloc((size_t)L, sizeof(double *), "ec-exact", err)) ||
        !(c->a = ecp_zalloc((size_t)L + 1, sizeof(double *), "ec-exact", err)) ||
        !(c->z = ecp_zalloc((size_t)L, sizeof(double *), "ec-exact", err)) ||
        !(c->y = ecp_zalloc((size_t)L, sizeof(double *), "ec-exact", err)) ||
        !(c->t = ecp_zalloc((size_t)L, sizeof(double *), "ec-exact", err)))
        return ECP_ERR_MEMORY;
    if (!(c->a[0] = ecp_alloc((size_t)N * m->sizes[0], sizeof(double), "ec-exact", err)))
        return ECP_ERR_MEMORY;
    for (size_t q = 0; q < (size_t)N * m->sizes[0]; q++)
        c->a[0][q] = calib->x[q];
    for (int l = 0; l < L; l++) {
        const ecp_layer *Ly = &m->layer[l];
        size_t nw = (size_t)Ly->n_in * Ly->n_out, n = (size_t)N * Ly->n_out;
        if (!(c->W[l] = ecp_alloc(nw, sizeof(double), "ec-exact", err)) ||
            !(c->z0[l] = ecp_alloc(n, sizeof(double), "ec-exact", err)) ||
            !(c->a[l + 1] = ecp_alloc(n, sizeof(double), "ec-exact", err)) ||
            !(c->z[l] = ecp_alloc(n, sizeof(double), "ec-exact", err)) ||
            !(c->y[l] = ecp_alloc(n, sizeof(double), "ec-exact", err)) ||
            !(c->t[l] = ecp_alloc(n, sizeof(double), "ec-exact", err)))
            return ECP_ERR_MEMORY;
        for (size_t k = 0; k < nw; k++)
            c->W[l][k] = Ly->W[k];
        for (int n0 = 0; n0 < N; n0++)
            for (int i = 0; i < Ly->n_out; i++)
                c->z0[l][(size_t)n0 * Ly->n_out + i] = Ly->b[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Ly->n_out, Ly->n_in, 1.0, c->a[l],
                    Ly->n_in, c->W[l], Ly->n_in, 1.0, c->z0[l], Ly->n_out);
        for (size_t q = 0; q < n; q++)
            c->a[l + 1][q] = ecp_act_eval_d(Ly->act, Ly->act_p, c->z0[l][q], NULL);
    }
    return ECP_OK;
}

/* f(delta) = (1/N) sum_n ||y - y0||^2 and, if fp, its derivative and Gauss-Newton curvature.
 * Differences (y - y0) are carried directly, never formed by subtracting outputs. */
static double deviation(exact_ctx *c, int l, int i, int j, double delta, double *fp, double *fpp)
{
    const ecp_mlp *m = c->m;
    int N = c->N, L = m->n_layers;
    const ecp_layer *Ly = &m->layer[l];
    int no = Ly->n_out, ni = Ly->n_in;
    double w = c->W[l][(size_t)i * ni + j];
    double *dv = c->y[l], *dt = c->t[l]; /* change of a_i and its tangent, N entries */
    for (int n = 0; n < N; n++) {
        double z0 = c->z0[l][(size_t)n * no + i];
        double shift = delta - w * c->a[l][(size_t)n * ni + j], d;
        double a1 = ecp_act_eval_d(Ly->act, Ly->act_p, z0 + shift, &d);
        dv[n] = Ly->act == ECP_ACT_IDENTITY ? shift : a1 - c->a[l + 1][(size_t)n * no + i];
        dt[n] = d;
    }
    double f = 0, g = 0, h = 0;
    if (l == L - 1) {
        for (int n = 0; n < N; n++) {
            f += dv[n] * dv[n];
            g += dv[n] * dt[n];
            h += dt[n] * dt[n];
        }
    } else {
        for (int k = l + 1; k < L; k++) {
            const ecp_layer *K = &m->layer[k];
            int ko = K->n_out;
            double *dz = c->z[k], *tk = c->t[k], *dy = c->y[k];
            if (k == l + 1) {
                /* rank one: dz = dv (x) W[:, i] */
                for (int n = 0; n < N; n++)
                    for (int r = 0; r < ko; r++) {
                        double wr = c->W[k][(size_t)r * K->n_in + i];
                        dz[(size_t)n * ko + r] = dv[n] * wr;
                        tk[(size_t)n * ko + r] = dt[n] * wr;
                    }
            } else {
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, ko, K->n_in, 1.0,
                            c->y[k - 1], K->n_in, c->W[k], K->n_in, 0.0, dz, ko);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, ko, K->n_in, 1.0,
                            c->t[k - 1], K->n_in, c->W[k], K->n_in, 0.0, tk, ko);
            }
            size_t cnt = (size_t)N * ko;
            for (size_t q = 0; q < cnt; q++) {
                double d, z0 = c->z0[k][q];
                double a1 = ecp_act_eval_d(K->act, K->act_p, z0 + dz[q], &d);
                dy[q] = K->act == ECP_ACT_IDENTITY ? dz[q] : a1 - c->a[k + 1][q];
                tk[q] *= d;
            }
        }
        const double *dy = c->y[L - 1], *ty = c->t[L - 1];
        size_t cnt = (size_t)N * m->sizes[L];
        for (size_t q = 0; q < cnt; q++) {
            f += dy[q] * dy[q];
            g += dy[q] * ty[q];
            h += ty[q] * ty[q];
        }
    }
    if (fp) {
        *fp = 2 * g / N;
        *fpp = 2 * h / N;
    }
    return f / N;
}

/* Minimises f from *delta; returns the minimum and leaves the minimiser in *delta. */
static double minimise(exact_ctx *c, int l, int i, int j, double *delta)
{
    double d = *delta, g, h;
    double f = deviation(c, l, i, j, d, &g, &h);
    for (int it = 0; it < EXACT_ITERS && h > 0; it++) {
        double step = -g / h, t = 1;
        int moved = 0;
        for (int bt = 0; bt < 30; bt++, t *= 0.5) {
            double fn = deviation(c, l, i, j, d + t * step, NULL, NULL);
            if (fn < f) {
                d += t * step;
                f = fn;
                moved = 1;
                break;
            }
        }
        if (!moved || fabs(t * step) <= 1e-12 * (1 + fabs(d)))
            break;
        f = deviation(c, l, i, j, d, &g, &h);
    }
    *delta = d;
    return f;
}

ecp_status ecp_exact_scores(const ecp_mlp *m, const ecp_dataset *calib, const ecp_scores *lin,
                            ecp_scores *out, int progress, ecp_error *err)
{
    if (calib->n > (1 << 24))
        return ecp_fail(err, ECP_ERR_ARG, "ec-exact: calibration set of %lld samples is too large",
                        (long long)calib->n);
    int N = (int)calib->n;
    exact_ctx c;
    ecp_progress *pr = NULL;
    ecp_status s = ctx_init(&c, m, calib, N, err);
    if (!s && progress)
        s = ecp_progress_create(&pr, "ec-exact", ecp_mlp_n_weights(m), err);
    int64_t done_w = 0, at = 0, P = ecp_dist_size(), me = ecp_dist_rank();
    for (int l = 0; l < m->n_layers && !s; l++) {
        const ecp_layer *Ly = &m->layer[l];
        for (int i = 0; i < Ly->n_out; i++) {
            for (int j = 0; j < Ly->n_in; j++) {
                size_t k = (size_t)i * Ly->n_in + j;
                out->score[l][k] = out->comp[l][k] = 0;
                if (Ly->pruned[k] || at++ % P != me)
                    continue;
                double delta = lin->comp[l][k];
                out->score[l][k] = minimise(&c, l, i, j, &delta);
                out->comp[l][k] = delta;
            }
            done_w += Ly->n_in;
            ecp_progress_update(pr, done_w, "weights");
        }
    }
    ecp_progress_free(pr);
    ctx_free(&c);
    s = ecp_dist_agree(s, err);
    for (int l = 0; l < m->n_layers && !s && P > 1; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        if (!(s = ecp_dist_sum(out->score[l], nw, err)))
            s = ecp_dist_sum(out->comp[l], nw, err);
    }
    for (int l = 0; l < m->n_layers && !s; l++) {
        size_t nw = (size_t)m->layer[l].n_in * m->layer[l].n_out;
        for (size_t k = 0; k < nw; k++)
            if (m->layer[l].pruned[k])
                out->score[l][k] = INFINITY;
    }
    return s;
}
