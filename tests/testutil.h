/* Shared by the cmocka suites: includes, temporary directories, tolerant comparisons. */
#ifndef ECP_TESTUTIL_H
#define ECP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ecprune.h"
#include "internal.h"

/* A fresh directory under /tmp; removed by tu_rmdir (rm -rf). */
static inline void tu_mkdtemp(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/ecp-test-XXXXXX");
    assert_non_null(mkdtemp(buf));
}

static inline void tu_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A suite's scratch directory: made by tu_dir_setup and removed by tu_dir_teardown (cmocka
 * group fixtures); tu_path(name) is a path in it, its last 64 results valid at once. */
static char tu_dir[256];

static inline int tu_dir_setup(void **state)
{
    (void)state;
    tu_mkdtemp(tu_dir, sizeof tu_dir);
    return 0;
}

static inline int tu_dir_teardown(void **state)
{
    (void)state;
    tu_rmdir(tu_dir);
    return 0;
}

static inline const char *tu_path(const char *name)
{
    static char buf[64][600];
    static int k;
    char *b = buf[k++ & 63];
    snprintf(b, 600, "%s/%s", tu_dir, name);
    return b;
}

static inline void tu_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Number of directory entries other than . and .. (to check that no partial file was left). */
static inline int tu_count_files(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* |a - b| <= atol + rtol |b| */
#define assert_close(a, b, rtol, atol)                                                          \
    do {                                                                                        \
        double a_ = (double)(a), b_ = (double)(b);                                              \
        if (!(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_))) {                                     \
            print_error("%s:%d: %s = %.10g, expected %s = %.10g (rtol %g, atol %g)\n",          \
                        __FILE__, __LINE__, #a, a_, #b, b_, (double)(rtol), (double)(atol));    \
            fail();                                                                             \
        }                                                                                       \
    } while (0)


/* 1 when two models of the same architecture hold the same weights, biases and masks, bit for
 * bit. */
static inline int tu_same_params(const ecp_mlp *a, const ecp_mlp *b)
{
    for (int l = 0; l < ecp_mlp_n_layers(a); l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(a, l) * ecp_mlp_layer_out(a, l);
        if (memcmp(ecp_mlp_weights_c(a, l), ecp_mlp_weights_c(b, l), nw * sizeof(float)) ||
            memcmp(ecp_mlp_bias_c(a, l), ecp_mlp_bias_c(b, l),
                   (size_t)ecp_mlp_layer_out(a, l) * sizeof(float)) ||
            memcmp(ecp_mlp_pruned_c(a, l), ecp_mlp_pruned_c(b, l), nw))
            return 0;
    }
    return 1;
}


/* Opens the mnist digits; when they are absent (ECP_ERR_IO: scripts/setup.sh was not run) the
 * calling test is skipped with a message instead of failing. Any other error fails. */
static inline void tu_open_mnist_or_skip(ecp_dataset **train, ecp_dataset **test)
{
    ecp_error err = {0};
    ecp_status s = ecp_data_open("mnist", NULL, train, test, &err);
    if (s == ECP_ERR_IO) {
        print_message("skipped: %s\n", err.msg);
        skip();
    }
    if (s)
        fail_msg("mnist: %s", err.msg);
}

/* A network of the given architecture (hidden activation act), initialised with seed. */
static inline ecp_mlp *tu_make_net(const char *arch, ecp_act act, uint64_t seed)
{
    ecp_mlp *m;
    ecp_error err;
    assert_int_equal(ecp_mlp_create_arch(&m, arch, act, &err), ECP_OK);
    ecp_mlp_init(m, seed);
    return m;
}

/* Regression data, x ~ U(-1, 1) + offset (to exercise the shift of the moments), y ~ N(0, 1). */
static inline ecp_dataset *tu_make_data(int N, int n_in, int K, uint64_t seed, float offset)
{
    ecp_dataset *d;
    ecp_error err;
    assert_int_equal(ecp_dataset_create(&d, N, n_in, K, 0, &err), ECP_OK);
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)N * n_in; i++)
        d->x[i] = offset + (float)(2 * ecp_rng_uniform(&r) - 1);
    for (size_t i = 0; i < (size_t)N * K; i++)
        d->y[i] = (float)ecp_rng_normal(&r);
    return d;
}

/* Pruned weights, checking that each is exactly 0. */
static inline int64_t tu_count_zero_pruned(const ecp_mlp *m)
{
    int64_t c = 0;
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        const float *W = ecp_mlp_weights_c(m, l);
        const uint8_t *p = ecp_mlp_pruned_c(m, l);
        for (size_t k = 0; k < nw; k++) {
            if (p[k])
                assert_true(W[k] == 0.0f);
            c += p[k];
        }
    }
    return c;
}

#endif
