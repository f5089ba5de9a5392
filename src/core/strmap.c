/* A string -> index map (open addressing, linear probing) for name lookups in files: a model
 * with N values would otherwise cost N^2 string compares. The hash is SipHash-1-3 under a key
 * drawn per map, so that a crafted file cannot choose names that all collide. */
#include "../internal.h"
#include <sys/random.h>

static uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND                                                                                 \
    do {                                                                                         \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                            \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                                 \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                                 \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                            \
    } while (0)

static uint64_t siphash13(const uint64_t k[2], const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int j = 0; j < 8; j++)
            m |= (uint64_t)in[i + j] << (8 * j);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (int j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

ecp_status ecp_strmap_init(ecp_strmap *m, size_t n, const char *what, ecp_error *err)
{
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    m->key = ecp_zalloc(cap, sizeof *m->key, what, err);
    m->val = ecp_alloc(cap, sizeof *m->val, what, err);
    if (!m->key || !m->val) {
        ecp_strmap_release(m);
        return ECP_ERR_MEMORY;
    }
    m->cap = cap;
    m->max = n;
    if (getrandom(m->seed, sizeof m->seed, GRND_NONBLOCK) != (ssize_t)sizeof m->seed) {
        /* No entropy yet (early boot): the map still works, only without flooding resistance. */
        m->seed[0] = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL;
        m->seed[1] = (uint64_t)(uintptr_t)m->key;
    }
    return ECP_OK;
}

void ecp_strmap_release(ecp_strmap *m)
{
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t slot_of(const ecp_strmap *m, const char *key)
{
    size_t i = (size_t)siphash13(m->seed, (const unsigned char *)key, strlen(key)) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], key))
        i = (i + 1) & (m->cap - 1);
    return i;
}

long ecp_strmap_get(const ecp_strmap *m, const char *key)
{
    if (!key || !m->cap)
        return -1;
    size_t i = slot_of(m, key);
    return m->key[i] ? m->val[i] : -1;
}

long ecp_strmap_put(ecp_strmap *m, const char *key, long val)
{
    if (!key)
        return -1;
    size_t i = slot_of(m, key);
    if (m->key[i])
        return m->val[i];
    if (m->n >= m->max) /* sized for `n` keys at init: never fuller than half */
        return -1;
    m->key[i] = key;
    m->val[i] = val;
    m->n++;
    return val;
}
