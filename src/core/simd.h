/* The library's vector helpers (sparse kernels, the layer-0 sparse-input kernels, the sparse
 * statistics pass): GCC/Clang vector extensions of VW floats (16 with AVX-512, 8 with AVX, else
 * 4), unaligned loads and stores through memcpy, the FMA intrinsic where there is one, and loads
 * and stores of a partial vector. */
#ifndef ECP_SIMD_H
#define ECP_SIMD_H

#include <math.h>
#include <string.h>

/* Floats per SIMD vector. Buffers that kernels read whole vectors from are padded to it. */
#if defined(__AVX512F__)
#define ECP_VW 16
#elif defined(__AVX__)
#define ECP_VW 8
#else
#define ECP_VW 4
#endif

/* -std=c11 turns off gcc's contraction of a*b+c into one FMA (ISO mode implies
 * -ffp-contract=off), which left a vmulps + vaddps pair per step and cost 1.3-1.6x in SpMM.
 * With FMA hardware fmaf() is a single vectorisable instruction; without it a libm call would be
 * slower than the two operations, so the fallback keeps them. */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

#define VW ECP_VW
#if VW > 4
#include <immintrin.h>
#endif
typedef float vf __attribute__((vector_size(VW * sizeof(float))));

static inline vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf vsplat(float x)
{
#if VW == 16
    return (vf)_mm512_set1_ps(x);
#elif VW == 8
    return (vf)_mm256_set1_ps(x);
#else
    return (vf){x, x, x, x};
#endif
}

static inline vf vfma(vf a, vf b, vf c)
{
#if VW == 16
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif VW == 8 && defined(__FMA__)
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* The first n < VW floats at p into a vector (the rest 0), and back: neither touches memory
 * past p + n. */
static inline vf vload_part(const float *p, int n)
{
#if VW == 16
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#elif VW == 8 && defined(__AVX2__)
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return (vf)_mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota));
#else
    vf v = vsplat(0.0f);
    for (int i = 0; i < n; i++)
        v[i] = p[i];
    return v;
#endif
}

static inline void vstore_part(float *p, vf v, int n)
{
#if VW == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
#elif VW == 8 && defined(__AVX2__)
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota), (__m256)v);
#else
    for (int i = 0; i < n; i++)
        p[i] = v[i];
#endif
}

/* max(v, 0) with NaN -> 0, as ecp_act_forward's ReLU (maxps returns its second operand when
 * either is NaN). */
static inline vf vrelu(vf v)
{
#if VW == 16
    return (vf)_mm512_max_ps((__m512)v, _mm512_setzero_ps());
#elif VW == 8
    return (vf)_mm256_max_ps((__m256)v, _mm256_setzero_ps());
#else
    for (int i = 0; i < VW; i++)
        v[i] = v[i] > 0.0f ? v[i] : 0.0f;
    return v;
#endif
}

#endif
