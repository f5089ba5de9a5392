/* The calibration pass for the `output` and `loss` sensitivities, done without the work that is
 * known to be zero (stats.c calls it; the result is the same statistics as the dense pass, to
 * rounding).
 *
 * Where the dense pass multiplies zeros:
 *  - forward: z = b + sum over the NON-ZERO inputs a_j of a_j W[:,j] (mnist: 81 % of the pixels
 *    and ~half of the ReLU outputs are exactly 0);
 *  - sensitivities: the K vector-Jacobian products are carried per sample as a K x n_l block
 *    J_l = (J_{l+1} W_{l+1}) o act'_l, and the product only runs over the units of layer l+1 with
 *    act' != 0 (the columns of J_{l+1} that are not zero: dead ReLU units). The top layer is
 *    diagonal (J = diag(act'(z_L))), so the layer below it is a row scaling of W, no product;
 *  - moments: M1^T[j,:] = sum_n (a_nj - c_j) S[n,:], M2^T[j,:] = sum_n (a_nj - c_j)^2 S[n,:]
 *    (both from one pass over the same entries) over the entries with a_nj != c_j only.
 *
 * The loss sensitivity is the output one with the rows of J weighted: s = sum_k w_k J_k^2, with
 * w_k = 2/K for the mean squared error (its Hessian in y is (2/K) I), and for cross-entropy
 * s = sum_k p_k J_k^2 - (sum_k p_k J_k)^2 (Hessian diag(p) - p p^T, p the softmax of y), which
 * needs the second sum carried beside the first.
 *
 * The reference value c_j (METHOD.md: the moments are taken around a per-column reference
 * because m2 - m1^2/m0 cancels when the variance is small against the mean squared):
 *    c_j = 0                          if at least half of a_j over the first batch is exactly 0
 *                                     (0 is then the median and the mode of the column),
 *    c_j = mean of a_j over the first batch   otherwise (as the dense pass).
 * With c_j = 0 the zeros stay zeros, so the moment products skip them. Precision: for a column
 * whose values are 0 with (weighted) frequency 1-q, Cauchy-Schwarz gives mean^2 <= q E[a^2], so
 * m2/(m2 - m1^2/m0) <= 1/(1-q): around 0 the cancellation costs a factor ~1/(1-q) (~2 for
 * q = 1/2), not the mean^2/var of an offset column. Columns with a common offset (no zeros,
 * e.g. inputs + 3) keep the first-batch mean as before.
 *
 * Per batch the products accumulate in float (<= ECP_STATS_BATCH terms) and are added into double,
 * as the dense pass. Batches are split over the BLAS thread count (a thread pool started for
 * the pass: its jobs are whole batches, so the start-up is noise), each share with its own
 * double accumulators, summed at the end in a fixed order. Under MPI the threads share this process's
 * contiguous block of batches (stats.c sums the processes). */
#include "prune.h"
#include <cblas.h>
/* -std=c11 turns off the contraction of a*b+c into FMA in GCC; these kernels want it (the
 * BLAS products they replace use FMA too). */
#pragma GCC optimize("fp-contract=fast")
#include "../core/simd.h"

#define RG 5 /* rows of J (outputs k) per register block */

/* Rows padded to 16 floats (64-byte lines, whole vectors at any VW). */
static int pad16(int n) { return (n + 15) / 16 * 16; }

/* Model-wide, read-only: padded weight copies. */
typedef struct {
    int L, K, Kp;
    int xent;         /* loss sensitivity, cross-entropy: rows weighted by p, S1 carried */
    float wk;         /* the rows' weight when it is the same for every row (1 or 2/K) */
    const int *n;     /* sizes[0..L] */
    int *np;          /* padded widths, L + 1 */
    float **WT;       /* WT[l]: n[l] x np[l+1], WT[j*np + i] = W_l[i, j] (forward) */
    float **Wr;       /* Wr[l]: n[l+1] x np[l], W_l rows (backward; l >= 1, as nothing is
                       * carried below layer 0's outputs) */
    float **bias;     /* np[l+1] */
    const ecp_layer *layer; /* activations and their parameters */
    float **shift;    /* the reference values c (st->shift) */
} model_t;

