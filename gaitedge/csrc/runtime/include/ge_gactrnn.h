/* ge_gactrnn.h - one gated adaptive CTRNN step in the fixed-point spec (QUANTIZATION.md). */
#ifndef GE_GACTRNN_H
#define GE_GACTRNN_H

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's z = 2 sigmoid(u) - 1 (Q0.15) followed by its
 * input; the z part is replaced by the new one.  u: [hidden] int16 potentials in
 * Q(15-cell_frac).cell_frac (aux), updated.  h_new: scratch [hidden]; acc: scratch
 * [4 * GE_BLOCK] int32 (uses 3 per unit).  extra: [hidden] A = round(dt/tau 2^17).
 */
/** Descriptor check: cell_frac in 8..12, aux == hidden (u), n_extra == hidden (A). */
ge_status ge_gactrnn_check(const ge_rnn_params *p);

ge_status ge_gactrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *u, int16_t *h_new, int32_t *acc);

#endif
