/* Sparse-input kernels for layer 0 (see sparse_input.h for why).
 *
 * One kernel serves both products that touch the input batch X (b x n_in, mostly zeros):
 *   forward   z[n][:]    = b + sum_{k : X[n][k] != 0} X[n][k] * W^T[k][:]   (CSR of X, rows n)
 *   gradient  dW^T[k][:] =     sum_{n : X[n][k] != 0} X[n][k] * dZ[n][:]    (CSC of X, rows k)
 * Both are AXPYs of contiguous rows (W^T is n_in x n_out, dZ is b x n_out) into an output row
 * held in registers, a tile of up to TILE_V vectors at a time, so one index and one broadcast
 * serve TILE_V vector FMAs and the output row is stored once. The sum over j runs in the stored
 * order for every output element, so the result does not depend on tiling or threads.
 *
 * Both products are bound by streaming rows from L2, not by the FMAs; the timings against the
 * dense sgemm pair they replace are in docs/PERF.md ("Training"). */
#include "sparse_input.h"
#include "../core/simd.h"

/* Vectors per register tile. AVX-512 has 32 registers: 12 accumulators + broadcast + loads. */
#ifndef TILE_V
#if VW == 16
#define TILE_V 12
#else
#define TILE_V 8
#endif
#endif

int ecp_sparse_input_ensure(ecp_ws *ws, int n_in, int n_out)
{
    if (ws->input.rowptr)
        return 1;
    size_t cap = (size_t)ws->cap, nz = cap * (size_t)n_in + 16; /* + slack, see build_csr */
    /* Past the budget the dense path serves instead (0 = not available; no error). */
    if (ecp_budget_check((uint64_t)nz * 16 + cap * (uint64_t)ecp_sparse_input_ld(n_out) * 4, "",
                         NULL))
        return 0;
    ws->input.rowptr = malloc((cap + 1) * sizeof(int32_t));
    ws->input.colptr = malloc(((size_t)n_in + 1) * sizeof(int32_t));
    ws->input.idx = malloc(nz * sizeof(int32_t));
    ws->input.val = malloc(nz * sizeof(float));
    ws->input.cidx = malloc(nz * sizeof(int32_t));
    ws->input.cval = malloc(nz * sizeof(float));
    ws->input.dz = malloc(cap * (size_t)ecp_sparse_input_ld(n_out) * sizeof(float));
    if (nz > INT32_MAX || !ws->input.rowptr || !ws->input.colptr || !ws->input.idx || !ws->input.val ||
        !ws->input.cidx || !ws->input.cval || !ws->input.dz) {
        ecp_sparse_input_release(&ws->input);
        return 0;
    }
    return 1;
}

void ecp_sparse_input_release(ecp_sparse_input *in)
{
    free(in->rowptr);
    free(in->colptr);
    free(in->idx);
    free(in->val);
    free(in->cidx);
    free(in->cval);
    free(in->dz);
    in->rowptr = in->colptr = in->idx = in->cidx = NULL;
    in->val = in->cval = in->dz = NULL;
}

int64_t ecp_sparse_input_build_csr(ecp_ws *ws, const float *x, int batch, int n_in, int64_t max_nnz)
{
    int32_t *ptr = ws->input.rowptr, *idx = ws->input.idx;
    float *val = ws->input.val;
    int32_t c = 0;
    ptr[0] = 0;
    for (int n = 0; n < batch; n++) {
        const float *xr = x + (size_t)n * n_in;
        int k = 0;
#if VW == 16
        /* 16 values per step: compare, then compress-store the non-zeros and their indices. */
        const __m512i step = _mm512_set1_epi32(16);
        __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; k + 16 <= n_in; k += 16) {
            __m512 v = _mm512_loadu_ps(xr + k);
            __mmask16 nzm = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
            /* Register-form compress + a full store (the buffers have 16 entries of slack):
             * the memory form of vcompressps is microcoded on some CPUs (docs/PERF.md). */
            _mm512_storeu_ps(val + c, _mm512_maskz_compress_ps(nzm, v));
            _mm512_storeu_si512(idx + c, _mm512_maskz_compress_epi32(nzm, iv));
            c += __builtin_popcount((unsigned)nzm);
            iv = _mm512_add_epi32(iv, step);
        }
#endif
        /* Branch-free: always write, advance only past a non-zero. */
        for (; k < n_in; k++) {
            float v = xr[k];
            idx[c] = k;
            val[c] = v;
            c += v != 0.0f;
        }
        ptr[n + 1] = c;
        if (c > max_nnz)
            return -1;
    }
    ws->input.csc = 0;
    return c;
}

