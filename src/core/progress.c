/* A progress line on stderr for long work. Silent when stderr is not a terminal, so logs and
 * CI output stay clean; ECPRUNE_PROGRESS=1 forces it on (tests), =0 off. */
#include "../internal.h"
#include <time.h>
#include <unistd.h>

struct ecp_progress {
    char label[64];
    int64_t total;
    double t0, last;
    int on;
    int drawn;
    ecp_progress_fn fn;
    void *ctx;
};

double ecp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ecp_status ecp_progress_create(ecp_progress **out, const char *label, int64_t total, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    ecp_progress *p = ecp_zalloc(1, sizeof *p, "progress", err);
    if (!p)
        return ECP_ERR_MEMORY;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->t0 = ecp_now();
    p->last = -1;
    const char *env = getenv("ECPRUNE_PROGRESS");
    p->on = env ? atoi(env) != 0 : isatty(STDERR_FILENO);
    *out = p;
    return ECP_OK;
}

void ecp_progress_set_callback(ecp_progress *p, ecp_progress_fn fn, void *ctx)
{
    if (!p)
        return;
    p->fn = fn;
    p->ctx = ctx;
}

void ecp_progress_update(ecp_progress *p, int64_t done, const char *extra)
{
    if (!p || (!p->on && !p->fn))
        return;
    double now = ecp_now();
    /* Redraw at most 10 times a second: a terminal write (or a call into an interpreter) per
     * batch would cost real time. */
    if (done < p->total && now - p->last < 0.1)
        return;
    p->last = now;
    if (p->fn) {
        p->fn(p->ctx, p->label, done, p->total, extra);
        return;
    }
    double el = now - p->t0;
    double frac = p->total > 0 ? (double)done / (double)p->total : 0;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    fprintf(stderr, "\r\033[K%s %3.0f%% %s  elapsed %.0fs  ETA %.0fs", p->label, 100 * frac,
            extra ? extra : "", el, eta);
    fflush(stderr);
    p->drawn = 1;
}

void ecp_progress_finish(ecp_progress *p)
{
    if (p && !p->fn && p->on && p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->drawn = 0;
    }
}

void ecp_progress_free(ecp_progress *p)
{
    if (!p)
        return;
    ecp_progress_finish(p);
    free(p);
}
