/* Break-even densities: measured once by `ecprune tune`, cached as a small text file, read at
 * every engine creation (never held in a global).
 *
 * Method: the sparse kernels' time is linear in the non-zeros (t = a + b d), the dense time is
 * constant in d, so two sparse timings (d = 5 % and 40 %) and one dense timing give the crossing
 * d* = (t_dense - a) / b without a search. Each timing is the minimum of 5 repetitions (the
 * machine is shared; the minimum is the least disturbed run). Sparse kernels see a dense input,
 * the worst case for them: at batch 1 the engine lowers the effective density of sparse inputs
 * itself (engine.c).
 *
 * Built-in defaults, from this method on the development machine (AMD EPYC Zen 4, 2 cores,
 * OpenBLAS 0.3, one thread): batch 1 in L2 (300x784) 0.12; batch 1 memory-bound (4096x4096)
 * 0.45; batch 256 (300x784) 0.20. */
#include "sparse.h"
#include <cblas.h>
#include <errno.h>
#include <math.h>

void ecp_sparse_tune_default(ecp_sparse_tune_result *r)
{
    if (!r)
        return;
    r->b1_small = 0.12;
    r->b1_large = 0.45;
    r->bn = 0.20;
    r->threads = 0;
}

typedef struct {
    int n_out, n_in, B;
    float *W, *x, *y, *b;
} bench_layer;

static void layer_free(bench_layer *L)
{
    free(L->W);
    free(L->x);
    free(L->y);
    free(L->b);
}

static ecp_status layer_make(bench_layer *L, int n_out, int n_in, int B, ecp_rng *r,
                             ecp_error *err)
{
    memset(L, 0, sizeof *L);
    L->n_out = n_out;
    L->n_in = n_in;
    L->B = B;
    L->W = ecp_alloc((size_t)n_out * n_in, sizeof(float), "tune", err);
    /* 64-byte aligned like the engine's buffers (the SpMM tiles read 128-byte row segments) */
    size_t xb = ((size_t)n_in * ecp_fm_ld(B) * sizeof(float) + 63) / 64 * 64;
    L->x = aligned_alloc(64, xb);
    if (!L->x)
        ecp_fail(err, ECP_ERR_MEMORY, "tune: out of memory");
    L->y = ecp_alloc((size_t)n_out * ecp_fm_ld(B), sizeof(float), "tune", err);
    L->b = ecp_zalloc((size_t)n_out, sizeof(float), "tune", err);
    if (!L->W || !L->x || !L->y || !L->b) {
        layer_free(L);
        return ECP_ERR_MEMORY;
    }
    for (size_t i = 0; i < (size_t)n_out * n_in; i++)
        L->W[i] = (float)(ecp_rng_uniform(r) - 0.5);
    for (size_t i = 0; i < (size_t)n_in * ecp_fm_ld(B); i++)
        L->x[i] = (float)ecp_rng_uniform(r) + 0.01f; /* dense: no zero inputs */
    return ECP_OK;
}

/* Seconds per call of the engine's dense path (packed kernel at batch > 1 on one thread, else
 * OpenBLAS): the minimum over 5 repetitions of `reps` calls, reps sized to ~20 ms. */
static ecp_status time_dense(const bench_layer *L, int threads, double *out, ecp_error *err)
{
    double best = 1e30;
    int reps = 1;
    ecp_wpack p = {0};
    float *work = NULL;
    if (L->B > 1 && threads == 1) {
        ecp_status st = ecp_wpack_build(&p, L->W, L->n_out, L->n_in, err);
        if (st)
            return st;
        if (!(work = ecp_alloc_aligned(ecp_gemm_work_floats(L->B), err))) {
            ecp_wpack_release(&p);
            return ECP_ERR_MEMORY;
        }
    }
    for (int rep = 0; rep < 6; rep++) {
        double t0 = ecp_now();
        for (int i = 0; i < reps; i++) {
            if (p.w)
                ecp_gemm_packed(&p, L->x, L->B, ecp_fm_ld(L->B), L->b, ECP_ACT_IDENTITY, NULL,
                                L->y, work);
            else if (L->B == 1 && threads == 1)
                ecp_gemv_rows(L->W, L->n_out, L->n_in, L->x, L->b, ECP_ACT_IDENTITY, NULL,
                              L->y);
            else if (L->B == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, L->n_out, L->n_in, 1.0f, L->W, L->n_in,
                            L->x, 1, 0.0f, L->y, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L->n_out, L->B, L->n_in,
                            1.0f, L->W, L->n_in, L->x, (int)ecp_fm_ld(L->B), 0.0f, L->y,
                            (int)ecp_fm_ld(L->B));
        }
        double t = (ecp_now() - t0) / reps;
        if (rep > 0 && t < best) /* rep 0 sizes reps and warms the caches */
            best = t;
        if (rep == 0)
            reps = t > 0.02 ? 1 : (int)(0.02 / (t > 1e-7 ? t : 1e-7)) + 1;
    }
    ecp_wpack_release(&p);
    free(work);
    *out = best;
    return ECP_OK;
}

