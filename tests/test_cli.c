/* The command-line tool, run as a process: help and usage errors, train/eval/info/prune on tiny
 * .npy datasets (JSON outputs checked against recomputations), bad inputs (one-line error naming
 * the file or option, exit status 1 or 2, no output file left), reproducible ONNX files.
 * The binary is $ECPRUNE_BUILD/ecprune (default build/ecprune). */
#include "cliutil.h"

/* The number after "KEY": in a JSON text (the first occurrence after `from`, if given). */
static double json_num(const char *text, const char *key, const char *from)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *start = text;
    if (from) {
        start = strstr(text, from);
        if (!start)
            fail_msg("JSON has no %s: %s", from, text);
    }
    const char *p = strstr(start, pat);
    if (!p)
        fail_msg("JSON has no key %s: %s", key, text);
    char *end;
    double v = strtod(p + strlen(pat), &end);
    if (end == p + strlen(pat))
        fail_msg("JSON key %s is not a number: %s", key, text);
    return v;
}

static void assert_json_object(const char *text)
{
    size_t n = strlen(text);
    assert_true(n > 2);
    assert_int_equal(text[0], '{');
    assert_int_equal(text[n - 2], '}');
    assert_int_equal(text[n - 1], '\n');
    assert_int_equal(count_lines(text), 1);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int files_equal(const char *a, const char *b)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* Tiny datasets: 200 training and 60 test rows of 4 features.
 *   reg/  y (N x 2) = smooth functions of x
 *   cls/  3 classes by the largest of three linear scores; int64 labels */
static void write_datasets(void)
{
    ecp_error err = {0};
    mkdir(P("reg"), 0755);
    mkdir(P("cls"), 0755);
    mkdir(P("wide"), 0755);
    ecp_rng r;
    ecp_rng_seed(&r, 2024);
    for (int split = 0; split < 2; split++) {
        int n = split ? 60 : 200;
        const char *sp = split ? "test" : "train";
        float *x = malloc(sizeof(float) * n * 5), *y = malloc(sizeof(float) * n * 2);
        int64_t *lab = malloc(sizeof(int64_t) * n);
        for (int i = 0; i < n * 5; i++)
            x[i] = (float)(2 * ecp_rng_uniform(&r) - 1);
        for (int i = 0; i < n; i++) {
            const float *a = x + i * 4;
            y[2 * i] = (float)(sin(2 * a[0]) + a[1] * a[2]);
            y[2 * i + 1] = (float)(a[3] - 0.5 * a[0]);
            double s0 = a[0] + a[1], s1 = a[2] - a[0], s2 = a[3] - a[1] + 0.2;
            lab[i] = s0 >= s1 && s0 >= s2 ? 0 : s1 >= s2 ? 1 : 2;
        }
        char path[700];
        snprintf(path, sizeof path, "%s/reg/%s_x.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_f32(path, x, n, 4, &err), ECP_OK);
        snprintf(path, sizeof path, "%s/reg/%s_y.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_f32(path, y, n, 2, &err), ECP_OK);
        snprintf(path, sizeof path, "%s/cls/%s_x.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_f32(path, x, n, 4, &err), ECP_OK);
        snprintf(path, sizeof path, "%s/cls/%s_y.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_i64(path, lab, n, &err), ECP_OK);
        /* wide/: the same targets with 5 features, for width mismatches. */
        snprintf(path, sizeof path, "%s/wide/%s_x.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_f32(path, x, n, 5, &err), ECP_OK);
        snprintf(path, sizeof path, "%s/wide/%s_y.npy", g_dir, sp);
        assert_int_equal(ecp_npy_write_f32(path, y, n, 2, &err), ECP_OK);
        free(x);
        free(y);
        free(lab);
    }
}

static int setup(void **state)
{
    (void)state;
    if (tu_cli_setup("test_cli"))
        return -1;
    write_datasets();
    /* A regression model and a classification model that most tests share. */
    run_result r = run("train --data '%s' --arch 4-16-2 --epochs 30 --batch 16 --seed 3 -o '%s'",
                       P("reg"), P("reg.onnx"));
    if (r.status != 0) {
        fprintf(stderr, "test_cli: training the shared model failed: %s\n", r.err);
        run_free(&r);
        return -1;
    }
    run_free(&r);
    r = run("train --data '%s' --arch 4-12-3 --act tanh --epochs 30 --batch 16 --seed 3 -o '%s'",
            P("cls"), P("cls.onnx"));
    int st = r.status;
    run_free(&r);
    return st == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rmdir(g_dir);
    return 0;
}

/* A fresh empty directory for outputs that must not appear. */
static const char *fresh_dir(const char *name)
{
    const char *d = P(name);
    mkdir(d, 0755);
    assert_int_equal(tu_count_files(d), 0);
    return d;
}

/* ------------------------------------------------------------------ help and usage */

static void test_help(void **state)
{
    (void)state;
    run_result r = run("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage"));
    run_free(&r);
    static const char *cmds[] = {"train", "eval", "info", "prune"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        for (int form = 0; form < 2; form++) {
            r = run("%s %s", cmds[i], form ? "-h" : "--help");
            if (r.status != 0 || !strstr(r.out, "usage"))
                print_error("%s --help: exit %d, stdout [%s]\n", cmds[i], r.status, r.out);
            assert_int_equal(r.status, 0);
            assert_non_null(strstr(r.out, "usage"));
            char want[64];
            snprintf(want, sizeof want, "ecprune %s", cmds[i]);
            assert_non_null(strstr(r.out, want));
            run_free(&r);
        }
    }
    r = run("--version");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, ECP_VERSION));
    run_free(&r);
    r = run("");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    run_free(&r);
    r = run("frobnicate");
    expect_error(&r, 2, "frobnicate", "unknown command");
}

/* datagen --profiles: one block per c0 and saved time, the first at u = c0 everywhere. */
static void test_datagen_profiles(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/profiles.txt", P("."));
    run_result r = run("datagen diffsorp --profiles '%s' --c0-list 0.1,0.2 --times 3 --cells 8",
                       path);
    assert_int_equal(r.status, 0);
    run_free(&r);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int headers = 0, rows = 0;
    while (fgets(line, sizeof line, f)) {
        double c0, t, x, u;
        if (line[0] == '#')
            headers++;
        else if (sscanf(line, "%lf %lf %lf %lf", &c0, &t, &x, &u) == 4) {
            rows++;
            if (t == 0)
                assert_close(u, c0, 0, 1e-12);
            assert_true(u >= 0 && u <= 1.0 + 1e-9);
        }
    }
    fclose(f);
    assert_int_equal(headers, 2 * 3);
    assert_int_equal(rows, 2 * 3 * 8);
}

static void test_usage_errors(void **state)
{
    (void)state;
    run_result r;
    r = run("train --bogus --data '%s' --arch 4-2 -o '%s/x.onnx'", P("reg"), fresh_dir("u1"));
    expect_error(&r, 2, "--bogus", "train --bogus");
    r = run("eval '%s' --data '%s' --bogus", P("reg.onnx"), P("reg"));
    expect_error(&r, 2, "--bogus", "eval --bogus");
    r = run("info '%s' --bogus", P("reg.onnx"));
    expect_error(&r, 2, "--bogus", "info --bogus");
    r = run("prune '%s' --data '%s' --bogus -o '%s/p.onnx'", P("reg.onnx"), P("reg"), P("u1"));
    expect_error(&r, 2, "--bogus", "prune --bogus");
    r = run("train --data '%s' --arch", P("reg"));
    expect_error(&r, 2, "--arch", "train --arch without value");
    r = run("train --data '%s' --arch 4-2", P("reg"));
    expect_error(&r, 2, "train: -o is required", "train without -o");
    r = run("train --data '%s' --arch 4-2 -o '%s/x.pt'", P("reg"), P("u1"));
    expect_error(&r, 2, "ecprune writes ONNX", "train -o x.pt");
    r = run("trian --data '%s'", P("reg"));
    expect_error(&r, 2, "did you mean train?", "misspelt subcommand");
    r = run("train --data mnst --arch 784-10 -o '%s/x.onnx'", P("u1"));
    expect_error(&r, 2, "--data 'mnst': no such dataset: did you mean mnist?", "--data mnst");
    r = run("train --data '%s' --arch 4-2 --epochs ten -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "--epochs", "train --epochs ten");
    r = run("train --data '%s' --arch 4-2 --act swish -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "swish", "train --act swish");
    r = run("train --data '%s' --arch 4-2 --act softplus:0 -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "--act: activation softplus: beta 0 must be > 0", "train --act softplus:0");
    r = run("train --data '%s' --arch 4-2- -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "--arch '4-2-'", "train --arch 4-2-");
    /* The library names fields (n_train, n_c0, ...); the tool names the flags that set them. */
    r = run("datagen diffsorp -o '%s/d' --c0 3 --times 2 --cells 3 --train 1000", P("u1"));
    expect_error(&r, 2, "--train = 1000 exceeds", "datagen --train too large");
    r = run("datagen diffsorp -o '%s/d' --c0 3 --times 2 --cells 3 --train 1000", P("u1"));
    expect_error(&r, 2, "raise --c0, --times or --cells", "datagen names its flags");
    r = run("train --data '%s' --arch 4-2 --optim rmsprop -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "rmsprop", "train --optim rmsprop");
    r = run("train --data '%s' --arch 4-2 --lr -1 -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "--lr", "train --lr -1");
    r = run("train --data '%s' --arch 4-2 stray -o '%s/x.onnx'", P("reg"), P("u1"));
    expect_error(&r, 2, "stray", "train stray argument");
    r = run("eval --data '%s'", P("reg"));
    expect_error(&r, 2, "model", "eval without a model");
    r = run("eval '%s' --data '%s' --split valid", P("reg.onnx"), P("reg"));
    expect_error(&r, 2, "valid", "eval --split valid");
    r = run("info");
    expect_error(&r, 2, "model", "info without a model");
    assert_int_equal(tu_count_files(P("u1")), 0);
}

/* ------------------------------------------------------------------ the happy paths */

static void test_train_json_regression(void **state)
{
    (void)state;
    run_result r = run("train --data '%s' --arch 4-16-2 --epochs 30 --batch 16 --seed 3 -o '%s' "
                       "--json", P("reg"), P("reg2.onnx"));
    assert_int_equal(r.status, 0);
    assert_json_object(r.out);
    double tl = json_num(r.out, "train_loss", NULL);
    double loss = json_num(r.out, "loss", "\"test\":");
    assert_int_equal((int)json_num(r.out, "n", "\"test\":"), 60);
    assert_true(json_num(r.out, "samples_per_s", NULL) > 0);
    assert_true(json_num(r.out, "seconds", NULL) >= 0);
    assert_non_null(strstr(r.out, "\"output\":"));
    assert_null(strstr(r.out, "accuracy")); /* regression */
    assert_true(tl > 0 && tl < 0.2);
    assert_true(loss > 0 && loss < 0.3);
    run_free(&r);
    /* The same command without --json gave the shared model: identical file. */
    assert_true(files_equal(P("reg.onnx"), P("reg2.onnx")));
    /* eval reports the same test loss. */
    r = run("eval '%s' --data '%s' --json", P("reg2.onnx"), P("reg"));
    assert_int_equal(r.status, 0);
    assert_close(json_num(r.out, "loss", NULL), loss, 1e-6, 0);
    run_free(&r);
    /* Human-readable output names the model file. */
    r = run("eval '%s' --data '%s'", P("reg2.onnx"), P("reg"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "loss"));
    assert_non_null(strstr(r.out, P("reg2.onnx")));
    run_free(&r);
}

/* --json output is JSON even when there is nothing to measure: zero epochs either are refused
 * as a usage error or report a number/null, never a bare nan. */
static void test_train_zero_epochs_json(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s", P("o_zero"));
    mkdir(dir, 0755);
    run_result r = run("train --data '%s' --arch 4-8-2 --epochs 0 -o '%s/m.onnx' --json",
                       P("reg"), dir);
    if (r.status == 2) {
        expect_error(&r, 2, "--epochs", "train --epochs 0");
        assert_int_equal(tu_count_files(dir), 0);
        return;
    }
    int status = r.status, bad = strstr(r.out, "nan") || strstr(r.out, "inf");
    if (bad)
        print_error("train --epochs 0 --json printed invalid JSON: %s", r.out);
    run_free(&r);
    assert_int_equal(status, 0);
    assert_false(bad);
}

/* --valid holds out part of the training set and reports it; --patience needs it. */
static void test_train_valid_patience(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s", P("o_valid"));
    mkdir(dir, 0755);
    run_result r = run("train --data '%s' --arch 4-8-2 --epochs 4 --batch 16 --valid 0.25 "
                       "--patience 2 --threads 1 -o '%s/m.onnx' --json", P("reg"), dir);
    assert_int_equal(r.status, 0);
    double vl = json_num(r.out, "loss", "\"valid\":");
    int best = (int)json_num(r.out, "best_epoch", NULL), epochs = (int)json_num(r.out, "epochs", NULL);
    assert_true(vl > 0 && isfinite(vl));
    assert_true(best >= 1 && best <= epochs && epochs <= 4);
    run_free(&r);
    r = run("train --data '%s' --arch 4-8-2 --patience 2 -o '%s/m2.onnx'", P("reg"), dir);
    expect_error(&r, 2, "--patience needs --valid", "train --patience without --valid");
    r = run("train --data '%s' --arch 4-8-2 --valid 1.5 -o '%s/m2.onnx'", P("reg"), dir);
    expect_error(&r, 2, "--valid", "train --valid 1.5");
}

/* Mean loss and accuracy recomputed from a predictions .npy. */
static void recompute(const char *pred, const char *ydir, int is_class, double *loss, double *acc)
{
    ecp_npy p, y;
    ecp_error err = {0};
    char path[700];
    snprintf(path, sizeof path, "%s/test_y.npy", ydir);
    assert_int_equal(ecp_npy_read(pred, &p, &err), ECP_OK);
    assert_int_equal(ecp_npy_read(path, &y, &err), ECP_OK);
    assert_int_equal(p.dtype, ECP_NPY_F4);
    assert_int_equal(p.ndim, 2);
    assert_int_equal(p.shape[0], y.shape[0]);
    int64_t n = p.shape[0], k = p.shape[1];
    const float *o = p.data;
    double s = 0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *oi = o + i * k;
        if (is_class) {
            int64_t c = ((const int64_t *)y.data)[i];
            double mx = oi[0];
            int best = 0;
            for (int j = 1; j < k; j++)
                if (oi[j] > mx) {
                    mx = oi[j];
                    best = j;
                }
            double se = 0;
            for (int j = 0; j < k; j++)
                se += exp(oi[j] - mx);
            s += mx + log(se) - oi[c];
            correct += best == c;
        } else {
            assert_int_equal(y.shape[1], k);
            const float *yi = (const float *)y.data + i * k;
            double q = 0;
            for (int j = 0; j < k; j++)
                q += ((double)oi[j] - yi[j]) * ((double)oi[j] - yi[j]);
            s += q / k;
        }
    }
    *loss = s / n;
    *acc = is_class ? (double)correct / n : -1;
    ecp_npy_release(&p);
    ecp_npy_release(&y);
}

static void test_eval_predictions(void **state)
{
    (void)state;
    for (int cls = 0; cls < 2; cls++) {
        const char *model = cls ? P("cls.onnx") : P("reg.onnx");
        const char *data = cls ? P("cls") : P("reg");
        const char *pred = cls ? P("pred_cls.npy") : P("pred_reg.npy");
        run_result r = run("eval '%s' --data '%s' --json --predictions '%s'", model, data, pred);
        assert_int_equal(r.status, 0);
        assert_json_object(r.out);
        double loss = json_num(r.out, "loss", NULL);
        assert_int_equal((int)json_num(r.out, "n", NULL), 60);
        double l2, a2;
        recompute(pred, data, cls, &l2, &a2);
        assert_close(loss, l2, 1e-6, 1e-9);
        if (cls) {
            double acc = json_num(r.out, "accuracy", NULL);
            assert_close(acc, a2, 0, 1e-6);
            assert_true(acc > 0.6); /* three linear classes: the tiny net learns them */
        } else
            assert_null(strstr(r.out, "accuracy"));
        run_free(&r);
    }
    /* --split train evaluates the 200 training rows. */
    run_result r = run("eval '%s' --data '%s' --split train --json", P("cls.onnx"), P("cls"));
    assert_int_equal(r.status, 0);
    assert_int_equal((int)json_num(r.out, "n", NULL), 200);
    run_free(&r);
}

static void test_info_json(void **state)
{
    (void)state;
    run_result r = run("info '%s' --json", P("cls.onnx"));
    assert_int_equal(r.status, 0);
    assert_json_object(r.out);
    assert_non_null(strstr(r.out, "\"layers\":["));
    assert_non_null(strstr(r.out, "\"act\":\"tanh\""));
    assert_non_null(strstr(r.out, "\"act\":\"identity\""));
    assert_int_equal((int)json_num(r.out, "in", NULL), 4);
    assert_int_equal((int)json_num(r.out, "out", NULL), 12);
    assert_int_equal((int)json_num(r.out, "params", NULL), 4 * 12 + 12 + 12 * 3 + 3);
    assert_int_equal((int)json_num(r.out, "weights", "\"params\""), 4 * 12 + 12 * 3);
    assert_int_equal((int)json_num(r.out, "pruned", "\"params\""), 0);
    assert_close(json_num(r.out, "sparsity", "\"params\""), 0, 0, 0);
    run_free(&r);
    r = run("info '%s'", P("cls.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "2 layers"));
    assert_non_null(strstr(r.out, "99 parameters"));
    run_free(&r);
}

static void test_prune_json(void **state)
{
    (void)state;
    for (int cls = 0; cls < 2; cls++) {
        const char *model = cls ? P("cls.onnx") : P("reg.onnx");
        const char *data = cls ? P("cls") : P("reg");
        const char *out = cls ? P("cls_p.onnx") : P("reg_p.onnx");
        run_result r = run("prune '%s' --data '%s' --sparsity 0.5 --calib 100 -o '%s' --json",
                           model, data, out);
        if (r.status)
            print_error("prune: %s\n", r.err);
        assert_int_equal(r.status, 0);
        assert_json_object(r.out);
        assert_non_null(strstr(r.out, "\"method\":\"ec\""));
        int weights = cls ? 4 * 12 + 12 * 3 : 4 * 16 + 16 * 2;
        assert_int_equal((int)json_num(r.out, "weights", "\"pruned\""), weights);
        int pruned = (int)json_num(r.out, "pruned", "],");
        assert_true(abs(pruned - weights / 2) <= 1);
        assert_close(json_num(r.out, "sparsity", NULL), (double)pruned / weights, 1e-5, 0);
        assert_close(json_num(r.out, "target", NULL), 0.5, 0, 0);
        assert_int_equal((int)json_num(r.out, "calib", NULL), 100);
        double after = json_num(r.out, "loss", "\"after\":");
        double before = json_num(r.out, "loss", "\"before\":");
        assert_true(before > 0 && after > 0);
        if (cls) {
            json_num(r.out, "accuracy", "\"after\":");
            json_num(r.out, "accuracy", "\"before\":");
        }
        int layer_sum = (int)json_num(r.out, "pruned", "\"layers\":[") +
                        (int)json_num(r.out, "pruned", "},{");
        assert_int_equal(layer_sum, pruned);
        run_free(&r);
        /* The before loss is the unpruned model's; the after loss is what eval reports. */
        r = run("eval '%s' --data '%s' --json", model, data);
        assert_close(json_num(r.out, "loss", NULL), before, 1e-6, 0);
        run_free(&r);
        r = run("eval '%s' --data '%s' --json", out, data);
        assert_int_equal(r.status, 0);
        assert_close(json_num(r.out, "loss", NULL), after, 1e-6, 0);
        run_free(&r);
        /* info sees the pruned weights as zeros. */
        r = run("info '%s' --json", out);
        assert_int_equal(r.status, 0);
        assert_int_equal((int)json_num(r.out, "pruned", "\"params\""), pruned);
        run_free(&r);
    }
    /* Other methods, a layer scope, an excluded layer. */
    run_result r = run("prune '%s' --data '%s' --method magnitude --scope layer --sparsity 0.25 "
                       "--exclude-layer 1 -o '%s' --json",
                       P("reg.onnx"), P("reg"), P("mag.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"method\":\"magnitude\""));
    assert_int_equal((int)json_num(r.out, "pruned", "\"layers\":["), 16); /* 25 % of 64 */
    assert_int_equal((int)json_num(r.out, "pruned", "},{"), 0);
    run_free(&r);
}

/* Reconstruction from the command line: the settings it used in the JSON, the exact count, a
 * lower loss than EC at the same sparsity; bad values refused before any work, nothing
 * written. */
static void test_prune_reconstruction(void **state)
{
    (void)state;
    run_result r = run("prune '%s' --data '%s' --method ec --sparsity 0.8 --calib 150 -o '%s' "
                       "--json", P("cls.onnx"), P("cls"), P("ec08.onnx"));
    assert_int_equal(r.status, 0);
    double ec_loss = json_num(r.out, "loss", "\"after\":");
    run_free(&r);
    r = run("prune '%s' --data '%s' --method ec-obs --sparsity 0.8 --calib 150 -o '%s' --json",
            P("cls.onnx"), P("cls"), P("ecobs.onnx"));
    if (r.status)
        print_error("prune ec-obs: %s\n", r.err);
    assert_int_equal(r.status, 0);
    assert_json_object(r.out);
    assert_non_null(strstr(r.out, "\"allocation\":\"global\",\"allocation_method\":\"ec:loss\""));
    assert_non_null(strstr(r.out, "\"weighting\":\"rank1\""));
    assert_int_equal((int)json_num(r.out, "pruned", "],"), 67); /* round(0.8 x 84) */
    assert_true(json_num(r.out, "loss", "\"after\":") < ec_loss);
    run_free(&r);
    r = run("prune '%s' --data '%s' --method sparsegpt --sparsity 0.5 -o '%s' --json",
            P("cls.onnx"), P("cls"), P("sgpt.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"allocation\":\"uniform\""));
    assert_int_equal((int)json_num(r.out, "pruned", "\"layers\":["), 24); /* 50 % of 48 */
    run_free(&r);
    const char *d = fresh_dir("obs_bad");
    char out[700];
    snprintf(out, sizeof out, "%s/p.onnx", d);
    static const struct { const char *args, *needle; int status; } bad[] = {
        {"--method ec-obs --refit sometimes", "--refit", 2},
        {"--method obs --allocation even", "--allocation", 2},
        {"--method ec-obs --weighting heavy", "--weighting", 2},
        {"--method obs --max-memory 12Q", "--max-memory", 2},
        {"--method obs --damping -1", "--damping", 2},
        {"--method obs --block 0", "--block", 2},
        {"--method obs --allocation-method nonsense", "--allocation-method", 2},
        {"--method obs --allocation-method ec:sideways", "--allocation-method", 2},
        {"--method ec-osb", "did you mean 'ec-obs'", 2},
        {"--method ec:sideways", "unknown sensitivity", 2},
        {"--sparsity 90", "a fraction below 1 (0.9 for 90 %)", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = run("prune '%s' --data '%s' %s -o '%s'", P("cls.onnx"), P("cls"), bad[i].args, out);
        expect_error(&r, bad[i].status, bad[i].needle, bad[i].args);
        assert_int_equal(tu_count_files(d), 0);
    }
    /* --method ec:loss is --method ec --sensitivity loss. */
    r = run("prune '%s' --data '%s' --method ec:loss --sparsity 0.5 -o '%s' --json",
            P("cls.onnx"), P("cls"), P("ecl1.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"method\":\"ec\",\"sensitivity\":\"loss\""));
    run_free(&r);
    r = run("prune '%s' --data '%s' --method ec --sensitivity loss --sparsity 0.5 -o '%s'",
            P("cls.onnx"), P("cls"), P("ecl2.onnx"));
    assert_int_equal(r.status, 0);
    run_free(&r);
    assert_true(files_equal(P("ecl1.onnx"), P("ecl2.onnx")));
    /* Re-pruning below the sparsity a model already has: said, and nothing removed. */
    r = run("prune '%s' --data '%s' --method ec --sparsity 0.3 -o '%s' --json", P("ecobs.onnx"),
            P("cls"), P("again.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "already 0.79"));
    assert_int_equal((int)json_num(r.out, "pruned", "],"), 67);
    run_free(&r);
}

static void test_same_seed_identical(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        run_result r = run("train --data '%s' --arch 4-12-3 --act relu --epochs 5 --batch 32 "
                           "--seed %d -o '%s'",
                           P("cls"), i == 2 ? 8 : 7, P(i == 0 ? "s1.onnx" : i == 1 ? "s2.onnx" : "s3.onnx"));
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "wrote"));
        run_free(&r);
    }
    assert_true(files_equal(P("s1.onnx"), P("s2.onnx")));
    assert_false(files_equal(P("s1.onnx"), P("s3.onnx")));
    /* Pruning is reproducible too. */
    for (int i = 0; i < 2; i++) {
        run_result r = run("prune '%s' --data '%s' --sparsity 0.6 --seed 4 -o '%s'", P("s1.onnx"),
                           P("cls"), P(i ? "sp2.onnx" : "sp1.onnx"));
        assert_int_equal(r.status, 0);
        run_free(&r);
    }
    assert_true(files_equal(P("sp1.onnx"), P("sp2.onnx")));
}

/* ------------------------------------------------------------------ bad inputs */

static void copy_dataset(const char *from, const char *to)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_data_files(void **state)
{
    (void)state;
    const char *out = fresh_dir("o_bad");
    char model[700], path[700];
    snprintf(model, sizeof model, "%s/m.onnx", out);
    /* Truncated data: the last 5 bytes of train_x.npy are gone. */
    copy_dataset(P("reg"), P("trunc"));
    snprintf(path, sizeof path, "%s/trunc/train_x.npy", g_dir);
    {
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        tu_write(path, buf, n - 5);
    }
    run_result r = run("train --data '%s' --arch 4-8-2 -o '%s'", P("trunc"), model);
    expect_error(&r, 1, path, "train on truncated npy");
    r = run("eval '%s' --data '%s'", P("reg.onnx"), P("trunc"));
    expect_error(&r, 1, path, "eval on truncated npy");
    r = run("prune '%s' --data '%s' --sparsity 0.5 -o '%s'", P("reg.onnx"), P("trunc"), model);
    expect_error(&r, 1, path, "prune on truncated npy");
    /* Corrupt: the magic is overwritten. */
    copy_dataset(P("reg"), P("corrupt"));
    snprintf(path, sizeof path, "%s/corrupt/test_y.npy", g_dir);
    tu_write(path, "garbage garbage garbage garbage garbage garbage garbage garbage", 63);
    r = run("train --data '%s' --arch 4-8-2 -o '%s'", P("corrupt"), model);
    expect_error(&r, 1, path, "train on corrupt npy");
    /* A missing dataset. */
    r = run("train --data '%s' --arch 4-8-2 -o '%s'", P("nothere"), model);
    expect_error(&r, 1, P("nothere"), "train on a missing dataset");
    /* A model file that is not ONNX, and one that does not exist. */
    static const char junk[] = "\x01\x02\x03 this is not a protobuf";
    tu_write(P("junk.onnx"), junk, sizeof junk - 1);
    r = run("eval '%s' --data '%s'", P("junk.onnx"), P("reg"));
    expect_error(&r, 1, P("junk.onnx"), "eval junk model");
    r = run("info '%s'", P("missing.onnx"));
    expect_error(&r, 1, P("missing.onnx"), "info missing model");
    r = run("prune '%s' --data '%s' --sparsity 0.5 -o '%s'", P("missing.onnx"), P("reg"), model);
    expect_error(&r, 1, P("missing.onnx"), "prune missing model");
    assert_int_equal(tu_count_files(out), 0);
}

static void test_width_mismatch(void **state)
{
    (void)state;
    const char *out = fresh_dir("o_width");
    char o[700];
    snprintf(o, sizeof o, "%s/p.onnx", out);
    /* reg.onnx takes 4 inputs; wide/ has 5 features. */
    run_result r = run("eval '%s' --data '%s'", P("reg.onnx"), P("wide"));
    expect_error(&r, 1, P("reg.onnx"), "eval width mismatch");
    r = run("eval '%s' --data '%s' --predictions '%s/pred.npy'", P("reg.onnx"), P("wide"), out);
    expect_error(&r, 1, "4 inputs", "eval width mismatch with predictions");
    r = run("prune '%s' --data '%s' --sparsity 0.5 -o '%s'", P("reg.onnx"), P("wide"), o);
    expect_error(&r, 1, P("reg.onnx"), "prune width mismatch");
    /* Outputs: a 3-class model on 2-target regression data. */
    r = run("eval '%s' --data '%s'", P("cls.onnx"), P("reg"));
    expect_error(&r, 1, P("cls.onnx"), "eval output mismatch");
    /* --arch that does not fit the data. */
    r = run("train --data '%s' --arch 5-8-2 -o '%s'", P("reg"), o);
    expect_error(&r, 1, "--arch", "train --arch mismatch");
    assert_int_equal(tu_count_files(out), 0);
}

static void test_unwritable_output(void **state)
{
    (void)state;
    const char *bad = "/proc/nonexistent/m.onnx";
    run_result r = run("train --data '%s' --arch 4-4-2 --epochs 1 -o %s", P("reg"), bad);
    expect_error(&r, 1, bad, "train unwritable -o");
    r = run("prune '%s' --data '%s' --sparsity 0.5 -o %s", P("reg.onnx"), P("reg"), bad);
    expect_error(&r, 1, bad, "prune unwritable -o");
    r = run("eval '%s' --data '%s' --predictions /proc/nonexistent/p.npy", P("reg.onnx"),
            P("reg"));
    expect_error(&r, 1, "/proc/nonexistent/p.npy", "eval unwritable --predictions");
    assert_false(file_exists("/proc/nonexistent"));
    /* -o naming a directory. */
    const char *d = fresh_dir("o_isdir");
    r = run("train --data '%s' --arch 4-4-2 --epochs 1 -o '%s'", P("reg"), d);
    expect_error(&r, 1, d, "train -o DIR");
    assert_int_equal(tu_count_files(d), 0);
}

static void test_prune_bad_options(void **state)
{
    (void)state;
    const char *out = fresh_dir("o_prune");
    char o[700];
    snprintf(o, sizeof o, "%s/p.onnx", out);
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--sparsity 1.0", "--sparsity"},
        {"--sparsity 1", "--sparsity"},
        {"--sparsity -0.1", "--sparsity"},
        {"--sparsity abc", "--sparsity"},
        {"--sparsity 0.5x", "--sparsity"},
        {"--sparsity nan", "--sparsity"},
        {"--method bogus", "bogus"},
        {"--calib 0", "--calib"},
        {"--calib 201", "--calib"},
        {"--calib -5", "--calib"},
        {"--exclude-layer 0,1", "prunable"},
        {"--exclude-layer x", "--exclude-layer"},
        {"--steps 0", "--steps"},
        {"--scope neuron", "neuron"},
        {"--sensitivity bogus", "bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r = run("prune '%s' --data '%s' %s -o '%s'", P("reg.onnx"), P("reg"),
                           cases[i].args, o);
        char what[200];
        snprintf(what, sizeof what, "prune %s", cases[i].args);
        expect_error(&r, 2, cases[i].needle, what);
        assert_int_equal(tu_count_files(out), 0);
    }
    /* the size under which training rows are read into memory: a byte count or an error */
    static const char *const bad_env[] = {"12x", "-1", "", "1e6"};
    for (size_t i = 0; i < sizeof bad_env / sizeof *bad_env; i++) {
        setenv("ECPRUNE_STREAM_FROM", bad_env[i], 1);
        run_result r = run("prune '%s' --data '%s' --sparsity 0.3 -o '%s'", P("reg.onnx"),
                           P("reg"), o);
        expect_error(&r, 2, "ECPRUNE_STREAM_FROM", "prune with a bad ECPRUNE_STREAM_FROM");
        assert_int_equal(tu_count_files(out), 0);
    }
    unsetenv("ECPRUNE_STREAM_FROM");
    /* --calib equal to the training size is allowed. */
    run_result r = run("prune '%s' --data '%s' --calib 200 --sparsity 0.3 -o '%s'", P("reg.onnx"),
                       P("reg"), o);
    assert_int_equal(r.status, 0);
    run_free(&r);
    assert_int_equal(tu_count_files(out), 1);
}

/* --bf16 on run and bench-infer: the values say so, the outputs move (a little: the loss within
 * 1 %), and the flag takes no value. */
static void test_bf16_flag(void **state)
{
    (void)state;
    double loss[2];
    for (int h = 0; h < 2; h++) {
        run_result r = run("run '%s' --data '%s' --batch 1 --json --predictions '%s'%s",
                           P("cls.onnx"), P("cls"), h ? P("pred_h.npy") : P("pred_f.npy"),
                           h ? " --bf16" : "");
        assert_int_equal(r.status, 0);
        assert_json_object(r.out);
        assert_non_null(strstr(r.out, h ? "\"values\":\"bf16\"" : "\"values\":\"float32\""));
        loss[h] = json_num(r.out, "loss", NULL);
        run_free(&r);
        r = run("bench-infer '%s' --batch 1 --no-torch --no-ort --seconds 0.01 --rounds 1 "
                "--json%s", P("cls.onnx"), h ? " --bf16" : "");
        assert_int_equal(r.status, 0);
        assert_json_object(r.out);
        assert_non_null(strstr(r.out, h ? "\"values\":\"bf16\"" : "\"values\":\"float32\""));
        run_free(&r);
    }
    assert_false(files_equal(P("pred_f.npy"), P("pred_h.npy")));
    assert_close(loss[1], loss[0], 0.01, 0);
    run_result r = run("run '%s' --data '%s' --bf16=1", P("cls.onnx"), P("cls"));
    expect_error(&r, 2, "bf16", "run --bf16=1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_train_json_regression),
        cmocka_unit_test(test_train_zero_epochs_json),
        cmocka_unit_test(test_train_valid_patience),
        cmocka_unit_test(test_datagen_profiles),
        cmocka_unit_test(test_eval_predictions),
        cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_prune_json),
        cmocka_unit_test(test_prune_reconstruction),
        cmocka_unit_test(test_same_seed_identical),
        cmocka_unit_test(test_bad_data_files),
        cmocka_unit_test(test_width_mismatch),
        cmocka_unit_test(test_unwritable_output),
        cmocka_unit_test(test_prune_bad_options),
        cmocka_unit_test(test_bf16_flag),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
