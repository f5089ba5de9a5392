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
