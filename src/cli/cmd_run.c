/* ecprune run: inference over a dataset split with the dense, sparse or automatic engine. The
 * loss and accuracy are computed exactly as `ecprune eval` does (same loss function, same
 * arg-max with ties to the lowest class), so the two agree to float rounding. */
#include "cli.h"
#include <getopt.h>
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

typedef struct {
    const char *model, *data, *split, *engine;
    long batch;
    int json;
} run_desc;

static void print_result(const run_desc *r, const ecp_eval_result *ev, double secs,
                         double density)
{
    double sps = secs > 0 ? (double)ev->n / secs : 0;
    if (r->json) {
        printf("{\"loss\":%.9g", ev->loss);
        if (ev->accuracy >= 0)
            printf(",\"accuracy\":%.6f", ev->accuracy);
        printf(",\"n\":%lld,\"seconds\":%.6f,\"samples_per_s\":%.1f,\"engine\":\"%s\","
               "\"batch\":%ld,\"density\":%.6f}\n",
               (long long)ev->n, secs, sps, r->engine, r->batch, density);
        return;
    }
    printf("%s on %s (%s, %lld samples): loss %.6f", r->model, r->data, r->split,
           (long long)ev->n, ev->loss);
    if (ev->accuracy >= 0)
        printf("  accuracy %.2f%%", 100 * ev->accuracy);
    printf("\nengine %s, batch %ld, weight density %.2f%%: %.3f s (%.0f samples/s)\n", r->engine,
           r->batch, 100 * density, secs, sps);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},   {"split", required_argument, 0, 's'},
        {"engine", required_argument, 0, 'e'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"target-cols", required_argument, 0, 'T'},
        {"json", no_argument, 0, 'j'},         {"help", no_argument, 0, 'h'},
        {"predictions", required_argument, 0, 'p'},
        {0, 0, 0, 0}};
    const char *data = NULL, *split = "test", *target_cols = NULL, *engine = "auto";
    const char *pred_path = NULL;
    float *pred = NULL;
    long threads = 0, batch = 256;
    int json = 0, c, rc;
    ecp_engine_mode mode = ECP_ENGINE_AUTO;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'e': engine = optarg; break;
        case 'T': target_cols = optarg; break;
        case 'p': pred_path = optarg; break;
        case 'b': if ((rc = cli_parse_int("run", "--batch", optarg, 1, 65536, &batch))) return rc; break;
        case 't': if ((rc = cli_parse_int("run", "--threads", optarg, 1, 256, &threads))) return rc; break;
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("run", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("run", "expected exactly one model file");
    if (!data)
        return cli_usage_error("run", "--data is required");
    if ((rc = parse_engine(engine, &mode)))
        return rc;
    if (pred_path && ecp_dist_size() > 1) /* each rank holds only its share of the outputs */
        return cli_usage_error("run", "--predictions is not available under mpirun; run it "
                                      "in one process");
    if (pred_path && (rc = cli_check_output("run", "--predictions", pred_path)))
        return rc;
    int use_test = !strcmp(split, "test");
    if (!use_test && strcmp(split, "train"))
        return cli_usage_error("run", "--split '%s': choose test or train", split);
    if (!threads) /* the ranks on one machine share its cores */
        threads = ecp_dist_default_threads();
    cli_set_threads((int)threads);
    const char *model = argv[optind];
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *test = NULL;
    ecp_sparse_net *s = NULL;
    int status = 1;
    if (ecp_dist_agree(cli_open_err(model, data, target_cols, &m, &train, &test, &err), &err)) {
        status = cli_die("run", &err);
        goto done;
    }
    const ecp_dataset *d = use_test ? test : train;
    ecp_sparse_opts so;
    ecp_sparse_opts_default(&so);
    so.mode = mode;
    so.threads = (int)threads;
    so.max_batch = batch < 256 ? (int)batch : 256;
    ecp_eval_result ev;
    double secs = 0;
    /* The dataset holds n x n_out values already: the size does not overflow. */
    if (pred_path && !(pred = malloc((size_t)d->n * d->n_out * sizeof *pred))) {
        fprintf(stderr, "ecprune run: out of memory for --predictions\n");
        goto done;
    }
    if (ecp_dist_agree(ecp_sparse_create(&s, m, &so, &err), &err) ||
        run_all(s, d, batch, &ev, &secs, pred, &err)) {
        status = cli_die("run", &err);
        goto done;
    }
    if (pred && ecp_dist_rank() == 0) {
        ecp_out_transform_apply(ecp_mlp_output_transform(m), pred, d->n, d->n_out);
        if (ecp_npy_write_f32(pred_path, pred, d->n, d->n_out, &err)) {
            status = cli_die("run", &err);
            goto done;
        }
    }
    run_desc rd = {model, data, split, engine, batch, json};
    if (ecp_dist_rank() == 0)
        print_result(&rd, &ev, secs, ecp_sparse_density(s));
    status = 0;
done:
    free(pred);
    ecp_sparse_free(s);
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
