/*
 * ge_window.c - whole-window execution of a non-causal model (bidirectional RNN, encoder-decoder).
 *
 * Python twin: gaitedge.quant.window.  For a window of n samples:
 *   X[t]  = preproc(mount(counts[t]))       (the stream's mounting and preprocessing, filter primed on sample 0)
 * bidir, per level l (layers 2l forward, 2l+1 backward; both start from a zero state):
 *   hf_t = step_fwd([hf_{t-1}; Y_in[t]])    t = 0 .. n-1
 *   hb_t = step_bwd([hb_{t+1}; Y_in[t]])    t = n-1 .. 0
 *   Y[t] = [hf_t ; hb_t]  (concat)   or   (hf_t + hb_t + 1) >> 1  (avg)
 * encdec (layers enc_1 .. enc_E, decoder):
 *   encoder stack over X as the stream runs it (vector [h_E .. h_1, x_t]); context c = h_E after t = n-1
 *   d_{-1} = c (GE_CTX_INIT) or 0;  d_t = gru([d_{t-1}; X[t] (; c if GE_CTX_INPUT)])
 * then logits[t] = head(Y_last[t] or d_t), argmax, the stream's debounce from step `delay` on.
 *
 * Arena layout (each part rounded up to 8 bytes): filter state int64 [n_inputs][n_sections][2];
 * sequence A int16 [n][wa] (X, then the outputs of odd levels); sequence B int16 [n][wb] (outputs
 * of even levels; encdec: none); working vector int16 (bidir: widest [h; input]; encdec: the
 * encoder's [h_E .. h_1, x] and the decoder's [d; x; c]); aux int16 (widest layer aux; encdec:
 * the encoder layers' together); h_new int16 (widest layer above GE_BLOCK units); acc int32
 * (largest ge_layer_scratch(), at least the head's classes rounded up to 4); logits int16 [n_classes].
 */
#include "ge_window.h"

#include <string.h>

#include "ge_argmax.h"
#include "ge_dense.h"
#include "ge_events.h"
#include "ge_layers.h"
#include "ge_math.h"
#include "ge_mounting.h"
#include "ge_preproc.h"

#define GE_ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

/* Widths of the two sequence buffers, working vector, aux, h_new and int32 scratch words. */
typedef struct {
    size_t wa, wb, vec, aux, hnew, acc;
} ge_window_sizes;

static size_t level_width(const ge_window_model *m, const ge_rnn_params *f)
{
    return m->mode == GE_MERGE_CONCAT ? 2u * (size_t)f->hidden : (size_t)f->hidden;
}

static void window_sizes(const ge_window_model *m, ge_window_sizes *z)
{
    uint16_t l;
    z->wa = m->pre.in_pad;
    z->wb = 0;
    z->vec = 0;
    z->aux = 0;
    z->hnew = 0;
    z->acc = 4u * ((m->n_classes + 3u) / 4u);
    for (l = 0; l < m->n_layers; l++) {
        const ge_rnn_params *p = &m->layers[l];
        const size_t s = ge_layer_scratch(p);
        if (p->hidden > GE_BLOCK && p->hidden > z->hnew) z->hnew = p->hidden;
        if (s > z->acc) z->acc = s;
    }
    if (m->arch == GE_WINDOW_BIDIR) {
        for (l = 0; l < m->n_layers; l += 2) {
            const ge_rnn_params *p = &m->layers[l];
            const size_t w = level_width(m, p);
            if ((l / 2u) % 2u == 0) {
                if (w > z->wb) z->wb = w;
            } else if (w > z->wa) {
                z->wa = w;
            }
            if ((size_t)p->hidden + p->in_size > z->vec) z->vec = (size_t)p->hidden + p->in_size;
            if (p->aux > z->aux) z->aux = p->aux;
        }
    } else {
        const ge_rnn_params *dec = &m->layers[m->n_layers - 1];
        z->vec = m->pre.in_pad;
        for (l = 0; l + 1u < m->n_layers; l++) {
            z->vec += m->layers[l].hidden;
            z->aux += m->layers[l].aux;
        }
        z->vec += (size_t)dec->hidden + dec->in_size;
    }
}

