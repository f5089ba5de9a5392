/* Shared by the subcommands: error reporting with the right exit status, strict numbers. */
#include "cli.h"
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_die(const char *cmd, const ecp_error *err)
{
    fprintf(stderr, "ecprune %s: %s\n", cmd, err->msg[0] ? err->msg : ecp_status_name(err->code));
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

int cli_check_output(const char *cmd, const char *flag, const char *path)
{
    ecp_error err = {0};
    if (!ecp_output_check(path, &err))
        return 0;
    fprintf(stderr, "ecprune %s: %s %s\n", cmd, flag, err.msg);
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

ecp_status cli_arch_like(const ecp_mlp *m, int64_t budget, int *sizes, int64_t *params,
                         char *arch, size_t arch_len, ecp_error *err)
{
    int L = ecp_mlp_n_layers(m), orig[1001];
    for (int l = 0; l < L; l++)
        orig[l] = ecp_mlp_layer_in(m, l);
    orig[L] = ecp_mlp_n_out(m);
    ecp_status s = ecp_arch_fit_params(L, orig, budget, sizes, params, err);
    if (!s)
        ecp_arch_format(L, sizes, arch, arch_len);
    return s;
}
