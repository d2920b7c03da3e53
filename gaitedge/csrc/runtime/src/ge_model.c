/*
 * ge_model.c - the streaming step and the whole-window call over a model descriptor.
 *
 * Arena layout (each part rounded up to 8 bytes): filter state int64
 * [n_inputs][n_sections][2]; vec int16 [h_L .. h_1, x]; aux int16 (every
 * layer's state besides h, layers in order); h_new int16 [widest layer above
 * GE_BLOCK units, else none]; acc int32 [largest ge_layer_scratch(), at least the
 * head's classes rounded up to 4]; logits int16 [n_classes].
 */
#include "gaitedge_rt.h"

#include <string.h>

#include "ge_argmax.h"
#include "ge_dense.h"
#include "ge_events.h"
#include "ge_layers.h"
#include "ge_mounting.h"
#include "ge_preproc.h"

#define GE_ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

static size_t vec_len(const ge_model *m)
{
    size_t n = m->pre.in_pad;
    uint16_t l;
    for (l = 0; l < m->n_layers; l++) n += m->layers[l].hidden;
    return n;
}

ge_status ge_check_model(const ge_model *m)
{
    uint16_t l;
    size_t off = 0, vlen, all = 0;
    if (m == NULL || m->layers == NULL) return GE_ERR_NULL;
    if (m->magic != GE_MODEL_MAGIC || m->spec_version != GE_SPEC_VERSION) return GE_ERR_MODEL;
    if (m->n_layers < 1 || m->n_classes < 2 || m->n_classes > GE_MAX_CLASSES) return GE_ERR_MODEL;
    if (m->pre.n_inputs < 1 || m->pre.in_pad != m->pre.n_inputs + (m->pre.n_inputs & 1u)) return GE_ERR_MODEL;
    if (m->pre.norm_mult == NULL || m->pre.norm_bias == NULL) return GE_ERR_NULL;
    for (l = 0; l < m->pre.n_inputs; l++) { /* counts * norm_mult + norm_bias must fit int32 (as exported) */
        const int64_t nm = m->pre.norm_mult[l], nb = m->pre.norm_bias[l];
        if ((nm < 0 ? -nm : nm) * 32768 + (nb < 0 ? -nb : nb) >= 0x80000000LL) return GE_ERR_MODEL;
    }
    if (m->pre.n_sections > 8 || (m->pre.n_sections && (m->pre.sos == NULL || m->pre.zi == NULL)))
        return GE_ERR_MODEL;
    vlen = vec_len(m);
    for (l = 0; l < m->n_layers; l++) all += m->layers[l].hidden;
    /* layer l's h starts after h_L .. h_(l+1); its input is the in_size words after its h */
    for (l = m->n_layers; l-- > 0;) {
        const ge_rnn_params *p = &m->layers[l];
        const ge_status s = ge_layer_check(p);
        if (s != GE_OK) return s;
        if (p->hidden < 4 || p->hidden % 4u || p->in_size < 2 || p->in_size % 2u) return GE_ERR_MODEL;
        if (off + p->hidden + p->in_size > vlen) return GE_ERR_MODEL;
        if ((uint32_t)p->hidden + p->in_size > GE_MAX_ROW_INPUTS) return GE_ERR_MODEL;
        off += p->hidden;
    }
    if (m->head.weights == NULL || m->head.mult == NULL) return GE_ERR_NULL;
    if (m->head.rows != m->n_classes) return GE_ERR_MODEL;
    if (m->head.cols != m->layers[m->n_layers - 1].hidden && m->head.cols != all) return GE_ERR_MODEL;
    if (m->events.swing >= (int)m->n_classes) return GE_ERR_MODEL;
    return GE_OK;
}

/* Sizes of the arena parts: layer aux state, h_new (layers wider than GE_BLOCK), int32 scratch words. */
static void arena_sizes(const ge_model *m, size_t *aux, size_t *hnew, size_t *acc)
{
    uint16_t l;
    *aux = 0;
    *hnew = 0;
    *acc = 4u * ((m->n_classes + 3u) / 4u);
    for (l = 0; l < m->n_layers; l++) {
        const size_t h = m->layers[l].hidden, s = ge_layer_scratch(&m->layers[l]);
        *aux += m->layers[l].aux;
        if (h > GE_BLOCK && h > *hnew) *hnew = h;
        if (s > *acc) *acc = s;
    }
}

size_t ge_arena_bytes(const ge_model *m)
{
    size_t aux, hnew, acc, n;
    if (ge_check_model(m) != GE_OK) return 0;
    arena_sizes(m, &aux, &hnew, &acc);
    n = GE_ALIGN8((size_t)m->pre.n_inputs * m->pre.n_sections * 2u * sizeof(int64_t));
    n += GE_ALIGN8(vec_len(m) * sizeof(int16_t));
    n += GE_ALIGN8(aux * sizeof(int16_t));
    n += GE_ALIGN8(hnew * sizeof(int16_t));
    n += GE_ALIGN8(acc * sizeof(int32_t));
    n += GE_ALIGN8((size_t)m->n_classes * sizeof(int16_t));
    return n;
}

