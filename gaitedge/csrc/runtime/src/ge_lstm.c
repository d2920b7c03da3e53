/*
 * ge_lstm.c - LSTM step (torch gate order i, f, g, o).
 *
 * Per unit j (packed group: rows i_j, f_j, g_j, o_j over [h; input]):
 *   u_* = usat16(mulhr(acc_*, M_*))          gate pre-activations, Q3.12 + 32768
 *   i, f, o = sigmoid(u), g = tanh(u)         Q0.15
 *   c' = sat16((f*c + ((i*g) >> (15-cf)) + 2^14) >> 15)
 *   h' = (o * tanh(usat16(c' * 2^(12-cf) + 32768)) + 2^14) >> 15   (|h'| < 2^15)
 * Units are processed in blocks of GE_BLOCK: one matrix pass, then the gates.  A
 * layer of at most GE_BLOCK units writes h' in place.
 */
#include "ge_lstm.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

#if defined(GE_DSP_ACLE) && defined(__GNUC__) && defined(__thumb2__) && !defined(GE_NO_ASM)
#define GE_LSTM_ASM 1
/* Gates of nb units from acc [4 nb] and mult [4 nb] into c [nb] and h [nb]. */
void ge_lstm_gates_asm(const int32_t *acc, const int32_t *mult, int16_t *c, int16_t *h, uint32_t nb_cf);
#endif

#if !defined(GE_LSTM_ASM)
static void lstm_gates(const int32_t *a, const int32_t *m, int16_t *c, int16_t *h, uint32_t nb, unsigned cf)
{
    const unsigned cs = 15u - cf;
    uint32_t u;
    for (u = 0; u < nb; u++, a += 4, m += 4) {
        const int32_t ig = ge_sigmoid_u(ge_u(ge_mulhr(a[0], m[0])));
        const int32_t fg = ge_sigmoid_u(ge_u(ge_mulhr(a[1], m[1])));
        const int32_t gg = ge_tanh_u(ge_u(ge_mulhr(a[2], m[2])));
        const int32_t og = ge_sigmoid_u(ge_u(ge_mulhr(a[3], m[3])));
        const int32_t cn = ge_sat16(ge_asr32(fg * c[u] + ge_asr32(ig * gg, cs) + (1 << 14), 15));
        c[u] = (int16_t)cn;
        h[u] = (int16_t)ge_asr32(og * ge_tanh_u(ge_u_q(cn, cf)) + (1 << 14), 15);
    }
}
#else
/*
 * r0 acc, r1 mult, r2 c, r3 h, r4 table, r5 20 - cf, r6 15 - cf, lr end of h;
 * r7-r12 scratch.  47 instructions per unit.
 * Lookup of U = u << 8: e = ge_lut + 16 * (U >> 16); y = e[0|2] + ((U * e[1|3]) >> 16).
 */
#define GE_LUT_REG "r4"
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
    "\t.global ge_lstm_gates_asm\n"
    "\t.thumb_func\n"
    "\t.type ge_lstm_gates_asm, %function\n"
    "ge_lstm_gates_asm:\n\t"
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
    "ldr r6, [sp, #36]\n\t"           /* nb | cf << 16 */
    "uxth r7, r6\n\t"
    "add lr, r3, r7, lsl #1\n\t"
    "lsrs r6, r6, #16\n\t"
    "rsb r5, r6, #20\n\t"
    "rsb r6, r6, #15\n\t"
    "ldr r4, =ge_lut\n"
    "1:\n\t"
    "ldmia r0!, {r7, r8, r9, r10}\n\t"
    "ldrd r11, r12, [r1], #8\n\t"
    "smmulr r7, r7, r11\n\t"
    "smmulr r8, r8, r12\n\t"
    "ldrd r11, r12, [r1], #8\n\t"
    "smmulr r9, r9, r11\n\t"
    "smmulr r10, r10, r12\n\t"
    "usat r7, #24, r7, lsl #8\n\t"
    "usat r8, #24, r8, lsl #8\n\t"
    "usat r9, #24, r9, lsl #8\n\t"
    "usat r10, #24, r10, lsl #8\n\t"
    GE_LUT("r7", "0")
    GE_LUT("r8", "0")
    GE_LUT("r9", "8")
    GE_LUT("r10", "0")
    "smulbb r11, r7, r9\n\t"          /* i * g */
    "asr r11, r11, r6\n\t"
    "ldrsh r12, [r2]\n\t"
    "smlabb r11, r8, r12, r11\n\t"    /* f * c + (i * g >> cs) */
    "add r11, r11, #16384\n\t"
    "ssat r11, #16, r11, asr #15\n\t" /* c' */
    "strh r11, [r2], #2\n\t"
    "lsl r11, r11, r5\n\t"            /* c' << (20 - cf) */
    "add r11, r11, #8388608\n\t"
    "usat r7, #24, r11\n\t"
    GE_LUT("r7", "8")
    "smulbb r7, r10, r7\n\t"          /* o * tanh(c') */
    "add r7, r7, #16384\n\t"
    "asr r7, r7, #15\n\t"
    "strh r7, [r3], #2\n\t"
    "cmp r3, lr\n\t"
    "bne 1b\n\t"
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
    ".ltorg\n\t"
    ".size ge_lstm_gates_asm, .-ge_lstm_gates_asm\n");
#endif

ge_status ge_lstm_step(const ge_rnn_params *p, int16_t *v, int16_t *c, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_LSTM) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        w = ge_matvec4(w, v, ncols, nb, acc);
#if defined(GE_LSTM_ASM)
        ge_lstm_gates_asm(acc, m, c + j0, hout + j0, nb | ((uint32_t)p->cell_frac << 16));
#else
        lstm_gates(acc, m, c + j0, hout + j0, nb, p->cell_frac);
#endif
        m += 4u * nb;
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
