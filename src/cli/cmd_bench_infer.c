/* ecprune bench-infer: latency (batch 1) and throughput (large batches) of the same model on
 * ecprune's dense path, the sparse engine, ONNX Runtime CPU and PyTorch CPU: same machine, same
 * inputs, same threads, one run.
 *
 * ONNX Runtime runs in a child node on bench/ort_infer.js (npm onnxruntime-node, whose CPU
 * library is the one the C API would load: the package ships no C headers, and copying ORT's
 * header into the tree would be a hand-kept duplicate of a moving API). It reads the model file
 * itself, so it also checks that ONNX Runtime accepts what ecprune writes. What the binding adds
 * per call (promise, N-API tensor wrapping) is timed on a 1-1 model and reported apart.
 * PyTorch runs in a child /usr/bin/python3 (Debian's python3-torch) on bench/torch_infer.py;
 * the model's weights go to it as raw float32 files, so it does not depend on the ONNX reader
 * of either side. The inputs go to both as one raw float32 file in a temporary directory.
 * Every figure is the median of repeated timings (the median resists a disturbed call), and the
 * best such median over rounds in which every contender runs in turn (a machine shared with
 * other work slows whoever runs during a burst; rounds spread that over all contenders). */
#include "cli.h"
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
            "                           [--seconds S] [--rounds R] [--no-torch] [--no-ort]\n"
            "                           [--bf16] [--json]\n\n"
            "Times the model four ways on this machine with the same inputs and thread count:\n"
            "ecprune's dense path, the sparse engine (auto: per layer sparse or dense by the\n"
            "break-even of 'ecprune tune'), ONNX Runtime CPU on the same file, and PyTorch CPU.\n"
            "Batch 1 is reported as the\n"
            "median latency in microseconds, larger batches as samples per second, with the\n"
            "speed-up ratios and the effective GFLOP/s of the kept weights (2 x non-zeros x\n"
            "samples/s).\n\n"
            "  --batch LIST   comma-separated batch sizes (default 1,256)\n"
            "  --threads T    threads for all three (default 1)\n"
            "  --data D       take the inputs from this dataset's test split (e.g. mnist), so\n"
            "                 that input sparsity is real; default: uniform random inputs\n"
            "  --seconds S    time spent per measurement (default 0.5)\n"
            "  --rounds R     rounds (default 3): each contender is timed once per round in\n"
            "                 turn and keeps its best round's median (a shared machine's load\n"
            "                 then disturbs one round, not one contender)\n"
            "  --no-torch     skip PyTorch (reported as null)\n"
            "  --no-ort       skip ONNX Runtime (reported as null)\n"
            "  --bf16         the sparse engine with its weights rounded to bfloat16 (8\n"
            "                 significant bits: each weight within 2^-8 of itself, so a layer's\n"
            "                 pre-activation within 2^-8 x sum |w x|) and, at batch 1, stored in\n"
            "                 16 bits by the window-permute layout: 3 bytes per slot instead of\n"
            "                 5. It pays where batch 1 streams a large layer from memory; in\n"
            "                 cache and at larger batches the speed is that of float32. The\n"
            "                 dense path and the peers keep float32 weights\n"
            "  --json         {\"batch1\":{\"dense_us\":..,\"sparse_us\":..,\"ort_us\":..,\n"
            "                  \"torch_us\":..},\"batch256\":{\"dense_sps\":..,\"sparse_sps\":..,\n"
            "                  \"ort_sps\":..,\"torch_sps\":..},\"density\":..,\"ort_overhead_us\":..}\n"
            "                 plus forced-sparse figures, GFLOP/s and b1_bytes (weights,\n"
            "                 indices and pointers a batch-1 pass on a dense input reads) and\n"
            "                 values (\"float32\" or \"bf16\": the sparse engine's weights)\n\n"
            "ONNX Runtime runs in node (npm onnxruntime-node, installed by scripts/setup.sh into\n"
            "the cache directory) on bench/ort_infer.js ($ECPRUNE_ORT_INFER overrides); its\n"
            "fixed cost per call through the binding is timed on a 1-1 model and printed apart,\n"
            "with ratios against its figures both with and without it ('its core').\n"
            "PyTorch is looked for as $ECPRUNE_TORCH_INFER, else bench/torch_infer.py beside the\n"
            "binary's ../, else ./bench/torch_infer.py, and run by /usr/bin/python3.\n");
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