typedef struct {
    const model_t *M;
    const ecp_dataset *calib; /* the rows of the chunk being summed, from row at0 on */
    int64_t at0;
    int B, t, T;
    int64_t b0, b1; /* the chunk's batches (this process's, all of them without MPI) */
    /* scratch */
    float **a;     /* a[l], l = 1..L: B x np[l] */
    float *z;      /* one sample's pre-activations: npmax */
    float **D;     /* act'(z[l]): B x np[l+1] */
    float **S;     /* S[l]: B x np[l+1] */
    float *J0, *J1;/* Kp x npmax */
    float *pw;     /* Kp: the weights of the rows of J for the current sample (0 past K) */
    float *S1;     /* npmax: cross-entropy's sum_k p_k J_k for the current layer and sample */
    float *ones;
    int *idx;      /* npmax */
    float *val;
    int *cptr;     /* nmax + 1 */
    int *crow;     /* B x nmax */
    float *cval;
    /* accumulators; m1, m2 as the statistics (n[l+1] x n[l]): worker 0's are st's own, so
     * that the largest arrays of the pass are not allocated, touched and copied twice */
    double **m0, **m1, **m2, **sa, **sa2;
    void *arena;   /* every array above (but st's M1, M2) lives in this one block */
} worker_t;

/* ------------------------------------------------------------------ kernels */

/* z[0..NV*16) = bias + sum_t val[t] WT[idx[t]] (one sample, one column chunk). */
static inline __attribute__((always_inline)) void fwd_chunk(int NV, const int *idx,
                                                            const float *val, int nnz,
                                                            const float *WT, int ldw,
                                                            const float *bias, float *z)
{
    vf acc[4];
    for (int v = 0; v < NV; v++)
        acc[v] = vload(bias + v * VW);
    for (int t = 0; t < nnz; t++) {
        vf x = vsplat(val[t]);
        const float *w = WT + (size_t)idx[t] * ldw;
        for (int v = 0; v < NV; v++)
            acc[v] += x * vload(w + v * VW);
    }
    for (int v = 0; v < NV; v++)
        vstore(z + v * VW, acc[v]);
}

static void fwd_row(const int *idx, const float *val, int nnz, const float *WT, int np,
                    const float *bias, float *z)
{
    int c = 0;
    for (; c + 4 * VW <= np; c += 4 * VW)
        fwd_chunk(4, idx, val, nnz, WT + c, np, bias + c, z + c);
    switch ((np - c) / VW) {
    case 3: fwd_chunk(3, idx, val, nnz, WT + c, np, bias + c, z + c); break;
    case 2: fwd_chunk(2, idx, val, nnz, WT + c, np, bias + c, z + c); break;
    case 1: fwd_chunk(1, idx, val, nnz, WT + c, np, bias + c, z + c); break;
    default: break;
    }
}

/* Jout[r, chunk] = (sum over the active units i of Jin[r, i] W[i, chunk]) o d[chunk] for the RG
 * rows of one group; S[chunk] += sum_r pw[r] Jout[r, chunk]^2 and, with S1,
 * S1[chunk] += sum_r pw[r] Jout[r, chunk]. */
