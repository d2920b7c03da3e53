/*
 * ge_ctrnn.c - CTRNN (leaky integrator) step, explicit Euler:
 *   tau du/dt = -u + W y + V I + b,  y = sigmoid(u),  u' = u + dt/tau (W y + V I + b - u).
 *
 * Per unit j (groups of 4 units over [z; input], z = 2 y - 1 in Q0.15, the weights on z
 * halved and the bias carrying W 1/2):
 *   p  = mulhr(acc_j, M_j)                                drive, Q3.12
 *   d  = p - u_j * 2^(12 - uf)                            Q.12 (|d| < 2^23)
 *   u' = sat16(u_j + mulhr(d * 2^8, A_j))                 A_j = round(dt/tau_j 2^(12+uf)), Q.uf
 *   z' = 2 sigmoid(usat16(u' * 2^(12 - uf) + 32768)) - 32768
 * uf = cell_frac (8..12): fraction bits of the int16 potential u (aux).  A layer of at
 * most GE_BLOCK units writes z' in place.
 */
#include "ge_ctrnn.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_ctrnn_check(const ge_rnn_params *p)
{
    if (p->kind != GE_LAYER_CTRNN) return GE_ERR_UNSUPPORTED;
    if (p->cell_frac < 8 || p->cell_frac > 12 || p->aux != p->hidden || p->n_extra != p->hidden) return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_ctrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *u, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const unsigned uf = p->cell_frac, us = 12u - p->cell_frac;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult, *a = p->extra;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_CTRNN) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        uint32_t k;
        w = ge_matvec4(w, v, ncols, nb / 4u, acc);
        for (k = 0; k < nb; k++) {
            const uint32_t j = j0 + k;
            const int32_t d = ge_mulhr(acc[k], m[j]) - ge_shl32(u[j], us);
            const int32_t un = ge_sat16(u[j] + ge_mulhr(ge_shl32(d, 8), a[j]));
            u[j] = (int16_t)un;
            hout[j] = (int16_t)(2 * ge_sigmoid_u(ge_u_q(un, uf)) - 32768);
        }
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
