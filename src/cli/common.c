/* Shared by the subcommands: error reporting with the right exit status, strict numbers. */
#include "cli.h"
#include <cblas.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The library names the fields of its option structs; the tool names the flags that set them.
 * A field is rewritten where it stands as a name: followed by a value (" '", " =", " 1", " -1")
 * or a colon. LOOSE fields are also rewritten in a list ("raise n_c0, n_times or cells"); LEAD
 * fields (ordinary words too) only at the start of the message. cmd NULL = every subcommand. */
enum { NAMED = 0, LOOSE = 1, LEAD = 2 };
typedef struct {
    const char *cmd, *field, *flag;
    int how;
} field_flag;

static const field_flag field_flags[] = {
    {NULL, "arch", "--arch", NAMED},
    {NULL, "dataset", "--data", LEAD},
    {NULL, "target_cols", "--target-cols", NAMED},
    {NULL, "method", "--method", NAMED},
    {NULL, "sens", "--sensitivity", NAMED},
    {NULL, "probes", "--probes", NAMED},
    {NULL, "sparsity", "--sparsity", NAMED},
    {NULL, "steps", "--steps", NAMED},
    {NULL, "finetune_epochs", "--finetune-epochs", NAMED},
    {NULL, "calib", "--calib", NAMED},
    {NULL, "epochs", "--epochs", NAMED},
    {NULL, "batch", "--batch", NAMED},
    {NULL, "patience", "--patience", NAMED},
    {NULL, "threads", "--threads", NAMED},
    {"datagen", "n_c0", "--c0", LOOSE},
    {"datagen", "n_times", "--times", LOOSE},
    {"datagen", "cells", "--cells", LOOSE},
    {"datagen", "n_train", "--train", LOOSE},
    {"datagen", "n_test", "--test", LOOSE},
    {"datagen", "noise", "--noise", NAMED},
    {"export-c", "name", "--name", NAMED},
    {"export-c", "dir", "-o", NAMED},
};

static int is_word_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* The flag for the field that starts at p (a word boundary), or NULL. */
static const field_flag *field_at(const char *cmd, const char *msg, const char *p)
{
    if (p > msg && is_word_char(p[-1]))
        return NULL;
    for (size_t i = 0; i < sizeof field_flags / sizeof *field_flags; i++) {
        const field_flag *f = &field_flags[i];
        size_t n = strlen(f->field);
        if ((f->cmd && strcmp(f->cmd, cmd)) || strncmp(p, f->field, n) || is_word_char(p[n]) ||
            (f->how == LEAD && p != msg))
            continue;
        const char *q = p + n;
        int named = *q == ':' || (q[0] == ' ' && (q[1] == '\'' || q[1] == '=' ||
                                                  isdigit((unsigned char)q[1]) ||
                                                  (q[1] == '-' && isdigit((unsigned char)q[2]))));
        if (named || (f->how == LOOSE && (*q == ',' || *q == ' ' || !*q)))
            return f;
    }
    return NULL;
}

void cli_flag_names(const char *cmd, const char *msg, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < n;) {
        const field_flag *f = field_at(cmd, msg, p);
        const char *src = f ? f->flag : p;
        size_t len = f ? strlen(f->flag) : 1;
        for (size_t k = 0; k < len && o + 1 < n; k++)
            out[o++] = src[k];
        p += f ? strlen(f->field) : 1;
    }
    out[n ? o : 0] = 0;
}

int cli_die(const char *cmd, const ecp_error *err)
{
    char msg[sizeof err->msg + 256];
    cli_flag_names(cmd, err->msg[0] ? err->msg : ecp_status_name(err->code), msg, sizeof msg);
    if (ecp_dist_rank() == 0) /* under mpirun every rank has the same error: one line */
        fprintf(stderr, "ecprune %s: %s\n", cmd, msg);
    return err->code == ECP_ERR_ARG ? 2 : 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    if (ecp_dist_rank() != 0) /* every rank parses the same options: one line */
        return 2;
    fprintf(stderr, "ecprune %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'ecprune %s --help')\n", cmd);
    return 2;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return cli_usage_error(cmd, "%s '%s': expected an integer in [%ld, %ld]", opt, s, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error(cmd, "%s '%s': expected a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

int cli_check_output(const char *cmd, const char *flag, const char *path)
{
    ecp_error err = {0};
    if (!ecp_output_check(path, &err))
        return 0;
    fprintf(stderr, "ecprune %s: %s %s\n", cmd, flag, err.msg);
    return 1;
}

int cli_check_model_output(const char *cmd, const char *path, const ecp_onnx_options *o)
{
    ecp_error err = {0};
    if (!ecp_onnx_output_check(path, o, &err))
        return 0;
    fprintf(stderr, "ecprune %s: -o %s\n", cmd, err.msg);
    return 1;
}

int cli_take_max_memory(int argc, char **argv)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--max-memory")) {
            if (i + 1 == argc) {
                fprintf(stderr, "ecprune: --max-memory needs a size, e.g. 8G\n");
                return -1;
            }
            v = argv[++i];
        } else if (!strncmp(argv[i], "--max-memory=", 13)) {
            v = argv[i] + 13;
        } else {
            argv[n++] = argv[i];
            continue;
        }
        uint64_t b;
        if (ecp_parse_bytes(v, &b)) {
            fprintf(stderr, "ecprune: --max-memory '%s': expected a size such as 8G, 512M or "
                            "1000000 (bytes)\n", v);
            return -1;
        }
        ecp_set_max_memory(b);
    }
    argv[n] = NULL;
    return n;
}

