/* ecprune eval: loss (and accuracy) of a model on a dataset split. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f, "usage: ecprune eval MODEL.onnx --data D [--split test|train] [--json]\n"
               "                    [--predictions OUT.npy]\n\n"
               "Evaluates a model: mean loss (cross-entropy for class labels, MSE otherwise) and,\n"
               "for classification, accuracy.\n\n"
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

/* Writes the model's outputs on d to path (.npy); 0 or an exit status. */
static int write_predictions(const ecp_mlp *m, const ecp_dataset *d, const char *path)
{
    ecp_error err = {0};
    float *out = malloc((size_t)d->n * d->n_out * sizeof *out);
    if (!out) {
        fprintf(stderr, "ecprune eval: out of memory\n");
        return 1;
    }
    int rc = 0;
    if (ecp_predict(m, d, out, &err) || ecp_npy_write_f32(path, out, d->n, d->n_out, &err))
        rc = cli_die("eval", &err);
    free(out);
    return rc;
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
    if (ecp_evaluate(l.m, d, &ev, &err))
        rc = cli_die("eval", &err);
    else if (!pred || !(rc = write_predictions(l.m, d, pred))) {
        cli_print_eval(&a, &ev);
        if (a.json)
            printf(",\"n\":%lld}", (long long)ev.n);
        printf("\n");
    }
    cli_loaded_free(&l);
    return rc;
}
