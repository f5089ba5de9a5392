/* The whole-network inference engine: every layer runs dense or sparse, chosen per layer and
 * per call from its weight density, the batch regime and (at batch 1) the density of its
 * input, against the break-even densities of this machine (`ecprune tune`, tune.c). Dense is
 * the row kernel of gemv.c at batch 1 and the packed kernels of gemm.c at larger batches on one
 * thread (OpenBLAS sgemv and sgemm on more: those kernels have no threads yet).
 *
 * Layout: a batch is kept feature-major between layers (n x B, the batch contiguous), so that
 * the sparse SpMM vectorises across the batch and a dense layer is W times A^T. The input is
 * transposed once on entry and the output once on exit; at batch 1 both layouts are the same
 * vector.
 *
 * Batch 1 keeps a list of the non-zero inputs (built on entry, then by each layer's activation
 * pass, ReLU fused with it) and per layer runs a column kernel over that list (CSC, or DCOL:
 * dense columns, see below) or a row kernel (CSR, the window-permute layout of wperm.c, or
 * dense) on the whole input; the
 * plan is fixed at creation, so a call costs one compare per layer to choose. CSR reads every
 * kept weight; CSC skips the columns of zero inputs but pays a scatter: it costs ~1.25x CSR per
 * visited weight and wins when fewer than ~80 % of the inputs are non-zero.
 * Each step of this plan (the list built with the activation, DCOL, the structural
 * simplification of simplify()) was kept because it lowered the batch-1 latency; what is left is
 * bound by L2 bandwidth. The measurements are in docs/PERF.md ("Sparse inference engine"). */
#include "sparse.h"
#include "../core/bf16.h"
#include "nm.h"
#include "wperm.h"
#include <cblas.h>
#include <limits.h>
#include <unistd.h>

#define CSC_COST 1.25         /* CSC time per visited weight, relative to CSR */
/* DCOL: columns of W kept dense (one row of WT each) and multiplied as whole vectors over the
 * non-zero inputs, the other columns in CSC. Cost of one VW-float vector of a dense column, in
 * CSC non-zeros: in cache both are bound by loads (about one CSC non-zero per vector); on a
 * memory-bound layer by bytes (6 B per CSC non-zero, 64 B per vector).
 * In cache the whole layer is one or the other: splitting the list of non-zero inputs between
 * the two per call cost more than it saved (docs/PERF.md). The layer goes DCOL when a
 * dense column costs less than the CSC column an input is likely to hit, measured by the
 * non-zero-weighted mean column count (sum nnz_c^2 / nnz): pruning keeps the weights of the
 * inputs that are often active (mnist: 38 non-zeros per visited column of layer 0, 14 on
 * average). A memory-bound layer is split per column (a column goes dense above DCOL_VEC_MEM x
 * its vector count non-zeros). */
#define DCOL_VEC_CACHE 1.0
#define DCOL_VEC_MEM 10.0
#define BIG_LAYER_BYTES (2u << 20) /* dense weights beyond L2: batch 1 is memory-bound */
/* Larger batches run in chunks of at most CHUNK samples: the feature-major activations of a
 * chunk (CHUNK x 4096 x 4 B = 4 MB at most for the widths benchmarked) stay near the core, and
 * a row stride of 1024 samples (4 KB) would put every row of a tile in the same L1 set.
 * 784-300-100-10, one thread, samples/s at batch 1024 before chunking: dense 75k, sparse 98k,
 * against 158k and 559k at batch 256. */
#define CHUNK 256
/* Window-permute row kernel (wperm.c), cost of one slot in CSR non-zeros. In cache 16 slots are
 * one permute + FMA (300 x 784 at 10 %: 29 slots per ns, CSR 3.2 non-zeros per ns). On the
 * large layers a slot is 5 bytes against CSR's 6 per non-zero, yet 1024-4096-4096-1024 at 90 %
 * (half the slots real) ran 1.1-1.5 ms against CSR's 1.7-6 ms in alternating runs: the gathers,
 * not the bytes, bound CSR there (docs/PERF.md). */
#define WPERM_SLOT_CACHE 0.11
#define WPERM_SLOT_MEM 0.3

typedef struct {
    int n_in, n_out;
    int ldo;        /* n_out rounded up to ECP_VW: the padded width of b, WT and batch-1 rows */
    ecp_act act;
    float act_p[ECP_ACT_NPARAM];
    int64_t nnz;
    double density;
    float *b;       /* ldo, zero-padded */
    float *W;       /* dense copy, or NULL when no regime can choose dense */
    ecp_wpack wp;   /* W packed for ecp_gemm_packed (batch > 1, one thread), w NULL if unused */
    float *WT;      /* the dense-typed columns of W as rows of ldo floats (DCOL), or NULL */
    int32_t *dmap;  /* n_in: row of WT of each input column, -1 when it is in the CSC */
    int n_dcols;    /* dense-typed columns (0: CSC only; n_in: DCOL only) */
    ecp_spmat csr;  /* ptr NULL when unused */
    ecp_wperm wperm; /* batch-1 row layout when k_row is WPERM */
    ecp_spmat csc;
    double be_b1;   /* batch-1 break-even for this layer (in-cache or memory-bound) */
    /* Batch-1 plan, fixed at creation: with nx non-zero inputs the layer runs k_col (CSC or
     * DCOL, work in proportion to nx) when nx < nx_col_max, else k_row (CSR or dense). */
    ecp_sparse_kernel k_col, k_row;
    int nx_col_max;
    ecp_nmmat nm;   /* N:M layout of a layer with a pattern (val NULL otherwise) */
    int nm_b1, nm_bn; /* run it at batch 1 instead of the row kernel / at larger batches */
} sp_layer;

