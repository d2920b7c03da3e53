/* ge_events.h - causal label debounce and gait-event (transition) detector. */
#ifndef GE_EVENTS_H
#define GE_EVENTS_H

#include "gaitedge_rt.h"

void ge_events_reset(ge_events_state *s);
/**
 * Feed the raw label of `sample`.  Returns the confirmed (debounced) label;
 * *event receives GE_EVENT_* and *event_sample the sample where the new label
 * began (-1 if no event).
 */
int ge_events_update(const ge_events_params *p, ge_events_state *s, int label, int32_t sample, uint8_t *event,
                     int32_t *event_sample);

#endif
