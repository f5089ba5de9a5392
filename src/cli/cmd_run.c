/* ecprune run: inference over a dataset split with the dense, sparse or automatic engine. The
 * loss and accuracy are computed exactly as `ecprune eval` does (same loss function, same
 * arg-max with ties to the lowest class), so the two agree to float rounding. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune run MODEL.onnx --data D [--split test|train]\n"
            "                   [--engine dense|sparse|auto] [--batch B] [--threads T] [--json]\n"
            "                   [--bf16] [--predictions OUT.npy]\n\n"
            "Runs the model over a dataset split with the inference engine and prints the loss,\n"
            "the accuracy (classification), the sample count and the time taken. The result is\n"
            "the same as 'ecprune eval' (to float rounding; with --bf16 within its bound);\n"
            "only the speed differs.\n\n"
            "  --data D         mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
            "  --split S        test (default) or train\n"
            "  --engine E       auto (default): per layer, sparse when its density is below this\n"
            "                   machine's break-even ('ecprune tune'), else dense OpenBLAS;\n"
            "                   dense / sparse: force one kind on every layer\n"
            "  --batch B        samples per forward call, 1..65536 (default 256); 1 measures\n"
            "                   latency, where the engine also skips zero inputs\n"
            "  --threads T      threads for OpenBLAS and the sparse kernels (default: all cores)\n"
            "  --bf16           round every weight to bfloat16 (8 significant bits) when the\n"
            "                   engine is built: each weight moves by at most 2^-8 of itself,\n"
            "                   so a layer's pre-activation by at most 2^-8 x sum |w x| (biases\n"
            "                   and sums stay float32). At batch 1 the window-permute layout\n"
            "                   then stores 16-bit values, 3 bytes per slot instead of 5: the\n"
            "                   gain is on large layers streamed from memory; run this to see\n"
            "                   what it costs in loss and accuracy first\n"
            "  --target-cols C  CSV data: target column numbers (default: last)\n"
            "  --predictions F  also write the model's outputs (N x K float32 .npy), after its\n"
            "                   output transform (Softmax/LogSoftmax) when it has one\n"
            "  --json           {\"loss\":..,\"accuracy\":..,\"n\":..,\"seconds\":..,"
            "\"samples_per_s\":..,...}\n\n"
            "example:\n  ecprune run p.onnx --data mnist --engine sparse --batch 1\n");
}

static int parse_engine(const char *s, ecp_engine_mode *m)
{
    if (!strcmp(s, "auto"))
        *m = ECP_ENGINE_AUTO;
    else if (!strcmp(s, "dense"))
        *m = ECP_ENGINE_DENSE;
    else if (!strcmp(s, "sparse"))
        *m = ECP_ENGINE_SPARSE;
    else
        return cli_usage_error("run", "--engine '%s': choose dense, sparse or auto", s);
    return 0;
}

/* Runs the engine over d in batches; ev gets the loss and accuracy, secs the time of the
 * forward passes alone, pred (unless NULL) the outputs (n x n_out, before the transform). */
static ecp_status run_all(ecp_sparse_net *s, const ecp_dataset *d, long batch,
                          ecp_eval_result *ev, double *secs, float *pred, ecp_error *err)
{
    float *y = malloc((size_t)batch * d->n_out * sizeof *y);
    if (!y)
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory");
    ecp_eval_acc ea = {0};
    ecp_status st = ECP_OK;
    *secs = 0;
    int64_t lo, hi; /* under mpirun this rank's share; the sums are added across ranks */
    ecp_dist_shard(d->n, &lo, &hi);
    for (int64_t at = lo; at < hi && !st; at += batch) {
        int b = (int)(hi - at < batch ? hi - at : batch);
        double t0 = ecp_now();
        st = ecp_sparse_forward(s, d->x + (size_t)at * d->n_in, b, y, err);
        *secs += ecp_now() - t0;
        if (!st)
            ecp_eval_accumulate(d, at, b, y, &ea);
        if (!st && pred)
            memcpy(pred + (size_t)at * d->n_out, y, (size_t)b * d->n_out * sizeof *y);
    }
    free(y);
    if (!(st = ecp_dist_agree(st, err)) && !(st = ecp_eval_acc_sum(&ea, err)))
        st = ecp_dist_max(secs, err); /* the slowest rank's time */
    ecp_eval_finish(d, &ea, ev);
    return st;
}