struct ecp_sparse_net {
    int n_layers, n_in, n_out, wmax, cap, threads;
    ecp_engine_mode mode;
    double be_bn;
    sp_layer *layer;
    float *buf[2];  /* max(cap x wmax, padded width) each, 64-byte aligned, feature-major */
    float *gemm_work; /* ecp_gemm_packed's packed block of the input, NULL if no layer packs */
    int32_t *nz;    /* batch-1 list of non-zero inputs, wmax entries */
    int32_t *ld_x, *ld_r, *ls; /* its split: dense-typed inputs and their WT rows; CSC inputs */
    uint16_t *in_live; /* bit mask of the input columns with a kept weight, NULL when all are */
    int64_t nnz, n_weights;
    ecp_pool *pool; /* threads - 1 workers for the CSR products, NULL at one thread */
};

void ecp_sparse_opts_default(ecp_sparse_opts *o)
{
    if (!o)
        return;
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
            ecp_wpack_release(&s->layer[l].wp);
            free(s->layer[l].WT);
            free(s->layer[l].dmap);
            ecp_spmat_release(&s->layer[l].csr);
            ecp_spmat_release(&s->layer[l].csc);
            ecp_nmmat_release(&s->layer[l].nm);
            ecp_wperm_release(&s->layer[l].wperm);
        }
    free(s->layer);
    ecp_pool_free(s->pool);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->gemm_work);
    free(s->nz);
    free(s->ld_x);
    free(s->ld_r);
    free(s->ls);
    free(s->in_live);
    free(s);
}

static ecp_status build_layer(sp_layer *S, const ecp_layer *L, ecp_engine_mode mode,
                              double be_b1, double be_bn, int pack, int threads, int bf16,
                              ecp_error *err)
{
    S->n_in = L->n_in;
    S->n_out = L->n_out;
    S->ldo = (L->n_out + ECP_VW - 1) / ECP_VW * ECP_VW;
    S->act = L->act;
    memcpy(S->act_p, L->act_p, sizeof S->act_p);
    S->nnz = ecp_spmat_count(L->W, L->pruned, L->n_out, L->n_in);
    S->density = (double)S->nnz / ((double)L->n_in * (double)L->n_out);
    S->be_b1 = be_b1;
    S->b = ecp_zalloc((size_t)S->ldo, sizeof *S->b, "sparse engine", err);
    if (!S->b)
        return ECP_ERR_MEMORY;
    memcpy(S->b, L->b, (size_t)L->n_out * sizeof *S->b);
    /* Dense weights are kept unless the layer can never be dense: at batch 1 CSC only lowers
     * the effective density, so d below both break-evens means sparse in every call. */
    int need_dense = mode == ECP_ENGINE_DENSE ||
                     (mode == ECP_ENGINE_AUTO && !(S->density < be_b1 && S->density < be_bn));
    int need_sparse = mode != ECP_ENGINE_DENSE;

    /* Batch-1 plan. Costs in units of one CSR non-zero: CSR costs d per weight, dense
     * be_b1 per weight (the definition of the break-even), CSC CSC_COST per visited non-zero,
     * a dense-typed column CSC_COST * dcol_vec per vector. The row kernel costs R whatever the
     * input; the column kernel C per non-zero input on average, so it wins while nx < R / C. */
    double n_w = (double)L->n_in * (double)L->n_out, d = S->density;
    int big = (double)n_w * sizeof(float) > BIG_LAYER_BYTES;
    double dcol_vec = (big ? DCOL_VEC_MEM : DCOL_VEC_CACHE) * (S->ldo / ECP_VW);
    if (mode == ECP_ENGINE_DENSE) {
        S->k_row = ECP_KERNEL_DENSE;
        S->k_col = ECP_KERNEL_CSC;
        S->nx_col_max = 0;
    } else {
        S->k_row = mode == ECP_ENGINE_SPARSE || !need_dense || d < be_b1 ? ECP_KERNEL_CSR
                                                                         : ECP_KERNEL_DENSE;
        S->dmap = ecp_alloc((size_t)L->n_in, sizeof *S->dmap, "sparse engine", err);
        if (!S->dmap)
            return ECP_ERR_MEMORY;
        double sum2 = 0, C = 0;
        for (int i = 0; i < L->n_in; i++) {
            int64_t k = 0;
            for (int o = 0; o < L->n_out; o++) {
                size_t at = (size_t)o * L->n_in + (size_t)i;
                k += !L->pruned[at] && L->W[at] != 0.0f;
            }
            sum2 += (double)k * (double)k;
            /* dense columns only in auto mode ("sparse" forces the sparse formats) */
            int dense = mode == ECP_ENGINE_AUTO && big && (double)k > dcol_vec;
            S->dmap[i] = dense ? S->n_dcols++ : -1;
            C += CSC_COST * (dense ? dcol_vec : (double)k);
        }
        C /= L->n_in;
        if (mode == ECP_ENGINE_AUTO && !big && S->nnz > 0 &&
            sum2 / (double)S->nnz > dcol_vec) { /* the whole in-cache layer goes DCOL */
            S->n_dcols = L->n_in;
            for (int i = 0; i < L->n_in; i++)
                S->dmap[i] = i;
            C = CSC_COST * dcol_vec;
        }
        S->k_col = S->n_dcols ? ECP_KERNEL_DCOL : ECP_KERNEL_CSC;
        double R = (S->k_row == ECP_KERNEL_CSR ? d : be_b1) * n_w;
        /* the window-permute layout replaces the row kernel when cheaper; it has no threads,
         * so a layer large enough to be split keeps CSR on several */
        if (ECP_WPERM_FAST && S->nnz > 0 && (threads == 1 || !big) &&
            (S->k_row == ECP_KERNEL_CSR || mode == ECP_ENGINE_AUTO)) {
            double slots = (double)ecp_wperm_slots(L->W, L->pruned, L->n_out, L->n_in);
            double rp = (big ? WPERM_SLOT_MEM : WPERM_SLOT_CACHE) * slots;
            /* streamed from memory, a layout that reads more bytes than the dense weights
             * (5 per slot, 3 with bf16 values, against 4 per weight) cannot beat them, whatever
             * the constants say: 1024-4096-4096-1024 dense took it in auto mode and ran at half
             * dense's speed */
            int more_bytes = big && S->k_row == ECP_KERNEL_DENSE &&
                             (bf16 ? 3.0 : 5.0) * slots >= 4.0 * n_w;
            if (rp >= 0 && rp < R && !more_bytes) {
                S->k_row = ECP_KERNEL_WPERM;
                R = rp;
            }
        }
        double nx = C > 0 ? R / C : (double)INT_MAX;
        S->nx_col_max = nx >= (double)INT_MAX ? INT_MAX : (int)nx;
    }
    if (need_dense) {
        size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        S->W = ecp_alloc(nw, sizeof *S->W, "sparse engine", err);
        if (!S->W)
            return ECP_ERR_MEMORY;
        /* Masked weights are exactly zero by the model's invariant; zero them anyway so that
         * dense and sparse compute the same function even if a caller broke it. */
        for (size_t i = 0; i < nw; i++)
            S->W[i] = L->pruned[i] ? 0.0f : L->W[i];
        if (pack) {
            ecp_status st = ecp_wpack_build(&S->wp, S->W, L->n_out, L->n_in, err);
            if (st)
                return st;
        }
    }
    if (S->n_dcols) {
        S->WT = ecp_alloc_aligned((size_t)S->n_dcols * (size_t)S->ldo, err);
        if (!S->WT)
            return ECP_ERR_MEMORY;
        for (int i = 0; i < L->n_in; i++) {
            if (S->dmap[i] < 0)
                continue;
            float *r = S->WT + (size_t)S->dmap[i] * S->ldo;
            for (int o = 0; o < S->ldo; o++) {
                size_t at = (size_t)o * L->n_in + (size_t)i;
                r[o] = o < L->n_out && !L->pruned[at] ? L->W[at] : 0.0f;
            }
        }
    }
    if (need_sparse) {
        ecp_status st = ecp_spmat_build(&S->csr, L->W, L->pruned, L->n_out, L->n_in, 0, err);
        if (!st && bf16)
            st = ecp_spmat_bf16(&S->csr, err);
        if (st)
            return st;
        if (S->k_row == ECP_KERNEL_WPERM &&
            (st = ecp_wperm_build(&S->wperm, L->W, L->pruned, L->n_out, L->n_in, bf16, err)))
            return st;
        if (S->n_dcols < L->n_in) {
            /* the CSC holds only the columns that are not dense-typed */
            const uint8_t *mask = L->pruned;
            uint8_t *m2 = NULL;
            if (S->n_dcols) {
                size_t nw = (size_t)L->n_in * (size_t)L->n_out;
                m2 = ecp_alloc(nw, 1, "sparse engine", err);
                if (!m2)
                    return ECP_ERR_MEMORY;
                for (size_t i = 0; i < nw; i++)
                    m2[i] = L->pruned[i] || S->dmap[i % (size_t)L->n_in] >= 0;
                mask = m2;
            }
            st = ecp_spmat_build(&S->csc, L->W, mask, L->n_out, L->n_in, 1, err);
            free(m2);
            if (st)
                return st;
        }
    }
    return ECP_OK;
}

