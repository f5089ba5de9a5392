/* ecprune sweep through the CLI: expected rows, resuming, the plot file, bad options. */
#include "testutil.h"
#include <sys/wait.h>

static char bin[4200];
static char dir[256];

static int run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return b;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A 3-class problem in 4 features, and a small model trained on it. */
static int setup(void **state)
{
    const char *b = getenv("ECPRUNE_BUILD");
    snprintf(bin, sizeof bin, "%s/ecprune", b ? b : "build");
    tu_mkdtemp(dir, sizeof dir);
    ecp_error err;
    for (int split = 0; split < 2; split++) {
        int n = split ? 100 : 300;
        float *x = malloc(sizeof(float) * n * 4);
        int64_t *y = malloc(sizeof(int64_t) * n);
        ecp_rng r;
        ecp_rng_seed(&r, 7 + split);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 4; j++)
                x[i * 4 + j] = (float)ecp_rng_normal(&r);
            y[i] = x[i * 4] + x[i * 4 + 1] > 0.5 ? 2 : (x[i * 4 + 2] > 0 ? 1 : 0);
        }
        char px[400], py[400];
        snprintf(px, sizeof px, "%s/%s_x.npy", dir, split ? "test" : "train");
        snprintf(py, sizeof py, "%s/%s_y.npy", dir, split ? "test" : "train");
        assert_int_equal(ecp_npy_write_f32(px, x, n, 4, &err), ECP_OK);
        assert_int_equal(ecp_npy_write_i64(py, y, n, &err), ECP_OK);
        free(x);
        free(y);
    }
    assert_int_equal(run("%s train --data %s --arch 4-16-3 --epochs 30 --batch 32 -o %s/m.onnx "
                         ">/dev/null", bin, dir, dir), 0);
    return 0;
}

static int teardown(void **state)
{
    tu_rmdir(dir);
    return 0;
}

#define SWEEP "%s sweep %s/m.onnx --data %s --methods ec,magnitude --sparsities 0.5,0.8 " \
              "--seeds 1 --calib 200 --csv %s/%s"

static void test_rows_and_rerun_skips(void **state)
{
    assert_int_equal(run(SWEEP " --plot %s/s.png >/dev/null", bin, dir, dir, dir, "a.csv", dir), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/a.csv", dir);
    char *first = slurp(p);
    assert_non_null(first);
    /* header + dense + 2 methods x 2 sparsities */
    assert_int_equal(count_lines(first), 6);
    assert_non_null(strstr(first, "method,sparsity,seed,schedule,test_loss,test_accuracy,seconds"));
    assert_non_null(strstr(first, "\nec,0.5,1,oneshot,"));
    assert_non_null(strstr(first, "\nec,0.8,1,oneshot,"));
    assert_non_null(strstr(first, "\nmagnitude,0.5,1,oneshot,"));
    assert_non_null(strstr(first, "\nmagnitude,0.8,1,oneshot,"));
    assert_non_null(strstr(first, "\ndense,0,0,-,"));
    /* a second run has nothing to do: the file is unchanged, timings included */
    assert_int_equal(run(SWEEP " >/dev/null", bin, dir, dir, dir, "a.csv"), 0);
    char *second = slurp(p);
    assert_string_equal(first, second);
    /* the plot is a PNG */
    snprintf(p, sizeof p, "%s/s.png", dir);
    char *png = slurp(p);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    free(first);
    free(second);
}

/* A run interrupted after its first row resumes and ends with the same results as an
 * uninterrupted one (timings aside). The CSV is rewritten atomically after every row, so the
 * state after a kill is exactly a prefix of rows; we recreate it by truncation. */
static void test_interrupted_run_resumes(void **state)
{
    assert_int_equal(run(SWEEP " >/dev/null", bin, dir, dir, dir, "full.csv"), 0);
    assert_int_equal(run("head -n 3 %s/full.csv > %s/part.csv", dir, dir), 0);
    assert_int_equal(run(SWEEP " >/dev/null", bin, dir, dir, dir, "part.csv"), 0);
    /* compare everything but the seconds column */
    assert_int_equal(run("cut -d, -f1-6 %s/full.csv > %s/f1 && cut -d, -f1-6 %s/part.csv > %s/f2 "
                         "&& cmp -s %s/f1 %s/f2", dir, dir, dir, dir, dir, dir), 0);
    /* and the row that survived the "kill" was kept, not recomputed */
    assert_int_equal(run("head -n 3 %s/full.csv | tail -n 1 > %s/r1 && head -n 3 %s/part.csv | "
                         "tail -n 1 > %s/r2 && cmp -s %s/r1 %s/r2", dir, dir, dir, dir, dir, dir),
                     0);
}

/* Regression rows have an empty accuracy field; a rerun must read them back and skip them. */
static void test_regression_rows_resume(void **state)
{
    char rdir[400], p[500];
    snprintf(rdir, sizeof rdir, "%s/reg", dir);
    assert_int_equal(mkdir(rdir, 0755), 0);
    ecp_error err;
    ecp_rng r;
    ecp_rng_seed(&r, 3);
    for (int split = 0; split < 2; split++) {
        int n = split ? 60 : 200;
        float *x = malloc(sizeof(float) * n * 3), *y = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 3; j++)
                x[i * 3 + j] = (float)ecp_rng_normal(&r);
            y[i] = x[i * 3] * x[i * 3 + 1] + 0.5f * x[i * 3 + 2];
        }
        snprintf(p, sizeof p, "%s/%s_x.npy", rdir, split ? "test" : "train");
        assert_int_equal(ecp_npy_write_f32(p, x, n, 3, &err), ECP_OK);
        snprintf(p, sizeof p, "%s/%s_y.npy", rdir, split ? "test" : "train");
        assert_int_equal(ecp_npy_write_f32(p, y, n, 1, &err), ECP_OK);
        free(x);
        free(y);
    }
    assert_int_equal(run("%s train --data %s --arch 3-12-1 --act tanh --epochs 20 --batch 32 "
                         "-o %s/m.onnx >/dev/null", bin, rdir, rdir), 0);
    const char *sw = "%s sweep %s/m.onnx --data %s --methods ec,magnitude --sparsities 0.5 "
                     "--seeds 1 --calib 100 --csv %s/r.csv >/dev/null";
    assert_int_equal(run(sw, bin, rdir, rdir, rdir), 0);
    snprintf(p, sizeof p, "%s/r.csv", rdir);
    char *first = slurp(p);
    assert_int_equal(count_lines(first), 4);
    assert_non_null(strstr(first, "\nec,0.5,1,oneshot,"));
    /* more methods in the same file: the old rows are read back (empty accuracy) and kept */
    assert_int_equal(run("%s sweep %s/m.onnx --data %s --methods ec,magnitude,wanda --sparsities "
                         "0.5 --seeds 1 --calib 100 --csv %s/r.csv >/dev/null", bin, rdir, rdir,
                         rdir), 0);
    char *second = slurp(p);
    assert_int_equal(count_lines(second), 5);
    assert_memory_equal(first, second, strlen(first));
    free(first);
    free(second);
}