static inline __attribute__((always_inline)) void bwd_chunk(int NV, const int *act, int na,
                                                            const float *Jin, int ldj,
                                                            const float *W, int ldw,
                                                            const float *d, const float *pw,
                                                            float *Jout, float *S, float *S1)
{
    vf acc[RG][4];
    for (int r = 0; r < RG; r++)
        for (int v = 0; v < NV; v++)
            acc[r][v] = vsplat(0.0f);
    for (int t = 0; t < na; t++) {
        int i = act[t];
        const float *w = W + (size_t)i * ldw;
        vf wv[4];
        for (int v = 0; v < NV; v++)
            wv[v] = vload(w + v * VW);
        for (int r = 0; r < RG; r++) {
            vf x = vsplat(Jin[(size_t)r * ldj + i]);
            for (int v = 0; v < NV; v++)
                acc[r][v] += x * wv[v];
        }
    }
    for (int v = 0; v < NV; v++) {
        vf dv = vload(d + v * VW), s = vload(S + v * VW);
        vf s1 = S1 ? vload(S1 + v * VW) : vsplat(0.0f);
        for (int r = 0; r < RG; r++) {
            vf j = acc[r][v] * dv, pj = vsplat(pw[r]) * j;
            vstore(Jout + (size_t)r * ldj + v * VW, j);
            s += pj * j;
            s1 += pj;
        }
        vstore(S + v * VW, s);
        if (S1)
            vstore(S1 + v * VW, s1);
    }
}

static void bwd_group(const int *act, int na, const float *Jin, int ldj, const float *W, int np,
                      const float *d, const float *pw, float *Jout, float *S, float *S1)
{
    int c = 0;
#define BWD(NV) bwd_chunk(NV, act, na, Jin, ldj, W + c, np, d + c, pw, Jout + c, S + c, \
                          S1 ? S1 + c : NULL)
    for (; c + 4 * VW <= np; c += 4 * VW)
        BWD(4);
    switch ((np - c) / VW) {
    case 3: BWD(3); break;
    case 2: BWD(2); break;
    case 1: BWD(1); break;
    default: break;
    }
#undef BWD
}

/* For one input column: m1[chunk] += sum_e v_e S[row_e, chunk], m2[chunk] += sum_e v_e^2 S[..]
 * (float over the batch, then into double) for the chunk's first nout outputs, whose
 * accumulators are si doubles apart. */
static inline __attribute__((always_inline)) void mom_chunk(int NV, const int *row,
                                                            const float *val, int ne,
                                                            const float *S, int lds, int nout,
                                                            size_t si, double *m1, double *m2)
{
    vf a1[4], a2[4];
    for (int v = 0; v < NV; v++)
        a1[v] = a2[v] = vsplat(0.0f);
    for (int e = 0; e < ne; e++) {
        const float *s = S + (size_t)row[e] * lds;
        vf x = vsplat(val[e]), x2 = x * x;
        for (int v = 0; v < NV; v++) {
            vf sv = vload(s + v * VW);
            a1[v] += x * sv;
            a2[v] += x2 * sv;
        }
    }
    float t1[4 * VW] __attribute__((aligned(64))), t2[4 * VW] __attribute__((aligned(64)));
    for (int v = 0; v < NV; v++) {
        vstore(t1 + v * VW, a1[v]);
        vstore(t2 + v * VW, a2[v]);
    }
    int n = nout < NV * VW ? nout : NV * VW;
    for (int i = 0; i < n; i++) {
        m1[(size_t)i * si] += t1[i];
        m2[(size_t)i * si] += t2[i];
    }
}

/* m1, m2: n_out x ni (the padding columns of S, past n_out, are 0 and not accumulated). */
static void mom_layer(const int *cptr, const int *crow, const float *cval, int ni, int no,
                      const float *S, int np, double *m1, double *m2)
{
    int c = 0;
    for (; c < np; c += 4 * VW) {
        int nv = (np - c) / VW < 4 ? (np - c) / VW : 4;
        for (int j = 0; j < ni; j++) {
            int e0 = cptr[j], ne = cptr[j + 1] - e0;
            if (!ne)
                continue;
            double *p1 = m1 + (size_t)c * ni + j, *p2 = m2 + (size_t)c * ni + j;
            int nout = no - c;
            size_t si = (size_t)ni;
            switch (nv) {
            case 4: mom_chunk(4, crow + e0, cval + e0, ne, S + c, np, nout, si, p1, p2); break;
            case 3: mom_chunk(3, crow + e0, cval + e0, ne, S + c, np, nout, si, p1, p2); break;
            case 2: mom_chunk(2, crow + e0, cval + e0, ne, S + c, np, nout, si, p1, p2); break;
            default: mom_chunk(1, crow + e0, cval + e0, ne, S + c, np, nout, si, p1, p2); break;
            }
        }
    }
}