static ge_status check_layer_shape(const ge_rnn_params *p)
{
    const ge_status s = ge_layer_check(p);
    if (s != GE_OK) return s;
    if (p->hidden < 4 || p->hidden % 4u || p->in_size < 2 || p->in_size % 2u) return GE_ERR_MODEL;
    if ((uint32_t)p->hidden + p->in_size > GE_MAX_ROW_INPUTS) return GE_ERR_MODEL;
    return GE_OK;
}

ge_status ge_window_check(const ge_window_model *m)
{
    uint16_t l;
    size_t width;
    if (m == NULL || m->layers == NULL) return GE_ERR_NULL;
    if (m->magic != GE_WINDOW_MAGIC || m->spec_version != GE_SPEC_VERSION) return GE_ERR_MODEL;
    if (m->n_layers < 2 || m->n_classes < 2 || m->n_classes > GE_MAX_CLASSES) return GE_ERR_MODEL;
    if (m->pre.n_inputs < 1 || m->pre.in_pad != m->pre.n_inputs + (m->pre.n_inputs & 1u)) return GE_ERR_MODEL;
    if (m->pre.norm_mult == NULL || m->pre.norm_bias == NULL) return GE_ERR_NULL;
    if (m->pre.n_sections > 8 || (m->pre.n_sections && (m->pre.sos == NULL || m->pre.zi == NULL)))
        return GE_ERR_MODEL;
    if (m->head.weights == NULL || m->head.mult == NULL) return GE_ERR_NULL;
    if (m->head.rows != m->n_classes || m->events.swing >= (int)m->n_classes) return GE_ERR_MODEL;
    for (l = 0; l < m->n_layers; l++) {
        const ge_status s = check_layer_shape(&m->layers[l]);
        if (s != GE_OK) return s;
    }
    if (m->arch == GE_WINDOW_BIDIR) {
        if (m->n_layers % 2u || (m->mode != GE_MERGE_CONCAT && m->mode != GE_MERGE_AVG)) return GE_ERR_MODEL;
        width = m->pre.in_pad;
        for (l = 0; l < m->n_layers; l += 2) {
            const ge_rnn_params *f = &m->layers[l], *b = &m->layers[l + 1];
            if (f->kind != b->kind || f->hidden != b->hidden || f->aux != b->aux) return GE_ERR_MODEL;
            if (f->in_size != width || b->in_size != width) return GE_ERR_MODEL;
            width = level_width(m, f);
        }
        return m->head.cols == width ? GE_OK : GE_ERR_MODEL;
    }
    if (m->arch == GE_WINDOW_ENCDEC) {
        const ge_rnn_params *dec = &m->layers[m->n_layers - 1], *last = &m->layers[m->n_layers - 2];
        if (m->mode > (GE_CTX_INIT | GE_CTX_INPUT) || dec->kind != GE_LAYER_GRU) return GE_ERR_MODEL;
        if (m->layers[0].in_size != m->pre.in_pad) return GE_ERR_MODEL;
        for (l = 1; l + 1u < m->n_layers; l++)
            if (m->layers[l].in_size != m->layers[l - 1].hidden) return GE_ERR_MODEL;
        if ((m->mode & GE_CTX_INIT) && dec->hidden != last->hidden) return GE_ERR_MODEL;
        if (dec->in_size != m->pre.in_pad + ((m->mode & GE_CTX_INPUT) ? last->hidden : 0u)) return GE_ERR_MODEL;
        return m->head.cols == dec->hidden ? GE_OK : GE_ERR_MODEL;
    }
    return GE_ERR_UNSUPPORTED;
}

size_t ge_window_arena_bytes(const ge_window_model *m, uint32_t n)
{
    ge_window_sizes z;
    size_t b;
    if (ge_window_check(m) != GE_OK) return 0;
    window_sizes(m, &z);
    b = GE_ALIGN8((size_t)m->pre.n_inputs * m->pre.n_sections * 2u * sizeof(int64_t));
    b += GE_ALIGN8((size_t)n * z.wa * sizeof(int16_t));
    b += GE_ALIGN8((size_t)n * z.wb * sizeof(int16_t));
    b += GE_ALIGN8(z.vec * sizeof(int16_t));
    b += GE_ALIGN8(z.aux * sizeof(int16_t));
    b += GE_ALIGN8(z.hnew * sizeof(int16_t));
    b += GE_ALIGN8(z.acc * sizeof(int32_t));
    b += GE_ALIGN8((size_t)m->n_classes * sizeof(int16_t));
    return b;
}