/* Where a peer's script is: $ENV, else bench/NAME beside the binary's ../, else ./bench/NAME. */
static void find_script(const char *env, const char *name, char *buf, size_t n)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(buf, n, "%s", e);
        return;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, n, "%s/../bench/%s", exe, name);
            if (access(buf, R_OK) == 0)
                return;
        }
    }
    snprintf(buf, n, "bench/%s", name);
}

/* A peer's figures: batch-1 latency (us), samples/s per batch, the fixed cost of one call
 * through its binding (us); negative = not measured. why: empty, or the reason there are none. */
typedef struct {
    double t1, tn[MAX_BATCHES], overhead;
    char why[300];
} peer_result;

static void peer_init(peer_result *r, const char *why)
{
    r->t1 = r->overhead = -1;
    for (int i = 0; i < MAX_BATCHES; i++)
        r->tn[i] = -1;
    snprintf(r->why, sizeof r->why, "%s", why);
}

/* Runs a peer's command and reads its one JSON line ("batch1_us", "batch<B>_sps",
 * "overhead_us"); anything else it prints is ignored but for an "Error" line, kept as the
 * reason when no JSON came. */
static void run_peer(const char *name, const char *cmd, const long *batches, int nb,
                     peer_result *r)
{
    char line[4096];
    FILE *p = popen(cmd, "r");
    int got = 0;
    if (!p)
        return;
    while (fgets(line, sizeof line, p)) {
        if (line[0] != '{') {
            if (strstr(line, "Error"))
                snprintf(r->why, sizeof r->why, "%s failed: %.200s", name, line);
            continue;
        }
        char *q = strstr(line, "\"batch1_us\":");
        if (q)
            r->t1 = strtod(q + 12, NULL);
        if ((q = strstr(line, "\"overhead_us\":")))
            r->overhead = strtod(q + 14, NULL);
        for (int i = 0; i < nb; i++) {
            char key[48];
            snprintf(key, sizeof key, "\"batch%ld_sps\":", batches[i]);
            if ((q = strstr(line, key)))
                r->tn[i] = strtod(q + strlen(key), NULL);
        }
        got = 1;
    }
    pclose(p);
    if (got)
        r->why[0] = 0;
    else if (!strstr(r->why, "failed"))
        snprintf(r->why, sizeof r->why, "%s printed no figures", name);
    size_t k = strlen(r->why);
    while (k && (r->why[k - 1] == '\n' || r->why[k - 1] == '\r'))
        r->why[--k] = 0;
}

static void batch_list(const long *batches, int nb, char *bl, size_t n)
{
    bl[0] = 0;
    for (int i = 0; i < nb; i++)
        snprintf(bl + strlen(bl), n - strlen(bl), "%s%ld", i ? "," : "", batches[i]);
}

/* PyTorch on the same weights and inputs (x.f32 already in dir): the weights go as raw float32
 * files, so the comparison does not depend on either side's ONNX reader. */
static void run_torch(const ecp_mlp *m, const char *dir, const long *batches, int nb,
                      long threads, double secs, peer_result *r)
{
    char script[4200], cmd[8800], path[4200], bl[256];
    find_script("ECPRUNE_TORCH_INFER", "torch_infer.py", script, sizeof script);
    if (access(script, R_OK) != 0) {
        snprintf(r->why, sizeof r->why, "%.200s not found", script);
        return;
    }
    int L = ecp_mlp_n_layers(m), bad = 0;
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
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
    if (bad) {
        snprintf(r->why, sizeof r->why, "cannot write the weights for PyTorch to %s", dir);
        return;
    }
    batch_list(batches, nb, bl, sizeof bl);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s' '%s' --threads %ld --batches %s --seconds %g 2>&1", script,
             dir, threads, bl, secs);
    run_peer("PyTorch", cmd, batches, nb, r);
}

/* ONNX Runtime (npm onnxruntime-node, run by node on bench/ort_infer.js) on the model file
 * itself and the same inputs. A 1-1 model written next to them measures the fixed cost of one
 * call through the binding, reported apart (overhead). */
