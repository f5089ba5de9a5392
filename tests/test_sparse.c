/* The sparse engine: formats, kernels and the whole-network engine against dense references.
 * Tolerance: float sums in a different order differ by a few ulps of the sum of |terms|, so a
 * value must match within 1e-5 * (1 + sum_k |w_k x_k|) (the reference is computed in double);
 * with Kaiming-scaled weights that sum is O(1) and the bound is ~1e-5. */
#include "testutil.h"
#include "sparse/sparse.h"
#include "sparse/wperm.h"
#include "core/bf16.h"

static void fill_layer(ecp_rng *r, float *W, uint8_t *pruned, int n_out, int n_in, double keep,
                       int empty_row)
{
    double scale = 1.0 / sqrt((double)n_in);
    for (size_t i = 0; i < (size_t)n_out * n_in; i++) {
        int k = ecp_rng_uniform(r) < keep;
        int o = (int)(i / (size_t)n_in);
        if (empty_row && o == n_out / 2)
            k = 0;
        W[i] = k ? (float)((2 * ecp_rng_uniform(r) - 1) * scale) : 0.0f;
        if (pruned)
            pruned[i] = !k;
    }
}

static void fill_input(ecp_rng *r, float *x, size_t n, double zero_frac)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ecp_rng_uniform(r) < zero_frac ? 0.0f : (float)(2 * ecp_rng_uniform(r) - 1);
}

/* Checks YT (n_out x B feature-major) = W XT + b against a double reference. */
static void check_product(const float *W, const float *XT, const float *b, const float *YT,
                          int n_out, int n_in, int B)
{
    for (int o = 0; o < n_out; o++)
        for (int j = 0; j < B; j++) {
            double s = b[o], mag = fabs(b[o]);
            for (int i = 0; i < n_in; i++) {
                double t = (double)W[(size_t)o * n_in + i] * XT[(size_t)i * B + j];
                s += t;
                mag += fabs(t);
            }
            assert_close(YT[(size_t)o * B + j], s, 0, 1e-5 * (1 + mag));
        }
}

/* A feature-major product with row stride ld = B + 16 (the engine pads its rows, ecp_fm_ld):
 * the same values as with stride B (YT, computed before), bit for bit, and the padding of YT
 * untouched. kind 0: SpMM (A), 1: packed GEMM (p), 2: packed GEMM from the batch as rows
 * (B x n_in, row stride n_in + 3, transposed while packing), 3: the narrow-batch kernel (YT then
 * its own result at stride B). */
static void check_strided(int kind, const ecp_spmat *A, const ecp_wpack *p, const float *XT,
                          const float *b, const float *YT, int n_out, int n_in, int B, float *work)
{
    const size_t ld = (size_t)B + 16;
    float *XP = malloc((size_t)n_in * ld * sizeof *XP);
    float *YP = malloc((size_t)n_out * ld * sizeof *YP);
    assert_true(XP && YP);
    for (size_t i = 0; i < (size_t)n_in * ld; i++)
        XP[i] = (i % ld) < (size_t)B ? XT[i / ld * B + i % ld] : NAN; /* padding must not be read */
    for (size_t i = 0; i < (size_t)n_out * ld; i++)
        YP[i] = -7.0f;
    if (kind == 0)
        ecp_spmm_csr(A, XP, B, ld, b, YP, 0, n_out);
    else if (kind == 1)
        ecp_gemm_packed(p, XP, B, ld, b, ECP_ACT_IDENTITY, NULL, YP, work);
    else if (kind == 3)
        ecp_gemm_narrow(p, XP, B, ld, b, ECP_ACT_IDENTITY, NULL, YP, work);
    else {
        const size_t ldx = (size_t)n_in + 3;
        float *XR = malloc(((size_t)B * ldx + 1) * sizeof *XR);
        assert_non_null(XR);
        for (size_t i = 0; i < (size_t)B * ldx; i++)
            XR[i] = (i % ldx) < (size_t)n_in ? XT[(i % ldx) * B + i / ldx] : NAN;
        ecp_gemm_packed_rows(p, XR, B, ldx, ld, b, ECP_ACT_IDENTITY, NULL, YP, work);
        free(XR);
    }
    for (int o = 0; o < n_out; o++)
        for (size_t j = 0; j < ld; j++)
            assert_true(YP[o * ld + j] == (j < (size_t)B ? YT[(size_t)o * B + j] : -7.0f));
    free(XP);
    free(YP);
}

/* A packed kernel's fused activations: ReLU and sigmoid must be exactly the activation of its
 * identity result Y (same sums, same order). Y2 is scratch of n_out x B. */
typedef void (*gemm_fn)(const ecp_wpack *, const float *, int, size_t, const float *, ecp_act,
                        const float *, float *, float *);
static void check_fused_acts(gemm_fn f, const ecp_wpack *p, const float *XT, int B,
                             const float *b, const float *Y, int n_out, float *Y2, float *work)
{
    const size_t n = (size_t)n_out * B;
    float *want = malloc(n * sizeof *want);
    assert_non_null(want);
    f(p, XT, B, (size_t)B, b, ECP_ACT_RELU, NULL, Y2, work);
    for (size_t i = 0; i < n; i++)
        assert_true(Y2[i] == (Y[i] > 0.0f ? Y[i] : 0.0f));
    f(p, XT, B, (size_t)B, b, ECP_ACT_SIGMOID, NULL, Y2, work);
    ecp_act_forward(ECP_ACT_SIGMOID, Y, want, n);
    assert_memory_equal(Y2, want, n * sizeof *want);
    free(want);
}

/* The batch-1 list kernels: the non-zero list, CSC over it, DCOL over it (whole and split). */
static void check_lists(const float *W, const ecp_spmat *csc, const float *x, const float *b, int n_out,
                        int n_in)
{
    int ld = (n_out + ECP_VW - 1) / ECP_VW * ECP_VW;
    int32_t *nz = malloc((size_t)n_in * sizeof *nz), *rows = malloc((size_t)n_in * sizeof *rows);
    float *WT = calloc((size_t)n_in * ld, sizeof *WT), *bp = calloc((size_t)ld, sizeof *bp);
    float *y = malloc((size_t)ld * sizeof *y), *rl = malloc((size_t)n_in * sizeof *rl);
    assert_true(nz && rows && WT && bp && y && rl);
    int nx = ecp_nz_list(x, n_in, nz), want = 0;
    for (int i = 0; i < n_in; i++)
        if (x[i] != 0.0f)
            assert_int_equal(nz[want++], i);
    assert_int_equal(nx, want);
    /* masked list: only the inputs whose bit is set in live (every third one here) */
    uint16_t *live = calloc(((size_t)n_in + 15) / 16, sizeof *live);
    assert_non_null(live);
    for (int i = 0; i < n_in; i += 3)
        live[i / 16] |= (uint16_t)(1u << (i % 16));
    int nm = ecp_nz_list_mask(x, n_in, live, rows), km = 0;
    assert_int_equal(ecp_nz_count(x, n_in, live), nm);
    assert_int_equal(ecp_nz_count(x, n_in, NULL), nx);
    for (int i = 0; i < n_in; i++)
        if (x[i] != 0.0f && i % 3 == 0)
            assert_int_equal(rows[km++], i);
    assert_int_equal(nm, km);
    free(live);
    /* relu list: y = max(x, 0) and the positive entries */
    memcpy(rl, x, (size_t)n_in * sizeof *rl);
    int np = ecp_relu_nz_list(rl, n_in, rows), k = 0;
    for (int i = 0; i < n_in; i++) {
        assert_true(rl[i] == (x[i] > 0 ? x[i] : 0.0f));
        if (x[i] > 0)
            assert_int_equal(rows[k++], i);
    }
    assert_int_equal(np, k);
    ecp_spmv_csc_list(csc, x, nz, nx, b, y);
    check_product(W, x, b, y, n_out, n_in, 1);
    for (int i = 0; i < n_in; i++)
        for (int o = 0; o < n_out; o++)
            WT[(size_t)i * ld + o] = W[(size_t)o * n_in + i];
    memcpy(bp, b, (size_t)n_out * sizeof *bp);
    ecp_dcol_list(WT, ld, x, nz, nz, nx, bp, y);
    check_product(W, x, b, y, n_out, n_in, 1);
    for (int o = n_out; o < ld; o++)
        assert_true(y[o] == 0.0f);
    /* rows of WT in reverse order, reached through the rows list */
    float *WR = malloc((size_t)n_in * ld * sizeof *WR);
    assert_non_null(WR);
    for (int i = 0; i < n_in; i++)
        memcpy(WR + (size_t)(n_in - 1 - i) * ld, WT + (size_t)i * ld, (size_t)ld * sizeof *WR);
    for (int q = 0; q < nx; q++)
        rows[q] = n_in - 1 - nz[q];
    ecp_dcol_list(WR, ld, x, nz, rows, nx, bp, y);
    check_product(W, x, b, y, n_out, n_in, 1);
    /* split: the first half of the list by DCOL (bias), the rest added by CSC (no bias) */
    ecp_dcol_list(WR, ld, x, nz, rows, nx / 2, bp, y);
    ecp_spmv_csc_list(csc, x, nz + nx / 2, nx - nx / 2, NULL, y);
    check_product(W, x, b, y, n_out, n_in, 1);
    free(WR);
    free(nz);
    free(rows);
    free(WT);
    free(bp);
    free(y);
    free(rl);
}