/* The outputs after the model's output transform, to path (.npy). */
static ecp_status write_predictions(const ecp_mlp *m, float *pred, const ecp_dataset *d,
                                    const char *path, ecp_error *err)
{
    ecp_out_transform_apply(ecp_mlp_output_transform(m), pred, d->n, d->n_out);
    return ecp_npy_write_f32(path, pred, d->n, d->n_out, err);
}

/* run's own options: the engine, the batch and where the predictions go. */
typedef struct {
    const char *engine;
    ecp_engine_mode mode;
    long batch;
    const char *pred;
    int bf16;
} run_opts;

static int run_opt(void *ctx, int c, char *arg)
{
    run_opts *r = ctx;
    if (c == 'e') {
        r->engine = arg;
        return parse_engine(arg, &r->mode);
    }
    if (c == 'p') {
        r->pred = arg;
        return 0;
    }
    if (c == 'f') {
        r->bf16 = 1;
        return 0;
    }
    return cli_parse_int("run", "--batch", arg, 1, 65536, &r->batch); /* 'b' */
}

static void print_result(const cli_args *a, const run_opts *r, const ecp_eval_result *ev,
                         double secs, double density)
{
    double sps = secs > 0 ? (double)ev->n / secs : 0;
    cli_print_eval(a, ev);
    if (a->json)
        printf(",\"n\":%lld,\"seconds\":%.6f,\"samples_per_s\":%.1f,\"engine\":\"%s\","
               "\"batch\":%ld,\"density\":%.6f,\"values\":\"%s\"}\n",
               (long long)ev->n, secs, sps, r->engine, r->batch, density,
               r->bf16 ? "bf16" : "float32");
    else
        printf("\nengine %s%s, batch %ld, weight density %.2f%%: %.3f s (%.0f samples/s)\n",
               r->engine, r->bf16 ? " (bf16 weights)" : "", r->batch, 100 * density, secs, sps);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_OPT_DATA, CLI_OPT_SPLIT, {"engine", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'}, {"predictions", required_argument, 0, 'p'},
        {"bf16", no_argument, 0, 'f'},
        CLI_OPT_THREADS, CLI_OPT_TARGET_COLS, CLI_OPT_JSON,
        CLI_OPT_HELP, {0, 0, 0, 0}};
    cli_args a;
    run_opts r = {"auto", ECP_ENGINE_AUTO, 256, NULL, 0};
    int rc = cli_parse(&a, "run", argc, argv, opts, run_opt, &r, help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (r.pred && ecp_dist_size() > 1) /* each rank holds only its share of the outputs */
        return cli_usage_error("run", "--predictions is not available under mpirun; run it "
                                      "in one process");
    if (r.pred && (rc = cli_check_output("run", "--predictions", r.pred)))
        return rc;
    cli_loaded l;
    const ecp_dataset *d;
    if ((rc = cli_load_split(&a, &l, &d)))
        return rc;
    ecp_sparse_opts so;
    ecp_sparse_opts_default(&so);
    so.mode = r.mode;
    so.threads = a.threads ? (int)a.threads : ecp_dist_default_threads();
    so.max_batch = r.batch < 256 ? (int)r.batch : 256;
    so.bf16 = r.bf16;
    ecp_sparse_net *s = NULL;
    ecp_eval_result ev;
    double secs = 0;
    ecp_error err = {0};
    /* The dataset holds n x n_out values already: the size does not overflow. */
    float *pred = r.pred ? malloc((size_t)d->n * d->n_out * sizeof *pred) : NULL;
    if (r.pred && !pred)
        rc = cli_die("run", (ecp_fail(&err, ECP_ERR_MEMORY, "--predictions: out of memory"), &err));
    else if (ecp_dist_agree(ecp_sparse_create(&s, l.m, &so, &err), &err) ||
             run_all(s, d, r.batch, &ev, &secs, pred, &err) ||
             (pred && write_predictions(l.m, pred, d, r.pred, &err)))
        rc = cli_die("run", &err);
    else if (ecp_dist_rank() == 0)
        print_result(&a, &r, &ev, secs, ecp_sparse_density(s));
    free(pred);
    ecp_sparse_free(s);
    cli_loaded_free(&l);
    return rc;
}
