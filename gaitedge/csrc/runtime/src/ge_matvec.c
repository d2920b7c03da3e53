/*
 * ge_matvec.c - int8 x int16 -> int32 matrix-vector kernel over packed 4-row groups.
 *
 * Weight packing (QUANTIZATION.md, "Weight packing"), per group of rows r0..r3 over
 * ncols (even) columns, as 32-bit words whose byte 0 is the least significant:
 *   the four int32 biases of r0..r3 (two's complement words), then
 *   for each chunk of 4 columns k..k+3, for r = r0..r3:
 *       word = [w[r][k], w[r][k+2], w[r][k+1], w[r][k+3]]
 *     so that SXTB16(word) = (w[r][k], w[r][k+1]) and SXTB16(word ROR 8) =
 *     (w[r][k+2], w[r][k+3]) pair with the int16 pairs (x[k], x[k+1]), (x[k+2], x[k+3]);
 *   if ncols % 4 == 2, for the last two columns k, k+1 and row pairs (r0,r1), (r2,r3):
 *       word = [w[ra][k], w[rb][k], w[ra][k+1], w[rb][k+1]].
 *
 * Three implementations with identical results (the spec bounds every partial sum
 * below 2^31, so integer addition order does not matter; beyond the spec, weights of a
 * blob that break the bound, every path wraps modulo 2^32 as SMLAD does):
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
/* Signed byte s (bit offset) of w: compiles to SBFX / SXTB / ASR where available. */
#define GE_SB(w, s) ge_asr32(ge_word_to_i32((w) << (24u - (s))), 24u)

/* The sum of one chunk (at most 4 * 2^7 * 2^15 = 2^24 in magnitude) as a word to add modulo 2^32. */
#define GE_DOT4(v, x0, x1, x2, x3) \
    ((uint32_t)(GE_SB(v, 0u) * (x0) + GE_SB(v, 16u) * (x1) + GE_SB(v, 8u) * (x2) + GE_SB(v, 24u) * (x3)))
#define GE_DOT2(v, s0, s1, x0, x1) ((uint32_t)(GE_SB(v, s0) * (x0) + GE_SB(v, s1) * (x1)))

const uint32_t *ge_matvec4(const uint32_t *w, const int16_t *x, uint32_t ncols, uint32_t ngroups, int32_t *acc)
{
    uint32_t g, k;
    const uint32_t nq = ncols / 4u;
    for (g = 0; g < ngroups; g++) {
        uint32_t a0 = w[0], a1 = w[1], a2 = w[2], a3 = w[3]; /* biases; sums wrap like SMLAD */
        const int16_t *xp = x;
        w += 4;
        for (k = 0; k < nq; k++, xp += 4, w += 4) {
            const int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
            a0 += GE_DOT4(w[0], x0, x1, x2, x3);
            a1 += GE_DOT4(w[1], x0, x1, x2, x3);
            a2 += GE_DOT4(w[2], x0, x1, x2, x3);
            a3 += GE_DOT4(w[3], x0, x1, x2, x3);
        }
        if (ncols & 2u) {
            const int32_t x0 = xp[0], x1 = xp[1];
            a0 += GE_DOT2(w[0], 0u, 16u, x0, x1);
            a1 += GE_DOT2(w[0], 8u, 24u, x0, x1);
            a2 += GE_DOT2(w[1], 0u, 16u, x0, x1);
            a3 += GE_DOT2(w[1], 8u, 24u, x0, x1);
            w += 2;
        }
        acc[0] = ge_word_to_i32(a0);
        acc[1] = ge_word_to_i32(a1);
        acc[2] = ge_word_to_i32(a2);
        acc[3] = ge_word_to_i32(a3);
        acc += 4;
    }
    return w;
}

#elif !defined(GE_MATVEC_ASM)
/* ------------------------------------------- DSP path in C (ACLE or emulated) */
const uint32_t *ge_matvec4(const uint32_t *w, const int16_t *x, uint32_t ncols, uint32_t ngroups, int32_t *acc)
{
    uint32_t g, k;
    const uint32_t nq = ncols / 4u;
    for (g = 0; g < ngroups; g++) {
        int32_t a0 = ge_word_to_i32(w[0]), a1 = ge_word_to_i32(w[1]), a2 = ge_word_to_i32(w[2]),
                a3 = ge_word_to_i32(w[3]);
        const int16_t *xp = x;
        w += 4;
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
    }
    return w;
}

