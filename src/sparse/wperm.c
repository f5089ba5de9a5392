/* The window-permute layout (wperm.h) and its batch-1 kernel.
 *
 * Why: on a dense input a CSR row kernel gathers x[idx] per kept weight, and on this machine a
 * gather moves about one element per cycle whether it is vgatherdps or scalar loads (~3.2 kept
 * weights per ns, docs/PERF.md); a group of 16 rows in the lanes (SELL-16) gathers as slowly.
 * Holding a 32-input window of x in two registers turns the gather into one vpermt2ps per 16
 * slots. The price is padding: at 10 % density a window holds ~3.2 weights per row and the
 * busiest of 16 rows ~7, so about half the slots are real (5 bytes per slot: 10 per kept
 * weight, against 6 for CSR). In cache that is 4-5x faster than CSR; on a layer streamed from
 * memory the bytes decide, and the engine chooses by its cost model (engine.c). */
#include "wperm.h"
#include "sparse.h"
#include "../core/bf16.h"
#if ECP_WPERM_FAST
#include <immintrin.h>
#endif

#define LANES 16
#define WIN 32

static int kept(const float *W, const uint8_t *pruned, size_t i)
{
    return !(pruned && pruned[i]) && W[i] != 0.0f;
}

/* Rows in decreasing order of their kept weights (ties by index): rows of like length share a
 * group, so fewer lanes idle. EC leaves rows of very different lengths: 784-300-100-10 at 90 %,
 * layer 0: 31 % of the slots real in row order, 40 % sorted. Returns 1 when the order is the
 * identity. */
static int sort_rows(const float *W, const uint8_t *pruned, int n_out, int n_in, int32_t *row,
                     int64_t *key)
{
    for (int o = 0; o < n_out; o++) {
        int64_t k = 0;
        for (int i = 0; i < n_in; i++)
            k += kept(W, pruned, (size_t)o * (size_t)n_in + (size_t)i);
        key[o] = -k * ((int64_t)n_out + 1) + o; /* distinct keys: the sort is stable */
        row[o] = o;
    }
    /* insertion sort on runs would do; a shell sort keeps it O(n^1.3) for 65k rows */
    for (int gap = n_out / 2; gap > 0; gap /= 2)
        for (int i = gap; i < n_out; i++)
            for (int j = i; j >= gap && key[row[j - gap]] > key[row[j]]; j -= gap) {
                int32_t t = row[j];
                row[j] = row[j - gap];
                row[j - gap] = t;
            }
    for (int o = 0; o < n_out; o++)
        if (row[o] != o)
            return 0;
    return 1;
}

/* Input i of the layout is column col(cols, i) of W: cols lists the columns the layout keeps,
 * in its order (NULL: all of them, in order). */
static size_t col(const int32_t *cols, int i) { return (size_t)(cols ? cols[i] : i); }

/* mx[w] = the largest count of kept weights in window w over the rows of group g; the layout's
 * inputs are the nc columns of cols. */
static void group_counts(const float *W, const uint8_t *pruned, int n_out, int n_in,
                         const int32_t *cols, int nc, const int32_t *rows, int g, int *cnt,
                         int *mx)
{
    const int nw = (nc + WIN - 1) / WIN;
    memset(mx, 0, (size_t)nw * sizeof *mx);
    for (int l = 0; l < LANES && g * LANES + l < n_out; l++) {
        const size_t row = (size_t)rows[g * LANES + l] * (size_t)n_in;
        memset(cnt, 0, (size_t)nw * sizeof *cnt);
        for (int i = 0; i < nc; i++)
            cnt[i / WIN] += kept(W, pruned, row + col(cols, i));
        for (int w = 0; w < nw; w++)
            mx[w] = cnt[w] > mx[w] ? cnt[w] : mx[w];
    }
}

/* Totals of the layout: segments and steps. */
static ecp_status layout_size(const float *W, const uint8_t *pruned, int n_out, int n_in,
                              const int32_t *cols, int nc, const int32_t *rows, int64_t *n_seg,
                              int64_t *steps, ecp_error *err)
{
    const int nw = (nc + WIN - 1) / WIN, ng = (n_out + LANES - 1) / LANES;
    int *cnt = ecp_alloc((size_t)nw, 2 * sizeof *cnt, "sparse layer", err);
    if (!cnt)
        return ECP_ERR_MEMORY;
    *n_seg = *steps = 0;
    for (int g = 0; g < ng; g++) {
        group_counts(W, pruned, n_out, n_in, cols, nc, rows, g, cnt, cnt + nw);
        for (int w = 0; w < nw; w++) {
            *n_seg += cnt[nw + w] > 0;
            *steps += cnt[nw + w];
        }
    }
    free(cnt);
    return ECP_OK;
}