/* ------------------------------------------------------------------ structural simplification */

/* The engine runs a simplified copy of the network (auto and sparse modes; "dense" stays the
 * plain OpenBLAS reference). Exact up to float rounding of the folded biases:
 *  - a hidden neuron whose incoming weights are all pruned (or come only from removed neurons)
 *    outputs the constant act(b_i): W_next[:, i] * act(b_i) is added to the next layer's bias
 *    (summed in double, rounded once) and the neuron is removed;
 *  - a hidden neuron none of whose outgoing weights survive (to live neurons) is never read: its
 *    row is removed;
 *  - both repeat until nothing changes (removing one can empty a row or column elsewhere);
 *  - input columns whose every weight is pruned stay in layer 0 (the input is not copied) but
 *    leave the batch-1 list of non-zero inputs through a bit mask, so they are never visited.
 * A hidden layer keeps at least one neuron (computed normally), so no layer is ever empty.
 * Why: at batch 1 the DCOL kernel reads whole WT rows of ldo floats per non-zero input, and the
 * run is bound by L2 bandwidth; fewer neurons means shorter rows and fewer rows.
 * 784-300-100-10 (ec, 90 %, mnist): see the numbers at the top of this file. */
static int kept_w(const ecp_layer *L, size_t at) { return !L->pruned[at] && L->W[at] != 0.0f; }

static void free_layers(ecp_layer *c, int n)
{
    if (!c)
        return;
    for (int l = 0; l < n; l++) {
        free(c[l].W);
        free(c[l].b);
        free(c[l].pruned);
    }
    free(c);
}

