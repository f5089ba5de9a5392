/* The option-value parsers of the command line: the input is split at NUL bytes into argv;
 * --max-memory is taken out as main() does, every remaining word goes through the parsers
 * of sizes, integers, numbers, --arch, activations, sensitivities and export names. */
#include "fuzz_util.h"
#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    char *argv[256];
    int argc = 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    for (size_t i = 0; i <= size && argc < 255;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        return 0;
    FILE *saved = stderr;
    stderr = devnull; /* the usage messages */
    ecp_set_max_memory((uint64_t)64 << 20);
    int n = cli_take_max_memory(argc, argv);
    for (int i = 0; i < n; i++) {
        long l;
        double d;
        uint64_t b;
        ecp_act act;
        ecp_sens sens;
        ecp_mlp *m = NULL;
        ecp_error err = {0};
        cli_parse_int("fuzz", "--n", argv[i], -5, 1L << 40, &l);
        cli_parse_double("fuzz", "--x", argv[i], 0, 1, &d);
        ecp_parse_bytes(argv[i], &b);
        float ap[ECP_ACT_NPARAM];
        char spelled[64];
        if (ecp_act_parse(argv[i], &act, &err))
            fuzz_check_msg(&err);
        if (ecp_act_parse_params(argv[i], &act, ap, &err))
            fuzz_check_msg(&err);
        else
            ecp_act_format(act, ap, spelled, sizeof spelled);
        if (ecp_sens_parse(argv[i], &sens, &err))
            fuzz_check_msg(&err);
        ecp_export_c_name_ok(argv[i]);
        ecp_prune_method_exists(argv[i]);
        if (ecp_mlp_create_arch(&m, argv[i], ECP_ACT_RELU, &err))
            fuzz_check_msg(&err);
        ecp_mlp_free(m);
    }
    stderr = saved;
    free(buf);
    return 0;
}
