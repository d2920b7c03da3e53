/*
 * ge_gru.c - GRU step (torch gate order r, z, n).
 *
 * Per block of GE_GRU_BLOCK units: packed groups (r_j, z_j, r_j+1, z_j+1) over
 * [h; input], then (nh_j..j+3) over h, then (nx_j..j+3) over the input.
 *   r, z = sigmoid(usat16(mulhr(acc, M)))
 *   nh   = sat16(mulhr(acc_nh, M))                  Q3.12, no offset
 *   n    = tanh(usat16(mulhr(acc_nx, M) + ((r*nh + 2^14) >> 15)))
 *   h'   = n + ((z * (h - n) + 2^14) >> 15)
 */
#include "ge_gru.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_gru_step(const ge_rnn_params *p, int16_t *v, int16_t *h_new, int32_t *acc)
{
    const uint32_t hp = p->hidden, ncols = (uint32_t)p->hidden + p->in_size;
    const uint32_t *w = p->weights;
    const int32_t *b = p->bias, *m = p->mult;
    uint32_t j0;
    if (p->kind != GE_LAYER_GRU) return GE_ERR_UNSUPPORTED;
    for (j0 = 0; j0 < hp; j0 += GE_GRU_BLOCK) {
        const uint32_t nb = (hp - j0) < GE_GRU_BLOCK ? (hp - j0) : GE_GRU_BLOCK;
        const int32_t *arz = acc, *anh = acc + 2u * nb, *anx = acc + 3u * nb;
        const int32_t *mrz = m, *mnh = m + 2u * nb, *mnx = m + 3u * nb;
        const int16_t *hp_old = v + j0;
        int16_t *hn = h_new + j0;
        uint32_t u;
        w = ge_matvec4(w, b, v, ncols, nb / 2u, acc);
        b += 2u * nb;
        w = ge_matvec4(w, b, v, hp, nb / 4u, acc + 2u * nb);
        b += nb;
        w = ge_matvec4(w, b, v + hp, p->in_size, nb / 4u, acc + 3u * nb);
        b += nb;
        for (u = 0; u < nb; u++) {
            const int32_t r = ge_sigmoid_u(ge_u(ge_mulhr(arz[2u * u], mrz[2u * u])));
            const int32_t z = ge_sigmoid_u(ge_u(ge_mulhr(arz[2u * u + 1u], mrz[2u * u + 1u])));
            const int32_t nh = ge_sat16(ge_mulhr(anh[u], mnh[u]));
            const int32_t n = ge_tanh_u(ge_u(ge_mulhr(anx[u], mnx[u]) + ge_mul15(r, nh)));
            hn[u] = (int16_t)(n + ge_mul15(z, hp_old[u] - n));
        }
        m += 4u * nb;
    }
    memcpy(v, h_new, hp * sizeof *v);
    return GE_OK;
}
