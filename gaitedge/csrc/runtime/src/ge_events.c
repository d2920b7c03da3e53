/*
 * ge_events.c - causal label debounce and transition detector.
 *
 * The first label after a reset is confirmed as is.  A run of a label different
 * from the confirmed one is adopted once it lasts min_run samples; the event is
 * reported at the sample where the run began: toe off when the new label is
 * swing, heel strike when the old one was.  Offline equivalent:
 * gaitedge.events.debounce_labels() followed by labels_to_events().
 */
#include "ge_events.h"

void ge_events_reset(ge_events_state *s)
{
    s->confirmed = -1;
    s->cand = -1;
    s->run = 0;
    s->start = 0;
}

int ge_events_update(const ge_events_params *p, ge_events_state *s, int label, int32_t sample, uint8_t *event,
                     int32_t *event_sample)
{
    const uint16_t cap = p->min_run > 1u ? p->min_run : 1u;
    *event = GE_EVENT_NONE;
    *event_sample = -1;
    if (s->confirmed < 0) {
        s->confirmed = (int8_t)label;
        s->cand = (int8_t)label;
        s->run = 1;
        s->start = sample;
        return label;
    }
    if (label == s->cand) {
        if (s->run < cap) s->run++;
    } else {
        s->cand = (int8_t)label;
        s->run = 1;
        s->start = sample;
    }
    if (s->cand != s->confirmed && s->run >= p->min_run) {
        const int old = s->confirmed;
        s->confirmed = s->cand;
        if (s->cand == p->swing) *event = GE_EVENT_TOE_OFF;
        else if (old == p->swing) *event = GE_EVENT_HEEL_STRIKE;
        if (*event != GE_EVENT_NONE) *event_sample = s->start;
    }
    return s->confirmed;
}
