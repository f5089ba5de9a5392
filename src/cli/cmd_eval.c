/* ecprune eval: loss (and accuracy) of a model on a dataset split. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f, "usage: ecprune eval MODEL.onnx --data D [--split test|train] [--json]\n"
               "                    [--predictions OUT.npy]\n\n"
               "Evaluates a model: mean loss (cross-entropy for class labels, MSE otherwise) and,\n"
               "for classification, accuracy. A model whose file ends in Softmax/LogSoftmax is a\n"
               "classifier: targets may also be class numbers or one-hot rows, the loss is taken\n"
               "on the logits before it and --predictions are its outputs after it.\n\n"
               "  --data D              mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
               "  --split S             test (default) or train\n"
               "  --predictions FILE    also write the model outputs (N x K float32 .npy)\n"
               "  --target-cols C       CSV data: target column numbers (default: last)\n"
               "  --threads T           BLAS threads\n"
               "  --json                {\"loss\":..., \"accuracy\":..., \"n\":...}\n");
}

static ecp_status write_predictions(const ecp_mlp *m, const ecp_dataset *d, const char *path,
                                    ecp_error *err)
{
    float *out = malloc((size_t)d->n * d->n_out * sizeof *out);
    if (!out)
        return ecp_fail(err, ECP_ERR_MEMORY, "--predictions: out of memory");
    ecp_status s = ecp_predict(m, d, out, err);
    if (!s)
        s = ecp_npy_write_f32(path, out, d->n, d->n_out, err);
    free(out);
    return s;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},  {"split", required_argument, 0, 's'},
        {"predictions", required_argument, 0, 'p'}, {"target-cols", required_argument, 0, 'T'},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *data = NULL, *split = "test", *pred = NULL, *target_cols = NULL;
    long threads = 0;
    int json = 0, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'p': pred = optarg; break;
        case 'T': target_cols = optarg; break;
        case 't': if ((rc = cli_parse_int("eval", "--threads", optarg, 1, 1024, &threads))) return rc; break;
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("eval", "expected exactly one model file");
    if (!data)
        return cli_usage_error("eval", "--data is required");
    if (pred && (rc = cli_check_output("eval", "--predictions", pred)))
        return rc;
    int use_test = !strcmp(split, "test");
    if (!use_test && strcmp(split, "train"))
        return cli_usage_error("eval", "--split '%s': choose test or train", split);
    if (!threads) /* the ranks on one machine share its cores */
        threads = ecp_dist_default_threads();
    cli_set_threads((int)threads);
    const char *model = argv[optind];
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *test = NULL;
    int status = 1;
    if (ecp_dist_agree(cli_open_err(model, data, target_cols, &m, &train, &test, &err), &err)) {
        status = cli_die("eval", &err);
        goto done;
    }
    const ecp_dataset *d = use_test ? test : train;
    ecp_eval_result ev;
    if (ecp_evaluate(m, d, &ev, &err)) {
        status = cli_die("eval", &err);
        goto done;
    }
    /* rank 0 alone writes the predictions; the others learn how it went */
    if (ecp_dist_agree(pred && ecp_dist_rank() == 0 ? write_predictions(m, d, pred, &err)
                                                    : ECP_OK, &err)) {
        status = cli_die("eval", &err);
        goto done;
    }
    if (ecp_dist_rank() != 0) {
        status = 0;
        goto done;
    }
    if (json) {
        printf("{\"loss\":%.9g", ev.loss);
        if (ev.accuracy >= 0)
            printf(",\"accuracy\":%.6f", ev.accuracy);
        printf(",\"n\":%lld}\n", (long long)ev.n);
    } else {
        printf("%s on %s (%s, %lld samples): loss %.6f", model, data, split, (long long)ev.n,
               ev.loss);
        if (ev.accuracy >= 0)
            printf("  accuracy %.2f%%", 100 * ev.accuracy);
        printf("\n");
    }
    status = 0;
done:
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
