/* xoshiro256** seeded through splitmix64 (Blackman & Vigna): reproducible on every platform,
 * which is what makes "same seed -> bit-identical model" possible. */
#include "../internal.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ecp_rng_seed(ecp_rng *r, uint64_t seed)
{
    if (!r)
        return;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ecp_rng_u64(ecp_rng *r)
{
    if (!r)
        return 0;
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ecp_rng_uniform(ecp_rng *r) { return (double)(ecp_rng_u64(r) >> 11) * 0x1.0p-53; }

double ecp_rng_normal(ecp_rng *r)
{
    /* Box–Muller; u1 in (0, 1] so that log never sees 0. */
    double u1 = 1.0 - ecp_rng_uniform(r);
    double u2 = ecp_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ecp_rng_below(ecp_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* Rejection sampling: drop the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = ecp_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void ecp_rng_permutation(ecp_rng *r, int64_t *perm, int64_t n)
{
    if (!r || !perm)
        return;
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ecp_rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
