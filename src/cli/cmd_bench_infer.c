/* ecprune bench-infer: latency (batch 1) and throughput (large batches) of the same model on
 * dense OpenBLAS, the sparse engine and PyTorch CPU, same machine, same threads, one run.
 *
 * PyTorch runs in a child /usr/bin/python3 (Debian's python3-torch) on bench/torch_infer.py;
 * the model's weights and the inputs go to it as raw float32 files in a temporary directory,
 * so it does not depend on the ONNX reader of either side. Every figure is the median of
 * repeated timings (the machine is shared; the median resists a disturbed run). */
#include "cli.h"
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BATCHES 8
#define N_INPUTS 1024

static void help(FILE *f)
{
    fprintf(f,
            "usage: ecprune bench-infer MODEL.onnx [--batch 1,256] [--threads T] [--data D]\n"
            "                           [--seconds S] [--no-torch] [--json]\n\n"
            "Times the model three ways on this machine with the same inputs and thread count:\n"
            "dense OpenBLAS (sgemv/sgemm), the sparse engine (auto: per layer sparse or dense by\n"
            "the break-even of 'ecprune tune') and PyTorch CPU. Batch 1 is reported as the\n"
            "median latency in microseconds, larger batches as samples per second, with the\n"
            "speed-up ratios and the effective GFLOP/s of the kept weights (2 x non-zeros x\n"
            "samples/s).\n\n"
            "  --batch LIST   comma-separated batch sizes (default 1,256)\n"
            "  --threads T    threads for all three (default 1)\n"
            "  --data D       take the inputs from this dataset's test split (e.g. mnist), so\n"
            "                 that input sparsity is real; default: uniform random inputs\n"
            "  --seconds S    time spent per measurement (default 0.5)\n"
            "  --no-torch     skip PyTorch (reported as null)\n"
            "  --json         {\"batch1\":{\"dense_us\":..,\"sparse_us\":..,\"torch_us\":..},\n"
            "                  \"batch256\":{\"dense_sps\":..,\"sparse_sps\":..,\"torch_sps\":..},\n"
            "                  \"density\":..} plus forced-sparse figures and GFLOP/s\n"
            "PyTorch runs when $ECPRUNE_TORCH_INFER names the source tree's bench/torch_infer.py\n"
            "(bench/bench_infer.sh sets it), through /usr/bin/python3.\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per forward of `batch` samples, cycling through the inputs. */
static int time_engine(ecp_sparse_net *s, const float *x, int n_in, int batch, double secs,
                       float *y, double *out, ecp_error *err)
{
    enum { MAXT = 100000 };
    double *t = malloc(MAXT * sizeof *t);
    if (!t)
        return ecp_fail(err, ECP_ERR_MEMORY, "bench-infer: out of memory");
    int n = 0, slots = N_INPUTS / batch > 0 ? N_INPUTS / batch : 1;
    for (int w = 0; w < 3; w++) /* warm-up: caches, page faults, thread start */
        if (ecp_sparse_forward(s, x, batch, y, err)) {
            free(t);
            return 1;
        }
    double end = ecp_now() + secs;
    while (n < MAXT && (ecp_now() < end || n < 5)) {
        const float *xb = x + (size_t)(n % slots) * batch * n_in;
        double t0 = ecp_now();
        if (ecp_sparse_forward(s, xb, batch, y, err)) {
            free(t);
            return 1;
        }
        t[n++] = ecp_now() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *out = t[n / 2];
    free(t);
    return 0;
}

static int write_raw(const char *dir, const char *name, const float *v, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    int bad = fwrite(v, sizeof *v, n, f) != n;
    bad |= fclose(f) != 0;
    return bad;
}

/* The PyTorch side is bench/torch_infer.py of the source tree: an installed ecprune does not
 * depend on the source tree, so the script is named by $ECPRUNE_TORCH_INFER (bench/bench_infer.sh
 * sets it) and PyTorch is skipped without it. */
static const char *find_script(void)
{
    const char *e = getenv("ECPRUNE_TORCH_INFER");
    return e && *e ? e : NULL;
}

/* Runs PyTorch on the same weights and inputs; fills t1 (us) and tn[] (samples/s) or leaves
 * them negative (unavailable), with the reason in why. */
static void run_torch(const ecp_mlp *m, const float *x, const long *batches, int nb, long threads,
                      double secs, double *t1, double *tn, char *why, size_t why_n)
{
    char dir[] = "/tmp/ecprune-torch-XXXXXX", cmd[8800], line[4096];
    const char *script = find_script();
    if (!script) {
        snprintf(why, why_n, "PyTorch skipped: set ECPRUNE_TORCH_INFER to bench/torch_infer.py");
        return;
    }
    snprintf(why, why_n, "PyTorch unavailable");
    if (!mkdtemp(dir)) {
        snprintf(why, why_n, "cannot create a temporary directory");
        return;
    }
    int L = ecp_mlp_n_layers(m), bad = access(script, R_OK) != 0;
    if (bad)
        snprintf(why, why_n, "%.200s not found", script);
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = bad ? NULL : fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", L);
        for (int l = 0; l < L; l++)
            fprintf(f, "%d %d %s\n", ecp_mlp_layer_in(m, l), ecp_mlp_layer_out(m, l),
                    ecp_act_name(ecp_mlp_layer_act(m, l)));
        bad |= fclose(f) != 0;
        for (int l = 0; l < L && !bad; l++) {
            char nm[32];
            snprintf(nm, sizeof nm, "W%d.f32", l);
            bad |= write_raw(dir, nm, ecp_mlp_weights_c(m, l),
                             (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l));
            snprintf(nm, sizeof nm, "b%d.f32", l);
            bad |= write_raw(dir, nm, ecp_mlp_bias_c(m, l), (size_t)ecp_mlp_layer_out(m, l));
        }
        bad |= write_raw(dir, "x.f32", x, (size_t)N_INPUTS * ecp_mlp_n_in(m));
    } else
        bad = 1;
    if (!bad) {
        char bl[256] = "";
        for (int i = 0; i < nb; i++)
            snprintf(bl + strlen(bl), sizeof bl - strlen(bl), "%s%ld", i ? "," : "", batches[i]);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s' '%s' --threads %ld --batches %s --seconds %g 2>&1",
                 script, dir, threads, bl, secs);
        FILE *p = popen(cmd, "r");
        int got = 0;
        if (p) {
            while (fgets(line, sizeof line, p)) {
                if (line[0] != '{') {
                    if (strstr(line, "Error"))
                        snprintf(why, why_n, "PyTorch failed: %.200s", line);
                    continue;
                }
                char *q = strstr(line, "\"batch1_us\":");
                if (q)
                    *t1 = strtod(q + 12, NULL);
                for (int i = 0; i < nb; i++) {
                    char key[48];
                    snprintf(key, sizeof key, "\"batch%ld_sps\":", batches[i]);
                    if ((q = strstr(line, key)))
                        tn[i] = strtod(q + strlen(key), NULL);
                }
                got = 1;
            }
            pclose(p);
        }
        if (got)
            why[0] = 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ecprune bench-infer: cannot remove %s\n", dir);
}

static int parse_batches(const char *s, long *b, int *nb)
{
    *nb = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 65536 || (*end && *end != ',') || *nb == MAX_BATCHES)
            return cli_usage_error("bench-infer", "--batch '%s': expected up to %d sizes in "
                                   "[1, 65536] separated by commas", s, MAX_BATCHES);
        b[(*nb)++] = v;
        p = *end ? end + 1 : end;
    }
    return *nb ? 0 : cli_usage_error("bench-infer", "--batch: empty list");
}