int cli_take_storage(const char *cmd, int argc, char **argv, ecp_onnx_options *o)
{
    int n = 0;
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--external-data")) {
            o->external_data = 1;
            continue;
        }
        if (!strcmp(argv[i], "--storage")) {
            if (i + 1 == argc) {
                cli_usage_error(cmd, "--storage needs dense or sparse");
                return -1;
            }
            v = argv[++i];
        } else if (!strncmp(argv[i], "--storage=", 10)) {
            v = argv[i] + 10;
        } else {
            argv[n++] = argv[i];
            continue;
        }
        if (strcmp(v, "dense") && strcmp(v, "sparse")) {
            cli_usage_error(cmd, "--storage '%s': expected dense or sparse", v);
            return -1;
        }
        o->sparse = !strcmp(v, "sparse");
    }
    argv[n] = NULL;
    return n;
}

int cli_check_model_path(const char *cmd, const char *path)
{
    static const char *const other[] = {".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".h5",
                                        ".keras", ".pb", ".tflite", ".npy", ".npz", ".json"};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof other / sizeof *other; i++)
        if (!strcasecmp(dot, other[i]))
            return cli_usage_error(cmd, "-o %s: ecprune writes ONNX models; name the file .onnx",
                                   path);
    return 0;
}

void cli_set_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

/* A model whose file ends in Softmax/LogSoftmax is a classifier: targets given as one column
 * of class numbers, or as one-hot rows, become labels. Anything else is refused. */
static ecp_status as_classes(const ecp_mlp *m, ecp_dataset *d, const char *data, ecp_error *err)
{
    int k = ecp_mlp_n_out(m);
    if (!d || d->is_class || ecp_mlp_output_transform(m) == ECP_OUT_NONE)
        return ECP_OK;
    if (d->n_out != 1 && d->n_out != k)
        return ecp_fail(err, ECP_ERR_SHAPE, "%s: the model ends in %s (a classifier of %d "
                        "classes) but the targets have %d columns; give class numbers or "
                        "one-hot rows", data, ecp_out_transform_name(ecp_mlp_output_transform(m)),
                        k, d->n_out);
    int32_t *lab = malloc((size_t)d->n * sizeof *lab);
    if (!lab)
        return ecp_fail(err, ECP_ERR_MEMORY, "%s: out of memory for the class labels", data);
    for (int64_t i = 0; i < d->n; i++) {
        const float *y = d->y + (size_t)i * d->n_out;
        int c = -1, ones = 0, other = 0;
        if (d->n_out == 1) {
            c = y[0] == floorf(y[0]) && y[0] >= 0 && y[0] < k ? (int)y[0] : -1;
        } else {
            for (int j = 0; j < k; j++) {
                ones += y[j] == 1.0f;
                other += y[j] != 1.0f && y[j] != 0.0f;
                if (y[j] == 1.0f)
                    c = j;
            }
            c = ones == 1 && !other ? c : -1;
        }
        if (c < 0) {
            free(lab);
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: target row %lld is not a class number in "
                            "[0, %d) nor a one-hot row (the model ends in %s: a classifier)",
                            data, (long long)i, k,
                            ecp_out_transform_name(ecp_mlp_output_transform(m)));
        }
        lab[i] = c;
    }
    free(d->y);
    d->y = NULL;
    d->label = lab;
    d->is_class = 1;
    d->n_out = k;
    return ECP_OK;
}

ecp_status cli_open_err(const char *model, const char *data, const char *target_cols,
                        ecp_mlp **m, ecp_dataset **train, ecp_dataset **test, ecp_error *err)
{
    return cli_open_data_err(model, data, target_cols, 0, m, train, test, err);
}