static ecp_status simplify(const ecp_mlp *m, ecp_layer **out, uint16_t **in_live, ecp_error *err)
{
    const int nl = m->n_layers;
    ecp_status st = ECP_ERR_MEMORY;
    *out = NULL;
    *in_live = NULL;
    uint8_t **alive = ecp_zalloc((size_t)nl + 1, sizeof *alive, "sparse engine", err);
    double **bias = ecp_zalloc((size_t)nl, sizeof *bias, "sparse engine", err);
    int *n_alive = ecp_zalloc((size_t)nl + 1, sizeof *n_alive, "sparse engine", err);
    ecp_layer *c = ecp_zalloc((size_t)nl, sizeof *c, "sparse engine", err);
    int wmax = 1;
    for (int l = 0; l <= nl; l++)
        wmax = m->sizes[l] > wmax ? m->sizes[l] : wmax;
    int32_t *idx = ecp_alloc((size_t)wmax, sizeof *idx, "sparse engine", err);
    if (!alive || !bias || !n_alive || !c || !idx)
        goto done;
    for (int l = 0; l <= nl; l++) {
        alive[l] = ecp_alloc((size_t)m->sizes[l], 1, "sparse engine", err);
        if (!alive[l])
            goto done;
        memset(alive[l], 1, (size_t)m->sizes[l]);
        n_alive[l] = m->sizes[l];
    }
    for (int l = 0; l < nl; l++) {
        bias[l] = ecp_alloc((size_t)m->sizes[l + 1], sizeof *bias[l], "sparse engine", err);
        if (!bias[l])
            goto done;
        for (int o = 0; o < m->sizes[l + 1]; o++)
            bias[l][o] = m->layer[l].b[o];
    }
    for (int changed = 1; changed;) {
        changed = 0;
        /* dead input, forwards so that constants propagate in one pass */
        for (int l = 0; l + 1 < nl; l++) {
            const ecp_layer *L = &m->layer[l], *N = &m->layer[l + 1];
            for (int i = 0; i < L->n_out && n_alive[l + 1] > 1; i++) {
                if (!alive[l + 1][i])
                    continue;
                int any = 0;
                for (int j = 0; j < L->n_in && !any; j++)
                    any = alive[l][j] && kept_w(L, (size_t)i * L->n_in + j);
                if (any)
                    continue;
                float pre = (float)bias[l][i], k;
                ecp_act_forward_p(L->act, L->act_p, &pre, &k, 1);
                if (k != 0.0f)
                    for (int o = 0; o < N->n_out; o++) {
                        size_t at = (size_t)o * N->n_in + i;
                        if (kept_w(N, at))
                            bias[l + 1][o] += (double)N->W[at] * (double)k;
                    }
                alive[l + 1][i] = 0;
                n_alive[l + 1]--;
                changed = 1;
            }
        }
        /* dead output, backwards */
        for (int l = nl - 2; l >= 0; l--) {
            const ecp_layer *N = &m->layer[l + 1];
            for (int i = 0; i < N->n_in && n_alive[l + 1] > 1; i++) {
                if (!alive[l + 1][i])
                    continue;
                int any = 0;
                for (int o = 0; o < N->n_out && !any; o++)
                    any = alive[l + 2][o] && kept_w(N, (size_t)o * N->n_in + i);
                if (any)
                    continue;
                alive[l + 1][i] = 0;
                n_alive[l + 1]--;
                changed = 1;
            }
        }
    }
    /* input columns without a kept weight into a live neuron */
    const ecp_layer *L0 = &m->layer[0];
    int dead_in = 0;
    for (int j = 0; j < L0->n_in; j++) {
        int any = 0;
        for (int o = 0; o < L0->n_out && !any; o++)
            any = alive[1][o] && kept_w(L0, (size_t)o * L0->n_in + j);
        alive[0][j] = (uint8_t)any;
        dead_in += !any;
    }
    if (dead_in) {
        size_t nw = ((size_t)L0->n_in + 15) / 16;
        *in_live = ecp_zalloc(nw, sizeof **in_live, "sparse engine", err);
        if (!*in_live)
            goto done;
        for (int j = 0; j < L0->n_in; j++)
            (*in_live)[j / 16] |= (uint16_t)(alive[0][j] << (j % 16));
    }
    /* the compacted layers: rows = live neurons (every output of the last layer), columns =
     * live neurons of the previous layer (every input of layer 0); none when no neuron was
     * removed (*out stays NULL: the engine reads the model, no copy of 21M weights for
     * 1024-4096-4096-1024) */
    int removed = 0;
    for (int l = 1; l < nl; l++)
        removed += n_alive[l] < m->sizes[l];
    for (int l = 0; l < nl && removed; l++) {
        const ecp_layer *L = &m->layer[l];
        int ni = 0, no = 0;
        if (l == 0)
            for (int j = 0; j < L->n_in; j++)
                idx[ni++] = j;
        else
            for (int j = 0; j < L->n_in; j++)
                if (alive[l][j])
                    idx[ni++] = j;
        for (int o = 0; o < L->n_out; o++)
            no += l + 1 == nl || alive[l + 1][o];
        c[l].n_in = ni;
        c[l].n_out = no;
        c[l].act = L->act;
        memcpy(c[l].act_p, L->act_p, sizeof c[l].act_p);
        c[l].W = ecp_alloc((size_t)ni * (size_t)no, sizeof *c[l].W, "sparse engine", err);
        c[l].pruned = ecp_alloc((size_t)ni * (size_t)no, 1, "sparse engine", err);
        c[l].b = ecp_alloc((size_t)no, sizeof *c[l].b, "sparse engine", err);
        if (!c[l].W || !c[l].pruned || !c[l].b)
            goto done;
        for (int o = 0, r = 0; o < L->n_out; o++) {
            if (!(l + 1 == nl || alive[l + 1][o]))
                continue;
            c[l].b[r] = (float)bias[l][o];
            for (int q = 0; q < ni; q++) {
                size_t at = (size_t)o * L->n_in + (size_t)idx[q], to = (size_t)r * ni + q;
                c[l].pruned[to] = L->pruned[at];
                c[l].W[to] = L->W[at];
            }
            r++;
        }
    }
    if (removed) {
        *out = c;
        c = NULL;
    }
    st = ECP_OK;
done:
    if (st) {
        free(*in_live);
        *in_live = NULL;
    }
    free_layers(c, nl);
    for (int l = 0; alive && l <= nl; l++)
        free(alive[l]);
    for (int l = 0; bias && l < nl; l++)
        free(bias[l]);
    free(alive);
    free(bias);
    free(n_alive);
    free(idx);
    return st;
}

