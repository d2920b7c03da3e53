/*
 * ge_gru.c - GRU step (torch gate order r, z, n).
 *
 * Per block of GE_BLOCK units: packed groups (r_j, z_j, r_j+1, z_j+1) over
 * [h; input], then (nh_j..j+3) over h, then (nx_j..j+3) over the input.
 *   r, z = sigmoid(usat16(mulhr(acc, M)))
 *   nh   = sat16(mulhr(acc_nh, M))                  Q3.12, no offset
 *   n    = tanh(usat16(mulhr(acc_nx, M) + ((r*nh + 2^14) >> 15)))
 *   h'   = n + ((z * (h - n) + 2^14) >> 15)
 * Scratch of a block of nb units: acc[0 .. 2nb) r/z pairs, acc[2nb .. 3nb) nh,
 * acc[3nb .. 4nb) nx; multipliers per unit: r, z, nh, nx.  A layer of at most
 * GE_BLOCK units writes h' in place.
 */
#include "ge_gru.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

#if defined(GE_DSP_ACLE) && defined(__GNUC__) && defined(__thumb2__) && !defined(GE_NO_ASM)
#define GE_GRU_ASM 1
void ge_gru_gates_asm(const int32_t *acc, const int32_t *mult, const int16_t *h_old, int16_t *h_new, uint32_t nb);
#endif

#if !defined(GE_GRU_ASM)
static void gru_gates(const int32_t *acc, const int32_t *m, const int16_t *h_old, int16_t *h_new, uint32_t nb)
{
    const int32_t *anh = acc + 2u * nb, *anx = acc + 3u * nb;
    uint32_t u;
    for (u = 0; u < nb; u++, m += 4) {
        const int32_t r = ge_sigmoid_u(ge_u(ge_mulhr(acc[2u * u], m[0])));
        const int32_t z = ge_sigmoid_u(ge_u(ge_mulhr(acc[2u * u + 1u], m[1])));
        const int32_t nh = ge_sat16(ge_mulhr(anh[u], m[2]));
        const int32_t n = ge_tanh_u(ge_u(ge_mulhr(anx[u], m[3]) + ge_mul15(r, nh)));
        h_new[u] = (int16_t)(n + ge_mul15(z, h_old[u] - n));
    }
}
#else
/*
 * r0 r/z accumulators, r1 nh accumulators, r2 mult, r3 old h, r4 new h, r5 table,
 * r6 4 * nb (nx = nh + 4 nb bytes), lr end of new h; r7-r12 scratch.
 * 36 instructions per unit.
 */
#define GE_LUT_REG "r5"
#define GE_LUT(dst, off)                                                                  \
    "lsr r11, " dst ", #16\n\t"                                                           \
    "add r11, " GE_LUT_REG ", r11, lsl #4\n\t"                                            \
    "ldrd r11, r12, [r11, #" off "]\n\t"                                                  \
    "smlawb " dst ", " dst ", r12, r11\n\t"
__asm__(
    "\t.text\n"
    "\t.syntax unified\n"
    "\t.thumb\n"
    "\t.align 2\n"
    "\t.global ge_gru_gates_asm\n"
    "\t.thumb_func\n"
    "\t.type ge_gru_gates_asm, %function\n"
    "ge_gru_gates_asm:\n\t"
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
    "ldr r7, [sp, #36]\n\t"           /* nb */
    "mov r4, r3\n\t"
    "mov r3, r2\n\t"
    "mov r2, r1\n\t"
    "add r1, r0, r7, lsl #3\n\t"      /* nh = acc + 2 nb */
    "lsl r6, r7, #2\n\t"
    "add lr, r4, r7, lsl #1\n\t"
    "ldr r5, =ge_lut\n"
    "1:\n\t"
    "ldrd r7, r8, [r0], #8\n\t"
    "ldrd r9, r10, [r2], #8\n\t"
    "smmulr r7, r7, r9\n\t"
    "smmulr r8, r8, r10\n\t"
    "usat r7, #24, r7, lsl #8\n\t"
    "usat r8, #24, r8, lsl #8\n\t"
    GE_LUT("r7", "0")
    GE_LUT("r8", "0")
    "ldr r9, [r1, r6]\n\t"            /* nx */
    "ldr r10, [r1], #4\n\t"           /* nh */
    "ldrd r11, r12, [r2], #8\n\t"
    "smmulr r10, r10, r11\n\t"
    "ssat r10, #16, r10\n\t"
    "smmulr r9, r9, r12\n\t"
    "smulbb r10, r7, r10\n\t"         /* r * nh */
    "add r10, r10, #16384\n\t"
    "add r9, r9, r10, asr #15\n\t"
    "usat r9, #24, r9, lsl #8\n\t"
    GE_LUT("r9", "8")
    "ldrsh r10, [r3], #2\n\t"
    "sub r10, r10, r9\n\t"
    "mul r10, r8, r10\n\t"            /* z * (h - n) */
    "add r10, r10, #16384\n\t"
    "add r9, r9, r10, asr #15\n\t"
    "strh r9, [r4], #2\n\t"
    "cmp r4, lr\n\t"
    "bne 1b\n\t"
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
    ".ltorg\n\t"
    ".size ge_gru_gates_asm, .-ge_gru_gates_asm\n");
#endif

ge_status ge_gru_step(const ge_rnn_params *p, int16_t *v, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_GRU) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        w = ge_matvec4(w, v, ncols, nb / 2u, acc);
        w = ge_matvec4(w, v, hp, nb / 4u, acc + 2u * nb);
        w = ge_matvec4(w, v + hp, p->in_size, nb / 4u, acc + 3u * nb);
#if defined(GE_GRU_ASM)
        ge_gru_gates_asm(acc, m, v + j0, hout + j0, nb);
#else
        gru_gates(acc, m, v + j0, hout + j0, nb);
#endif
        m += 4u * nb;
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