/* ------------------------------------------------------------------ one batch */

static const float *layer_in(worker_t *w, int l, const float *x, int *ld)
{
    *ld = l == 0 ? w->M->n[0] : w->M->np[l];
    return l == 0 ? x : w->a[l];
}

static void forward(worker_t *w, const float *x, int b)
{
    const model_t *M = w->M;
    for (int l = 0; l < M->L; l++) {
        int ld, ni = M->n[l], no = M->n[l + 1], np = M->np[l + 1];
        const float *a = layer_in(w, l, x, &ld);
        for (int r = 0; r < b; r++) {
            const float *ar = a + (size_t)r * ld;
            int nnz = 0;
            for (int j = 0; j < ni; j++) {
                float v = ar[j];
                w->idx[nnz] = j;
                w->val[nnz] = v;
                nnz += v != 0.0f;
            }
            float *z = w->z;
            fwd_row(w->idx, w->val, nnz, M->WT[l], np, M->bias[l], z);
            float *y = w->a[l + 1] + (size_t)r * np;
            const ecp_layer *Ly = &M->layer[l];
            ecp_act_forward_p(Ly->act, Ly->act_p, z, y, (size_t)no);
            ecp_act_backward_p(Ly->act, Ly->act_p, z, y, w->ones, w->D[l] + (size_t)r * np,
                               (size_t)no);
        }
    }
}

/* The weights of the rows of J for sample r: the softmax of its output for cross-entropy. */
static void row_weights(worker_t *w, int r)
{
    const model_t *M = w->M;
    if (!M->xent) {
        for (int k = 0; k < M->K; k++)
            w->pw[k] = M->wk;
        return;
    }
    ecp_softmax(w->a[M->L] + (size_t)r * M->np[M->L], M->K, w->pw);
}

/* Cross-entropy: S - S1^2 (ecp_xent_fold); the other sensitivities are S as summed. */
static void fold_s1(const worker_t *w, float *S, int n)
{
    if (w->M->xent)
        ecp_xent_fold(S, w->S1, (size_t)n);
}

static void sensitivities(worker_t *w, int b)
{
    const model_t *M = w->M;
    int L = M->L, K = M->K, Kp = M->Kp, ldj = M->np[0];
    for (int l = 1; l <= L; l++)
        ldj = M->np[l] > ldj ? M->np[l] : ldj;
    float *S1 = M->xent ? w->S1 : NULL;
    for (int r = 0; r < b; r++) {
        row_weights(w, r);
        /* top layer: J = diag(d) */
        const float *dt = w->D[L - 1] + (size_t)r * M->np[L];
        float *St = w->S[L - 1] + (size_t)r * M->np[L];
        for (int k = 0; k < K; k++) {
            St[k] = w->pw[k] * dt[k] * dt[k];
            if (S1)
                S1[k] = w->pw[k] * dt[k];
        }
        fold_s1(w, St, K);
        if (L < 2)
            continue;
        /* layer L-2: J[k,:] = d_k W_{L-1}[k,:] o act' */
        {
            int l = L - 2, np = M->np[l + 1];
            const float *d = w->D[l] + (size_t)r * np;
            float *S = w->S[l] + (size_t)r * np;
            memset(S, 0, (size_t)np * sizeof *S);
            if (S1)
                memset(S1, 0, (size_t)np * sizeof *S1);
            for (int k = 0; k < K; k++) {
                const float *Wk = M->Wr[L - 1] + (size_t)k * np;
                float *J = w->J0 + (size_t)k * ldj;
                float dk = dt[k], pk = w->pw[k];
                for (int i = 0; i < np; i++) {
                    float v = dk * Wk[i] * d[i];
                    J[i] = v;
                    S[i] += pk * v * v;
                    if (S1)
                        S1[i] += pk * v;
                }
            }
            fold_s1(w, S, np);
        }
        float *Jin = w->J0, *Jout = w->J1;
        for (int l = L - 3; l >= 0; l--) {
            int nu = M->n[l + 2]; /* units of layer l+1 */
            const float *du = w->D[l + 1] + (size_t)r * M->np[l + 2];
            int na = 0;
            for (int i = 0; i < nu; i++)
                if (du[i] != 0.0f)
                    w->idx[na++] = i;
            int np = M->np[l + 1];
            const float *d = w->D[l] + (size_t)r * np;
            float *S = w->S[l] + (size_t)r * np;
            memset(S, 0, (size_t)np * sizeof *S);
            if (S1)
                memset(S1, 0, (size_t)np * sizeof *S1);
            for (int g = 0; g < Kp; g += RG)
                bwd_group(w->idx, na, Jin + (size_t)g * ldj, ldj, M->Wr[l + 1], np, d,
                          w->pw + g, Jout + (size_t)g * ldj, S, S1);
            fold_s1(w, S, np);
            float *t = Jin;
            Jin = Jout;
            Jout = t;
        }
    }
}

