/* bench helper: STREAM-like copy bandwidth (GB/s, counting read + write bytes as STREAM does),
 * best of 10 passes over two 128 MB arrays, far larger than any cache.
 * usage: stream_copy [MB] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 128, n = mb * (1 << 20) / sizeof(float);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b)
        return 1;
    for (size_t i = 0; i < n; i++)
        a[i] = (float)i, b[i] = 0;
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) /* a plain loop, as STREAM's Copy kernel */
            b[i] = a[i];
        double t = now() - t0;
        best = t < best ? t : best;
        a[rep] = b[n - 1 - (size_t)rep]; /* keep the copies observable */
    }
    printf("%.3f\n", 2.0 * n * sizeof(float) / best * 1e-9);
    free(a);
    free(b);
    return 0;
}
