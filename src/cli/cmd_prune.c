/* ecprune prune: prune a model and report what it cost. */
#include "cli.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        "                       seeded shuffle (2000, or all if fewer); read 16 MiB of rows\n"
        "                       at a time, so memory does not grow with N (IDX and .npy\n"
        "                       training inputs of 64 MiB and more stay on disk unless\n"
        "                       --finetune-epochs needs them loaded; ECPRUNE_STREAM_FROM=BYTES\n"
        "                       sets that size)\n"
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

enum { O_SENS = 256, O_PROBES, O_SCOPE, O_EXCL, O_STEPS, O_FT, O_LR, O_BATCH, O_CALIB, O_SEED,
       O_DUMP, O_METHOD, O_SPARSITY, O_SEQ, O_ALLOC, O_ALLOC_M, O_WEIGHT, O_DAMP, O_BLOCK,
       O_REFIT, O_PATTERN };

/* What prune's own options set. */
typedef struct {
    ecp_prune_opts po;
    const char *dump;
    int calib_given;
    ecp_onnx_options store;
} prune_args;

/* The numeric options; -1 when c is not one of them. */
static int prune_number(prune_args *p, int c, const char *arg)
{
    ecp_prune_opts *po = &p->po;
    long v = 0;
    double d = 0;
    int rc;
#define INT_OPT(flag, lo, hi, field)                                                             \
    if (!(rc = cli_parse_int("prune", flag, arg, lo, hi, &v)))                                   \
        field = v;                                                                               \
    return rc
#define REAL_OPT(flag, lo, hi, field)                                                            \
    if (!(rc = cli_parse_double("prune", flag, arg, lo, hi, &d)))                                \
        field = d;                                                                               \
    return rc
    switch (c) {
    case O_PROBES: INT_OPT("--probes", 1, 100000, po->probes);
    case O_STEPS: INT_OPT("--steps", 1, 1000, po->steps);
    case O_FT: INT_OPT("--finetune-epochs", 0, 10000, po->finetune_epochs);
    case O_LR: REAL_OPT("--lr", 1e-12, 100, po->finetune.optim.lr);
    case O_BATCH: INT_OPT("--batch", 1, 1 << 20, po->finetune.batch);
    case O_SEED: INT_OPT("--seed", 0, 0x7fffffffL, po->seed);
    case O_DAMP: REAL_OPT("--damping", 0, 1e6, po->damping);
    case O_BLOCK: INT_OPT("--block", 1, 65536, po->block);
    case O_CALIB:
        p->calib_given = 1;
        INT_OPT("--calib", 1, 1L << 40, po->calib);
    case O_SPARSITY:
        if ((rc = sparsity_fraction(arg)) || (rc = cli_parse_double("prune", "--sparsity", arg, 0, 1, &d)))
            return rc;
        if (d >= 1)
            return cli_usage_error("prune", "--sparsity %s: must be below 1 (a layer keeps "
                                   "at least one weight)", arg);
        po->sparsity = d;
        return 0;
    }
#undef INT_OPT
#undef REAL_OPT
    return -1;
}

/* The options that name a choice. */
static int prune_choice(prune_args *p, int c, char *arg)
{
    ecp_prune_opts *po = &p->po;
    ecp_error err = {0};
    switch (c) {
    case O_METHOD: return method_spec(arg, po); /* NAME or NAME:SENSITIVITY, as sweep spells it */
    case O_SENS: return ecp_sens_parse(arg, &po->sens, &err) ? cli_die("prune", &err) : 0;
    case O_SCOPE:
        if (strcmp(arg, "global") && strcmp(arg, "layer"))
            return cli_usage_error("prune", "--scope '%s': choose global or layer", arg);
        po->scope_layer = !strcmp(arg, "layer");
        return 0;
    case O_EXCL: return parse_excludes(arg, &po->exclude_mask);
    case O_SEQ: po->sequential = 1; return 0;
    case O_ALLOC:
        if (strcmp(arg, "global") && strcmp(arg, "uniform"))
            return cli_usage_error("prune", "--allocation '%s': choose global or uniform", arg);
        po->allocation = !strcmp(arg, "global") ? ECP_ALLOC_GLOBAL : ECP_ALLOC_UNIFORM;
        return 0;
    case O_ALLOC_M: po->allocation_method = arg; return check_method_spec(arg);
    case O_WEIGHT: return parse_weighting(arg, &po->weighting);
    case O_REFIT:
        if (strcmp(arg, "auto") && strcmp(arg, "on") && strcmp(arg, "off"))
            return cli_usage_error("prune", "--refit '%s': choose auto, on or off", arg);
        po->refit = !strcmp(arg, "on") ? 1 : !strcmp(arg, "off") ? -1 : 0;
        return 0;
    case O_DUMP: p->dump = arg; return 0;
    case O_PATTERN:
        if (ecp_pattern_parse(arg, &po->nm_n, &po->nm_m, &err))
            return cli_usage_error("prune", "--pattern %s", err.msg + strlen("pattern "));
        return 0;
    }
    return cli_usage_error("prune", "unknown option");
}

