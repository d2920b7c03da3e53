/*
 * ge_lstm.c - LSTM step (torch gate order i, f, g, o).
 *
 * Per unit j (packed group: rows i_j, f_j, g_j, o_j over [h; input]):
 *   u_* = usat16(mulhr(acc_*, M_*))          gate pre-activations, Q3.12 + 32768
 *   i, f, o = sigmoid(u), g = tanh(u)         Q0.15
 *   c' = sat16((f*c + ((i*g) >> (15-cf)) + 2^14) >> 15)
 *   h' = (o * tanh(usat16(c' * 2^(12-cf) + 32768)) + 2^14) >> 15   (|h'| < 2^15)
 */
#include "ge_lstm.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_lstm_step(const ge_rnn_params *p, int16_t *v, int16_t *c, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const unsigned cf = p->cell_frac, cs = 15u - p->cell_frac;
    const uint32_t *w = p->weights;
    const int32_t *b = p->bias, *m = p->mult;
    uint32_t j0;
    if (p->kind != GE_LAYER_LSTM) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        const int32_t *a = acc;
        int16_t *cp = c + j0, *hn = h_new + j0;
        uint32_t u;
        w = ge_matvec4(w, b, v, ncols, nb, acc);
        b += 4u * nb;
        for (u = 0; u < nb; u++, a += 4, m += 4) {
            const int32_t ig = ge_sigmoid_u(ge_u(ge_mulhr(a[0], m[0])));
            const int32_t fg = ge_sigmoid_u(ge_u(ge_mulhr(a[1], m[1])));
            const int32_t gg = ge_tanh_u(ge_u(ge_mulhr(a[2], m[2])));
            const int32_t og = ge_sigmoid_u(ge_u(ge_mulhr(a[3], m[3])));
            const int32_t cn = ge_sat16(ge_asr32(fg * cp[u] + ge_asr32(ig * gg, cs) + (1 << 14), 15));
            cp[u] = (int16_t)cn;
            hn[u] = (int16_t)ge_asr32(og * ge_tanh_u(ge_u_q(cn, cf)) + (1 << 14), 15);
        }
    }
    memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
