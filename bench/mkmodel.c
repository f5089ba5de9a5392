/* bench helper: a random (untrained) MLP pruned by magnitude, saved as ONNX. Timing does not
 * need a trained model, only its shape and sparsity.
 * usage: mkmodel ARCH SPARSITY OUT.onnx [SEED] */
#include "ecprune.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mkmodel ARCH SPARSITY OUT.onnx [SEED]\n");
        return 2;
    }
    ecp_error err = {0};
    ecp_mlp *m;
    double sp = atof(argv[2]);
    if (ecp_mlp_create_arch(&m, argv[1], ECP_ACT_RELU, &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    ecp_mlp_init(m, argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    /* layer-wise magnitude pruning to the same sparsity in every layer */
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        size_t n = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        float *W = ecp_mlp_weights(m, l), *a = malloc(n * sizeof *a);
        uint8_t *p = ecp_mlp_pruned(m, l);
        if (!a)
            return 1;
        for (size_t i = 0; i < n; i++)
            a[i] = fabsf(W[i]);
        qsort(a, n, sizeof *a, cmp_float);
        size_t k = (size_t)(sp * (double)n);
        float thr = k ? a[k - 1] : -1.0f;
        for (size_t i = 0; i < n; i++)
            if (fabsf(W[i]) <= thr) {
                W[i] = 0.0f;
                p[i] = 1;
            }
        free(a);
    }
    if (ecp_onnx_save(m, argv[3], &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    ecp_mlp_free(m);
    return 0;
}
