/*
 * ge_gactrnn.c - gated adaptive CTRNN step, explicit Euler:
 *   i = sigmoid(W^ix x + W^ih y + b^i), f = sigmoid(W^fx x + W^fh y + b^f),
 *   tau du/dt = -f u + i (W y + V x + b),  y = sigmoid(u),
 *   u' = u + dt/tau (i p - f u).
 *
 * Per block of up to GE_BLOCK units: one matrix pass over the i groups, the f groups and
 * the p groups (4 units each, over [z; input], z = 2 y - 1 in Q0.15), then per unit j:
 *   ig = sigmoid(usat16(mulhr(acc_i, M_i))),  fg = sigmoid(usat16(mulhr(acc_f, M_f)))    Q0.15
 *   p  = mulhr(acc_p, M_p)                                                                Q3.12
 *   pu = sat16((p + 2^(11-uf)) >> (12-uf))   (sat16(p) when uf = 12)                      Q.uf
 *   d  = ig * pu - fg * u_j                                                               |d| < 2^31
 *   u' = sat16(u_j + mulhr(d, A_j))                  A_j = round(dt/tau_j 2^17)
 *   z' = 2 sigmoid(usat16(u' * 2^(12-uf) + 32768)) - 32768
 * uf = cell_frac (8..12).  A layer of at most GE_BLOCK units writes z' in place.
 */
#include "ge_gactrnn.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_gactrnn_check(const ge_rnn_params *p)
{
    if (p->kind != GE_LAYER_GACTRNN) return GE_ERR_UNSUPPORTED;
    if (p->cell_frac < 8 || p->cell_frac > 12 || p->aux != p->hidden || p->n_extra != p->hidden) return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_gactrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *u, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const unsigned uf = p->cell_frac, us = 12u - p->cell_frac;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult, *a = p->extra;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_GACTRNN) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        uint32_t k;
        w = ge_matvec4(w, v, ncols, 3u * (nb / 4u), acc);
        for (k = 0; k < nb; k++) {
            const uint32_t j = j0 + k;
            const int32_t ig = ge_sigmoid_u(ge_u(ge_mulhr(acc[k], m[k])));
            const int32_t fg = ge_sigmoid_u(ge_u(ge_mulhr(acc[nb + k], m[nb + k])));
            const int32_t pq = ge_mulhr(acc[2u * nb + k], m[2u * nb + k]);
            const int32_t pu = ge_sat16(us ? ge_asr32(pq + (1 << (us - 1u)), us) : pq);
            const int32_t d = ig * pu - fg * u[j];
            const int32_t un = ge_sat16(u[j] + ge_mulhr(d, a[j]));
            u[j] = (int16_t)un;
            hout[j] = (int16_t)(2 * ge_sigmoid_u(ge_u_q(un, uf)) - 32768);
        }
        m += 3u * nb;
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