/* Working memory carved out of the arena. */
typedef struct {
    int16_t *a, *b, *vec, *aux, *h_new, *logits;
    int32_t *acc;
    size_t wa, wb;
} ge_window_mem;

/* Head, argmax and debounce of step t over the features h. */
static void emit(const ge_window_model *m, const int16_t *h, uint32_t t, ge_window_mem *w, ge_events_state *ev,
                 int16_t *logits, int8_t *labels)
{
    int16_t *lg = logits != NULL ? logits + (size_t)t * m->n_classes : w->logits;
    int raw;
    (void)ge_dense(&m->head, h, lg, w->acc);
    raw = ge_argmax(lg, m->n_classes);
    if (t >= m->delay) {
        uint8_t e;
        int32_t es;
        const int lab = ge_events_update(&m->events, ev, raw, (int32_t)(t - m->delay), &e, &es);
        if (labels != NULL) labels[t] = (int8_t)lab;
    } else if (labels != NULL) {
        labels[t] = -1;
    }
}

/* One direction of a level over the window: in[t] (stride win) -> out[t] + off (stride wout). */
static ge_status run_direction(const ge_rnn_params *p, int backward, int avg, uint32_t n, const int16_t *in,
                               size_t win, int16_t *out, size_t wout, size_t off, ge_window_mem *w)
{
    const size_t hp = p->hidden;
    uint32_t i;
    memset(w->vec, 0, hp * sizeof(int16_t));
    if (p->aux) memset(w->aux, 0, p->aux * sizeof(int16_t));
    for (i = 0; i < n; i++) {
        const uint32_t t = backward ? n - 1u - i : i;
        int16_t *y = out + (size_t)t * wout;
        ge_status s;
        memcpy(w->vec + hp, in + (size_t)t * win, p->in_size * sizeof(int16_t));
        s = ge_layer_step(p, w->vec, w->aux, w->h_new, w->acc);
        if (s != GE_OK) return s;
        if (avg) {
            size_t j;
            for (j = 0; j < hp; j++) y[j] = (int16_t)ge_asr32((int32_t)y[j] + w->vec[j] + 1, 1);
        } else {
            memcpy(y + off, w->vec, hp * sizeof(int16_t));
        }
    }
    return GE_OK;
}

static ge_status run_bidir(const ge_window_model *m, uint32_t n, ge_window_mem *w, int16_t *logits, int8_t *labels)
{
    int16_t *in = w->a, *out = w->b;
    size_t win = w->wa, wout = w->wb;
    ge_events_state ev;
    uint16_t l;
    uint32_t t;
    for (l = 0; l < m->n_layers; l += 2) {
        const ge_rnn_params *f = &m->layers[l], *b = &m->layers[l + 1];
        const int avg = m->mode == GE_MERGE_AVG;
        int16_t *tp;
        size_t tw;
        ge_status s = run_direction(f, 0, 0, n, in, win, out, wout, 0, w);
        if (s != GE_OK) return s;
        s = run_direction(b, 1, avg, n, in, win, out, wout, f->hidden, w);
        if (s != GE_OK) return s;
        tp = in, in = out, out = tp;
        tw = win, win = wout, wout = tw;
    }
    ge_events_reset(&ev);
    for (t = 0; t < n; t++) emit(m, in + (size_t)t * win, t, w, &ev, logits, labels);
    return GE_OK;
}

