/* bench helper for bench_obs.sh: one-shot `prune --method METHOD --allocation ALLOC` through the
 * library, timed as PyTorch's side is (bench/torch_obs.py: best and median of REPS calls after
 * a warm-up) and also cold (the first call in the process, as the CLI makes it: the memory it
 * touches first is faulted in, and OpenBLAS sets up its buffers). Each call prunes a fresh
 * copy of the model on the same calibration set.
 * usage: obs_warm MODEL DATA METHOD ALLOC SPARSITY CALIB THREADS [REPS]
 * prints one line of JSON: {"cold":s,"best":s,"median":s} */
#include "ecprune.h"
#include "ecprune_tools.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prunes a copy of m; the seconds of ecp_prune alone, or -1 on failure (err set). */
static double one_run(const ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                      ecp_error *err)
{
    ecp_mlp *c = NULL;
    if (ecp_mlp_clone(m, &c, err))
        return -1;
    double t0 = ecp_now();
    ecp_status s = ecp_prune(c, train, o, NULL, err);
    double t = ecp_now() - t0;
    ecp_mlp_free(c);
    return s ? -1 : t;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: obs_warm MODEL DATA METHOD ALLOC SPARSITY CALIB THREADS [REPS]\n");
        return 2;
    }
    int reps = argc > 8 ? atoi(argv[8]) : 5;
    ecp_prune_opts o;
    ecp_prune_opts_default(&o);
    o.method = argv[3];
    o.allocation = !strcmp(argv[4], "uniform") ? ECP_ALLOC_UNIFORM : ECP_ALLOC_GLOBAL;
    o.sparsity = atof(argv[5]);
    o.calib = atoll(argv[6]);
    o.threads = atoi(argv[7]);
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL;
    if (reps < 1 || reps > 1000 || ecp_onnx_load(&m, argv[1], &err) ||
        ecp_data_open(argv[2], NULL, &train, NULL, &err)) {
        fprintf(stderr, "obs_warm: %s\n", err.msg[0] ? err.msg : "bad arguments");
        return 1;
    }
    double cold = one_run(m, train, &o, &err), t[1000];
    for (int r = 0; r < reps && cold >= 0; r++)
        if ((t[r] = one_run(m, train, &o, &err)) < 0)
            cold = -1;
    if (cold < 0) {
        fprintf(stderr, "obs_warm: %s\n", err.msg);
        return 1;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    printf("{\"cold\":%.4f,\"best\":%.4f,\"median\":%.4f}\n", cold, t[0], t[reps / 2]);
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    return 0;
}
