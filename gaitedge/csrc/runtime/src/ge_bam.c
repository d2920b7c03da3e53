/*
 * ge_bam.c - bidirectional associative memory: int8 weights, bipolar int8 layers,
 * forward (b = sign(W^T a)) and backward (a = sign(W b)) passes with the
 * zero-keeps rule, int32 energy -a^T W b, and recall until stable (see ge_bam.h).
 */
#include "ge_bam.h"

static int8_t sign_keep(int32_t h, int8_t old)
{
    return h > 0 ? (int8_t)1 : (h < 0 ? (int8_t)-1 : old);
}

/* sum_k x[k * stride] * v[k]; |sum| <= 127 * 4096 fits int32 (4 terms per pass) */
static int32_t dot(const int8_t *x, uint32_t stride, const int8_t *v, uint32_t n)
{
    int32_t acc = 0;
    uint32_t k = 0, off = 0;
    for (; k + 4u <= n; k += 4u, off += 4u * stride)
        acc += (int32_t)x[off] * v[k] + (int32_t)x[off + stride] * v[k + 1u] +
               (int32_t)x[off + 2u * stride] * v[k + 2u] + (int32_t)x[off + 3u * stride] * v[k + 3u];
    for (; k < n; k++, off += stride) acc += (int32_t)x[off] * v[k];
    return acc;
}

static int bipolar(const int8_t *x, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        if (x[i] != 1 && x[i] != -1) return 0;
    return 1;
}

static ge_status ready(const ge_bam_state *st)
{
    if (st == NULL) return GE_ERR_NULL;
    if (st->p == NULL || st->a == NULL || st->b == NULL) return GE_ERR_STATE;
    return GE_OK;
}

ge_status ge_bam_check(const ge_bam_params *p)
{
    uint32_t k, size;
    if (p == NULL || p->w == NULL) return GE_ERR_NULL;
    if (p->n_a == 0u || p->n_a > GE_BAM_MAX_N || p->n_b == 0u || p->n_b > GE_BAM_MAX_N) return GE_ERR_MODEL;
    size = (uint32_t)p->n_a * p->n_b;
    for (k = 0; k < size; k++)
        if (p->w[k] == INT8_MIN) return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_bam_init(ge_bam_state *st, const ge_bam_params *p, int8_t *mem, size_t mem_bytes)
{
    ge_status s;
    uint32_t i;
    if (st == NULL || mem == NULL) return GE_ERR_NULL;
    s = ge_bam_check(p);
    if (s != GE_OK) return s;
    if (mem_bytes < GE_BAM_MEM_BYTES(p->n_a, p->n_b)) return GE_ERR_BUFFER;
    st->p = p;
    st->a = mem;
    st->b = mem + p->n_a;
    for (i = 0; i < (uint32_t)p->n_a + p->n_b; i++) mem[i] = 1;
    return GE_OK;
}

ge_status ge_bam_set(ge_bam_state *st, const int8_t *a, const int8_t *b)
{
    uint32_t i;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    if ((a != NULL && !bipolar(a, st->p->n_a)) || (b != NULL && !bipolar(b, st->p->n_b))) return GE_ERR_STATE;
    if (a != NULL)
        for (i = 0; i < st->p->n_a; i++) st->a[i] = a[i];
    if (b != NULL)
        for (i = 0; i < st->p->n_b; i++) st->b[i] = b[i];
    return GE_OK;
}

/* out[j] = sign_keep(sum_k w[j * out_step + k * in_stride] * in[k], out[j]) for every j;
 * returns how many entries flipped.  Forward: columns of W (out_step 1, in_stride n_b);
 * backward: rows of W (out_step n_b, in_stride 1). */
static uint32_t update_layer(int8_t *out, uint32_t n_out, const int8_t *w, uint32_t out_step, uint32_t in_stride,
                             const int8_t *in, uint32_t n_in)
{
    uint32_t j, flips = 0;
    for (j = 0; j < n_out; j++) {
        const int8_t v = sign_keep(dot(w + j * out_step, in_stride, in, n_in), out[j]);
        flips += (uint32_t)(v != out[j]);
        out[j] = v;
    }
    return flips;
}

ge_status ge_bam_forward(ge_bam_state *st, uint16_t *changed)
{
    uint32_t flips;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    flips = update_layer(st->b, st->p->n_b, st->p->w, 1u, st->p->n_b, st->a, st->p->n_a);
    if (changed != NULL) *changed = (uint16_t)flips;
    return GE_OK;
}

ge_status ge_bam_backward(ge_bam_state *st, uint16_t *changed)
{
    uint32_t flips;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    flips = update_layer(st->a, st->p->n_a, st->p->w, st->p->n_b, 1u, st->b, st->p->n_b);
    if (changed != NULL) *changed = (uint16_t)flips;
    return GE_OK;
}

ge_status ge_bam_energy(const ge_bam_params *p, const int8_t *a, const int8_t *b, int32_t *energy)
{
    uint32_t i, na, nb;
    int32_t sum = 0;
    if (p == NULL || p->w == NULL || a == NULL || b == NULL || energy == NULL) return GE_ERR_NULL;
    na = p->n_a;
    nb = p->n_b;
    if (na == 0u || na > GE_BAM_MAX_N || nb == 0u || nb > GE_BAM_MAX_N) return GE_ERR_MODEL;
    /* |sum| <= 127 * 4096 * 4096 < 2^31 */
    for (i = 0; i < na; i++) sum += (int32_t)a[i] * dot(p->w + i * nb, 1u, b, nb);
    *energy = -sum;
    return GE_OK;
}

ge_status ge_bam_run(ge_bam_state *st, ge_bam_direction from, uint32_t max_iter, ge_bam_result *res)
{
    uint32_t t = 0;
    uint8_t outcome = GE_BAM_MAX_ITER;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    if (res == NULL) return GE_ERR_NULL;
    if (from != GE_BAM_FROM_A && from != GE_BAM_FROM_B) return GE_ERR_UNSUPPORTED;
    while (t < max_iter) {
        uint16_t c1 = 0, c2 = 0;
        t++;
        if (from == GE_BAM_FROM_A) {
            (void)ge_bam_forward(st, &c1);
            (void)ge_bam_backward(st, &c2);
        } else {
            (void)ge_bam_backward(st, &c1);
            (void)ge_bam_forward(st, &c2);
        }
        if (c1 == 0u && c2 == 0u) {
            outcome = GE_BAM_FIXED_POINT;
            break;
        }
    }
    res->outcome = outcome;
    res->steps = t;
    return ge_bam_energy(st->p, st->a, st->b, &res->energy);
}
