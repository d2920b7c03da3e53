/*
 * ge_matvec.c - int8 x int16 -> int32 matrix-vector kernel over packed 4-row groups.
 *
 * Weight packing (QUANTIZATION.md, "Weight packing"), per group of rows r0..r3 over
 * ncols (even) columns, as 32-bit words whose byte 0 is the least significant:
 *   for each chunk of 4 columns k..k+3, for r = r0..r3:
 *       word = [w[r][k], w[r][k+2], w[r][k+1], w[r][k+3]]
 *     so that SXTB16(word) = (w[r][k], w[r][k+1]) and SXTB16(word ROR 8) =
 *     (w[r][k+2], w[r][k+3]) pair with the int16 pairs (x[k], x[k+1]), (x[k+2], x[k+3]);
 *   if ncols % 4 == 2, for the last two columns k, k+1 and row pairs (r0,r1), (r2,r3):
 *       word = [w[ra][k], w[rb][k], w[ra][k+1], w[rb][k+1]].
 *
 * Three implementations with identical results (the spec bounds every partial sum
 * below 2^31, so integer addition order does not matter):
 *   portable C; the DSP path in C with SXTB16/SMLAD (ACLE or emulated); and on
 *   Armv7E-M with GCC-compatible compilers a hand-scheduled assembly loop.
 */
#include "ge_matvec.h"

#include "ge_math.h"

#if defined(GE_DSP_ACLE) && defined(__GNUC__) && defined(__thumb2__) && !defined(GE_NO_ASM)
#define GE_MATVEC_ASM 1
#endif

#if !defined(GE_DSP_PATH)
/* ---------------------------------------------------------------- portable C */
static int32_t sb(uint32_t w, unsigned shift)
{
    return (int32_t)((w >> shift) & 0xFFu) - (int32_t)(((w >> shift) & 0x80u) << 1);
}

const uint32_t *ge_matvec4(const uint32_t *w, const int32_t *bias, const int16_t *x, uint32_t ncols,
                           uint32_t ngroups, int32_t *acc)
{
    uint32_t g, k, r;
    const uint32_t nq = ncols / 4u;
    for (g = 0; g < ngroups; g++) {
        int32_t a[4];
        const int16_t *xp = x;
        for (r = 0; r < 4; r++) a[r] = bias[r];
        for (k = 0; k < nq; k++, xp += 4) {
            for (r = 0; r < 4; r++) {
                const uint32_t v = *w++;
                a[r] += sb(v, 0) * xp[0] + sb(v, 16) * xp[1] + sb(v, 8) * xp[2] + sb(v, 24) * xp[3];
            }
        }
        if (ncols & 2u) {
            for (r = 0; r < 4; r += 2) {
                const uint32_t v = *w++;
                a[r] += sb(v, 0) * xp[0] + sb(v, 16) * xp[1];
                a[r + 1] += sb(v, 8) * xp[0] + sb(v, 24) * xp[1];
            }
        }
        for (r = 0; r < 4; r++) acc[r] = a[r];
        acc += 4;
        bias += 4;
    }
    return w;
}

#elif !defined(GE_MATVEC_ASM)
/* ------------------------------------------- DSP path in C (ACLE or emulated) */
const uint32_t *ge_matvec4(const uint32_t *w, const int32_t *bias, const int16_t *x, uint32_t ncols,
                           uint32_t ngroups, int32_t *acc)
{
    uint32_t g, k;
    const uint32_t nq = ncols / 4u;
    for (g = 0; g < ngroups; g++) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        const int16_t *xp = x;
        for (k = 0; k < nq; k++, xp += 4, w += 4) {
            const uint32_t x01 = ge_load_pair(xp), x23 = ge_load_pair(xp + 2);
            a0 = ge_smlad(ge_sxtb16(w[0]), x01, a0);
            a0 = ge_smlad(ge_sxtb16(ge_ror8(w[0])), x23, a0);
            a1 = ge_smlad(ge_sxtb16(w[1]), x01, a1);
            a1 = ge_smlad(ge_sxtb16(ge_ror8(w[1])), x23, a1);
            a2 = ge_smlad(ge_sxtb16(w[2]), x01, a2);
            a2 = ge_smlad(ge_sxtb16(ge_ror8(w[2])), x23, a2);
            a3 = ge_smlad(ge_sxtb16(w[3]), x01, a3);
            a3 = ge_smlad(ge_sxtb16(ge_ror8(w[3])), x23, a3);
        }
        if (ncols & 2u) {
            const uint32_t x01 = ge_load_pair(xp);
            a0 = ge_smlad(ge_sxtb16(w[0]), x01, a0);
            a1 = ge_smlad(ge_sxtb16(ge_ror8(w[0])), x01, a1);
            a2 = ge_smlad(ge_sxtb16(w[1]), x01, a2);
            a3 = ge_smlad(ge_sxtb16(ge_ror8(w[1])), x01, a3);
            w += 2;
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
        acc += 4;
        bias += 4;
    }
    return w;
}

