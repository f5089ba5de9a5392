/* The compressed formats of one layer: CSR (by output rows) and CSC (by input columns).
 *
 * Why these and not a 1x4 blocked variant: after a global magnitude/EC pruning the surviving
 * weights of a row are scattered: with a random mask of density d a 1x4 block is non-empty with
 * probability 1-(1-d)^4, which at d = 0.1 is 0.34, so a stored block holds 1.16 real weights in
 * 4 slots and costs 18 B (16 B values + a uint16 index), 15.5 B per real non-zero against 6 B
 * for uint16 CSR. Blocking pays only with structured (block) pruning, which ecprune does not do.
 * uint16 column indices whenever the minor dimension fits (every layer of the models we ship)
 * save a quarter of the bytes of int32 CSR, and at batch 1 on a large layer bytes are time. */
#include "sparse.h"
#include "../core/bf16.h"

static int keep(const float *W, const uint8_t *pruned, size_t i)
{
    return !(pruned && pruned[i]) && W[i] != 0.0f;
}

int64_t ecp_spmat_count(const float *W, const uint8_t *pruned, int n_out, int n_in)
{
    size_t n = (size_t)n_out * (size_t)n_in;
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += keep(W, pruned, i);
    return c;
}

void ecp_spmat_release(ecp_spmat *s)
{
    if (!s)
        return;
    free(s->ptr);
    free(s->idx16);
    free(s->idx32);
    free(s->val);
    free(s->val16);
    memset(s, 0, sizeof *s);
}

static void put_idx(ecp_spmat *s, int64_t k, int v)
{
    if (s->idx16)
        s->idx16[k] = (uint16_t)v;
    else
        s->idx32[k] = (int32_t)v;
}

ecp_status ecp_spmat_build(ecp_spmat *s, const float *W, const uint8_t *pruned, int n_out,
                           int n_in, int by_col, ecp_error *err)
{
    memset(s, 0, sizeof *s);
    if (n_out < 1 || n_in < 1)
        return ecp_fail(err, ECP_ERR_ARG, "sparse layer: bad shape %d x %d", n_out, n_in);
    s->by_col = by_col;
    s->n_out = n_out;
    s->n_in = n_in;
    s->n_major = by_col ? n_in : n_out;
    int n_minor = by_col ? n_out : n_in;
    s->nnz = ecp_spmat_count(W, pruned, n_out, n_in);
    s->ptr = ecp_zalloc((size_t)s->n_major + 1, sizeof *s->ptr, "sparse layer", err);
    s->val = ecp_alloc((size_t)s->nnz, sizeof *s->val, "sparse layer", err);
    if (n_minor <= 65535)
        s->idx16 = ecp_alloc((size_t)s->nnz, sizeof *s->idx16, "sparse layer", err);
    else
        s->idx32 = ecp_alloc((size_t)s->nnz, sizeof *s->idx32, "sparse layer", err);
    if (!s->ptr || !s->val || (!s->idx16 && !s->idx32)) {
        ecp_spmat_release(s);
        return ECP_ERR_MEMORY;
    }
    int64_t k = 0;
    if (!by_col) {
        for (int o = 0; o < n_out; o++) {
            size_t row = (size_t)o * (size_t)n_in;
            for (int i = 0; i < n_in; i++)
                if (keep(W, pruned, row + (size_t)i)) {
                    s->val[k] = W[row + (size_t)i];
                    put_idx(s, k++, i);
                }
            s->ptr[o + 1] = k;
        }
    } else {
        /* Count per column, prefix-sum, then fill in row order so that each column's rows are
         * ascending (and the scatter in the kernel touches y in order). */
        for (int o = 0; o < n_out; o++) {
            size_t row = (size_t)o * (size_t)n_in;
            for (int i = 0; i < n_in; i++)
                s->ptr[i + 1] += keep(W, pruned, row + (size_t)i);
        }
        for (int i = 0; i < n_in; i++)
            s->ptr[i + 1] += s->ptr[i];
        int64_t *fill = ecp_alloc((size_t)n_in, sizeof *fill, "sparse layer", err);
        if (!fill) {
            ecp_spmat_release(s);
            return ECP_ERR_MEMORY;
        }
        memcpy(fill, s->ptr, (size_t)n_in * sizeof *fill);
        for (int o = 0; o < n_out; o++) {
            size_t row = (size_t)o * (size_t)n_in;
            for (int i = 0; i < n_in; i++)
                if (keep(W, pruned, row + (size_t)i)) {
                    int64_t at = fill[i]++;
                    s->val[at] = W[row + (size_t)i];
                    put_idx(s, at, o);
                }
        }
        free(fill);
        k = s->ptr[n_in];
    }
    if (k != s->nnz) { /* cannot happen: the count and the fill use the same predicate */
        ecp_spmat_release(s);
        return ecp_fail(err, ECP_ERR_FORMAT, "sparse layer: inconsistent non-zero count");
    }
    return ECP_OK;
}

ecp_status ecp_spmat_bf16(ecp_spmat *s, ecp_error *err)
{
    if (s->by_col || !s->val)
        return ecp_fail(err, ECP_ERR_ARG, "sparse layer: bf16 values are for a float CSR");
    uint16_t *h = ecp_alloc((size_t)s->nnz, sizeof *h, "sparse layer", err);
    if (!h)
        return ECP_ERR_MEMORY;
    for (int64_t k = 0; k < s->nnz; k++)
        h[k] = ecp_bf16_from_float(s->val[k]);
    free(s->val);
    s->val = NULL;
    s->val16 = h;
    return ECP_OK;
}