static void nm_pick(ecp_sparse_net *s, sp_layer *S, int force);

/* The engine of w (m itself, or its weights rounded to bf16); m's own weights are what
 * introspection counts. o is valid. */
static ecp_status create(ecp_sparse_net **out, const ecp_mlp *m, const ecp_mlp *w,
                         const ecp_sparse_opts *o, ecp_error *err)
{
    ecp_sparse_tune_result tr;
    ecp_sparse_tune_load(&tr, NULL); /* defaults when there is no (valid) cache file */
    double b1s = o->be_b1_small >= 0 ? o->be_b1_small : tr.b1_small;
    double b1l = o->be_b1_large >= 0 ? o->be_b1_large : tr.b1_large;
    double bn = o->be_bn >= 0 ? o->be_bn : tr.bn;

    ecp_sparse_net *s = ecp_zalloc(1, sizeof *s, "sparse engine", err);
    if (!s)
        return ECP_ERR_MEMORY;
    s->n_layers = w->n_layers;
    s->n_in = w->sizes[0];
    s->n_out = w->sizes[w->n_layers];
    s->cap = o->max_batch < CHUNK ? o->max_batch : CHUNK;
    s->mode = o->mode;
    s->be_bn = bn;
    s->threads = o->threads > 0 ? o->threads : ecp_online_cores();
    ecp_status pst = s->threads > 1 ? ecp_pool_create(s->threads, &s->pool, err) : ECP_OK;
    if (pst) {
        ecp_sparse_free(s);
        return pst;
    }
    s->layer = ecp_zalloc((size_t)w->n_layers, sizeof *s->layer, "sparse engine", err);
    if (!s->layer) {
        ecp_sparse_free(s);
        return ECP_ERR_MEMORY;
    }
    for (int i = 0; i <= w->n_layers; i++)
        s->wmax = w->sizes[i] > s->wmax ? w->sizes[i] : s->wmax;
    ecp_layer *simple = NULL;
    if (o->mode != ECP_ENGINE_DENSE) {
        ecp_status st = simplify(w, &simple, &s->in_live, err);
        if (st) {
            ecp_sparse_free(s);
            return st;
        }
    }
    for (int l = 0; l < w->n_layers; l++) {
        const ecp_layer *L = simple ? &simple[l] : &w->layer[l];
        int big = (double)L->n_in * L->n_out * sizeof(float) > BIG_LAYER_BYTES;
        ecp_status st = build_layer(&s->layer[l], L, o->mode, big ? b1l : b1s, bn,
                                     s->threads == 1 && s->cap > 1, s->threads, o->bf16, err);
        if (st) {
            free_layers(simple, w->n_layers);
            ecp_sparse_free(s);
            return st;
        }
        if (o->nm >= 0 && o->mode != ECP_ENGINE_DENSE && w->nm_n && l < 64 &&
            ((w->nm_layers >> l) & 1) &&
            ecp_nmmat_build(&s->layer[l].nm, L->W, L->n_out, L->n_in, w->nm_n, w->nm_m, NULL))
            memset(&s->layer[l].nm, 0, sizeof s->layer[l].nm); /* simplify broke the groups */
        /* introspection reports the model's weights, kept and all */
        s->nnz += ecp_spmat_count(m->layer[l].W, m->layer[l].pruned, m->layer[l].n_out,
                                  m->layer[l].n_in);
        s->n_weights += (int64_t)m->layer[l].n_in * m->layer[l].n_out;
    }
    free_layers(simple, w->n_layers);
    size_t nbuf = ecp_fm_ld(s->cap) * (size_t)s->wmax;
    size_t wpad = (size_t)(s->wmax + ECP_VW - 1) / ECP_VW * ECP_VW;
    for (int i = 0; i < 2; i++) {
        s->buf[i] = ecp_alloc_aligned(nbuf > wpad ? nbuf : wpad, err);
        if (!s->buf[i]) {
            ecp_sparse_free(s);
            return ECP_ERR_MEMORY;
        }
    }
    for (int l = 0; l < s->n_layers && !s->gemm_work; l++)
        if (s->layer[l].wp.w && !(s->gemm_work = ecp_alloc_aligned(ecp_gemm_work_floats(s->cap),
                                                                    err))) {
            ecp_sparse_free(s);
            return ECP_ERR_MEMORY;
        }
    s->nz = ecp_alloc((size_t)s->wmax, sizeof *s->nz, "sparse engine", err);
    s->ld_x = ecp_alloc((size_t)s->wmax, sizeof *s->nz, "sparse engine", err);
    s->ld_r = ecp_alloc((size_t)s->wmax, sizeof *s->nz, "sparse engine", err);
    s->ls = ecp_alloc((size_t)s->wmax, sizeof *s->nz, "sparse engine", err);
    if (!s->nz || !s->ld_x || !s->ld_r || !s->ls) {
        ecp_sparse_free(s);
        return ECP_ERR_MEMORY;
    }
    for (int l = 0; l < s->n_layers; l++)
        if (s->layer[l].nm.val)
            nm_pick(s, &s->layer[l], o->nm > 0);
    *out = s;
    return ECP_OK;
}

static void round_bf16_free(ecp_mlp *r)
{
    for (int l = 0; r->layer && l < r->n_layers; l++)
        free(r->layer[l].W);
    free(r->layer);
    r->layer = NULL;
}

/* The model with every weight rounded to the nearest bf16 (ecp_sparse_opts.bf16): a shallow
 * copy of m whose layers hold rounded copies of W (biases, masks and all the rest are m's).
 * The engine builds every layout from it, so each kernel computes with the same bf16 values
 * and the result does not depend on which one runs; the row layouts (window-permute, CSR)
 * also store them in 16 bits. r->layer is NULL when this fails. */