static int prune_opt(void *ctx, int c, char *arg)
{
    int rc = prune_number(ctx, c, arg);
    return rc >= 0 ? rc : prune_choice(ctx, c, arg);
}

/* The checks that need no file, and the thread count. */
static int prune_check_args(cli_args *a, prune_args *p)
{
    ecp_prune_opts *po = &p->po;
    int rc;
    if (po->nm_m) /* the pattern sets the sparsity; the reports show it as the target */
        po->sparsity = 1.0 - (double)po->nm_n / po->nm_m;
    if (!a->data || (!a->out && !p->dump))
        return cli_usage_error("prune", "--data and -o are required");
    if (a->out && ecp_dist_size() == 1 && (rc = cli_check_model_output("prune", a->out, &p->store)))
        return rc;
    if (!a->threads) /* under mpirun the processes on a machine share its cores */
        a->threads = ecp_dist_default_threads();
    cli_set_threads((int)a->threads);
    po->finetune.threads = (int)a->threads;
    po->threads = (int)a->threads;
    return 0;
}

/* Opens the model and the data. Under mpirun a file one rank cannot read stops every rank with
 * that rank's message. Without fine-tuning the training set is only sampled for calibration:
 * IDX files then stay on disk and the statistics read a chunk at a time. */
static int prune_open(const cli_args *a, const prune_args *p, cli_loaded *l)
{
    memset(l, 0, sizeof *l);
    return cli_open_shared("prune", a->out, &p->store, a->model, a->data, a->target_cols,
                           p->po.finetune_epochs == 0, &l->m, &l->train, &l->test);
}

/* The checks against the model and the data. */
static int prune_check_fit(const cli_args *a, prune_args *p, const cli_loaded *l)
{
    ecp_prune_opts *po = &p->po;
    int L = ecp_mlp_n_layers(l->m);
    if (!p->calib_given && po->calib > l->train->n)
        po->calib = l->train->n;
    if (po->calib > l->train->n)
        return cli_usage_error("prune", "--calib %lld: the training set has only %lld samples",
                               (long long)po->calib, (long long)l->train->n);
    if (L < 64 && po->exclude_mask >> L)
        return cli_usage_error("prune", "--exclude-layer: %s has layers 0 to %d only", a->model,
                               L - 1);
    return 0;
}

typedef struct {
    ecp_eval_result before, after;
    ecp_prune_report rep;
} prune_result;

static void print_prune_json(const ecp_prune_opts *po, const ecp_mlp *m, const prune_result *r)
{
    const ecp_prune_report *rep = &r->rep;
    printf("{\"method\":\"%s\",\"sensitivity\":\"%s\",\"target\":%.6f,\"sparsity\":%.6f,",
           po->method, ecp_sens_name(po->sens), po->sparsity,
           (double)rep->pruned / (double)rep->weights);
    if (ecp_prune_method_reconstructs(po->method))
        print_reconstruction_json(po);
    printf("\"before\":{\"loss\":%.9g", r->before.loss);
    if (r->before.accuracy >= 0) printf(",\"accuracy\":%.6f", r->before.accuracy);
    printf("},\"after\":{\"loss\":%.9g", r->after.loss);
    if (r->after.accuracy >= 0) printf(",\"accuracy\":%.6f", r->after.accuracy);
    printf("},\"layers\":[");
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        double nw = (double)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        printf("%s{\"sparsity\":%.6f,\"pruned\":%lld,\"dead_neurons\":%d}", l ? "," : "",
               rep->layer_pruned[l] / nw, (long long)rep->layer_pruned[l], rep->dead_inputs[l]);
    }
    printf("],\"pruned\":%lld,\"weights\":%lld,\"steps\":%d,\"finetune_epochs\":%d,"
           "\"calib\":%lld,\"stats_seconds\":%.4f,\"seconds\":%.4f}\n",
           (long long)rep->pruned, (long long)rep->weights, po->steps, po->finetune_epochs,
           (long long)po->calib, rep->stats_seconds, rep->seconds);
}

static void print_layers(const ecp_mlp *m, const ecp_prune_report *rep)
{
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        double nw = (double)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        printf("    layer %d  %5d x %-5d  sparsity %.4f", l, ecp_mlp_layer_out(m, l),
               ecp_mlp_layer_in(m, l), rep->layer_pruned[l] / nw);
        if (rep->dead_inputs[l])
            printf("  (%d neuron%s left with no input)", rep->dead_inputs[l],
                   rep->dead_inputs[l] == 1 ? "" : "s");
        printf("\n");
    }
}

