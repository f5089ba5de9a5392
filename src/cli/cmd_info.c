/* ecprune info: what a model file holds. */
#include "cli.h"
#include <getopt.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f, "usage: ecprune info MODEL.onnx [--json]\n\n"
               "Lists the layers (widths, activation), parameter counts and the sparsity of each\n"
               "layer (weights that are exactly zero count as pruned; biases are never pruned).\n"
               "A model pruned with --pattern N:M records the pattern; info verifies it and\n"
               "exits with status 1 when a group keeps more than N weights.\n"
               "Also shown: the graph's input and output names and shapes (what a pipeline\n"
               "feeds and reads; ecprune writes them back unchanged), a leading Flatten, an\n"
               "output transform (Softmax/LogSoftmax), the opset (and the one the file would\n"
               "be saved with, when an op needs a newer one), the producer and metadata_props\n"
               "(ecprune.* keys: what ecprune did to the model).\n");
}

/* "[batch, 1, 28, 28]": a symbolic dimension by its name, an unknown one as '?'. */
static void print_shape(FILE *f, int rank, const int64_t *dims, const char *const *params,
                        int json)
{
    fputc('[', f);
    for (int i = 0; i < rank; i++) {
        fputs(i ? ", " : "", f);
        if (dims[i] >= 0)
            fprintf(f, "%lld", (long long)dims[i]);
        else if (json)
            cli_json_string(f, params[i] ? params[i] : "?");
        else
            fputs(params[i] ? params[i] : "?", f);
    }
    fputc(']', f);
}

static void print_iface(const ecp_mlp *m, int json)
{
    ecp_model_iface io;
    ecp_mlp_iface(m, &io);
    const char *why;
    int64_t save_opset = ecp_onnx_save_opset(m, &why);
    int64_t out_dims[2] = {io.out_dim0, ecp_mlp_n_out(m)};
    const char *out_params[2] = {io.out_param0, NULL};
    const char *tf = ecp_out_transform_name(ecp_mlp_output_transform(m));
    if (json) {
        printf(",\"input\":{\"name\":");
        cli_json_string(stdout, io.input);
        printf(",\"shape\":");
        print_shape(stdout, io.in_rank, io.in_dim, io.in_param, 1);
        printf(",\"flatten\":%s},\"output\":{\"name\":", io.flatten ? "true" : "false");
        cli_json_string(stdout, io.output);
        printf(",\"shape\":");
        print_shape(stdout, 2, out_dims, out_params, 1);
        printf(",\"transform\":\"%s\"},\"opset\":%lld,\"save_opset\":%lld,\"producer\":", tf,
               (long long)io.opset, (long long)save_opset);
        cli_json_string(stdout, io.producer_name);
        printf(",\"producer_version\":");
        cli_json_string(stdout, io.producer_version);
        printf(",\"metadata\":{");
        for (int i = 0; i < ecp_mlp_meta_count(m); i++) {
            printf("%s", i ? "," : "");
            cli_json_string(stdout, ecp_mlp_meta_key(m, i));
            printf(":");
            cli_json_string(stdout, ecp_mlp_meta_value(m, i));
        }
        printf("}");
        return;
    }
    printf("  input '%s' ", io.input);
    print_shape(stdout, io.in_rank, io.in_dim, io.in_param, 0);
    printf("%s -> output '%s' ", io.flatten ? " (Flatten)" : "", io.output);
    print_shape(stdout, 2, out_dims, out_params, 0);
    if (ecp_mlp_output_transform(m) != ECP_OUT_NONE)
        printf(" after %s", tf);
    printf("\n  opset %lld", (long long)io.opset);
    if (why)
        printf(" (saved as opset %lld: %s needs it)", (long long)save_opset, why);
    printf(", producer %s %s\n", io.producer_name, io.producer_version);
    for (int i = 0; i < ecp_mlp_meta_count(m); i++)
        printf("  metadata %s = %s\n", ecp_mlp_meta_key(m, i), ecp_mlp_meta_value(m, i));
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
        print_iface(m, 1);
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
        int aw = 10; /* the activation column fits the longest spelling ("hardswish:a:b") */
        for (int l = 0; l < L; l++) {
            int n = (int)strlen(act_text(m, l, an, sizeof an));
            aw = n > aw ? n : aw;
        }
        printf("  %-5s %8s %8s  %-*s %10s %10s %9s\n", "layer", "in", "out", aw, "activation",
               "weights", "pruned", "sparsity");
        for (int l = 0; l < L; l++) {
            int64_t w = (int64_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
            int64_t p = ecp_mlp_layer_n_pruned(m, l);
            printf("  %-5d %8d %8d  %-*s %10lld %10lld %8.2f%%\n", l, ecp_mlp_layer_in(m, l),
                   ecp_mlp_layer_out(m, l), aw, act_text(m, l, an, sizeof an), (long long)w,
                   (long long)p, 100.0 * (double)p / (double)w);
        }
        print_iface(m, 0);
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