#else
/* ------------------------------------------------ Armv7E-M assembly (Thumb-2) */
/*
 * 18 instructions per 16 MACs: one LDM of four weight words (4 rows x 4 columns),
 * one LDRD of four int16 inputs, 8 SXTB16 and 8 SMLAD; a group starts with one
 * LDM of its four biases.
 *
 * ge_matvec4_unrolled (rows of up to 128 columns): the 4-column chunks are fully
 * unrolled (32 copies, 72 bytes each); a group jumps to copy number ncols/4 from
 * the end, and every copy reads x at a fixed negative offset from the end of the
 * row's 4-column part, so no loop counter is needed.  Registers: r0 weights, r1
 * end of that part of x, r2/r3 x pairs, r4-r7 accumulators, r8-r11 weight words,
 * r12 scratch, lr output pointer.  Frame: [sp] entry address, [sp+4] address
 * after the chunks (tail or store), [sp+8] end of the output.
 *
 * ge_matvec4_loop (longer rows): the same chunk in a loop, four per iteration.
 * Frame: [sp] x, [sp+4] output, [sp+8] ncols, [sp+12] groups left.
 */
const uint32_t *ge_matvec4_unrolled(const uint32_t *w, const int16_t *x, int32_t *acc, uint32_t ncols_groups);
const uint32_t *ge_matvec4_loop(const uint32_t *w, const int16_t *x, int32_t *acc, uint32_t ncols_groups);

#define GE_CHUNK_BODY                                                                     \
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

#define GE_CHUNK                                                                          \
    "ldmia.w r0!, {r8, r9, r10, r11}\n\t"                                                 \
    "ldrd r2, r3, [r1], #8\n\t" GE_CHUNK_BODY

#define GE_TAIL                                                                           \
    "ldr.w r2, [r1]\n\t"                                                                  \
    "ldrd r8, r9, [r0], #8\n\t"                                                           \
    "sxtb16 r12, r8\n\t"                                                                  \
    "smlad r4, r12, r2, r4\n\t"                                                           \
    "sxtb16 r8, r8, ror #8\n\t"                                                           \
    "smlad r5, r8, r2, r5\n\t"                                                            \
    "sxtb16 r12, r9\n\t"                                                                  \
    "smlad r6, r12, r2, r6\n\t"                                                           \
    "sxtb16 r9, r9, ror #8\n\t"                                                           \
    "smlad r7, r9, r2, r7\n\t"

