/* ec-exact, the paper's non-linear oracle: for each weight, remove it and minimise the true mean
 * squared output deviation over the bias shift delta by Gauss-Newton steps with backtracking,
 * started at the linear delta*. Removing w_ij changes only z_i of its layer, so each evaluation
 * propagates a rank-one change (and its tangent d/d delta) through the layers downstream.
 * Cost: weights x N x downstream work -- an oracle for small networks and for tests. */
#include "prune.h"
#include <cblas.h>
#include <math.h>

/* The oracle averages over at most this many calibration samples (the first ones). */
#define EXACT_MAX_N 256
#define EXACT_ITERS 12

typedef struct {
    const ecp_mlp *m;
    ecp_ws *ws;   /* the unperturbed forward of the N samples */
    int N;
    float **z, **a, **t; /* per layer scratch: perturbed pre-activation, activation, tangent */
} exact_ctx;

/* f(delta) = (1/N) sum_n ||y - y0||^2 and, if fp, its derivative and Gauss-Newton curvature. */
static double deviation(exact_ctx *c, int l, int i, int j, double delta, double *fp, double *fpp)
{
    const ecp_mlp *m = c->m;
    int N = c->N, L = m->n_layers;
    const ecp_layer *Ly = &m->layer[l];
    float w = Ly->W[(size_t)i * Ly->n_in + j];
    const float *ain = ecp_ws_act(c->ws, l), *z0 = ecp_ws_pre(c->ws, l);
    const float *a0 = ecp_ws_act(c->ws, l + 1);
    int no = Ly->n_out, ni = Ly->n_in;
    /* Change of neuron i's activation, and its derivative w.r.t. delta. */
    float *da = c->a[l], *dt = c->t[l];
    for (int n = 0; n < N; n++) {
        float zi = z0[(size_t)n * no + i] - w * ain[(size_t)n * ni + j] + (float)delta;
        float ai, one = 1.0f, d;
        ecp_act_forward(Ly->act, &zi, &ai, 1);
        ecp_act_backward(Ly->act, &zi, &ai, &one, &d, 1);
        da[n] = ai - a0[(size_t)n * no + i];
        dt[n] = d;
    }
    double f = 0, g = 0, h = 0;
    if (l == L - 1) {
        for (int n = 0; n < N; n++) {
            f += (double)da[n] * da[n];
            g += (double)da[n] * dt[n];
            h += (double)dt[n] * dt[n];
        }
    } else {
        /* Layer l+1 sees a rank-one change: z' = z0 + da (x) W[:, i]; then full layers. */
        const float *dvec = da, *tvec = dt;
        for (int k = l + 1; k < L; k++) {
            const ecp_layer *K = &m->layer[k];
            float *zk = c->z[k], *tk = c->t[k], *ak = c->a[k];
            const float *zk0 = ecp_ws_pre(c->ws, k);
            if (k == l + 1) {
                for (int n = 0; n < N; n++)
                    for (int r = 0; r < K->n_out; r++) {
                        float wr = K->W[(size_t)r * K->n_in + i];
                        zk[(size_t)n * K->n_out + r] = zk0[(size_t)n * K->n_out + r] + dvec[n] * wr;
                        tk[(size_t)n * K->n_out + r] = tvec[n] * wr;
                    }
            } else {
                /* Full layer on the perturbed activations ak-1 and tangents. */
                const float *ap = c->a[k - 1], *tp = c->t[k - 1];
                for (int n = 0; n < N; n++)
                    memcpy(zk + (size_t)n * K->n_out, K->b, (size_t)K->n_out * sizeof *zk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K->n_out, K->n_in, 1.0f,
                            ap, K->n_in, K->W, K->n_in, 1.0f, zk, K->n_out);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K->n_out, K->n_in, 1.0f,
                            tp, K->n_in, K->W, K->n_in, 0.0f, tk, K->n_out);
            }
            /* a_k = act(z'), tangent through act' */
            size_t cnt = (size_t)N * K->n_out;
            ecp_act_forward(K->act, zk, ak, cnt);
            ecp_act_backward(K->act, zk, ak, tk, tk, cnt);
        }
        const float *y = c->a[L - 1], *ty = c->t[L - 1], *y0 = ecp_ws_output(c->ws);
        size_t cnt = (size_t)N * m->sizes[L];
        for (size_t q = 0; q < cnt; q++) {
            double d = (double)y[q] - y0[q];
            f += d * d;
            g += d * ty[q];
            h += (double)ty[q] * ty[q];
        }
    }
    if (fp) {
        *fp = 2 * g / N;
        *fpp = 2 * h / N;
    }
    return f / N;
}

