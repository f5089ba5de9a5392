/* Allocation with overflow and budget checks: sizes in ecprune come from files, so count*size
 * is untrusted. */
#include "../internal.h"
#include <sys/mman.h>

/* Blocks of 512 KB and more are placed on 2 MB boundaries and offered to the kernel as
 * transparent huge pages. On a virtual machine the first touch of a 4 KB page can cost 20-30 us
 * (docs/PERF.md), so a 5 MB second-moment matrix cost more to fault in than to fill; in 2 MB
 * pages there are 512 times fewer faults, and fewer TLB misses after. Plain free() releases
 * them; where huge pages are off the advice is ignored. A block of 512 KB to 2 MB takes a whole
 * huge page: at most 1.5 MB more per block. From 512 KB rather than 1 MB because the many
 * sub-megabyte model arrays and copies then fault in whole too, for a few MB more peak RSS
 * (measured in docs/PERF.md, "Reconstruction pruning"). */
#define HUGE_BYTES ((size_t)2 << 20) /* the huge page */
#define HUGE_FROM ((size_t)512 << 10) /* the smallest block placed in one */

/* malloc, or for a large block aligned_alloc on a huge-page boundary with the advice. */
static void *block(size_t n, size_t align)
{
    if (n < HUGE_FROM)
        return align > 1 ? aligned_alloc(align, n) : malloc(n ? n : 1);
    size_t whole = (n + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
    void *p = aligned_alloc(HUGE_BYTES, whole);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, whole, MADV_HUGEPAGE);
#endif
    return p;
}

void *ecp_alloc(size_t count, size_t size, const char *what, ecp_error *err)
{
    if (size && count > SIZE_MAX / size) {
        ecp_fail(err, ECP_ERR_MEMORY, "%s: size overflows (%zu x %zu bytes)", what, count, size);
        return NULL;
    }
    size_t n = count * size;
    if (ecp_budget_check(n, what, err))
        return NULL;
    void *p = block(n, 1);
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
    size_t n = count * size;
    if (ecp_budget_check(n, what, err))
        return NULL;
    void *p = n < HUGE_FROM ? calloc(count ? count : 1, size ? size : 1) : block(n, 1);
    if (!p)
        ecp_fail(err, ECP_ERR_MEMORY, "%s: cannot allocate %zu bytes", what, n);
    else if (n >= HUGE_FROM)
        memset(p, 0, n);
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
    void *p = block(n, 64);
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

void *ecp_carve_take(ecp_carve *c, size_t count, size_t size)
{
    /* Sizes here come from models already checked against the memory budget: an overflow
     * saturates, and the block's own allocation then fails its budget check. */
    size_t n = size && count > (SIZE_MAX - 64) / size ? SIZE_MAX / 2
                                                       : (count * size + 63) / 64 * 64;
    void *p = c->base ? c->base + c->used : (void *)c;
    c->used = c->used > SIZE_MAX / 2 - n ? SIZE_MAX / 2 : c->used + n;
    return p;
}