/* The input order of the layout. Columns in decreasing order of their kept weights (columns
 * without any dropped) pack the busy inputs into the same windows, where every row of a group
 * has weights, and the rare ones into the last: a pruned first layer on images (border pixels
 * keep no weight, some pixels keep one in most rows, many in a few) takes markedly fewer slots
 * and less time (docs/PERF.md). The price is a gather of the input per
 * call, so the order is taken only when it saves more slots than it has inputs; a layer whose
 * columns are alike (random pruning, hidden layers) keeps the identity. *cols is NULL then
 * (*nc = n_in); on failure to allocate, too (the identity is always valid). */
static void plan_cols(const float *W, const uint8_t *pruned, int n_out, int n_in,
                      const int32_t *rows, int32_t **cols, int *nc, int64_t *steps,
                      int64_t *n_seg, ecp_error *err)
{
    *cols = NULL;
    *nc = n_in;
    *steps = -1;
    if (layout_size(W, pruned, n_out, n_in, NULL, n_in, rows, n_seg, steps, err))
        return;
    int32_t *c = ecp_alloc((size_t)n_in, sizeof *c, "sparse layer", NULL);
    int64_t *key = ecp_alloc((size_t)n_in, sizeof *key, "sparse layer", NULL);
    int64_t ps, pseg;
    int n = 0;
    if (c && key) {
        for (int i = 0; i < n_in; i++) {
            int64_t k = 0;
            for (int o = 0; o < n_out; o++)
                k += kept(W, pruned, (size_t)o * (size_t)n_in + (size_t)i);
            key[i] = -k * ((int64_t)n_in + 1) + i; /* distinct: ties stay in index order */
            if (k)
                c[n++] = i;
        }
        for (int gap = n / 2; gap > 0; gap /= 2) /* shell sort, as sort_rows */
            for (int i = gap; i < n; i++)
                for (int j = i; j >= gap && key[c[j - gap]] > key[c[j]]; j -= gap) {
                    int32_t t = c[j];
                    c[j] = c[j - gap];
                    c[j - gap] = t;
                }
        if (n > 0 &&
            !layout_size(W, pruned, n_out, n_in, c, n, rows, &pseg, &ps, NULL) &&
            ps * LANES + n < *steps * LANES) {
            *cols = c;
            *nc = n;
            *steps = ps;
            *n_seg = pseg;
            c = NULL;
        }
    }
    free(c);
    free(key);
}

int64_t ecp_wperm_slots(const float *W, const uint8_t *pruned, int n_out, int n_in)
{
    int64_t n_seg, steps = -1;
    int nc;
    if (n_out < 1 || n_in < 1)
        return -1;
    int32_t *rows = ecp_alloc((size_t)n_out, sizeof *rows, "sparse layer", NULL), *cols = NULL;
    int64_t *key = ecp_alloc((size_t)n_out, sizeof *key, "sparse layer", NULL);
    if (rows && key) {
        sort_rows(W, pruned, n_out, n_in, rows, key);
        plan_cols(W, pruned, n_out, n_in, rows, &cols, &nc, &steps, &n_seg, NULL);
    }
    free(rows);
    free(key);
    free(cols);
    return steps < 0 ? -1 : steps * LANES;
}

void ecp_wperm_release(ecp_wperm *a)
{
    if (!a)
        return;
    free(a->row);
    free(a->gseg);
    free(a->seg);
    free(a->cols);
    free(a->xp);
    free(a->val);
    free(a->val16);
    free(a->off);
    memset(a, 0, sizeof *a);
}

