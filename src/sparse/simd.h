/* The vector helpers of the kernels (kernels.c, gemm.c): GCC/Clang vector extensions of VW
 * floats (16 with AVX-512, 8 with AVX, else 4), unaligned loads and stores through memcpy, and
 * the FMA intrinsic where there is one. */
#ifndef ECP_SIMD_H
#define ECP_SIMD_H

#include "sparse.h"
#include <math.h>
#include <string.h>

/* -std=c11 turns off gcc's contraction of a*b+c into one FMA (ISO mode implies
 * -ffp-contract=off), which left a vmulps + vaddps pair per step and cost 1.3-1.6x in SpMM.
 * With FMA hardware fmaf() is a single vectorisable instruction; without it a libm call would be
 * slower than the two operations, so the fallback keeps them. */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* Register-blocked SpMM works on GCC/Clang vector extensions: VW floats per vector (16 with
 * AVX-512, 8 with AVX, 4 otherwise), loaded and stored unaligned through memcpy. The
 * multiply-add is the FMA intrinsic where there is one (-std=c11 forbids contraction). */
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
