/* ecprune info: what a model file holds. */
#include "cli.h"
#include <getopt.h>

static void help(FILE *f)
{
    fprintf(f, "usage: ecprune info MODEL.onnx [--json]\n\n"
               "Lists the layers (widths, activation), parameter counts and the sparsity of each\n"
               "layer (weights that are exactly zero count as pruned; biases are never pruned).\n"
               "A model pruned with --pattern N:M records the pattern; info verifies it and\n"
               "exits with status 1 when a group keeps more than N weights.\n");
}

/* The layer's activation as --act spells it ("elu:0.5"). */
static const char *act_text(const ecp_mlp *m, int l, char *buf, size_t n)
{
    ecp_act_format(ecp_mlp_layer_act(m, l), ecp_mlp_layer_act_params(m, l), buf, n);
    return buf;
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("info", "expected exactly one model file");
    ecp_error err = {0};
    ecp_mlp *m;
    if (ecp_onnx_load(&m, argv[optind], &err))
        return cli_die("info", &err);
    int L = ecp_mlp_n_layers(m);
    char an[64];
    int64_t nw = ecp_mlp_n_weights(m), np = ecp_mlp_n_pruned(m);
    /* An N:M pattern recorded in the file is a promise: verify it against the weights. */
    int nm_n, nm_m;
    uint64_t nm_layers;
    char nm_list[800] = "";
    int has_nm = ecp_mlp_pattern(m, &nm_n, &nm_m, &nm_layers);
    int nm_ok = !has_nm || ecp_mlp_check_pattern(m, &err) == ECP_OK;
    for (int l = 0, at = 0; has_nm && l < L && l < 64; l++)
        if ((nm_layers >> l) & 1)
            at += snprintf(nm_list + at, sizeof nm_list - (size_t)at, "%s%d", at ? "," : "", l);
    if (json) {
        printf("{\"layers\":[");
        for (int l = 0; l < L; l++) {
            int64_t w = (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            printf("%s{\"in\":%d,\"out\":%d,\"act\":\"%s\",\"weights\":%lld,\"pruned\":%lld,"
                   "\"sparsity\":%.6f}",
                   l ? "," : "", ecp_mlp_layer_in(m, l), ecp_mlp_layer_out(m, l),
                   act_text(m, l, an, sizeof an), (long long)w,
                   (long long)ecp_mlp_layer_n_pruned(m, l),
                   (double)ecp_mlp_layer_n_pruned(m, l) / (double)w);
        }
        printf("]");
        if (has_nm) {
            printf(",\"pattern\":\"%d:%d\",\"pattern_layers\":\"%s\",\"pattern_ok\":%s", nm_n,
                   nm_m, nm_list, nm_ok ? "true" : "false");
        }
        printf(",\"params\":%lld,\"weights\":%lld,\"pruned\":%lld,\"sparsity\":%.6f}\n",
               (long long)ecp_mlp_n_params(m), (long long)nw, (long long)np,
               (double)np / (double)nw);
    } else {
        printf("%s: %d layers, %lld parameters (%lld weights, %lld pruned: sparsity %.2f%%)\n",
               argv[optind], L, (long long)ecp_mlp_n_params(m), (long long)nw, (long long)np,
               100.0 * (double)np / (double)nw);
        printf("  %-5s %8s %8s  %-10s %10s %10s %9s\n", "layer", "in", "out", "activation",
               "weights", "pruned", "sparsity");
        for (int l = 0; l < L; l++) {
            int64_t w = (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            int64_t p = ecp_mlp_layer_n_pruned(m, l);
            printf("  %-5d %8d %8d  %-10s %10lld %10lld %8.2f%%\n", l, ecp_mlp_layer_in(m, l),
                   ecp_mlp_layer_out(m, l), act_text(m, l, an, sizeof an), (long long)w,
                   (long long)p, 100.0 * (double)p / (double)w);
        }
    }
    if (has_nm && !json)
        printf("  pattern %d:%d on layers %s: %s\n", nm_n, nm_m, nm_list,
               nm_ok ? "verified (every group of inputs keeps at most N weights)" : "VIOLATED");
    ecp_mlp_free(m);
    if (!nm_ok) {
        fprintf(stderr, "ecprune info: %s: %s\n", argv[optind], err.msg);
        return 1;
    }
    return 0;
}
