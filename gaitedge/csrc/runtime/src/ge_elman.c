/*
 * ge_elman.c - Elman (tanh) RNN step: h' = tanh(usat16(mulhr(acc, M))),
 * packed groups of 4 units over [h; input]; a layer of at most GE_BLOCK units
 * writes h' in place.
 */
#include "ge_elman.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_elman_step(const ge_rnn_params *p, int16_t *v, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult;
    int16_t *hout = hp <= GE_BLOCK ? v : h_new;
    uint32_t j0;
    if (p->kind != GE_LAYER_ELMAN) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_BLOCK ? (hp - j0) : GE_BLOCK;
        uint32_t u;
        w = ge_matvec4(w, v, ncols, nb / 4u, acc);
        for (u = 0; u < nb; u++) hout[j0 + u] = (int16_t)ge_tanh_u(ge_u(ge_mulhr(acc[u], m[u])));
        m += nb;
    }
    if (hout != v) memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
