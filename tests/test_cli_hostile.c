/* The command-line tool on hostile input, run as a process: outputs that are not regular files
 * (refused before the work starts, left as they were), --max-memory, files that would hang or
 * loop a reader, options beyond the model. Every error is one line on stderr with the exit
 * status for its kind, nothing on stdout, and no file left behind.
 * The binary is $ECPRUNE_BUILD/ecprune (default build/ecprune). */
#include "cliutil.h"

static void expect_fifo(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
}

static int setup(void **state)
{
    (void)state;
    if (tu_cli_setup("test_cli_hostile"))
        return -1;
    /* 40 rows of 3 features, 2 classes; and a 3-4-2 model for it. */
    float x[120];
    int64_t y[40];
    for (int i = 0; i < 120; i++)
        x[i] = (float)((i * 37) % 11) / 11.0f;
    for (int i = 0; i < 40; i++)
        y[i] = x[3 * i] > 0.5f;
    ecp_error err = {0};
    mkdir(P("d"), 0755);
    if (ecp_npy_write_f32(P("d/train_x.npy"), x, 40, 3, &err) ||
        ecp_npy_write_i64(P("d/train_y.npy"), y, 40, &err) ||
        ecp_npy_write_f32(P("d/test_x.npy"), x, 40, 3, &err) ||
        ecp_npy_write_i64(P("d/test_y.npy"), y, 40, &err))
        return -1;
    ecp_mlp *m = NULL;
    if (ecp_mlp_create_arch(&m, "3-4-2", ECP_ACT_RELU, &err))
        return -1;
    ecp_mlp_init(m, 1);
    ecp_status s = ecp_onnx_save(m, P("m.onnx"), &err);
    ecp_mlp_free(m);
    if (s || mkfifo(P("fifo"), 0600))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rmdir(g_dir);
    return 0;
}

/* -o onto a FIFO or a dangling link: refused before the data is even opened (the data given
 * here does not exist, and the message is about -o). */
static void test_outputs_checked_first(void **state)
{
    (void)state;
    int before = tu_count_files(g_dir);
    char want[800];
    snprintf(want, sizeof want, "ecprune train: -o %s: exists and is a FIFO", P("fifo"));
    run_result r = run("train --data /nonexistent --arch 3-4-2 -o '%s'", P("fifo"));
    expect_error(&r, 1, want, "train -o FIFO");
    r = run("prune '%s' --data /nonexistent --sparsity 0.5 -o '%s'", P("m.onnx"), P("fifo"));
    expect_error(&r, 1, "-o", "prune -o FIFO");
    r = run("eval '%s' --data /nonexistent --predictions '%s'", P("m.onnx"), P("fifo"));
    expect_error(&r, 1, "--predictions", "eval --predictions FIFO");
    r = run("sweep '%s' --data /nonexistent --csv /dev/zero", P("m.onnx"));
    expect_error(&r, 1, "--csv /dev/zero: exists and is a character device", "sweep --csv");
    r = run("sweep '%s' --data /nonexistent --csv '%s' --plot '%s'", P("m.onnx"), P("s.csv"),
            P("fifo"));
    expect_error(&r, 1, "--plot", "sweep --plot FIFO");
    assert_int_equal(symlink(P("nowhere/x"), P("dangling")), 0);
    r = run("train --data /nonexistent --arch 3-4-2 -o '%s'", P("dangling"));
    expect_error(&r, 1, "symbolic link to a missing file", "train -o dangling link");
    r = run("export-c '%s' -o '%s'", P("m.onnx"), P("fifo"));
    expect_error(&r, 1, "exists and is not a directory", "export-c -o FIFO");
    expect_fifo(P("fifo"));
    assert_int_equal(tu_count_files(g_dir), before + 1); /* the link */
    unlink(P("dangling"));
}

