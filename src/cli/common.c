/* Shared by the subcommands: error reporting with the right exit status, strict numbers. */
#include "cli.h"
#include <cblas.h>
#include <ctype.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

/* The library names the fields of its option structs; the tool names the flags that set them.
 * A field is rewritten where it stands as a name: followed by a value (" '", " =", " 1", " -1")
 * or a colon; `loose` fields are also rewritten in a list ("raise n_c0, n_times or cells").
 * cmd NULL = every subcommand. */
typedef struct {
    const char *cmd, *field, *flag;
    int loose;
} field_flag;

static const field_flag field_flags[] = {
    {NULL, "arch", "--arch", 0},
    {NULL, "dataset", "--data", 0},
    {NULL, "target_cols", "--target-cols", 0},
    {NULL, "method", "--method", 0},
    {NULL, "sens", "--sensitivity", 0},
    {NULL, "probes", "--probes", 0},
    {NULL, "sparsity", "--sparsity", 0},
    {NULL, "steps", "--steps", 0},
    {NULL, "finetune_epochs", "--finetune-epochs", 0},
    {NULL, "calib", "--calib", 0},
    {NULL, "epochs", "--epochs", 0},
    {NULL, "batch", "--batch", 0},
    {NULL, "patience", "--patience", 0},
    {NULL, "threads", "--threads", 0},
    {"datagen", "n_c0", "--c0", 1},
    {"datagen", "n_times", "--times", 1},
    {"datagen", "cells", "--cells", 1},
    {"datagen", "n_train", "--train", 1},
    {"datagen", "n_test", "--test", 1},
    {"datagen", "noise", "--noise", 0},
    {"export-c", "name", "--name", 0},
    {"export-c", "dir", "-o", 0},
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
        if ((f->cmd && strcmp(f->cmd, cmd)) || strncmp(p, f->field, n) || is_word_char(p[n]))
            continue;
        const char *q = p + n;
        int named = *q == ':' || (q[0] == ' ' && (q[1] == '\'' || q[1] == '=' ||
                                                  isdigit((unsigned char)q[1]) ||
                                                  (q[1] == '-' && isdigit((unsigned char)q[2]))));
        if (named || (f->loose && (*q == ',' || *q == ' ' || !*q)))
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
    fprintf(stderr, "ecprune %s: %s\n", cmd, msg);
    return err->code == ECP_ERR_ARG ? 2 : 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
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

int cli_open(const char *cmd, const char *model, const char *data, const char *target_cols,
             ecp_mlp **m, ecp_dataset **train, ecp_dataset **test)
{
    ecp_error err = {0};
    ecp_data_opts dopt;
    ecp_data_opts_default(&dopt);
    dopt.target_cols = target_cols;
    *m = NULL;
    if (ecp_onnx_load(m, model, &err) || ecp_data_open(data, &dopt, train, test, &err) ||
        ecp_check_fit(*m, *train, model, data, &err)) {
        ecp_mlp_free(*m);
        *m = NULL;
        return cli_die(cmd, &err);
    }
    return 0;
}
