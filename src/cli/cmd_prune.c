/* ecprune prune: prune a model and report what it cost. */
#include "cli.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *f)
{
    fprintf(f,
        "usage: ecprune prune MODEL.onnx --data D --sparsity S -o PRUNED.onnx [options]\n\n"
        "Removes the fraction S of the weights (biases are never pruned) that a criterion deems\n"
        "cheapest. With the default method, elimination-compensation (ec), every removed weight\n"
        "is compensated by shifting the bias of the neuron it fed by the optimal amount, and a\n"
        "weight's importance is the output deviation left after that shift.\n\n"
        "  --data D             dataset whose training split calibrates (and fine-tunes) and\n"
        "                       whose test split is reported: mnist, fashion, diffsorp[:noise],\n"
        "                       DIR, FILE.csv\n"
        "  --method M[:K]       ec (default), ec-exact, random, magnitude, magnitude-bc, gradient,\n"
        "                       taylor, obd, wanda, sparsegpt, obs, ec-obs\n"
        "                       ec-exact: the non-linear oracle, minimising the true deviation of\n"
        "                       every weight over the calibration set; its cost is weights x\n"
        "                       calib x network: small networks, small --calib\n"
        "                       obs: also re-fits the kept weights and the bias of every row to\n"
        "                       the layer's calibration inputs (Optimal Brain Surgeon in\n"
        "                       SparseGPT's sweep), layer by layer, each layer's count from EC\n"
        "                       ec-obs: obs with the samples and rows weighted by EC's\n"
        "                       sensitivity: the best one-shot result without fine-tuning\n"
        "                       sparsegpt: SparseGPT as published (same sparsity in every layer)\n"
        "  --sensitivity K      ec, ec-exact, ec-obs (or --method ec:K, as sweep spells it):\n"
        "                       output (default: sum_k (dy_k/dz)^2, exact),\n"
        "                       probe (Rademacher estimate, for wide outputs), loss (Gauss-Newton)\n"
        "  --probes P           probes for --sensitivity probe (16)\n"
        "  --sparsity S         target fraction of prunable weights, 0 <= S < 1 (0.9)\n"
        "  --scope global|layer one ranking across layers (default) or S in every layer\n"
        "  --exclude-layer L    never prune layer L (0-based; repeat or give a list 0,2)\n"
        "  --sequential         score layer l on the network whose layers < l are already\n"
        "                       pruned and compensated (per-layer counts from one global pass\n"
        "                       first); obs and ec-obs always work this way\n"
        "  --allocation A       obs/ec-obs: global (default: each layer's count from a global\n"
        "                       selection by --allocation-method) or uniform (S in every layer,\n"
        "                       SparseGPT's recipe; also what --scope layer means)\n"
        "  --allocation-method M  the criterion of that global selection, NAME[:SENSITIVITY]\n"
        "                       (default ec:loss; for --sequential, the method itself)\n"
        "  --weighting W        ec-obs: how the sensitivity enters: rank1 (default: samples\n"
        "                       weighted by their mean sensitivity in the fit, rows by theirs\n"
        "                       in the choice of the mask), sample, row, none\n"
        "  --damping D          obs/ec-obs: D x mean(diag H) added to H's diagonal (0.01)\n"
        "  --block B            obs/ec-obs: columns per choice of the mask (16; sparsegpt 128)\n"
        "  --refit R            obs/ec-obs: auto (default: when cheap, i.e. at high sparsity),\n"
        "                       on, off: after the sweep, re-solve each row's kept weights\n"
        "                       exactly (least squares on the final mask)\n"
        "  --max-memory N       (any command) the memory budget; obs/ec-obs refuse a layer\n"
        "                       whose reconstruction would exceed it before touching any\n"
        "                       layer\n"
        "  --steps T            iterative pruning on the cubic schedule, statistics recomputed\n"
        "                       at each step (1 = one-shot, the default)\n"
        "  --finetune-epochs E  training epochs after each step, pruned weights held at 0 (0)\n"
        "  --lr R, --batch B    fine-tuning optimiser (Adam 1e-3, 128)\n"
        "  --calib N            calibration samples: the first N training samples after a\n"
        "                       seeded shuffle (2000, or all if fewer)\n"
        "  --seed S             calibration sampling, random scores, probes, fine-tuning (1)\n"
        "  --dump-scores DIR    write score_L.npy and comp_L.npy per layer (first step)\n"
        "  --threads T          BLAS threads\n"
        "  --target-cols C      CSV data: target column numbers\n"
        "  -o, --output FILE    the pruned model (.onnx)\n"
        CLI_STORAGE_HELP
        "  --json               machine-readable result\n"
        "  --structure neuron   remove whole hidden neurons instead and write a smaller dense\n"
        "                       model (see 'ecprune prune --structure neuron --help')\n"
        "  --pattern N:M        instead of --sparsity: in every group of M consecutive inputs\n"
        "                       of a row keep the N best weights by the method (2:4 for sparse\n"
        "                       tensor cores; a last shorter group keeps at most N); the method\n"
        "                       compensates as usual; the file records it, 'info' verifies it\n\n"
        "examples:\n"
        "  ecprune prune m.onnx --data mnist --method ec --sparsity 0.9 -o p.onnx\n"
        "  ecprune prune m.onnx --data mnist --method ec-obs --sparsity 0.95 -o p95.onnx\n"
        "  ecprune prune m.onnx --data mnist --method sparsegpt --sparsity 0.5 -o sgpt.onnx\n");
}

