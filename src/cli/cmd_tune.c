/* ecprune tune: measure this machine's dense/sparse break-even densities and cache them, so
 * that the automatic engine (ecprune run / bench-infer, ecp_sparse_create) picks per layer. */
#include "cli.h"
#include <getopt.h>

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune tune [--threads T] [--json] [--no-save]\n\n"
            "Times OpenBLAS and the sparse kernels on synthetic layers and finds the weight\n"
            "density (fraction of weights kept) below which sparse is faster, for three\n"
            "regimes: batch 1 on a layer that fits in L2 (300x784), batch 1 on a memory-bound\n"
            "layer (4096x4096), and batch 256 (300x784). Takes a few seconds; run it once per\n"
            "machine. The result goes to the ecprune cache directory ($ECPRUNE_CACHE, else\n"
            "$XDG_CACHE_HOME/ecprune, else ~/.cache/ecprune) as sparse_tune.txt and is read by\n"
            "every engine created afterwards. Without it built-in defaults apply.\n\n"
            "  --threads T   threads for OpenBLAS and the sparse kernels (default 1)\n"
            "  --json        {\"batch1_small\":..,\"batch1_large\":..,\"batchN\":..,\"threads\":..}\n"
            "  --no-save     measure and print only\n");
}

int cmd_tune(int argc, char **argv)
{
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"json", no_argument, 0, 'j'},
                                         {"no-save", no_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long threads = 1;
    int json = 0, save = 1, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': if ((rc = cli_parse_int("tune", "--threads", optarg, 1, 256, &threads))) return rc; break;
        case 'j': json = 1; break;
        case 'n': save = 0; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("tune", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("tune", "unexpected argument '%s'", argv[optind]);
    cli_set_threads((int)threads);
    ecp_error err = {0};
    ecp_sparse_tune_result r;
    if (ecp_sparse_tune((int)threads, &r, &err) || (save && ecp_sparse_tune_save(&r, &err)))
        return cli_die("tune", &err);
    char dir[4096] = "";
    if (save && ecp_cache_dir(dir, sizeof dir, &err))
        return cli_die("tune", &err);
    if (json)
        printf("{\"batch1_small\":%.4f,\"batch1_large\":%.4f,\"batchN\":%.4f,\"threads\":%ld}\n",
               r.b1_small, r.b1_large, r.bn, threads);
    else {
        printf("break-even weight density (sparse wins below), %ld thread(s):\n", threads);
        printf("  batch 1, layer in cache     %5.1f%%\n", 100 * r.b1_small);
        printf("  batch 1, memory-bound layer %5.1f%%\n", 100 * r.b1_large);
        printf("  batch > 1                   %5.1f%%\n", 100 * r.bn);
        if (save)
            printf("saved to %s/sparse_tune.txt\n", dir);
    }
    return 0;
}
