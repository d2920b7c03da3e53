/* ge_gru.h - one GRU step in the fixed-point spec (QUANTIZATION.md). */
#ifndef GE_GRU_H
#define GE_GRU_H

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's hidden state followed by its input;
 * the hidden part is replaced by the new state.  h_new: scratch [hidden];
 * acc: scratch [4 * GE_BLOCK] int32.
 */
ge_status ge_gru_step(const ge_rnn_params *p, int16_t *v, int16_t *h_new, int32_t *acc);

#endif
