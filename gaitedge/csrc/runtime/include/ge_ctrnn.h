/* ge_ctrnn.h - one CTRNN (leaky integrator) step in the fixed-point spec (QUANTIZATION.md). */
#ifndef GE_CTRNN_H
#define GE_CTRNN_H

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's z = 2 sigmoid(u) - 1 (Q0.15) followed by its
 * input; the z part is replaced by the new one.  u: [hidden] int16 potentials in
 * Q(15-cell_frac).cell_frac (the layer's aux state), updated.  h_new: scratch [hidden];
 * acc: scratch [4 * GE_BLOCK] int32.  extra: [hidden] A = round(dt/tau 2^(12+cell_frac)).
 */
/** Descriptor check: cell_frac in 8..12, aux == hidden (u), n_extra == hidden (A). */
ge_status ge_ctrnn_check(const ge_rnn_params *p);

ge_status ge_ctrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *u, int16_t *h_new, int32_t *acc);

#endif
