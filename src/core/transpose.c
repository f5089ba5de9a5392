/* dst = src^T, the one transpose of the library: the sparse engine turns every batch into its
 * feature-major layout and back with it, training moves layer 0's weights in and out of their
 * transposed layout with it.
 *
 * With AVX-512 the full 16 x 16 blocks go through registers (16 loads, 64 shuffles, 16 stores);
 * the element loop it replaced did one scalar load per float and was 8 % of a batch-256 forward
 * of 784-300-100-10 (docs/PERF.md); partial blocks at the edges go the same way, masked. Other
 * targets take the element loop. */
#include "../internal.h"
#include "simd.h"

#if VW == 16
/* One block of nr x nc <= 16 x 16 (the rest of the registers zero, loads and stores masked, so
 * nothing outside the block is touched): rows interleaved by 32-bit pairs, then 64-bit pairs,
 * then 128-bit lanes twice; out[j] holds column j of the 16 rows. */
static void block16(const float *src, size_t lds, float *dst, size_t ldd, int add, int nr, int nc)
{
    const __mmask16 mc = (__mmask16)((1u << nc) - 1), mr = (__mmask16)((1u << nr) - 1);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < nr ? _mm512_maskz_loadu_ps(mc, src + (size_t)i * lds) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* r[g + c]: lane L holds column 4L + c of rows g..g+3 */
        const __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]);
        const __m512d c = _mm512_castps_pd(t[g + 2]), d = _mm512_castps_pd(t[g + 3]);
        r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; c++) {
        const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
        const __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
        const __m512 v0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
        const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
        const __m512 col[4] = {
            _mm512_shuffle_f32x4(u0, v0, 0x88), _mm512_shuffle_f32x4(u0, v0, 0xDD),
            _mm512_shuffle_f32x4(u1, v1, 0x88), _mm512_shuffle_f32x4(u1, v1, 0xDD)};
        for (int L = 0; L < 4; L++) {
            if (4 * L + c >= nc)
                continue;
            float *d = dst + (size_t)(4 * L + c) * ldd;
            _mm512_mask_storeu_ps(d, mr, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(mr, d), col[L])
                                             : col[L]);
        }
    }
}
#endif

#if VW != 16
/* Rows [i0, i1) x columns [j0, j1) one element at a time. */
static void block_scalar(const float *src, size_t lds, float *dst, size_t ldd, int add, int i0,
                         int i1, int j0, int j1)
{
    for (int j = j0; j < j1; j++) {
        float *d = dst + (size_t)j * ldd;
        for (int i = i0; i < i1; i++)
            d[i] = add ? d[i] + src[(size_t)i * lds + j] : src[(size_t)i * lds + j];
    }
}
#endif

void ecp_transpose(const float *src, int rows, int cols, size_t lds, float *dst, size_t ldd,
                   int add)
{
    /* 32 x 32 tiles keep both sides in L1. 256 x 784 (a batch entering the engine), in L2 or
     * beyond: 17 us, against 49 us for bands of 16 rows walked left to right (their 16 write
     * streams 1 KB apart share L1 sets) and ~55 us for the element loop. */
    enum { BT = 32 };
    for (int i0 = 0; i0 < rows; i0 += BT) {
        const int i1 = i0 + BT < rows ? i0 + BT : rows;
        for (int j0 = 0; j0 < cols; j0 += BT) {
            const int j1 = j0 + BT < cols ? j0 + BT : cols;
#if VW == 16
            /* partial blocks too: a batch of 6 entering the engine is all edge */
            for (int i = i0; i < i1; i += 16)
                for (int j = j0; j < j1; j += 16)
                    block16(src + (size_t)i * lds + j, lds, dst + (size_t)j * ldd + i, ldd, add,
                            i1 - i < 16 ? i1 - i : 16, j1 - j < 16 ? j1 - j : 16);
#else
            block_scalar(src, lds, dst, ldd, add, i0, i1, j0, j1);
#endif
        }
    }
}