static void test_bad_options(void **state)
{
    assert_int_equal(run("%s sweep %s/m.onnx --data %s --methods ec,bogus --csv %s/bad.csv "
                         "2>/dev/null", bin, dir, dir, dir), 2);
    assert_int_equal(run("%s sweep %s/m.onnx --data %s --sparsities 0.5,1.0 --csv %s/bad.csv "
                         "2>/dev/null", bin, dir, dir, dir), 2);
    assert_int_equal(run("%s sweep %s/m.onnx --data %s 2>/dev/null", bin, dir, dir), 2);
    char p[400];
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    assert_false(ecp_file_exists(p));
    /* a corrupt CSV is refused, not overwritten */
    tu_write(p, "garbage line\n", 13);
    assert_int_equal(run("%s sweep %s/m.onnx --data %s --methods ec --sparsities 0.5 --csv %s "
                         "2>/dev/null", bin, dir, dir, p), 1);
    char *s = slurp(p);
    assert_string_equal(s, "garbage line\n");
    free(s);
}

/* small-dense rows: the dense network of the pruned model's size, trained from scratch with the
 * settings the model file records (30 epochs, batch 32 here, not the sweep's defaults), exactly
 * as `ecprune train --arch-like` trains it; recorded with its architecture, resumed like any
 * other row, and read back from files written before the architecture column. */
