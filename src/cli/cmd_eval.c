/* ecprune eval: loss (and accuracy) of a model on a dataset split. */
#include "cli.h"
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

static int eval_opt(void *ctx, int c, char *arg)
{
    *(const char **)ctx = arg; /* --predictions, the only option of eval's own */
    return 0;
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
        CLI_OPT_DATA, CLI_OPT_SPLIT, {"predictions", required_argument, 0, 'p'},
        CLI_OPT_TARGET_COLS, CLI_OPT_THREADS, CLI_OPT_JSON, CLI_OPT_HELP, {0, 0, 0, 0}};
    cli_args a;
    const char *pred = NULL;
    int rc = cli_parse(&a, "eval", argc, argv, opts, eval_opt, &pred, help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (pred && (rc = cli_check_output("eval", "--predictions", pred)))
        return rc;
    cli_loaded l;
    const ecp_dataset *d;
    if ((rc = cli_load_split(&a, &l, &d)))
        return rc;
    ecp_eval_result ev;
    ecp_error err = {0};
    /* rank 0 alone writes the predictions and prints; the others learn how it went */
    if (ecp_evaluate(l.m, d, &ev, &err) ||
        ecp_dist_agree(pred && ecp_dist_rank() == 0 ? write_predictions(l.m, d, pred, &err)
                                                    : ECP_OK, &err))
        rc = cli_die("eval", &err);
    else if (ecp_dist_rank() == 0) {
        cli_print_eval(&a, &ev);
        if (a.json)
            printf(",\"n\":%lld}", (long long)ev.n);
        printf("\n");
    }
    cli_loaded_free(&l);
    return rc;
}
