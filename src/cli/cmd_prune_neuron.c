/* ecprune prune --structure neuron: remove whole hidden neurons and write the smaller dense
 * model; optionally prune its weights afterwards (a smaller network, then sparse). */
#include "cli.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
        "usage: ecprune prune MODEL.onnx --structure neuron --data D --sparsity S -o SMALL.onnx\n"
        "                     [options]\n\n"
        "Removes the fraction S of the hidden neurons (input and output units are never removed)\n"
        "and writes a smaller dense model: a neuron's incoming row, its bias and its outgoing\n"
        "column disappear, so 784-300-100-10 at S = 0.5 becomes e.g. 784-150-50-10 and runs\n"
        "faster anywhere (ONNX Runtime, export-c, any BLAS). With ec (the default) a neuron's\n"
        "importance is the loss increase left after shifting every bias it fed by its optimal\n"
        "(sensitivity-weighted mean) contribution; the layers downstream of the removed\n"
        "neurons are then re-fitted by least squares to the outputs they had before.\n\n"
        "  --data D             dataset: training split calibrates (and fine-tunes), test split\n"
        "                       is reported: mnist, fashion, diffsorp[:noise], DIR, FILE.csv\n"
        "  --method M           ec (default), l2 (norm of the outgoing weights, as torch's\n"
        "                       ln_structured), l2-incoming, random, mean-replacement (plain\n"
        "                       mean of the neuron folded into the next biases, Evci et al.)\n"
        "  --sensitivity K      for ec: loss (default: Gauss-Newton, the loss increase),\n"
        "                       output (the output deviation), probe\n"
        "  --compensation C     refit (default for ec: every downstream layer's kept weights\n"
        "                       and biases re-fitted by least squares on the calibration set),\n"
        "                       bias (default for mean-replacement: the neurons' mean into the\n"
        "                       next biases; ec, mean-replacement), none (default for l2,\n"
        "                       l2-incoming, random)\n"
        "  --damping D          refit: ridge as a fraction of the inputs' mean square (0.01)\n"
        "  --probes P           probes for --sensitivity probe (16)\n"
        "  --sparsity S         fraction of hidden neurons removed, 0 <= S < 1 (0.5); every\n"
        "                       hidden layer keeps at least one neuron\n"
        "  --scope layer|global S in each hidden layer (default) or one ranking across them\n"
        "                       (global lets the scores choose the widths; at large one-shot\n"
        "                       fractions it empties the first layer, see docs/STRUCTURED.md)\n"
        "  --exclude-layer H    never shrink hidden layer H (the outputs of layer H, 0-based)\n"
        "  --steps T            iterative: T steps on the cubic schedule, scores recomputed on\n"
        "                       the smaller model at each step (1)\n"
        "  --finetune-epochs E  training epochs after each step (0)\n"
        "  --lr R, --batch B    fine-tuning optimiser (Adam 1e-3, 128)\n"
        "  --calib N            calibration samples (2000, or all if fewer)\n"
        "  --seed S             calibration sampling, random scores, fine-tuning (1)\n"
        "  --weight-sparsity W  then prune the fraction W of the smaller model's weights\n"
        "                       (unstructured, one-shot, same fine-tuning) ...\n"
        "  --weight-method M    ... by this weight method (ec)\n"
        "  --keep-shape         write the masked model of the original shape instead (removed\n"
        "                       neurons zeroed, biases shifted): the same function\n"
        "  --dump-scores DIR    write neuron_score_H.npy (and neuron_comp_H.npy) per hidden\n"
        "                       layer H, for the first step\n"
        "  --threads T          BLAS threads\n"
        "  --target-cols C      CSV data: target column numbers\n"
        "  -o, --output FILE    the smaller model (.onnx)\n"
        CLI_STORAGE_HELP
        "  --json               machine-readable result\n\n"
        "examples:\n"
        "  ecprune prune m.onnx --structure neuron --data mnist --sparsity 0.5 -o small.onnx\n"
        "  ecprune prune m.onnx --structure neuron --data mnist --sparsity 0.5 \\\n"
        "      --weight-sparsity 0.8 --finetune-epochs 1 -o small_sparse.onnx\n");
}