static void run_ort(const char *model, const char *dir, const long *batches, int nb,
                    long threads, double secs, peer_result *r)
{
    char script[4200], cmd[13000], tiny[4200], bl[256];
    find_script("ECPRUNE_ORT_INFER", "ort_infer.js", script, sizeof script);
    if (access(script, R_OK) != 0) {
        snprintf(r->why, sizeof r->why, "%.200s not found", script);
        return;
    }
    if (strchr(model, '\'')) { /* the path goes into a shell command in single quotes */
        snprintf(r->why, sizeof r->why, "model path contains a quote");
        return;
    }
    ecp_error err = {0};
    ecp_mlp *one = NULL;
    snprintf(tiny, sizeof tiny, "%s/one.onnx", dir);
    if (ecp_mlp_create_arch(&one, "1-1", ECP_ACT_IDENTITY, &err) ||
        ecp_onnx_save(one, tiny, &err)) {
        snprintf(r->why, sizeof r->why, "cannot write the 1-1 model: %.200s", err.msg);
        ecp_mlp_free(one);
        return;
    }
    ecp_mlp_free(one);
    batch_list(batches, nb, bl, sizeof bl);
    snprintf(cmd, sizeof cmd,
             "node '%s' '%s' '%s/x.f32' --threads %ld --batches %s --seconds %g "
             "--overhead '%s' 2>&1",
             script, model, dir, threads, bl, secs, tiny);
    run_peer("ONNX Runtime", cmd, batches, nb, r);
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

/* Keeps the better of each figure of a peer's round r in best (lower latency, more samples/s,
 * lower overhead); the first round that has figures clears the reason there were none. */
static void peer_merge(peer_result *best, const peer_result *r, int nb)
{
    if (r->why[0]) {
        if (best->t1 < 0 && best->overhead < 0)
            snprintf(best->why, sizeof best->why, "%s", r->why);
        return;
    }
    best->why[0] = 0;
    if (r->t1 >= 0 && (best->t1 < 0 || r->t1 < best->t1))
        best->t1 = r->t1;
    if (r->overhead >= 0 && (best->overhead < 0 || r->overhead < best->overhead))
        best->overhead = r->overhead;
    for (int i = 0; i < nb; i++)
        if (r->tn[i] > best->tn[i])
            best->tn[i] = r->tn[i];
}

/* One round of the peers (NULL: skipped) on the inputs x (nx floats) in a temporary directory. */
static void run_peers(const ecp_mlp *m, const char *model, const float *x, size_t nx,
                      const long *batches, int nb, long threads, double secs, peer_result *pt,
                      peer_result *po)
{
    peer_result rt, ro;
    peer_init(&rt, "PyTorch unavailable");
    peer_init(&ro, "ONNX Runtime unavailable");
    char dir[] = "/tmp/ecprune-bench-XXXXXX", cmd[64];
    if (!pt && !po)
        return;
    if (!mkdtemp(dir)) {
        snprintf(rt.why, sizeof rt.why, "cannot create a temporary directory");
        snprintf(ro.why, sizeof ro.why, "cannot create a temporary directory");
    } else {
        if (write_raw(dir, "x.f32", x, nx)) {
            snprintf(rt.why, sizeof rt.why, "cannot write the inputs to %s", dir);
            snprintf(ro.why, sizeof ro.why, "cannot write the inputs to %s", dir);
        } else {
            if (po)
                run_ort(model, dir, batches, nb, threads, secs, &ro);
            if (pt)
                run_torch(m, dir, batches, nb, threads, secs, &rt);
        }
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "ecprune bench-infer: cannot remove %s\n", dir);
    }
    if (pt)
        peer_merge(pt, &rt, nb);
    if (po)
        peer_merge(po, &ro, nb);
}

/* samples/s of a peer at batch b without its fixed call overhead (us): the figure its library
 * would reach called from C, a bound in the peer's favour (the overhead measured on a 1-1 model
 * includes the library's own per-run set-up too). */
static double sps_core(double sps, long b, double overhead_us)
{
    if (sps <= 0 || overhead_us < 0)
        return -1;
    double s = b / sps - overhead_us * 1e-6;
    return s > 0 ? b / s : -1;
}

