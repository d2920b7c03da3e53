/*
 * ge_reservoir.c - leaky tanh reservoir step (echo state networks), QUANTIZATION.md
 * "Reservoir layers".  Per unit j, from the old state h and the input x (Q0.15):
 *
 *   acc_in_j  = B_j + sum_k Win_jk x_k          dense int8, packed 4-unit groups (ge_matvec4)
 *   acc_rec_j = sum over row j of w h_c          sparse int8 (CSR in extra)
 *   v_j  = mulhr(acc_in_j, Min_j) + mulhr(acc_rec_j, Mrec_j)      (Q3.12 + 32768)
 *   h'_j = h_j + ((A * (tanh(usat16(v_j)) - h_j) + 2^14) >> 15)  (A = leak in Q15)
 *
 * mult holds Min_j, Mrec_j per unit.  extra (int32 words, byte 0 least significant):
 *   [0] A (1..32768)   [1] G (4-entry groups in all)   [2 .. 2 + hidden/4) groups per
 *   row, uint8 (row j: byte j % 4 of word j / 4)   then 2G words of uint16 column
 *   indices (entry 2i low half, 2i + 1 high half)   then G words of int8 values
 *   (entry 4g + b in byte b of word g).  Rows are padded to whole groups with
 *   (column 0, value 0) entries.
 *
 * Bounds: |acc_rec| <= 512 * 127 * 32767 < 2^31; the exporter keeps |mulhr(acc_in,
 * Min)| < 2^22 and Mrec < 2^31, so v fits int32; |A (t - h)| <= 32768 * 65534.
 */
#include "ge_reservoir.h"

#include "ge_math.h"
#include "ge_matvec.h"

/* Signed byte at bit offset s of word w. */
#define GE_RES_SB(w, s) ge_asr32(ge_word_to_i32((w) << (24u - (s))), 24u)

ge_status ge_reservoir_check(const ge_rnn_params *p)
{
    uint32_t j, g = 0, ng, i, nc;
    const int32_t *e = p->extra;
    if (p->aux != 0 || p->cell_frac != 0) return GE_ERR_MODEL;
    if (e == NULL) return GE_ERR_NULL;
    if (p->n_extra < 2u + p->hidden / 4u) return GE_ERR_MODEL;
    if (e[0] < 1 || e[0] > 32768 || e[1] < 0) return GE_ERR_MODEL;
    ng = (uint32_t)e[1];
    if ((uint32_t)p->n_extra != 2u + p->hidden / 4u + 3u * ng) return GE_ERR_MODEL;
    for (j = 0; j < p->hidden; j++) g += ((uint32_t)e[2u + j / 4u] >> (8u * (j & 3u))) & 0xFFu;
    if (g != ng) return GE_ERR_MODEL;
    nc = 2u * ng;
    for (i = 0; i < nc; i++) {
        const uint32_t w = (uint32_t)e[2u + p->hidden / 4u + i];
        if ((w & 0xFFFFu) >= p->hidden || (w >> 16) >= p->hidden) return GE_ERR_MODEL;
    }
    return GE_OK;
}

size_t ge_reservoir_scratch(const ge_rnn_params *p) { return p->hidden; }

ge_status ge_reservoir_step(const ge_rnn_params *p, int16_t *v, int32_t *acc)
{
    const uint32_t hp = p->hidden;
    const int32_t *m = p->mult;
    const int32_t *rows = p->extra + 2;
    const int32_t *cols = rows + hp / 4u;
    const int32_t *vals = cols + 2u * (uint32_t)p->extra[1];
    const int32_t leak = p->extra[0];
    uint32_t j;
    if (p->kind != GE_LAYER_RESERVOIR) return GE_ERR_UNSUPPORTED;
    (void)ge_matvec4(p->weights, v + hp, p->in_size, hp / 4u, acc);
    for (j = 0; j < hp; j++) {
        uint32_t ng = ((uint32_t)rows[j / 4u] >> (8u * (j & 3u))) & 0xFFu;
        int32_t a = 0;
        for (; ng; ng--, cols += 2, vals++) {
            const uint32_t c0 = (uint32_t)cols[0], c1 = (uint32_t)cols[1], w = (uint32_t)vals[0];
            a += GE_RES_SB(w, 0u) * v[c0 & 0xFFFFu] + GE_RES_SB(w, 8u) * v[c0 >> 16] +
                 GE_RES_SB(w, 16u) * v[c1 & 0xFFFFu] + GE_RES_SB(w, 24u) * v[c1 >> 16];
        }
        acc[j] = ge_mulhr(acc[j], m[2u * j]) + ge_mulhr(a, m[2u * j + 1u]);
    }
    for (j = 0; j < hp; j++) {
        const int32_t h = v[j], t = ge_tanh(ge_usat16(acc[j]));
        v[j] = (int16_t)(h + ge_asr32(leak * (t - h) + 16384, 15u));
    }
    return GE_OK;
}