static ecp_status time_sparse(const bench_layer *L, double d, ecp_pool *pool, ecp_rng *r,
                              double *out, ecp_error *err)
{
    size_t nw = (size_t)L->n_out * L->n_in;
    float *W = ecp_alloc(nw, sizeof *W, "tune", err);
    if (!W)
        return ECP_ERR_MEMORY;
    for (size_t i = 0; i < nw; i++)
        W[i] = ecp_rng_uniform(r) < d ? L->W[i] : 0.0f;
    ecp_spmat A;
    ecp_status st = ecp_spmat_build(&A, W, NULL, L->n_out, L->n_in, 0, err);
    free(W);
    if (st)
        return st;
    double best = 1e30;
    int reps = 1;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = ecp_now();
        for (int i = 0; i < reps; i++)
            if (L->B == 1)
                ecp_spmv_csr_mt(&A, L->x, L->b, L->y, pool);
            else
                ecp_spmm_csr_mt(&A, L->x, L->B, ecp_fm_ld(L->B), L->b, L->y, pool);
        double t = (ecp_now() - t0) / reps;
        if (rep > 0 && t < best)
            best = t;
        if (rep == 0)
            reps = t > 0.02 ? 1 : (int)(0.02 / (t > 1e-7 ? t : 1e-7)) + 1;
    }
    ecp_spmat_release(&A);
    *out = best;
    return ECP_OK;
}

static ecp_status break_even(int n_out, int n_in, int B, int threads, ecp_pool *pool, ecp_rng *r,
                             double *out, ecp_error *err)
{
    bench_layer L;
    ecp_status st = layer_make(&L, n_out, n_in, B, r, err);
    if (st)
        return st;
    double td = 0, t1 = 0, t2 = 0;
    const double d1 = 0.05, d2 = 0.40;
    st = time_dense(&L, threads, &td, err);
    if (!st)
        st = time_sparse(&L, d1, pool, r, &t1, err);
    if (!st)
        st = time_sparse(&L, d2, pool, r, &t2, err);
    layer_free(&L);
    if (st)
        return st;
    double slope = (t2 - t1) / (d2 - d1);
    double a = t1 - slope * d1;
    double d = slope > 0 ? (td - a) / slope : 1.0;
    *out = d < 0.0 ? 0.0 : d > 1.0 ? 1.0 : d;
    return ECP_OK;
}

ecp_status ecp_sparse_tune(int threads, ecp_sparse_tune_result *out, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    ecp_rng r;
    ecp_rng_seed(&r, 12345);
    ecp_sparse_tune_default(out);
    ecp_pool *pool = NULL;
    ecp_status st = threads > 1 ? ecp_pool_create(threads, &pool, err) : ECP_OK;
    if (!st)
        st = break_even(300, 784, 1, threads, pool, &r, &out->b1_small, err);
    if (!st)
        st = break_even(4096, 4096, 1, threads, pool, &r, &out->b1_large, err);
    if (!st)
        st = break_even(300, 784, 256, threads, pool, &r, &out->bn, err);
    ecp_pool_free(pool);
    out->threads = threads;
    return st;
}

static ecp_status tune_path(char *buf, size_t n, ecp_error *err)
{
    char dir[4096];
    ecp_status st = ecp_cache_dir(dir, sizeof dir, err);
    if (st)
        return st;
    if (snprintf(buf, n, "%s/%s", dir, ECP_SPARSE_TUNE_FILE) >= (int)n)
        return ecp_fail(err, ECP_ERR_ARG, "%s: cache path too long", dir);
    return ECP_OK;
}

ecp_status ecp_sparse_tune_save(const ecp_sparse_tune_result *r, ecp_error *err)
{
    ECP_REQUIRE(r, err);
    char path[4200], text[512];
    ecp_status st = tune_path(path, sizeof path, err);
    if (st)
        return st;
    int n = snprintf(text, sizeof text,
                     "# ecprune tune: weight density (fraction kept) below which the sparse\n"
                     "# kernel beats OpenBLAS on this machine\n"
                     "batch1_small %.4f\nbatch1_large %.4f\nbatchN %.4f\nthreads %d\n",
                     r->b1_small, r->b1_large, r->bn, r->threads);
    ecp_wfile wf;
    if ((st = ecp_wfile_open(&wf, path, err)))
        return st;
    if ((st = ecp_wfile_write(&wf, text, (size_t)n, err))) {
        ecp_wfile_abort(&wf);
        return st;
    }
    return ecp_wfile_commit(&wf, err);
}

ecp_status ecp_sparse_tune_load(ecp_sparse_tune_result *r, ecp_error *err)
{
    ECP_REQUIRE(r, err);
    ecp_sparse_tune_default(r);
    char path[4200];
    ecp_error quiet;
    /* Engine creation must not fail for want of a cache directory: fall back to defaults. */
    ecp_status st = tune_path(path, sizeof path, err ? err : &quiet);
    if (st)
        return st;
    FILE *f = fopen(path, "r");
    if (!f)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ecp_sparse_tune_result t = *r;
    char line[256], key[64];
    double v;
    int got = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%63s %lf", key, &v) != 2 || !isfinite(v) || v < 0 || v > 1e6) {
            bad = 1;
            break;
        }
        if (!strcmp(key, "batch1_small") && v <= 1)
            t.b1_small = v, got |= 1;
        else if (!strcmp(key, "batch1_large") && v <= 1)
            t.b1_large = v, got |= 2;
        else if (!strcmp(key, "batchN") && v <= 1)
            t.bn = v, got |= 4;
        else if (!strcmp(key, "threads"))
            t.threads = (int)v;
        else {
            bad = 1;
            break;
        }
    }
    fclose(f);
    if (bad || got != 7)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: malformed tuning file (rerun 'ecprune tune')",
                        path);
    *r = t;
    return ECP_OK;
}