__asm__(
    "\t.text\n"
    "\t.syntax unified\n"
    "\t.thumb\n"
    "\t.macro GE_UCHUNK off\n\t"
    "ldmia.w r0!, {r8, r9, r10, r11}\n\t"
    "ldrd r2, r3, [r1, #-\\off]\n\t" GE_CHUNK_BODY
    "\n\t.endm\n"
    /* ------------------------------------------------------------ unrolled */
    "\t.align 2\n"
    "\t.global ge_matvec4_unrolled\n"
    "\t.thumb_func\n"
    "\t.type ge_matvec4_unrolled, %function\n"
    "ge_matvec4_unrolled:\n\t"
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
    "sub sp, sp, #12\n\t"
    "mov lr, r2\n\t"                  /* output pointer */
    "lsrs r4, r3, #16\n\t"            /* groups */
    "add r4, r2, r4, lsl #4\n\t"
    "str r4, [sp, #8]\n\t"            /* end of output */
    "ubfx r4, r3, #2, #14\n\t"        /* nq = ncols / 4 */
    "add r1, r1, r4, lsl #3\n\t"      /* x + 4 * nq int16 */
    "adr.w r5, 8f\n\t"
    "lsls r6, r4, #6\n\t"
    "add r6, r6, r4, lsl #3\n\t"      /* nq * 72 bytes */
    "subs r5, r5, r6\n\t"
    "orr r5, r5, #1\n\t"
    "str r5, [sp, #0]\n\t"
    "tst r3, #2\n\t"
    "ite ne\n\t"
    "adrne.w r5, 6f\n\t"
    "adreq.w r5, 7f\n\t"
    "orr r5, r5, #1\n\t"
    "str r5, [sp, #4]\n"
    "5:\n\t"
    "ldmia r0!, {r4, r5, r6, r7}\n\t" /* biases */
    "ldr pc, [sp, #0]\n"
    "4:\n\t"
    ".irp off, 256, 248, 240, 232, 224, 216, 208, 200, 192, 184, 176, 168, 160, 152, 144, 136, "
    "128, 120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16, 8\n\t"
    "GE_UCHUNK \\off\n\t"
    ".endr\n"
    "8:\n\t"
    ".if (8b - 4b) != (32 * 72)\n\t"
    ".error \"ge_matvec4_unrolled: chunk copies are not 72 bytes\"\n\t"
    ".endif\n\t"
    "ldr pc, [sp, #4]\n"
    "6:\n\t"
    GE_TAIL
    "\n7:\n\t"
    "stmia lr!, {r4, r5, r6, r7}\n\t"
    "ldr r12, [sp, #8]\n\t"
    "cmp lr, r12\n\t"
    "bne 5b\n\t"
    "add sp, sp, #12\n\t"
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
    ".size ge_matvec4_unrolled, .-ge_matvec4_unrolled\n"
    /* ---------------------------------------------------------------- loop */
    "\t.align 2\n"
    "\t.global ge_matvec4_loop\n"
    "\t.thumb_func\n"
    "\t.type ge_matvec4_loop, %function\n"
    "ge_matvec4_loop:\n\t"
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
    "sub sp, sp, #16\n\t"
    "str r1, [sp, #0]\n\t"
    "str r2, [sp, #4]\n\t"
    "uxth r4, r3\n\t"
    "str r4, [sp, #8]\n\t"
    "lsrs r3, r3, #16\n\t"
    "str r3, [sp, #12]\n"
    "11:\n\t"
    "ldmia r0!, {r4, r5, r6, r7}\n\t"
    "ldr r1, [sp, #0]\n\t"
    "ldr lr, [sp, #8]\n\t"
    "lsrs lr, lr, #4\n\t"
    "beq 13f\n"
    "12:\n\t"
    GE_CHUNK GE_CHUNK GE_CHUNK GE_CHUNK
    "subs lr, lr, #1\n\t"
    "bne 12b\n"
    "13:\n\t"
    "ldr lr, [sp, #8]\n\t"
    "ubfx lr, lr, #2, #2\n\t"
    "cmp lr, #0\n\t"
    "beq 15f\n"
    "14:\n\t"
    GE_CHUNK
    "subs lr, lr, #1\n\t"
    "bne 14b\n"
    "15:\n\t"
    "ldr lr, [sp, #8]\n\t"
    "tst lr, #2\n\t"
    "beq 16f\n\t"
    GE_TAIL
    "\n16:\n\t"
    "ldr r1, [sp, #4]\n\t"
    "stmia r1!, {r4, r5, r6, r7}\n\t"
    "str r1, [sp, #4]\n\t"
    "ldr r1, [sp, #12]\n\t"
    "subs r1, r1, #1\n\t"
    "str r1, [sp, #12]\n\t"
    "bne 11b\n\t"
    "add sp, sp, #16\n\t"
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
    ".size ge_matvec4_loop, .-ge_matvec4_loop\n");

const uint32_t *ge_matvec4(const uint32_t *w, const int16_t *x, uint32_t ncols, uint32_t ngroups, int32_t *acc)
{
    const uint32_t packed = (ncols & 0xFFFFu) | (ngroups << 16);
    if (ngroups == 0u) return w;
    if (ncols <= 4u * 32u) return ge_matvec4_unrolled(w, x, acc, packed);
    return ge_matvec4_loop(w, x, acc, packed);
}
#endif