static void json_num(double v)
{
    if (v < 0)
        printf("null");
    else
        printf("%.6g", v);
}

int cmd_bench_infer(int argc, char **argv)
{
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'},  {"threads", required_argument, 0, 't'},
        {"data", required_argument, 0, 'd'},   {"seconds", required_argument, 0, 's'},
        {"no-torch", no_argument, 0, 'n'},     {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    long batches[MAX_BATCHES] = {1, 256}, threads = 1;
    int nb = 2, json = 0, torch = 1, c, rc;
    double secs = 0.5;
    const char *data = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': if ((rc = parse_batches(optarg, batches, &nb))) return rc; break;
        case 't': if ((rc = cli_parse_int("bench-infer", "--threads", optarg, 1, 256, &threads))) return rc; break;
        case 's': if ((rc = cli_parse_double("bench-infer", "--seconds", optarg, 0.01, 60, &secs))) return rc; break;
        case 'd': data = optarg; break;
        case 'n': torch = 0; break;
        case 'j': json = 1; break;
        case 'h': help(stdout); return 0;
        default: return cli_usage_error("bench-infer", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("bench-infer", "expected exactly one model file");
    cli_set_threads((int)threads);
    const char *model = argv[optind];
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    ecp_dataset *train = NULL, *test = NULL;
    ecp_sparse_net *eng[3] = {NULL, NULL, NULL}; /* dense, auto, forced sparse */
    float *x = NULL, *y = NULL;
    int status = 1;
    long maxb = 1;
    for (int i = 0; i < nb; i++)
        maxb = batches[i] > maxb ? batches[i] : maxb;
    if (ecp_onnx_load(&m, model, &err)) {
        status = cli_die("bench-infer", &err);
        goto done;
    }
    int n_in = ecp_mlp_n_in(m), n_out = ecp_mlp_n_out(m);
    size_t n_x = (size_t)(N_INPUTS > maxb ? N_INPUTS : maxb);
    x = malloc(n_x * n_in * sizeof *x);
    y = malloc((size_t)maxb * n_out * sizeof *y);
    if (!x || !y) {
        fprintf(stderr, "ecprune bench-infer: out of memory\n");
        goto done;
    }
    if (data) {
        ecp_data_opts dopt;
        ecp_data_opts_default(&dopt);
        if (ecp_data_open(data, &dopt, &train, &test, &err) ||
            ecp_check_fit(m, test, model, data, &err)) {
            status = cli_die("bench-infer", &err);
            goto done;
        }
        for (size_t i = 0; i < n_x; i++)
            memcpy(x + i * n_in, test->x + (i % (size_t)test->n) * n_in, (size_t)n_in * sizeof *x);
    } else {
        ecp_rng r;
        ecp_rng_seed(&r, 1);
        for (size_t i = 0; i < n_x * n_in; i++)
            x[i] = (float)ecp_rng_uniform(&r);
    }
    static const ecp_engine_mode modes[3] = {ECP_ENGINE_DENSE, ECP_ENGINE_AUTO, ECP_ENGINE_SPARSE};
    for (int k = 0; k < 3; k++) {
        ecp_sparse_opts so;
        ecp_sparse_opts_default(&so);
        so.mode = modes[k];
        so.threads = (int)threads;
        so.max_batch = (int)maxb;
        if (ecp_sparse_create(&eng[k], m, &so, &err)) {
            status = cli_die("bench-infer", &err);
            goto done;
        }
    }
    double t[3][MAX_BATCHES], t1_torch = -1, tn_torch[MAX_BATCHES];
    for (int i = 0; i < nb; i++) {
        tn_torch[i] = -1;
        for (int k = 0; k < 3; k++)
            if (time_engine(eng[k], x, n_in, (int)batches[i], secs, y, &t[k][i], &err)) {
                status = cli_die("bench-infer", &err);
                goto done;
            }
    }
    char why[300] = "skipped (--no-torch)";
    if (torch)
        run_torch(m, x, batches, nb, threads, secs, &t1_torch, tn_torch, why, sizeof why);
    double density = ecp_sparse_density(eng[1]);
    double nnz = (double)ecp_sparse_nnz(eng[1]);
    if (json) {
        printf("{");
        for (int i = 0; i < nb; i++) {
            long b = batches[i];
            if (b == 1) {
                printf("\"batch1\":{\"dense_us\":%.6g,\"sparse_us\":%.6g,\"torch_us\":",
                       t[0][i] * 1e6, t[1][i] * 1e6);
                json_num(t1_torch);
                printf(",\"sparse_forced_us\":%.6g,\"sparse_gflops\":%.6g},", t[2][i] * 1e6,
                       2 * nnz / t[1][i] * 1e-9);
            } else {
                printf("\"batch%ld\":{\"dense_sps\":%.6g,\"sparse_sps\":%.6g,\"torch_sps\":", b,
                       b / t[0][i], b / t[1][i]);
                json_num(tn_torch[i]);
                printf(",\"sparse_forced_sps\":%.6g,\"sparse_gflops\":%.6g},", b / t[2][i],
                       2 * nnz * b / t[1][i] * 1e-9);
            }
        }
        printf("\"density\":%.6g,\"nnz\":%.0f,\"threads\":%ld,\"torch\":", density, nnz, threads);
        if (why[0])
            printf("null,\"torch_note\":\"%s\"}\n", torch ? "unavailable" : "skipped");
        else
            printf("true}\n");
    } else {
        printf("%s: %.2f%% of %lld weights kept, %ld thread(s)%s%s\n", model, 100 * density,
               (long long)ecp_sparse_n_weights(eng[1]), threads, data ? ", inputs from " : "",
               data ? data : "");
        for (int i = 0; i < nb; i++) {
            long b = batches[i];
            if (b == 1) {
                printf("batch 1 latency (us): dense %.1f  sparse %.1f  (forced sparse %.1f)  "
                       "torch ",
                       t[0][i] * 1e6, t[1][i] * 1e6, t[2][i] * 1e6);
                if (t1_torch >= 0)
                    printf("%.1f\n", t1_torch);
                else
                    printf("n/a\n");
                printf("  sparse speed-up: %.2fx vs dense", t[0][i] / t[1][i]);
                if (t1_torch >= 0)
                    printf(", %.2fx vs torch", t1_torch * 1e-6 / t[1][i]);
                printf("; %.2f GFLOP/s of non-zeros\n", 2 * nnz / t[1][i] * 1e-9);
            } else {
                printf("batch %ld throughput (samples/s): dense %.0f  sparse %.0f  (forced sparse "
                       "%.0f)  torch ",
                       b, b / t[0][i], b / t[1][i], b / t[2][i]);
                if (tn_torch[i] >= 0)
                    printf("%.0f\n", tn_torch[i]);
                else
                    printf("n/a\n");
                printf("  sparse speed-up: %.2fx vs dense", t[0][i] / t[1][i]);
                if (tn_torch[i] >= 0)
                    printf(", %.2fx vs torch", (b / t[1][i]) / tn_torch[i]);
                printf("; %.2f GFLOP/s of non-zeros\n", 2 * nnz * b / t[1][i] * 1e-9);
            }
        }
        if (why[0])
            printf("torch: %s\n", why);
    }
    if (why[0] && torch)
        fprintf(stderr, "ecprune bench-infer: %s\n", why);
    status = 0;
done:
    for (int k = 0; k < 3; k++)
        ecp_sparse_free(eng[k]);
    free(x);
    free(y);
    ecp_mlp_free(m);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return status;
}
