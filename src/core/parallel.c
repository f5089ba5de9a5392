/* The library's one thread pool: workers started once by the object that runs many parallel
 * jobs (an engine, a training workspace, a statistics pass), sleeping between jobs, and joined
 * when that object is freed. No pool is global, so two objects never wait for each other.
 *
 * A job is n chunks fn(arg, 0..n-1). Every thread, the caller included, claims chunks with a
 * compare-and-swap on (job number, next chunk): a worker that wakes late takes fewer chunks, and
 * one that wakes after the job is over takes none (its job number is stale). That matters
 * because OpenBLAS's own workers spin for a while after each sgemm and may hold a core when a
 * job starts.
 *
 * Between jobs a worker first polls the job number for 20 µs (jobs come in bursts: one per
 * layer of a forward pass), then sleeps on a condition variable, so an idle pool costs
 * no CPU and does not take the cores from OpenBLAS during the sgemm phases of a training step.
 * The caller waits for the last chunk yielding, not sleeping: the chunks are short. */
#include "../internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

/* How long a worker polls for the next job before it sleeps. Bounded by the clock, not by a
 * count of pause instructions: under a hypervisor a pause costs 100-270 ns here (a VM exit), not
 * the few ns of bare metal, so 2000 of them would burn 0.3 ms of a core after every job. */
#define POLL_NS 20000

struct ecp_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int threads; /* the caller + started workers */
    int started;
    int quit;                /* under mu */
    _Atomic uint32_t gen;    /* job number: written under mu, polled without it */
    void (*fn)(void *, int); /* the current job, under mu */
    void *arg;
    int n;
    _Atomic uint64_t next; /* gen << 32 | next chunk */
    _Atomic int done;      /* chunks completed in the current job */
    pthread_t th[];
};

static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void claim_chunks(ecp_pool *p, uint32_t gen, void (*fn)(void *, int), void *arg, int n)
{
    for (;;) {
        uint64_t v = atomic_load(&p->next);
        if ((uint32_t)(v >> 32) != gen || (int)(uint32_t)v >= n)
            return;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1))
            continue;
        fn(arg, (int)(uint32_t)v);
        atomic_fetch_add(&p->done, 1);
    }
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Returns once the job number is no longer seen, or POLL_NS have passed. */
static void poll_job(ecp_pool *p, uint32_t seen)
{
    const int64_t end = now_ns() + POLL_NS;
    while (atomic_load(&p->gen) == seen) {
        for (int i = 0; i < 16 && atomic_load(&p->gen) == seen; i++)
            cpu_pause();
        if (now_ns() > end)
            return;
    }
}

static void *worker(void *arg)
{
    ecp_pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        poll_job(p, seen);
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->gen) == seen && !p->quit)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = atomic_load(&p->gen);
        void (*fn)(void *, int) = p->fn;
        void *fa = p->arg;
        int n = p->n;
        pthread_mutex_unlock(&p->mu);
        claim_chunks(p, seen, fn, fa, n);
    }
}

ecp_status ecp_pool_create(int threads, ecp_pool **out, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    if (threads < 1 || threads > ECP_POOL_MAX_THREADS)
        return ecp_fail(err, ECP_ERR_ARG, "threads %d: must be in [1, %d]", threads,
                        ECP_POOL_MAX_THREADS);
    ecp_pool *p = ecp_zalloc(1, sizeof *p + (size_t)(threads - 1) * sizeof(pthread_t),
                             "thread pool", err);
    if (!p)
        return ECP_ERR_MEMORY;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return ecp_fail(err, ECP_ERR_MEMORY, "thread pool: cannot create a mutex");
    }
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return ecp_fail(err, ECP_ERR_MEMORY, "thread pool: cannot create a condition variable");
    }
    /* A worker that cannot be started leaves its share to the others (at worst, the caller):
     * fewer threads, same results. */
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p))
            break;
        p->started++;
    }
    p->threads = p->started + 1;
    *out = p;
    return ECP_OK;
}

void ecp_pool_free(ecp_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int ecp_pool_threads(const ecp_pool *p) { return p ? p->threads : 1; }

void ecp_pool_run(ecp_pool *p, void (*fn)(void *arg, int chunk), void *arg, int n)
{
    if (n <= 0)
        return;
    if (!p || !p->started || n == 1) {
        for (int c = 0; c < n; c++)
            fn(arg, c);
        return;
    }
    pthread_mutex_lock(&p->mu);
    uint32_t gen = atomic_load(&p->gen) + 1;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->done, 0);
    atomic_store(&p->next, (uint64_t)gen << 32);
    atomic_store(&p->gen, gen);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    claim_chunks(p, gen, fn, arg, n);
    while (atomic_load(&p->done) < n)
        sched_yield();
}
