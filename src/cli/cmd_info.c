/* ecprune info: what a model file holds. */
#include "cli.h"
#include <getopt.h>

static void help(FILE *f)
{
    fprintf(f, "usage: ecprune info MODEL.onnx [--json]\n\n"
               "Lists the layers (widths, activation), parameter counts and the sparsity of each\n"
               "layer (weights that are exactly zero count as pruned; biases are never pruned).\n");
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
    int64_t nw = ecp_mlp_n_weights(m), np = ecp_mlp_n_pruned(m);
    if (json) {
        printf("{\"layers\":[");
        for (int l = 0; l < L; l++) {
            int64_t w = (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            printf("%s{\"in\":%d,\"out\":%d,\"act\":\"%s\",\"weights\":%lld,\"pruned\":%lld,"
                   "\"sparsity\":%.6f}",
                   l ? "," : "", ecp_mlp_layer_in(m, l), ecp_mlp_layer_out(m, l),
                   ecp_act_name(ecp_mlp_layer_act(m, l)), (long long)w,
                   (long long)ecp_mlp_layer_n_pruned(m, l),
                   (double)ecp_mlp_layer_n_pruned(m, l) / (double)w);
        }
        printf("],\"params\":%lld,\"weights\":%lld,\"pruned\":%lld,\"sparsity\":%.6f}\n",
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
                   ecp_mlp_layer_out(m, l), ecp_act_name(ecp_mlp_layer_act(m, l)), (long long)w,
                   (long long)p, 100.0 * (double)p / (double)w);
        }
    }
    ecp_mlp_free(m);
    return 0;
}