/* The dense batch-1 row kernel (gemv.c): identity against the double reference (its row
 * groups and the vector tail of each row are covered by the shapes' tails); ReLU and sigmoid
 * must be exactly the activation of the identity result (same sums, same order). */
static void check_gemv_rows(const float *W, const float *x, const float *b, float *y, int n_out,
                            int n_in)
{
    float *y2 = malloc((size_t)n_out * sizeof *y2);
    assert_non_null(y2);
    memset(y, 0xff, (size_t)n_out * sizeof *y);
    ecp_gemv_rows(W, n_out, n_in, x, b, ECP_ACT_IDENTITY, NULL, y);
    check_product(W, x, b, y, n_out, n_in, 1);
    ecp_gemv_rows(W, n_out, n_in, x, b, ECP_ACT_RELU, NULL, y2);
    for (int o = 0; o < n_out; o++)
        assert_true(y2[o] == (y[o] > 0.0f ? y[o] : 0.0f));
    ecp_gemv_rows(W, n_out, n_in, x, b, ECP_ACT_SIGMOID, NULL, y2);
    ecp_act_forward(ECP_ACT_SIGMOID, y, y, (size_t)n_out);
    for (int o = 0; o < n_out; o++)
        assert_true(y2[o] == y[o]);
    free(y2);
}

/* The window-permute layout with bf16 values: the product of the weights rounded to bf16,
 * against the double reference on those weights, and bit for bit the float layout of the same
 * rounded weights (same slots, same order of the sums). */
static void check_wperm_bf16(const float *W, const uint8_t *pr, const float *x, const float *b,
                             int n_out, int n_in)
{
    ecp_error err;
    const size_t nw = (size_t)n_out * n_in;
    float *Wr = malloc(nw * sizeof *Wr), *y = malloc((size_t)n_out * sizeof *y);
    float *y2 = malloc((size_t)n_out * sizeof *y2);
    assert_true(Wr && y && y2);
    for (size_t i = 0; i < nw; i++)
        Wr[i] = pr && pr[i] ? 0.0f : ecp_bf16_round(W[i]);
    ecp_wperm h, f;
    assert_int_equal(ecp_wperm_build(&h, W, pr, n_out, n_in, 1, &err), ECP_OK);
    assert_true(h.val16 != NULL && h.val == NULL);
    assert_int_equal(ecp_wperm_build(&f, Wr, NULL, n_out, n_in, 0, &err), ECP_OK);
    assert_int_equal(h.steps, f.steps);
    memset(y, 0xff, (size_t)n_out * sizeof *y);
    ecp_wperm_gemv(&h, x, b, y);
    check_product(Wr, x, b, y, n_out, n_in, 1);
    ecp_wperm_gemv(&f, x, b, y2);
    assert_memory_equal(y, y2, (size_t)n_out * sizeof *y);
    ecp_wperm_release(&h);
    ecp_wperm_release(&f);
    free(Wr);
    free(y);
    free(y2);
}

/* The CSR products with bf16 values h: the double reference on the rounded weights Wr, and bit
 * for bit the float CSR hr of Wr; batch 1 also on two threads. */
static void check_csr_bf16(const ecp_spmat *h, const ecp_spmat *hr, const float *Wr,
                           const float *XT, int B, const float *b, int n_out, int n_in)
{
    ecp_error err;
    const size_t n = (size_t)n_out * B * sizeof(float);
    float *Y = malloc(n), *Y2 = malloc(n);
    assert_true(Y && Y2);
    memset(Y, 0xff, n);
    if (B == 1) {
        ecp_spmv_csr(h, XT, b, Y, 0, n_out);
        ecp_spmv_csr(hr, XT, b, Y2, 0, n_out);
    } else {
        ecp_spmm_csr(h, XT, B, (size_t)B, b, Y, 0, n_out);
        ecp_spmm_csr(hr, XT, B, (size_t)B, b, Y2, 0, n_out);
    }
    check_product(Wr, XT, b, Y, n_out, n_in, B);
    assert_memory_equal(Y, Y2, n);
    if (B == 1) {
        ecp_pool *pool = NULL;
        assert_int_equal(ecp_pool_create(2, &pool, &err), ECP_OK);
        memset(Y, 0xff, n);
        ecp_spmv_csr_mt(h, XT, b, Y, pool);
        assert_memory_equal(Y, Y2, n);
        ecp_pool_free(pool);
    }
    free(Y);
    free(Y2);
}

