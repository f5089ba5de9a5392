/* Shared by the suites that run the command-line tool as a process: a scratch directory,
 * the binary, captured stdout and stderr, and the checks of an error run. Each suite that
 * includes it has its own copy of this state and sets g_dir, g_bin, g_out and g_err in its
 * setup. */
#ifndef ECP_CLIUTIL_H
#define ECP_CLIUTIL_H
#include "testutil.h"
#include <sys/wait.h>

static char g_dir[256]; /* datasets, models, captured output */
static char g_bin[1024];
static char g_out[600], g_err[600]; /* captured stdout and stderr of the last run */

/* ------------------------------------------------------------------ helpers */

/* DIR/name in a rotating pool: a pointer stays valid for the next 255 calls. */
static const char *P(const char *name)
{
    static char buf[256][600];
    static int k;
    char *b = buf[k++ & 255];
    snprintf(b, 600, "%s/%s", g_dir, name);
    return b;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

typedef struct {
    int status;
    char *out, *err;
} run_result;

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs `ecprune ARGS` with stdout and stderr captured (a 60 s timeout: a hang is a failure,
 * not a stuck suite). */
static run_result run(const char *fmt, ...)
{
    char args[4096], cmd[8000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s >'%s' 2>'%s' </dev/null", g_bin, args, g_out,
             g_err);
    int st = system(cmd);
    run_result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r.out = read_text(g_out);
    r.err = read_text(g_err);
    unlink(g_out);
    unlink(g_err);
    return r;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* An error run: the expected exit status, exactly one line on stderr that contains `needle`,
 * nothing on stdout. */
static void expect_error(run_result *r, int status, const char *needle, const char *what)
{
    if (r->status != status || count_lines(r->err) != 1 || !strstr(r->err, needle))
        print_error("%s: exit %d (want %d), stderr: [%s], want '%s'\n", what, r->status, status,
                    r->err, needle);
    assert_int_equal(r->status, status);
    assert_int_equal(count_lines(r->err), 1);
    assert_non_null(strstr(r->err, needle));
    assert_string_equal(r->out, "");
    run_free(r);
}

/* The binary ($ECPRUNE_BUILD/ecprune, default build/ecprune) and a fresh scratch directory with
 * the capture files; -1 (after a message naming the suite) when the binary is not built. */
static int tu_cli_setup(const char *suite)
{
    const char *b = getenv("ECPRUNE_BUILD");
    b = b && *b ? b : "build";
    char cwd[512] = "";
    if (b[0] != '/' && !getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(g_bin, sizeof g_bin, "%s%s%s/ecprune", cwd, cwd[0] ? "/" : "", b);
    if (access(g_bin, X_OK) != 0) {
        fprintf(stderr, "%s: %s is not built (set ECPRUNE_BUILD)\n", suite, g_bin);
        return -1;
    }
    tu_mkdtemp(g_dir, sizeof g_dir);
    snprintf(g_out, sizeof g_out, "%s/stdout.txt", g_dir);
    snprintf(g_err, sizeof g_err, "%s/stderr.txt", g_dir);
    return 0;
}

#endif
