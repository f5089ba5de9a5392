/* The k smallest of an array without sorting it: pruning keeps or removes a fraction of
 * hundreds of thousands of candidates, and only which ones matters, not their order. */
#include "../internal.h"

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    unsigned char t[64];
    memcpy(t, a, size);
    memcpy(a, b, size);
    memcpy(b, t, size);
}

/* Quickselect with a median-of-three pivot: linear on average. cmp must be a total order (break
 * ties), so that the set moved to the front is the same as a sort's first k. */
void ecp_nth_smallest(void *base, size_t n, size_t size, size_t k,
                      int (*cmp)(const void *, const void *))
{
    unsigned char *a = base;
#define AT(i) (a + (size_t)(i) * size)
    if (size > 64 || n < 2 || k == 0 || k >= n)
        return;
    size_t lo = 0, hi = n - 1;
    while (lo < hi && k > lo && k <= hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(AT(mid), AT(lo)) < 0) swap_bytes(AT(mid), AT(lo), size);
        if (cmp(AT(hi), AT(lo)) < 0) swap_bytes(AT(hi), AT(lo), size);
        if (cmp(AT(hi), AT(mid)) < 0) swap_bytes(AT(hi), AT(mid), size);
        swap_bytes(AT(mid), AT(hi), size); /* the pivot waits at hi */
        size_t store = lo;
        for (size_t i = lo; i < hi; i++)
            if (cmp(AT(i), AT(hi)) < 0)
                swap_bytes(AT(i), AT(store++), size);
        swap_bytes(AT(store), AT(hi), size);
        if (store == k)
            break;
        if (store < k)
            lo = store + 1;
        else
            hi = store - 1;
    }
#undef AT
}