static void one_shape(ecp_rng *r, int n_out, int n_in, double keep, int empty_row)
{
    /* 15, 16, 31, 32, 33, 47, 64: around the SpMM register tiles (16 and 32 columns with AVX-512,
     * 8 and 16 with AVX) and their tails */
    static const int batches[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 64, 256};
    float *W = malloc((size_t)n_out * n_in * sizeof *W);
    uint8_t *pr = malloc((size_t)n_out * n_in);
    float *b = malloc((size_t)n_out * sizeof *b);
    assert_true(W && pr && b);
    fill_layer(r, W, pr, n_out, n_in, keep, empty_row);
    fill_input(r, b, (size_t)n_out, 0.1);
    ecp_spmat csr, csc;
    ecp_error err;
    assert_int_equal(ecp_spmat_build(&csr, W, pr, n_out, n_in, 0, &err), ECP_OK);
    assert_int_equal(ecp_spmat_build(&csc, W, pr, n_out, n_in, 1, &err), ECP_OK);
    assert_int_equal(csr.nnz, ecp_spmat_count(W, pr, n_out, n_in));
    assert_int_equal(csr.nnz, csc.nnz);
    assert_int_equal(csr.ptr[n_out], csr.nnz);
    assert_int_equal(csc.ptr[n_in], csc.nnz);
    assert_true((csr.idx16 != NULL) == (n_in <= 65535));
    assert_true((csc.idx16 != NULL) == (n_out <= 65535));
    /* the CSR with bf16 values, and the float CSR of the rounded weights it must match bit for
     * bit (same non-zeros, same order of the sums) */
    ecp_spmat h, hr;
    float *Wr = malloc((size_t)n_out * n_in * sizeof *Wr);
    assert_non_null(Wr);
    for (size_t i = 0; i < (size_t)n_out * n_in; i++)
        Wr[i] = ecp_bf16_round(W[i]);
    assert_int_equal(ecp_spmat_build(&h, W, pr, n_out, n_in, 0, &err), ECP_OK);
    assert_int_equal(ecp_spmat_bf16(&h, &err), ECP_OK);
    assert_true(h.val16 && !h.val);
    assert_int_equal(ecp_spmat_bf16(&h, &err), ECP_ERR_ARG); /* already bf16 */
    assert_int_equal(ecp_spmat_bf16(&csc, &err), ECP_ERR_ARG);
    assert_int_equal(ecp_spmat_build(&hr, Wr, pr, n_out, n_in, 0, &err), ECP_OK);
    for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
        int B = batches[bi];
        if ((size_t)B * ((size_t)n_in + n_out) > (size_t)4 << 20)
            continue; /* keep the huge-width shapes quick */
        float *XT = malloc((size_t)n_in * B * sizeof *XT);
        float *YT = malloc((size_t)n_out * B * sizeof *YT);
        assert_true(XT && YT);
        fill_input(r, XT, (size_t)n_in * B, 0.5);
        if (B == 1) {
            ecp_spmv_csr(&csr, XT, b, YT, 0, n_out);
            check_product(W, XT, b, YT, n_out, n_in, 1);
            ecp_spmv_csc(&csc, XT, b, YT);
            check_product(W, XT, b, YT, n_out, n_in, 1);
            for (int th = 1; th <= 3; th++) {
                ecp_pool *pool = NULL;
                assert_int_equal(ecp_pool_create(th, &pool, &err), ECP_OK);
                ecp_spmv_csr_mt(&csr, XT, b, YT, pool);
                check_product(W, XT, b, YT, n_out, n_in, 1);
                ecp_pool_free(pool);
            }
            check_lists(W, &csc, XT, b, n_out, n_in);
            ecp_wperm wp;
            assert_int_equal(ecp_wperm_build(&wp, W, pr, n_out, n_in, 0, &err), ECP_OK);
            assert_int_equal(wp.nnz, csr.nnz);
            assert_int_equal(ecp_wperm_slots(W, pr, n_out, n_in), wp.steps * 16);
            memset(YT, 0xff, (size_t)n_out * sizeof *YT);
            ecp_wperm_gemv(&wp, XT, b, YT);
            check_product(W, XT, b, YT, n_out, n_in, 1);
            ecp_wperm_release(&wp);
            check_wperm_bf16(W, pr, XT, b, n_out, n_in);
            check_gemv_rows(W, XT, b, YT, n_out, n_in);
        }
        check_csr_bf16(&h, &hr, Wr, XT, B, b, n_out, n_in);
        ecp_spmm_csr(&csr, XT, B, (size_t)B, b, YT, 0, n_out);
        check_product(W, XT, b, YT, n_out, n_in, B);
        check_strided(0, &csr, NULL, XT, b, YT, n_out, n_in, B, NULL);
        for (int th = 2; th <= 3; th++) {
            ecp_pool *pool = NULL;
            assert_int_equal(ecp_pool_create(th, &pool, &err), ECP_OK);
            memset(YT, 0xff, (size_t)n_out * B * sizeof *YT); /* NaN: every entry must be set */
            ecp_spmm_csr_mt(&csr, XT, B, (size_t)B, b, YT, pool);
            check_product(W, XT, b, YT, n_out, n_in, B);
            ecp_pool_free(pool);
        }
        free(XT);
        free(YT);
    }
    ecp_spmat_release(&csr);
    ecp_spmat_release(&csc);
    ecp_spmat_release(&h);
    ecp_spmat_release(&hr);
    free(W);
    free(Wr);
    free(pr);
    free(b);
}

/* The window-permute layout with its inputs reordered: columns of very different counts (as
 * the first layer of a pruned mnist model: many pixels without a weight, a few in most rows)
 * make it keep only the live columns, busiest first; the product must not change. Shapes with
 * live-column counts off the 16-wide gather and the 32-wide window, and one too small to
 * gain from it. */
static void test_wperm_cols(void **state)
{
    (void)state;
    static const int shapes[][2] = {{37, 100}, {300, 784}, {17, 1025}, {5, 41}};
    ecp_rng r;
    ecp_rng_seed(&r, 8);
    ecp_error err;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const int n_out = shapes[si][0], n_in = shapes[si][1];
        float *W = malloc((size_t)n_out * n_in * sizeof *W), *b = malloc(n_out * sizeof *b);
        float *x = malloc((size_t)n_in * sizeof *x), *y = malloc((size_t)n_out * sizeof *y);
        int *cnt = calloc((size_t)n_in, sizeof *cnt);
        assert_true(W && b && x && y && cnt);
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) {
                const double keep = i % 5 == 0 ? 0.8 : i % 5 == 1 ? 0.05 : 0.0;
                const int k = ecp_rng_uniform(&r) < keep;
                W[(size_t)o * n_in + i] = k ? (float)(2 * ecp_rng_uniform(&r) - 1) : 0.0f;
                cnt[i] += k;
            }
        fill_input(&r, b, (size_t)n_out, 0.1);
        fill_input(&r, x, (size_t)n_in, 0.0);
        ecp_wperm wp;
        assert_int_equal(ecp_wperm_build(&wp, W, NULL, n_out, n_in, 0, &err), ECP_OK);
        /* 5 x 41: one group, its live columns fit one window: the order would save nothing */
        assert_true((wp.cols != NULL) == (n_in > 41));
        int live = 0;
        for (int i = 0; i < n_in; i++)
            live += cnt[i] > 0;
        assert_int_equal(wp.n_cols, wp.cols ? live : n_in);
        for (int j = 1; wp.cols && j < wp.n_cols; j++) /* busiest first, ties in index order */
            assert_true(cnt[wp.cols[j - 1]] > cnt[wp.cols[j]] ||
                        (cnt[wp.cols[j - 1]] == cnt[wp.cols[j]] && wp.cols[j - 1] < wp.cols[j]));
        assert_int_equal(ecp_wperm_slots(W, NULL, n_out, n_in), wp.steps * 16);
        memset(y, 0xff, (size_t)n_out * sizeof *y);
        ecp_wperm_gemv(&wp, x, b, y);
        check_product(W, x, b, y, n_out, n_in, 1);
        ecp_wperm_release(&wp);
        check_wperm_bf16(W, NULL, x, b, n_out, n_in);
        free(W); free(b); free(x); free(y); free(cnt);
    }
}

static void test_kernels_shapes(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 9}, {9, 1}, {7, 13}, {33, 65}, {100, 300},
                                    {300, 784}, {17, 1025}};
    static const double keeps[] = {0.0, 0.01, 0.5, 1.0};
    ecp_rng r;
    ecp_rng_seed(&r, 1);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t k = 0; k < sizeof keeps / sizeof *keeps; k++)
            for (int e = 0; e < 2; e++)
                one_shape(&r, shapes[s][0], shapes[s][1], keeps[k], e);
}

/* A large enough product (>= 2^20 multiply-adds) to take the threaded path for real. */
static void test_kernels_threaded(void **state)
{
    (void)state;
    ecp_rng r;
    ecp_rng_seed(&r, 2);
    one_shape(&r, 512, 1024, 0.3, 1);
}

/* Widths beyond 65535 switch the indices to int32. */
static void test_kernels_int32_indices(void **state)
{
    (void)state;
    ecp_rng r;
    ecp_rng_seed(&r, 3);
    one_shape(&r, 2, 70000, 0.2, 0);
    one_shape(&r, 70000, 2, 0.2, 0);
    one_shape(&r, 3, 65535, 0.1, 0);
}

/* The packed dense kernels (gemm.c: wide, from rows, narrow) on the shapes of the sparse
 * tests: densities 0, 1 %, 50 %, 100 %, an empty row, tails of the row tile and of the batch
 * panel, more inputs than one and two blocks of steps (KC = 256). Identity against the double
 * reference; the other forms bit for bit against it; ReLU and sigmoid exactly the activation
 * of the identity result (same sums, same order). */
