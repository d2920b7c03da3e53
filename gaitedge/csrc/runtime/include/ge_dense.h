/* ge_dense.h - dense head: int8 weights, Q0.15 input, int16 logits. */
#ifndef GE_DENSE_H
#define GE_DENSE_H

#include "gaitedge_rt.h"

/** logits[k] = sat16(mulhr(bias[k] + sum_j W[k][j] h[j], mult[k])); acc: scratch [rows rounded up to 4]. */
ge_status ge_dense(const ge_dense_params *p, const int16_t *h, int16_t *logits, int32_t *acc);

#endif
