/* The memory budget: every allocation whose size comes from a file or an option asks here
 * first, so that a small file cannot make the process ask the kernel for more than the machine
 * can give (Linux overcommits: the failure would be the OOM killer, not a NULL from malloc).
 * The limit is one process-wide setting, like OpenBLAS's thread count: it describes the machine
 * and the caller's wishes, not any one model or dataset. */
#include "../internal.h"
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

/* 0 = not set: the default is computed from the machine on first use. */
static _Atomic uint64_t max_memory;

static uint64_t default_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : (uint64_t)4 << 30;
    uint64_t b = phys / 100 * ECP_BUDGET_DEFAULT_PERCENT;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < b)
        b = rl.rlim_cur / 2;
    return b;
}

void ecp_set_max_memory(uint64_t bytes) { atomic_store(&max_memory, bytes); }

uint64_t ecp_max_memory(void)
{
    /* The default is computed once: ecp_alloc asks on every allocation. */
    static _Atomic uint64_t machine;
    uint64_t b = atomic_load(&max_memory);
    if (b)
        return b;
    if (!(b = atomic_load(&machine)))
        atomic_store(&machine, b = default_budget());
    return b;
}

void ecp_format_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    double v = (double)n;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

ecp_status ecp_budget_check(uint64_t bytes, const char *what, ecp_error *err)
{
    uint64_t limit = ecp_max_memory();
    if (bytes <= limit)
        return ECP_OK;
    char need[32], have[32];
    ecp_format_bytes(bytes, need, sizeof need);
    ecp_format_bytes(limit, have, sizeof have);
    return ecp_fail(err, ECP_ERR_MEMORY,
                    "%s needs %s of memory, over the memory budget of %s (raise it with "
                    "--max-memory, or ecp_set_max_memory in the library)",
                    what, need, have);
}

ecp_status ecp_parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return ECP_ERR_ARG;
    double v = strtod(s, &end);
    if (end == s || !(v > 0))
        return ECP_ERR_ARG;
    double mult = 1;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return ECP_ERR_ARG;
    }
    if (*end == 'i' && mult > 1)
        end++;
    if ((*end == 'B' || *end == 'b') && end[1] == 0)
        end++;
    if (*end || v * mult >= 1.8e19 || v * mult < 1)
        return ECP_ERR_ARG;
    *out = (uint64_t)(v * mult);
    return ECP_OK;
}
