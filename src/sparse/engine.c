/* The whole-network inference engine: every layer runs dense (OpenBLAS) or sparse, chosen per
 * layer and per call from its weight density, the batch regime and (at batch 1) the density of
 * its input, against the break-even densities of this machine (`ecprune tune`, tune.c).
 *
 * Layout: a batch is kept feature-major between layers (n x B, the batch contiguous), so that
 * the sparse SpMM vectorises across the batch and the dense layers are plain
 * sgemm(W, A^T). The input is transposed once on entry and the output once on exit; at batch 1
 * both layouts are the same vector.
 *
 * Batch 1 picks between two sparse kernels at run time by counting the non-zero inputs (n_in
 * compares, noise next to the product): CSR reads every kept weight; CSC skips the columns of
 * zero inputs but pays a scatter. Measured on 300x784 at 10 % density (us): dense input CSR 8.5,
 * CSC 10.6; 20 %-dense input (MNIST pixels) CSC 2.5; on 4096x4096, half-zero input (ReLU) CSC
 * 452, CSR 595. So CSC costs ~1.25x CSR per visited weight and wins when fewer than ~80 % of
 * the inputs are non-zero: effective density d * 1.25 * input density. */
#include "sparse.h"
#include <cblas.h>
#include <unistd.h>

#define CSC_COST 1.25         /* CSC time per visited weight, relative to CSR */
#define BIG_LAYER_BYTES (2u << 20) /* dense weights beyond L2: batch 1 is memory-bound */

typedef struct {
    int n_in, n_out;
    ecp_act act;
    int64_t nnz;
    double density;
    float *b;
    float *W;       /* dense copy, or NULL when no regime can choose dense */
    ecp_spmat csr;  /* ptr NULL when unused */
    ecp_spmat csc;
    double be_b1;   /* batch-1 break-even for this layer (in-cache or memory-bound) */
} sp_layer;

struct ecp_sparse_net {
    int n_layers, n_in, n_out, wmax, cap, threads;
    ecp_engine_mode mode;
    double be_bn;
    sp_layer *layer;
    float *buf[2]; /* cap x wmax each, feature-major */
    int64_t nnz, n_weights;
};

void ecp_sparse_opts_default(ecp_sparse_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = ECP_ENGINE_AUTO;
    o->threads = 0;
    o->max_batch = 256;
    o->be_b1_small = -1;
    o->be_b1_large = -1;
    o->be_bn = -1;
}

void ecp_sparse_free(ecp_sparse_net *s)
{
    if (!s)
        return;
    if (s->layer)
        for (int l = 0; l < s->n_layers; l++) {
            free(s->layer[l].b);
            free(s->layer[l].W);
            ecp_spmat_release(&s->layer[l].csr);
            ecp_spmat_release(&s->layer[l].csc);
        }
    free(s->layer);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
}

static ecp_status build_layer(sp_layer *S, const ecp_layer *L, ecp_engine_mode mode,
                              double be_b1, double be_bn, ecp_error *err)
{
    S->n_in = L->n_in;
    S->n_out = L->n_out;
    S->act = L->act;
    S->nnz = ecp_spmat_count(L->W, L->pruned, L->n_out, L->n_in);
    S->density = (double)S->nnz / ((double)L->n_in * (double)L->n_out);
    S->be_b1 = be_b1;
    S->b = ecp_alloc((size_t)L->n_out, sizeof *S->b, "sparse engine", err);
    if (!S->b)
        return ECP_ERR_MEMORY;
    memcpy(S->b, L->b, (size_t)L->n_out * sizeof *S->b);
    /* Dense weights are kept unless the layer can never be dense: at batch 1 CSC only lowers
     * the effective density, so d below both break-evens means sparse in every call. */
    int need_dense = mode == ECP_ENGINE_DENSE ||
                     (mode == ECP_ENGINE_AUTO && !(S->density < be_b1 && S->density < be_bn));
    int need_sparse = mode != ECP_ENGINE_DENSE;
    if (need_dense) {
        size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        S->W = ecp_alloc(nw, sizeof *S->W, "sparse engine", err);
        if (!S->W)
            return ECP_ERR_MEMORY;
        /* Masked weights are exactly zero by the model's invariant; zero them anyway so that
         * dense and sparse compute the same function even if a caller broke it. */
        for (size_t i = 0; i < nw; i++)
            S->W[i] = L->pruned[i] ? 0.0f : L->W[i];
    }
    if (need_sparse) {
        ecp_status st = ecp_spmat_build(&S->csr, L->W, L->pruned, L->n_out, L->n_in, 0, err);
        if (!st)
            st = ecp_spmat_build(&S->csc, L->W, L->pruned, L->n_out, L->n_in, 1, err);
        if (st)
            return st;
    }
    return ECP_OK;
}

