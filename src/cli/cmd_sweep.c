/* ecprune sweep: every method x sparsity x seed on one model, one CSV row per run, resumable.
 * One-shot runs without fine-tuning share the scores of a (method, seed) across sparsities:
 * the statistics do not depend on the target, so each sparsity is only a selection.
 * small-dense is not a pruning criterion but the baseline every pruning result is read
 * against: a dense network of the pruned one's size trained from scratch. Its rows do not
 * depend on the schedule, so they carry schedule "-" like the dense row. */
#include "cli.h"
#include "plot.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
        "usage: ecprune sweep MODEL.onnx --data D --csv OUT.csv [options]\n\n"
        "Prunes the model with every method at every sparsity for every seed and writes one CSV\n"
        "row per run (method, sparsity, seed, schedule, test loss, test accuracy, seconds,\n"
        "architecture).\n"
        "Rows already in OUT.csv are skipped, so an interrupted sweep resumes where it stopped;\n"
        "the CSV is rewritten atomically after every row.\n\n"
        "  --data D              mnist | fashion | diffsorp[:noise] | DIR | FILE.csv\n"
        "  --methods LIST        comma-separated; NAME or NAME:SENSITIVITY (e.g. ec:loss)\n"
        "                        (default: ec,ec:loss,magnitude,magnitude-bc,gradient,taylor,\n"
        "                        obd,wanda,random,sparsegpt,obs,ec-obs); small-dense adds the\n"
        "                        baseline: at each sparsity a dense network of the same depth,\n"
        "                        hidden widths scaled by one factor so that its weights +\n"
        "                        biases do not exceed the pruned model's non-zero weights +\n"
        "                        biases, trained from scratch (seed = the row's seed) with the\n"
        "                        settings the model file records, else --epochs, --batch and\n"
        "                        Adam at --lr; its rows carry schedule '-' and serve every\n"
        "                        schedule\n"
        "  --sparsities LIST     (default 0.5,0.7,0.8,0.9,0.95,0.98)\n"
        "  --seeds N             seeds 1..N: calibration sample, random scores, fine-tuning (3)\n"
        "  --steps T             iterative schedule with T steps (1 = one-shot)\n"
        "  --finetune-epochs E   fine-tuning epochs after each step (0)\n"
        "  --calib N             calibration samples (2000)\n"
        "  --lr R                fine-tuning learning rate (Adam, 1e-3)\n"
        "  --epochs E            small-dense: training epochs if the model records none (10)\n"
        "  --batch B             small-dense: mini-batch if the model records none (128)\n"
        "  --csv FILE            the results (required)\n"
        "  --plot FILE.png       loss (log) and accuracy vs sparsity, min-max band over seeds\n"
        "  --title TEXT          plot title\n"
        "  --threads T           BLAS threads\n"
        "  --json                print all rows as JSON at the end\n\n"
        "example:\n"
        "  ecprune sweep m.onnx --data mnist --methods ec,magnitude --csv s.csv --plot s.png\n"
        "  ecprune sweep m.onnx --data mnist --methods ec,small-dense --csv s.csv\n");
}

#define MAX_ROWS 20000

typedef struct {
    sweep_row *rows;
    int n;
} table;

static int row_find(const table *t, const char *method, const char *sched, double sp, long seed)
{
    for (int r = 0; r < t->n; r++)
        if (!strcmp(t->rows[r].method, method) && !strcmp(t->rows[r].schedule, sched) &&
            fabs(t->rows[r].sparsity - sp) < 1e-9 && t->rows[r].seed == seed)
            return r;
    return -1;
}

#define SMALL_DENSE "small-dense"

/* One row: method,sparsity,seed,schedule,test_loss,test_accuracy,seconds,arch (files written
 * before the arch column have 7 fields). The accuracy is empty for regression, so fields are
 * split by hand (scanf's %[^,] refuses an empty field). */