static ecp_status round_bf16(const ecp_mlp *m, ecp_mlp *r, ecp_error *err)
{
    *r = *m;
    r->layer = ecp_zalloc((size_t)m->n_layers, sizeof *r->layer, "sparse engine", err);
    if (!r->layer)
        return ECP_ERR_MEMORY;
    for (int l = 0; l < m->n_layers; l++) {
        const ecp_layer *L = &m->layer[l];
        const size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        r->layer[l] = *L;
        r->layer[l].W = ecp_alloc(nw, sizeof *L->W, "sparse engine", err);
        if (!r->layer[l].W) {
            round_bf16_free(r);
            return ECP_ERR_MEMORY;
        }
        for (size_t i = 0; i < nw; i++)
            r->layer[l].W[i] = ecp_bf16_round(L->W[i]);
    }
    return ECP_OK;
}

ecp_status ecp_sparse_create(ecp_sparse_net **out, const ecp_mlp *m, const ecp_sparse_opts *o,
                             ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(m, err);
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
    if (o->bf16 != 0 && o->bf16 != 1)
        return ecp_fail(err, ECP_ERR_ARG, "sparse engine: bf16 %d: 0 (float32 weights) or 1 "
                        "(weights rounded to bfloat16)", o->bf16);
    if (!o->bf16)
        return create(out, m, m, o, err);
    ecp_mlp rounded;
    ecp_status st = round_bf16(m, &rounded, err);
    if (!st)
        st = create(out, m, &rounded, o, err);
    round_bf16_free(&rounded);
    return st;
}

/* ------------------------------------------------------------------ choice of kernel */

static ecp_sparse_kernel choose_bn(const ecp_sparse_net *s, const sp_layer *S)
{
    if (s->mode == ECP_ENGINE_DENSE)
        return ECP_KERNEL_DENSE;
    if (s->mode == ECP_ENGINE_SPARSE || !S->W)
        return ECP_KERNEL_CSR;
    return S->density < s->be_bn ? ECP_KERNEL_CSR : ECP_KERNEL_DENSE;
}

/* ------------------------------------------------------------------ forward */

/* Batch 1. The list of non-zero inputs is built once on entry and then by each layer's
 * activation pass (ReLU fused with it), so choosing the kernel is one compare per layer and the
 * column kernels walk only the listed inputs. No allocation, no counting pass. */
static ecp_status forward_b1(ecp_sparse_net *s, const float *x, float *y, ecp_error *err)
{
    const int lists = s->mode != ECP_ENGINE_DENSE;
    /* count first: the list is built only when layer 0 will walk it; on a dense input building
     * it costs several times the count (docs/PERF.md) */
    int nx = lists ? ecp_nz_count(x, s->n_in, s->in_live) : 0;
    if (lists && nx < s->layer[0].nx_col_max)
        nx = s->in_live ? ecp_nz_list_mask(x, s->n_in, s->in_live, s->nz)
                        : ecp_nz_list(x, s->n_in, s->nz);
    const float *cur = x;
    for (int l = 0; l < s->n_layers; l++) {
        const sp_layer *S = &s->layer[l];
        float *out = s->buf[l & 1];
        int fused = 0;
        if (lists && nx < S->nx_col_max) {
            if (S->n_dcols == S->n_in) /* every column dense: WT row = input index */
                ecp_dcol_list(S->WT, S->ldo, cur, s->nz, s->nz, nx, S->b, out);
            else if (S->n_dcols == 0)
                ecp_spmv_csc_list(&S->csc, cur, s->nz, nx, S->b, out);
            else {
                int nd = 0, ns = 0;
                for (int q = 0; q < nx; q++) { /* branch-free split of the list */
                    const int c = s->nz[q], r = S->dmap[c];
                    s->ld_x[nd] = c;
                    s->ld_r[nd] = r;
                    s->ls[ns] = c;
                    nd += r >= 0;
                    ns += r < 0;
                }
                ecp_dcol_list(S->WT, S->ldo, cur, s->ld_x, s->ld_r, nd, S->b, out);
                ecp_spmv_csc_list(&S->csc, cur, s->ls, ns, NULL, out);
            }
        } else if (S->nm_b1) {
            ecp_nm_gemv(&S->nm, cur, S->b, out);
        } else if (S->k_row == ECP_KERNEL_WPERM) {
            ecp_wperm_gemv(&S->wperm, cur, S->b, out);
        } else if (S->k_row == ECP_KERNEL_CSR) {
            ecp_spmv_csr_mt(&S->csr, cur, S->b, out, s->pool);
        } else if (!s->pool) {
            /* the activation is fused unless the list pass below applies it */
            fused = !(lists && l + 1 < s->n_layers);
            ecp_gemv_rows(S->W, S->n_out, S->n_in, cur, S->b,
                          fused ? S->act : ECP_ACT_IDENTITY, S->act_p, out);
        } else {
            memcpy(out, S->b, (size_t)S->n_out * sizeof *out);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, S->n_out, S->n_in, 1.0f, S->W, S->n_in,
                        cur, 1, 1.0f, out, 1);
        }
        if (!fused) {
            if (lists && l + 1 < s->n_layers) {
                if (S->act == ECP_ACT_RELU)
                    nx = ecp_relu_nz_list(out, S->n_out, s->nz);
                else {
                    ecp_act_forward_p(S->act, S->act_p, out, out, (size_t)S->n_out);
                    nx = ecp_nz_list(out, S->n_out, s->nz);
                }
            } else
                ecp_act_forward_p(S->act, S->act_p, out, out, (size_t)S->n_out);
        }
        cur = out;
    }
    memcpy(y, cur, (size_t)s->n_out * sizeof *y);
    return ECP_OK;
}

