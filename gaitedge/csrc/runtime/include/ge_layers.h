/* ge_layers.h - dispatch over the layer kinds of the streaming stack. */
#ifndef GE_LAYERS_H
#define GE_LAYERS_H

#include "gaitedge_rt.h"

/**
 * Kind-specific checks of one layer's descriptor (sizes, aux, extra); GE_OK or
 * GE_ERR_UNSUPPORTED for an unknown kind, GE_ERR_MODEL / GE_ERR_NULL otherwise.
 */
ge_status ge_layer_check(const ge_rnn_params *p);

/** int32 scratch words (st->acc) one step of the layer needs. */
size_t ge_layer_scratch(const ge_rnn_params *p);

/**
 * One step of a layer.  v: [hidden + in_size] int16, the layer's h followed by its
 * input (h is replaced by the new state); aux: the layer's [p->aux] int16 state;
 * h_new: scratch [hidden] (layers wider than GE_BLOCK); acc: int32 scratch of
 * ge_layer_scratch(p) words.
 */
ge_status ge_layer_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int16_t *h_new, int32_t *acc);

#endif