static int parse_row(char *line, sweep_row *r)
{
    char *f[9] = {0};
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *p = line; n < 9;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    if ((n != 7 && n != 8) || !*f[0] || strlen(f[0]) >= sizeof r->method || !*f[3] ||
        strlen(f[3]) >= sizeof r->schedule)
        return 1;
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", f[0]);
    snprintf(r->schedule, sizeof r->schedule, "%s", f[3]);
    if (n == 8) {
        if (strlen(f[7]) >= sizeof r->arch || strspn(f[7], "0123456789-") != strlen(f[7]))
            return 1;
        snprintf(r->arch, sizeof r->arch, "%s", f[7]);
    }
    char *end;
    r->sparsity = strtod(f[1], &end);
    if (end == f[1] || *end)
        return 1;
    r->seed = strtol(f[2], &end, 10);
    if (end == f[2] || *end)
        return 1;
    r->loss = strtod(f[4], &end);
    if (end == f[4] || *end)
        return 1;
    r->accuracy = -1;
    if (*f[5]) {
        r->accuracy = strtod(f[5], &end);
        if (*end)
            return 1;
    }
    r->seconds = strtod(f[6], &end);
    return end == f[6] || *end;
}

static ecp_status csv_load(const char *path, table *t, ecp_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return ECP_OK; /* nothing yet */
    char line[1024];
    int lineno = 0;
    ecp_status s = ECP_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "method,", 7))
            continue;
        if (line[0] == '\n' || line[0] == 0)
            continue;
        sweep_row r;
        if (parse_row(line, &r)) {
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s:%d: not a sweep row (delete the file to start "
                                              "over)", path, lineno);
            break;
        }
        if (t->n == MAX_ROWS) {
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: more than %d rows", path, MAX_ROWS);
            break;
        }
        t->rows[t->n++] = r;
    }
    fclose(f);
    return s;
}

static ecp_status csv_save(const char *path, const table *t, ecp_error *err)
{
    ecp_wfile wf;
    ecp_status s = ecp_wfile_open(&wf, path, err);
    if (s)
        return s;
    char line[1024];
    int n = snprintf(line, sizeof line, "method,sparsity,seed,schedule,test_loss,test_accuracy,"
                                        "seconds,arch\n");
    s = ecp_wfile_write(&wf, line, (size_t)n, err);
    for (int r = 0; r < t->n && !s; r++) {
        const sweep_row *w = &t->rows[r];
        char acc[32] = "";
        if (w->accuracy >= 0)
            snprintf(acc, sizeof acc, "%.6f", w->accuracy);
        n = snprintf(line, sizeof line, "%s,%.6g,%ld,%s,%.9g,%s,%.4f,%s\n", w->method,
                     w->sparsity, w->seed, w->schedule, w->loss, acc, w->seconds, w->arch);
        s = ecp_wfile_write(&wf, line, (size_t)n, err);
    }
    if (s) {
        ecp_wfile_abort(&wf);
        return s;
    }
    return ecp_wfile_commit(&wf, err);
}

/* "ec:loss" -> method "ec", sensitivity loss. */
static int parse_method(const char *spec, char *name, size_t n, ecp_sens *sens, ecp_error *err)
{
    snprintf(name, n, "%s", spec);
    *sens = ECP_SENS_OUTPUT;
    if (!strcmp(name, SMALL_DENSE))
        return 0;
    char *colon = strchr(name, ':');
    if (colon) {
        *colon = 0;
        if (ecp_sens_parse(colon + 1, sens, err))
            return 1;
    }
    if (!ecp_prune_method_exists(name)) {
        ecp_fail(err, ECP_ERR_ARG, "--methods: unknown method '%s'", name);
        return 1;
    }
    return 0;
}

/* The small-dense row of (sparsity, seed): the dense network of the pruned model's size,
 * initialised and shuffled with the seed, trained with `to`, evaluated on the test set. */