/* CSC of A' = a - c (entries != 0 only) for layer l's input; sa, sa2 on the way. */
static void build_csc(worker_t *w, int l, const float *x, int b)
{
    const model_t *M = w->M;
    int ld, ni = M->n[l];
    const float *a = layer_in(w, l, x, &ld);
    const float *c = M->shift[l];
    int *cnt = w->cptr;
    memset(cnt, 0, ((size_t)ni + 1) * sizeof *cnt);
    for (int r = 0; r < b; r++) {
        const float *ar = a + (size_t)r * ld;
        for (int j = 0; j < ni; j++)
            cnt[j + 1] += ar[j] != c[j];
    }
    for (int j = 0; j < ni; j++)
        cnt[j + 1] += cnt[j];
    /* column by column, so that the slot written for a zero (and not kept) is never one that
     * holds an entry already: it is this column's next slot or the next column's first */
    for (int j = 0; j < ni; j++) {
        int p = cnt[j];
        float cj = c[j];
        for (int r = 0; r < b; r++) {
            float v = a[(size_t)r * ld + j] - cj;
            w->crow[p] = r;
            w->cval[p] = v;
            p += v != 0.0f;
        }
    }
    double *sa = w->sa[l], *sa2 = w->sa2[l];
    for (int j = 0; j < ni; j++) {
        float s1 = 0, s2 = 0;
        for (int e = cnt[j]; e < cnt[j + 1]; e++) {
            float v = w->cval[e];
            s1 += v;
            s2 += v * v;
        }
        sa[j] += s1;
        sa2[j] += s2;
    }
}

static void batch(worker_t *w, int64_t at, int b)
{
    const model_t *M = w->M;
    const float *x = w->calib->x + (size_t)(at - w->at0) * M->n[0];
    forward(w, x, b);
    sensitivities(w, b);
    for (int l = 0; l < M->L; l++) {
        int np = M->np[l + 1], no = M->n[l + 1];
        double *m0 = w->m0[l];
        for (int r = 0; r < b; r++) {
            const float *S = w->S[l] + (size_t)r * np;
            for (int i = 0; i < no; i++)
                m0[i] += S[i];
        }
        build_csc(w, l, x, b);
        mom_layer(w->cptr, w->crow, w->cval, M->n[l], no, w->S[l], np, w->m1[l], w->m2[l]);
    }
}

