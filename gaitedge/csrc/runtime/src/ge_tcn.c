/*
 * ge_tcn.c - one residual block of a temporal convolutional network (TCN), streamed
 * one sample at a time with ring buffers (no window is recomputed).
 *
 * Kernel size K = cell_frac, dilation d = extra[0], span L = (K-1) d, C = in_size
 * inputs, H = hidden outputs.  With X_k / A_k the input / conv1 output k d samples
 * back (k = 0: the current sample), per output channel o:
 *   a_o = relu15(mulhr(b1_o + sum_{k,c} w1[o][(K-1-k) C + c] X_k[c], M1_o))       (Q fa)
 *   y_o = max(mulhr(b2_o + sum_{k,j} w2[o][(K-1-k) H + j] A_k[j], M2_o), 0)       (Q fo)
 *   r_o = mulhr(br_o + sum_c wr[o][c] X_0[c], Mr_o)    if extra[1] (1x1 residual conv)
 *       = X_0[o] * 2^s, or (X_0[o] + 2^(-s-1)) >> -s   otherwise, s = extra[2]
 *   h_o = relu15(y_o + r_o)                                                         (Q fo)
 * relu15(v) = min(max(v, 0), 32767).  Weights: packed groups of 4 rows, conv1 rows
 * over K C columns (oldest tap first), conv2 rows over K H, then the 1x1 rows over C;
 * multipliers M1[H], M2[H], Mr[H].
 *
 * aux = [pos, 0, ring_x[L][C], ring_a[L][H]]: slot (pos + k d) mod L holds the sample
 * (K-1-k) d steps back; the current sample then replaces slot pos (the oldest) and
 * pos advances.  Scratch: acc[0 .. H) conv accumulators, acc[H .. 2H) residual
 * accumulators, then the int16 window of K max(C, H) words (word aligned, as the
 * matrix kernel's DSP path needs).
 * Twin: gaitedge/quant/tcn.py.
 */
#include "ge_tcn.h"

#include <string.h>

#include "ge_math.h"
#include "ge_matvec.h"

static int32_t relu15(int32_t v) { return v < 0 ? 0 : (v > 32767 ? 32767 : v); }

ge_status ge_tcn_check(const ge_rnn_params *p)
{
    uint32_t k, d, span;
    if (p->n_extra != 3u || p->extra == NULL) return GE_ERR_MODEL;
    k = p->cell_frac;
    if (k < 2u || k > 16u) return GE_ERR_MODEL;
    if (p->extra[0] < 1 || p->extra[0] > 4096 || (p->extra[1] != 0 && p->extra[1] != 1)) return GE_ERR_MODEL;
    if (p->extra[2] < -15 || p->extra[2] > 15) return GE_ERR_MODEL;
    if (p->extra[1] == 0 && p->in_size != p->hidden) return GE_ERR_MODEL;
    d = (uint32_t)p->extra[0];
    span = (k - 1u) * d;
    if (span > 32767u) return GE_ERR_MODEL;
    if (k * p->in_size > GE_MAX_ROW_INPUTS || k * p->hidden > GE_MAX_ROW_INPUTS) return GE_ERR_MODEL;
    if ((uint32_t)p->aux != GE_TCN_HEADER + span * ((uint32_t)p->in_size + p->hidden)) return GE_ERR_MODEL;
    return GE_OK;
}

size_t ge_tcn_scratch(const ge_rnn_params *p)
{
    const size_t k = p->cell_frac, wide = p->in_size > p->hidden ? p->in_size : p->hidden;
    return 2u * (size_t)p->hidden + (k * wide + 1u) / 2u;
}

/* Copy the K-1 past samples of a ring (oldest first) into win, width words each. */
static void gather(int16_t *win, const int16_t *ring, uint32_t pos, uint32_t k, uint32_t d, uint32_t span,
                   uint32_t width)
{
    uint32_t t;
    for (t = 0; t + 1u < k; t++) {
        uint32_t slot = pos + t * d;
        if (slot >= span) slot -= span;
        memcpy(win + t * width, ring + slot * width, width * sizeof *win);
    }
}

ge_status ge_tcn_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int32_t *acc)
{
    const uint32_t k = p->cell_frac, c = p->in_size, hp = p->hidden;
    const uint32_t d = (uint32_t)p->extra[0], span = (k - 1u) * d;
    const int32_t rs = p->extra[2];
    const int32_t *m = p->mult;
    const int16_t *x = v + hp;
    int16_t *ring_x = aux + GE_TCN_HEADER, *ring_a = ring_x + span * c;
    int16_t *win = (int16_t *)(void *)(acc + 2u * hp);
    int16_t *a_now = win + (k - 1u) * hp;
    const uint32_t *w = p->weights;
    const uint32_t pos = (uint32_t)(uint16_t)aux[0];
    uint32_t o;
    if (p->kind != GE_LAYER_TCN) return GE_ERR_UNSUPPORTED;
    if (aux[0] < 0 || pos >= span) return GE_ERR_STATE;
    /* conv1 over [X_(K-1) .. X_1, X_0] */
    gather(win, ring_x, pos, k, d, span, c);
    memcpy(win + (k - 1u) * c, x, c * sizeof *win);
    memcpy(ring_x + pos * c, x, c * sizeof *win);
    w = ge_matvec4(w, win, k * c, hp / 4u, acc);
    /* conv2 over [A_(K-1) .. A_1, A_0]: the window's past part first, then a */
    gather(win, ring_a, pos, k, d, span, hp);
    for (o = 0; o < hp; o++) a_now[o] = (int16_t)relu15(ge_mulhr(acc[o], m[o]));
    memcpy(ring_a + pos * hp, a_now, hp * sizeof *win);
    w = ge_matvec4(w, win, k * hp, hp / 4u, acc);
    if (p->extra[1]) {
        (void)ge_matvec4(w, x, c, hp / 4u, acc + hp);
        for (o = 0; o < hp; o++) acc[hp + o] = ge_mulhr(acc[hp + o], m[2u * hp + o]);
    } else if (rs >= 0) {
        for (o = 0; o < hp; o++) acc[hp + o] = ge_shl32(x[o], (unsigned)rs);
    } else {
        for (o = 0; o < hp; o++) acc[hp + o] = ge_asr32(x[o] + (int32_t)(1L << (-rs - 1)), (unsigned)-rs);
    }
    /* the block output replaces h (the input X_0 after it is no longer needed) */
    for (o = 0; o < hp; o++) {
        int32_t y = ge_mulhr(acc[o], m[hp + o]);
        if (y < 0) y = 0;
        v[o] = (int16_t)relu15(y + acc[hp + o]);
    }
    aux[0] = (int16_t)(pos + 1u == span ? 0u : pos + 1u);
    return GE_OK;
}