/* The layer's activation on the B used columns of each row of YT (row stride ld). */
static void act_rows(const sp_layer *S, float *YT, int B, size_t ld)
{
    if (S->act == ECP_ACT_IDENTITY)
        return;
    if (ld == (size_t)B)
        ecp_act_forward_p(S->act, S->act_p, YT, YT, (size_t)B * S->n_out);
    else
        for (int o = 0; o < S->n_out; o++)
            ecp_act_forward_p(S->act, S->act_p, YT + (size_t)o * ld, YT + (size_t)o * ld,
                              (size_t)B);
}

/* 1 when a dense layer at batch B runs the narrow kernel rather than the wide one (with
 * AVX-512: up to 6 samples always, up to 12 when its weights stay in cache). */
static int narrow_bn(const sp_layer *S, int B)
{
    const int big = (double)S->n_in * S->n_out * sizeof(float) > BIG_LAYER_BYTES;
    return ecp_gemm_narrow_pays(B, !big);
}

/* 1 when layer_bn runs the layer on the wide packed GEMM at this batch (the branches before it
 * in layer_bn not taken). */
static int packed_bn(const ecp_sparse_net *s, const sp_layer *S, int B)
{
    return !S->nm_bn && choose_bn(s, S) != ECP_KERNEL_CSR && !narrow_bn(S, B) && S->wp.w;
}

/* One layer at batch B > 1, activation included, the batch feature-major: rows of XT and YT
 * ld = ecp_fm_ld(B) apart. */
static ecp_status layer_bn(ecp_sparse_net *s, const sp_layer *S, const float *XT, int B,
                           size_t ld, float *YT, ecp_error *err)
{
    if (S->nm_bn) {
        ecp_nm_gemm(&S->nm, XT, B, ld, S->b, YT);
        act_rows(S, YT, B, ld);
        return ECP_OK;
    }
    if (choose_bn(s, S) == ECP_KERNEL_CSR) {
        ecp_spmm_csr_mt(&S->csr, XT, B, ld, S->b, YT, s->pool);
        act_rows(S, YT, B, ld);
        return ECP_OK;
    }
    if (S->wp.w && narrow_bn(S, B)) {
        ecp_gemm_narrow(&S->wp, XT, B, ld, S->b, S->act, S->act_p, YT, s->gemm_work);
        return ECP_OK;
    }
    if (S->wp.w) {
        ecp_gemm_packed(&S->wp, XT, B, ld, S->b, S->act, S->act_p, YT, s->gemm_work);
        return ECP_OK;
    }
    for (int o = 0; o < S->n_out; o++) {
        float *r = YT + (size_t)o * ld;
        for (int j = 0; j < B; j++)
            r[j] = S->b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S->n_out, B, S->n_in, 1.0f, S->W,
                S->n_in, XT, (int)ld, 1.0f, YT, (int)ld);
    act_rows(S, YT, B, ld);
    return ECP_OK;
}