/* Share t of the pool's job: batches t, t + T, ... of this process's block. */
static void worker_run(void *arg, int t)
{
    worker_t *w = (worker_t *)arg + t;
    for (int64_t bi = w->b0 + w->t; bi < w->b1; bi += w->T) {
        int64_t at = bi * w->B;
        int64_t left = w->at0 + w->calib->n - at;
        int b = (int)(left < w->B ? left : w->B);
        batch(w, at, b);
    }
}

/* ------------------------------------------------------------------ setup */

static void *zal(size_t count, size_t size)
{
    return ecp_aligned_zalloc(count, size, "statistics", NULL);
}

static void worker_free(worker_t *w)
{
    free(w->a); free(w->D); free(w->S);
    free(w->m0); free(w->m1); free(w->m2); free(w->sa); free(w->sa2);
    free(w->arena);
}

/* The worker's arrays from c (see ecp_carve). Worker 0 accumulates M1, M2 into st itself. */
static void worker_carve(worker_t *w, const model_t *M, int B, ecp_stats *st, ecp_carve *c)
{
    int L = M->L, nmax = 0, npmax = 0;
    for (int l = 0; l <= L; l++) {
        nmax = M->n[l] > nmax ? M->n[l] : nmax;
        npmax = M->np[l] > npmax ? M->np[l] : npmax;
    }
    for (int l = 0; l < L; l++) {
        size_t np = (size_t)M->np[l + 1], ni = (size_t)M->n[l], no = (size_t)M->n[l + 1];
        w->a[l + 1] = ecp_carve_take(c, (size_t)B * np, sizeof(float));
        w->m1[l] = w->t ? ecp_carve_take(c, no * ni, sizeof(double)) : st->m1[l];
        w->m2[l] = w->t ? ecp_carve_take(c, no * ni, sizeof(double)) : st->m2[l];
        w->D[l] = ecp_carve_take(c, (size_t)B * np, sizeof(float));
        w->S[l] = ecp_carve_take(c, (size_t)B * np, sizeof(float));
        w->m0[l] = ecp_carve_take(c, np, sizeof(double));
        w->sa[l] = ecp_carve_take(c, ni, sizeof(double));
        w->sa2[l] = ecp_carve_take(c, ni, sizeof(double));
    }
    w->z = ecp_carve_take(c, (size_t)npmax, sizeof(float));
    w->J0 = ecp_carve_take(c, (size_t)M->Kp * npmax, sizeof(float));
    w->J1 = ecp_carve_take(c, (size_t)M->Kp * npmax, sizeof(float));
    w->pw = ecp_carve_take(c, (size_t)M->Kp, sizeof(float));
    w->S1 = ecp_carve_take(c, (size_t)npmax, sizeof(float));
    w->ones = ecp_carve_take(c, (size_t)npmax, sizeof(float));
    w->idx = ecp_carve_take(c, (size_t)npmax + 1, sizeof(int));
    w->val = ecp_carve_take(c, (size_t)npmax + 1, sizeof(float));
    w->cptr = ecp_carve_take(c, (size_t)nmax + 1, sizeof(int));
    w->crow = ecp_carve_take(c, (size_t)B * nmax + 1, sizeof(int));
    w->cval = ecp_carve_take(c, (size_t)B * nmax + 1, sizeof(float));
}

/* Every array of the worker in one zeroed block: a few huge pages instead of the first touch
 * of hundreds of 4 KB pages, which costs more than the pass's own work on a virtual machine
 * (docs/PERF.md). 0 when out of memory. */
