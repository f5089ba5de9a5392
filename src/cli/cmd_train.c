/* ecprune train: train an MLP on a dataset and save it as ONNX. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune train --data D --arch W0-W1-...-WL -o model.onnx [options]\n\n"
            "Trains a fully-connected network with mini-batch SGD or Adam and writes it as ONNX.\n"
            "The loss follows the data: softmax cross-entropy for class labels, MSE for targets.\n\n"
            "  --data D            mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
            "  --arch A            layer widths, e.g. 784-300-100-10 (input first, output last)\n"
            "  --act NAME          hidden activation: relu (default), leaky_relu, tanh, sigmoid,\n"
            "                      softplus, gelu, identity; the output layer is linear\n"
            "  --epochs E          passes over the training set (10)\n"
            "  --batch B           mini-batch size (128)\n"
            "  --optim adam|sgd    optimiser (adam)\n"
            "  --lr R              learning rate (adam 1e-3, sgd 0.05)\n"
            "  --momentum M        SGD momentum (0.9)\n"
            "  --weight-decay W    decoupled weight decay on weights, not biases (0)\n"
            "  --seed S            initialisation and shuffling seed (1); same seed and threads\n"
            "                      give a bit-identical model\n"
            "  --threads T         threads (default: every core)\n"
            "  --valid F           hold out the fraction F of the training set (seeded) and\n"
            "                      report its loss after every epoch (0: none)\n"
            "  --patience P        with --valid: stop when its loss has not improved for P\n"
            "                      epochs and keep the best epoch's model (0: never stop)\n"
            "  --target-cols C     CSV data: target column numbers, e.g. 3,4 (default: last)\n"
            "  -o, --output FILE   where to write the model (.onnx)\n"
            "  --json              print the result as JSON\n\n"
            "example:\n"
            "  ecprune train --data mnist --arch 784-300-100-10 --act relu --epochs 10 --seed 1 "
            "-o m.onnx\n");
}

/* Moves the fraction frac of *train (a seeded random choice) into *valid. */
static ecp_status split_valid(ecp_dataset **train, ecp_dataset **valid, double frac,
                              uint64_t seed, ecp_error *err)
{
    int64_t n = (*train)->n, nv = (int64_t)(frac * (double)n);
    if (nv < 1 || nv >= n)
        return ecp_fail(err, ECP_ERR_ARG, "--valid %g: leaves no validation or no training "
                                          "sample of %lld", frac, (long long)n);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        return ecp_fail(err, ECP_ERR_MEMORY, "out of memory");
    ecp_rng r;
    ecp_rng_seed(&r, seed ^ 0x76616c6964ULL);
    ecp_rng_permutation(&r, perm, n);
    ecp_dataset *t = NULL;
    ecp_status s = ecp_dataset_subset(*train, perm, nv, valid, err);
    if (!s)
        s = ecp_dataset_subset(*train, perm + nv, n - nv, &t, err);
    free(perm);
    if (s)
        return s;
    ecp_dataset_free(*train);
    *train = t;
    return ECP_OK;
}

static const char *const stop_names[] = {"none", "early", "callback"};

static void print_json(const ecp_train_report *rep, const ecp_eval_result *ev, int valid,
                       const char *out)
{
    printf("{\"train_loss\":");
    cli_json_number(stdout, rep->final_loss);
    if (valid) {
        printf(",\"valid\":{\"loss\":");
        cli_json_number(stdout, rep->valid_loss);
        if (rep->valid_accuracy >= 0)
            printf(",\"accuracy\":%.6f", rep->valid_accuracy);
        printf(",\"best_epoch\":%d},\"stopped\":\"%s\"", rep->best_epoch,
               stop_names[rep->stopped]);
    }
    printf(",\"epochs\":%d,\"test\":{\"loss\":", rep->epochs_run);
    cli_json_number(stdout, ev->loss);
    if (ev->accuracy >= 0)
        printf(",\"accuracy\":%.6f", ev->accuracy);
    printf(",\"n\":%lld},\"seconds\":%.3f,\"samples_per_s\":%.1f,\"output\":",
           (long long)ev->n, rep->seconds, rep->samples_per_s);
    cli_json_string(stdout, out);
    printf("}\n");
}

static void print_text(const ecp_train_report *rep, const ecp_eval_result *ev, int valid,
                       const char *arch, const char *data, const char *out)
{
    printf("trained %s on %s: %d epochs in %.1f s (%.0f samples/s)\n", arch, data,
           rep->epochs_run, rep->seconds, rep->samples_per_s);
    if (valid) {
        printf("validation loss %.5f", rep->valid_loss);
        if (rep->valid_accuracy >= 0)
            printf("   accuracy %.2f%%", 100 * rep->valid_accuracy);
        printf("   (model of epoch %d%s)\n", rep->best_epoch,
               rep->stopped == ECP_STOP_EARLY ? ", stopped early" : "");
    }
    printf("train loss %.5f   test loss %.5f", rep->final_loss, ev->loss);
    if (ev->accuracy >= 0)
        printf("   test accuracy %.2f%%", 100 * ev->accuracy);
    printf("\nwrote %s\n", out);
}