typedef struct {
    ecp_prune_opts po;
    const char *data, *out, *dump, *target_cols, *weight_method;
    double weight_sparsity;
    long threads;
    int json, calib_given, keep_shape, sens_given;
} neuron_args;

static int parse_args(int argc, char **argv, neuron_args *a)
{
    enum { O_STRUCT = 256, O_DATA, O_METHOD, O_SENS, O_PROBES, O_SPARSITY, O_SCOPE, O_EXCL,
           O_STEPS, O_FT, O_LR, O_BATCH, O_CALIB, O_SEED, O_WSP, O_WMETHOD, O_KEEP, O_DUMP,
           O_THREADS, O_TC, O_JSON, O_COMP, O_DAMP };
    static const struct option opts[] = {
        {"structure", required_argument, 0, O_STRUCT}, {"data", required_argument, 0, O_DATA},
        {"method", required_argument, 0, O_METHOD}, {"sensitivity", required_argument, 0, O_SENS},
        {"probes", required_argument, 0, O_PROBES}, {"sparsity", required_argument, 0, O_SPARSITY},
        {"scope", required_argument, 0, O_SCOPE}, {"exclude-layer", required_argument, 0, O_EXCL},
        {"steps", required_argument, 0, O_STEPS}, {"finetune-epochs", required_argument, 0, O_FT},
        {"lr", required_argument, 0, O_LR}, {"batch", required_argument, 0, O_BATCH},
        {"calib", required_argument, 0, O_CALIB}, {"seed", required_argument, 0, O_SEED},
        {"weight-sparsity", required_argument, 0, O_WSP},
        {"weight-method", required_argument, 0, O_WMETHOD},
        {"keep-shape", no_argument, 0, O_KEEP}, {"dump-scores", required_argument, 0, O_DUMP},
        {"threads", required_argument, 0, O_THREADS}, {"target-cols", required_argument, 0, O_TC},
        {"output", required_argument, 0, 'o'}, {"json", no_argument, 0, O_JSON},
        {"compensation", required_argument, 0, O_COMP}, {"damping", required_argument, 0, O_DAMP},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    ecp_error err = {0};
    ecp_prune_opts *po = &a->po;
    long v;
    double d;
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_STRUCT:
            if (strcmp(optarg, "neuron"))
                return cli_usage_error("prune", "--structure '%s': choose neuron or weight",
                                       optarg);
            break;
        case O_DATA: a->data = optarg; break;
        case O_METHOD:
            if (!ecp_neuron_method_exists(optarg))
                return cli_usage_error("prune", "--method '%s': unknown with --structure neuron "
                                       "(choose ec, l2, l2-incoming, random, mean-replacement)",
                                       optarg);
            po->method = optarg;
            break;
        case O_SENS:
            if (ecp_sens_parse(optarg, &po->sens, &err))
                return cli_die("prune", &err);
            a->sens_given = 1;
            break;
        case O_COMP:
            if (!strcmp(optarg, "refit")) po->neuron_comp = ECP_NCOMP_REFIT;
            else if (!strcmp(optarg, "bias")) po->neuron_comp = ECP_NCOMP_BIAS;
            else if (!strcmp(optarg, "none")) po->neuron_comp = ECP_NCOMP_NONE;
            else if (!strcmp(optarg, "auto")) po->neuron_comp = ECP_NCOMP_AUTO;
            else return cli_usage_error("prune", "--compensation '%s': choose refit, bias, none "
                                        "or auto", optarg);
            break;
        case O_DAMP:
            if ((rc = cli_parse_double("prune", "--damping", optarg, 0, 1e6, &d))) return rc;
            po->damping = d;
            break;
        case O_PROBES:
            if ((rc = cli_parse_int("prune", "--probes", optarg, 1, 100000, &v))) return rc;
            po->probes = (int)v;
            break;
        case O_SPARSITY:
            if ((rc = cli_parse_double("prune", "--sparsity", optarg, 0, 1, &d))) return rc;
            if (d >= 1)
                return cli_usage_error("prune", "--sparsity %s: must be below 1 (every hidden "
                                       "layer keeps at least one neuron)", optarg);
            po->sparsity = d;
            break;
        case O_SCOPE:
            if (!strcmp(optarg, "global")) po->scope_layer = 0;
            else if (!strcmp(optarg, "layer")) po->scope_layer = 1;
            else return cli_usage_error("prune", "--scope '%s': choose global or layer", optarg);
            break;
        case O_EXCL: if ((rc = parse_excludes(optarg, &po->exclude_mask))) return rc; break;
        case O_STEPS:
            if ((rc = cli_parse_int("prune", "--steps", optarg, 1, 1000, &v))) return rc;
            po->steps = (int)v;
            break;
        case O_FT:
            if ((rc = cli_parse_int("prune", "--finetune-epochs", optarg, 0, 10000, &v))) return rc;
            po->finetune_epochs = (int)v;
            break;
        case O_LR:
            if ((rc = cli_parse_double("prune", "--lr", optarg, 1e-12, 100, &d))) return rc;
            po->finetune.optim.lr = d;
            break;
        case O_BATCH:
            if ((rc = cli_parse_int("prune", "--batch", optarg, 1, 1 << 20, &v))) return rc;
            po->finetune.batch = (int)v;
            break;
        case O_CALIB:
            if ((rc = cli_parse_int("prune", "--calib", optarg, 1, 1L << 40, &v))) return rc;
            po->calib = v;
            a->calib_given = 1;
            break;
        case O_SEED:
            if ((rc = cli_parse_int("prune", "--seed", optarg, 0, 0x7fffffffL, &v))) return rc;
            po->seed = (uint64_t)v;
            break;
        case O_WSP:
            if ((rc = cli_parse_double("prune", "--weight-sparsity", optarg, 0, 0.999999, &d)))
                return rc;
            a->weight_sparsity = d;
            break;
        case O_WMETHOD:
            if (!ecp_prune_method_exists(optarg))
                return cli_usage_error("prune", "--weight-method '%s': not a weight pruning "
                                       "method (see 'ecprune prune --help')", optarg);
            a->weight_method = optarg;
            break;
        case O_KEEP: a->keep_shape = 1; break;
        case O_DUMP: a->dump = optarg; break;
        case O_THREADS:
            if ((rc = cli_parse_int("prune", "--threads", optarg, 1, 1024, &a->threads))) return rc;
            break;
        case O_TC: a->target_cols = optarg; break;
        case 'o': a->out = optarg; break;
        case O_JSON: a->json = 1; break;
        case 'h': help(stdout); return -1;
        default:
            return cli_usage_error("prune", "unknown or incomplete option '%s' with --structure "
                                   "neuron", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("prune", "expected exactly one model file");
    if (!a->data || (!a->out && !a->dump))
        return cli_usage_error("prune", "--data and -o are required");
    if (po->neuron_comp == ECP_NCOMP_BIAS && po->method && strcmp(po->method, "ec") &&
        strcmp(po->method, "mean-replacement"))
        return cli_usage_error("prune", "--compensation bias: only ec and mean-replacement "
                               "give bias shifts (refit works with every method)");
    if (a->keep_shape && (po->steps > 1 || a->weight_sparsity > 0))
        return cli_usage_error("prune", "--keep-shape: one-shot only, without --weight-sparsity");
    return 0;
}

static int dump_neuron_scores(const ecp_mlp *m, const ecp_dataset *train,
                              const ecp_prune_opts *o, const char *dir, ecp_error *err)
{
    ecp_dataset *calib = NULL;
    ecp_neuron_scores *sc = NULL;
    if (ecp_prune_calib(train, o->calib, o->seed, &calib, err) ||
        ecp_neuron_scores_compute(m, calib, o->method, o->sens, o->probes, o->seed + 1, &sc,
                                  err)) {
        ecp_dataset_free(calib);
        return 1;
    }
    int rc = 0;
    char path[4200];
    for (int h = 0; h < sc->n_hidden && !rc && ecp_dist_rank() == 0; h++) {
        int64_t n = sc->width[h], r = sc->fan_out[h];
        float *buf = malloc((size_t)(n * r) * sizeof *buf);
        if (!buf) {
            rc = ecp_fail(err, ECP_ERR_MEMORY, "--dump-scores: out of memory") != ECP_OK;
            break;
        }
        for (int64_t j = 0; j < n; j++)
            buf[j] = (float)sc->score[h][j];
        snprintf(path, sizeof path, "%s/neuron_score_%d.npy", dir, h);
        rc = ecp_npy_write_f32(path, buf, n, 0, err) != ECP_OK;
        if (!rc && sc->comp) {
            for (int64_t k = 0; k < n * r; k++)
                buf[k] = (float)sc->comp[h][k];
            snprintf(path, sizeof path, "%s/neuron_comp_%d.npy", dir, h);
            rc = ecp_npy_write_f32(path, buf, r, n, err) != ECP_OK;
        }
        free(buf);
    }
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(calib);
    return ecp_dist_agree(rc ? err->code : ECP_OK, err) != ECP_OK;
}

static void arch_string(const ecp_mlp *m, char *buf, size_t n)
{
    size_t at = (size_t)snprintf(buf, n, "%d", ecp_mlp_n_in(m));
    for (int l = 0; l < ecp_mlp_n_layers(m) && at < n; l++)
        at += (size_t)snprintf(buf + at, n - at, "-%d", ecp_mlp_layer_out(m, l));
}

/* Multiply-adds of one forward: the dense cost the smaller model saves. */
static int64_t dense_macs(const ecp_mlp *m)
{
    int64_t s = 0;
    for (int l = 0; l < ecp_mlp_n_layers(m); l++)
        s += (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
    return s;
}

typedef struct {
    char arch0[512], arch1[512];
    int64_t params0, macs0;
    ecp_eval_result before, after;
    ecp_neuron_report rep;
    ecp_prune_report wrep;
} neuron_result;

/* The compensation o->neuron_comp stands for with this method (AUTO resolved as the library
 * does when it has the calibration set). */
static const char *comp_name(const ecp_prune_opts *o)
{
    ecp_neuron_comp c = o->neuron_comp;
    if (c == ECP_NCOMP_AUTO)
        c = !strcmp(o->method, "ec") ? ECP_NCOMP_REFIT
            : ecp_neuron_method_compensates(o->method) ? ECP_NCOMP_BIAS : ECP_NCOMP_NONE;
    return c == ECP_NCOMP_REFIT ? "refit" : c == ECP_NCOMP_BIAS ? "bias" : "none";
}

static void print_eval(const char *name, const ecp_eval_result *r)
{
    printf("  %-8s %12.6f", name, r->loss);
    if (r->accuracy >= 0)
        printf(" %9.2f%%", 100 * r->accuracy);
    printf("\n");
}

static void report(const ecp_mlp *m, const neuron_args *a, const char *model,
                   const neuron_result *r)
{
    const ecp_prune_opts *po = &a->po;
    double macs_ratio = (double)dense_macs(m) / (double)r->macs0;
    if (a->json) {
        printf("{\"structure\":\"neuron\",\"method\":\"%s\",\"sensitivity\":\"%s\","
               "\"compensation\":\"%s\",\"target\":%.6f,\"arch_before\":\"%s\","
               "\"arch_after\":\"%s\",", po->method, ecp_sens_name(po->sens), comp_name(po),
               po->sparsity, r->arch0, r->arch1);
        printf("\"before\":{\"loss\":%.9g", r->before.loss);
        if (r->before.accuracy >= 0) printf(",\"accuracy\":%.6f", r->before.accuracy);
        printf("},\"after\":{\"loss\":%.9g", r->after.loss);
        if (r->after.accuracy >= 0) printf(",\"accuracy\":%.6f", r->after.accuracy);
        printf("},\"hidden\":[");
        for (int h = 0; h < r->rep.n_hidden; h++)
            printf("%s{\"before\":%d,\"after\":%d}", h ? "," : "", r->rep.before[h],
                   r->rep.after[h]);
        printf("],\"params_before\":%lld,\"params_after\":%lld,\"macs_ratio\":%.6f,"
               "\"guarded\":%d,\"weight_sparsity\":%.6f,\"steps\":%d,\"finetune_epochs\":%d,"
               "\"calib\":%lld,\"stats_seconds\":%.4f,\"seconds\":%.4f}\n",
               (long long)r->params0, (long long)ecp_mlp_n_params(m), macs_ratio, r->rep.guarded,
               (double)ecp_mlp_n_pruned(m) / (double)ecp_mlp_n_weights(m), po->steps,
               po->finetune_epochs, (long long)po->calib, r->rep.stats_seconds, r->rep.seconds);
        return;
    }
    printf("%s: neurons by %s", model, po->method);
    if (!strcmp(po->method, "ec"))
        printf(" (sensitivity %s)", ecp_sens_name(po->sens));
    printf(", compensation %s", comp_name(po));
    printf(", %s, %d step%s, %d fine-tuning epoch%s, %lld calibration samples\n",
           po->scope_layer ? "per layer" : "global", po->steps, po->steps > 1 ? "s" : "",
           po->finetune_epochs, po->finetune_epochs == 1 ? "" : "s", (long long)po->calib);
    printf("  %-8s %12s %10s\n", "", "test loss", "accuracy");
    print_eval("before", &r->before);
    print_eval("after", &r->after);
    printf("  architecture %s -> %s%s\n", r->arch0, a->keep_shape ? r->arch0 : r->arch1,
           a->keep_shape ? " (shape kept, removed neurons zeroed)" : "");
    for (int h = 0; h < r->rep.n_hidden; h++)
        printf("    hidden layer %d: %d -> %d neurons\n", h, r->rep.before[h], r->rep.after[h]);
    if (r->rep.guarded)
        printf("  kept %d neuron%s that would have emptied a hidden layer (each keeps one)\n",
               r->rep.guarded, r->rep.guarded == 1 ? "" : "s");
    printf("  parameters %lld -> %lld; dense multiply-adds x%.3f\n", (long long)r->params0,
           (long long)ecp_mlp_n_params(m), macs_ratio);
    if (a->weight_sparsity > 0)
        printf("  then %s on the weights: sparsity %.4f (%lld of %lld)\n", a->weight_method,
               (double)r->wrep.pruned / (double)r->wrep.weights, (long long)r->wrep.pruned,
               (long long)r->wrep.weights);
    printf("  statistics and scores: %.3f s; total %.3f s\n  wrote %s\n", r->rep.stats_seconds,
           r->rep.seconds + r->wrep.seconds, a->out);
}

/* The smaller model, then (optionally) its weights; or the masked model of the same shape. */
static ecp_status run(ecp_mlp *m, const ecp_dataset *train, const neuron_args *a,
                      neuron_result *r, ecp_error *err)
{
    if (!a->keep_shape) {
        ecp_status s = ecp_prune_neurons(m, train, &a->po, &r->rep, err);
        if (s || a->weight_sparsity <= 0)
            return s;
        ecp_prune_opts wo = a->po;
        wo.method = a->weight_method;
        wo.sparsity = a->weight_sparsity;
        wo.steps = 1;
        wo.exclude_mask = 0;
        return ecp_prune(m, train, &wo, &r->wrep, err);
    }
    ecp_dataset *calib = NULL;
    ecp_neuron_scores *sc = NULL;
    ecp_status s;
    memset(&r->rep, 0, sizeof r->rep);
    if (!(s = ecp_prune_calib(train, a->po.calib, a->po.seed, &calib, err)) &&
        !(s = ecp_neuron_scores_compute(m, calib, a->po.method, a->po.sens, a->po.probes,
                                        a->po.seed + 1, &sc, err)))
        s = ecp_prune_neurons_apply_calib(m, sc, &a->po, calib, a->po.sparsity, NULL, 0,
                                          &r->rep, err);
    ecp_neuron_scores_free(sc);
    ecp_dataset_free(calib);
    return s;
}

/* Prunes, evaluates and writes (rank 0) the model; every rank takes part in the sums. */
static ecp_status prune_and_save(ecp_mlp *m, const ecp_dataset *train, const ecp_dataset *test,
                                 const neuron_args *a, const ecp_onnx_options *store,
                                 neuron_result *r, ecp_error *err)
{
    char method[96];
    snprintf(method, sizeof method, "neurons:%s", a->po.method);
    ecp_status s;
    if ((s = ecp_evaluate(m, test, &r->before, err)) || (s = run(m, train, a, r, err)) ||
        (s = ecp_evaluate(m, test, &r->after, err)) ||
        (s = cli_record_prune(m, method, ecp_sens_name(a->po.sens), a->po.sparsity,
                              a->po.calib < train->n ? a->po.calib : train->n, err)))
        ;
    else if (ecp_dist_rank() == 0) {
        cli_opset_note("prune", m, a->out);
        s = ecp_onnx_save_with(m, a->out, store, err);
    }
    return ecp_dist_agree(s, err);
}

int cmd_prune_neuron(int argc, char **argv)
{
    neuron_args a;
    memset(&a, 0, sizeof a);
    ecp_prune_opts_default(&a.po);
    a.po.sparsity = 0.5;
    a.po.scope_layer = 1;
    a.weight_method = "ec";
    ecp_onnx_options store;
    if ((argc = cli_take_storage("prune", argc, argv, &store)) < 0)
        return 2;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (a.out && ecp_dist_size() == 1 && (rc = cli_check_model_output("prune", a.out, &store)))
        return rc;
    /* The loss sensitivity ranks neurons by what they cost the task; the output one weighs
     * samples the network is already sure of as much as the others (docs/STRUCTURED.md). */
    if (!a.sens_given)
        a.po.sens = ECP_SENS_LOSS;
    /* Under mpirun the processes on a machine share its cores (0: every core, one process). */
    int threads = a.threads ? (int)a.threads : ecp_dist_default_threads();
    cli_set_threads(threads);
    a.po.threads = threads;
    a.po.finetune.threads = threads;
    const char *model = argv[optind];
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *test = NULL;
    ecp_error err = {0};
    int status;
    if ((status = cli_open_shared("prune", a.out, &store, model, a.data, a.target_cols, 0, &m,
                                  &train, &test)))
        goto done;
    status = 1;
    if (ecp_mlp_n_layers(m) < 2) {
        status = cli_usage_error("prune", "--structure neuron: %s (%d-%d) has no hidden layer",
                                 model, ecp_mlp_n_in(m), ecp_mlp_n_out(m));
        goto done;
    }
    if (!a.calib_given && a.po.calib > train->n)
        a.po.calib = train->n;
    if (a.po.calib > train->n) {
        status = cli_usage_error("prune", "--calib %lld: the training set has only %lld samples",
                                 (long long)a.po.calib, (long long)train->n);
        goto done;
    }
    for (int h = ecp_mlp_n_layers(m) - 1; h < 64; h++)
        a.po.exclude_mask &= ~(1ULL << h);
    if (a.dump && dump_neuron_scores(m, train, &a.po, a.dump, &err)) {
        status = cli_die("prune", &err);
        goto done;
    }
    if (!a.out) {
        status = 0;
        goto done;
    }
    neuron_result r;
    memset(&r, 0, sizeof r);
    arch_string(m, r.arch0, sizeof r.arch0);
    r.params0 = ecp_mlp_n_params(m);
    r.macs0 = dense_macs(m);
    a.po.progress = ecp_dist_rank() == 0;
    if (prune_and_save(m, train, test, &a, &store, &r, &err)) {
        status = cli_die("prune", &err);
        goto done;
    }
    arch_string(m, r.arch1, sizeof r.arch1);
    if (ecp_dist_rank() == 0)
        report(m, &a, model, &r);
    status = 0;
done:
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
