/* ge_lstm.h - one LSTM step in the fixed-point spec (QUANTIZATION.md). */
#ifndef GE_LSTM_H
#define GE_LSTM_H

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's hidden state followed by its input;
 * the hidden part is replaced by the new state.  h_new: scratch [hidden];
 * acc: scratch [4 * GE_BLOCK] int32.
 * c: cell state [hidden] (int16, Q(15-cell_frac).cell_frac), updated.
 */
ge_status ge_lstm_step(const ge_rnn_params *p, int16_t *v, int16_t *c, int16_t *h_new, int32_t *acc);

#endif
