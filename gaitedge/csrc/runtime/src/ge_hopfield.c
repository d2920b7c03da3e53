/*
 * ge_hopfield.c - discrete Hopfield network: int8 weights, bipolar int8 states,
 * synchronous steps, ascending-order asynchronous sweeps, int32 energy, and a run
 * loop that stops at a fixed point, a 2-cycle or max_iter (see ge_hopfield.h).
 */
#include "ge_hopfield.h"

/* net input of unit i: sum_j w_ij o_j; |net| <= 127 * 4095 fits int32 (4 terms per pass) */
static int32_t net_input(const int8_t *wrow, const int8_t *o, uint32_t n)
{
    int32_t acc = 0;
    uint32_t j = 0;
    for (; j + 4u <= n; j += 4u)
        acc += (int32_t)wrow[j] * o[j] + (int32_t)wrow[j + 1u] * o[j + 1u] + (int32_t)wrow[j + 2u] * o[j + 2u] +
               (int32_t)wrow[j + 3u] * o[j + 3u];
    for (; j < n; j++) acc += (int32_t)wrow[j] * o[j];
    return acc;
}

static void copy_state(int8_t *dst, const int8_t *src, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) dst[i] = src[i];
}

static int same_state(const int8_t *a, const int8_t *b, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static ge_status ready(const ge_hopfield_state *st)
{
    if (st == NULL) return GE_ERR_NULL;
    if (st->p == NULL || st->o == NULL || st->prev == NULL || st->prev2 == NULL) return GE_ERR_STATE;
    return GE_OK;
}

ge_status ge_hopfield_check(const ge_hopfield_params *p)
{
    uint32_t n, i, j;
    if (p == NULL || p->w == NULL) return GE_ERR_NULL;
    n = p->n;
    if (n == 0u || n > GE_HOPFIELD_MAX_N) return GE_ERR_MODEL;
    for (i = 0; i < n; i++) {
        if (p->w[i * n + i] != 0) return GE_ERR_MODEL;
        for (j = 0; j < n; j++) {
            const int8_t v = p->w[i * n + j];
            if (v == INT8_MIN || v != p->w[j * n + i]) return GE_ERR_MODEL;
        }
    }
    return GE_OK;
}

ge_status ge_hopfield_init(ge_hopfield_state *st, const ge_hopfield_params *p, int8_t *mem, size_t mem_bytes)
{
    ge_status s;
    uint32_t i, n;
    if (st == NULL || mem == NULL) return GE_ERR_NULL;
    s = ge_hopfield_check(p);
    if (s != GE_OK) return s;
    n = p->n;
    if (mem_bytes < GE_HOPFIELD_MEM_BYTES(n)) return GE_ERR_BUFFER;
    st->p = p;
    st->o = mem;
    st->prev = mem + n;
    st->prev2 = mem + 2u * n;
    for (i = 0; i < 3u * n; i++) mem[i] = 1;
    st->steps = 0;
    return GE_OK;
}

ge_status ge_hopfield_set(ge_hopfield_state *st, const int8_t *x)
{
    uint32_t i, n;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    if (x == NULL) return GE_ERR_NULL;
    n = st->p->n;
    for (i = 0; i < n; i++)
        if (x[i] != 1 && x[i] != -1) return GE_ERR_STATE;
    copy_state(st->o, x, n);
    copy_state(st->prev, x, n);
    copy_state(st->prev2, x, n);
    st->steps = 0;
    return GE_OK;
}

/* shift the history: prev2 <- prev, prev <- o */
static void push_history(ge_hopfield_state *st, uint32_t n)
{
    copy_state(st->prev2, st->prev, n);
    copy_state(st->prev, st->o, n);
}

ge_status ge_hopfield_sync_step(ge_hopfield_state *st, uint16_t *changed)
{
    uint32_t i, n, flips = 0;
    const int8_t *w;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    n = st->p->n;
    w = st->p->w;
    push_history(st, n);
    for (i = 0; i < n; i++) {
        const int32_t h = net_input(w + i * n, st->prev, n);
        const int8_t old = st->prev[i];
        const int8_t v = h > 0 ? (int8_t)1 : (h < 0 ? (int8_t)-1 : old);
        flips += (uint32_t)(v != old);
        st->o[i] = v;
    }
    st->steps++;
    if (changed != NULL) *changed = (uint16_t)flips;
    return GE_OK;
}

ge_status ge_hopfield_async_sweep(ge_hopfield_state *st, uint16_t *changed)
{
    uint32_t i, n, flips = 0;
    const int8_t *w;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    n = st->p->n;
    w = st->p->w;
    push_history(st, n);
    for (i = 0; i < n; i++) {
        const int32_t h = net_input(w + i * n, st->o, n);
        if (h > 0 && st->o[i] < 0) {
            st->o[i] = 1;
            flips++;
        } else if (h < 0 && st->o[i] > 0) {
            st->o[i] = -1;
            flips++;
        }
    }
    st->steps++;
    if (changed != NULL) *changed = (uint16_t)flips;
    return GE_OK;
}

ge_status ge_hopfield_energy(const ge_hopfield_params *p, const int8_t *o, int32_t *energy)
{
    uint32_t i, n;
    int32_t sum = 0;
    if (p == NULL || p->w == NULL || o == NULL || energy == NULL) return GE_ERR_NULL;
    n = p->n;
    if (n == 0u || n > GE_HOPFIELD_MAX_N) return GE_ERR_MODEL;
    /* the j == i terms are left out; a symmetric W makes the sum even */
    for (i = 0; i < n; i++) {
        const int8_t *row = p->w + i * n;
        sum += (int32_t)o[i] * (net_input(row, o, i) + net_input(row + i + 1u, o + i + 1u, n - i - 1u));
    }
    *energy = -(sum / 2);
    return GE_OK;
}

ge_status ge_hopfield_run(ge_hopfield_state *st, ge_hopfield_mode mode, uint32_t max_iter, ge_hopfield_result *res)
{
    uint32_t t, n;
    uint8_t outcome = GE_HOPFIELD_MAX_ITER, period = 0;
    ge_status s = ready(st);
    if (s != GE_OK) return s;
    if (res == NULL) return GE_ERR_NULL;
    if (mode != GE_HOPFIELD_SYNC && mode != GE_HOPFIELD_ASYNC) return GE_ERR_UNSUPPORTED;
    n = st->p->n;
    t = 0;
    while (t < max_iter) {
        uint16_t changed = 0;
        t++;
        s = mode == GE_HOPFIELD_SYNC ? ge_hopfield_sync_step(st, &changed) : ge_hopfield_async_sweep(st, &changed);
        if (s != GE_OK) return s;
        if (changed == 0u) {
            outcome = GE_HOPFIELD_FIXED_POINT;
            period = 1;
            break;
        }
        if (same_state(st->o, st->prev2, n)) {
            outcome = GE_HOPFIELD_CYCLE;
            period = 2;
            break;
        }
    }
    res->outcome = outcome;
    res->period = period;
    res->steps = t;
    return ge_hopfield_energy(st->p, st->o, &res->energy);
}

int32_t ge_hopfield_match(const int8_t *patterns, uint16_t m, uint16_t n, const int8_t *o)
{
    uint32_t k;
    if (patterns == NULL || o == NULL) return -1;
    for (k = 0; k < m; k++)
        if (same_state(patterns + k * (uint32_t)n, o, n)) return (int32_t)k;
    return -1;
}