/* A training set whose inputs take less than this many bytes (as float32) is read into memory
 * even where it could stay on disk: gathering its rows from the file again on every pass costs
 * more than the memory (docs/SCALING.md), and memory stays bounded by this plus the passes'
 * chunk. ECPRUNE_STREAM_FROM=BYTES sets it (0: always leave the inputs on disk). */
#define CLI_STREAM_FROM ((int64_t)64 << 20)

/* The threshold: ECPRUNE_STREAM_FROM when set (a byte count, else an error), else the default. */
static ecp_status stream_from(int64_t *out, ecp_error *err)
{
    const char *e = getenv("ECPRUNE_STREAM_FROM");
    *out = CLI_STREAM_FROM;
    if (!e)
        return ECP_OK;
    char *end;
    errno = 0;
    long long v = strtoll(e, &end, 10);
    if (!*e || *end || v < 0 || errno)
        return ecp_fail(err, ECP_ERR_ARG,
                        "ECPRUNE_STREAM_FROM '%.40s': expected a byte count (an integer >= 0)", e);
    *out = (int64_t)v;
    return ECP_OK;
}

/* *d, if its rows are on disk but few enough, replaced by the same rows in memory. */
static ecp_status small_in_memory(ecp_dataset **d, ecp_error *err)
{
    ecp_dataset *t = *d, *mem = NULL;
    int64_t limit;
    ecp_status st = stream_from(&limit, err);
    if (st || !t->rows || t->n >= limit / 4 / t->n_in)
        return st;
    ecp_status s = ecp_dataset_copy(t, &mem, err);
    if (!s) {
        ecp_dataset_free(t);
        *d = mem;
    }
    return s;
}

ecp_status cli_open_data_err(const char *model, const char *data, const char *target_cols,
                             int streamed, ecp_mlp **m, ecp_dataset **train, ecp_dataset **test,
                             ecp_error *err)
{
    ecp_data_opts dopt;
    ecp_data_opts_default(&dopt);
    dopt.target_cols = target_cols;
    *m = NULL;
    ecp_status s;
    if ((s = ecp_onnx_load(m, model, err)) ||
        (s = (streamed ? ecp_data_open_streamed : ecp_data_open)(data, &dopt, train, test, err)) ||
        (streamed && (s = small_in_memory(train, err))) ||
        (s = as_classes(*m, *train, data, err)) ||
        (test && (s = as_classes(*m, *test, data, err))) ||
        (s = ecp_check_fit(*m, *train, model, data, err))) {
        ecp_mlp_free(*m);
        *m = NULL;
    }
    return s;
}

int cli_open_shared(const char *cmd, const char *out, const ecp_onnx_options *store,
                    const char *model, const char *data, const char *target_cols, int streamed,
                    ecp_mlp **m, ecp_dataset **train, ecp_dataset **test)
{
    ecp_error err = {0};
    ecp_status s = ECP_OK;
    if (out && ecp_dist_size() > 1 && ecp_dist_rank() == 0 &&
        ecp_onnx_output_check(out, store, &err))
        s = ecp_fail(&err, err.code, "-o %.1000s", err.msg);
    if (!s)
        s = cli_open_data_err(model, data, target_cols, streamed, m, train, test, &err);
    return ecp_dist_agree(s, &err) ? cli_die(cmd, &err) : 0;
}

int cli_open(const char *cmd, const char *model, const char *data, const char *target_cols,
             ecp_mlp **m, ecp_dataset **train, ecp_dataset **test)
{
    ecp_error err = {0};
    if (cli_open_err(model, data, target_cols, m, train, test, &err))
        return cli_die(cmd, &err);
    return 0;
}

ecp_status cli_arch_like(const ecp_mlp *m, int64_t budget, int *sizes, int64_t *params,
                         char *arch, size_t arch_len, ecp_error *err)
{
    int L = ecp_mlp_n_layers(m), orig[ECP_MAX_LAYERS + 1];
    for (int l = 0; l < L; l++)
        orig[l] = ecp_mlp_layer_in(m, l);
    orig[L] = ecp_mlp_n_out(m);
    ecp_status s = ecp_arch_fit_params(L, orig, budget, sizes, params, err);
    if (!s)
        ecp_arch_format(L, sizes, arch, arch_len);
    return s;
}

