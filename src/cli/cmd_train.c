/* ecprune train: train an MLP on a dataset and save it as ONNX. */
#include "cli.h"
#include <getopt.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune train --data D --arch W0-W1-...-WL -o model.onnx [options]\n"
            "       ecprune train --data D --arch-like M.onnx --params N|--sparsity S -o model.onnx\n\n"
            "Trains a fully-connected network with mini-batch SGD or Adam and writes it as ONNX\n"
            "(with the epochs, batch and optimiser recorded in the file's metadata).\n"
            "The loss follows the data: softmax cross-entropy for class labels, MSE for targets.\n\n"
            "  --data D            mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
            "  --arch A            layer widths, e.g. 784-300-100-10 (input first, output last)\n"
            "  --arch-like M.onnx  instead of --arch: M's depth and activations, hidden widths\n"
            "                      scaled by one common factor to the largest network whose\n"
            "                      weights + biases fit the budget (printed before training):\n"
            "  --params N            the budget in weights + biases, or\n"
            "  --sparsity S          the non-zero weights + biases M keeps when pruned to S\n"
            "                        (the dense network of a pruned model's size)\n"
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
            "  --threads T         BLAS threads (default: OpenBLAS's choice)\n"
            "  --target-cols C     CSV data: target column numbers, e.g. 3,4 (default: last)\n"
            "  -o, --output FILE   where to write the model (.onnx)\n"
            "  --json              print the result as JSON\n\n"
            "examples:\n"
            "  ecprune train --data mnist --arch 784-300-100-10 --act relu --epochs 10 --seed 1 "
            "-o m.onnx\n"
            "  ecprune train --data mnist --arch-like m.onnx --sparsity 0.9 --epochs 10 -o small.onnx\n");
}

/* --arch-like: the network of M's depth and activations scaled to the budget, printed (on
 * stderr under --json, so that stdout stays one JSON document) before it is trained. */
static int arch_like(const char *like, long params, double sparsity, int json, ecp_mlp **m,
                     char *arch, size_t n)
{
    ecp_error err = {0};
    ecp_mlp *ref = NULL;
    int sizes[1001];
    int64_t got;
    if (ecp_onnx_load(&ref, like, &err))
        return cli_die("train", &err);
    int64_t budget = params > 0 ? params : ecp_mlp_params_at_sparsity(ref, sparsity);
    if (cli_arch_like(ref, budget, sizes, &got, arch, n, &err) ||
        ecp_mlp_create_like(ref, sizes, m, &err)) {
        ecp_mlp_free(ref);
        return cli_die("train", &err);
    }
    FILE *f = json ? stderr : stdout;
    fprintf(f, "architecture like %s (%lld weights + biases", like,
            (long long)ecp_mlp_n_params(ref));
    if (params <= 0)
        fprintf(f, ", %lld left at sparsity %g", (long long)budget, sparsity);
    fprintf(f, "): %s, %lld weights + biases (budget %lld)\n", arch, (long long)got,
            (long long)budget);
    ecp_mlp_free(ref);
    return 0;
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
        {"arch-like", required_argument, 0, 'L'}, {"params", required_argument, 0, 'P'},
        {"sparsity", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *data = NULL, *arch = NULL, *out = NULL, *act_name = "relu", *optim = "adam";
    const char *target_cols = NULL, *like = NULL;
    long epochs = 10, batch = 128, seed = 1, threads = 0, params = -1;
    double lr = -1, momentum = 0.9, wd = 0, sparsity = -1;
    int act_given = 0;
    int json = 0, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': arch = optarg; break;
        case 'A': act_name = optarg; act_given = 1; break;
        case 'L': like = optarg; break;
        case 'P': if ((rc = cli_parse_int("train", "--params", optarg, 1, 1L << 50, &params))) return rc; break;
        case 'S': if ((rc = cli_parse_double("train", "--sparsity", optarg, 0, 0.999999, &sparsity))) return rc; break;
        case 'e': if ((rc = cli_parse_int("train", "--epochs", optarg, 0, 100000, &epochs))) return rc; break;
        case 'b': if ((rc = cli_parse_int("train", "--batch", optarg, 1, 1 << 20, &batch))) return rc; break;
        case 'O': optim = optarg; break;
        case 'l': if ((rc = cli_parse_double("train", "--lr", optarg, 1e-12, 100, &lr))) return rc; break;
        case 'm': if ((rc = cli_parse_double("train", "--momentum", optarg, 0, 0.999999, &momentum))) return rc; break;
        case 'w': if ((rc = cli_parse_double("train", "--weight-decay", optarg, 0, 10, &wd))) return rc; break;
        case 's': if ((rc = cli_parse_int("train", "--seed", optarg, 0, 0x7fffffffL, &seed))) return rc; break;
        case 't': if ((rc = cli_parse_int("train", "--threads", optarg, 1, 1024, &threads))) return rc; break;
        case 'T': target_cols = optarg; break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default:
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (like && arch)
        return cli_usage_error("train", "--arch and --arch-like exclude each other");
    if (like && act_given)
        return cli_usage_error("train", "--act: with --arch-like the activations are the model's");
    if (like && (params > 0) == (sparsity >= 0))
        return cli_usage_error("train", "--arch-like needs exactly one of --params and --sparsity");
    if (!like && (params > 0 || sparsity >= 0))
        return cli_usage_error("train", "--params and --sparsity go with --arch-like");
    if (!data || !(arch || like) || !out)
        return cli_usage_error("train", "--data, --arch (or --arch-like) and -o are required");
    if ((rc = cli_check_output("train", "-o", out)))
        return rc;
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
    ecp_dataset *train = NULL, *test = NULL;
    ecp_mlp *m = NULL;
    int status = 1;
    char like_arch[400];
    if (like && (status = arch_like(like, params, sparsity, json, &m, like_arch,
                                    sizeof like_arch)))
        goto done;
    status = 1;
    if (like)
        arch = like_arch;
    if (ecp_data_open(data, &dopt, &train, &test, &err) ||
        (!like && ecp_mlp_create_arch(&m, arch, act, &err)) ||
        ecp_check_fit(m, train, like ? like : "--arch", data, &err)) {
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
    ecp_train_report rep;
    ecp_eval_result ev;
    ecp_mlp_set_training(m, &to);
    if (ecp_train(m, train, &to, &rep, &err) || ecp_evaluate(m, test, &ev, &err) ||
        ecp_onnx_save(m, out, &err)) {
        status = cli_die("train", &err);
        goto done;
    }
    if (json) {
        printf("{\"train_loss\":");
        cli_json_number(stdout, rep.final_loss);
        printf(",\"test\":{\"loss\":");
        cli_json_number(stdout, ev.loss);
        if (ev.accuracy >= 0)
            printf(",\"accuracy\":%.6f", ev.accuracy);
        printf(",\"n\":%lld},\"seconds\":%.3f,\"samples_per_s\":%.1f,\"arch\":",
               (long long)ev.n, rep.seconds, rep.samples_per_s);
        cli_json_string(stdout, arch);
        printf(",\"params\":%lld,\"output\":", (long long)ecp_mlp_n_params(m));
        cli_json_string(stdout, out);
        printf("}\n");
    } else {
        printf("trained %s on %s: %d epochs in %.1f s (%.0f samples/s)\n", arch, data,
               to.epochs, rep.seconds, rep.samples_per_s);
        printf("train loss %.5f   test loss %.5f", rep.final_loss, ev.loss);
        if (ev.accuracy >= 0)
            printf("   test accuracy %.2f%%", 100 * ev.accuracy);
        printf("\nwrote %s\n", out);
    }
    status = 0;
done:
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