static void test_gemm_packed(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {13, 9}, {25, 600}, {300, 784}, {7, 257}, {12, 33}};
    static const int batches[] = {2, 3, 4, 5, 7, 8, 12, 16, 17, 32, 33, 100};
    /* the engine's choice between the two kernels: only inside the narrow kernel's range */
    assert_false(ecp_gemm_narrow_pays(1, 1));
    assert_false(ecp_gemm_narrow_pays(ECP_GEMM_NARROW_MAX + 1, 1));
    if (ECP_VW == 16) /* 4 row tiles up to 6 samples; in cache up to the maximum */
        assert_true(ecp_gemm_narrow_pays(6, 0) && !ecp_gemm_narrow_pays(7, 0) &&
                    ecp_gemm_narrow_pays(ECP_GEMM_NARROW_MAX, 1));
    static const double keeps[] = {0.0, 0.01, 0.5, 1.0};
    ecp_rng r;
    ecp_rng_seed(&r, 77);
    ecp_error err;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ki = 0; ki < sizeof keeps / sizeof *keeps; ki++) {
            int n_out = shapes[si][0], n_in = shapes[si][1];
            float *W = malloc((size_t)n_out * n_in * sizeof *W), *b = malloc(n_out * sizeof *b);
            float *XT = malloc((size_t)n_in * 100 * sizeof *XT);
            float *Y = malloc((size_t)n_out * 100 * sizeof *Y), *Y2 = malloc((size_t)n_out * 100 * sizeof *Y2);
            float *work = ecp_alloc_aligned(ecp_gemm_work_floats(100), &err);
            assert_true(W && b && XT && Y && Y2 && work);
            fill_layer(&r, W, NULL, n_out, n_in, keeps[ki], si % 2);
            fill_input(&r, b, (size_t)n_out, 0.2);
            fill_input(&r, XT, (size_t)n_in * 100, 0.3);
            ecp_wpack p;
            assert_int_equal(ecp_wpack_build(&p, W, n_out, n_in, &err), ECP_OK);
            for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                int B = batches[bi];
                ecp_gemm_packed(&p, XT, B, (size_t)B, b, ECP_ACT_IDENTITY, NULL, Y, work);
                check_product(W, XT, b, Y, n_out, n_in, B);
                check_strided(1, NULL, &p, XT, b, Y, n_out, n_in, B, work);
                check_strided(2, NULL, &p, XT, b, Y, n_out, n_in, B, work);
                if (B <= ECP_GEMM_NARROW_MAX) { /* the narrow-batch kernel: the same sums */
                    ecp_gemm_narrow(&p, XT, B, (size_t)B, b, ECP_ACT_IDENTITY, NULL, Y2, work);
                    assert_memory_equal(Y2, Y, (size_t)n_out * B * sizeof *Y);
                    check_strided(3, NULL, &p, XT, b, Y2, n_out, n_in, B, work);
                    check_fused_acts(ecp_gemm_narrow, &p, XT, B, b, Y, n_out, Y2, work);
                }
                check_fused_acts(ecp_gemm_packed, &p, XT, B, b, Y, n_out, Y2, work);
            }
            ecp_wpack_release(&p);
            free(W); free(b); free(XT); free(Y); free(Y2); free(work);
        }
}

/* Random pruned model, every activation, every engine mode, against ecp_mlp_forward. */
static void check_model(const char *arch, ecp_act act, double prune, uint64_t seed)
{
    static const int batches[] = {1, 3, 8, 17, 256, 300};
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, arch, act, &err), ECP_OK);
    ecp_mlp_init(m, seed);
    ecp_rng r;
    ecp_rng_seed(&r, seed + 7);
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        float *W = ecp_mlp_weights(m, l);
        uint8_t *p = ecp_mlp_pruned(m, l);
        for (size_t i = 0; i < nw; i++)
            if (ecp_rng_uniform(&r) < prune) {
                W[i] = 0.0f;
                p[i] = 1;
            }
    }
    int n_in = ecp_mlp_n_in(m), n_out = ecp_mlp_n_out(m), maxb = 300;
    float *x = malloc((size_t)maxb * n_in * sizeof *x);
    float *y = malloc((size_t)maxb * n_out * sizeof *y);
    assert_true(x && y);
    fill_input(&r, x, (size_t)maxb * n_in, 0.6);
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, maxb, &err), ECP_OK);
    static const ecp_engine_mode modes[] = {ECP_ENGINE_DENSE, ECP_ENGINE_SPARSE, ECP_ENGINE_AUTO};
    for (size_t mi = 0; mi < 3; mi++)
        for (int cap = 0; cap < 3; cap++) {
            ecp_sparse_opts o;
            ecp_sparse_opts_default(&o);
            o.mode = modes[mi];
            o.threads = cap < 2 ? 2 : 1; /* one thread: the packed dense kernel */
            o.max_batch = cap == 1 ? 7 : cap == 2 ? 1024 : 256; /* 1024: chunks of <= 256 */
            ecp_sparse_net *s;
            assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
            assert_int_equal(ecp_sparse_n_in(s), n_in);
            assert_int_equal(ecp_sparse_n_out(s), n_out);
            assert_int_equal(ecp_sparse_n_weights(s) - ecp_sparse_nnz(s), ecp_mlp_n_pruned(m));
            for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                int B = batches[bi];
                ecp_mlp_forward(m, ws, x, B);
                const float *ref = ecp_ws_output(ws);
                assert_int_equal(ecp_sparse_forward(s, x, B, y, &err), ECP_OK);
                for (size_t i = 0; i < (size_t)B * n_out; i++)
                    assert_close(y[i], ref[i], 1e-5, 1e-5);
            }
            ecp_sparse_free(s);
        }
    ecp_ws_free(ws);
    free(x);
    free(y);
    ecp_mlp_free(m);
}

static void test_models_every_activation(void **state)
{
    (void)state;
    for (int a = 0; a < ECP_ACT_COUNT; a++) {
        check_model("13-9-5", (ecp_act)a, 0.5, 10 + (uint64_t)a);
        check_model("784-300-100-10", (ecp_act)a, 0.9, 20 + (uint64_t)a);
    }
}

static void test_models_sparsities(void **state)
{
    (void)state;
    static const double prunes[] = {0.0, 0.5, 0.99, 1.0};
    for (size_t i = 0; i < sizeof prunes / sizeof *prunes; i++) {
        check_model("64-33-17-3", ECP_ACT_RELU, prunes[i], 40 + i);
        check_model("1-1", ECP_ACT_TANH, prunes[i], 50 + i);
    }
}

/* A memory-bound layer (> 2 MB dense) whose first columns are nearly dense: at batch 1 the auto
 * engine splits the non-zero inputs between dense columns and the CSC of the others. */
static void test_engine_split_columns(void **state)
{
    (void)state;
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "1800-300-10", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 77);
    ecp_rng r;
    ecp_rng_seed(&r, 78);
    float *W = ecp_mlp_weights(m, 0);
    uint8_t *p = ecp_mlp_pruned(m, 0);
    for (int o = 0; o < 300; o++)
        for (int i = 0; i < 1800; i++)
            if (ecp_rng_uniform(&r) >= (i < 200 ? 0.9 : 0.05)) {
                W[(size_t)o * 1800 + i] = 0.0f;
                p[(size_t)o * 1800 + i] = 1;
            }
    float *x = malloc(1800 * sizeof *x), y[10];
    assert_non_null(x);
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, 1, &err), ECP_OK);
    ecp_sparse_opts o;
    ecp_sparse_opts_default(&o);
    o.be_b1_small = o.be_b1_large = o.be_bn = 0.2;
    ecp_sparse_net *s;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    static const double zeros[] = {0.99, 0.9, 0.5, 0.0};
    for (size_t zi = 0; zi < sizeof zeros / sizeof *zeros; zi++) {
        fill_input(&r, x, 1800, zeros[zi]);
        ecp_mlp_forward(m, ws, x, 1);
        assert_int_equal(ecp_sparse_forward(s, x, 1, y, &err), ECP_OK);
        for (int k = 0; k < 10; k++)
            assert_close(y[k], ecp_ws_output(ws)[k], 1e-5, 1e-5);
    }
    ecp_sparse_free(s);
    ecp_ws_free(ws);
    free(x);
    ecp_mlp_free(m);
}