/* v with `prec` decimals, or "n/a" when not measured (negative). */
static const char *fig(char buf[32], double v, int prec)
{
    if (v < 0)
        return "n/a";
    snprintf(buf, 32, "%.*f", prec, v);
    return buf;
}

static void ratio(const char *what, double ours, double theirs)
{
    if (theirs > 0)
        printf("%s %.2fx", what, ours / theirs);
}

static void report_json(const ecp_sparse_net *e, int bf16, long threads, long rounds,
                        const long *batches, int nb, double t[3][MAX_BATCHES],
                        const peer_result *pt, const peer_result *po)
{
    double nnz = (double)ecp_sparse_nnz(e);
    printf("{");
    for (int i = 0; i < nb; i++) {
        long b = batches[i];
        if (b == 1) {
            printf("\"batch1\":{\"dense_us\":%.6g,\"sparse_us\":%.6g,\"torch_us\":",
                   t[0][i] * 1e6, t[1][i] * 1e6);
            json_num(pt->t1);
            printf(",\"ort_us\":");
            json_num(po->t1);
            printf(",\"sparse_forced_us\":");
            json_num(t[2][i] < 0 ? -1 : t[2][i] * 1e6);
            printf(",\"sparse_gflops\":%.6g},", 2 * nnz / t[1][i] * 1e-9);
        } else {
            printf("\"batch%ld\":{\"dense_sps\":%.6g,\"sparse_sps\":%.6g,\"torch_sps\":", b,
                   b / t[0][i], b / t[1][i]);
            json_num(pt->tn[i]);
            printf(",\"ort_sps\":");
            json_num(po->tn[i]);
            printf(",\"sparse_forced_sps\":");
            json_num(t[2][i] < 0 ? -1 : b / t[2][i]);
            printf(",\"sparse_gflops\":%.6g},", 2 * nnz * b / t[1][i] * 1e-9);
        }
    }
    printf("\"density\":%.6g,\"nnz\":%.0f,\"b1_bytes\":%.0f,\"threads\":%ld,\"rounds\":%ld,"
           "\"ort_overhead_us\":", ecp_sparse_density(e), nnz, ecp_sparse_b1_bytes(e), threads,
           rounds);
    json_num(po->overhead);
    printf(",\"torch\":%s,\"ort\":%s,\"values\":\"%s\"}\n", pt->why[0] ? "null" : "true",
           po->why[0] ? "null" : "true", bf16 ? "bf16" : "float32");
}

static void report(int json, const char *model, const char *data, const ecp_sparse_net *e,
                   int bf16, long threads, long rounds, const long *batches, int nb,
                   double t[3][MAX_BATCHES], const peer_result *pt, const peer_result *po)
{
    if (json) {
        report_json(e, bf16, threads, rounds, batches, nb, t, pt, po);
        return;
    }
    double nnz = (double)ecp_sparse_nnz(e);
    printf("%s: %.2f%% of %lld weights kept, %ld thread(s), best of %ld round(s)%s%s%s\n",
           model, 100 * ecp_sparse_density(e), (long long)ecp_sparse_n_weights(e), threads,
           rounds, data ? ", inputs from " : "", data ? data : "",
           bf16 ? ", sparse engine with bf16 weights" : "");
    for (int i = 0; i < nb; i++) {
        long b = batches[i];
        /* everything as samples/s so that every ratio reads "higher is better for ecprune" */
        double d = b / t[0][i], s = b / t[1][i];
        double o = b == 1 ? (po->t1 > 0 ? 1e6 / po->t1 : -1) : po->tn[i];
        double p = b == 1 ? (pt->t1 > 0 ? 1e6 / pt->t1 : -1) : pt->tn[i];
        double oc = sps_core(o, b, po->overhead);
        char f[3][32];
        if (b == 1)
            printf("batch 1 latency (us): dense %.1f  sparse %.1f  (forced sparse %s)  "
                   "onnxruntime %s  torch %s\n",
                   1e6 / d, 1e6 / s, fig(f[0], t[2][i] < 0 ? -1 : t[2][i] * 1e6, 1),
                   fig(f[1], o > 0 ? 1e6 / o : -1, 1), fig(f[2], p > 0 ? 1e6 / p : -1, 1));
        else
            printf("batch %ld throughput (samples/s): dense %.0f  sparse %.0f  (forced sparse "
                   "%s)  onnxruntime %s  torch %s\n",
                   b, d, s, fig(f[0], t[2][i] < 0 ? -1 : b / t[2][i], 0), fig(f[1], o, 0),
                   fig(f[2], p, 0));
        printf("  sparse:");
        ratio(" vs dense", s, d);
        ratio(", vs onnxruntime", s, o);
        ratio(" (vs its core", s, oc);
        printf("%s", oc > 0 ? ")" : "");
        ratio(", vs torch", s, p);
        printf("; %.2f GFLOP/s of non-zeros\n", 2 * nnz * s * 1e-9);
        if (o > 0 || p > 0) {
            printf("  dense: ");
            ratio(" vs onnxruntime", d, o);
            ratio(" (vs its core", d, oc);
            printf("%s", oc > 0 ? ")" : "");
            ratio(", vs torch", d, p);
            printf("\n");
        }
    }
    if (po->overhead >= 0)
        printf("onnxruntime: %.1f us per call through the node binding (1-1 model), included "
               "in its figures; 'its core' subtracts it\n", po->overhead);
    if (po->why[0])
        printf("onnxruntime: %s\n", po->why);
    if (pt->why[0])
        printf("torch: %s\n", pt->why);
}