int parse_excludes(const char *s, uint64_t *mask)
{
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 63 || (*end && *end != ','))
            return cli_usage_error("prune", "--exclude-layer '%s': expected layer numbers 0..63",
                                   s);
        *mask |= 1ULL << v;
        s = *end ? end + 1 : end;
    }
    return 0;
}

/* Re-pruning a model that is already at least as sparse as asked changes nothing: say so. */
static void already_sparse_note(const ecp_mlp *m, const ecp_prune_opts *o)
{
    int64_t prunable = 0, pruned = 0;
    for (int l = 0; l < ecp_mlp_n_layers(m); l++)
        if (!(l < 64 && ((o->exclude_mask >> l) & 1))) {
            prunable += (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            pruned += ecp_mlp_layer_n_pruned(m, l);
        }
    if (o->nm_m == 0 && prunable > 0 && pruned >= llround(o->sparsity * (double)prunable))
        fprintf(stderr, "ecprune prune: note: the model is already %.4f sparse, at or above "
                        "--sparsity %g: no weight is removed\n", (double)pruned / prunable,
                o->sparsity);
}

/* "--sparsity 90": a percentage where a fraction is meant. */
static int sparsity_fraction(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && !*end && v >= 1 && v < 100)
        return cli_usage_error("prune", "--sparsity %s: a fraction below 1 (%g for %s %%)", s,
                               v / 100, s);
    return 0;
}

/* An unknown --method, with the closest name and the list. */
static int unknown_method(const char *name)
{
    const char *names[64];
    int n = 0;
    for (const char *m; n < 64 && (m = ecp_prune_method_name(n));)
        names[n++] = m;
    const char *near = ecp_closest_name(name, names, n);
    char list[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 names[i]);
    if (near)
        return cli_usage_error("prune", "--method '%s': unknown; did you mean '%s'? (%s)", name,
                               near, list);
    return cli_usage_error("prune", "--method '%s': unknown (choose %s)", name, list);
}

/* --method NAME[:SENSITIVITY]: "ec:loss" is "--method ec --sensitivity loss" (the name is
 * cut in place: argv's strings are the program's to change). */
