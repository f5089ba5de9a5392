/* Thread counts. OpenBLAS keeps one process-wide count; the library's calls that run BLAS set
 * the count their options ask for and put the caller's back when they return, so a call never
 * depends on, nor leaks, the process-wide setting. */
#include "../internal.h"
#include <cblas.h>
#include <unistd.h>

int ecp_online_cores(void)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    return nc > 0 ? (int)(nc > 256 ? 256 : nc) : 1;
}

int ecp_blas_threads_push(int threads)
{
    int prev = openblas_get_num_threads();
    int want = threads > 0 ? threads : ecp_online_cores();
    if (want != prev)
        openblas_set_num_threads(want);
    return prev;
}

void ecp_blas_threads_pop(int prev)
{
    if (prev > 0 && prev != openblas_get_num_threads())
        openblas_set_num_threads(prev);
}
