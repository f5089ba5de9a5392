/* Allocation with overflow and budget checks: sizes in ecprune come from files, so count*size
 * is untrusted. */
#include "../internal.h"

void *ecp_alloc(size_t count, size_t size, const char *what, ecp_error *err)
{
    if (size && count > SIZE_MAX / size) {
        ecp_fail(err, ECP_ERR_MEMORY, "%s: size overflows (%zu x %zu bytes)", what, count, size);
        return NULL;
    }
    size_t n = count * size;
    if (ecp_budget_check(n, what, err))
        return NULL;
    void *p = malloc(n ? n : 1);
    if (!p)
        ecp_fail(err, ECP_ERR_MEMORY, "%s: cannot allocate %zu bytes", what, n);
    return p;
}

void *ecp_zalloc(size_t count, size_t size, const char *what, ecp_error *err)
{
    if (size && count > SIZE_MAX / size) {
        ecp_fail(err, ECP_ERR_MEMORY, "%s: size overflows (%zu x %zu bytes)", what, count, size);
        return NULL;
    }
    if (ecp_budget_check((uint64_t)count * size, what, err))
        return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        ecp_fail(err, ECP_ERR_MEMORY, "%s: cannot allocate %zu bytes", what, count * size);
    return p;
}

/* Kernels read whole vectors and pad rows to 64-byte lines: a vector tile that straddles lines
 * nearly halves SpMM's speed (docs/PERF.md), and aligned_alloc wants a size that is a multiple
 * of the alignment. */
static void *aligned(size_t count, size_t size, int zero, const char *what, ecp_error *err)
{
    if (size && count > (SIZE_MAX - 64) / size) {
        ecp_fail(err, ECP_ERR_MEMORY, "%s: size overflows (%zu x %zu bytes)", what, count, size);
        return NULL;
    }
    size_t n = (count * size + 63) / 64 * 64;
    if (!n)
        n = 64;
    if (ecp_budget_check(n, what, err))
        return NULL;
    void *p = aligned_alloc(64, n);
    if (!p)
        ecp_fail(err, ECP_ERR_MEMORY, "%s: cannot allocate %zu bytes", what, n);
    else if (zero)
        memset(p, 0, n);
    return p;
}

void *ecp_aligned_alloc(size_t count, size_t size, const char *what, ecp_error *err)
{
    return aligned(count, size, 0, what, err);
}

void *ecp_aligned_zalloc(size_t count, size_t size, const char *what, ecp_error *err)
{
    return aligned(count, size, 1, what, err);
}
