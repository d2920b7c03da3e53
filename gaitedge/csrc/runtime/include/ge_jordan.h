/* ge_jordan.h - one Jordan-network step (output feedback) in the fixed-point spec. */
#ifndef GE_JORDAN_H
#define GE_JORDAN_H

#include <stddef.h>

#include "gaitedge_rt.h"

/**
 * v: [hidden + in_size] int16, the layer's h followed by its input; the h part is
 * overwritten with the new hidden state (the old one is not read: the recurrence
 * goes through the output).  y: the fed-back output [p->aux] (int16 Q0.15,
 * sigmoid of the layer's own logits), replaced by this step's.  acc: scratch of
 * ge_jordan_scratch(p) int32 words.
 */
ge_status ge_jordan_step(const ge_rnn_params *p, int16_t *v, int16_t *y, int32_t *acc);

/** int32 scratch words of one step: max(2 * hidden, output rows). */
size_t ge_jordan_scratch(const ge_rnn_params *p);

/** Descriptor checks: aux (fed-back outputs) even, 2..GE_MAX_CLASSES; no extra constants. */
ge_status ge_jordan_check(const ge_rnn_params *p);

#endif