/* The batch-1 row kernel of a sparse layer: its window-permute layout where that has its
 * vector form, else CSR. */
static ecp_sparse_kernel row_kernel_b1(void)
{
    return ECP_WPERM_FAST ? ECP_KERNEL_WPERM : ECP_KERNEL_CSR;
}

/* Structural simplification when the engine is built (engine.c): every case against
 * ecp_mlp_forward, every activation (sigmoid, tanh, softplus, gelu: act(b) != 0 is folded into the
 * next bias), modes auto and sparse, batches 1 and > 1, with and without zero inputs. */
static void prune_w(ecp_mlp *m, int l, int o, int i)
{
    int n_in = ecp_mlp_layer_in(m, l);
    ecp_mlp_weights(m, l)[(size_t)o * n_in + i] = 0.0f;
    ecp_mlp_pruned(m, l)[(size_t)o * n_in + i] = 1;
}

static void check_against_mlp(ecp_mlp *m, uint64_t seed)
{
    static const int batches[] = {1, 2, 5, 33};
    static const double zeros[] = {0.0, 0.5, 0.9};
    ecp_error err;
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    int n_in = ecp_mlp_n_in(m), n_out = ecp_mlp_n_out(m);
    float *x = malloc((size_t)33 * n_in * sizeof *x), *y = malloc((size_t)33 * n_out * sizeof *y);
    assert_true(x && y);
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, m, 33, &err), ECP_OK);
    static const ecp_engine_mode modes[] = {ECP_ENGINE_AUTO, ECP_ENGINE_SPARSE, ECP_ENGINE_DENSE};
    for (size_t mi = 0; mi < 3; mi++) {
        ecp_sparse_opts o;
        ecp_sparse_opts_default(&o);
        o.mode = modes[mi];
        o.threads = 1;
        ecp_sparse_net *s;
        assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
        assert_int_equal(ecp_sparse_n_in(s), n_in);
        assert_int_equal(ecp_sparse_n_out(s), n_out);
        /* introspection describes the model, not the simplified copy */
        assert_int_equal(ecp_sparse_n_weights(s) - ecp_sparse_nnz(s), ecp_mlp_n_pruned(m));
        for (size_t zi = 0; zi < 3; zi++)
            for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                int B = batches[bi];
                fill_input(&r, x, (size_t)B * n_in, zeros[zi]);
                ecp_mlp_forward(m, ws, x, B);
                assert_int_equal(ecp_sparse_forward(s, x, B, y, &err), ECP_OK);
                for (size_t i = 0; i < (size_t)B * n_out; i++)
                    assert_close(y[i], ecp_ws_output(ws)[i], 1e-5, 1e-5);
            }
        ecp_sparse_free(s);
    }
    ecp_ws_free(ws);
    free(x);
    free(y);
}

static void test_engine_simplify(void **state)
{
    (void)state;
    for (int a = 0; a < ECP_ACT_COUNT; a++) {
        ecp_error err;
        ecp_mlp *m;
        /* 40 inputs: past one 16-input mask word, with a tail */
        assert_int_equal(ecp_mlp_create_arch(&m, "40-12-10-4", (ecp_act)a, &err), ECP_OK);
        ecp_mlp_init(m, 90 + (uint64_t)a);
        for (int l = 0; l < 3; l++) /* positive and negative biases: relu(b) both 0 and not */
            for (int o = 0; o < ecp_mlp_layer_out(m, l); o++)
                ecp_mlp_bias(m, l)[o] = (o % 2 ? 0.3f : -0.2f) * (float)(1 + o % 3);
        /* dead input: neurons 2 (b > 0) and 4 (b < 0) of layer 0 have no incoming weight */
        for (int i = 0; i < 40; i++) {
            prune_w(m, 0, 3, i);
            prune_w(m, 0, 4, i);
        }
        /* dead output: neuron 5 of layer 0 feeds nothing */
        for (int o = 0; o < 10; o++)
            prune_w(m, 1, o, 5);
        /* cascade: neuron 1 of layer 1 is fed only by neuron 3 of layer 0 (dead input), so it
         * becomes a constant once 3 is folded; neuron 7 of layer 0 feeds only neuron 6 of layer
         * 1, which feeds nothing, so 7 dies once 6 does */
        for (int i = 0; i < 12; i++)
            if (i != 3)
                prune_w(m, 1, 1, i);
        for (int o = 0; o < 4; o++)
            prune_w(m, 2, o, 6);
        for (int o = 0; o < 10; o++)
            if (o != 6)
                prune_w(m, 1, o, 7);
        /* input columns 0, 17 and 39 all pruned */
        for (int o = 0; o < 12; o++) {
            prune_w(m, 0, o, 0);
            prune_w(m, 0, o, 17);
            prune_w(m, 0, o, 39);
        }
        check_against_mlp(m, 100 + (uint64_t)a);

        /* a hidden layer empty except one guard weight, and one with no weight at all: the
         * engine keeps one neuron per layer and folds the rest into the next bias */
        for (int l = 1; l < 3; l++) {
            for (int o = 0; o < ecp_mlp_layer_out(m, l); o++)
                for (int i = 0; i < ecp_mlp_layer_in(m, l); i++)
                    if (l == 2 || o != 2 || i != 9)
                        prune_w(m, l, o, i);
            check_against_mlp(m, 200 + (uint64_t)a + 10 * (uint64_t)l);
        }
        /* every weight pruned: the output is a function of the biases alone */
        for (int o = 0; o < 12; o++)
            for (int i = 0; i < 40; i++)
                prune_w(m, 0, o, i);
        check_against_mlp(m, 300 + (uint64_t)a);
        ecp_mlp_free(m);
    }
    /* a wide hidden layer (more neurons than inputs) with dead neurons */
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "8-50-3", ECP_ACT_SIGMOID, &err), ECP_OK);
    ecp_mlp_init(m, 400);
    for (int o = 0; o < 50; o += 3)
        for (int i = 0; i < 8; i++)
            prune_w(m, 0, o, i);
    for (int o = 0; o < 3; o++)
        for (int i = 1; i < 50; i += 4)
            prune_w(m, 1, o, i);
    check_against_mlp(m, 401);
    ecp_mlp_free(m);
}