ecp_status cli_record_prune(ecp_mlp *m, const char *method, const char *sens, double sparsity,
                            int64_t calib, ecp_error *err)
{
    char sp[32], nc[32];
    snprintf(sp, sizeof sp, "%.6f", sparsity);
    snprintf(nc, sizeof nc, "%lld", (long long)calib);
    const char *kv[][2] = {{"ecprune.prune.method", method},
                           {"ecprune.prune.sensitivity", sens},
                           {"ecprune.prune.sparsity", sp},
                           {"ecprune.prune.calib", nc},
                           {"ecprune.version", ecp_version()}};
    ecp_status s = ECP_OK;
    for (size_t i = 0; i < sizeof kv / sizeof *kv && !s; i++)
        if (kv[i][1])
            s = ecp_mlp_set_meta(m, kv[i][0], kv[i][1], err);
    return s;
}

void cli_opset_note(const char *cmd, const ecp_mlp *m, const char *out)
{
    const char *why;
    int64_t opset = ecp_onnx_save_opset(m, &why);
    ecp_model_iface io;
    ecp_mlp_iface(m, &io);
    if (why && ecp_dist_rank() == 0)
        fprintf(stderr, "ecprune %s: note: %s is written at opset %lld (the input file has "
                "opset %lld): %s\n", cmd, out, (long long)opset, (long long)io.opset, why);
}

/* ------------------------------------------------------------------ shared option parsing */

static int common_opt(cli_args *a, int c, char *arg)
{
    switch (c) {
    case CLI_O_DATA: a->data = arg; return 0;
    case CLI_O_SPLIT: a->split = arg; return 0;
    case CLI_O_TARGET_COLS: a->target_cols = arg; return 0;
    case CLI_O_THREADS:
        return cli_parse_int(a->cmd, "--threads", arg, 1, CLI_MAX_THREADS, &a->threads);
    case CLI_O_JSON: a->json = 1; return 0;
    case 'o': a->out = arg; return 0;
    }
    return -1;
}

static int has_output(const struct option *opts)
{
    for (; opts->name; opts++)
        if (!strcmp(opts->name, "output"))
            return 1;
    return 0;
}

int cli_parse(cli_args *a, const char *cmd, int argc, char **argv, const struct option *opts,
              cli_opt_fn fn, void *ctx, void (*help)(FILE *))
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->split = "test";
    optind = 1;
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, has_output(opts) ? "o:h" : "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return -1;
        }
        if (c == '?' || c == ':')
            return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        rc = common_opt(a, c, optarg);
        if (rc < 0)
            rc = fn ? fn(ctx, c, optarg) : cli_usage_error(cmd, "unknown option '%s'",
                                                           argv[optind - 1]);
        if (rc)
            return rc;
    }
    if (optind != argc - 1)
        return cli_usage_error(cmd, "expected exactly one model file");
    a->model = argv[optind];
    return 0;
}

int cli_check_split(const cli_args *a, int *use_test)
{
    *use_test = !strcmp(a->split, "test");
    if (!*use_test && strcmp(a->split, "train"))
        return cli_usage_error(a->cmd, "--split '%s': choose test or train", a->split);
    return 0;
}

int cli_load(const cli_args *a, cli_loaded *l)
{
    memset(l, 0, sizeof *l);
    ecp_error err = {0};
    /* Under mpirun a file one rank cannot read stops every rank with that rank's message. */
    if (!ecp_dist_agree(cli_open_err(a->model, a->data, a->target_cols, &l->m, &l->train,
                                     &l->test, &err), &err))
        return 0;
    cli_loaded_free(l); /* the data may be open when the model does not fit it */
    return cli_die(a->cmd, &err);
}

void cli_loaded_free(cli_loaded *l)
{
    ecp_mlp_free(l->m);
    ecp_dataset_free(l->train);
    ecp_dataset_free(l->test);
    memset(l, 0, sizeof *l);
}

int cli_load_split(const cli_args *a, cli_loaded *l, const ecp_dataset **d)
{
    int use_test, rc;
    if (!a->data)
        return cli_usage_error(a->cmd, "--data is required");
    if ((rc = cli_check_split(a, &use_test)))
        return rc;
    /* the ranks on one machine share its cores */
    cli_set_threads(a->threads ? (int)a->threads : ecp_dist_default_threads());
    if ((rc = cli_load(a, l)))
        return rc;
    *d = use_test ? l->test : l->train;
    return 0;
}

void cli_print_eval(const cli_args *a, const ecp_eval_result *ev)
{
    if (a->json) {
        printf("{\"loss\":%.9g", ev->loss);
        if (ev->accuracy >= 0)
            printf(",\"accuracy\":%.6f", ev->accuracy);
        return;
    }
    printf("%s on %s (%s, %lld samples): loss %.6f", a->model, a->data, a->split,
           (long long)ev->n, ev->loss);
    if (ev->accuracy >= 0)
        printf("  accuracy %.2f%%", 100 * ev->accuracy);
}