static int worker_alloc(worker_t *w, const model_t *M, int B, ecp_stats *st)
{
    int L = M->L;
    w->B = B;
    if (!(w->a = calloc((size_t)L + 1, sizeof *w->a)) ||
        !(w->D = calloc((size_t)L, sizeof *w->D)) || !(w->S = calloc((size_t)L, sizeof *w->S)) ||
        !(w->m0 = calloc((size_t)L, sizeof *w->m0)) ||
        !(w->m1 = calloc((size_t)L, sizeof *w->m1)) ||
        !(w->m2 = calloc((size_t)L, sizeof *w->m2)) ||
        !(w->sa = calloc((size_t)L, sizeof *w->sa)) || !(w->sa2 = calloc((size_t)L, sizeof *w->sa2)))
        return 0;
    ecp_carve c = {0};
    worker_carve(w, M, B, st, &c);
    if (!(w->arena = ecp_aligned_zalloc(c.used, 1, "statistics", NULL)))
        return 0;
    c = (ecp_carve){.base = w->arena};
    worker_carve(w, M, B, st, &c);
    int npmax = 0;
    for (int l = 0; l <= L; l++)
        npmax = M->np[l] > npmax ? M->np[l] : npmax;
    for (int i = 0; i < npmax; i++)
        w->ones[i] = 1.0f;
    return 1;
}

static void model_free(model_t *M)
{
    for (int l = 0; l < M->L; l++) {
        if (M->WT) free(M->WT[l]);
        if (M->Wr) free(M->Wr[l]);
        if (M->bias) free(M->bias[l]);
    }
    free(M->WT);
    free(M->Wr);
    free(M->bias);
    free(M->np);
}

/* The padded weight copies of every layer (0 when out of memory). */
static int model_build(model_t *M, const ecp_mlp *m, ecp_stats *st, int xent)
{
    int L = m->n_layers;
    memset(M, 0, sizeof *M);
    M->L = L;
    M->K = m->sizes[L];
    M->xent = xent == 1;
    M->wk = xent < 0 ? 1.0f : 2.0f / (float)M->K;
    M->Kp = (M->K + RG - 1) / RG * RG;
    M->n = m->sizes;
    M->shift = st->shift;
    M->layer = m->layer;
    M->np = calloc((size_t)L + 1, sizeof *M->np);
    M->WT = calloc((size_t)L, sizeof *M->WT);
    M->Wr = calloc((size_t)L, sizeof *M->Wr);
    M->bias = calloc((size_t)L, sizeof *M->bias);
    if (!M->np || !M->WT || !M->Wr || !M->bias)
        return 0;
    for (int l = 0; l <= L; l++)
        M->np[l] = pad16(m->sizes[l]);
    for (int l = 0; l < L; l++) {
        int ni = m->sizes[l], no = m->sizes[l + 1];
        const float *W = m->layer[l].W;
        if (!(M->WT[l] = zal((size_t)ni * M->np[l + 1], sizeof(float))) ||
            (l && !(M->Wr[l] = zal((size_t)no * M->np[l], sizeof(float)))) ||
            !(M->bias[l] = zal((size_t)M->np[l + 1], sizeof(float))))
            return 0;
        for (int i = 0; i < no; i++)
            for (int j = 0; j < ni; j++) {
                float v = W[(size_t)i * ni + j];
                M->WT[l][(size_t)j * M->np[l + 1] + i] = v;
                if (l)
                    M->Wr[l][(size_t)i * M->np[l] + j] = v;
            }
        memcpy(M->bias[l], m->layer[l].b, (size_t)no * sizeof(float));
    }
    return 1;
}

/* The reference values from the first batch (see the top of the file), on worker w. */
static void first_batch_shift(worker_t *w, const ecp_mlp *m, const ecp_dataset *calib,
                              ecp_stats *st)
{
    const float *x = calib->x;
    int B = w->B;
    forward(w, x, B);
    for (int l = 0; l < m->n_layers; l++) {
        int ld, ni = m->sizes[l];
        const float *a = layer_in(w, l, x, &ld);
        for (int j = 0; j < ni; j++) {
            double sum = 0;
            int zeros = 0;
            for (int r = 0; r < B; r++) {
                float v = a[(size_t)r * ld + j];
                sum += v;
                zeros += v == 0.0f;
            }
            st->shift[l][j] = 2 * zeros >= B ? 0.0f : (float)(sum / B);
        }
    }
}