static void test_engine_kernel_choice(void **state)
{
    (void)state;
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "100-100-10", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 5);
    /* layer 0 at 1 % density, layer 1 fully dense */
    float *W = ecp_mlp_weights(m, 0);
    uint8_t *p = ecp_mlp_pruned(m, 0);
    for (int i = 0; i < 100 * 100; i++)
        if (i % 100) {
            W[i] = 0.0f;
            p[i] = 1;
        }
    ecp_sparse_opts o;
    ecp_sparse_opts_default(&o);
    o.be_b1_small = o.be_b1_large = o.be_bn = 0.2;
    ecp_sparse_net *s;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    /* batch 1: CSR, or its window-permute layout where that has its vector form */
    assert_int_equal(ecp_sparse_layer_kernel(s, 0, 1), row_kernel_b1());
    assert_int_equal(ecp_sparse_layer_kernel(s, 0, 256), ECP_KERNEL_CSR);
    /* a dense 100x10 layer at batch 1: the row kernel, or dense columns (one vector per
     * input) with 16-float vectors, where DCOL is the cheaper; with 8-float vectors the cost
     * model may take either, with 4 the row kernel */
    ecp_sparse_kernel k1 = ecp_sparse_layer_kernel(s, 1, 1);
    if (ECP_VW == 16)
        assert_int_equal(k1, ECP_KERNEL_DCOL);
    else if (ECP_VW == 8)
        assert_true(k1 == ECP_KERNEL_DCOL || k1 == ECP_KERNEL_DENSE);
    else
        assert_int_equal(k1, ECP_KERNEL_DENSE);
    assert_int_equal(ecp_sparse_layer_kernel(s, 1, 256), ECP_KERNEL_DENSE);
    assert_string_equal(ecp_sparse_kernel_name(ECP_KERNEL_CSC), "csc");
    assert_string_equal(ecp_sparse_kernel_name(ECP_KERNEL_DCOL), "dcol");
    assert_string_equal(ecp_sparse_kernel_name(ECP_KERNEL_WPERM), "wperm");
    ecp_sparse_free(s);
    o.mode = ECP_ENGINE_SPARSE; /* forced sparse: never the dense columns */
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    assert_int_equal(ecp_sparse_layer_kernel(s, 1, 1), row_kernel_b1());
    ecp_sparse_free(s);
    o.mode = ECP_ENGINE_DENSE; /* batch-1 bytes: 4 per weight */
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    assert_true(ecp_sparse_b1_bytes(s) == 4.0 * 11000);
    ecp_sparse_free(s);
    o.mode = ECP_ENGINE_AUTO;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    assert_close(ecp_sparse_density(s), (100.0 + 1000.0) / 11000.0, 1e-12, 0);
    ecp_sparse_free(s);
    ecp_sparse_free(NULL);
    o.max_batch = 0;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_ERR_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "max_batch"));
    ecp_sparse_opts_default(&o);
    o.mode = (ecp_engine_mode)9;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_ERR_ARG);
    ecp_mlp_free(m);
    /* a dense layer beyond the caches stays dense at batch 1 whatever the break-even: the
     * window-permute layout would read 5 bytes per weight instead of 4 */
    assert_int_equal(ecp_mlp_create_arch(&m, "1024-1024", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 6);
    ecp_sparse_opts_default(&o);
    o.threads = 1;
    o.be_b1_small = o.be_b1_large = 0.45;
    o.be_bn = 0.2;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    assert_int_equal(ecp_sparse_layer_kernel(s, 0, 1), ECP_KERNEL_DENSE);
    ecp_sparse_free(s);
    /* with bf16 values the layout reads 3 bytes per weight: it may take the layer */
    o.bf16 = 1;
    assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
    assert_int_equal(ecp_sparse_layer_kernel(s, 0, 1),
                     ECP_WPERM_FAST ? ECP_KERNEL_WPERM : ECP_KERNEL_DENSE);
    ecp_sparse_free(s);
    ecp_mlp_free(m);
}

static void test_tune_cache(void **state)
{
    (void)state;
    char dir[256], path[512];
    tu_mkdtemp(dir, sizeof dir);
    setenv("ECPRUNE_CACHE", dir, 1);
    ecp_error err;
    ecp_sparse_tune_result r, d;
    ecp_sparse_tune_default(&d);
    assert_int_equal(ecp_sparse_tune_load(&r, &err), ECP_ERR_IO);
    assert_close(r.bn, d.bn, 0, 0); /* defaults on a missing file */
    ecp_sparse_tune_result w = {0.11, 0.52, 0.33, 2};
    assert_int_equal(ecp_sparse_tune_save(&w, &err), ECP_OK);
    assert_int_equal(tu_count_files(dir), 1);
    assert_int_equal(ecp_sparse_tune_load(&r, &err), ECP_OK);
    assert_close(r.b1_small, 0.11, 0, 1e-9);
    assert_close(r.b1_large, 0.52, 0, 1e-9);
    assert_close(r.bn, 0.33, 0, 1e-9);
    assert_int_equal(r.threads, 2);
    snprintf(path, sizeof path, "%s/%s", dir, ECP_SPARSE_TUNE_FILE);
    tu_write(path, "batch1_small 0.2\nbatchN nan\n", 28);
    assert_int_equal(ecp_sparse_tune_load(&r, &err), ECP_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tune"));
    assert_close(r.bn, d.bn, 0, 0);
    /* a bad cache file never stops the engine */
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "4-3", ECP_ACT_RELU, &err), ECP_OK);
    ecp_sparse_net *s;
    assert_int_equal(ecp_sparse_create(&s, m, NULL, &err), ECP_OK);
    ecp_sparse_free(s);
    ecp_mlp_free(m);
    unsetenv("ECPRUNE_CACHE");
    tu_rmdir(dir);
}

/* The value of bf16 bits h from the definition (sign, 8-bit exponent, 7-bit fraction), with the
 * pattern of inf read as 2^128: the next step past the largest finite value, which is what
 * rounding to nearest compares against at the top of the range. */
static double bf16_value(uint16_t h)
{
    const int e = h >> 7 & 0xff, f = h & 0x7f;
    const double v = e ? ldexp(1.0 + f / 128.0, e - 127) : ldexp((double)f, -133);
    return h & 0x8000 ? -v : v;
}

/* The nearest bf16 to the finite float u by brute force: the two candidates around it (its
 * bits truncated, and the next bf16 away from zero) compared in double, ties to the even one. */
static uint16_t bf16_nearest(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    const uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    const double el = fabs((double)f - bf16_value(lo)), eh = fabs(bf16_value(hi) - (double)f);
    if (el != eh)
        return el < eh ? lo : hi;
    return lo & 1 ? hi : lo;
}

static void check_bf16_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    const uint16_t h = ecp_bf16_from_float(f);
    const float r = ecp_bf16_round(f);
    if (isnan(f)) { /* stays a NaN of the same sign */
        assert_true(isnan(ecp_bf16_to_float(h)) && isnan(r));
        assert_int_equal(h >> 15, u >> 31);
        return;
    }
    if (isinf(f)) {
        assert_true(ecp_bf16_to_float(h) == f);
        return;
    }
    if (h != bf16_nearest(u)) {
        print_error("bits 0x%08x: 0x%04x, nearest 0x%04x\n", (unsigned)u, h, bf16_nearest(u));
        fail();
    }
    assert_true(r == ecp_bf16_to_float(h) || (isnan(r) && isnan(ecp_bf16_to_float(h))));
    /* the documented bound */
    if (isfinite(r)) {
        const double d = fabs((double)r - (double)f);
        if (fabs((double)f) >= 0x1p-126)
            assert_true(d <= 0x1p-8 * fabs((double)f));
        else
            assert_true(d <= 0x1p-134);
    } else
        assert_true(fabs((double)f) >= 0x1.ffp127);
}

/* Round to nearest even against brute force: every upper half with the lower halves at and
 * around the tie, random patterns, and the special values. */
static void test_bf16_round(void **state)
{
    (void)state;
    static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
    for (uint32_t hi = 0; hi < 0x10000; hi++)
        for (size_t k = 0; k < sizeof lows / sizeof *lows; k++)
            check_bf16_bits(hi << 16 | lows[k]);
    ecp_rng r;
    ecp_rng_seed(&r, 16);
    for (int i = 0; i < 200000; i++)
        check_bf16_bits((uint32_t)(ecp_rng_uniform(&r) * 4294967296.0));
    /* exact cases: ties to even, denormals, the top of the range, NaN payloads */
    assert_int_equal(ecp_bf16_from_float(1.0f), 0x3f80);
    assert_int_equal(ecp_bf16_from_float(1.0f + 0x1p-8f), 0x3f80);          /* tie, even down */
    assert_int_equal(ecp_bf16_from_float(1.0f + 3 * 0x1p-8f), 0x3f82);      /* tie, even up */
    assert_int_equal(ecp_bf16_from_float(-0.0f), 0x8000);
    assert_int_equal(ecp_bf16_from_float(0x1p-149f), 0x0000);               /* below half */
    assert_int_equal(ecp_bf16_from_float(0x1p-134f * 3), 0x0002);           /* tie, even up */
    assert_int_equal(ecp_bf16_from_float(0x1.fep127f), 0x7f7f);             /* largest finite */
    assert_int_equal(ecp_bf16_from_float(0x1.ffp127f), 0x7f80);             /* tie -> inf */
    assert_int_equal(ecp_bf16_from_float(-0x1.fffffep127f), 0xff80);
    uint32_t snan = 0x7f800001u;
    float f;
    memcpy(&f, &snan, sizeof f);
    assert_true(isnan(ecp_bf16_to_float(ecp_bf16_from_float(f)))); /* not inf */
}

