/* ge_reservoir.h - one step of a leaky tanh reservoir (echo state network) in the fixed-point spec. */
#ifndef GE_RESERVOIR_H
#define GE_RESERVOIR_H

#include <stddef.h>

#include "gaitedge_rt.h"

/**
 * Descriptor checks of a GE_LAYER_RESERVOIR layer: aux 0, cell_frac 0, leak in
 * 1..32768 (Q15), and an `extra` that is exactly the sparse matrix it announces
 * (row group counts summing to G, n_extra = 2 + hidden/4 + 3G, column indices
 * below hidden).  GE_OK, GE_ERR_NULL or GE_ERR_MODEL.
 */
ge_status ge_reservoir_check(const ge_rnn_params *p);

/** int32 scratch words of one step: one pre-activation per unit. */
size_t ge_reservoir_scratch(const ge_rnn_params *p);

/**
 * v: [hidden + in_size] int16, the reservoir state followed by its input; the
 * state is replaced by the new one.  acc: scratch of ge_reservoir_scratch(p) words.
 */
ge_status ge_reservoir_step(const ge_rnn_params *p, int16_t *v, int32_t *acc);

#endif
