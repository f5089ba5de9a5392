/* ecprune export-c: a (pruned) model as standalone C99 source. */
#include "cli.h"
#include <getopt.h>
#include <sys/stat.h>

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune export-c MODEL.onnx -o DIR [--name NAME] [--int8]\n\n"
            "Writes DIR/NAME.c and DIR/NAME.h: standalone C99 (no malloc, only libm) holding the\n"
            "kept weights as const CSR arrays (pruned weights take no space) and\n"
            "    void NAME_predict(const float *in, float *out);\n"
            "Compile it into any program: cc -O2 -c NAME.c. Both files are written atomically:\n"
            "on any error neither is left behind.\n\n"
            "  -o, --output DIR  output directory (created if missing; removed again if the\n"
            "                    export fails)\n"
            "  --name NAME       C identifier used for the files and symbols (default: model);\n"
            "                    starts with a letter, not a standard header's name (stdint)\n"
            "  --int8            store weights as int8 with one scale per output neuron\n"
            "                    (s = max|w|/127): ~4x smaller; each pre-activation moves by at\n"
            "                    most s/2 * sum|inputs|\n\n"
            "example:\n  ecprune export-c p.onnx -o out --name digits && cc -O2 -c out/digits.c\n");
}

/* DIR must be a directory or missing, and DIR/NAME.c and DIR/NAME.h writable: checked before
 * the model is read. */
static int cli_check_outputs(const char *dir, const char *name)
{
    struct stat st;
    char path[4200];
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ecprune export-c: -o %s: exists and is not a directory\n", dir);
        return 1;
    }
    if (stat(dir, &st) != 0)
        return 0; /* created later */
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s.%s", dir, name, k ? "h" : "c");
        int rc = cli_check_output("export-c", "-o", path);
        if (rc)
            return rc;
    }
    return 0;
}

int cmd_export_c(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"name", required_argument, 0, 'n'},
                                         {"int8", no_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *name = "model";
    int int8 = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': name = optarg; break;
        case 'i': int8 = 1; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("export-c", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("export-c", "expected exactly one model file");
    if (!dir)
        return cli_usage_error("export-c", "-o DIR is required");
    if (!ecp_export_c_name_ok(name))
        return cli_usage_error("export-c",
                               "--name '%s': not a usable C identifier (letters, digits "
                               "and _, starting with a letter, at most 64 characters, not "
                               "a standard header's name)",
                               name);
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    int rc = cli_check_outputs(dir, name);
    if (rc)
        return rc;
    if (ecp_onnx_load(&m, argv[optind], &err))
        return cli_die("export-c", &err);
    int st = ecp_export_c(m, dir, name, int8, &err) ? cli_die("export-c", &err) : 0;
    if (!st)
        printf("wrote %s/%s.c and %s/%s.h (%lld of %lld weights kept%s)\n", dir, name, dir, name,
               (long long)(ecp_mlp_n_weights(m) - ecp_mlp_n_pruned(m)),
               (long long)ecp_mlp_n_weights(m), int8 ? ", int8" : "");
    ecp_mlp_free(m);
    return st;
}