/* bench-infer's own options. */
typedef struct {
    long batches[MAX_BATCHES], rounds, maxb;
    int nb, torch, ort, bf16;
    double secs;
} bench_opts;

static int bench_opt(void *ctx, int c, char *arg)
{
    bench_opts *o = ctx;
    switch (c) {
    case 'b': return parse_batches(arg, o->batches, &o->nb);
    case 's': return cli_parse_double("bench-infer", "--seconds", arg, 0.01, 60, &o->secs);
    case 'r': return cli_parse_int("bench-infer", "--rounds", arg, 1, 100, &o->rounds);
    case 'n': o->torch = 0; return 0;
    case 'f': o->bf16 = 1; return 0;
    default: o->ort = 0; return 0; /* 'O' */
    }
}

/* n_x input rows for m: the test split of --data in turn, else uniform random. */
static int make_inputs(const cli_args *a, const ecp_mlp *m, size_t n_x, float *x)
{
    int n_in = ecp_mlp_n_in(m);
    if (!a->data) {
        ecp_rng r;
        ecp_rng_seed(&r, 1);
        for (size_t i = 0; i < n_x * n_in; i++)
            x[i] = (float)ecp_rng_uniform(&r);
        return 0;
    }
    ecp_error err = {0};
    ecp_data_opts dopt;
    ecp_data_opts_default(&dopt);
    ecp_dataset *train = NULL, *test = NULL;
    int rc = 0;
    if (ecp_data_open(a->data, &dopt, &train, &test, &err) ||
        ecp_check_fit(m, test, a->model, a->data, &err))
        rc = cli_die("bench-infer", &err);
    else
        for (size_t i = 0; i < n_x; i++)
            memcpy(x + i * n_in, test->x + (i % (size_t)test->n) * n_in, (size_t)n_in * sizeof *x);
    ecp_dataset_free(train);
    ecp_dataset_free(test);
    return rc;
}

/* The engines timed: dense, auto, forced sparse (the last two with bf16 weights if asked). */
static int make_engines(const ecp_mlp *m, long threads, long maxb, int bf16,
                        ecp_sparse_net *eng[3])
{
    static const ecp_engine_mode modes[3] = {ECP_ENGINE_DENSE, ECP_ENGINE_AUTO, ECP_ENGINE_SPARSE};
    ecp_error err = {0};
    for (int k = 0; k < 3; k++) {
        ecp_sparse_opts so;
        ecp_sparse_opts_default(&so);
        so.mode = modes[k];
        so.threads = (int)threads;
        so.max_batch = (int)maxb;
        so.bf16 = k > 0 && bf16;
        if (ecp_sparse_create(&eng[k], m, &so, &err))
            return cli_die("bench-infer", &err);
    }
    return 0;
}