static ecp_status small_dense_row(const ecp_mlp *m0, const ecp_dataset *train,
                                  const ecp_dataset *test, double sparsity, long seed,
                                  const ecp_train_opts *to, sweep_row *r, ecp_error *err)
{
    int sizes[1001];
    int64_t params;
    ecp_status s = cli_arch_like(m0, ecp_mlp_params_at_sparsity(m0, sparsity), sizes, &params,
                                 r->arch, sizeof r->arch, err);
    if (s) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return ecp_fail(err, s, "--methods small-dense at sparsity %g: %s", sparsity, why);
    }
    ecp_mlp *m = NULL;
    ecp_train_opts o = *to;
    o.seed = (uint64_t)seed;
    ecp_eval_result ev;
    s = ecp_mlp_create_like(m0, sizes, &m, err);
    if (!s) {
        ecp_mlp_init(m, (uint64_t)seed);
        s = ecp_train(m, train, &o, NULL, err);
    }
    if (!s)
        s = ecp_evaluate(m, test, &ev, err);
    ecp_mlp_free(m);
    if (s)
        return s;
    r->loss = ev.loss;
    r->accuracy = ev.accuracy;
    return ECP_OK;
}

static int split_list(char *s, char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max)
            return max + 1; /* too many: the caller refuses rather than drop the rest */
        out[n++] = tok;
    }
    return n;
}

/* The options of a sweep. */
typedef struct {
    char methods[1024], spars[1024];
    const char *data, *csv, *plot, *title, *model;
    long seeds, steps, ft, calib, threads, epochs, batch;
    double lr;
    int json;
} sweep_args;