/* Minimises f from delta0; returns the minimum and leaves the minimiser in *delta. */
static double minimise(exact_ctx *c, int l, int i, int j, double *delta)
{
    double d = *delta, g, h;
    double f = deviation(c, l, i, j, d, &g, &h);
    for (int it = 0; it < EXACT_ITERS && h > 0; it++) {
        double step = -g / h, t = 1;
        int moved = 0;
        for (int bt = 0; bt < 20; bt++, t *= 0.5) {
            double fn = deviation(c, l, i, j, d + t * step, NULL, NULL);
            if (fn < f) {
                d += t * step;
                f = fn;
                moved = 1;
                break;
            }
        }
        if (!moved || fabs(t * step) <= 1e-10 * (1 + fabs(d)))
            break;
        f = deviation(c, l, i, j, d, &g, &h);
    }
    *delta = d;
    return f;
}

ecp_status ecp_exact_scores(const ecp_mlp *m, const ecp_dataset *calib, const ecp_scores *lin,
                            ecp_scores *out, int progress, ecp_error *err)
{
    int L = m->n_layers;
    int N = calib->n < EXACT_MAX_N ? (int)calib->n : EXACT_MAX_N;
    exact_ctx c = {.m = m, .N = N};
    ecp_progress *pr = NULL;
    ecp_status s = ecp_ws_create(&c.ws, m, N, err);
    if (s)
        return s;
    c.z = ecp_zalloc((size_t)L, sizeof(float *), "ec-exact", err);
    c.a = ecp_zalloc((size_t)L, sizeof(float *), "ec-exact", err);
    c.t = ecp_zalloc((size_t)L, sizeof(float *), "ec-exact", err);
    if (!c.z || !c.a || !c.t) {
        s = ECP_ERR_MEMORY;
        goto done;
    }
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)N * m->sizes[l + 1];
        if (!(c.z[l] = ecp_alloc(n, sizeof(float), "ec-exact", err)) ||
            !(c.a[l] = ecp_alloc(n, sizeof(float), "ec-exact", err)) ||
            !(c.t[l] = ecp_alloc(n, sizeof(float), "ec-exact", err))) {
            s = ECP_ERR_MEMORY;
            goto done;
        }
    }
    ecp_mlp_forward(m, c.ws, calib->x, N);
    if (progress && (s = ecp_progress_create(&pr, "ec-exact", ecp_mlp_n_weights(m), err)))
        goto done;
    int64_t done_w = 0;
    for (int l = 0; l < L; l++) {
        const ecp_layer *Ly = &m->layer[l];
        for (int i = 0; i < Ly->n_out; i++) {
            for (int j = 0; j < Ly->n_in; j++) {
                size_t k = (size_t)i * Ly->n_in + j;
                if (Ly->pruned[k]) {
                    out->score[l][k] = INFINITY;
                    out->comp[l][k] = 0;
                    continue;
                }
                double delta = lin->comp[l][k];
                out->score[l][k] = minimise(&c, l, i, j, &delta);
                out->comp[l][k] = delta;
            }
            done_w += Ly->n_in;
            ecp_progress_update(pr, done_w, "weights");
        }
    }
done:
    ecp_progress_free(pr);
    for (int l = 0; l < L; l++) {
        if (c.z) free(c.z[l]);
        if (c.a) free(c.a[l]);
        if (c.t) free(c.t[l]);
    }
    free(c.z);
    free(c.a);
    free(c.t);
    ecp_ws_free(c.ws);
    return s;
}
