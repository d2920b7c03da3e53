/*
 * ge_pcrnn.c - predictive-coding RNN layer: two levels relaxed K Euler steps per sample.
 *
 * hidden = H2 (top level p2, the layer's h), aux = H1 (lower level p1), in_size = C
 * (input x', Q0.15); both levels and the level errors are Q(15-f).f, f = cell_frac
 * (8..12); the sensory error is Q2.13 of x' units; extra = {K, A1, A2} with
 * A = round(32768 dt / tau) in 1..32767.  Packed row blocks, in order (groups of 4
 * rows, one multiplier per row): R prior (H2 x H2, over p2), T top-down (H1 x H2,
 * over p2), G generative (ceil4(C) x H1, over tanh(p1)), B sensory gradient
 * (H1 x C, over e_s), U bottom-up (H2 x H1, over e_1).  Per sample
 * (QUANTIZATION.md, "PC-RNN layer"; r15(v) = (v + 2^14) >> 15):
 *
 *   phat = (tanh(usat16(mulhr(R p2 + b_R))) + 2^(14-f)) >> (15-f);  p2 = phat
 *   K times:
 *     a   = tanh(usat16(p1 2^(12-f) + 32768))
 *     e_s = sat16(((x' + 2) >> 2) - mulhr(G a + b_G))
 *     e_1 = sat16(p1 - mulhr(T p2 + b_T))
 *     p1  = sat16(p1 + r15(A1 (r15((32768 - r15(a a)) sat16(mulhr(B e_s))) - e_1)))
 *     p2  = sat16(p2 + r15(A2 (sat16(mulhr(U e_1)) - sat16(p2 - phat))))
 *
 * Scratch: acc [max(H2, H1, ceil4(C))] int32, then int16 phat [H2], a [H1],
 * e_s [C], e_1 [H1].
 */
#include "ge_pcrnn.h"

#include "ge_math.h"
#include "ge_matvec.h"

#define GE_CEIL4(n) (((uint32_t)(n) + 3u) & ~3u)

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
    const uint32_t m = a > b ? a : b;
    return m > c ? m : c;
}

ge_status ge_pcrnn_check(const ge_rnn_params *p)
{
    if (p->n_extra != GE_PCRNN_N_EXTRA || p->extra == NULL) return GE_ERR_MODEL;
    if (p->cell_frac < 8 || p->cell_frac > 12) return GE_ERR_MODEL;
    if (p->aux < 4 || p->aux % 4u || (uint32_t)p->aux + p->in_size > GE_MAX_ROW_INPUTS) return GE_ERR_MODEL;
    if (p->extra[0] < 1 || p->extra[0] > 64) return GE_ERR_MODEL;
    if (p->extra[1] < 1 || p->extra[1] > 32767 || p->extra[2] < 1 || p->extra[2] > 32767) return GE_ERR_MODEL;
    return GE_OK;
}

size_t ge_pcrnn_scratch(const ge_rnn_params *p)
{
    return (size_t)max3(p->hidden, p->aux, GE_CEIL4(p->in_size)) +
           ((size_t)p->hidden + 2u * p->aux + p->in_size) / 2u;
}

/* r15(v) = (v + 2^14) >> 15, round half up */
static int32_t r15(int32_t v) { return ge_asr32(v + (1 << 14), 15u); }

ge_status ge_pcrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int32_t *acc)
{
    const uint32_t h2 = p->hidden, h1 = p->aux, c = p->in_size, cr = GE_CEIL4(p->in_size);
    const unsigned f = p->cell_frac;
    const int32_t nk = p->extra[0], a1 = p->extra[1], a2 = p->extra[2];
    const int16_t *x = v + h2;
    int16_t *phat = (int16_t *)(void *)(acc + max3(h2, h1, cr));
    int16_t *a = phat + h2, *es = a + h1, *e1 = es + c;
    const uint32_t *wt, *wg, *wb, *wu;
    const int32_t *mt = p->mult + h2, *mg = mt + h1, *mb = mg + cr, *mu = mb + h1;
    int32_t k;
    uint32_t j;
    if (p->kind != GE_LAYER_PCRNN) return GE_ERR_UNSUPPORTED;
    /* the prior from p2 (t-1); the relaxation starts there */
    wt = ge_matvec4(p->weights, v, h2, h2 / 4u, acc);
    for (j = 0; j < h2; j++) {
        const int32_t t = ge_tanh_u(ge_u(ge_mulhr(acc[j], p->mult[j])));
        phat[j] = (int16_t)ge_asr32(t + (1 << (14u - f)), 15u - f);
        v[j] = phat[j];
    }
    wg = wt + (h1 / 4u) * GE_GROUP_WORDS(h2);
    wb = wg + (cr / 4u) * GE_GROUP_WORDS(h1);
    wu = wb + (h1 / 4u) * GE_GROUP_WORDS(c);
    for (k = 0; k < nk; k++) {
        for (j = 0; j < h1; j++) a[j] = (int16_t)ge_tanh_u(ge_u_q(aux[j], f));
        (void)ge_matvec4(wg, a, h1, cr / 4u, acc);
        for (j = 0; j < c; j++) {
            const int32_t xs = ge_asr32((int32_t)x[j] + 2, 2u);
            es[j] = (int16_t)ge_sat16(xs - ge_mulhr(acc[j], mg[j]));
        }
        (void)ge_matvec4(wt, v, h2, h1 / 4u, acc);
        for (j = 0; j < h1; j++) e1[j] = (int16_t)ge_sat16((int32_t)aux[j] - ge_mulhr(acc[j], mt[j]));
        (void)ge_matvec4(wb, es, c, h1 / 4u, acc);
        for (j = 0; j < h1; j++) {
            const int32_t aj = a[j];
            const int32_t da = 32768 - r15(aj * aj);
            const int32_t g = r15(da * ge_sat16(ge_mulhr(acc[j], mb[j])));
            aux[j] = (int16_t)ge_sat16((int32_t)aux[j] + r15(a1 * (g - e1[j])));
        }
        (void)ge_matvec4(wu, e1, h1, h2 / 4u, acc);
        for (j = 0; j < h2; j++) {
            const int32_t e2 = ge_sat16((int32_t)v[j] - phat[j]);
            const int32_t d = ge_sat16(ge_mulhr(acc[j], mu[j]));
            v[j] = (int16_t)ge_sat16((int32_t)v[j] + r15(a2 * (d - e2)));
        }
    }
    return GE_OK;
}
