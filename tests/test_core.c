/* The core: atomic writes, the RNG streams against an independent xoshiro256** + splitmix64,
 * allocation overflow and alignment, the thread pool, name suggestions, thread counts, the
 * version. */
#include "testutil.h"
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

/* ------------------------------------------------------------------ atomic writes */

static void test_wfile_commit_and_abort(void **state)
{
    (void)state;
    char dir[64], path[128], link[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    ecp_wfile wf;
    ecp_error err;
    /* Nothing at the target until commit; then exactly what was written. */
    assert_int_equal(ecp_wfile_open(&wf, path, &err), ECP_OK);
    assert_int_equal(ecp_wfile_write(&wf, "hello", 5, &err), ECP_OK);
    assert_false(ecp_file_exists(path));
    assert_int_equal(tu_count_files(dir), 1); /* the temporary */
    assert_int_equal(ecp_wfile_commit(&wf, &err), ECP_OK);
    unsigned char *buf;
    size_t len;
    assert_int_equal(ecp_read_file(path, &buf, &len, 100, &err), ECP_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    free(buf);
    /* An aborted rewrite leaves the old file and no temporary. */
    assert_int_equal(ecp_wfile_open(&wf, path, &err), ECP_OK);
    assert_int_equal(ecp_wfile_write(&wf, "XY", 2, &err), ECP_OK);
    ecp_wfile_abort(&wf);
    assert_int_equal(tu_count_files(dir), 1);
    assert_int_equal(ecp_read_file(path, &buf, &len, 100, &err), ECP_OK);
    assert_int_equal(len, 5);
    free(buf);
    /* A link to a regular file is followed: the file is replaced, the link stays; never over
     * something that is not a regular file (a directory, a link to nothing). */
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(ecp_wfile_open(&wf, link, &err), ECP_OK);
    assert_int_equal(ecp_wfile_write(&wf, "ab", 2, &err), ECP_OK);
    assert_int_equal(ecp_wfile_commit(&wf, &err), ECP_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(ecp_read_file(path, &buf, &len, 100, &err), ECP_OK);
    assert_int_equal(len, 2);
    free(buf);
    snprintf(link, sizeof link, "%s/dangling", dir);
    assert_int_equal(symlink("/nonexistent/ecprune-test", link), 0);
    assert_int_not_equal(ecp_wfile_open(&wf, link, &err), ECP_OK);
    assert_int_not_equal(ecp_wfile_open(&wf, dir, &err), ECP_OK);
    snprintf(path, sizeof path, "%s/no/such/dir/x", dir);
    assert_int_equal(ecp_wfile_open(&wf, path, &err), ECP_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------ rng */

/* The published algorithms, written again from their descriptions. */
static uint64_t ref_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t ref_next(uint64_t s[4])
{
    uint64_t r = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ref_rotl(s[3], 45);
    return r;
}

static void test_rng_streams(void **state)
{
    (void)state;
    /* splitmix64 from 0 starts with 0xe220a8397b1dcdaf (Vigna's reference output). */
    uint64_t x = 0;
    assert_true(ref_splitmix(&x) == 0xe220a8397b1dcdafULL);
    for (uint64_t seed = 0; seed < 3; seed++) {
        uint64_t s[4], sx = seed;
        for (int i = 0; i < 4; i++)
            s[i] = ref_splitmix(&sx);
        ecp_rng r;
        ecp_rng_seed(&r, seed);
        for (int i = 0; i < 1000; i++)
            assert_true(ecp_rng_u64(&r) == ref_next(s));
    }
    /* uniform in [0, 1) with the right mean; below(n) uniform (chi-square, 9 dof). */
    ecp_rng r;
    ecp_rng_seed(&r, 5);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = ecp_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        sum += u;
    }
    assert_close(sum / 100000, 0.5, 0, 0.005);
    int count[10] = {0};
    for (int i = 0; i < 100000; i++)
        count[ecp_rng_below(&r, 10)]++;
    double chi2 = 0;
    for (int k = 0; k < 10; k++)
        chi2 += (count[k] - 10000.0) * (count[k] - 10000.0) / 10000.0;
    assert_true(chi2 < 27.9); /* p = 0.001 */
    /* A permutation holds every index once. */
    int64_t perm[257];
    ecp_rng_permutation(&r, perm, 257);
    char seen[257] = {0};
    for (int i = 0; i < 257; i++) {
        assert_true(perm[i] >= 0 && perm[i] < 257 && !seen[perm[i]]);
        seen[perm[i]] = 1;
    }
}

/* ------------------------------------------------------------------ allocation, names, threads */

static void test_alloc_overflow(void **state)
{
    (void)state;
    ecp_error err = {0};
    assert_null(ecp_alloc(SIZE_MAX / 2, 4, "big thing", &err));
    assert_int_equal(err.code, ECP_ERR_MEMORY);
    assert_non_null(strstr(err.msg, "big thing"));
    assert_null(ecp_zalloc((size_t)1 << 62, 8, "other", &err));
    assert_non_null(strstr(err.msg, "overflows"));
    void *p = ecp_alloc(0, 8, "empty", &err); /* a zero-size request is a valid pointer */
    assert_non_null(p);
    free(p);
}

static void test_closest_name(void **state)
{
    (void)state;
    static const char *const names[] = {"train", "eval", "prune", "sweep", "export-c"};
    assert_string_equal(ecp_closest_name("trian", names, 5), "train");
    assert_string_equal(ecp_closest_name("prnue", names, 5), "prune");
    assert_string_equal(ecp_closest_name("exportc", names, 5), "export-c");
    assert_string_equal(ecp_closest_name("evl", names, 5), "eval");
    assert_null(ecp_closest_name("xyzzy", names, 5));
    assert_null(ecp_closest_name("ab", names, 5));
    assert_null(ecp_closest_name(NULL, names, 5));
}

static void test_blas_threads_push_pop(void **state)
{
    (void)state;
    openblas_set_num_threads(1);
    int prev = ecp_blas_threads_push(2);
    assert_int_equal(prev, 1);
    assert_int_equal(openblas_get_num_threads(), 2);
    ecp_blas_threads_pop(prev);
    assert_int_equal(openblas_get_num_threads(), 1);
    prev = ecp_blas_threads_push(0); /* every online core */
    assert_true(openblas_get_num_threads() >= 1 &&
                openblas_get_num_threads() <= ecp_online_cores());
    ecp_blas_threads_pop(prev);
    assert_int_equal(openblas_get_num_threads(), 1);
    assert_string_equal(ecp_version(), ECP_VERSION);
}

/* ------------------------------------------------------------------ aligned allocation */

static void test_aligned_alloc(void **state)
{
    (void)state;
    ecp_error err;
    size_t sizes[] = {0, 1, 15, 16, 17, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        float *p = ecp_aligned_zalloc(sizes[i], sizeof *p, "test buffer", &err);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        /* zeroed up to the rounded size: kernels read whole vectors past the last float */
        size_t whole = (sizes[i] * sizeof *p + 63) / 64 * 64 / sizeof *p;
        for (size_t k = 0; k < (whole ? whole : 16); k++)
            assert_true(p[k] == 0.0f);
        free(p);
    }
    double *d = ecp_aligned_alloc(3, sizeof *d, "test buffer", &err);
    assert_non_null(d);
    assert_int_equal((uintptr_t)d % 64, 0);
    free(d);
    assert_null(ecp_aligned_alloc(SIZE_MAX / 4, 8, "huge buffer", &err));
    assert_int_equal(err.code, ECP_ERR_MEMORY);
    assert_non_null(strstr(err.msg, "huge buffer: size overflows"));
    assert_null(ecp_aligned_zalloc(SIZE_MAX - 10, 1, "huge buffer", &err));
    assert_int_equal(err.code, ECP_ERR_MEMORY);
}

/* ecp_carve: the sizing pass adds up whole 64-byte lines; the second pass hands out the same
 * layout from the block: aligned, disjoint, in order, filling it exactly. */
static void test_carve(void **state)
{
    (void)state;
    size_t counts[] = {1, 16, 17, 0, 1000, 3};
    size_t sizes[] = {4, 4, 4, 8, 8, 1};
    enum { N = sizeof counts / sizeof *counts };
    ecp_carve c = {0};
    for (int i = 0; i < N; i++)
        assert_non_null(ecp_carve_take(&c, counts[i], sizes[i]));
    assert_int_equal(c.used, 64 + 64 + 128 + 0 + 8000 + 64);
    ecp_error err;
    char *block = ecp_aligned_zalloc(c.used, 1, "test carve", &err);
    assert_non_null(block);
    size_t total = c.used;
    c = (ecp_carve){.base = block};
    char *prev_end = block;
    for (int i = 0; i < N; i++) {
        char *p = ecp_carve_take(&c, counts[i], sizes[i]);
        assert_int_equal((uintptr_t)p % 64, 0);
        assert_ptr_equal(p, prev_end); /* next to the previous piece: no overlap, no gap */
        memset(p, 0xab, counts[i] * sizes[i]); /* ASan: inside the block */
        prev_end = p + (counts[i] * sizes[i] + 63) / 64 * 64;
    }
    assert_int_equal(c.used, total);
    free(block);
    /* a size that overflows saturates the sum, so the block's allocation then fails */
    c = (ecp_carve){0};
    ecp_carve_take(&c, SIZE_MAX / 2, 4);
    assert_null(ecp_aligned_alloc(c.used, 1, "test carve", &err));
    assert_int_equal(err.code, ECP_ERR_MEMORY);
}

/* ------------------------------------------------------------------ transpose */

/* ecp_transpose against the element-by-element definition, on shapes that mix whole 16 x 16
 * blocks, partial blocks and edges, with padded strides: set and add, and the padding of dst
 * (columns past rows) left alone. */
static void test_transpose(void **state)
{
    (void)state;
    const int shapes[][2] = {{0, 5}, {1, 1}, {1, 40}, {16, 16}, {17, 15}, {32, 48},
                             {33, 65}, {256, 784}, {10, 256}, {50, 3}};
    ecp_rng r;
    ecp_rng_seed(&r, 7);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int rows = shapes[s][0], cols = shapes[s][1];
        const size_t lds = (size_t)cols + 3, ldd = (size_t)rows + 5;
        float *src = malloc(sizeof(float) * ((size_t)rows * lds + 1));
        float *dst = malloc(sizeof(float) * ((size_t)cols * ldd + 1));
        float *want = malloc(sizeof(float) * ((size_t)cols * ldd + 1));
        assert_true(src && dst && want);
        for (size_t i = 0; i < (size_t)rows * lds; i++)
            src[i] = (float)ecp_rng_uniform(&r) - 0.5f;
        for (int add = 0; add <= 1; add++) {
            for (size_t i = 0; i < (size_t)cols * ldd; i++)
                dst[i] = want[i] = (float)i;
            for (int j = 0; j < cols; j++)
                for (int i = 0; i < rows; i++)
                    want[(size_t)j * ldd + i] = (add ? want[(size_t)j * ldd + i] : 0.0f) +
                                                src[(size_t)i * lds + j];
            ecp_transpose(src, rows, cols, lds, dst, ldd, add);
            assert_memory_equal(dst, want, sizeof(float) * (size_t)cols * ldd);
        }
        free(src);
        free(dst);
        free(want);
    }
}

/* ------------------------------------------------------------------ thread pool */

typedef struct {
    _Atomic int *hits; /* hits[c]: times chunk c ran */
    _Atomic int calls;
    pthread_mutex_t mu; /* guards the list of the distinct threads that ran a chunk */
    pthread_t callers[64];
    int n_callers;
} pool_probe;

static void probe_chunk(void *arg, int c)
{
    pool_probe *p = arg;
    atomic_fetch_add(&p->hits[c], 1);
    atomic_fetch_add(&p->calls, 1);
    pthread_t me = pthread_self();
    pthread_mutex_lock(&p->mu);
    int seen = 0;
    for (int i = 0; i < p->n_callers; i++)
        seen |= pthread_equal(p->callers[i], me);
    if (!seen && p->n_callers < 64)
        p->callers[p->n_callers++] = me;
    pthread_mutex_unlock(&p->mu);
    for (volatile int spin = 0; spin < 2000; spin++) /* some work, so chunks overlap */
        ;
}

/* Waits (up to ~10 s, so that a broken pool fails instead of hanging) until both chunks have
 * started: only possible if two threads run them. */
static void rendezvous_chunk(void *arg, int c)
{
    _Atomic int *started = arg;
    atomic_fetch_add(started, 1);
    for (int i = 0; i < 10000 && atomic_load(started) < 2; i++)
        usleep(1000);
}

/* Runs n chunks on pool and checks each ran exactly once; returns how many threads ran them. */
static int run_probe(ecp_pool *pool, int n)
{
    pool_probe p = {0};
    pthread_mutex_init(&p.mu, NULL);
    p.hits = calloc((size_t)(n ? n : 1), sizeof *p.hits);
    assert_non_null(p.hits);
    ecp_pool_run(pool, probe_chunk, &p, n);
    assert_int_equal(atomic_load(&p.calls), n);
    for (int c = 0; c < n; c++)
        assert_int_equal(atomic_load(&p.hits[c]), 1);
    free(p.hits);
    pthread_mutex_destroy(&p.mu);
    return p.n_callers;
}

static void test_pool(void **state)
{
    (void)state;
    ecp_error err;
    ecp_pool *pool = NULL;
    /* bad sizes are refused with the field named */
    assert_int_equal(ecp_pool_create(0, &pool, &err), ECP_ERR_ARG);
    assert_non_null(strstr(err.msg, "threads 0"));
    assert_null(pool);
    assert_int_equal(ecp_pool_create(ECP_POOL_MAX_THREADS + 1, &pool, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_pool_create(2, NULL, &err), ECP_ERR_ARG);
    /* no pool, and a pool of one thread: everything on the caller */
    assert_int_equal(ecp_pool_threads(NULL), 1);
    assert_int_equal(run_probe(NULL, 7), 1);
    assert_int_equal(ecp_pool_create(1, &pool, &err), ECP_OK);
    assert_int_equal(ecp_pool_threads(pool), 1);
    assert_int_equal(run_probe(pool, 5), 1);
    ecp_pool_free(pool);
    /* more workers than work, zero jobs, many jobs, and the same pool reused across calls */
    assert_int_equal(ecp_pool_create(8, &pool, &err), ECP_OK);
    assert_int_equal(ecp_pool_threads(pool), 8);
    assert_int_equal(run_probe(pool, 0), 0);
    assert_int_equal(run_probe(pool, 1), 1);
    for (int rep = 0; rep < 200; rep++) {
        int t = run_probe(pool, 1 + rep % 5);
        assert_true(t >= 1 && t <= 1 + rep % 5);
    }
    for (int rep = 0; rep < 20; rep++) {
        int t = run_probe(pool, 10000);
        assert_true(t >= 1 && t <= 8);
    }
    /* the chunks do run at the same time: each of two waits until the other has started */
    _Atomic int started = 0;
    ecp_pool_run(pool, rendezvous_chunk, &started, 2);
    assert_int_equal(atomic_load(&started), 2);
    ecp_pool_free(pool);
    ecp_pool_free(NULL);
    /* created and freed without a job: a clean shutdown of sleeping workers */
    assert_int_equal(ecp_pool_create(4, &pool, &err), ECP_OK);
    ecp_pool_free(pool);
}

/* Without mpirun the process is rank 0 of 1 and every collective passes its input through:
 * plain ecprune and embedders see no MPI at all. */
/* The k smallest by a total order: the same set as a sort's first k, on arrays with many ties
 * (scores drawn from 7 values, ties broken by index), every k from 0 to n, sizes 1 to 40. */
typedef struct {
    double score;
    int64_t idx;
} nth_item;

static int nth_cmp(const void *pa, const void *pb)
{
    const nth_item *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static void test_nth_smallest(void **state)
{
    ecp_rng r;
    ecp_rng_seed(&r, 5);
    nth_item a[40], sorted[40];
    for (int n = 1; n <= 40; n++)
        for (int k = 0; k <= n; k++) {
            for (int i = 0; i < n; i++) {
                a[i].score = (double)(ecp_rng_u64(&r) % 7);
                a[i].idx = (int64_t)(ecp_rng_u64(&r) % 1000) * 64 + i; /* distinct, unordered */
            }
            memcpy(sorted, a, sizeof a);
            qsort(sorted, (size_t)n, sizeof *sorted, nth_cmp);
            ecp_nth_smallest(a, (size_t)n, sizeof *a, (size_t)k, nth_cmp);
            /* the front holds exactly sorted[0..k), the back the rest */
            qsort(a, (size_t)k, sizeof *a, nth_cmp);
            qsort(a + k, (size_t)(n - k), sizeof *a, nth_cmp);
            for (int i = 0; i < n; i++) {
                assert_true(a[i].score == sorted[i].score);
                assert_int_equal(a[i].idx, sorted[i].idx);
            }
        }
}

static void test_dist_singleton(void **state)
{
    (void)state;
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    int argc = 1;
    char *args[] = {"test_core", NULL}, **argv = args;
    ecp_error err = {0};
    assert_int_equal(ecp_dist_init(&argc, &argv, &err), ECP_OK);
    assert_int_equal(ecp_dist_size(), 1);
    assert_int_equal(ecp_dist_rank(), 0);
    assert_int_equal(ecp_dist_local_size(), 1);
    int64_t lo = -1, hi = -1;
    ecp_dist_shard(10, &lo, &hi);
    assert_true(lo == 0 && hi == 10);
    double v[3] = {1.5, -2, 3};
    assert_int_equal(ecp_dist_sum(v, 3, &err), ECP_OK);
    assert_true(v[0] == 1.5 && v[1] == -2 && v[2] == 3);
    assert_int_equal(ecp_dist_agree(ECP_OK, &err), ECP_OK);
    ecp_fail(&err, ECP_ERR_IO, "x.onnx: cannot open");
    assert_int_equal(ecp_dist_agree(ECP_ERR_IO, &err), ECP_ERR_IO);
    assert_string_equal(err.msg, "x.onnx: cannot open");
    /* A failure is not remembered without MPI: the next agreement succeeds. */
    assert_int_equal(ecp_dist_agree(ECP_OK, &err), ECP_OK);
    ecp_dist_finalize();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wfile_commit_and_abort),
        cmocka_unit_test(test_rng_streams),
        cmocka_unit_test(test_alloc_overflow),
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_carve),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_closest_name),
        cmocka_unit_test(test_blas_threads_push_pop),
        cmocka_unit_test(test_nth_smallest),
        cmocka_unit_test(test_dist_singleton),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
