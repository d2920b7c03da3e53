/*
 * ge_preproc.c - raw counts -> Q0.15 model inputs.
 *
 *   v  = clamp(counts * norm_mult + norm_bias, -2^29, 2^29 - 1)   Q.24 of x_norm / K
 *   per second-order section (direct form II transposed, Q28 coefficients, int64 state):
 *       y  = clamp((b0*u + z0 + 2^27) >> 28, -2^29, 2^29 - 1)
 *       z0 = b1*u - a1*y + z1;  z1 = b2*u - a2*y
 *   (first sample after a reset: z = zi * v, the filter's steady state)
 *   x' = sat16((y + 2^8) >> 9)
 */
#include "ge_preproc.h"

#include "ge_math.h"

/* clamp to [-2^29, 2^29 - 1] (SSAT #30) */
static int32_t clamp_sig32(int32_t v)
{
#if defined(GE_DSP_ACLE)
    return __ssat(v, 30);
#else
    return v < -0x20000000L ? (int32_t)-0x20000000L : (v > 0x1FFFFFFFL ? (int32_t)0x1FFFFFFFL : v);
#endif
}

static int32_t clamp_sig64(int64_t v)
{
    return v < -0x20000000LL ? (int32_t)-0x20000000L : (v > 0x1FFFFFFFLL ? (int32_t)0x1FFFFFFFL : (int32_t)v);
}

void ge_preproc_step(const ge_preproc_params *p, const int16_t *counts, int64_t *filt, uint8_t *primed, int16_t *x)
{
    const uint32_t ns = p->n_sections;
    uint32_t ch, s;
    for (ch = 0; ch < p->n_inputs; ch++) {
        /* the exporter guarantees |norm_mult| * 32768 + |norm_bias| < 2^31 */
        int32_t v = clamp_sig32(counts[ch] * p->norm_mult[ch] + p->norm_bias[ch]);
        if (ns) {
            int64_t *z = filt + 2u * ns * ch;
            const int32_t *c = p->sos;
            if (!*primed)
                for (s = 0; s < 2u * ns; s++) z[s] = (int64_t)p->zi[s] * v;
            for (s = 0; s < ns; s++, z += 2, c += 5) {
                const int32_t y = clamp_sig64(ge_asr64((int64_t)c[0] * v + z[0] + (1L << 27), 28));
                z[0] = (int64_t)c[1] * v - (int64_t)c[3] * y + z[1];
                z[1] = (int64_t)c[2] * v - (int64_t)c[4] * y;
                v = y;
            }
        }
        x[ch] = (int16_t)ge_sat16(ge_asr32(v + (1 << 8), 9));
    }
    for (; ch < p->in_pad; ch++) x[ch] = 0;
    *primed = 1;
}
