/* ge_tcn.h - one residual block of a temporal convolutional network, streamed (QUANTIZATION.md, "TCN blocks"). */
#ifndef GE_TCN_H
#define GE_TCN_H

#include <stddef.h>

#include "gaitedge_rt.h"

/** int16 words of a block's state before its ring buffers (ring position, pad). */
#define GE_TCN_HEADER 2u

/**
 * Descriptor checks of a GE_LAYER_TCN layer: kernel size (cell_frac) 2..16, extra =
 * {dilation >= 1, 1x1 residual conv 0/1, identity shift -15..15}, aux = GE_TCN_HEADER
 * + (K-1) d (in_size + hidden), K in_size and K hidden at most GE_MAX_ROW_INPUTS.
 */
ge_status ge_tcn_check(const ge_rnn_params *p);

/** int32 scratch words one step needs: 2 hidden accumulators plus the int16 window. */
size_t ge_tcn_scratch(const ge_rnn_params *p);

/**
 * One sample through the block.  v: [hidden + in_size] int16, the block output
 * (replaced) followed by its input; aux: [p->aux] int16, the ring position and the
 * ring buffers of past inputs and conv1 outputs; acc: ge_tcn_scratch(p) int32 words.
 * GE_ERR_STATE if the ring position is corrupt.
 */
ge_status ge_tcn_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int32_t *acc);

#endif
