/* The command-line tool: one file per subcommand, dispatched from main.c. */
#ifndef ECP_CLI_H
#define ECP_CLI_H

#include "ecprune.h"
#include "ecprune_tools.h"
#include <stdio.h>

/* Every subcommand: argv[0] is the subcommand's name; returns the process exit status
 * (0 ok, 1 failure, 2 bad usage or option). */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_datagen(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench_infer(int argc, char **argv);
int cmd_export_c(int argc, char **argv);
int cmd_tune(int argc, char **argv);
/* prune --structure neuron (dispatched from cmd_prune) */
int cmd_prune_neuron(int argc, char **argv);
/* "0,2" -> bits of mask; prints the usage error and returns 2 on a bad list, else 0. */
int parse_excludes(const char *s, uint64_t *mask);

/* Prints "ecprune CMD: message" on stderr and returns the exit status for the error's kind:
 * 2 for a bad argument or option, 1 for everything else. */
int cli_die(const char *cmd, const ecp_error *err);
/* msg with the library's field names ("sparsity 1.5: ...") replaced by the flags of subcommand
 * cmd ("--sparsity 1.5: ..."); truncated to n bytes. */
void cli_flag_names(const char *cmd, const char *msg, char *out, size_t n);
/* Same, for a usage problem found by the CLI itself. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Strict numeric option parsing: the whole string must be a number within [lo, hi]. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out);
/* Loads MODEL (ONNX) and the dataset DATA (CSV target columns may be NULL) and checks that
 * they fit; on failure prints the error and returns the exit status, else 0. */
int cli_open(const char *cmd, const char *model, const char *data, const char *target_cols,
             ecp_mlp **m, ecp_dataset **train, ecp_dataset **test);
/* The same, filling err instead of printing (for an agreement across processes first). */
ecp_status cli_open_err(const char *model, const char *data, const char *target_cols,
                        ecp_mlp **m, ecp_dataset **train, ecp_dataset **test, ecp_error *err);
/* The same; streamed: the training split as ecp_data_open_streamed opens it (IDX files stay on
 * disk, read when used). */
ecp_status cli_open_data_err(const char *model, const char *data, const char *target_cols,
                             int streamed, ecp_mlp **m, ecp_dataset **train, ecp_dataset **test,
                             ecp_error *err);
/* cli_open_data_err for a command that writes the model OUT (may be NULL) as store says, under
 * mpirun too: rank 0 checks OUT (and its external data file) first, as cli_check_model_output
 * does before a single process starts, and a file one rank cannot read stops every rank with
 * that rank's message, printed once. Returns the exit status, or 0. */
int cli_open_shared(const char *cmd, const char *out, const ecp_onnx_options *store,
                    const char *model, const char *data, const char *target_cols, int streamed,
                    ecp_mlp **m, ecp_dataset **train, ecp_dataset **test);
/* Checks, before any work starts, that PATH may be written as the output of `flag`
 * (ecp_output_check: missing, a regular file, or a link to one); prints the error and returns
 * the exit status, else 0. */
int cli_check_output(const char *cmd, const char *flag, const char *path);
/* Takes every `--max-memory SIZE` (or --max-memory=SIZE) out of argv, sets the memory budget,
 * and returns the new argc, or -1 after printing a usage error. */
int cli_take_max_memory(int argc, char **argv);
/* Writes s as a JSON string literal (quotes and escapes included). */
void cli_json_string(FILE *f, const char *s);
/* Writes a number, or null when it is not finite (JSON has no NaN). */
void cli_json_number(FILE *f, double v);
/* The dense network of m's depth whose hidden widths are m's scaled by one factor so that its
 * weights + biases are at most `budget` (see ecp_arch_fit_params): sizes (up to ECP_MAX_LAYERS + 1), its
 * parameter count and its "784-30-10-10" form. */
ecp_status cli_arch_like(const ecp_mlp *m, int64_t budget, int *sizes, int64_t *params,
                         char *arch, size_t arch_len, ecp_error *err);
/* 2 (after a message) when the output path names another model format (-o x.pt), else 0. */
int cli_check_model_path(const char *cmd, const char *path);
/* Takes `--storage dense|sparse` and `--external-data` (how a written model stores its
 * weights) out of argv into o; returns the new argc, or -1 after printing a usage error. */
int cli_take_storage(const char *cmd, int argc, char **argv, ecp_onnx_options *o);
/* cli_check_output for a model output, and its data file with --external-data. */
int cli_check_model_output(const char *cmd, const char *path, const ecp_onnx_options *o);
/* The help lines of those two options. */
#define CLI_STORAGE_HELP                                                                         \
    "  --storage S          dense (default) or sparse: weight matrices below ~1/3 density\n"    \
    "                       as ONNX sparse_initializer (values + int64 indices), smaller\n"    \
    "  --external-data      the weights in FILE.data beside the model (ONNX external data;\n"  \
    "                       also done unasked above protobuf's 2 GiB)\n"
/* Sets the BLAS thread count (0 = leave OpenBLAS's default). */
void cli_set_threads(int n);
/* The metadata_props a pruned model carries: method, sensitivity (NULL: none), achieved
 * sparsity, calibration samples and the ecprune version. */
ecp_status cli_record_prune(ecp_mlp *m, const char *method, const char *sens, double sparsity,
                            int64_t calib, ecp_error *err);
/* A note on stderr when `out` will be written at a newer opset than the model's file had. */
void cli_opset_note(const char *cmd, const ecp_mlp *m, const char *out);

/* ------------------------------------------------------------------ shared option parsing
 * The options most commands share are parsed once, here: a command lists the ones it takes in
 * its getopt_long table (CLI_OPT_*) and handles only its own in a callback. */
#include <getopt.h>

enum { CLI_O_DATA = 1000, CLI_O_SPLIT, CLI_O_TARGET_COLS, CLI_O_THREADS, CLI_O_JSON };
#define CLI_OPT_DATA {"data", required_argument, 0, CLI_O_DATA}
#define CLI_OPT_SPLIT {"split", required_argument, 0, CLI_O_SPLIT}
#define CLI_OPT_TARGET_COLS {"target-cols", required_argument, 0, CLI_O_TARGET_COLS}
#define CLI_OPT_THREADS {"threads", required_argument, 0, CLI_O_THREADS}
#define CLI_OPT_JSON {"json", no_argument, 0, CLI_O_JSON}
#define CLI_OPT_OUTPUT {"output", required_argument, 0, 'o'}
#define CLI_OPT_HELP {"help", no_argument, 0, 'h'}
/* --threads: as the inference engine's limit (and the online cores counted, ecp_online_cores) */
#define CLI_MAX_THREADS 256

typedef struct {
    const char *cmd;
    const char *model; /* the one positional argument */
    const char *data, *split, *target_cols, *out;
    long threads; /* 0: not given */
    int json;
} cli_args;

/* A command's own options: code is getopt_long's value (not 'o', which is -o / --output);
 * returns 0 or an exit status. */
typedef int (*cli_opt_fn)(void *ctx, int code, char *arg);

/* Parses argv (getopt_long with short options "o:h" when the table has CLI_OPT_OUTPUT, else
 * "h"): the shared options into a (split defaults to "test"), the others to fn. Then expects
 * exactly one model file. Returns 0, -1 after printing --help (exit 0), or an exit status. */
int cli_parse(cli_args *a, const char *cmd, int argc, char **argv, const struct option *opts,
              cli_opt_fn fn, void *ctx, void (*help)(FILE *));
/* 2 (after a message) unless --split is test or train; *use_test set. */
int cli_check_split(const cli_args *a, int *use_test);

/* A model and a dataset opened together, and their release. */
typedef struct {
    ecp_mlp *m;
    ecp_dataset *train, *test;
} cli_loaded;
/* cli_open on a's model, data and target columns. */
int cli_load(const cli_args *a, cli_loaded *l);
void cli_loaded_free(cli_loaded *l);
/* For the commands that run a model on one split: --data required, --split checked, the thread
 * count set, the model and the data loaded, *d the split asked for. 0, or an exit status after
 * a message (nothing to free then). */
int cli_load_split(const cli_args *a, cli_loaded *l, const ecp_dataset **d);
/* The loss and accuracy: the first fields of the JSON object ({"loss":..,"accuracy":..; the
 * caller closes it) or the start of the text line ("M on D (test, N samples): loss .."). */
void cli_print_eval(const cli_args *a, const ecp_eval_result *ev);

#endif