static void test_small_dense_rows_resume(void **state)
{
#define SD "%s sweep %s/m.onnx --data %s --methods ec,small-dense --sparsities 0.5,0.8 " \
           "--seeds 2 --calib 200 --csv %s/%s 2>/dev/null >/dev/null"
    assert_int_equal(run(SD, bin, dir, dir, dir, "sd.csv"), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/sd.csv", dir);
    char *full = slurp(p);
    /* header + dense + (ec, small-dense) x 2 sparsities x 2 seeds */
    assert_int_equal(count_lines(full), 10);
    /* 4-16-3 has 112 weights + 19 biases; at 0.5 56 weights go (75 left): 4-9-3 has exactly
     * 75; at 0.8 round(89.6) = 90 go (41 left): 4-4-3 has 35 and 4-5-3 would have 43 */
    const char *want[] = {"\nsmall-dense,0.5,1,-,", "\nsmall-dense,0.8,1,-,",
                          "\nsmall-dense,0.5,2,-,", "\nsmall-dense,0.8,2,-,"};
    for (int i = 0; i < 4; i++) {
        const char *row = strstr(full, want[i]);
        assert_non_null(row);
        const char *eol = strchr(row + 1, '\n');
        const char *arch = i % 2 ? ",4-4-3\n" : ",4-9-3\n";
        assert_memory_equal(eol - strlen(arch) + 1, arch, strlen(arch));
    }
    assert_non_null(strstr(full, "\nec,0.5,1,oneshot,"));
    assert_non_null(strstr(full, ",4-16-3\n"));
    /* the same network as train --arch-like with the recorded settings gives */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "%s train --data %s --arch-like %s/m.onnx --sparsity 0.8 "
             "--epochs 30 --batch 32 --seed 2 -o %s/sd.onnx --json 2>/dev/null", bin, dir, dir, dir);
    FILE *f = popen(cmd, "r");
    char out[2000] = "";
    assert_non_null(fgets(out, sizeof out, f));
    assert_int_equal(pclose(f), 0);
    assert_non_null(strstr(out, "\"arch\":\"4-4-3\""));
    double tl = atof(strstr(out, "\"loss\":") + 7);
    const char *row = strstr(full, "\nsmall-dense,0.8,2,-,");
    double rl = atof(row + strlen("\nsmall-dense,0.8,2,-,"));
    assert_true(fabs(tl - rl) <= 1e-6 * fabs(tl));
    /* a rerun trains nothing: the file is unchanged, timings included */
    assert_int_equal(run(SD, bin, dir, dir, dir, "sd.csv"), 0);
    char *again = slurp(p);
    assert_string_equal(full, again);
    free(again);
    /* interrupted after the first small-dense row: the rest is trained again, to the same
     * results; the surviving row is kept as it was */
    assert_int_equal(run("head -n 7 %s/sd.csv > %s/sdp.csv", dir, dir), 0);
    assert_int_equal(run(SD, bin, dir, dir, dir, "sdp.csv"), 0);
    assert_int_equal(run("cut -d, -f1-6,8 %s/sd.csv > %s/f1 && cut -d, -f1-6,8 %s/sdp.csv > "
                         "%s/f2 && cmp -s %s/f1 %s/f2", dir, dir, dir, dir, dir, dir), 0);
    assert_int_equal(run("head -n 7 %s/sd.csv > %s/r1 && head -n 7 %s/sdp.csv > %s/r2 && "
                         "cmp -s %s/r1 %s/r2", dir, dir, dir, dir, dir, dir), 0);
    /* a file from before the architecture column resumes: its rows are kept, the missing
     * one is trained, and the rewritten file has the column */
    assert_int_equal(run("cut -d, -f1-7 %s/sd.csv | head -n 9 > %s/old.csv", dir, dir), 0);
    assert_int_equal(run(SD, bin, dir, dir, dir, "old.csv"), 0);
    snprintf(p, sizeof p, "%s/old.csv", dir);
    char *old = slurp(p);
    assert_int_equal(count_lines(old), 10);
    assert_non_null(strstr(old, "seconds,arch\n"));
    assert_int_equal(run("cut -d, -f1-6 %s/old.csv > %s/f3 && cut -d, -f1-6 %s/sd.csv > %s/f4 "
                         "&& cmp -s %s/f3 %s/f4", dir, dir, dir, dir, dir, dir), 0);
    free(old);
    free(full);
#undef SD
}

/* train --arch-like: one budget at a time, and a clear error when none fits */
static void test_arch_like_errors(void **state)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "%s train --data %s --arch-like %s/m.onnx --params 5 -o %s/x.onnx "
             "2>&1", bin, dir, dir, dir);
    FILE *f = popen(cmd, "r");
    char out[2000] = "";
    assert_non_null(fgets(out, sizeof out, f));
    assert_int_equal(WEXITSTATUS(pclose(f)), 2);
    /* one unit in the hidden layer of 4-16-3: 4-1-3 = 5 + 6 */
    assert_non_null(strstr(out, "parameter budget 5: even one unit per hidden layer needs 11"));
    assert_int_equal(run("%s train --data %s --arch-like %s/m.onnx --params 50 --sparsity 0.5 "
                         "-o %s/x.onnx 2>/dev/null", bin, dir, dir, dir), 2);
    assert_int_equal(run("%s train --data %s --arch-like %s/m.onnx -o %s/x.onnx 2>/dev/null",
                         bin, dir, dir, dir), 2);
    assert_int_equal(run("%s train --data %s --arch 4-3 --params 50 -o %s/x.onnx 2>/dev/null",
                         bin, dir, dir), 2);
    char p[400];
    snprintf(p, sizeof p, "%s/x.onnx", dir);
    assert_false(ecp_file_exists(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_rerun_skips),
        cmocka_unit_test(test_interrupted_run_resumes),
        cmocka_unit_test(test_regression_rows_resume),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_small_dense_rows_resume),
        cmocka_unit_test(test_arch_like_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