/* ---- bf16 weights in the engine: the error bound of ecp_sparse_opts.bf16 */

static double act_d(ecp_act a, double z)
{
    switch (a) {
    case ECP_ACT_IDENTITY: return z;
    case ECP_ACT_RELU: return z > 0 ? z : 0;
    case ECP_ACT_TANH: return tanh(z);
    default: fail(); return 0;
    }
}

/* The documented bound for one sample: the float network's activations h (in double from the
 * float weights) and the bound e on |h_bf16 - h| go through the layers together. A layer's
 * pre-activation moves by at most 2^-8 |W| |h_bf16| (the rounded weights) + |W| e (its moved
 * input), |h_bf16| <= |h| + e; 2e-5 (1 + the same sums) covers the float rounding of the two
 * engines (as in the other tests of this file), and a 1-Lipschitz activation passes the bound
 * on. Writes the output bound per output. */
static void bf16_bound(ecp_mlp *m, const float *x, double *bound)
{
    int wmax = ecp_mlp_n_in(m);
    for (int l = 0; l < ecp_mlp_n_layers(m); l++)
        wmax = ecp_mlp_layer_out(m, l) > wmax ? ecp_mlp_layer_out(m, l) : wmax;
    double *h = malloc((size_t)wmax * sizeof *h), *e = calloc((size_t)wmax, sizeof *e);
    double *h2 = malloc((size_t)wmax * sizeof *h2), *e2 = malloc((size_t)wmax * sizeof *e2);
    assert_true(h && e && h2 && e2);
    for (int i = 0; i < ecp_mlp_n_in(m); i++)
        h[i] = x[i];
    for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
        const int n_in = ecp_mlp_layer_in(m, l), n_out = ecp_mlp_layer_out(m, l);
        const float *W = ecp_mlp_weights(m, l), *b = ecp_mlp_bias(m, l);
        for (int o = 0; o < n_out; o++) {
            double z = b[o], S = 0, E = 0;
            for (int i = 0; i < n_in; i++) {
                const double w = W[(size_t)o * n_in + i];
                z += w * h[i];
                S += fabs(w) * fabs(h[i]);
                E += fabs(w) * e[i];
            }
            h2[o] = act_d(ecp_mlp_layer_act(m, l), z);
            e2[o] = 0x1p-8 * (S + E) + E + 2e-5 * (1 + S + E);
        }
        memcpy(h, h2, (size_t)n_out * sizeof *h);
        memcpy(e, e2, (size_t)n_out * sizeof *e);
    }
    memcpy(bound, e, (size_t)ecp_mlp_n_out(m) * sizeof *bound);
    free(h);
    free(e);
    free(h2);
    free(e2);
}

/* Keeps the largest keep-fraction of the weights of each of the first n layers by magnitude (a
 * pruned model). */
static void magnitude_prune(ecp_mlp *m, double keep, int n)
{
    for (int l = 0; l < n; l++) {
        const size_t nw = (size_t)ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l);
        float *W = ecp_mlp_weights(m, l), *a = malloc(nw * sizeof *a);
        uint8_t *p = ecp_mlp_pruned(m, l);
        assert_non_null(a);
        float lo = 0, hi = 0;
        for (size_t i = 0; i < nw; i++) {
            a[i] = fabsf(W[i]);
            hi = a[i] > hi ? a[i] : hi;
        }
        /* the threshold: the (1 - keep) quantile, by bisection on the count */
        for (int it = 0; it < 100; it++) {
            const float mid = lo + (hi - lo) / 2;
            size_t k = 0;
            for (size_t i = 0; i < nw; i++)
                k += a[i] >= mid;
            if ((double)k > keep * (double)nw)
                lo = mid;
            else
                hi = mid;
        }
        for (size_t i = 0; i < nw; i++)
            if (a[i] < hi) {
                W[i] = 0.0f;
                p[i] = 1;
            }
        free(a);
    }
}

/* m with bf16 weights against the float engine on the N inputs x: within the bound, every
 * mode, batch 1 (the row and column kernels) and N; and against the float reference forward of
 * the rounded weights within the float tolerance (every kernel computes with the same rounded
 * values). Returns the largest error and the largest bound relative to 1 + |output|. */
static void check_bf16_model(ecp_mlp *m, const float *x, int N, double *max_err,
                             double *max_ratio)
{
    ecp_error err;
    const int n_in = ecp_mlp_n_in(m), n_out = ecp_mlp_n_out(m);
    ecp_mlp *mr;
    assert_int_equal(ecp_mlp_clone(m, &mr, &err), ECP_OK);
    for (int l = 0; l < ecp_mlp_n_layers(mr); l++) {
        float *W = ecp_mlp_weights(mr, l);
        for (size_t i = 0; i < (size_t)ecp_mlp_layer_in(mr, l) * ecp_mlp_layer_out(mr, l); i++)
            W[i] = ecp_bf16_round(W[i]);
    }
    float *y = malloc((size_t)N * n_out * sizeof *y), *yf = malloc((size_t)N * n_out * sizeof *yf);
    double *bound = malloc((size_t)N * n_out * sizeof *bound);
    assert_true(y && yf && bound);
    for (int j = 0; j < N; j++)
        bf16_bound(m, x + (size_t)j * n_in, bound + (size_t)j * n_out);
    ecp_ws *ws;
    assert_int_equal(ecp_ws_create(&ws, mr, N, &err), ECP_OK);
    ecp_mlp_forward(mr, ws, x, N);
    ecp_sparse_net *sf;
    ecp_sparse_opts o;
    ecp_sparse_opts_default(&o);
    o.threads = 1;
    assert_int_equal(ecp_sparse_create(&sf, m, &o, &err), ECP_OK);
    assert_int_equal(ecp_sparse_forward(sf, x, N, yf, &err), ECP_OK);
    static const ecp_engine_mode modes[] = {ECP_ENGINE_AUTO, ECP_ENGINE_SPARSE, ECP_ENGINE_DENSE};
    *max_err = *max_ratio = 0;
    for (size_t mi = 0; mi < 3; mi++)
        for (int B = 1; B <= N; B += N - 1) {
            o.mode = modes[mi];
            o.bf16 = 1;
            ecp_sparse_net *s;
            assert_int_equal(ecp_sparse_create(&s, m, &o, &err), ECP_OK);
            assert_int_equal(ecp_sparse_nnz(s), ecp_sparse_nnz(sf));
            for (int j = 0; j < N; j += B)
                assert_int_equal(ecp_sparse_forward(s, x + (size_t)j * n_in, B,
                                                    y + (size_t)j * n_out, &err), ECP_OK);
            for (size_t at = 0; at < (size_t)N * n_out; at++) {
                const double d = fabs((double)y[at] - (double)yf[at]);
                if (!(d <= bound[at])) {
                    print_error("output %zu: bf16 %.9g, float %.9g, bound %.3g\n", at, y[at],
                                yf[at], bound[at]);
                    fail();
                }
                *max_err = d > *max_err ? d : *max_err;
                const double ratio = bound[at] / (1 + fabs((double)yf[at]));
                *max_ratio = ratio > *max_ratio ? ratio : *max_ratio;
                assert_close(y[at], ecp_ws_output(ws)[at], 1e-5, 1e-5);
            }
            ecp_sparse_free(s);
        }
    ecp_sparse_free(sf);
    ecp_ws_free(ws);
    ecp_mlp_free(mr);
    free(y);
    free(yf);
    free(bound);
}