/* Adds the T workers' accumulators into st, in worker order (worker 0's M1, M2 are there
 * already, as if added to zeros). */
static void sum_workers(const model_t *M, const worker_t *wk, int T, ecp_stats *st)
{
    for (int l = 0; l < M->L; l++) {
        int ni = M->n[l], no = M->n[l + 1];
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < no; i++)
                st->m0[l][i] += wk[t].m0[l][i];
            for (int j = 0; j < ni; j++) {
                st->sa[l][j] += wk[t].sa[l][j];
                st->sa2[l][j] += wk[t].sa2[l][j];
            }
            if (!t)
                continue;
            const double *p1 = wk[t].m1[l], *p2 = wk[t].m2[l];
            for (size_t e = 0; e < (size_t)no * ni; e++) {
                st->m1[l][e] += p1[e];
                st->m2[l][e] += p2[e];
            }
        }
    }
}

/* Fills st->shift, m0, m1, m2, sa, sa2 (allocated and zeroed by the caller) for the output or
 * the loss sensitivity. */
ecp_status ecp_stats_sparse(const ecp_mlp *m, const ecp_dataset *calib, ecp_sens sens,
                            ecp_stats *st, ecp_error *err)
{
    int B = calib->n < ECP_STATS_BATCH ? (int)calib->n : ECP_STATS_BATCH;
    int64_t b0, b1;
    ecp_dist_shard((calib->n + B - 1) / B, &b0, &b1);
    int T = openblas_get_num_threads();
    T = T < 1 ? 1 : T > ECP_POOL_MAX_THREADS ? ECP_POOL_MAX_THREADS : T;
    if (T > b1 - b0)
        T = b1 > b0 ? (int)(b1 - b0) : 1;
    model_t M = {0};
    ecp_pool *pool = NULL;
    worker_t *wk = calloc((size_t)T, sizeof *wk);
    ecp_status s = ECP_OK;
    /* -1: output sensitivity; 0: loss, mean squared error; 1: loss, cross-entropy */
    int xent = sens != ECP_SENS_LOSS ? -1 : ecp_dataset_loss(calib) == ECP_LOSS_XENT;
    if (!wk || !model_build(&M, m, st, xent))
        goto oom;
    for (int t = 0; t < T; t++) {
        wk[t] = (worker_t){.M = &M, .calib = calib, .t = t, .T = T, .b0 = b0, .b1 = b1};
        if (!worker_alloc(&wk[t], &M, B, st))
            goto oom;
    }
    if ((s = ecp_pool_create(T, &pool, err)))
        goto done;
    /* The rows come a chunk at a time (all at once when they are in memory); a chunk holds a
     * multiple of T batches, so every worker sums the batches it would sum in one go. */
    ecp_dataset cx;
    int64_t C = (ecp_dataset_chunk_rows(calib) + B - 1) / B; /* batches per chunk */
    if ((s = ecp_dataset_rows(calib, 0, B, &cx, err)))
        goto done;
    first_batch_shift(&wk[0], m, &cx, st);
    for (int64_t c0 = b0; c0 < b1; c0 += C) {
        int64_t c1 = c0 + C < b1 ? c0 + C : b1, end = c1 * B < calib->n ? c1 * B : calib->n;
        if ((s = ecp_dataset_rows(calib, c0 * B, end - c0 * B, &cx, err)))
            goto done;
        for (int t = 0; t < T; t++) {
            wk[t].calib = &cx;
            wk[t].at0 = c0 * B;
            wk[t].b0 = c0;
            wk[t].b1 = c1;
        }
        ecp_pool_run(pool, worker_run, wk, T);
    }
    sum_workers(&M, wk, T, st);
    goto done;
oom:
    s = ecp_fail(err, ECP_ERR_MEMORY, "statistics: out of memory");
done:
    ecp_pool_free(pool);
    for (int t = 0; wk && t < T; t++)
        worker_free(&wk[t]);
    free(wk);
    model_free(&M);
    return s;
}
