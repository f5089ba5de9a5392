/* bfloat16: the upper 16 bits of an IEEE float32 (sign, the same 8-bit exponent, 7 stored
 * significand bits). The sparse engine's optional 16-bit weights use it: a batch-1 pass on a
 * large layer is bound by the bytes of weights it streams, and widening bf16 to float is a
 * zero-extend and a shift, far cheaper than the memory it saves.
 *
 * Rounding is to nearest, ties to even, as IEEE 754 and the hardware conversions
 * (vcvtneps2bf16) do: a finite float's relative error is at most 2^-8 (half a unit in the last
 * of 8 significant bits) while it is normal in bf16 (|w| >= 2^-126), its absolute error at
 * most 2^-134 below that; magnitudes from 0x1.ffp127 up round to inf, inf stays inf, a NaN stays a
 * NaN (made quiet, sign and top payload bits kept: truncating its low bits could make an inf). */
#ifndef ECP_BF16_H
#define ECP_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t ecp_bf16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN */
        return (uint16_t)(u >> 16 | 0x0040u);
    /* adding 0x7fff plus the lowest kept bit carries into the kept half exactly when the
     * dropped half is above one half, or equal to it with an odd kept half */
    u += 0x7fffu + (u >> 16 & 1u);
    return (uint16_t)(u >> 16);
}

static inline float ecp_bf16_to_float(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f rounded to the nearest bf16 value, as a float. */
static inline float ecp_bf16_round(float f) { return ecp_bf16_to_float(ecp_bf16_from_float(f)); }

#endif
