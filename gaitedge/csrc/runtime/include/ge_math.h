/*
 * ge_math.h - primitive fixed-point operations of the spec (QUANTIZATION.md).
 *
 * Three builds give identical results:
 *   default            portable C99
 *   -DGE_USE_DSP       Cortex-M4/M7 DSP instructions (SMLAD, SXTB16, SMMULR, SSAT/USAT);
 *                      needs __ARM_FEATURE_DSP
 *   -DGE_USE_DSP_EMULATE  the DSP code path with the instructions emulated in C
 *                      (host testing of the DSP path's data layout)
 * (or GE_USE_DSP from gaitedge_config.h, as an exported library's config sets it).
 */
#ifndef GE_MATH_H
#define GE_MATH_H

#include <stdint.h>
#include <string.h>

#include "gaitedge_config.h"

#if (defined(GE_USE_DSP) || defined(GE_USE_DSP_EMULATE)) && defined(__BYTE_ORDER__) && \
    defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "the DSP path reads int16 pairs as words and assumes a little-endian target; use the portable build"
#endif

#if defined(GE_USE_DSP_EMULATE)
#define GE_DSP_PATH 1
#define GE_DSP_EMU 1
#elif defined(GE_USE_DSP)
#if !defined(__ARM_FEATURE_DSP)
#error "GE_USE_DSP needs a core with the DSP extension (Cortex-M4/M7/M33); use the portable build"
#endif
#define GE_DSP_PATH 1
#define GE_DSP_ACLE 1
#include <arm_acle.h>
#endif

#if defined(__GNUC__)
#define GE_INLINE static __inline__ __attribute__((always_inline))
#else
#define GE_INLINE static inline
#endif

/* Sigmoid / tanh table (ge_lut.c): entry i = u >> 8 holds {sigmoid base, sigmoid slope,
 * tanh base, tanh slope}; y = base + ((u * slope) >> 8). */
extern const int32_t ge_lut[1024];

/** floor(v / 2^s) without relying on implementation-defined signed shifts. */
GE_INLINE int32_t ge_asr32(int32_t v, unsigned s) { return v < 0 ? ~((~v) >> s) : v >> s; }
GE_INLINE int64_t ge_asr64(int64_t v, unsigned s) { return v < 0 ? ~((~v) >> s) : v >> s; }

/** A two's complement 32-bit word as int32 (no implementation-defined conversion). */
GE_INLINE int32_t ge_word_to_i32(uint32_t w)
{
    return w < 0x80000000u ? (int32_t)w : -(int32_t)(~w) - 1;
}

/** v * 2^s for small s, modulo 2^32 as LSL does (no UB on negative v, nor beyond int32: the
 *  spec keeps exported values in range; a weights blob that breaks it gets defined results). */
GE_INLINE int32_t ge_shl32(int32_t v, unsigned s) { return ge_word_to_i32((uint32_t)v << s); }

/** a + b modulo 2^32 as ADD does (the spec keeps exported sums in range). */
GE_INLINE int32_t ge_add32(int32_t a, int32_t b) { return ge_word_to_i32((uint32_t)a + (uint32_t)b); }

/** Clamp to int16. */
GE_INLINE int32_t ge_sat16(int32_t v)
{
#if defined(GE_DSP_ACLE)
    return __ssat(v, 16);
#else
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
#endif
}

/** Clamp to [0, 65535]. */
GE_INLINE int32_t ge_usat16(int32_t v)
{
#if defined(GE_DSP_ACLE)
    return (int32_t)__usat(v, 16);
#else
    return v < 0 ? 0 : (v > 65535 ? 65535 : v);
#endif
}

/** floor((a * m + 2^31) / 2^32): ARM SMMULR, round half up. */
GE_INLINE int32_t ge_mulhr(int32_t a, int32_t m)
{
#if defined(GE_DSP_ACLE)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(m));
    return r;
#else
    return (int32_t)ge_asr64((int64_t)a * m + 0x80000000LL, 32);
#endif
}

/** Interpolated sigmoid of the pre-activation (u - 32768) / 4096; Q0.15. u in [0, 65535]. */
GE_INLINE int32_t ge_sigmoid(int32_t u)
{
    const int32_t *e = ge_lut + 4u * ((uint32_t)u >> 8);
    return e[0] + (int32_t)(((uint32_t)u * (uint32_t)e[1]) >> 8);
}

/** Interpolated tanh of the pre-activation (u - 32768) / 4096; Q0.15. u in [0, 65535]. */
GE_INLINE int32_t ge_tanh(int32_t u)
{
    const int32_t *e = ge_lut + 4u * ((uint32_t)u >> 8);
    return e[2] + (int32_t)(((uint32_t)u * (uint32_t)e[3]) >> 8);
}

