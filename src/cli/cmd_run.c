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
            "                   [--engine dense|sparse|auto] [--batch B] [--threads T] [--json]\n\n"
            "Runs the model over a dataset split with the inference engine and prints the loss,\n"
            "the accuracy (classification), the sample count and the time taken. The result is\n"
            "the same as 'ecprune eval' (to float rounding); only the speed differs.\n\n"
            "  --data D         mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
            "  --split S        test (default) or train\n"
            "  --engine E       auto (default): per layer, sparse when its density is below this\n"
            "                   machine's break-even ('ecprune tune'), else dense OpenBLAS;\n"
            "                   dense / sparse: force one kind on every layer\n"
            "  --batch B        samples per forward call, 1..65536 (default 256); 1 measures\n"
            "                   latency, where the engine also skips zero inputs\n"
            "  --threads T      threads for OpenBLAS and the sparse kernels (default: all cores)\n"
            "  --target-cols C  CSV data: target column numbers (default: last)\n"
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
 * forward passes alone. */
static ecp_status run_all(ecp_sparse_net *s, const ecp_dataset *d, long batch,
                          ecp_eval_result *ev, double *secs, ecp_error *err)
{
    float *y = malloc((size_t)batch * d->n_out * sizeof *y);
    if (!y)
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory");
    ecp_eval_acc ea = {0};
    ecp_status st = ECP_OK;
    *secs = 0;
    for (int64_t at = 0; at < d->n && !st; at += batch) {
        int b = (int)(d->n - at < batch ? d->n - at : batch);
        double t0 = ecp_now();
        st = ecp_sparse_forward(s, d->x + (size_t)at * d->n_in, b, y, err);
        *secs += ecp_now() - t0;
        if (!st)
            ecp_eval_accumulate(d, at, b, y, &ea);
    }
    free(y);
    ecp_eval_finish(d, &ea, ev);
    return st;
}

/* run's own options: the engine and the batch. */
typedef struct {
    const char *engine;
    ecp_engine_mode mode;
    long batch;
} run_opts;

static int run_opt(void *ctx, int c, char *arg)
{
    run_opts *r = ctx;
    if (c == 'e') {
        r->engine = arg;
        return parse_engine(arg, &r->mode);
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
               "\"batch\":%ld,\"density\":%.6f}\n",
               (long long)ev->n, secs, sps, r->engine, r->batch, density);
    else
        printf("\nengine %s, batch %ld, weight density %.2f%%: %.3f s (%.0f samples/s)\n",
               r->engine, r->batch, 100 * density, secs, sps);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_OPT_DATA, CLI_OPT_SPLIT, {"engine", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'}, CLI_OPT_THREADS, CLI_OPT_TARGET_COLS, CLI_OPT_JSON,
        CLI_OPT_HELP, {0, 0, 0, 0}};
    cli_args a;
    run_opts r = {"auto", ECP_ENGINE_AUTO, 256};
    int rc = cli_parse(&a, "run", argc, argv, opts, run_opt, &r, help);
    if (rc)
        return rc < 0 ? 0 : rc;
    cli_loaded l;
    const ecp_dataset *d;
    if ((rc = cli_load_split(&a, &l, &d)))
        return rc;
    ecp_sparse_opts so;
    ecp_sparse_opts_default(&so);
    so.mode = r.mode;
    so.threads = (int)a.threads;
    so.max_batch = r.batch < 256 ? (int)r.batch : 256;
    ecp_sparse_net *s = NULL;
    ecp_eval_result ev;
    double secs = 0;
    ecp_error err = {0};
    if (ecp_sparse_create(&s, l.m, &so, &err) || run_all(s, d, r.batch, &ev, &secs, &err))
        rc = cli_die("run", &err);
    else
        print_result(&a, &r, &ev, secs, ecp_sparse_density(s));
    ecp_sparse_free(s);
    cli_loaded_free(&l);
    return rc;
}
