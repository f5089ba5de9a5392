/* Times models the way deployments run them, one thread, same inputs:
 *   dense   the engine in dense mode (OpenBLAS sgemv / sgemm per layer)
 *   sparse  the engine in auto mode (CSR / CSC / dense chosen per layer)
 *   nm      the N:M kernels (src/sparse/nm.c), when the model records a pattern
 * at batch 1 (microseconds per sample) and batch 256 (samples per second); min and median of
 * repeated runs. usage: bench_structured SECONDS MODEL.onnx...
 * Prints one JSON object per model. */
#include "ecprune.h"
#include "internal.h"
#include "sparse/nm.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NB 256

typedef struct {
    double min, med;
} timing;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds per call of fn(ctx) over `secs` seconds: min and median. */
static timing time_it(void (*fn)(void *), void *ctx, double secs)
{
    static double t[200000];
    int n = 0;
    for (int i = 0; i < 3; i++)
        fn(ctx);
    double t0 = ecp_now();
    while ((ecp_now() - t0 < secs || n < 5) && n < 200000) {
        double a = ecp_now();
        fn(ctx);
        t[n++] = ecp_now() - a;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return (timing){t[0], t[n / 2]};
}

typedef struct {
    ecp_sparse_net *eng;
    const float *x;
    float *y;
    int batch;
} eng_ctx;

static void run_engine(void *p)
{
    eng_ctx *c = p;
    ecp_error err;
    if (ecp_sparse_forward(c->eng, c->x, c->batch, c->y, &err))
        fprintf(stderr, "bench_structured: %s\n", err.msg), exit(1);
}

typedef struct {
    const ecp_mlp *m;
    ecp_nmmat *a;
    const float *x;
    float *buf[2], *y;
    int batch;
} nm_ctx;

static void act_inplace(ecp_act a, float *v, size_t n) { ecp_act_forward(a, v, v, n); }

/* Batch 1: gemv per layer. Batch B: transpose once, feature-major through the layers, back. */
static void run_nm(void *p)
{
    nm_ctx *c = p;
    int L = c->m->n_layers, B = c->batch;
    const float *in = c->x;
    if (B > 1) {
        int n0 = c->m->sizes[0];
        for (int s = 0; s < B; s++)
            for (int j = 0; j < n0; j++)
                c->buf[1][(size_t)j * B + s] = c->x[(size_t)s * n0 + j];
        in = c->buf[1];
    }
    for (int l = 0; l < L; l++) {
        float *out = c->buf[l & 1];
        const ecp_layer *Ly = &c->m->layer[l];
        if (B == 1)
            ecp_nm_gemv(&c->a[l], in, Ly->b, out);
        else
            ecp_nm_gemm(&c->a[l], in, B, (size_t)B, Ly->b, out);
        act_inplace(Ly->act, out, (size_t)Ly->n_out * B);
        in = out;
    }
    int K = c->m->sizes[L];
    for (int s = 0; s < B; s++)
        for (int k = 0; k < K; k++)
            c->y[(size_t)s * K + k] = B == 1 ? in[k] : in[(size_t)k * B + s];
}

static void report(const char *name, timing t1, timing tn, int first)
{
    printf("%s\"%s\":{\"b1_us_min\":%.3f,\"b1_us_med\":%.3f,\"b256_sps_max\":%.0f,"
           "\"b256_sps_med\":%.0f}", first ? "" : ",", name, t1.min * 1e6, t1.med * 1e6,
           NB / tn.min, NB / tn.med);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_structured SECONDS MODEL.onnx...\n");
        return 2;
    }
    double secs = atof(argv[1]);
    openblas_set_num_threads(1);
    for (int f = 2; f < argc; f++) {
        ecp_error err;
        ecp_mlp *m;
        if (ecp_onnx_load(&m, argv[f], &err)) {
            fprintf(stderr, "bench_structured: %s\n", err.msg);
            return 1;
        }
        int n0 = m->sizes[0], wmax = 0;
        for (int i = 0; i <= m->n_layers; i++)
            wmax = m->sizes[i] > wmax ? m->sizes[i] : wmax;
        float *x = malloc(sizeof(float) * n0 * NB), *y = malloc(sizeof(float) * wmax * NB);
        ecp_rng r;
        ecp_rng_seed(&r, 1);
        for (int i = 0; i < n0 * NB; i++)
            x[i] = (float)ecp_rng_uniform(&r);
        printf("{\"model\":\"%s\",\"macs\":%lld", argv[f], (long long)ecp_mlp_n_weights(m));
        const ecp_engine_mode modes[2] = {ECP_ENGINE_DENSE, ECP_ENGINE_AUTO};
        const char *names[2] = {"dense", "sparse"};
        printf(",\"engine\":{");
        for (int k = 0; k < 2; k++) {
            ecp_sparse_opts so;
            ecp_sparse_opts_default(&so);
            so.mode = modes[k];
            so.threads = 1;
            so.max_batch = NB;
            eng_ctx c = {NULL, x, y, 1};
            if (ecp_sparse_create(&c.eng, m, &so, &err)) {
                fprintf(stderr, "bench_structured: %s\n", err.msg);
                return 1;
            }
            timing t1 = time_it(run_engine, &c, secs);
            c.batch = NB;
            timing tn = time_it(run_engine, &c, secs);
            report(names[k], t1, tn, k == 0);
            if (k == 1) { /* the layers on which the engine's measurement chose N:M */
                int n1 = 0, nb = 0;
                for (int l = 0; l < m->n_layers; l++) {
                    n1 += ecp_sparse_layer_nm(c.eng, l, 1);
                    nb += ecp_sparse_layer_nm(c.eng, l, NB);
                }
                printf(",\"auto_nm_layers_b1\":%d,\"auto_nm_layers_bn\":%d", n1, nb);
            }
            ecp_sparse_free(c.eng);
        }
        int pn, pm;
        uint64_t layers;
        if (ecp_mlp_pattern(m, &pn, &pm, &layers) && layers == (1ULL << m->n_layers) - 1) {
            ecp_nmmat *a = calloc((size_t)m->n_layers, sizeof *a);
            for (int l = 0; l < m->n_layers; l++)
                if (ecp_nmmat_build(&a[l], m->layer[l].W, m->layer[l].n_out, m->layer[l].n_in,
                                    pn, pm, &err)) {
                    fprintf(stderr, "bench_structured: %s: %s\n", argv[f], err.msg);
                    return 1;
                }
            nm_ctx c = {m, a, x, {malloc(sizeof(float) * wmax * NB),
                                  malloc(sizeof(float) * wmax * NB)}, y, 1};
            timing t1 = time_it(run_nm, &c, secs);
            c.batch = NB;
            timing tn = time_it(run_nm, &c, secs);
            report("nm", t1, tn, 0);
            /* the same outputs as the dense engine (a benchmark of a wrong kernel is no use) */
            float *yr = malloc(sizeof(float) * wmax * NB);
            ecp_sparse_net *e;
            ecp_sparse_opts so;
            ecp_sparse_opts_default(&so);
            so.mode = ECP_ENGINE_DENSE;
            double md = 0;
            if (!ecp_sparse_create(&e, m, &so, &err) && !ecp_sparse_forward(e, x, NB, yr, &err))
                for (int i = 0; i < NB * m->sizes[m->n_layers]; i++)
                    md = fmax(md, fabs(yr[i] - y[i]));
            ecp_sparse_free(e);
            free(yr);
            printf(",\"nm_max_abs_diff\":%.3g", md);
            for (int l = 0; l < m->n_layers; l++)
                ecp_nmmat_release(&a[l]);
            free(a);
            free(c.buf[0]);
            free(c.buf[1]);
        }
        printf("}}\n");
        free(x);
        free(y);
        ecp_mlp_free(m);
    }
    return 0;
}