/* A link to a regular file is followed: train writes the file, the link stays a link. */
static void test_output_link_followed(void **state)
{
    (void)state;
    tu_write(P("real.onnx"), "old", 3);
    assert_int_equal(symlink("real.onnx", P("link.onnx")), 0);
    run_result r = run("train --data '%s' --arch 3-4-2 --epochs 1 -o '%s'", P("d"),
                       P("link.onnx"));
    assert_int_equal(r.status, 0);
    free(r.out);
    free(r.err);
    struct stat st;
    assert_int_equal(lstat(P("link.onnx"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    r = run("info '%s' --json", P("real.onnx"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"in\":3,\"out\":4"));
    free(r.out);
    free(r.err);
    unlink(P("link.onnx"));
    unlink(P("real.onnx"));
}

static void test_max_memory(void **state)
{
    (void)state;
    run_result r = run("info '%s' --max-memory 1K", P("m.onnx"));
    expect_error(&r, 1, "over the memory budget of 1.0 KiB (raise it with --max-memory",
                 "info under 1K");
    r = run("--max-memory=64M train --data '%s' --arch 3-16777216-2 -o '%s'", P("d"), P("t.onnx"));
    expect_error(&r, 1, "the model's parameters needs 480.0 MiB of memory, over the memory "
                 "budget of 64.0 MiB", "train a 2^24-wide layer under 64M");
    r = run("info '%s' --max-memory lots", P("m.onnx"));
    expect_error(&r, 2, "--max-memory 'lots': expected a size", "bad --max-memory");
    r = run("info '%s' --max-memory", P("m.onnx"));
    expect_error(&r, 2, "--max-memory needs a size", "--max-memory without a value");
    r = run("info '%s' --max-memory 1G", P("m.onnx"));
    assert_int_equal(r.status, 0);
    free(r.out);
    free(r.err);
    assert_int_equal(access(P("t.onnx"), F_OK), -1);
}

static void test_readers_do_not_hang(void **state)
{
    (void)state;
    char want[800];
    snprintf(want, sizeof want, "ecprune info: %s: cannot read: it is a FIFO", P("fifo"));
    run_result r = run("info '%s'", P("fifo"));
    expect_error(&r, 1, want, "info on a FIFO");
    r = run("eval /dev/zero --data '%s'", P("d"));
    expect_error(&r, 1, "/dev/zero: cannot read: it is a character device", "eval /dev/zero");
}

static void test_option_limits(void **state)
{
    (void)state;
    run_result r = run("prune '%s' --data '%s' --sparsity 0.5 --exclude-layer 5 -o '%s'",
                       P("m.onnx"), P("d"), P("p.onnx"));
    expect_error(&r, 2, "--exclude-layer: ", "--exclude-layer beyond the model");
    char list[1024] = "";
    for (int i = 0; i < 65; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s0.%02d", i ? "," : "", i);
    r = run("sweep '%s' --data '%s' --csv '%s' --sparsities %s", P("m.onnx"), P("d"), P("s.csv"),
            list);
    expect_error(&r, 2, "at most 64 entries", "65 sparsities");
    r = run("export-c '%s' -o '%s' --name stdint", P("m.onnx"), P("c"));
    expect_error(&r, 2, "--name 'stdint': not a usable C identifier", "export-c --name stdint");
    r = run("export-c '%s' -o '%s' --name _STDINT", P("m.onnx"), P("c"));
    expect_error(&r, 2, "--name '_STDINT'", "export-c --name _STDINT");
    assert_int_equal(access(P("p.onnx"), F_OK), -1);
    assert_int_equal(access(P("s.csv"), F_OK), -1);
    assert_int_equal(access(P("c"), F_OK), -1);
}

/* A CSV value beyond float range is named by file, line and column; nothing is evaluated. */
static void test_csv_range(void **state)
{
    (void)state;
    FILE *f = fopen(P("big.csv"), "w");
    assert_non_null(f);
    fprintf(f, "a,b,c,y\n");
    for (int i = 0; i < 20; i++)
        fprintf(f, "%d,1,2,%s\n", i, i == 7 ? "1e39" : "0.5");
    fclose(f);
    char want[800];
    snprintf(want, sizeof want, "ecprune eval: %s: line 9, column 4: 1e39 is beyond the float32 "
                                "range", P("big.csv"));
    run_result r = run("eval '%s' --data '%s'", P("m.onnx"), P("big.csv"));
    expect_error(&r, 1, want, "eval on a CSV with 1e39");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_checked_first),
        cmocka_unit_test(test_output_link_followed),
        cmocka_unit_test(test_max_memory),
        cmocka_unit_test(test_readers_do_not_hang),
        cmocka_unit_test(test_option_limits),
        cmocka_unit_test(test_csv_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
