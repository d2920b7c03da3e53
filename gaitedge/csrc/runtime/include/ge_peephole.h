/* ge_peephole.h - one LSTM step with peephole connections in the fixed-point spec. */
#ifndef GE_PEEPHOLE_H
#define GE_PEEPHOLE_H

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's h followed by its input; the h part is
 * replaced by the new state.  c: cell state [hidden] (Q(15-cell_frac).cell_frac),
 * updated.  h_new: scratch [hidden] (layers wider than GE_BLOCK); acc: scratch
 * [4 * GE_BLOCK] int32.  p->extra: peephole constants [P_i | P_f | P_o], hidden each.
 */
ge_status ge_peephole_step(const ge_rnn_params *p, int16_t *v, int16_t *c, int16_t *h_new, int32_t *acc);

/** Descriptor checks: cell_frac 8..12, aux = hidden (the cell), n_extra = 3 * hidden, |P| < 2^15. */
ge_status ge_peephole_check(const ge_rnn_params *p);

#endif
