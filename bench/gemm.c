/* bench helper: the engine's packed dense kernel (src/sparse/gemm.c, bias + ReLU fused) against
 * OpenBLAS cblas_sgemm on the same product YT = W XT (feature-major, as the engine calls both),
 * one thread, best of REPS calls each (the machine may be shared: the best call is the one
 * nothing else disturbed).
 * usage: gemm N_OUT N_IN BATCH [REPS]   prints one line: GFLOP/s of both and their ratio */
#include "sparse/sparse.h"
#include <cblas.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: gemm N_OUT N_IN BATCH [REPS]\n");
        return 2;
    }
    int N = atoi(argv[1]), K = atoi(argv[2]), B = atoi(argv[3]);
    int reps = argc > 4 ? atoi(argv[4]) : 20;
    if (N < 1 || K < 1 || B < 1 || reps < 1)
        return 2;
    ecp_error err = {0};
    float *W = malloc(sizeof(float) * (size_t)N * K), *b = calloc((size_t)N, sizeof(float));
    float *X = ecp_alloc_aligned((size_t)K * B, &err), *Y = ecp_alloc_aligned((size_t)N * B, &err);
    float *work = ecp_alloc_aligned(ecp_gemm_work_floats(B), &err);
    ecp_wpack p;
    if (!W || !b || !X || !Y || !work)
        return 1;
    ecp_rng r;
    ecp_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)N * K; i++)
        W[i] = (float)ecp_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < (size_t)K * B; i++)
        X[i] = (float)ecp_rng_uniform(&r);
    if (ecp_wpack_build(&p, W, N, K, &err)) {
        fprintf(stderr, "gemm: %s\n", err.msg);
        return 1;
    }
    openblas_set_num_threads(1);
    double tp = 1e30, tb = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = ecp_now();
        ecp_gemm_packed(&p, X, B, (size_t)B, b, ECP_ACT_RELU, NULL, Y, work);
        double t1 = ecp_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, B, K, 1.0f, W, K, X, B, 0.0f, Y,
                    B);
        double t2 = ecp_now();
        tp = t1 - t0 < tp ? t1 - t0 : tp;
        tb = t2 - t1 < tb ? t2 - t1 : tb;
    }
    double f = 2.0 * N * K * B * 1e-9;
    printf("%dx%d batch %d: packed %.1f GFLOP/s, OpenBLAS sgemm %.1f GFLOP/s, ratio %.2fx\n", N, K,
           B, f / tp, f / tb, tb / tp);
    ecp_wpack_release(&p);
    free(W); free(b); free(X); free(Y); free(work);
    return 0;
}