/* Reads the options into a; returns -1 to go on, else the exit status (help, bad usage). */
static int parse_args(int argc, char **argv, sweep_args *a)
{
    enum { O_DATA = 256, O_METHODS, O_SPARS, O_SEEDS, O_STEPS, O_FT, O_CALIB, O_LR, O_CSV,
           O_PLOT, O_TITLE, O_THREADS, O_JSON, O_EPOCHS, O_BATCH };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},        {"methods", required_argument, 0, O_METHODS},
        {"sparsities", required_argument, 0, O_SPARS}, {"seeds", required_argument, 0, O_SEEDS},
        {"steps", required_argument, 0, O_STEPS},      {"finetune-epochs", required_argument, 0, O_FT},
        {"calib", required_argument, 0, O_CALIB},      {"lr", required_argument, 0, O_LR},
        {"csv", required_argument, 0, O_CSV},          {"plot", required_argument, 0, O_PLOT},
        {"title", required_argument, 0, O_TITLE},      {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON},              {"help", no_argument, 0, 'h'},
        {"epochs", required_argument, 0, O_EPOCHS},    {"batch", required_argument, 0, O_BATCH},
        {0, 0, 0, 0}};
    *a = (sweep_args){.methods = "ec,ec:loss,magnitude,magnitude-bc,gradient,taylor,obd,wanda,"
                                 "random,sparsegpt,obs,ec-obs",
                      .spars = "0.5,0.7,0.8,0.9,0.95,0.98", .seeds = 3, .steps = 1,
                      .calib = 2000, .epochs = 10, .batch = 128, .lr = 1e-3};
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1 && !rc) {
        switch (c) {
        case O_DATA: a->data = optarg; break;
        case O_METHODS:
        case O_SPARS:
            if (snprintf(c == O_METHODS ? a->methods : a->spars, sizeof a->methods, "%s",
                         optarg) >= (int)sizeof a->methods)
                return cli_usage_error("sweep", "%s: list longer than %zu characters",
                                       c == O_METHODS ? "--methods" : "--sparsities",
                                       sizeof a->methods - 1);
            break;
        case O_SEEDS: rc = cli_parse_int("sweep", "--seeds", optarg, 1, 1000, &a->seeds); break;
        case O_STEPS: rc = cli_parse_int("sweep", "--steps", optarg, 1, 1000, &a->steps); break;
        case O_FT: rc = cli_parse_int("sweep", "--finetune-epochs", optarg, 0, 10000, &a->ft); break;
        case O_CALIB: rc = cli_parse_int("sweep", "--calib", optarg, 1, 1L << 40, &a->calib); break;
        case O_LR: rc = cli_parse_double("sweep", "--lr", optarg, 1e-12, 100, &a->lr); break;
        case O_CSV: a->csv = optarg; break;
        case O_PLOT: a->plot = optarg; break;
        case O_TITLE: a->title = optarg; break;
        case O_THREADS: rc = cli_parse_int("sweep", "--threads", optarg, 1, 1024, &a->threads); break;
        case O_JSON: a->json = 1; break;
        case O_EPOCHS: rc = cli_parse_int("sweep", "--epochs", optarg, 0, 100000, &a->epochs); break;
        case O_BATCH: rc = cli_parse_int("sweep", "--batch", optarg, 1, 1 << 20, &a->batch); break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("sweep", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc)
        return rc;
    if (optind != argc - 1)
        return cli_usage_error("sweep", "expected exactly one model file");
    a->model = argv[optind];
    if (!a->data || !a->csv)
        return cli_usage_error("sweep", "--data and --csv are required");
    /* under mpirun rank 0, the one writer, checks them in sweep_open */
    if (ecp_dist_size() == 1 && ((rc = cli_check_output("sweep", "--csv", a->csv)) ||
                                 (a->plot && (rc = cli_check_output("sweep", "--plot", a->plot)))))
        return rc;
    return -1;
}

/* Everything a sweep works with. Groups are (method, seed) pairs, in the order method-major;
 * the rows of a group are its sparsities. */
typedef struct {
    const sweep_args *a;
    char *mlist[64], names[64][48];
    ecp_sens sens[64];
    double sp[64];
    int nm, ns;
    char sched[32], arch0[400];
    ecp_mlp *m0, *m;
    ecp_dataset *train, *test;
    ecp_train_opts sd; /* small-dense trains like the original */
    ecp_progress *pr;
    table t; /* the rows so far, identical on every rank */
} sweep;

/* The method and sparsity lists; -1 to go on, else the exit status. */
static int parse_lists(sweep_args *a, sweep *w)
{
    char *slist[64];
    int rc;
    w->nm = split_list(a->methods, w->mlist, 64);
    w->ns = split_list(a->spars, slist, 64);
    if (w->nm > 64 || w->ns > 64)
        return cli_usage_error("sweep", "--methods and --sparsities take at most 64 entries");
    ecp_error err = {0};
    for (int i = 0; i < w->nm; i++)
        if (parse_method(w->mlist[i], w->names[i], sizeof w->names[i], &w->sens[i], &err))
            return cli_die("sweep", &err);
    for (int i = 0; i < w->ns; i++) {
        if ((rc = cli_parse_double("sweep", "--sparsities", slist[i], 0, 1, &w->sp[i])))
            return rc;
        if (w->sp[i] >= 1)
            return cli_usage_error("sweep", "--sparsities: %s must be below 1", slist[i]);
    }
    if (w->nm == 0 || w->ns == 0)
        return cli_usage_error("sweep", "--methods and --sparsities must not be empty");
    if (a->steps == 1 && a->ft == 0)
        snprintf(w->sched, sizeof w->sched, "oneshot");
    else
        snprintf(w->sched, sizeof w->sched, "T%ld-ft%ld", a->steps, a->ft);
    return -1;
}

static ecp_status table_add(table *t, const sweep_row *r, ecp_error *err)
{
    if (t->n == MAX_ROWS)
        return ecp_fail(err, ECP_ERR_ARG, "more than %d rows", MAX_ROWS);
    t->rows[t->n++] = *r;
    return ECP_OK;
}

/* Rank 0 reads the CSV and every rank gets its rows (only rank 0 need see the file). */
static ecp_status table_load(sweep *w, ecp_error *err)
{
    ecp_status s = ECP_OK;
    if (ecp_dist_rank() == 0) {
        s = csv_load(w->a->csv, &w->t, err);
        if (!s && ecp_dist_size() > 1 && ecp_output_check(w->a->csv, err))
            s = ecp_fail(err, err->code, "--csv %.1000s", err->msg);
        if (!s && w->a->plot && ecp_dist_size() > 1 && ecp_output_check(w->a->plot, err))
            s = ecp_fail(err, err->code, "--plot %.1000s", err->msg);
    }
    if ((s = ecp_dist_agree(s, err)) || (s = ecp_dist_bcast(&w->t.n, sizeof w->t.n, 0, err)))
        return s;
    return ecp_dist_bcast(w->t.rows, (size_t)w->t.n * sizeof *w->t.rows, 0, err);
}

static ecp_status sweep_open(sweep *w, ecp_error *err)
{
    const sweep_args *a = w->a;
    ecp_status s = table_load(w, err);
    if (s)
        return s;
    if ((s = ecp_onnx_load(&w->m0, a->model, err)) ||
        (s = ecp_data_open(a->data, NULL, &w->train, &w->test, err)) ||
        (s = ecp_check_fit(w->m0, w->train, a->model, a->data, err)) ||
        (s = ecp_mlp_clone(w->m0, &w->m, err)))
        return s;
    int sz[1001], L = ecp_mlp_n_layers(w->m0);
    for (int l = 0; l < L; l++)
        sz[l] = ecp_mlp_layer_in(w->m0, l);
    sz[L] = ecp_mlp_n_out(w->m0);
    ecp_arch_format(L, sz, w->arch0, sizeof w->arch0);
    ecp_train_opts *sd = &w->sd;
    ecp_train_opts_default(sd);
    sd->epochs = (int)a->epochs;
    sd->batch = (int)a->batch;
    ecp_optim_opts_default(&sd->optim, ECP_OPT_ADAM);
    sd->optim.lr = a->lr;
    sd->progress = ecp_dist_size() == 1; /* rows run side by side: no interleaved bars */
    int recorded = ecp_mlp_training(w->m0, sd);
    for (int i = 0; i < w->nm && ecp_dist_rank() == 0; i++)
        if (!strcmp(w->names[i], SMALL_DENSE)) {
            fprintf(stderr, "ecprune sweep: small-dense trains %d epochs, batch %d, %s lr %g "
                    "(%s)\n", sd->epochs, sd->batch, sd->optim.kind == ECP_OPT_SGD ? "sgd" : "adam",
                    sd->optim.lr, recorded ? "as recorded in the model" :
                    "the model records none: --epochs, --batch, --lr");
            break;
        }
    return ECP_OK;
}

/* The dense model's row, first in a new CSV (evaluated by all ranks, saved by rank 0). */
static ecp_status dense_row(sweep *w, ecp_error *err)
{
    if (row_find(&w->t, "dense", "-", 0, 0) >= 0)
        return ECP_OK;
    ecp_eval_result ev;
    ecp_status s = ecp_evaluate(w->m0, w->test, &ev, err);
    if (s)
        return s;
    sweep_row r = {.sparsity = 0, .seed = 0, .loss = ev.loss, .accuracy = ev.accuracy};
    snprintf(r.method, sizeof r.method, "dense");
    snprintf(r.schedule, sizeof r.schedule, "-");
    snprintf(r.arch, sizeof r.arch, "%s", w->arch0);
    if ((s = table_add(&w->t, &r, err)) || ecp_dist_rank() != 0)
        return ecp_dist_agree(s, err);
    return ecp_dist_agree(csv_save(w->a->csv, &w->t, err), err);
}

/* One pruned row. One-shot runs share the scores of (method, seed) in *sc across sparsities;
 * reconstruction re-fits layer by layer, so it has no scores to share. */
static ecp_status prune_row(sweep *w, int mi, int si, long seed, ecp_scores **sc, sweep_row *r,
                            ecp_error *err)
{
    const sweep_args *a = w->a;
    ecp_prune_opts po;
    ecp_prune_opts_default(&po);
    po.method = w->names[mi];
    po.sens = w->sens[mi];
    po.sparsity = w->sp[si];
    po.steps = (int)a->steps;
    po.finetune_epochs = (int)a->ft;
    po.calib = a->calib < w->train->n ? a->calib : w->train->n;
    po.seed = (uint64_t)seed;
    po.finetune.optim.lr = a->lr;
    po.finetune.threads = (int)a->threads;
    ecp_status s = ecp_mlp_copy(w->m, w->m0, err);
    if (!s && !strcmp(w->sched, "oneshot") && !ecp_prune_method_reconstructs(po.method)) {
        if (!*sc) {
            ecp_dataset *cal = NULL;
            s = ecp_prune_calib(w->train, po.calib, (uint64_t)seed, &cal, err);
            if (!s)
                s = ecp_prune_scores(w->m0, cal, po.method, po.sens, po.probes,
                                     (uint64_t)seed + 1, sc, err);
            ecp_dataset_free(cal);
        }
        if (!s)
            s = ecp_prune_apply(w->m, *sc, &po, NULL, err);
    } else if (!s) {
        s = ecp_prune(w->m, w->train, &po, NULL, err);
    }
    ecp_eval_result ev;
    if (!s && !(s = ecp_evaluate(w->m, w->test, &ev, err))) {
        r->loss = ev.loss;
        r->accuracy = ev.accuracy;
        snprintf(r->arch, sizeof r->arch, "%s", w->arch0);
    }
    return s;
}

/* The missing rows of group g into dst (saved after each row when `save`). */
static ecp_status run_group(sweep *w, int g, table *dst, int save, ecp_error *err)
{
    int mi = (int)(g / w->a->seeds);
    long seed = g % w->a->seeds + 1;
    int small = !strcmp(w->names[mi], SMALL_DENSE);
    ecp_scores *sc = NULL;
    ecp_status s = ECP_OK;
    for (int si = 0; si < w->ns && !s; si++) {
        sweep_row r = {.sparsity = w->sp[si], .seed = seed};
        snprintf(r.method, sizeof r.method, "%s", w->mlist[mi]);
        /* small-dense rows do not depend on the schedule */
        snprintf(r.schedule, sizeof r.schedule, "%s", small ? "-" : w->sched);
        if (row_find(&w->t, r.method, r.schedule, r.sparsity, seed) >= 0)
            continue;
        char extra[128];
        snprintf(extra, sizeof extra, "%s s=%.2f seed %ld", r.method, r.sparsity, seed);
        ecp_progress_update(w->pr, (int64_t)g * w->ns + si, extra);
        double t0 = ecp_now();
        s = small ? small_dense_row(w->m0, w->train, w->test, r.sparsity, seed, &w->sd, &r, err)
                  : prune_row(w, mi, si, seed, &sc, &r, err);
        /* a shared score pass is charged to the first sparsity that needed it */
        r.seconds = ecp_now() - t0;
        if (!s)
            s = table_add(dst, &r, err);
        if (!s && save)
            s = csv_save(w->a->csv, dst, err);
    }
    ecp_scores_free(sc);
    return s;
}

/* Every rank's rows of this round, in rank order (= group order), appended on every rank;
 * rank 0 saves. */
static ecp_status gather_round(sweep *w, table *mine, int ranks, ecp_error *err)
{
    ecp_status s = ECP_OK;
    for (int root = 0; root < ranks && !s; root++) {
        table in = {mine->rows, mine->n};
        if ((s = ecp_dist_bcast(&in.n, sizeof in.n, root, err)))
            break;
        if (w->t.n + in.n > MAX_ROWS)
            return ecp_fail(err, ECP_ERR_ARG, "more than %d rows", MAX_ROWS);
        int me = root == ecp_dist_rank();
        s = ecp_dist_bcast(me ? mine->rows : w->t.rows + w->t.n,
                           (size_t)in.n * sizeof *in.rows, root, err);
        if (me)
            memcpy(w->t.rows + w->t.n, mine->rows, (size_t)in.n * sizeof *in.rows);
        w->t.n += in.n;
    }
    if (!s && ecp_dist_rank() == 0)
        s = csv_save(w->a->csv, &w->t, err);
    return ecp_dist_agree(s, err);
}

/* Under mpirun each rank runs whole groups on its own (ecp_dist_solo), one per rank per round;
 * the rows then go to every rank and rank 0 writes the CSV in the single-process order. */
static ecp_status run_groups(sweep *w, ecp_error *err)
{
    int G = w->nm * (int)w->a->seeds, P = ecp_dist_size(), me = ecp_dist_rank();
    if (P == 1) {
        ecp_status s = ECP_OK;
        for (int g = 0; g < G && !s; g++)
            s = run_group(w, g, &w->t, 1, err);
        return s;
    }
    table mine = {calloc((size_t)w->ns, sizeof *mine.rows), 0};
    ecp_status s = ecp_dist_agree(mine.rows ? ECP_OK : ecp_fail(err, ECP_ERR_MEMORY,
                                                                 "out of memory"), err);
    for (int g0 = 0; g0 < G && !s; g0 += P) {
        mine.n = 0;
        if (g0 + me < G) {
            int prev = ecp_dist_solo(1);
            s = run_group(w, g0 + me, &mine, 0, err);
            ecp_dist_solo(prev);
        }
        if (!(s = ecp_dist_agree(s, err)))
            s = gather_round(w, &mine, G - g0 < P ? G - g0 : P, err);
        ecp_progress_update(w->pr, (int64_t)(g0 + P) * w->ns, "rows gathered");
    }
    free(mine.rows);
    return s;
}

static void print_rows(const sweep *w)
{
    const table *t = &w->t;
    if (!w->a->json) {
        printf("%d rows in %s", t->n, w->a->csv);
        if (w->a->plot)
            printf(", plot %s", w->a->plot);
        printf("\n");
        return;
    }
    printf("[");
    for (int r = 0; r < t->n; r++) {
        const sweep_row *x = &t->rows[r];
        printf("%s{\"method\":\"%s\",\"sparsity\":%g,\"seed\":%ld,\"schedule\":\"%s\","
               "\"test_loss\":%.9g,", r ? "," : "", x->method, x->sparsity, x->seed,
               x->schedule, x->loss);
        if (x->accuracy >= 0)
            printf("\"test_accuracy\":%.6f,", x->accuracy);
        printf("\"seconds\":%.4f,\"arch\":\"%s\"}", x->seconds, x->arch);
    }
    printf("]\n");
}

static ecp_status sweep_all(sweep *w, ecp_error *err)
{
    ecp_status s = ecp_dist_agree(sweep_open(w, err), err);
    if (!s)
        s = dense_row(w, err);
    if (!s && ecp_dist_rank() == 0)
        s = ecp_progress_create(&w->pr, "sweep", (int64_t)w->nm * w->ns * w->a->seeds, err);
    if (!(s = ecp_dist_agree(s, err)))
        s = run_groups(w, err);
    if (s || ecp_dist_rank() != 0)
        return s;
    ecp_progress_finish(w->pr);
    return w->a->plot ? plot_sweep(w->t.rows, w->t.n, w->a->plot,
                                   w->a->title ? w->a->title : w->a->model, err)
                      : ECP_OK;
}

int cmd_sweep(int argc, char **argv)
{
    sweep_args a;
    sweep w = {.a = &a};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0)
        rc = parse_lists(&a, &w);
    if (rc >= 0)
        return rc;
    if (!a.threads) /* the ranks on one machine share its cores */
        a.threads = ecp_dist_default_threads();
    cli_set_threads((int)a.threads);
    ecp_error err = {0};
    int status = 0;
    if (!(w.t.rows = calloc(MAX_ROWS, sizeof *w.t.rows)))
        ecp_fail(&err, ECP_ERR_MEMORY, "out of memory");
    /* a rank that could not allocate the table stops all, like any other failure */
    if (ecp_dist_agree(err.code, &err) || sweep_all(&w, &err))
        status = cli_die("sweep", &err);
    else if (ecp_dist_rank() == 0)
        print_rows(&w);
    ecp_progress_free(w.pr);
    ecp_mlp_free(w.m);
    ecp_mlp_free(w.m0);
    ecp_dataset_free(w.train);
    ecp_dataset_free(w.test);
    free(w.t.rows);
    return status;
}
