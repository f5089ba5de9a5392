/* bench helper for bench_stats.sh: the roof of the EC statistics pass (output sensitivity) of
 * MODEL on CALIB samples of DATA (the same seeded shuffle as `ecprune prune --seed 1`): its
 * floating-point work, and the time OpenBLAS sgemm takes for it with THREADS threads.
 *
 * Work is counted as GEMM-type multiply-adds (2 flops each); elementwise work (activations,
 * squares, the double accumulation) is left out on both sides.
 *   dense     the pass as a dense implementation does it (stats.c's dense path, PyTorch):
 *             forward 2 N sum ni*no, K backward passes 2 N K sum_{l>=1} ni*no (dz W),
 *             two moment GEMMs per layer 4 N sum ni*no;
 *   executed  what stats_sparse.c does on this data, at its padded widths np (16 floats):
 *             forward 2 nnz(a_l) np_{l+1} (both forwards of the first batch), the row scaling
 *             below the top layer 2 K np, each deeper backward 2 Kp active(l+1) np_{l+1}, the
 *             moments 4 nnz(a_l - c_l) np_{l+1}.
 * The rate: the dense pass's own sgemm calls (same shapes and transposes, every batch size of
 * the pass) timed on random data, best of REPS per batch size; roof = flops / that rate.
 * And the pass itself (ecp_stats_compute, as `ecprune prune --method ec` calls it, without the
 * scores and the selection that the CLI's stats_seconds also holds): its first call in the
 * process (cold: fresh memory is faulted in) and the best of REPS more.
 * usage: stats_roof MODEL DATA CALIB THREADS [REPS]   prints one line of JSON */
#include "prune/prune.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256 /* ECP_STATS_BATCH */
#define RG 5      /* stats_sparse.c's register block of outputs */

static int pad16(int n) { return (n + 15) / 16 * 16; }

/* The dense pass's sgemm calls for one batch of b samples. */
static void dense_batch(const ecp_mlp *m, int b, float *const *buf)
{
    int L = m->n_layers, K = m->sizes[L];
    for (int l = 0; l < L; l++) /* forward: Z = A W^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, m->sizes[l + 1], m->sizes[l],
                    1.0f, buf[0], m->sizes[l], buf[1], m->sizes[l], 0.0f, buf[2], m->sizes[l + 1]);
    for (int k = 0; k < K; k++) /* one backward per output: dA = dZ W */
        for (int l = L - 1; l >= 1; l--)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, m->sizes[l],
                        m->sizes[l + 1], 1.0f, buf[2], m->sizes[l + 1], buf[1], m->sizes[l], 0.0f,
                        buf[0], m->sizes[l]);
    for (int l = 0; l < L; l++) /* M1, M2: S^T A', S^T A'^2 */
        for (int q = 0; q < 2; q++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m->sizes[l + 1], m->sizes[l], b,
                        1.0f, buf[2], m->sizes[l + 1], buf[0], m->sizes[l], 0.0f, buf[3],
                        m->sizes[l]);
}

static double time_dense(const ecp_mlp *m, int b, int reps, float *const *buf)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = ecp_now();
        dense_batch(m, b, buf);
        double t = ecp_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* Adds the executed flops of the sparse pass on one batch already through ws's forward to f:
 * forward, backward, moments. */
static void executed_batch(const ecp_mlp *m, const ecp_ws *ws, int b, const float *const *c,
                           float *d, int twice_fwd, double f[3])
{
    int L = m->n_layers, K = m->sizes[L], Kp = (K + RG - 1) / RG * RG;
    for (int l = 0; l < L; l++) {
        int ni = m->sizes[l], np = pad16(m->sizes[l + 1]);
        const float *a = ecp_ws_act(ws, l);
        double nz = 0, nzc = 0;
        for (size_t i = 0; i < (size_t)b * ni; i++) {
            nz += a[i] != 0.0f;
            nzc += a[i] != c[l][i % ni];
        }
        f[0] += (twice_fwd ? 2 : 1) * 2.0 * nz * np;
        f[2] += 4.0 * nzc * np;
    }
    if (L >= 2)
        f[1] += 2.0 * b * K * pad16(m->sizes[L - 1]);
    for (int l = L - 3; l >= 0; l--) {
        const ecp_layer *u = &m->layer[l + 1];
        size_t n = (size_t)b * u->n_out;
        for (size_t i = 0; i < n; i++)
            d[i] = 1.0f;
        ecp_act_backward_p(u->act, u->act_p, ecp_ws_pre(ws, l + 1), ecp_ws_act(ws, l + 2), d, d,
                           n);
        double na = 0;
        for (size_t i = 0; i < n; i++)
            na += d[i] != 0.0f;
        f[1] += 2.0 * Kp * na * pad16(m->sizes[l + 1]);
    }
}

