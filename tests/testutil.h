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

#endif
