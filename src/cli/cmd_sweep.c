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

int cmd_sweep(int argc, char **argv)
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
    char methods_buf[1024] =
        "ec,ec:loss,magnitude,magnitude-bc,gradient,taylor,obd,wanda,random,sparsegpt,obs,ec-obs";
    char spars_buf[1024] = "0.5,0.7,0.8,0.9,0.95,0.98";
    const char *data = NULL, *csv = NULL, *plot = NULL, *title = NULL;
    long seeds = 3, steps = 1, ft = 0, calib = 2000, threads = 0, epochs = 10, batch = 128;
    double lr = 1e-3;
    int json = 0, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_METHODS:
        case O_SPARS:
            if (snprintf(c == O_METHODS ? methods_buf : spars_buf, sizeof methods_buf, "%s",
                         optarg) >= (int)sizeof methods_buf)
                return cli_usage_error("sweep", "%s: list longer than %zu characters",
                                       c == O_METHODS ? "--methods" : "--sparsities",
                                       sizeof methods_buf - 1);
            break;
        case O_SEEDS: if ((rc = cli_parse_int("sweep", "--seeds", optarg, 1, 1000, &seeds))) return rc; break;
        case O_STEPS: if ((rc = cli_parse_int("sweep", "--steps", optarg, 1, 1000, &steps))) return rc; break;
        case O_FT: if ((rc = cli_parse_int("sweep", "--finetune-epochs", optarg, 0, 10000, &ft))) return rc; break;
        case O_CALIB: if ((rc = cli_parse_int("sweep", "--calib", optarg, 1, 1L << 40, &calib))) return rc; break;
        case O_LR: if ((rc = cli_parse_double("sweep", "--lr", optarg, 1e-12, 100, &lr))) return rc; break;
        case O_CSV: csv = optarg; break;
        case O_PLOT: plot = optarg; break;
        case O_TITLE: title = optarg; break;
        case O_THREADS: if ((rc = cli_parse_int("sweep", "--threads", optarg, 1, 1024, &threads))) return rc; break;
        case O_JSON: json = 1; break;
        case O_EPOCHS: if ((rc = cli_parse_int("sweep", "--epochs", optarg, 0, 100000, &epochs))) return rc; break;
        case O_BATCH: if ((rc = cli_parse_int("sweep", "--batch", optarg, 1, 1 << 20, &batch))) return rc; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("sweep", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("sweep", "expected exactly one model file");
    if (!data || !csv)
        return cli_usage_error("sweep", "--data and --csv are required");
    if ((rc = cli_check_output("sweep", "--csv", csv)) ||
        (plot && (rc = cli_check_output("sweep", "--plot", plot))))
        return rc;
    char *mlist[64], *slist[64];
    int nm = split_list(methods_buf, mlist, 64), ns = split_list(spars_buf, slist, 64);
    if (nm > 64 || ns > 64)
        return cli_usage_error("sweep", "--methods and --sparsities take at most 64 entries");
    double sp[64];
    ecp_sens sens[64];
    char names[64][48];
    ecp_error err = {0};
    for (int i = 0; i < nm; i++)
        if (parse_method(mlist[i], names[i], sizeof names[i], &sens[i], &err))
            return cli_die("sweep", &err);
    for (int i = 0; i < ns; i++) {
        if ((rc = cli_parse_double("sweep", "--sparsities", slist[i], 0, 1, &sp[i])))
            return rc;
        if (sp[i] >= 1)
            return cli_usage_error("sweep", "--sparsities: %s must be below 1", slist[i]);
    }
    if (nm == 0 || ns == 0)
        return cli_usage_error("sweep", "--methods and --sparsities must not be empty");
    cli_set_threads((int)threads);
    char sched[32];
    if (steps == 1 && ft == 0)
        snprintf(sched, sizeof sched, "oneshot");
    else
        snprintf(sched, sizeof sched, "T%ld-ft%ld", steps, ft);

    const char *model = argv[optind];
    table t = {0};
    ecp_mlp *m0 = NULL, *m = NULL;
    ecp_dataset *train = NULL, *test = NULL, *cal = NULL;
    ecp_progress *pr = NULL;
    int status = 1;
    t.rows = calloc(MAX_ROWS, sizeof *t.rows);
    if (!t.rows) {
        fprintf(stderr, "ecprune sweep: out of memory\n");
        return 1;
    }
    if (csv_load(csv, &t, &err) || ecp_onnx_load(&m0, model, &err) ||
        ecp_data_open(data, NULL, &train, &test, &err) ||
        ecp_check_fit(m0, train, model, data, &err) || ecp_mlp_clone(m0, &m, &err)) {
        status = cli_die("sweep", &err);
        goto done;
    }
    if (calib > train->n)
        calib = train->n;
    char arch0[400];
    {
        int sz[1001], L = ecp_mlp_n_layers(m0);
        for (int l = 0; l < L; l++)
            sz[l] = ecp_mlp_layer_in(m0, l);
        sz[L] = ecp_mlp_n_out(m0);
        ecp_arch_format(L, sz, arch0, sizeof arch0);
    }
    /* small-dense trains like the original: its recorded settings, else the options */
    ecp_train_opts sd;
    ecp_train_opts_default(&sd);
    sd.epochs = (int)epochs;
    sd.batch = (int)batch;
    ecp_optim_opts_default(&sd.optim, ECP_OPT_ADAM);
    sd.optim.lr = lr;
    int recorded = ecp_mlp_training(m0, &sd);
    for (int i = 0; i < nm; i++)
        if (!strcmp(names[i], SMALL_DENSE)) {
            fprintf(stderr, "ecprune sweep: small-dense trains %d epochs, batch %d, %s lr %g "
                    "(%s)\n", sd.epochs, sd.batch, sd.optim.kind == ECP_OPT_SGD ? "sgd" : "adam",
                    sd.optim.lr, recorded ? "as recorded in the model" :
                    "the model records none: --epochs, --batch, --lr");
            break;
        }
    if (row_find(&t, "dense", "-", 0, 0) < 0) {
        ecp_eval_result ev;
        if (ecp_evaluate(m0, test, &ev, &err)) {
            status = cli_die("sweep", &err);
            goto done;
        }
        sweep_row r = {.sparsity = 0, .seed = 0, .loss = ev.loss, .accuracy = ev.accuracy};
        snprintf(r.method, sizeof r.method, "dense");
        snprintf(r.schedule, sizeof r.schedule, "-");
        snprintf(r.arch, sizeof r.arch, "%s", arch0);
        t.rows[t.n++] = r;
        if (csv_save(csv, &t, &err)) {
            status = cli_die("sweep", &err);
            goto done;
        }
    }
    int64_t total = (int64_t)nm * ns * seeds, done_runs = 0;
    if (ecp_progress_create(&pr, "sweep", total, &err)) {
        status = cli_die("sweep", &err);
        goto done;
    }
    for (int mi = 0; mi < nm; mi++)
        for (long seed = 1; seed <= seeds; seed++) {
            /* one-shot: the scores of (method, seed) serve every sparsity */
            ecp_scores *sc = NULL;
            int small = !strcmp(names[mi], SMALL_DENSE);
            const char *row_sched = small ? "-" : sched;
            for (int si = 0; si < ns; si++, done_runs++) {
                char label[48];
                snprintf(label, sizeof label, "%s", mlist[mi]);
                if (row_find(&t, label, row_sched, sp[si], seed) >= 0)
                    continue;
                char extra[128];
                snprintf(extra, sizeof extra, "%s s=%.2f seed %ld", label, sp[si], seed);
                ecp_progress_update(pr, done_runs, extra);
                if (small) {
                    sweep_row r = {.sparsity = sp[si], .seed = seed};
                    double t0 = ecp_now();
                    if (small_dense_row(m0, train, test, sp[si], seed, &sd, &r, &err)) {
                        status = cli_die("sweep", &err);
                        goto done;
                    }
                    r.seconds = ecp_now() - t0;
                    snprintf(r.method, sizeof r.method, "%s", SMALL_DENSE);
                    snprintf(r.schedule, sizeof r.schedule, "-");
                    if (t.n == MAX_ROWS) {
                        fprintf(stderr, "ecprune sweep: too many rows\n");
                        goto done;
                    }
                    t.rows[t.n++] = r;
                    if (csv_save(csv, &t, &err)) {
                        status = cli_die("sweep", &err);
                        goto done;
                    }
                    continue;
                }
                ecp_prune_opts po;
                ecp_prune_opts_default(&po);
                po.method = names[mi];
                po.sens = sens[mi];
                po.sparsity = sp[si];
                po.steps = (int)steps;
                po.finetune_epochs = (int)ft;
                po.calib = calib;
                po.seed = (uint64_t)seed;
                po.finetune.optim.lr = lr;
                po.finetune.threads = (int)threads;
                double t0 = ecp_now();
                ecp_status s = ecp_mlp_copy(m, m0, &err);
                /* reconstruction re-fits layer by layer: no scores to share */
                if (!s && !strcmp(sched, "oneshot") && !ecp_prune_method_reconstructs(names[mi])) {
                    if (!sc) {
                        s = ecp_prune_calib(train, calib, (uint64_t)seed, &cal, &err);
                        if (!s)
                            s = ecp_prune_scores(m0, cal, names[mi], sens[mi], po.probes,
                                                 (uint64_t)seed + 1, &sc, &err);
                        ecp_dataset_free(cal);
                        cal = NULL;
                    }
                    if (!s)
                        s = ecp_prune_apply(m, sc, &po, NULL, &err);
                } else if (!s)
                    s = ecp_prune(m, train, &po, NULL, &err);
                ecp_eval_result ev;
                if (!s)
                    s = ecp_evaluate(m, test, &ev, &err);
                if (s) {
                    ecp_scores_free(sc);
                    status = cli_die("sweep", &err);
                    goto done;
                }
                sweep_row r = {.sparsity = sp[si], .seed = seed, .loss = ev.loss,
                               .accuracy = ev.accuracy};
                /* a shared score pass is charged to the first sparsity that needed it */
                r.seconds = ecp_now() - t0;
                snprintf(r.method, sizeof r.method, "%s", label);
                snprintf(r.schedule, sizeof r.schedule, "%s", sched);
                snprintf(r.arch, sizeof r.arch, "%s", arch0);
                if (t.n == MAX_ROWS) {
                    ecp_scores_free(sc);
                    fprintf(stderr, "ecprune sweep: too many rows\n");
                    goto done;
                }
                t.rows[t.n++] = r;
                if (csv_save(csv, &t, &err)) {
                    ecp_scores_free(sc);
                    status = cli_die("sweep", &err);
                    goto done;
                }
            }
            ecp_scores_free(sc);
        }
    ecp_progress_finish(pr);
    if (plot && plot_sweep(t.rows, t.n, plot, title ? title : model, &err)) {
        status = cli_die("sweep", &err);
        goto done;
    }
    if (json) {
        printf("[");
        for (int r = 0; r < t.n; r++) {
            const sweep_row *w = &t.rows[r];
            printf("%s{\"method\":\"%s\",\"sparsity\":%g,\"seed\":%ld,\"schedule\":\"%s\","
                   "\"test_loss\":%.9g,", r ? "," : "", w->method, w->sparsity, w->seed,
                   w->schedule, w->loss);
            if (w->accuracy >= 0)
                printf("\"test_accuracy\":%.6f,", w->accuracy);
            printf("\"seconds\":%.4f,\"arch\":\"%s\"}", w->seconds, w->arch);
        }
        printf("]\n");
    } else {
        printf("%d rows in %s", t.n, csv);
        if (plot)
            printf(", plot %s", plot);
        printf("\n");
    }
    status = 0;
done:
    ecp_progress_free(pr);
    ecp_dataset_free(cal);
    ecp_mlp_free(m);
    ecp_mlp_free(m0);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    free(t.rows);
    return status;
}