/* The reference values of stats_sparse.c: 0 for a column at least half zeros over the first
 * batch, its mean otherwise. */
static void shifts(const ecp_mlp *m, const ecp_ws *ws, int b, float **c)
{
    for (int l = 0; l < m->n_layers; l++) {
        int ni = m->sizes[l];
        const float *a = ecp_ws_act(ws, l);
        for (int j = 0; j < ni; j++) {
            double sum = 0;
            int zeros = 0;
            for (int r = 0; r < b; r++) {
                sum += a[(size_t)r * ni + j];
                zeros += a[(size_t)r * ni + j] == 0.0f;
            }
            c[l][j] = 2 * zeros >= b ? 0.0f : (float)(sum / b);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: stats_roof MODEL DATA CALIB THREADS [REPS]\n");
        return 2;
    }
    int64_t N = atoll(argv[3]);
    int T = atoi(argv[4]), reps = argc > 5 ? atoi(argv[5]) : 5;
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *cal = NULL;
    ecp_ws *ws = NULL;
    if (T < 1 || reps < 1 || ecp_onnx_load(&m, argv[1], &err) ||
        ecp_data_open(argv[2], NULL, &train, NULL, &err) ||
        ecp_prune_calib(train, N, 1, &cal, &err) || ecp_ws_create(&ws, m, BATCH, &err)) {
        fprintf(stderr, "stats_roof: %s\n", err.msg[0] ? err.msg : "bad arguments");
        return 1;
    }
    int L = m->n_layers, K = m->sizes[L], wmax = 0, B = N < BATCH ? (int)N : BATCH;
    for (int l = 0; l <= L; l++)
        wmax = m->sizes[l] > wmax ? m->sizes[l] : wmax;
    float *buf[4], *c[64], *d = malloc(sizeof(float) * (size_t)BATCH * wmax);
    for (int i = 0; i < 4; i++) {
        size_t n = i == 3 ? (size_t)wmax * wmax : (size_t)BATCH * wmax;
        buf[i] = malloc(sizeof(float) * n);
        for (size_t j = 0; buf[i] && j < n; j++)
            buf[i][j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
    }
    for (int l = 0; l < L && l < 64; l++)
        c[l] = malloc(sizeof(float) * (size_t)m->sizes[l]);
    if (L > 64 || !d || !buf[0] || !buf[1] || !buf[2] || !buf[3])
        return 1;
    double sum = 0, sum1 = 0, ex[3] = {0, 0, 0};
    for (int l = 0; l < L; l++) {
        sum += (double)m->sizes[l] * m->sizes[l + 1];
        sum1 += l ? (double)m->sizes[l] * m->sizes[l + 1] : 0;
    }
    double dense = N * (2 * sum + 2.0 * K * sum1 + 4 * sum);
    for (int64_t at = 0; at < N; at += B) {
        int b = (int)(N - at < B ? N - at : B);
        ecp_mlp_forward(m, ws, cal->x + (size_t)at * m->sizes[0], b);
        if (!at)
            shifts(m, ws, b, c);
        executed_batch(m, ws, b, (const float *const *)c, d, at == 0, ex);
    }
    openblas_set_num_threads(T);
    int64_t full = N / B, rest = N % B;
    dense_batch(m, B, buf); /* warm-up */
    double roof = (double)full * time_dense(m, B, reps, buf) +
                  (rest ? time_dense(m, (int)rest, reps, buf) : 0);
    double exec = ex[0] + ex[1] + ex[2], cold = 0, warm = 1e30;
    for (int r = 0; r <= reps; r++) {
        ecp_stats *st = NULL;
        double t0 = ecp_now();
        if (ecp_stats_compute(m, cal, ECP_NEED_MOMENTS, ECP_SENS_OUTPUT, 16, 2, &st, &err)) {
            fprintf(stderr, "stats_roof: %s\n", err.msg);
            return 1;
        }
        double t = ecp_now() - t0;
        ecp_stats_free(st);
        if (!r)
            cold = t;
        else
            warm = t < warm ? t : warm;
    }
    printf("{\"threads\":%d,\"n\":%lld,\"dense_flops\":%.6g,\"dense_fwd_bwd_mom\":[%.6g,%.6g,%.6g],"
           "\"executed_flops\":%.6g,\"executed_fwd_bwd_mom\":[%.6g,%.6g,%.6g],"
           "\"sgemm_gflops\":%.2f,\"dense_roof_s\":%.6f,\"executed_roof_s\":%.6f,"
           "\"pass_cold_s\":%.6f,\"pass_warm_s\":%.6f}\n",
           T, (long long)N, dense, N * 2 * sum, N * 2.0 * K * sum1, N * 4 * sum, exec, ex[0],
           ex[1], ex[2], dense / roof * 1e-9, roof, exec / dense * roof, cold, warm);
    return 0;
}