int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},   {"arch", required_argument, 0, 'a'},
        {"act", required_argument, 0, 'A'},    {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'},  {"optim", required_argument, 0, 'O'},
        {"lr", required_argument, 0, 'l'},     {"momentum", required_argument, 0, 'm'},
        {"weight-decay", required_argument, 0, 'w'}, {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"target-cols", required_argument, 0, 'T'},
        {"output", required_argument, 0, 'o'}, {"json", no_argument, 0, 'j'},
        {"valid", required_argument, 0, 'v'},  {"patience", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *data = NULL, *arch = NULL, *out = NULL, *act_name = "relu", *optim = "adam";
    const char *target_cols = NULL;
    long epochs = 10, batch = 128, seed = 1, threads = 0, patience = 0;
    double lr = -1, momentum = 0.9, wd = 0, valid_frac = 0;
    int json = 0, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': arch = optarg; break;
        case 'A': act_name = optarg; break;
        case 'e': if ((rc = cli_parse_int("train", "--epochs", optarg, 0, 100000, &epochs))) return rc; break;
        case 'b': if ((rc = cli_parse_int("train", "--batch", optarg, 1, 1 << 20, &batch))) return rc; break;
        case 'O': optim = optarg; break;
        case 'l': if ((rc = cli_parse_double("train", "--lr", optarg, 1e-12, 100, &lr))) return rc; break;
        case 'm': if ((rc = cli_parse_double("train", "--momentum", optarg, 0, 0.999999, &momentum))) return rc; break;
        case 'w': if ((rc = cli_parse_double("train", "--weight-decay", optarg, 0, 10, &wd))) return rc; break;
        case 's': if ((rc = cli_parse_int("train", "--seed", optarg, 0, 0x7fffffffL, &seed))) return rc; break;
        case 't': if ((rc = cli_parse_int("train", "--threads", optarg, 1, 1024, &threads))) return rc; break;
        case 'T': target_cols = optarg; break;
        case 'v': if ((rc = cli_parse_double("train", "--valid", optarg, 0, 0.9, &valid_frac))) return rc; break;
        case 'p': if ((rc = cli_parse_int("train", "--patience", optarg, 0, 100000, &patience))) return rc; break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default:
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!data || !arch || !out)
        return cli_usage_error("train", "%s%s%s%s%s%s required", !data ? "--data" : "",
                               !data && (!arch || !out) ? ", " : "", !arch ? "--arch" : "",
                               !arch && !out ? ", " : "", !out ? "-o" : "",
                               (!data + !arch + !out) > 1 ? " are" : " is");
    if ((rc = cli_check_model_path("train", out)))
        return rc;
    if (patience > 0 && valid_frac <= 0)
        return cli_usage_error("train", "--patience needs --valid");
    ecp_error err = {0};
    ecp_act act;
    if (ecp_act_parse(act_name, &act, &err))
        return cli_die("train", &err);
    ecp_optim_kind kind;
    if (!strcmp(optim, "adam"))
        kind = ECP_OPT_ADAM;
    else if (!strcmp(optim, "sgd"))
        kind = ECP_OPT_SGD;
    else
        return cli_usage_error("train", "--optim '%s': choose adam or sgd", optim);
    cli_set_threads((int)threads);

    ecp_data_opts dopt;
    ecp_data_opts_default(&dopt);
    dopt.target_cols = target_cols;
    ecp_dataset *train = NULL, *test = NULL, *valid = NULL;
    ecp_mlp *m = NULL;
    int status = 1;
    if (ecp_data_open(data, &dopt, &train, &test, &err) ||
        ecp_mlp_create_arch(&m, arch, act, &err) ||
        ecp_check_fit(m, train, "--arch", data, &err) ||
        (valid_frac > 0 && split_valid(&train, &valid, valid_frac, (uint64_t)seed, &err))) {
        status = cli_die("train", &err);
        goto done;
    }
    ecp_mlp_init(m, (uint64_t)seed);
    ecp_train_opts to;
    ecp_train_opts_default(&to);
    to.epochs = (int)epochs;
    to.batch = (int)batch;
    to.seed = (uint64_t)seed;
    ecp_optim_opts_default(&to.optim, kind);
    if (lr > 0)
        to.optim.lr = lr;
    to.optim.momentum = momentum;
    to.optim.weight_decay = wd;
    to.threads = (int)threads;
    to.valid = valid;
    to.patience = (int)patience;
    ecp_train_report rep;
    ecp_eval_result ev;
    if (ecp_train(m, train, &to, &rep, &err) || ecp_evaluate(m, test, &ev, &err) ||
        ecp_onnx_save(m, out, &err)) {
        status = cli_die("train", &err);
        goto done;
    }
    if (json)
        print_json(&rep, &ev, valid != NULL, out);
    else
        print_text(&rep, &ev, valid != NULL, arch, data, out);
    status = 0;
done:
    ecp_mlp_free(m);
    ecp_dataset_free(valid);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