ecp_status ecp_sparse_create(ecp_sparse_net **out, const ecp_mlp *m, const ecp_sparse_opts *o,
                             ecp_error *err)
{
    *out = NULL;
    ecp_sparse_opts def;
    if (!o) {
        ecp_sparse_opts_default(&def);
        o = &def;
    }
    if ((unsigned)o->mode > ECP_ENGINE_SPARSE)
        return ecp_fail(err, ECP_ERR_ARG, "sparse engine: invalid mode %d", (int)o->mode);
    if (o->max_batch < 1 || o->max_batch > (1 << 20))
        return ecp_fail(err, ECP_ERR_ARG, "sparse engine: max_batch %d out of range [1, 2^20]",
                        o->max_batch);
    if (o->threads < 0 || o->threads > 256)
        return ecp_fail(err, ECP_ERR_ARG, "sparse engine: threads %d out of range [0, 256]",
                        o->threads);
    ecp_sparse_tune_result tr;
    ecp_sparse_tune_load(&tr, NULL); /* defaults when there is no (valid) cache file */
    double b1s = o->be_b1_small >= 0 ? o->be_b1_small : tr.b1_small;
    double b1l = o->be_b1_large >= 0 ? o->be_b1_large : tr.b1_large;
    double bn = o->be_bn >= 0 ? o->be_bn : tr.bn;

    ecp_sparse_net *s = ecp_zalloc(1, sizeof *s, "sparse engine", err);
    if (!s)
        return ECP_ERR_MEMORY;
    s->n_layers = m->n_layers;
    s->n_in = m->sizes[0];
    s->n_out = m->sizes[m->n_layers];
    s->cap = o->max_batch;
    s->mode = o->mode;
    s->be_bn = bn;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = o->threads ? o->threads : (nc > 0 ? (int)(nc > 256 ? 256 : nc) : 1);
    s->layer = ecp_zalloc((size_t)m->n_layers, sizeof *s->layer, "sparse engine", err);
    if (!s->layer) {
        ecp_sparse_free(s);
        return ECP_ERR_MEMORY;
    }
    for (int i = 0; i <= m->n_layers; i++)
        s->wmax = m->sizes[i] > s->wmax ? m->sizes[i] : s->wmax;
    for (int l = 0; l < m->n_layers; l++) {
        const ecp_layer *L = &m->layer[l];
        int big = (double)L->n_in * L->n_out * sizeof(float) > BIG_LAYER_BYTES;
        ecp_status st = build_layer(&s->layer[l], L, o->mode, big ? b1l : b1s, bn, err);
        if (st) {
            ecp_sparse_free(s);
            return st;
        }
        s->nnz += s->layer[l].nnz;
        s->n_weights += (int64_t)L->n_in * L->n_out;
    }
    for (int i = 0; i < 2; i++) {
        s->buf[i] = ecp_alloc((size_t)s->cap * (size_t)s->wmax, sizeof(float), "sparse engine",
                              err);
        if (!s->buf[i]) {
            ecp_sparse_free(s);
            return ECP_ERR_MEMORY;
        }
    }
    *out = s;
    return ECP_OK;
}

/* ------------------------------------------------------------------ choice of kernel */

static int count_nonzero(const float *x, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += x[i] != 0.0f;
    return c;
}

static ecp_sparse_kernel choose_b1(const ecp_sparse_net *s, const sp_layer *S, const float *x)
{
    if (s->mode == ECP_ENGINE_DENSE)
        return ECP_KERNEL_DENSE;
    double xd = (double)count_nonzero(x, S->n_in) / S->n_in;
    double eff_csc = S->density * CSC_COST * xd;
    ecp_sparse_kernel k = eff_csc < S->density ? ECP_KERNEL_CSC : ECP_KERNEL_CSR;
    double eff = k == ECP_KERNEL_CSC ? eff_csc : S->density;
    if (s->mode == ECP_ENGINE_SPARSE || !S->W)
        return k;
    return eff < S->be_b1 ? k : ECP_KERNEL_DENSE; /* ties go to dense */
}

static ecp_sparse_kernel choose_bn(const ecp_sparse_net *s, const sp_layer *S)
{
    if (s->mode == ECP_ENGINE_DENSE)
        return ECP_KERNEL_DENSE;
    if (s->mode == ECP_ENGINE_SPARSE || !S->W)
        return ECP_KERNEL_CSR;
    return S->density < s->be_bn ? ECP_KERNEL_CSR : ECP_KERNEL_DENSE;
}

/* ------------------------------------------------------------------ forward */