void ecp_sparse_input_build_csc(ecp_ws *ws, int batch, int n_in)
{
    const int32_t *ptr = ws->input.rowptr, *idx = ws->input.idx;
    const float *val = ws->input.val;
    int32_t *cp = ws->input.colptr, *ci = ws->input.cidx;
    float *cv = ws->input.cval;
    /* Counting sort by column; scanning rows in order keeps samples ascending in a column. */
    memset(cp, 0, ((size_t)n_in + 1) * sizeof *cp);
    int32_t nnz = ptr[batch];
    for (int32_t j = 0; j < nnz; j++)
        cp[idx[j] + 1]++;
    for (int k = 0; k < n_in; k++)
        cp[k + 1] += cp[k];
    /* cp[k] is now the start of column k; use it as the fill cursor, then shift back. */
    for (int n = 0; n < batch; n++)
        for (int32_t j = ptr[n]; j < ptr[n + 1]; j++) {
            int32_t at = cp[idx[j]]++;
            ci[at] = n;
            cv[at] = val[j];
        }
    for (int k = n_in; k > 0; k--)
        cp[k] = cp[k - 1];
    cp[0] = 0;
    ws->input.csc = 1;
}

/* One output row r, vectors [v0, v0 + NV) of it plus (TAIL) one partial vector of `tail`
 * elements: NV and TAIL are constants after inlining, so acc[] lives in registers. */
static inline __attribute__((always_inline)) void
tile_row(int NV, int TAIL, int tail, int32_t j0, int32_t j1, const int32_t *idx, const float *val,
         const float *M, size_t ldm, int c0, const float *init, float *o)
{
    vf acc[TILE_V + 1];
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++)
        acc[v] = init ? vload(init + c0 + v * VW) : vsplat(0.0f);
    if (TAIL)
        acc[NV] = init ? vload_part(init + c0 + NV * VW, tail) : vsplat(0.0f);
    for (int32_t j = j0; j < j1; j++) {
        const float *mr = M + (size_t)idx[j] * ldm + c0;
        vf x = vsplat(val[j]);
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            acc[v] = vfma(x, vload(mr + v * VW), acc[v]);
        if (TAIL)
            acc[NV] = vfma(x, vload_part(mr + NV * VW, tail), acc[NV]);
    }
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++)
        vstore(o + c0 + v * VW, acc[v]);
    if (TAIL)
        vstore_part(o + c0 + NV * VW, acc[NV], tail);
}

#define TILE_CASE(nv)                                                                            \
    case nv:                                                                                     \
        if (tail)                                                                                \
            tile_row(nv, 1, tail, j0, j1, idx, val, M, ldm, c0, init, o);                        \
        else                                                                                     \
            tile_row(nv, 0, 0, j0, j1, idx, val, M, ldm, c0, init, o);                           \
        break;

