/* ecprune: dispatch to one subcommand. */
#include "cli.h"
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train an MLP on a dataset and save it as ONNX"},
    {"eval", cmd_eval, "evaluate a model on a dataset (loss, accuracy)"},
    {"info", cmd_info, "layers, parameters and per-layer sparsity of a model"},
    {"prune", cmd_prune, "prune a model (elimination-compensation or a baseline)"},
    {"sweep", cmd_sweep, "compare pruning methods over sparsities and seeds (CSV, plot)"},
    {"datagen", cmd_datagen, "generate a dataset (diffsorp: the diffusion-sorption PDE)"},
    {"run", cmd_run, "inference over a dataset with the dense or sparse engine"},
    {"bench-infer", cmd_bench_infer, "latency and throughput: dense, sparse and PyTorch"},
    {"export-c", cmd_export_c, "standalone C99 source of a (pruned) model"},
    {"tune", cmd_tune, "measure the dense/sparse break-even density of this machine"},
};

static void usage(FILE *f)
{
    char budget[32];
    snprintf(budget, sizeof budget, "%.1f GiB", (double)ecp_max_memory() / (1 << 30));
    fprintf(f, "ecprune %s — train, prune and deploy fully-connected networks\n\n"
               "usage: ecprune COMMAND [options]   (ecprune COMMAND --help for details)\n\n"
               "commands:\n",
            ECP_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nA typical session:\n"
               "  ecprune train --data mnist --arch 784-300-100-10 --epochs 10 -o m.onnx\n"
               "  ecprune prune m.onnx --data mnist --method ec --sparsity 0.9 -o p.onnx\n"
               "  ecprune eval p.onnx --data mnist\n"
               "\nDatasets: mnist, fashion, diffsorp[:noise], a directory of train_x.npy/train_y.npy/"
               "\ntest_x.npy/test_y.npy, a directory of IDX files, or a CSV file.\n"
               "\nEvery command takes --max-memory SIZE (e.g. 8G): the memory budget. Files are\n"
               "untrusted; anything they would make ecprune allocate beyond it is refused with\n"
               "the size needed. Default: half of the physical memory (%s here).\n"
               "Outputs (-o, --csv, --plot, --predictions) are written atomically and only ever\n"
               "replace a regular file; a symbolic link is followed to the file it names.\n",
            budget);
}

/* Under mpirun only these commands share their work; the others would run whole on every
 * rank and race to write the same outputs. */
static int distributed_ok(const char *cmd)
{
    static const char *const shared[] = {"prune", "train", "sweep", "eval", "run"};
    for (size_t i = 0; i < sizeof shared / sizeof *shared; i++)
        if (ecp_dist_size() == 1 || !strcmp(cmd, shared[i]))
            return 1;
    if (ecp_dist_rank() == 0)
        fprintf(stderr, "ecprune %s: runs on one process only (under mpirun only prune, train, "
                    "sweep, eval and run are distributed); run it without mpirun or with -np 1\n",
                cmd);
    return 0;
}

static int run(int argc, char **argv)
{
    if ((argc = cli_take_max_memory(argc, argv)) < 0)
        return 2;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ecprune %s\n", ecp_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return distributed_ok(argv[1]) ? commands[i].fn(argc - 1, argv + 1) : 2;
    const char *names[sizeof commands / sizeof *commands];
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        names[i] = commands[i].name;
    const char *near = ecp_closest_name(argv[1], names, (int)(sizeof names / sizeof *names));
    fprintf(stderr, "ecprune: unknown command '%s'%s%s%s (see 'ecprune --help')\n", argv[1],
            near ? ": did you mean " : "", near ? near : "", near ? "?" : "");
    return 2;
}

int main(int argc, char **argv)
{
    ecp_error err = {0};
    if (ecp_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "ecprune: %s\n", err.msg);
        return 1;
    }
    int rc = run(argc, argv);
    ecp_dist_finalize();
    return rc;
}