static int method_spec(char *spec, ecp_prune_opts *po)
{
    char *colon = strchr(spec, ':');
    ecp_error err;
    if (colon) {
        *colon = 0;
        if (ecp_sens_parse(colon + 1, &po->sens, &err)) {
            *colon = ':';
            return cli_usage_error("prune", "--method '%s': unknown sensitivity (choose output, "
                                   "probe or loss)", spec);
        }
    }
    if (!ecp_prune_method_exists(spec))
        return unknown_method(spec);
    po->method = spec;
    return 0;
}

/* NAME[:SENSITIVITY] as --allocation-method takes it. */
static int check_method_spec(const char *spec)
{
    char name[64];
    snprintf(name, sizeof name, "%s", spec);
    char *colon = strchr(name, ':');
    ecp_sens sens;
    ecp_error err;
    if (colon) {
        *colon = 0;
        if (ecp_sens_parse(colon + 1, &sens, &err))
            return cli_usage_error("prune", "--allocation-method '%s': unknown sensitivity "
                                   "(choose output, probe or loss)", spec);
    }
    if (!ecp_prune_method_exists(name))
        return cli_usage_error("prune", "--allocation-method '%s': unknown method", spec);
    return 0;
}

static int parse_weighting(const char *s, ecp_obs_weighting *w)
{
    static const char *const names[] = {"none", "sample", "row", "rank1"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *w = (ecp_obs_weighting)i;
            return 0;
        }
    return cli_usage_error("prune", "--weighting '%s': choose sample, row, rank1 or none", s);
}

static int uniform_alloc(const ecp_prune_opts *o)
{
    return o->allocation == ECP_ALLOC_UNIFORM ||
           (o->allocation == ECP_ALLOC_AUTO && (o->scope_layer || !strcmp(o->method, "sparsegpt")));
}

static const char *scope_text(const ecp_prune_opts *o, char *buf, size_t n)
{
    if (!ecp_prune_method_reconstructs(o->method) && !o->sequential)
        return o->scope_layer ? "per layer" : "global";
    if (uniform_alloc(o))
        return o->sequential ? "per layer, sequential" : "the same sparsity in every layer";
    snprintf(buf, n, "layer sparsities from a global %s selection%s",
             o->allocation_method ? o->allocation_method
             : ecp_prune_method_reconstructs(o->method) ? "ec:loss" : o->method,
             o->sequential ? ", sequential" : "");
    return buf;
}

/* What a reconstruction run did, as the library resolves its defaults. */
static void print_reconstruction_json(const ecp_prune_opts *o)
{
    static const char *const wt[] = {"none", "sample", "row", "rank1"};
    int sgpt = !strcmp(o->method, "sparsegpt");
    int uniform = uniform_alloc(o);
    printf("\"allocation\":\"%s\",", uniform ? "uniform" : "global");
    if (!uniform)
        printf("\"allocation_method\":\"%s\",",
               o->allocation_method ? o->allocation_method : "ec:loss");
    printf("\"weighting\":\"%s\",\"damping\":%g,\"block\":%d,",
           strcmp(o->method, "ec-obs") ? "none" : wt[o->weighting], o->damping,
           o->block > 0 ? o->block : sgpt ? 128 : 16);
}