static ecp_status layer_b1(ecp_sparse_net *s, const sp_layer *S, const float *x, float *y,
                           ecp_error *err)
{
    ecp_status st = ECP_OK;
    switch (choose_b1(s, S, x)) {
    case ECP_KERNEL_DENSE:
        memcpy(y, S->b, (size_t)S->n_out * sizeof *y);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, S->n_out, S->n_in, 1.0f, S->W, S->n_in, x, 1,
                    1.0f, y, 1);
        break;
    case ECP_KERNEL_CSC:
        ecp_spmv_csc(&S->csc, x, S->b, y);
        break;
    case ECP_KERNEL_CSR:
        st = ecp_spmv_csr_mt(&S->csr, x, S->b, y, s->threads, err);
        break;
    }
    return st;
}

static ecp_status layer_bn(ecp_sparse_net *s, const sp_layer *S, const float *XT, int B,
                           float *YT, ecp_error *err)
{
    if (choose_bn(s, S) == ECP_KERNEL_CSR)
        return ecp_spmm_csr_mt(&S->csr, XT, B, S->b, YT, s->threads, err);
    for (int o = 0; o < S->n_out; o++) {
        float *r = YT + (size_t)o * (size_t)B;
        for (int j = 0; j < B; j++)
            r[j] = S->b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S->n_out, B, S->n_in, 1.0f, S->W,
                S->n_in, XT, B, 1.0f, YT, B);
    return ECP_OK;
}

/* dst (cols x rows) = src (rows x cols)^T, in cache-sized tiles. */
static void transpose(const float *src, int rows, int cols, float *dst)
{
    enum { T = 32 };
    for (int i0 = 0; i0 < rows; i0 += T)
        for (int j0 = 0; j0 < cols; j0 += T) {
            int i1 = i0 + T < rows ? i0 + T : rows, j1 = j0 + T < cols ? j0 + T : cols;
            for (int i = i0; i < i1; i++)
                for (int j = j0; j < j1; j++)
                    dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
        }
}

static ecp_status forward_chunk(ecp_sparse_net *s, const float *x, int B, float *y,
                                ecp_error *err)
{
    float *cur = s->buf[0], *nxt = s->buf[1];
    if (B == 1)
        memcpy(cur, x, (size_t)s->n_in * sizeof *cur);
    else
        transpose(x, B, s->n_in, cur);
    for (int l = 0; l < s->n_layers; l++) {
        const sp_layer *S = &s->layer[l];
        ecp_status st = B == 1 ? layer_b1(s, S, cur, nxt, err) : layer_bn(s, S, cur, B, nxt, err);
        if (st)
            return st;
        ecp_act_forward(S->act, nxt, nxt, (size_t)B * S->n_out);
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (B == 1)
        memcpy(y, cur, (size_t)s->n_out * sizeof *y);
    else
        transpose(cur, s->n_out, B, y);
    return ECP_OK;
}

ecp_status ecp_sparse_forward(ecp_sparse_net *s, const float *x, int batch, float *y,
                              ecp_error *err)
{
    if (batch < 0)
        return ecp_fail(err, ECP_ERR_ARG, "sparse forward: batch %d < 0", batch);
    for (int done = 0; done < batch;) {
        int B = batch - done < s->cap ? batch - done : s->cap;
        ecp_status st = forward_chunk(s, x + (size_t)done * s->n_in, B,
                                      y + (size_t)done * s->n_out, err);
        if (st)
            return st;
        done += B;
    }
    return ECP_OK;
}

/* ------------------------------------------------------------------ introspection */

int ecp_sparse_n_in(const ecp_sparse_net *s) { return s->n_in; }
int ecp_sparse_n_out(const ecp_sparse_net *s) { return s->n_out; }
int64_t ecp_sparse_nnz(const ecp_sparse_net *s) { return s->nnz; }
int64_t ecp_sparse_n_weights(const ecp_sparse_net *s) { return s->n_weights; }

double ecp_sparse_density(const ecp_sparse_net *s)
{
    return s->n_weights ? (double)s->nnz / (double)s->n_weights : 0.0;
}

ecp_sparse_kernel ecp_sparse_layer_kernel(const ecp_sparse_net *s, int l, int batch)
{
    if (l < 0 || l >= s->n_layers)
        return ECP_KERNEL_DENSE;
    const sp_layer *S = &s->layer[l];
    if (batch > 1)
        return choose_bn(s, S);
    /* Without an input at hand, batch 1 is described for a dense input (the CSR choice). */
    if (s->mode == ECP_ENGINE_DENSE)
        return ECP_KERNEL_DENSE;
    if (s->mode == ECP_ENGINE_SPARSE || !S->W)
        return ECP_KERNEL_CSR;
    return S->density < S->be_b1 ? ECP_KERNEL_CSR : ECP_KERNEL_DENSE;
}

const char *ecp_sparse_kernel_name(ecp_sparse_kernel k)
{
    switch (k) {
    case ECP_KERNEL_DENSE: return "dense";
    case ECP_KERNEL_CSR: return "csr";
    case ECP_KERNEL_CSC: return "csc";
    }
    return "?";
}