ge_status ge_init(ge_state *st, const ge_model *m, void *arena, size_t arena_bytes)
{
    unsigned char *p = (unsigned char *)arena;
    size_t aux, hnew, acc;
    ge_status s;
    if (st == NULL || arena == NULL) return GE_ERR_NULL;
    st->model = NULL;
    memset(&st->mount, 0, sizeof st->mount);
    s = ge_check_model(m);
    if (s != GE_OK) return s;
    if (((uintptr_t)arena & 7u) != 0 || arena_bytes < ge_arena_bytes(m)) return GE_ERR_BUFFER;
    arena_sizes(m, &aux, &hnew, &acc);
    st->filt = (int64_t *)(void *)p;
    p += GE_ALIGN8((size_t)m->pre.n_inputs * m->pre.n_sections * 2u * sizeof(int64_t));
    st->vec = (int16_t *)(void *)p;
    p += GE_ALIGN8(vec_len(m) * sizeof(int16_t));
    st->aux = (int16_t *)(void *)p;
    p += GE_ALIGN8(aux * sizeof(int16_t));
    st->h_new = (int16_t *)(void *)p;
    p += GE_ALIGN8(hnew * sizeof(int16_t));
    st->acc = (int32_t *)(void *)p;
    p += GE_ALIGN8(acc * sizeof(int32_t));
    st->logits = (int16_t *)(void *)p;
    st->model = m;
    return ge_reset(st);
}

ge_status ge_reset(ge_state *st)
{
    const ge_model *m;
    size_t aux = 0;
    uint16_t l;
    if (st == NULL) return GE_ERR_NULL;
    m = st->model;
    if (m == NULL) return GE_ERR_STATE;
    for (l = 0; l < m->n_layers; l++) aux += m->layers[l].aux;
    memset(st->vec, 0, vec_len(m) * sizeof(int16_t));
    if (aux) memset(st->aux, 0, aux * sizeof(int16_t));
    memset(st->logits, 0, m->n_classes * sizeof(int16_t));
    st->primed = 0;
    st->step = 0;
    ge_events_reset(&st->ev);
    return GE_OK;
}

ge_status ge_step(ge_state *st, const int16_t *counts, ge_output *out)
{
    const ge_model *m;
    size_t off;
    int16_t *aux;
    uint16_t l;
    int raw;
    if (st == NULL || counts == NULL) return GE_ERR_NULL;
    m = st->model;
    if (m == NULL) return GE_ERR_STATE;
    off = vec_len(m) - m->pre.in_pad;
    if (st->mount.n_triads) { /* rotate into the input slot, then preprocess it in place */
        ge_mounting_apply(&st->mount, counts, st->vec + off, m->pre.n_inputs);
        counts = st->vec + off;
    }
    ge_preproc_step(&m->pre, counts, st->filt, &st->primed, st->vec + off);
    aux = st->aux;
    for (l = 0; l < m->n_layers; l++) {
        const ge_rnn_params *p = &m->layers[l];
        ge_status s;
        off -= p->hidden;
        s = ge_layer_step(p, st->vec + off, aux, st->h_new, st->acc);
        aux += p->aux;
        if (s != GE_OK) return s;
    }
    (void)ge_dense(&m->head, st->vec, st->logits, st->acc);
    raw = ge_argmax(st->logits, m->n_classes);
    if (out != NULL) {
        out->logits = st->logits;
        out->raw_label = (int8_t)raw;
        out->sample = (int32_t)st->step - (int32_t)m->delay;
        out->label = -1;
        out->event = GE_EVENT_NONE;
        out->event_sample = -1;
    }
    if (st->step >= m->delay) {
        uint8_t ev;
        int32_t evs;
        const int lab = ge_events_update(&m->events, &st->ev, raw, (int32_t)(st->step - m->delay), &ev, &evs);
        if (out != NULL) {
            out->label = (int8_t)lab;
            out->event = ev;
            out->event_sample = evs;
        }
    }
    st->step++;
    return GE_OK;
}

ge_status ge_run(ge_state *st, const int16_t *counts, uint32_t n, int8_t *labels, ge_event *events,
                 uint32_t max_events, uint32_t *n_events)
{
    uint32_t t, found = 0;
    ge_output o;
    if (st == NULL || (counts == NULL && n > 0)) return GE_ERR_NULL;
    if (st->model == NULL) return GE_ERR_STATE;
    for (t = 0; t < n; t++) {
        const ge_status s = ge_step(st, counts + (size_t)t * st->model->pre.n_inputs, &o);
        if (s != GE_OK) return s;
        if (labels != NULL) labels[t] = o.label;
        if (o.event != GE_EVENT_NONE) {
            if (events != NULL && found < max_events) {
                events[found].kind = o.event;
                events[found].sample = o.event_sample;
            }
            found++;
        }
    }
    if (n_events != NULL) *n_events = found;
    return GE_OK;
}