static void print_prune_text(const cli_args *a, const ecp_prune_opts *po, const ecp_mlp *m,
                             const prune_result *r)
{
    const ecp_prune_report *rep = &r->rep;
    char scope[128];
    printf("%s: method %s", a->model, po->method);
    if (!strcmp(po->method, "ec") || !strcmp(po->method, "ec-exact") ||
        !strcmp(po->method, "ec-obs"))
        printf(" (sensitivity %s)", ecp_sens_name(po->sens));
    printf(", %s, %d step%s, %d fine-tuning epoch%s, %lld calibration samples\n",
           scope_text(po, scope, sizeof scope), po->steps, po->steps > 1 ? "s" : "",
           po->finetune_epochs, po->finetune_epochs == 1 ? "" : "s", (long long)po->calib);
    printf("  %-8s %12s %10s\n", "", "test loss", "accuracy");
    printf("  %-8s %12.6f", "before", r->before.loss);
    if (r->before.accuracy >= 0) printf(" %9.2f%%", 100 * r->before.accuracy);
    printf("\n  %-8s %12.6f", "after", r->after.loss);
    if (r->after.accuracy >= 0) printf(" %9.2f%%", 100 * r->after.accuracy);
    printf("\n  sparsity %.4f (%lld of %lld weights)\n",
           (double)rep->pruned / (double)rep->weights, (long long)rep->pruned,
           (long long)rep->weights);
    print_layers(m, rep);
    if (po->nm_m)
        printf("  pattern %d:%d: in every %d consecutive inputs of a row, at most %d weights "
               "kept (recorded in the file)\n", po->nm_n, po->nm_m, po->nm_m, po->nm_n);
    printf("  statistics and scores: %.3f s; total %.3f s\n  wrote %s\n", rep->stats_seconds,
           rep->seconds, a->out);
}

/* Scores (--dump-scores), then prune, evaluate before and after, save, report. */
static int prune_run(const cli_args *a, prune_args *p, cli_loaded *l)
{
    ecp_prune_opts *po = &p->po;
    ecp_error err = {0};
    int rc;
    if ((rc = prune_check_fit(a, p, l)))
        return rc;
    if (p->dump && dump_scores(l->m, l->train, po, p->dump, &err))
        return cli_die("prune", &err);
    if (!a->out)
        return 0;
    already_sparse_note(l->m, po);
    prune_result r;
    po->progress = ecp_dist_rank() == 0;
    ecp_status s;
    if ((s = ecp_evaluate(l->m, l->test, &r.before, &err)) ||
        (s = ecp_prune(l->m, l->train, po, &r.rep, &err)) ||
        (s = ecp_evaluate(l->m, l->test, &r.after, &err)) ||
        (s = cli_record_prune(l->m, po->method, ecp_sens_name(po->sens),
                              r.rep.weights ? (double)r.rep.pruned / (double)r.rep.weights : 0,
                              po->calib, &err)))
        ;
    else if (ecp_dist_rank() == 0) { /* one writer; the others learn how it went */
        cli_opset_note("prune", l->m, a->out);
        s = ecp_onnx_save_with(l->m, a->out, &p->store, &err);
    }
    if (ecp_dist_agree(s, &err))
        return cli_die("prune", &err);
    if (ecp_dist_rank() != 0)
        return 0;
    if (a->json)
        print_prune_json(po, l->m, &r);
    else
        print_prune_text(a, po, l->m, &r);
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    int st = structure_option(argc, argv);
    if (st > 0)
        return cmd_prune_neuron(argc, argv);
    argc += st;
    ecp_onnx_options store;
    if ((argc = cli_take_storage("prune", argc, argv, &store)) < 0)
        return 2;
    static const struct option opts[] = {
        CLI_OPT_DATA, {"method", required_argument, 0, O_METHOD},
        {"sensitivity", required_argument, 0, O_SENS}, {"probes", required_argument, 0, O_PROBES},
        {"sparsity", required_argument, 0, O_SPARSITY}, {"scope", required_argument, 0, O_SCOPE},
        {"exclude-layer", required_argument, 0, O_EXCL}, {"steps", required_argument, 0, O_STEPS},
        {"finetune-epochs", required_argument, 0, O_FT}, {"lr", required_argument, 0, O_LR},
        {"batch", required_argument, 0, O_BATCH},     {"calib", required_argument, 0, O_CALIB},
        {"seed", required_argument, 0, O_SEED},       {"dump-scores", required_argument, 0, O_DUMP},
        CLI_OPT_THREADS, CLI_OPT_TARGET_COLS, CLI_OPT_OUTPUT, CLI_OPT_JSON, CLI_OPT_HELP,
        {"sequential", no_argument, 0, O_SEQ},        {"allocation", required_argument, 0, O_ALLOC},
        {"allocation-method", required_argument, 0, O_ALLOC_M},
        {"weighting", required_argument, 0, O_WEIGHT}, {"damping", required_argument, 0, O_DAMP},
        {"block", required_argument, 0, O_BLOCK},     {"refit", required_argument, 0, O_REFIT},
        {"pattern", required_argument, 0, O_PATTERN}, {0, 0, 0, 0}};
    prune_args p = {.dump = NULL, .store = store};
    ecp_prune_opts_default(&p.po);
    cli_args a;
    int rc = cli_parse(&a, "prune", argc, argv, opts, prune_opt, &p, help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = prune_check_args(&a, &p)))
        return rc;
    cli_loaded l;
    if (!(rc = prune_open(&a, &p, &l))) /* l may hold the data even when it fails */
        rc = prune_run(&a, &p, &l);
    cli_loaded_free(&l);
    return rc;
}
