/*
 * ge_jordan.c - Jordan network step: the previous output, not h, is fed back.
 *
 * Float layer:  h_t = tanh(W_xh x_t + W_yh y_(t-1) + b_h),  y_t = sigmoid(W_hy h_t + b_y).
 * Integer form (Hp = hidden, I = in_size, Ky = aux words of y, Ko = Ky rounded up to 4):
 *   acc_j = B_j + sum_c wx_jc x_c + sum_k wy_jk y_k          two matrix passes, j < Hp
 *   h_j   = tanh(usat16(mulhr(acc_j, M_j)))                  Q0.15, written over the layer's h
 *   y_k   = sigmoid(usat16(mulhr(B_k + sum_j wo_kj h_j, M_k)))   k < Ky, Q0.15
 * Packed groups: Hp/4 groups over the input (biases), Hp/4 groups over y (zero
 * biases), Ko/4 groups over h (the output rows).  Multipliers: Hp hidden, Ko output.
 * Scratch: acc[0 .. Hp) input pass, acc[Hp .. 2Hp) feedback pass, then acc[0 .. Ko).
 */
#include "ge_jordan.h"

#include "ge_math.h"
#include "ge_matvec.h"

static uint32_t out_rows(const ge_rnn_params *p) { return ((uint32_t)p->aux + 3u) & ~3u; }

size_t ge_jordan_scratch(const ge_rnn_params *p)
{
    const size_t a = 2u * (size_t)p->hidden, b = out_rows(p);
    return a > b ? a : b;
}

ge_status ge_jordan_check(const ge_rnn_params *p)
{
    if (p->aux < 2 || p->aux % 2u || p->aux > GE_MAX_CLASSES || p->n_extra != 0 || p->cell_frac != 0)
        return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_jordan_step(const ge_rnn_params *p, int16_t *v, int16_t *y, int32_t *acc)
{
    const uint32_t hp = p->hidden, ky = p->aux, ko = out_rows(p);
    const uint32_t *w = p->weights;
    const int32_t *m = p->mult;
    uint32_t j;
    if (p->kind != GE_LAYER_JORDAN) return GE_ERR_UNSUPPORTED;
    w = ge_matvec4(w, v + hp, p->in_size, hp / 4u, acc);
    w = ge_matvec4(w, y, ky, hp / 4u, acc + hp);
    for (j = 0; j < hp; j++) v[j] = (int16_t)ge_tanh_u(ge_u(ge_mulhr(ge_add32(acc[j], acc[hp + j]), m[j])));
    m += hp;
    (void)ge_matvec4(w, v, hp, ko / 4u, acc);
    for (j = 0; j < ky; j++) y[j] = (int16_t)ge_sigmoid_u(ge_u(ge_mulhr(acc[j], m[j])));
    return GE_OK;
}