static int dump_scores(const ecp_mlp *m, const ecp_dataset *train, const ecp_prune_opts *o,
                       const char *dir, ecp_error *err)
{
    ecp_dataset *calib = NULL;
    ecp_scores *sc = NULL;
    int64_t nc = o->calib < train->n ? o->calib : train->n;
    ecp_status s = ecp_prune_calib(train, nc, o->seed, &calib, err);
    if (!s)
        s = ecp_prune_scores(m, calib, o->method, o->sens, o->probes, o->seed + 1, &sc, err);
    if (ecp_dist_agree(s, err)) {
        ecp_dataset_free(calib);
        return 1;
    }
    int rc = 0;
    char path[4200];
    for (int l = 0; l < ecp_mlp_n_layers(m) && !rc && ecp_dist_rank() == 0; l++) {
        int64_t r = ecp_mlp_layer_out(m, l), c = ecp_mlp_layer_in(m, l);
        float *buf = malloc((size_t)(r * c) * sizeof *buf);
        if (!buf) {
            ecp_fail(err, ECP_ERR_MEMORY, "--dump-scores: out of memory");
            rc = 1;
            break;
        }
        for (int pass = 0; pass < 2 && !rc; pass++) {
            double *src = pass == 0 ? sc->score[l] : (sc->comp ? sc->comp[l] : NULL);
            if (!src)
                continue;
            for (int64_t k = 0; k < r * c; k++)
                buf[k] = (float)src[k];
            snprintf(path, sizeof path, "%s/%s_%d.npy", dir, pass ? "comp" : "score", l);
            rc = ecp_npy_write_f32(path, buf, r, c, err) != ECP_OK;
        }
        free(buf);
    }
    ecp_scores_free(sc);
    ecp_dataset_free(calib);
    return ecp_dist_agree(rc ? err->code : ECP_OK, err) != ECP_OK;
}

