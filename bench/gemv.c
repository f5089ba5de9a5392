/* bench helper: the engine's batch-1 dense kernel (src/sparse/gemv.c, ecp_gemv_rows, bias +
 * ReLU fused) against OpenBLAS cblas_sgemv on the same product y = W x + b
 * (row-major W), one thread, alternating the two call by call; min and median of REPS calls.
 * Layers larger than the caches are timed cold by cycling through enough copies of the layer
 * to exceed the last-level cache (COPIES), as in a network whose other layers evict it.
 * usage: gemv N_OUT N_IN [REPS] [COPIES]   prints one line: min/median us of both, their ratio */
#include "sparse/sparse.h"
#include <cblas.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: gemv N_OUT N_IN [REPS] [COPIES]\n");
        return 2;
    }
    int N = atoi(argv[1]), K = atoi(argv[2]);
    int reps = argc > 3 ? atoi(argv[3]) : 200, copies = argc > 4 ? atoi(argv[4]) : 1;
    if (N < 1 || K < 1 || reps < 1 || copies < 1 || copies > 64)
        return 2;
    ecp_error err = {0};
    float *W[64], *b = calloc((size_t)N, sizeof(float));
    float *x = ecp_alloc_aligned((size_t)K, &err), *y = ecp_alloc_aligned((size_t)N, &err);
    double *tp = malloc(sizeof(double) * reps), *tb = malloc(sizeof(double) * reps);
    if (!b || !x || !y || !tp || !tb)
        return 1;
    ecp_rng r;
    ecp_rng_seed(&r, 1);
    for (int c = 0; c < copies; c++) {
        W[c] = ecp_alloc((size_t)N * K, sizeof(float), "W", &err);
        if (!W[c])
            return 1;
        for (size_t i = 0; i < (size_t)N * K; i++)
            W[c][i] = (float)ecp_rng_uniform(&r) - 0.5f;
    }
    for (int i = 0; i < K; i++)
        x[i] = (float)ecp_rng_uniform(&r);
    openblas_set_num_threads(1);
    for (int i = 0; i < reps; i++) {
        int c = i % copies;
        double t0 = ecp_now();
        ecp_gemv_rows(W[c], N, K, x, b, ECP_ACT_RELU, NULL, y);
        double t1 = ecp_now();
        memcpy(y, b, (size_t)N * sizeof *y);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W[(c + copies / 2) % copies], K, x, 1,
                    1.0f, y, 1);
        double t2 = ecp_now();
        tp[i] = t1 - t0;
        tb[i] = t2 - t1;
    }
    qsort(tp, reps, sizeof *tp, cmp);
    qsort(tb, reps, sizeof *tb, cmp);
    printf("%dx%d batch 1 (%d copies): ecprune %.2f / %.2f us, OpenBLAS sgemv %.2f / %.2f us "
           "(min / median), %.1f GB/s ecprune; ratio (median) %.2fx\n",
           N, K, copies, tp[0] * 1e6, tp[reps / 2] * 1e6, tb[0] * 1e6, tb[reps / 2] * 1e6,
           4.0 * N * K / tp[reps / 2] * 1e-9, tb[reps / 2] / tp[reps / 2]);
    for (int c = 0; c < copies; c++) {
        free(W[c]);
    }
    free(b); free(x); free(y); free(tp); free(tb);
    return 0;
}
