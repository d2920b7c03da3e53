/*
 * ge_peephole.c - LSTM step with peephole connections (gate order i, f, g, o).
 *
 * Float cell: i = sigmoid(W_i v + p_i c + b_i), f = sigmoid(W_f v + p_f c + b_f),
 * g = tanh(W_g v + b_g), c' = f c + i g, o = sigmoid(W_o v + p_o c' + b_o),
 * h' = o tanh(c').  Integer form (cf = cell_frac, P = round(p * 2^12) in extra):
 *   pk(P, c) = (P * c + 2^(cf-1)) >> cf                   p * c in Q3.12
 *   i = sigmoid(usat16(mulhr(acc_i, M_i) + pk(P_i, c)))
 *   f = sigmoid(usat16(mulhr(acc_f, M_f) + pk(P_f, c)))
 *   g = tanh(usat16(mulhr(acc_g, M_g)))
 *   c' = sat16((f*c + ((i*g) >> (15-cf)) + 2^14) >> 15)
 *   o = sigmoid(usat16(mulhr(acc_o, M_o) + pk(P_o, c')))
 *   h' = (o * tanh(usat16(c' * 2^(12-cf) + 32768)) + 2^14) >> 15
 * Weights are packed as the LSTM's (one group per unit, rows i f g o over [h; input]);
 * blocks of GE_BLOCK units, in place for layers of at most GE_BLOCK units.  The table
 * inputs are formed with usat16 (the peephole sum may exceed the range that the DSP
 * path's shifted form covers); the tables give the same numbers on every build.
 */
#include "ge_peephole.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

/* (P * c + 2^(cf-1)) >> cf; |P| < 2^15 and |c| <= 2^15 keep the product in int32. */
static int32_t peep(int32_t pw, int32_t c, unsigned cf) { return ge_asr32(pw * c + (1 << (cf - 1u)), cf); }

static void peephole_gates(const int32_t *a, const int32_t *m, const int32_t *pk, uint32_t hp, int16_t *c,
                           int16_t *h, uint32_t nb, unsigned cf)
{
    const unsigned cs = 15u - cf;
    uint32_t u;
    for (u = 0; u < nb; u++, a += 4, m += 4) {
        const int32_t co = c[u];
        const int32_t ig = ge_sigmoid(ge_usat16(ge_mulhr(a[0], m[0]) + peep(pk[u], co, cf)));
        const int32_t fg = ge_sigmoid(ge_usat16(ge_mulhr(a[1], m[1]) + peep(pk[hp + u], co, cf)));
        const int32_t gg = ge_tanh(ge_usat16(ge_mulhr(a[2], m[2])));
        const int32_t cn = ge_sat16(ge_asr32(fg * co + ge_asr32(ig * gg, cs) + (1 << 14), 15));
        const int32_t og = ge_sigmoid(ge_usat16(ge_mulhr(a[3], m[3]) + peep(pk[2u * hp + u], cn, cf)));
        c[u] = (int16_t)cn;
        h[u] = (int16_t)ge_asr32(og * ge_tanh(ge_usat16(ge_shl32(cn, 12u - cf) + 32768)) + (1 << 14), 15);
    }
}

ge_status ge_peephole_check(const ge_rnn_params *p)
{
    uint32_t k;
    if (p->cell_frac < 8 || p->cell_frac > 12 || p->aux != p->hidden || p->n_extra != 3u * p->hidden)
        return GE_ERR_MODEL;
    for (k = 0; k < p->n_extra; k++)
        if (p->extra[k] < -32767 || p->extra[k] > 32767) return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_peephole_step(const ge_rnn_params *p, int16_t *v, int16_t *c, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_PEEPHOLE) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        w = ge_matvec4(w, v, ncols, nb, acc);
        peephole_gates(acc, m, p->extra + j0, hp, c + j0, hout + j0, nb, p->cell_frac);
        m += 4u * nb;
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