/* Layer l of m alone, with the identity: its bound is the documented per-layer one. */
static ecp_mlp *layer_alone(ecp_mlp *m, int l)
{
    ecp_error err;
    ecp_mlp *one;
    const int sizes[2] = {ecp_mlp_layer_in(m, l), ecp_mlp_layer_out(m, l)};
    const ecp_act id = ECP_ACT_IDENTITY;
    assert_int_equal(ecp_mlp_create(&one, 1, sizes, &id, &err), ECP_OK);
    const size_t nw = (size_t)sizes[0] * sizes[1];
    memcpy(ecp_mlp_weights(one, 0), ecp_mlp_weights(m, l), nw * sizeof(float));
    memcpy(ecp_mlp_pruned(one, 0), ecp_mlp_pruned(m, l), nw);
    memcpy(ecp_mlp_bias(one, 0), ecp_mlp_bias(m, l), (size_t)sizes[1] * sizeof(float));
    return one;
}

/* Random and pruned models: the whole network within its bound (a worst case through |W|:
 * after a few wide dense layers it is loose by orders of magnitude, so it must say something
 * only on the pruned ones), then every layer alone on the inputs it sees in the network,
 * within the per-layer bound, which must be tight enough to say something. */
static void test_engine_bf16(void **state)
{
    (void)state;
    enum { N = 24 };
    static const struct {
        const char *arch;
        ecp_act act;
        double keep;
    } cases[] = {
        {"64-33-17-3", ECP_ACT_TANH, 1.0}, /* random, dense */
        {"784-300-100-10", ECP_ACT_RELU, 1.0},
        {"784-300-100-10", ECP_ACT_RELU, 0.1}, /* pruned to 90 % */
        {"40-12-10-4", ECP_ACT_TANH, 0.3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ecp_error err;
        ecp_mlp *m;
        assert_int_equal(ecp_mlp_create_arch(&m, cases[c].arch, cases[c].act, &err), ECP_OK);
        ecp_mlp_init(m, 500 + c);
        if (cases[c].keep < 1)
            magnitude_prune(m, cases[c].keep, ecp_mlp_n_layers(m));
        const int n_in = ecp_mlp_n_in(m);
        float *x = malloc((size_t)N * n_in * sizeof *x);
        assert_non_null(x);
        ecp_rng r;
        ecp_rng_seed(&r, 600 + c);
        fill_input(&r, x, (size_t)N / 2 * n_in, 0.0);                       /* dense inputs */
        fill_input(&r, x + (size_t)N / 2 * n_in, (size_t)N / 2 * n_in, 0.7); /* mostly zero */
        double e, ratio;
        check_bf16_model(m, x, N, &e, &ratio);
        assert_true(e > 0); /* the weights did move */
        /* pruned, the worst case through |W| stays informative (784-300-100-10 at 90 %:
         * 0.013 of 1 + |output|; dense, 1.3) */
        if (cases[c].keep < 1)
            assert_true(ratio < 0.05);
        ecp_ws *ws;
        assert_int_equal(ecp_ws_create(&ws, m, N, &err), ECP_OK);
        ecp_mlp_forward(m, ws, x, N);
        for (int l = 0; l < ecp_mlp_n_layers(m); l++) {
            ecp_mlp *one = layer_alone(m, l);
            check_bf16_model(one, ecp_ws_act(ws, l), N, &e, &ratio);
            assert_true(e > 0);
            assert_true(ratio < 0.05);
            ecp_mlp_free(one);
        }
        ecp_ws_free(ws);
        free(x);
        ecp_mlp_free(m);
    }
}

/* A layer streamed from memory at batch 1 runs a row layout (window-permute, CSR without
 * AVX-512) with 16-bit values: b1_bytes drops by exactly 2 bytes per slot or non-zero of those
 * layouts; the option takes only 0 or 1; a model without any kept weight builds. */
static void test_engine_bf16_bytes(void **state)
{
    (void)state;
    ecp_error err;
    ecp_mlp *m;
    assert_int_equal(ecp_mlp_create_arch(&m, "1100-1000-10", ECP_ACT_RELU, &err), ECP_OK);
    ecp_mlp_init(m, 700);
    magnitude_prune(m, 0.1, 1);
    ecp_sparse_opts o;
    ecp_sparse_opts_default(&o);
    o.threads = 1;
    o.max_batch = 1;
    ecp_sparse_net *sf, *sh;
    assert_int_equal(ecp_sparse_create(&sf, m, &o, &err), ECP_OK);
    o.bf16 = 1;
    assert_int_equal(ecp_sparse_create(&sh, m, &o, &err), ECP_OK);
    /* layer 1 dense: every neuron keeps weights in and out, the engine's layers are the model's */
    assert_int_equal(ecp_sparse_layer_kernel(sh, 0, 1), row_kernel_b1());
    double saved = 0; /* 2 bytes per slot of a permute layout, per non-zero of a CSR */
    for (int l = 0; l < 2; l++) {
        const ecp_sparse_kernel k = ecp_sparse_layer_kernel(sh, l, 1);
        const float *W = ecp_mlp_weights(m, l);
        const uint8_t *p = ecp_mlp_pruned(m, l);
        const int n_out = ecp_mlp_layer_out(m, l), n_in = ecp_mlp_layer_in(m, l);
        assert_int_equal(k, ecp_sparse_layer_kernel(sf, l, 1));
        if (k == ECP_KERNEL_WPERM)
            saved += 2.0 * (double)ecp_wperm_slots(W, p, n_out, n_in);
        else if (k == ECP_KERNEL_CSR)
            saved += 2.0 * (double)ecp_spmat_count(W, p, n_out, n_in);
    }
    assert_true(ecp_sparse_b1_bytes(sf) - ecp_sparse_b1_bytes(sh) == saved);
    ecp_sparse_free(sf);
    ecp_sparse_free(sh);
    o.bf16 = 2;
    assert_int_equal(ecp_sparse_create(&sh, m, &o, &err), ECP_ERR_ARG);
    assert_null(sh);
    assert_non_null(strstr(err.msg, "bf16 2"));
    ecp_mlp_free(m);
    /* every weight pruned (layouts without a non-zero): the output of the biases alone */
    assert_int_equal(ecp_mlp_create_arch(&m, "9-7-3", ECP_ACT_TANH, &err), ECP_OK);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < ecp_mlp_layer_in(m, l) * ecp_mlp_layer_out(m, l); i++)
            prune_w(m, l, i / ecp_mlp_layer_in(m, l), i % ecp_mlp_layer_in(m, l));
    float x[3 * 9], y[3 * 3], yf[3 * 3];
    for (int i = 0; i < 27; i++)
        x[i] = (float)(i % 5) - 2.0f;
    static const ecp_engine_mode modes[] = {ECP_ENGINE_AUTO, ECP_ENGINE_SPARSE, ECP_ENGINE_DENSE};
    for (int mi = 0; mi < 3; mi++) {
        ecp_sparse_opts_default(&o);
        o.mode = modes[mi];
        assert_int_equal(ecp_sparse_create(&sf, m, &o, &err), ECP_OK);
        o.bf16 = 1;
        assert_int_equal(ecp_sparse_create(&sh, m, &o, &err), ECP_OK);
        for (int B = 1; B <= 3; B += 2) {
            assert_int_equal(ecp_sparse_forward(sf, x, B, yf, &err), ECP_OK);
            assert_int_equal(ecp_sparse_forward(sh, x, B, y, &err), ECP_OK);
            assert_memory_equal(y, yf, (size_t)B * 3 * sizeof *y);
        }
        ecp_sparse_free(sf);
        ecp_sparse_free(sh);
    }
    ecp_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_shapes),
        cmocka_unit_test(test_wperm_cols),
        cmocka_unit_test(test_kernels_threaded),
        cmocka_unit_test(test_kernels_int32_indices),
        cmocka_unit_test(test_gemm_packed),
        cmocka_unit_test(test_models_every_activation),
        cmocka_unit_test(test_models_sparsities),
        cmocka_unit_test(test_engine_kernel_choice),
        cmocka_unit_test(test_engine_split_columns),
        cmocka_unit_test(test_engine_simplify),
        cmocka_unit_test(test_tune_cache),
        cmocka_unit_test(test_bf16_round),
        cmocka_unit_test(test_engine_bf16),
        cmocka_unit_test(test_engine_bf16_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
