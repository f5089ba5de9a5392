/* ecprune train: train an MLP on a dataset and save it as ONNX. */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
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
            "  --act NAME[:P[:Q]]  hidden activation (the output layer is linear): relu (default),\n"
            "                      tanh, sigmoid, silu, gelu, gelu_tanh (GELU's tanh form),\n"
            "                      identity, and with parameters (PyTorch's defaults):\n"
            "                      leaky_relu:SLOPE (0.01), elu:ALPHA (1), softplus:BETA (1),\n"
            "                      clip:MIN:MAX (0:6), relu6 (= clip:0:6), hardtanh (= clip:-1:1),\n"
            "                      hardsigmoid:A:B and hardswish:A:B (clip(A x + B, 0, 1) and\n"
            "                      x times it; A = 1/6, B = 0.5), e.g. --act elu:0.5\n"
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
            CLI_STORAGE_HELP
            "  --json              print the result as JSON\n\n"
            "examples:\n"
            "  ecprune train --data mnist --arch 784-300-100-10 --act relu --epochs 10 --seed 1 "
            "-o m.onnx\n"
            "  ecprune train --data mnist --arch-like m.onnx --sparsity 0.9 --epochs 10 -o small.onnx\n");
}

/* --arch-like: the network of M's depth and activations scaled to the budget, printed (on
 * stderr under --json, so that stdout stays one JSON document) before it is trained. */
static ecp_status arch_like(const char *like, long params, double sparsity, int json,
                            ecp_mlp **m, char *arch, size_t n, ecp_error *err)
{
    ecp_mlp *ref = NULL;
    int sizes[1001];
    int64_t got;
    ecp_status s = ecp_onnx_load(&ref, like, err);
    if (s)
        return s;
    int64_t budget = params > 0 ? params : ecp_mlp_params_at_sparsity(ref, sparsity);
    if ((s = cli_arch_like(ref, budget, sizes, &got, arch, n, err)) ||
        (s = ecp_mlp_create_like(ref, sizes, m, err)) || ecp_dist_rank() != 0) {
        ecp_mlp_free(ref);
        return s;
    }
    FILE *f = json ? stderr : stdout;
    fprintf(f, "architecture like %s (%lld weights + biases", like,
            (long long)ecp_mlp_n_params(ref));
    if (params <= 0)
        fprintf(f, ", %lld left at sparsity %g", (long long)budget, sparsity);
    fprintf(f, "): %s, %lld weights + biases (budget %lld)\n", arch, (long long)got,
            (long long)budget);
    ecp_mlp_free(ref);
    return ECP_OK;
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
                       const char *arch, int64_t params, const char *out)
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
    printf(",\"n\":%lld},\"seconds\":%.3f,\"samples_per_s\":%.1f,\"arch\":",
           (long long)ev->n, rep->seconds, rep->samples_per_s);
    cli_json_string(stdout, arch);
    if (ecp_dist_size() > 1)
        printf(",\"processes\":%d,\"comm_seconds\":%.3f", ecp_dist_size(), rep->comm_seconds);
    printf(",\"params\":%lld,\"output\":", (long long)params);
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

typedef struct {
    const char *data, *arch, *out, *act_name, *optim, *target_cols, *like;
    long epochs, batch, seed, threads, patience, params;
    double lr, momentum, wd, valid_frac, sparsity;
    int json, act_given;
} train_args;