void ecp_spmm_rows(int nrows, const int32_t *ptr, const int32_t *idx, const float *val,
                   const float *M, size_t ldm, int n, const float *bias, int accumulate, float *out,
                   size_t ldo)
{
    int nfull = n / VW, tail = n % VW;
    for (int r = 0; r < nrows; r++) {
        int32_t j0 = ptr[r], j1 = ptr[r + 1];
        float *o = out + (size_t)r * ldo;
        const float *init = accumulate ? o : bias;
        int v0 = 0;
        /* Full tiles, then one last tile with the remaining vectors and the partial one. */
        for (; nfull - v0 > TILE_V; v0 += TILE_V)
            tile_row(TILE_V, 0, 0, j0, j1, idx, val, M, ldm, v0 * VW, init, o);
        int rest = nfull - v0, c0 = v0 * VW;
        switch (rest) {
            TILE_CASE(0)
            TILE_CASE(1)
            TILE_CASE(2)
            TILE_CASE(3)
            TILE_CASE(4)
            TILE_CASE(5)
            TILE_CASE(6)
            TILE_CASE(7)
            TILE_CASE(8)
#if TILE_V > 8
            TILE_CASE(9)
            TILE_CASE(10)
            TILE_CASE(11)
            TILE_CASE(12)
#endif
#if TILE_V > 12
            TILE_CASE(13)
            TILE_CASE(14)
            TILE_CASE(15)
            TILE_CASE(16)
#endif
#if TILE_V > 16
            TILE_CASE(17)
            TILE_CASE(18)
            TILE_CASE(19)
            TILE_CASE(20)
#endif
        default:
            break;
        }
    }
}

/* The same product with the column tiles outermost and narrow (SW_V vectors): for a dense
 * operand M with few rows (the dW product: M = dZ, batch x n_out), one column panel of M
 * (batch x SW_V*VW floats, 24 KB at batch 128) stays in L1 while every output row walks it. The
 * row-outer kernel streams each M row from L2 instead, about 24 times the traffic
 * (docs/PERF.md). */
#ifndef SW_V
#if VW == 16
#define SW_V 3
#else
#define SW_V 4
#endif
#endif

#define TILE_CASE_C(nv)                                                                          \
    case nv:                                                                                     \
        for (int r = 0; r < nrows; r++) {                                                        \
            float *o = out + (size_t)r * ldo;                                                    \
            const float *init = accumulate ? o : bias;                                           \
            if (t)                                                                               \
                tile_row(nv, 1, t, ptr[r], ptr[r + 1], idx, val, M, ldm, c0, init, o);           \
            else                                                                                 \
                tile_row(nv, 0, 0, ptr[r], ptr[r + 1], idx, val, M, ldm, c0, init, o);           \
        }                                                                                        \
        break;

void ecp_spmm_cols(int nrows, const int32_t *ptr, const int32_t *idx, const float *val,
                   const float *M, size_t ldm, int n, const float *bias, int accumulate, float *out,
                   size_t ldo)
{
    int nfull = n / VW, tail = n % VW;
    for (int v0 = 0; v0 < nfull || (v0 == nfull && tail); v0 += SW_V) {
        int nv = nfull - v0 < SW_V ? nfull - v0 : SW_V;
        /* The partial vector rides with the last (short) tile, or alone after full tiles. */
        int t = nv < SW_V ? tail : 0;
        int c0 = v0 * VW;
        switch (nv) {
            TILE_CASE_C(0)
            TILE_CASE_C(1)
            TILE_CASE_C(2)
            TILE_CASE_C(3)
#if SW_V > 3
            TILE_CASE_C(4)
#endif
        default:
            break;
        }
        if (nv < SW_V)
            break;
    }
}

/* ------------------------------------------------------------------ threads
 *
 * The two sparse products run on the pool of ws (OpenBLAS's pool cannot run our kernels), in
 * chunks of output rows claimed by whichever thread is free. Speed-ups in docs/PERF.md. */

/* The pool of ws, started on first use (NULL: run on the calling thread only). */
static ecp_pool *pool_get(ecp_ws *ws)
{
    int nt = ws->input.threads < ECP_POOL_MAX_THREADS ? ws->input.threads : ECP_POOL_MAX_THREADS;
    if (nt < 2)
        return NULL;
    if (!ws->input.pool && ecp_pool_create(nt, &ws->input.pool, NULL))
        ws->input.pool = NULL; /* no pool: the same results on the calling thread */
    return ws->input.pool;
}