/* --structure neuron is its own command (cmd_prune_neuron.c); --structure weight is this one. */
static int structure_option(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = !strcmp(argv[i], "--structure") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--structure=", 12) ? argv[i] + 12 : NULL;
        if (v && strcmp(v, "weight"))
            return 1;
        if (v) { /* drop the default structure's option and its value */
            int n = argv[i][11] == '=' ? 1 : 2;
            memmove(argv + i, argv + i + n, (size_t)(argc - i - n + 1) * sizeof *argv);
            return -n;
        }
    }
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    int st = structure_option(argc, argv);
    if (st > 0 && ecp_dist_size() > 1) {
        if (ecp_dist_rank() == 0)
            fprintf(stderr, "ecprune prune: --structure neuron runs on one process only (under "
                            "mpirun only weight pruning is distributed); run it without mpirun\n");
        return 2;
    }
    if (st > 0)
        return cmd_prune_neuron(argc, argv);
    argc += st;
    ecp_onnx_options store;
    if ((argc = cli_take_storage("prune", argc, argv, &store)) < 0)
        return 2;
    enum { O_SENS = 256, O_PROBES, O_SCOPE, O_EXCL, O_STEPS, O_FT, O_LR, O_BATCH, O_CALIB, O_SEED,
           O_DUMP, O_THREADS, O_TC, O_JSON, O_METHOD, O_SPARSITY, O_DATA, O_SEQ, O_ALLOC,
           O_ALLOC_M, O_WEIGHT, O_DAMP, O_BLOCK, O_REFIT };
    enum { O_PATTERN = 400 };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},       {"method", required_argument, 0, O_METHOD},
        {"sensitivity", required_argument, 0, O_SENS}, {"probes", required_argument, 0, O_PROBES},
        {"sparsity", required_argument, 0, O_SPARSITY}, {"scope", required_argument, 0, O_SCOPE},
        {"exclude-layer", required_argument, 0, O_EXCL}, {"steps", required_argument, 0, O_STEPS},
        {"finetune-epochs", required_argument, 0, O_FT}, {"lr", required_argument, 0, O_LR},
        {"batch", required_argument, 0, O_BATCH},     {"calib", required_argument, 0, O_CALIB},
        {"seed", required_argument, 0, O_SEED},       {"dump-scores", required_argument, 0, O_DUMP},
        {"threads", required_argument, 0, O_THREADS}, {"target-cols", required_argument, 0, O_TC},
        {"output", required_argument, 0, 'o'},        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},                {"sequential", no_argument, 0, O_SEQ},
        {"allocation", required_argument, 0, O_ALLOC},
        {"allocation-method", required_argument, 0, O_ALLOC_M},
        {"weighting", required_argument, 0, O_WEIGHT}, {"damping", required_argument, 0, O_DAMP},
        {"block", required_argument, 0, O_BLOCK},
        {"refit", required_argument, 0, O_REFIT},
        {"pattern", required_argument, 0, O_PATTERN},
        {0, 0, 0, 0}};
    ecp_prune_opts po;
    ecp_prune_opts_default(&po);
    const char *data = NULL, *out = NULL, *dump = NULL, *target_cols = NULL;
    long v, threads = 0;
    double d;
    int json = 0, c, rc, calib_given = 0;
    ecp_error err = {0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_METHOD: /* NAME or NAME:SENSITIVITY, as sweep --methods spells it */
            if ((rc = method_spec(optarg, &po)))
                return rc;
            break;
        case O_SENS:
            if (ecp_sens_parse(optarg, &po.sens, &err))
                return cli_die("prune", &err);
            break;
        case O_PROBES:
            if ((rc = cli_parse_int("prune", "--probes", optarg, 1, 100000, &v))) return rc;
            po.probes = (int)v;
            break;
        case O_SPARSITY:
            if ((rc = sparsity_fraction(optarg))) return rc;
            if ((rc = cli_parse_double("prune", "--sparsity", optarg, 0, 1, &d))) return rc;
            if (d >= 1)
                return cli_usage_error("prune", "--sparsity %s: must be below 1 (a layer keeps "
                                       "at least one weight)", optarg);
            po.sparsity = d;
            break;
        case O_SCOPE:
            if (!strcmp(optarg, "global")) po.scope_layer = 0;
            else if (!strcmp(optarg, "layer")) po.scope_layer = 1;
            else return cli_usage_error("prune", "--scope '%s': choose global or layer", optarg);
            break;
        case O_EXCL: if ((rc = parse_excludes(optarg, &po.exclude_mask))) return rc; break;
        case O_STEPS:
            if ((rc = cli_parse_int("prune", "--steps", optarg, 1, 1000, &v))) return rc;
            po.steps = (int)v;
            break;
        case O_FT:
            if ((rc = cli_parse_int("prune", "--finetune-epochs", optarg, 0, 10000, &v))) return rc;
            po.finetune_epochs = (int)v;
            break;
        case O_LR:
            if ((rc = cli_parse_double("prune", "--lr", optarg, 1e-12, 100, &d))) return rc;
            po.finetune.optim.lr = d;
            break;
        case O_BATCH:
            if ((rc = cli_parse_int("prune", "--batch", optarg, 1, 1 << 20, &v))) return rc;
            po.finetune.batch = (int)v;
            break;
        case O_CALIB:
            if ((rc = cli_parse_int("prune", "--calib", optarg, 1, 1L << 40, &v))) return rc;
            po.calib = v;
            calib_given = 1;
            break;
        case O_SEED:
            if ((rc = cli_parse_int("prune", "--seed", optarg, 0, 0x7fffffffL, &v))) return rc;
            po.seed = (uint64_t)v;
            break;
        case O_SEQ: po.sequential = 1; break;
        case O_ALLOC:
            if (!strcmp(optarg, "global")) po.allocation = ECP_ALLOC_GLOBAL;
            else if (!strcmp(optarg, "uniform")) po.allocation = ECP_ALLOC_UNIFORM;
            else return cli_usage_error("prune", "--allocation '%s': choose global or uniform",
                                        optarg);
            break;
        case O_ALLOC_M:
            if ((rc = check_method_spec(optarg))) return rc;
            po.allocation_method = optarg;
            break;
        case O_WEIGHT:
            if ((rc = parse_weighting(optarg, &po.weighting))) return rc;
            break;
        case O_DAMP:
            if ((rc = cli_parse_double("prune", "--damping", optarg, 0, 1e6, &d))) return rc;
            po.damping = d;
            break;
        case O_BLOCK:
            if ((rc = cli_parse_int("prune", "--block", optarg, 1, 65536, &v))) return rc;
            po.block = (int)v;
            break;
        case O_REFIT:
            if (!strcmp(optarg, "auto")) po.refit = 0;
            else if (!strcmp(optarg, "on")) po.refit = 1;
            else if (!strcmp(optarg, "off")) po.refit = -1;
            else return cli_usage_error("prune", "--refit '%s': choose auto, on or off", optarg);
            break;
        case O_DUMP: dump = optarg; break;
        case O_THREADS:
            if ((rc = cli_parse_int("prune", "--threads", optarg, 1, 1024, &threads))) return rc;
            break;
        case O_TC: target_cols = optarg; break;
        case 'o': out = optarg; break;
        case O_JSON: json = 1; break;
        case O_PATTERN:
            if (ecp_pattern_parse(optarg, &po.nm_n, &po.nm_m, &err))
                return cli_usage_error("prune", "--pattern %s", err.msg + strlen("pattern "));
            break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("prune", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (po.nm_m) /* the pattern sets the sparsity; the reports show it as the target */
        po.sparsity = 1.0 - (double)po.nm_n / po.nm_m;
    if (optind != argc - 1)
        return cli_usage_error("prune", "expected exactly one model file");
    if (!data || (!out && !dump))
        return cli_usage_error("prune", "--data and -o are required");
    if (out && ecp_dist_size() == 1 && (rc = cli_check_model_output("prune", out, &store)))
        return rc;
    if (!threads && ecp_dist_size() > 1) /* the processes on a machine share its cores */
        threads = sysconf(_SC_NPROCESSORS_ONLN) / ecp_dist_local_size() > 1
                      ? sysconf(_SC_NPROCESSORS_ONLN) / ecp_dist_local_size() : 1;
    cli_set_threads((int)threads);
    po.finetune.threads = (int)threads;
    po.threads = (int)threads;
    const char *model = argv[optind];
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *test = NULL;
    int status = 1;
    /* Under mpirun a file one rank cannot read stops every rank with that rank's message. */
    ecp_status s = ECP_OK;
    if (out && ecp_dist_size() > 1 && ecp_dist_rank() == 0 && ecp_output_check(out, &err))
        s = ecp_fail(&err, err.code, "-o %.1000s", err.msg);
    if (!s)
        s = cli_open_err(model, data, target_cols, &m, &train, &test, &err);
    if (ecp_dist_agree(s, &err)) {
        status = cli_die("prune", &err);
        goto done;
    }
    status = 1;
    if (!calib_given && po.calib > train->n)
        po.calib = train->n;
    if (po.calib > train->n) {
        status = cli_usage_error("prune", "--calib %lld: the training set has only %lld samples",
                                 (long long)po.calib, (long long)train->n);
        goto done;
    }
    if (ecp_mlp_n_layers(m) < 64 && po.exclude_mask >> ecp_mlp_n_layers(m)) {
        status = cli_usage_error("prune", "--exclude-layer: %s has layers 0 to %d only", model,
                                 ecp_mlp_n_layers(m) - 1);
        goto done;
    }
    if (dump && dump_scores(m, train, &po, dump, &err)) {
        status = cli_die("prune", &err);
        goto done;
    }
    if (!out) {
        status = 0;
        goto done;
    }
    already_sparse_note(m, &po);
    ecp_eval_result before, after;
    ecp_prune_report rep;
    po.progress = ecp_dist_rank() == 0;
    if ((s = ecp_evaluate(m, test, &before, &err)) || (s = ecp_prune(m, train, &po, &rep, &err)) ||
        (s = ecp_evaluate(m, test, &after, &err)) ||
        (s = cli_record_prune(m, po.method, ecp_sens_name(po.sens),
                              rep.weights ? (double)rep.pruned / (double)rep.weights : 0,
                              po.calib, &err)))
        ;
    else if (ecp_dist_rank() == 0) { /* one writer; the others learn how it went */
        cli_opset_note("prune", m, out);
        s = ecp_onnx_save_with(m, out, &store, &err);
    }
    if (ecp_dist_agree(s, &err)) {
        status = cli_die("prune", &err);
        goto done;
    }
    if (ecp_dist_rank() != 0) {
        status = 0;
        goto done;
    }
    int L = ecp_mlp_n_layers(m);
    double achieved = (double)rep.pruned / (double)rep.weights;
    if (json) {
        printf("{\"method\":\"%s\",\"sensitivity\":\"%s\",\"target\":%.6f,\"sparsity\":%.6f,",
               po.method, ecp_sens_name(po.sens), po.sparsity, achieved);
        if (ecp_prune_method_reconstructs(po.method))
            print_reconstruction_json(&po);
        printf("\"before\":{\"loss\":%.9g", before.loss);
        if (before.accuracy >= 0) printf(",\"accuracy\":%.6f", before.accuracy);
        printf("},\"after\":{\"loss\":%.9g", after.loss);
        if (after.accuracy >= 0) printf(",\"accuracy\":%.6f", after.accuracy);
        printf("},\"layers\":[");
        for (int l = 0; l < L; l++) {
            double nw = (double)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            printf("%s{\"sparsity\":%.6f,\"pruned\":%lld,\"dead_neurons\":%d}", l ? "," : "",
                   rep.layer_pruned[l] / nw, (long long)rep.layer_pruned[l], rep.dead_inputs[l]);
        }
        printf("],\"pruned\":%lld,\"weights\":%lld,\"steps\":%d,\"finetune_epochs\":%d,"
               "\"calib\":%lld,\"stats_seconds\":%.4f,\"seconds\":%.4f}\n",
               (long long)rep.pruned, (long long)rep.weights, po.steps, po.finetune_epochs,
               (long long)po.calib, rep.stats_seconds, rep.seconds);
    } else {
        char scope[128];
        printf("%s: method %s", model, po.method);
        if (!strcmp(po.method, "ec") || !strcmp(po.method, "ec-exact") ||
            !strcmp(po.method, "ec-obs"))
            printf(" (sensitivity %s)", ecp_sens_name(po.sens));
        printf(", %s, %d step%s, %d fine-tuning epoch%s, %lld calibration samples\n",
               scope_text(&po, scope, sizeof scope), po.steps, po.steps > 1 ? "s" : "",
               po.finetune_epochs, po.finetune_epochs == 1 ? "" : "s", (long long)po.calib);
        printf("  %-8s %12s %10s\n", "", "test loss", "accuracy");
        printf("  %-8s %12.6f", "before", before.loss);
        if (before.accuracy >= 0) printf(" %9.2f%%", 100 * before.accuracy);
        printf("\n  %-8s %12.6f", "after", after.loss);
        if (after.accuracy >= 0) printf(" %9.2f%%", 100 * after.accuracy);
        printf("\n  sparsity %.4f (%lld of %lld weights)\n", achieved, (long long)rep.pruned,
               (long long)rep.weights);
        for (int l = 0; l < L; l++) {
            double nw = (double)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            printf("    layer %d  %5d x %-5d  sparsity %.4f", l, ecp_mlp_layer_out(m, l),
                   ecp_mlp_layer_in(m, l), rep.layer_pruned[l] / nw);
            if (rep.dead_inputs[l])
                printf("  (%d neuron%s left with no input)", rep.dead_inputs[l],
                       rep.dead_inputs[l] == 1 ? "" : "s");
            printf("\n");
        }
        if (po.nm_m)
            printf("  pattern %d:%d: in every %d consecutive inputs of a row, at most %d weights "
                   "kept (recorded in the file)\n", po.nm_n, po.nm_m, po.nm_m, po.nm_n);
        printf("  statistics and scores: %.3f s; total %.3f s\n  wrote %s\n", rep.stats_seconds,
               rep.seconds, out);
    }
    status = 0;
done:
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
