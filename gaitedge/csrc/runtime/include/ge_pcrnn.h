/* ge_pcrnn.h - one PCRNN (two-level predictive-coding RNN) step in the fixed-point spec (QUANTIZATION.md). */
#ifndef GE_PCRNN_H
#define GE_PCRNN_H

#include <stddef.h>

#include "gaitedge_rt.h"

/** Entries of ge_rnn_params.extra of a PCRNN layer: K (relaxation steps), A1, A2 (dt / tau, Q0.15). */
#define GE_PCRNN_N_EXTRA 3

/** Descriptor checks of a PCRNN layer (sizes, extra, state fraction bits). */
ge_status ge_pcrnn_check(const ge_rnn_params *p);

/** int32 scratch words one ge_pcrnn_step() needs. */
size_t ge_pcrnn_scratch(const ge_rnn_params *p);

/**
 * v: [hidden + in_size] int16, the top level p2 (Q(15-f).f, f = cell_frac) followed by
 * the layer's input (Q0.15); p2 is replaced by the relaxed top level.  aux: [p->aux]
 * int16, the lower level p1 (Q(15-f).f), updated in place.  acc: int32 scratch of
 * ge_pcrnn_scratch(p) words.
 */
ge_status ge_pcrnn_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int32_t *acc);

#endif