void ecp_sparse_input_parallel(ecp_ws *ws, void (*fn)(void *, int), void *arg, int n)
{
    ecp_pool_run(pool_get(ws), fn, arg, n);
}

typedef struct {
    const int32_t *ptr, *idx;
    const float *val, *M, *bias;
    size_t ldm, ldo;
    int n, accumulate, rows, per;
    float *out;
    int cols_outer;
} spmm_job;

static void spmm_chunk(void *arg, int c)
{
    const spmm_job *j = arg;
    int r0 = c * j->per, r1 = r0 + j->per < j->rows ? r0 + j->per : j->rows;
    if (r0 >= r1)
        return;
    /* Rows [r0, r1): the kernels take row pointers relative to ptr + r0. */
    float *o = j->out + (size_t)r0 * j->ldo;
    if (j->cols_outer)
        ecp_spmm_cols(r1 - r0, j->ptr + r0, j->idx, j->val, j->M, j->ldm, j->n, j->bias,
                      j->accumulate, o, j->ldo);
    else
        ecp_spmm_rows(r1 - r0, j->ptr + r0, j->idx, j->val, j->M, j->ldm, j->n, j->bias,
                      j->accumulate, o, j->ldo);
}

/* Chunks: about 8 per thread, so that a late or preempted thread is absorbed by the others. */
static int chunk_rows(const ecp_ws *ws, int rows)
{
    int nt = ws->input.threads > 1 ? ws->input.threads : 1;
    int per = (rows + 8 * nt - 1) / (8 * nt);
    return per > 0 ? per : 1;
}

void ecp_sparse_input_forward(ecp_ws *ws, int batch, const float *wt, size_t ldw, int n,
                      const float *bias, float *z)
{
    spmm_job j = {ws->input.rowptr, ws->input.idx, ws->input.val, wt, bias, ldw, (size_t)n, n, 0, batch,
                  chunk_rows(ws, batch), z, 0};
    ecp_sparse_input_parallel(ws, spmm_chunk, &j, (batch + j.per - 1) / j.per);
}

void ecp_sparse_input_dw(ecp_ws *ws, int n_in, const float *dz, size_t lddz, int n, int accumulate,
                 float *dwt, size_t lddw)
{
    spmm_job j = {ws->input.colptr, ws->input.cidx, ws->input.cval, dz, NULL, lddz, lddw, n, accumulate,
                  n_in, chunk_rows(ws, n_in), dwt, 1};
    ecp_sparse_input_parallel(ws, spmm_chunk, &j, (n_in + j.per - 1) / j.per);
}

ecp_status ecp_mlp_layout_begin(ecp_mlp *m, ecp_error *err)
{
    if (m->w0t)
        return ECP_OK;
    ecp_layer *L = &m->layer[0];
    int ld = ecp_sparse_input_ld(L->n_out);
    size_t nw = (size_t)L->n_in * ld;
    float *wt = ecp_zalloc(nw, sizeof *wt, "training layout", err);
    uint8_t *mt = ecp_zalloc(nw, 1, "training layout", err);
    if (!wt || !mt) {
        free(wt);
        free(mt);
        return ECP_ERR_MEMORY;
    }
    ecp_transpose(L->W, L->n_out, L->n_in, (size_t)L->n_in, wt, (size_t)ld, 0);
    for (int o = 0; o < L->n_out; o++)
        for (int k = 0; k < L->n_in; k++)
            mt[(size_t)k * ld + o] = L->pruned[(size_t)o * L->n_in + k];
    m->w0t = wt;
    m->pruned0t = mt;
    m->ld0t = ld;
    return ECP_OK;
}

void ecp_mlp_layout_end(ecp_mlp *m)
{
    if (!m->w0t)
        return;
    ecp_layer *L = &m->layer[0];
    ecp_transpose(m->w0t, L->n_in, L->n_out, (size_t)m->ld0t, L->W, (size_t)L->n_in, 0);
    free(m->w0t);
    free(m->pruned0t);
    m->w0t = NULL;
    m->pruned0t = NULL;
    m->ld0t = 0;
}