/* Rounds: every contender is timed once per round, in turn, and keeps its best round, so that a
 * burst of load from elsewhere on a shared machine hits one round of one contender, not the
 * whole comparison. Forcing the sparse formats on a mostly dense model only measures a mistake,
 * slowly (1024-4096-4096-1024 dense at batch 1024: seconds per call); reported as null. */
static int time_rounds(const cli_args *a, const bench_opts *o, const ecp_mlp *m,
                       ecp_sparse_net *eng[3], const float *x, size_t n_x, float *y)
{
    const int n_eng = ecp_sparse_density(eng[1]) < 0.5 ? 3 : 2, n_in = ecp_mlp_n_in(m);
    double t[3][MAX_BATCHES];
    for (int i = 0; i < o->nb; i++)
        t[2][i] = -1;
    peer_result pt, po;
    peer_init(&pt, o->torch ? "PyTorch unavailable" : "skipped (--no-torch)");
    peer_init(&po, o->ort ? "ONNX Runtime unavailable" : "skipped (--no-ort)");
    ecp_error err = {0};
    for (long round = 0; round < o->rounds; round++) {
        for (int i = 0; i < o->nb; i++)
            for (int k = 0; k < n_eng; k++) {
                double v = 0;
                if (time_engine(eng[k], x, n_in, (int)o->batches[i], o->secs, y, &v, &err))
                    return cli_die("bench-infer", &err);
                t[k][i] = round == 0 || v < t[k][i] ? v : t[k][i];
            }
        run_peers(m, a->model, x, n_x * (size_t)n_in, o->batches, o->nb, a->threads, o->secs,
                  o->torch ? &pt : NULL, o->ort ? &po : NULL);
    }
    report(a->json, a->model, a->data, eng[1], o->bf16, a->threads, o->rounds, o->batches, o->nb,
           t, &pt, &po);
    if (pt.why[0] && o->torch)
        fprintf(stderr, "ecprune bench-infer: %s\n", pt.why);
    if (po.why[0] && o->ort)
        fprintf(stderr, "ecprune bench-infer: %s\n", po.why);
    return 0;
}

int cmd_bench_infer(int argc, char **argv)
{
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, CLI_OPT_THREADS, CLI_OPT_DATA,
        {"seconds", required_argument, 0, 's'}, {"no-torch", no_argument, 0, 'n'},
        {"no-ort", no_argument, 0, 'O'}, {"rounds", required_argument, 0, 'r'},
        {"bf16", no_argument, 0, 'f'}, CLI_OPT_JSON,
        CLI_OPT_HELP, {0, 0, 0, 0}};
    bench_opts o = {{1, 256}, 3, 1, 2, 1, 1, 0, 0.5};
    cli_args a;
    int rc = cli_parse(&a, "bench-infer", argc, argv, opts, bench_opt, &o, help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!a.threads)
        a.threads = 1;
    cli_set_threads((int)a.threads);
    for (int i = 0; i < o.nb; i++)
        o.maxb = o.batches[i] > o.maxb ? o.batches[i] : o.maxb;
    ecp_error err = {0};
    ecp_mlp *m = NULL;
    if (ecp_onnx_load(&m, a.model, &err))
        return cli_die("bench-infer", &err);
    ecp_sparse_net *eng[3] = {NULL, NULL, NULL};
    size_t n_x = (size_t)(N_INPUTS > o.maxb ? N_INPUTS : o.maxb);
    float *x = malloc(n_x * ecp_mlp_n_in(m) * sizeof *x);
    float *y = malloc((size_t)o.maxb * ecp_mlp_n_out(m) * sizeof *y);
    if (!x || !y) {
        fprintf(stderr, "ecprune bench-infer: out of memory\n");
        rc = 1;
    }
    if (!rc && !(rc = make_inputs(&a, m, n_x, x)) &&
        !(rc = make_engines(m, a.threads, o.maxb, o.bf16, eng)))
        rc = time_rounds(&a, &o, m, eng, x, n_x, y);
    for (int k = 0; k < 3; k++)
        ecp_sparse_free(eng[k]);
    free(x);
    free(y);
    ecp_mlp_free(m);
    return rc;
}