/*
 * Gate inputs of the sigmoid / tanh tables.  The spec's LUT input is
 * u = usat16(v) (v = mulhr(acc, M), or any other pre-activation in Q3.12 + 32768),
 * and y = base[i] + ((u * slope[i]) >> 8), i = u >> 8.  The portable build keeps u;
 * the DSP build keeps U = u << 8 (USAT #24 with LSL #8, exact because the exporter
 * guarantees |v| < 2^22) and evaluates the table with one SMLAWB:
 * base[i] + ((U * slope[i]) >> 16), i = U >> 16, which is the same number.
 */
#if defined(GE_DSP_PATH)
#define GE_U_SHIFT 8
#if defined(GE_DSP_EMU)
GE_INLINE int32_t ge_usat24_lsl8(int32_t v)
{
    const int32_t t = (int32_t)((uint32_t)v << 8);
    return t < 0 ? 0 : (t > 0xFFFFFF ? 0xFFFFFF : t);
}
GE_INLINE int32_t ge_smlawb(int32_t a, int32_t b, int32_t acc)
{
    return acc + (int32_t)ge_asr64((int64_t)a * (int16_t)(uint16_t)((uint32_t)b & 0xFFFFu), 16);
}
#else
GE_INLINE int32_t ge_usat24_lsl8(int32_t v)
{
    int32_t r;
    __asm__("usat %0, #24, %1, lsl #8" : "=r"(r) : "r"(v));
    return r;
}
GE_INLINE int32_t ge_smlawb(int32_t a, int32_t b, int32_t acc) { return __smlawb(a, b, acc); }
#endif
/** Table input from a requantized pre-activation v (Q3.12 + 32768). */
GE_INLINE int32_t ge_u(int32_t v) { return ge_usat24_lsl8(v); }
GE_INLINE int32_t ge_sigmoid_u(int32_t U)
{
    const int32_t *e = ge_lut + 4u * ((uint32_t)U >> 16);
    return ge_smlawb(U, e[1], e[0]);
}
GE_INLINE int32_t ge_tanh_u(int32_t U)
{
    const int32_t *e = ge_lut + 4u * ((uint32_t)U >> 16);
    return ge_smlawb(U, e[3], e[2]);
}
#else
#define GE_U_SHIFT 0
GE_INLINE int32_t ge_u(int32_t v) { return ge_usat16(v); }
GE_INLINE int32_t ge_sigmoid_u(int32_t u) { return ge_sigmoid(u); }
GE_INLINE int32_t ge_tanh_u(int32_t u) { return ge_tanh(u); }
#endif

/** Table input for an int16 value c in Q(15-f).f (f <= 12): usat16(c * 2^(12-f) + 32768). */
GE_INLINE int32_t ge_u_q(int32_t c, unsigned f)
{
#if defined(GE_DSP_PATH)
    return ge_usat24_lsl8(ge_shl32(c, 12u - f) + 32768);
#else
    return ge_usat16(ge_shl32(c, 12u - f) + 32768);
#endif
}

/** Round-half-up product of two Q0.15 values (or Q0.15 x Qm.n), (a * b + 2^14) >> 15. */
GE_INLINE int32_t ge_mul15(int32_t a, int32_t b) { return ge_asr32(a * b + (1 << 14), 15); }

#if defined(GE_DSP_PATH)
/* ---- the DSP instructions used by the matrix kernel ---------------------------- */
#if defined(GE_DSP_EMU)
/** SXTB16: sign-extend bytes 0 and 2 into the two halfwords. */
GE_INLINE uint32_t ge_sxtb16(uint32_t w)
{
    uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)(w & 0xFFu) & 0xFFFFu;
    uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)((w >> 16) & 0xFFu) & 0xFFFFu;
    return lo | (hi << 16);
}
/** SMLAD: acc + lo(a) * lo(b) + hi(a) * hi(b), signed halfwords, wrapping. */
GE_INLINE int32_t ge_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t p0 = (int32_t)(int16_t)(uint16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(uint16_t)(b & 0xFFFFu);
    int32_t p1 = (int32_t)(int16_t)(uint16_t)(a >> 16) * (int32_t)(int16_t)(uint16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
#else
GE_INLINE uint32_t ge_sxtb16(uint32_t w) { return __sxtb16(w); }
GE_INLINE int32_t ge_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad(a, b, acc); }
#endif
GE_INLINE uint32_t ge_ror8(uint32_t w) { return (w >> 8) | (w << 24); }
/** Two int16 from memory as one word (low halfword = first element). */
GE_INLINE uint32_t ge_load_pair(const int16_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
#endif /* GE_DSP_PATH */

/* Non-inline entry points for tests (ge_math.c). */
int32_t ge_math_sigmoid(int32_t u);
int32_t ge_math_tanh(int32_t u);
int32_t ge_math_mulhr(int32_t a, int32_t m);

#endif /* GE_MATH_H */