#else
/* ------------------------------------------------ Armv7E-M assembly (Thumb-2) */
/*
 * 18 instructions per 16 MACs: one LDM of four weight words (4 rows x 4 columns),
 * one LDRD of four int16 inputs, 8 SXTB16 and 8 SMLAD.  Registers in the loop:
 * r0 weights, r1 x, r2/r3 x pairs, r4-r7 accumulators, r8-r11 weight words,
 * r12 scratch, lr loop counter.  Frame: [sp] bias, [sp+4] x, [sp+8] acc,
 * [sp+12] ncols, [sp+16] groups left.
 */
const uint32_t *ge_matvec4_asm(const uint32_t *w, const int32_t *bias, const int16_t *x, int32_t *acc,
                               uint32_t ncols_groups);

#define GE_CHUNK                                                                          \
    "ldmia r0!, {r8, r9, r10, r11}\n\t"                                                   \
    "ldrd r2, r3, [r1], #8\n\t"                                                           \
    "sxtb16 r12, r8\n\t"                                                                  \
    "smlad r4, r12, r2, r4\n\t"                                                           \
    "sxtb16 r8, r8, ror #8\n\t"                                                           \
    "smlad r4, r8, r3, r4\n\t"                                                            \
    "sxtb16 r12, r9\n\t"                                                                  \
    "smlad r5, r12, r2, r5\n\t"                                                           \
    "sxtb16 r9, r9, ror #8\n\t"                                                           \
    "smlad r5, r9, r3, r5\n\t"                                                            \
    "sxtb16 r12, r10\n\t"                                                                 \
    "smlad r6, r12, r2, r6\n\t"                                                           \
    "sxtb16 r10, r10, ror #8\n\t"                                                         \
    "smlad r6, r10, r3, r6\n\t"                                                           \
    "sxtb16 r12, r11\n\t"                                                                 \
    "smlad r7, r12, r2, r7\n\t"                                                           \
    "sxtb16 r11, r11, ror #8\n\t"                                                         \
    "smlad r7, r11, r3, r7\n\t"

__asm__(
    "\t.text\n"
    "\t.syntax unified\n"
    "\t.thumb\n"
    "\t.align 2\n"
    "\t.global ge_matvec4_asm\n"
    "\t.thumb_func\n"
    "\t.type ge_matvec4_asm, %function\n"
    "ge_matvec4_asm:\n\t"
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
    "ldr r12, [sp, #36]\n\t"
    "sub sp, sp, #20\n\t"
    "str r1, [sp, #0]\n\t"
    "str r2, [sp, #4]\n\t"
    "str r3, [sp, #8]\n\t"
    "uxth r4, r12\n\t"
    "str r4, [sp, #12]\n\t"
    "lsrs r12, r12, #16\n\t"
    "beq 9f\n\t"
    "str r12, [sp, #16]\n"
    "1:\n\t"
    "ldr r1, [sp, #0]\n\t"
    "ldmia r1!, {r4, r5, r6, r7}\n\t"
    "str r1, [sp, #0]\n\t"
    "ldr r1, [sp, #4]\n\t"
    "ldr lr, [sp, #12]\n\t"
    "lsrs lr, lr, #4\n\t"
    "beq 3f\n"
    "2:\n\t"
    GE_CHUNK GE_CHUNK GE_CHUNK GE_CHUNK
    "subs lr, lr, #1\n\t"
    "bne 2b\n"
    "3:\n\t"
    "ldr lr, [sp, #12]\n\t"
    "ubfx lr, lr, #2, #2\n\t"
    "cmp lr, #0\n\t"
    "beq 5f\n"
    "4:\n\t"
    GE_CHUNK
    "subs lr, lr, #1\n\t"
    "bne 4b\n"
    "5:\n\t"
    "ldr lr, [sp, #12]\n\t"
    "tst lr, #2\n\t"
    "beq 6f\n\t"
    "ldr r2, [r1], #4\n\t"
    "ldrd r8, r9, [r0], #8\n\t"
    "sxtb16 r12, r8\n\t"
    "smlad r4, r12, r2, r4\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "smlad r5, r8, r2, r5\n\t"
    "sxtb16 r12, r9\n\t"
    "smlad r6, r12, r2, r6\n\t"
    "sxtb16 r9, r9, ror #8\n\t"
    "smlad r7, r9, r2, r7\n"
    "6:\n\t"
    "ldr r1, [sp, #8]\n\t"
    "stmia r1!, {r4, r5, r6, r7}\n\t"
    "str r1, [sp, #8]\n\t"
    "ldr r1, [sp, #16]\n\t"
    "subs r1, r1, #1\n\t"
    "str r1, [sp, #16]\n\t"
    "bne 1b\n"
    "9:\n\t"
    "add sp, sp, #20\n\t"
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
    ".size ge_matvec4_asm, .-ge_matvec4_asm\n");

const uint32_t *ge_matvec4(const uint32_t *w, const int32_t *bias, const int16_t *x, uint32_t ncols,
                           uint32_t ngroups, int32_t *acc)
{
    if (ngroups == 0u) return w;
    return ge_matvec4_asm(w, bias, x, acc, (ncols & 0xFFFFu) | (ngroups << 16));
}
#endif