ecp_status ecp_wperm_build(ecp_wperm *a, const float *W, const uint8_t *pruned, int n_out,
                           int n_in, int bf16, ecp_error *err)
{
    memset(a, 0, sizeof *a);
    if (n_out < 1 || n_in < 1)
        return ecp_fail(err, ECP_ERR_ARG, "sparse layer: bad shape %d x %d", n_out, n_in);
    const int ng = (n_out + LANES - 1) / LANES;
    int64_t n_seg, steps, *key = ecp_alloc((size_t)n_out, sizeof *key, "sparse layer", err);
    a->row = ecp_alloc((size_t)ng * LANES, sizeof *a->row, "sparse layer", err);
    if (!key || !a->row) {
        free(key);
        ecp_wperm_release(a);
        return ECP_ERR_MEMORY;
    }
    a->sorted = !sort_rows(W, pruned, n_out, n_in, a->row, key);
    free(key);
    for (int o = n_out; o < ng * LANES; o++) /* lanes past the last row: masked off */
        a->row[o] = 0;
    int nc;
    plan_cols(W, pruned, n_out, n_in, a->row, &a->cols, &nc, &steps, &n_seg, err);
    if (steps < 0) {
        ecp_wperm_release(a);
        return ECP_ERR_MEMORY;
    }
    const int nw = (nc + WIN - 1) / WIN;
    const int32_t *cols = a->cols;
    a->n_out = n_out;
    a->n_in = n_in;
    a->n_cols = nc;
    a->n_groups = ng;
    a->steps = steps;
    a->n_seg = n_seg;
    int *cnt = ecp_alloc((size_t)nw, 2 * sizeof *cnt, "sparse layer", err);
    a->gseg = ecp_alloc((size_t)ng + 1, sizeof *a->gseg, "sparse layer", err);
    a->seg = ecp_alloc((size_t)n_seg + 1, sizeof *a->seg, "sparse layer", err);
    const size_t n_slots = ((size_t)steps + 1) * LANES;
    if (bf16) /* zero-filled: bf16 0 is +0.0f, the padding slots' weight */
        a->val16 = ecp_aligned_zalloc(n_slots, sizeof *a->val16, "sparse layer", err);
    else
        a->val = ecp_aligned_zalloc(n_slots, sizeof *a->val, "sparse layer", err);
    a->off = ecp_zalloc(n_slots, 1, "sparse layer", err);
    if (cols)
        a->xp = ecp_alloc_aligned((size_t)nc, err);
    if (!cnt || !a->gseg || !a->seg || !(a->val || a->val16) || !a->off || (cols && !a->xp)) {
        free(cnt);
        ecp_wperm_release(a);
        return ECP_ERR_MEMORY;
    }
    int64_t q = 0, s0 = 0;
    for (int g = 0; g < ng; g++) {
        a->gseg[g] = q;
        int *mx = cnt + nw;
        group_counts(W, pruned, n_out, n_in, cols, nc, a->row, g, cnt, mx);
        for (int w = 0; w < nw; w++) {
            if (!mx[w])
                continue;
            a->seg[q++] = (uint32_t)w << 6 | (uint32_t)mx[w];
            for (int l = 0; l < LANES && g * LANES + l < n_out; l++) {
                const size_t row = (size_t)a->row[g * LANES + l] * (size_t)n_in;
                int64_t s = s0;
                for (int i = w * WIN; i < nc && i < (w + 1) * WIN; i++)
                    if (kept(W, pruned, row + col(cols, i))) {
                        const float wt = W[row + col(cols, i)];
                        if (bf16)
                            a->val16[s * LANES + l] = ecp_bf16_from_float(wt);
                        else
                            a->val[s * LANES + l] = wt;
                        a->off[s * LANES + l] = (uint8_t)(i - w * WIN);
                        a->nnz++;
                        s++;
                    }
            }
            s0 += mx[w];
        }
    }
    a->gseg[ng] = q;
    free(cnt);
    return ECP_OK;
}

#if ECP_WPERM_FAST
/* The 16 weights of slot p: floats, or bf16 widened (zero-extend, shift into the top half). */
static inline __attribute__((always_inline)) __m512 weights(const float *v, const uint16_t *h,
                                                            int64_t p, int bf16)
{
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)(h + p))), 16));
    return _mm512_load_ps(v + p);
}

/* One step: acc += w * x[window base + off], lanes from the window held in lo:hi. */
static inline __attribute__((always_inline)) __m512 step(const float *v, const uint16_t *h,
                                                         const uint8_t *off, int64_t p, int bf16,
                                                         __m512 lo, __m512 hi, __m512 acc)
{
    const __m512i i = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(off + p)));
    return _mm512_fmadd_ps(weights(v, h, p, bf16), _mm512_permutex2var_ps(lo, i, hi), acc);
}

/* Four accumulator chains (an FMA has a 4-cycle latency, two issue per cycle); a window's steps go
 * round the four, its tail lands on the first ones. Two chains were barely slower (300 x 784 at
 * 10 %: 1.65 against 1.60 us): what bounds the kernel is streaming its 80 bytes per step from
 * L2 (~43 bytes per cycle), so fewer slots or bytes per slot are what would help, not more
 * chains; 64-input windows (two permutes and a blend per step) would cut the slots of the
 * 90 % ec mnist model's first layer by 15 %. Halving the value bytes (bf16: 48 bytes per
 * step) is the other lever. bf16 is a constant at each call, so each form is compiled apart. */