static ecp_status forward_chunk(ecp_sparse_net *s, const float *x, int B, float *y,
                                ecp_error *err)
{
    if (B == 1)
        return forward_b1(s, x, y, err);
    float *cur = s->buf[0], *nxt = s->buf[1];
    const size_t ld = ecp_fm_ld(B);
    int l0 = 0;
    if (packed_bn(s, &s->layer[0], B)) { /* the transpose happens in its packing */
        const sp_layer *S = &s->layer[0];
        ecp_gemm_packed_rows(&S->wp, x, B, (size_t)s->n_in, ld, S->b, S->act, S->act_p, cur,
                             s->gemm_work);
        l0 = 1;
    } else
        ecp_transpose(x, B, s->n_in, (size_t)s->n_in, cur, ld, 0);
    for (int l = l0; l < s->n_layers; l++) {
        const sp_layer *S = &s->layer[l];
        ecp_status st = layer_bn(s, S, cur, B, ld, nxt, err);
        if (st)
            return st;
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    ecp_transpose(cur, s->n_out, B, ld, y, (size_t)s->n_out, 0);
    return ECP_OK;
}

ecp_status ecp_sparse_forward(ecp_sparse_net *s, const float *x, int batch, float *y,
                              ecp_error *err)
{
    ECP_REQUIRE(s, err);
    if (batch < 0)
        return ecp_fail(err, ECP_ERR_ARG, "sparse forward: batch %d < 0", batch);
    if (batch > 0) {
        ECP_REQUIRE(x, err);
        ECP_REQUIRE(y, err);
    }
    /* The dense layers run on OpenBLAS with the engine's own thread count. */
    int prev_threads = ecp_blas_threads_push(s->threads);
    ecp_status st = ECP_OK;
    for (int done = 0; done < batch && !st;) {
        /* equal chunks: 300 runs as 150 + 150, not 256 + 44 */
        const int left = batch - done, n_chunks = (left + s->cap - 1) / s->cap;
        const int B = (left + n_chunks - 1) / n_chunks;
        st = forward_chunk(s, x + (size_t)done * s->n_in, B, y + (size_t)done * s->n_out, err);
        done += B;
    }
    ecp_blas_threads_pop(prev_threads);
    return st;
}

/* ------------------------------------------------------------------ N:M, by measurement */

/* Seconds per call of the kernel the layer would run (nm = 0) or of the N:M one, at batch B on
 * the engine's buffers: the best of 5 timings of enough calls to fill about 0.2 ms. */
static double nm_time(ecp_sparse_net *s, const sp_layer *S, int B, int nm)
{
    float *X = s->buf[0], *Y = s->buf[1];
    double best = 1e30;
    int reps = 1;
    for (int trial = 0; trial < 6; trial++) {
        double t0 = ecp_now();
        for (int r = 0; r < reps; r++) {
            if (B == 1 && nm)
                ecp_nm_gemv(&S->nm, X, S->b, Y);
            else if (B == 1 && S->k_row == ECP_KERNEL_WPERM)
                ecp_wperm_gemv(&S->wperm, X, S->b, Y);
            else if (B == 1 && S->k_row == ECP_KERNEL_CSR)
                ecp_spmv_csr_mt(&S->csr, X, S->b, Y, s->pool);
            else if (B == 1 && !s->pool)
                ecp_gemv_rows(S->W, S->n_out, S->n_in, X, S->b, ECP_ACT_IDENTITY, NULL, Y);
            else if (B == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, S->n_out, S->n_in, 1.0f, S->W,
                            S->n_in, X, 1, 1.0f, Y, 1);
            else if (nm)
                ecp_nm_gemm(&S->nm, X, B, ecp_fm_ld(B), S->b, Y);
            else
                layer_bn(s, S, X, B, ecp_fm_ld(B), Y, NULL);
        }
        double t = (ecp_now() - t0) / reps;
        if (trial == 0) /* the first is the warm-up and sets the count */
            reps = t > 2e-4 ? 1 : (int)(2e-4 / (t > 1e-8 ? t : 1e-8)) + 1;
        else if (t < best)
            best = t;
    }
    return best;
}

/* The N:M kernel replaces the row kernel at batch 1 (the column kernels still serve sparse
 * inputs) and the batch kernel at the engine's chunk size where it is faster, or everywhere
 * when forced. The input is dense and uniform in [0, 1): the row kernels' cost does not depend
 * on its values. */
static void nm_pick(ecp_sparse_net *s, sp_layer *S, int force)
{
    if (force) {
        S->nm_b1 = S->nm_bn = 1;
        return;
    }
    if (s->mode != ECP_ENGINE_AUTO)
        return;
    int prev = ecp_blas_threads_push(s->threads);
    size_t n = ecp_fm_ld(s->cap) * (size_t)s->wmax;
    for (size_t i = 0; i < n; i++)
        s->buf[0][i] = (float)((i * 2654435761u) % 1000u) / 1000.0f;
    S->nm_b1 = nm_time(s, S, 1, 1) < nm_time(s, S, 1, 0);
    S->nm_bn = s->cap > 1 && nm_time(s, S, s->cap, 1) < nm_time(s, S, s->cap, 0);
    ecp_blas_threads_pop(prev);
}

int ecp_sparse_layer_nm(const ecp_sparse_net *s, int l, int batch)
{
    if (!s || l < 0 || l >= s->n_layers)
        return 0;
    const sp_layer *S = &s->layer[l];
    return batch > 1 ? S->nm_bn : S->nm_b1 && S->n_in >= S->nx_col_max;
}

/* ------------------------------------------------------------------ introspection */

int ecp_sparse_n_in(const ecp_sparse_net *s) { return s ? s->n_in : 0; }
int ecp_sparse_n_out(const ecp_sparse_net *s) { return s ? s->n_out : 0; }
int64_t ecp_sparse_nnz(const ecp_sparse_net *s) { return s ? s->nnz : 0; }
int64_t ecp_sparse_n_weights(const ecp_sparse_net *s) { return s ? s->n_weights : 0; }

double ecp_sparse_density(const ecp_sparse_net *s)
{
    return s && s->n_weights ? (double)s->nnz / (double)s->n_weights : 0.0;
}

ecp_sparse_kernel ecp_sparse_layer_kernel(const ecp_sparse_net *s, int l, int batch)
{
    if (!s || l < 0 || l >= s->n_layers)
        return ECP_KERNEL_DENSE;
    const sp_layer *S = &s->layer[l];
    if (batch > 1)
        return choose_bn(s, S);
    /* Without an input at hand, batch 1 is described for a dense input (nx = n_in). */
    return S->n_in < S->nx_col_max ? S->k_col : S->k_row;
}

static double spmat_bytes(const ecp_spmat *a)
{
    return a->ptr ? (double)a->nnz * ((a->idx16 ? 2 : 4) + (a->val16 ? 2 : 4)) +
                        8.0 * (a->n_major + 1)
                  : 0;
}

double ecp_sparse_b1_bytes(const ecp_sparse_net *s)
{
    double bytes = 0;
    for (int l = 0; s && l < s->n_layers; l++) {
        const sp_layer *S = &s->layer[l];
        switch (ecp_sparse_layer_kernel(s, l, 1)) {
        case ECP_KERNEL_DENSE: bytes += 4.0 * S->n_in * S->n_out; break;
        case ECP_KERNEL_CSR: bytes += spmat_bytes(&S->csr); break;
        case ECP_KERNEL_CSC: bytes += spmat_bytes(&S->csc); break;
        case ECP_KERNEL_DCOL:
            bytes += 4.0 * S->n_dcols * S->ldo + spmat_bytes(&S->csc);
            break;
        case ECP_KERNEL_WPERM: {
            const ecp_wperm *w = &S->wperm;
            /* 16 slots per step: 4-byte values (2 as bf16) and 1-byte offsets */
            bytes += (w->val16 ? 48.0 : 80.0) * w->steps + 4.0 * w->n_seg +
                     8.0 * (w->n_groups + 1) + (w->sorted ? 64.0 * w->n_groups : 0) +
                     (w->cols ? 4.0 * w->n_cols : 0);
            break;
        }
        }
    }
    return bytes;
}

const char *ecp_sparse_kernel_name(ecp_sparse_kernel k)
{
    switch (k) {
    case ECP_KERNEL_DENSE: return "dense";
    case ECP_KERNEL_CSR: return "csr";
    case ECP_KERNEL_CSC: return "csc";
    case ECP_KERNEL_DCOL: return "dcol";
    case ECP_KERNEL_WPERM: return "wperm";
    }
    return "?";
}