static ge_status run_encdec(const ge_window_model *m, uint32_t n, ge_window_mem *w, int16_t *logits, int8_t *labels)
{
    const uint16_t n_enc = (uint16_t)(m->n_layers - 1u);
    const ge_rnn_params *dec = &m->layers[n_enc];
    const size_t ip = m->pre.in_pad, ctx_n = m->layers[n_enc - 1u].hidden;
    size_t xoff = 0, off;
    int16_t *dv;
    ge_events_state ev;
    uint16_t l;
    uint32_t t;
    for (l = 0; l < n_enc; l++) xoff += m->layers[l].hidden;
    dv = w->vec + xoff + ip; /* decoder vector [d; x; (c)] after the encoder's [h_E .. h_1, x] */
    memset(w->vec, 0, (xoff + ip) * sizeof(int16_t));
    {
        size_t aux = 0;
        for (l = 0; l < n_enc; l++) aux += m->layers[l].aux;
        if (aux) memset(w->aux, 0, aux * sizeof(int16_t));
    }
    for (t = 0; t < n; t++) {
        int16_t *aux = w->aux;
        memcpy(w->vec + xoff, w->a + (size_t)t * w->wa, ip * sizeof(int16_t));
        off = xoff;
        for (l = 0; l < n_enc; l++) {
            const ge_rnn_params *p = &m->layers[l];
            ge_status s;
            off -= p->hidden;
            s = ge_layer_step(p, w->vec + off, aux, w->h_new, w->acc);
            if (s != GE_OK) return s;
            aux += p->aux;
        }
    }
    /* the context is h_E, the start of the encoder vector */
    if (m->mode & GE_CTX_INIT)
        memcpy(dv, w->vec, ctx_n * sizeof(int16_t));
    else
        memset(dv, 0, dec->hidden * sizeof(int16_t));
    if (m->mode & GE_CTX_INPUT) memcpy(dv + dec->hidden + ip, w->vec, ctx_n * sizeof(int16_t));
    ge_events_reset(&ev);
    for (t = 0; t < n; t++) {
        ge_status s;
        memcpy(dv + dec->hidden, w->a + (size_t)t * w->wa, ip * sizeof(int16_t));
        s = ge_layer_step(dec, dv, NULL, w->h_new, w->acc);
        if (s != GE_OK) return s;
        emit(m, dv, t, w, &ev, logits, labels);
    }
    return GE_OK;
}

ge_status ge_window_run(const ge_window_model *m, const int16_t *counts, uint32_t n, void *arena,
                        size_t arena_bytes, int16_t *logits, int8_t *labels)
{
    return ge_window_run_mounted(m, NULL, counts, n, arena, arena_bytes, logits, labels);
}

ge_status ge_window_run_mounted(const ge_window_model *m, const ge_mounting *mount, const int16_t *counts,
                                uint32_t n, void *arena, size_t arena_bytes, int16_t *logits, int8_t *labels)
{
    unsigned char *p = (unsigned char *)arena;
    ge_window_sizes z;
    ge_window_mem w;
    int64_t *filt;
    uint8_t primed = 0;
    uint32_t t;
    ge_status s;
    if (arena == NULL || (counts == NULL && n > 0)) return GE_ERR_NULL;
    s = ge_window_check(m);
    if (s != GE_OK) return s;
    if (((uintptr_t)arena & 7u) != 0 || arena_bytes < ge_window_arena_bytes(m, n)) return GE_ERR_BUFFER;
    if (mount != NULL && mount->n_triads == 0) mount = NULL;
    if (mount != NULL && ge_mounting_check(mount, m->pre.n_inputs) != GE_OK) return GE_ERR_MOUNTING;
    if (n == 0) return GE_OK;
    window_sizes(m, &z);
    filt = (int64_t *)(void *)p;
    p += GE_ALIGN8((size_t)m->pre.n_inputs * m->pre.n_sections * 2u * sizeof(int64_t));
    w.a = (int16_t *)(void *)p;
    p += GE_ALIGN8((size_t)n * z.wa * sizeof(int16_t));
    w.b = (int16_t *)(void *)p;
    p += GE_ALIGN8((size_t)n * z.wb * sizeof(int16_t));
    w.vec = (int16_t *)(void *)p;
    p += GE_ALIGN8(z.vec * sizeof(int16_t));
    w.aux = (int16_t *)(void *)p;
    p += GE_ALIGN8(z.aux * sizeof(int16_t));
    w.h_new = (int16_t *)(void *)p;
    p += GE_ALIGN8(z.hnew * sizeof(int16_t));
    w.acc = (int32_t *)(void *)p;
    p += GE_ALIGN8(z.acc * sizeof(int32_t));
    w.logits = (int16_t *)(void *)p;
    w.wa = z.wa;
    w.wb = z.wb;
    for (t = 0; t < n; t++) {
        const int16_t *c = counts + (size_t)t * m->pre.n_inputs;
        int16_t *x = w.a + (size_t)t * z.wa;
        if (mount != NULL) { /* rotate into X[t], then preprocess it in place */
            ge_mounting_apply(mount, c, x, m->pre.n_inputs);
            c = x;
        }
        ge_preproc_step(&m->pre, c, filt, &primed, x);
    }
    return m->arch == GE_WINDOW_BIDIR ? run_bidir(m, n, &w, logits, labels) : run_encdec(m, n, &w, logits, labels);
}