static inline __attribute__((always_inline)) void gemv_groups(const ecp_wperm *a, const float *x,
                                                         const float *b, float *y, int bf16)
{
    const float *v = a->val;
    const uint16_t *h = a->val16;
    const uint8_t *off = a->off;
    const int n_in = a->n_cols;
    int64_t p = 0; /* the first slot of the current step */
    for (int g = 0; g < a->n_groups; g++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t q = a->gseg[g]; q < a->gseg[g + 1]; q++) {
            const int x0 = (int)(a->seg[q] >> 6) * WIN, n = (int)(a->seg[q] & 63);
            __m512 lo, hi;
            if (x0 + WIN <= n_in) {
                lo = _mm512_loadu_ps(x + x0);
                hi = _mm512_loadu_ps(x + x0 + 16);
            } else { /* the last window: nothing read past x[n_in - 1] */
                const int r = n_in - x0;
                lo = _mm512_maskz_loadu_ps(r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1), x + x0);
                hi = _mm512_maskz_loadu_ps(r > 16 ? (__mmask16)((1u << (r - 16)) - 1) : 0,
                                           x + x0 + 16);
            }
            int s = 0;
            for (; s + 4 <= n; s += 4, p += 4 * LANES) {
                a0 = step(v, h, off, p, bf16, lo, hi, a0);
                a1 = step(v, h, off, p + LANES, bf16, lo, hi, a1);
                a2 = step(v, h, off, p + 2 * LANES, bf16, lo, hi, a2);
                a3 = step(v, h, off, p + 3 * LANES, bf16, lo, hi, a3);
            }
            if (s < n)
                a0 = step(v, h, off, p, bf16, lo, hi, a0);
            if (s + 1 < n)
                a1 = step(v, h, off, p + LANES, bf16, lo, hi, a1);
            if (s + 2 < n)
                a2 = step(v, h, off, p + 2 * LANES, bf16, lo, hi, a2);
            p += (int64_t)(n - s) * LANES;
        }
        const int r0 = g * LANES, n = a->n_out - r0 < LANES ? a->n_out - r0 : LANES;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        const __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
        if (!a->sorted)
            _mm512_mask_storeu_ps(y + r0, m, _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, b + r0)));
        else {
            const __m512i r = _mm512_loadu_si512((const void *)(a->row + r0));
            const __m512 bv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, r, b, 4);
            _mm512_mask_i32scatter_ps(y, m, r, _mm512_add_ps(acc, bv), 4);
        }
    }
}

void ecp_wperm_gemv(const ecp_wperm *a, const float *x, const float *b, float *y)
{
    const int n_in = a->n_cols;
    if (a->cols) {
        int i = 0;
        for (; i + 16 <= n_in; i += 16)
            _mm512_store_ps(a->xp + i, _mm512_i32gather_ps(
                                           _mm512_loadu_si512((const void *)(a->cols + i)), x, 4));
        if (i < n_in) {
            const __mmask16 m = (__mmask16)((1u << (n_in - i)) - 1);
            const __m512i c = _mm512_maskz_loadu_epi32(m, a->cols + i);
            _mm512_mask_storeu_ps(a->xp + i, m,
                                  _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, c, x, 4));
        }
        x = a->xp;
    }
    if (a->val16)
        gemv_groups(a, x, b, y, 1);
    else
        gemv_groups(a, x, b, y, 0);
}
#else
void ecp_wperm_gemv(const ecp_wperm *a, const float *x, const float *b, float *y)
{
    const uint8_t *off = a->off;
    int64_t p = 0;
    if (a->cols) {
        for (int i = 0; i < a->n_cols; i++)
            a->xp[i] = x[a->cols[i]];
        x = a->xp;
    }
    for (int g = 0; g < a->n_groups; g++) {
        float acc[LANES] = {0};
        for (int64_t q = a->gseg[g]; q < a->gseg[g + 1]; q++) {
            const int x0 = (int)(a->seg[q] >> 6) * WIN, n = (int)(a->seg[q] & 63);
            for (int s = 0; s < n; s++, p += LANES)
                for (int l = 0; l < LANES; l++) {
                    const float w = a->val16 ? ecp_bf16_to_float(a->val16[p + l]) : a->val[p + l];
                    acc[l] += w * (x0 + off[p + l] < a->n_cols ? x[x0 + off[p + l]] : 0.0f);
                }
        }
        for (int l = 0; l < LANES && g * LANES + l < a->n_out; l++)
            y[a->row[g * LANES + l]] = b[a->row[g * LANES + l]] + acc[l];
    }
}
#endif
