/* bench helper: batch-1 latency of the bare C calls the Python package makes, so that
 * bench_python.sh can subtract them from the Python timings.
 * usage: py_forward MODEL.onnx X.npy SECONDS   (X: one row, float32)
 * prints {"dense_us": median, "sparse_us": median} over blocks of 200 calls */
#include "ecprune.h"
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define BLOCKS 4096
static double block_us[BLOCKS];

static double median_us(int kind, ecp_mlp *m, ecp_ws *ws, ecp_sparse_net *sp, const float *x,
                        float *y, double seconds)
{
    ecp_error err = {0};
    int nb = 0;
    double t_end = ecp_now() + seconds;
    while (nb < BLOCKS && (nb < 5 || ecp_now() < t_end)) {
        double t0 = ecp_now();
        for (int i = 0; i < 200; i++) {
            if (kind == 0)
                ecp_mlp_forward(m, ws, x, 1);
            else
                ecp_sparse_forward(sp, x, 1, y, &err);
        }
        block_us[nb++] = (ecp_now() - t0) / 200 * 1e6;
    }
    qsort(block_us, nb, sizeof *block_us, cmp);
    return block_us[nb / 2];
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: py_forward MODEL.onnx X.npy SECONDS\n");
        return 2;
    }
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_ws *ws = NULL;
    ecp_sparse_net *sp = NULL;
    ecp_npy a;
    float *x = NULL;
    if (ecp_onnx_load(&m, argv[1], &err) || ecp_npy_read(argv[2], &a, &err) ||
        ecp_npy_to_f32(&a, argv[2], &x, &err) || ecp_ws_create(&ws, m, 1, &err) ||
        ecp_sparse_create(&sp, m, NULL, &err)) {
        fprintf(stderr, "py_forward: %s\n", err.msg);
        return 1;
    }
    float *y = malloc(sizeof(float) * (size_t)ecp_mlp_n_out(m));
    double s = atof(argv[3]);
    double d = median_us(0, m, ws, sp, x, y, s), q = median_us(1, m, ws, sp, x, y, s);
    printf("{\"dense_us\": %.3f, \"sparse_us\": %.3f}\n", d, q);
    free(y);
    free(x);
    ecp_npy_release(&a);
    ecp_sparse_free(sp);
    ecp_ws_free(ws);
    ecp_mlp_free(m);
    return 0;
}