/* Reads the options into a; returns -1 to go on, else the exit status (help, bad usage). */
static int parse_args(int argc, char **argv, train_args *a)
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
        {"arch-like", required_argument, 0, 'L'}, {"params", required_argument, 0, 'P'},
        {"sparsity", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    *a = (train_args){.act_name = "relu", .optim = "adam", .epochs = 10, .batch = 128,
                      .seed = 1, .lr = -1, .momentum = 0.9, .params = -1, .sparsity = -1};
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1 && !rc) {
        switch (c) {
        case 'd': a->data = optarg; break;
        case 'a': a->arch = optarg; break;
        case 'A': a->act_name = optarg; a->act_given = 1; break;
        case 'L': a->like = optarg; break;
        case 'P': rc = cli_parse_int("train", "--params", optarg, 1, 1L << 50, &a->params); break;
        case 'S': rc = cli_parse_double("train", "--sparsity", optarg, 0, 0.999999, &a->sparsity); break;
        case 'e': rc = cli_parse_int("train", "--epochs", optarg, 0, 100000, &a->epochs); break;
        case 'b': rc = cli_parse_int("train", "--batch", optarg, 1, 1 << 20, &a->batch); break;
        case 'O': a->optim = optarg; break;
        case 'l': rc = cli_parse_double("train", "--lr", optarg, 1e-12, 100, &a->lr); break;
        case 'm': rc = cli_parse_double("train", "--momentum", optarg, 0, 0.999999, &a->momentum); break;
        case 'w': rc = cli_parse_double("train", "--weight-decay", optarg, 0, 10, &a->wd); break;
        case 's': rc = cli_parse_int("train", "--seed", optarg, 0, 0x7fffffffL, &a->seed); break;
        case 't': rc = cli_parse_int("train", "--threads", optarg, 1, 1024, &a->threads); break;
        case 'T': a->target_cols = optarg; break;
        case 'v': rc = cli_parse_double("train", "--valid", optarg, 0, 0.9, &a->valid_frac); break;
        case 'p': rc = cli_parse_int("train", "--patience", optarg, 0, 100000, &a->patience); break;
        case 'o': a->out = optarg; break;
        case 'j': a->json = 1; break;
        case 'h': help(stdout); return 0;
        default:
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    return -1;
}

/* The checks that need every option; fills the training options. -1 to go on. */
static int check_args(const train_args *a, ecp_act *act, float *act_p, ecp_train_opts *to)
{
    if (a->like && a->arch)
        return cli_usage_error("train", "--arch and --arch-like exclude each other");
    if (a->like && a->act_given)
        return cli_usage_error("train", "--act: with --arch-like the activations are the model's");
    if (a->like && (a->params > 0) == (a->sparsity >= 0))
        return cli_usage_error("train", "--arch-like needs exactly one of --params and --sparsity");
    if (!a->like && (a->params > 0 || a->sparsity >= 0))
        return cli_usage_error("train", "--params and --sparsity go with --arch-like");
    int has_arch = a->arch || a->like;
    if (!a->data || !has_arch || !a->out)
        return cli_usage_error("train", "%s%s%s%s%s%s required", !a->data ? "--data" : "",
                               !a->data && (!has_arch || !a->out) ? ", " : "",
                               !has_arch ? "--arch (or --arch-like)" : "",
                               !has_arch && !a->out ? ", " : "", !a->out ? "-o" : "",
                               (!a->data + !has_arch + !a->out) > 1 ? " are" : " is");
    int rc = cli_check_model_path("train", a->out);
    /* under mpirun rank 0 checks it in load_run, where the others learn the outcome */
    if (rc || (ecp_dist_size() == 1 && (rc = cli_check_output("train", "-o", a->out))))
        return rc;
    if (a->patience > 0 && a->valid_frac <= 0)
        return cli_usage_error("train", "--patience needs --valid");
    ecp_error err = {0};
    if (ecp_act_parse_params(a->act_name, act, act_p, &err))
        return cli_usage_error("train", "--act: %s", err.msg);
    if (strcmp(a->optim, "adam") && strcmp(a->optim, "sgd"))
        return cli_usage_error("train", "--optim '%s': choose adam or sgd", a->optim);
    ecp_train_opts_default(to);
    to->epochs = (int)a->epochs;
    to->batch = (int)a->batch;
    to->seed = (uint64_t)a->seed;
    ecp_optim_opts_default(&to->optim, strcmp(a->optim, "sgd") ? ECP_OPT_ADAM : ECP_OPT_SGD);
    if (a->lr > 0)
        to->optim.lr = a->lr;
    to->optim.momentum = a->momentum;
    to->optim.weight_decay = a->wd;
    to->threads = (int)a->threads;
    to->patience = (int)a->patience;
    return -1;
}

/* --act's parameters on every hidden layer (ecp_mlp_create_arch gives the defaults). */
static ecp_status set_hidden_params(ecp_mlp *m, ecp_act act, const float *p, ecp_error *err)
{
    ecp_status s = ECP_OK;
    for (int l = 0; !s && l + 1 < ecp_mlp_n_layers(m); l++)
        s = ecp_mlp_set_layer_act_params(m, l, act, p, err);
    return s;
}

typedef struct {
    ecp_mlp *m;
    ecp_dataset *train, *test, *valid;
    char arch[400];
} train_run;

/* The model and the data of the run; under mpirun every rank loads both (each needs every
 * sample: the shuffle draws from the whole set). */
static ecp_status load_run(const train_args *a, ecp_act act, const float *act_p,
                          train_run *r, ecp_error *err)
{
    ecp_data_opts dopt;
    ecp_data_opts_default(&dopt);
    dopt.target_cols = a->target_cols;
    snprintf(r->arch, sizeof r->arch, "%s", a->arch ? a->arch : "");
    ecp_status s = ECP_OK;
    if (ecp_dist_size() > 1 && ecp_dist_rank() == 0 && ecp_output_check(a->out, err))
        return ecp_fail(err, err->code, "-o %.1000s", err->msg);
    if (a->like)
        s = arch_like(a->like, a->params, a->sparsity, a->json, &r->m, r->arch, sizeof r->arch,
                      err);
    else if (!(s = ecp_mlp_create_arch(&r->m, a->arch, act, err)))
        s = set_hidden_params(r->m, act, act_p, err);
    if (!s)
        s = ecp_data_open(a->data, &dopt, &r->train, &r->test, err);
    if (!s)
        s = ecp_check_fit(r->m, r->train, a->like ? a->like : "--arch", a->data, err);
    if (!s && a->valid_frac > 0)
        s = split_valid(&r->train, &r->valid, a->valid_frac, (uint64_t)a->seed, err);
    return s;
}

/* Trains, evaluates and (rank 0 alone) writes; every rank returns the same status. */
static ecp_status train_run_all(const train_args *a, const ecp_onnx_options *store,
                                ecp_train_opts *to, train_run *r, ecp_train_report *rep,
                                ecp_eval_result *ev, ecp_error *err)
{
    ecp_mlp_init(r->m, (uint64_t)a->seed);
    to->valid = r->valid;
    ecp_mlp_set_training(r->m, to);
    ecp_status s = ecp_train(r->m, r->train, to, rep, err);
    if (!s)
        s = ecp_evaluate(r->m, r->test, ev, err);
    if (!s && ecp_dist_rank() == 0) /* one writer; the others learn how it went */
        s = ecp_onnx_save_with(r->m, a->out, store, err);
    return ecp_dist_agree(s, err);
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    ecp_act act;
    float act_p[ECP_ACT_NPARAM];
    ecp_train_opts to;
    ecp_onnx_options store;
    if ((argc = cli_take_storage("train", argc, argv, &store)) < 0)
        return 2;
    int rc = parse_args(argc, argv, &a);
    if (rc < 0)
        rc = check_args(&a, &act, act_p, &to);
    if (rc < 0 && (rc = cli_check_model_output("train", a.out, &store)) == 0)
        rc = -1;
    if (rc >= 0)
        return rc;
    if (!a.threads) /* the ranks on one machine share its cores */
        to.threads = (int)(a.threads = ecp_dist_default_threads());
    cli_set_threads((int)a.threads);
    to.progress = ecp_dist_rank() == 0;
    ecp_error err = {0};
    train_run r = {0};
    ecp_train_report rep;
    ecp_eval_result ev;
    int status = 0;
    /* Under mpirun a file one rank cannot read stops every rank with that rank's message. */
    if (ecp_dist_agree(load_run(&a, act, act_p, &r, &err), &err) ||
        train_run_all(&a, &store, &to, &r, &rep, &ev, &err))
        status = cli_die("train", &err);
    else if (ecp_dist_rank() == 0 && a.json)
        print_json(&rep, &ev, r.valid != NULL, r.arch, ecp_mlp_n_params(r.m), a.out);
    else if (ecp_dist_rank() == 0)
        print_text(&rep, &ev, r.valid != NULL, r.arch, a.data, a.out);
    ecp_mlp_free(r.m);
    ecp_dataset_free(r.valid);
    ecp_dataset_free(r.train);
    ecp_dataset_free(r.test);
    return status;
}
