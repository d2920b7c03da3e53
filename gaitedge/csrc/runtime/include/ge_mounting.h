/* ge_mounting.h - sensor mounting: rotate each IMU triad of raw counts into the canonical frame. */
#ifndef GE_MOUNTING_H
#define GE_MOUNTING_H

#include "gaitedge_rt.h"

/**
 * GE_OK when m (non-NULL) fits a model with n_inputs channels: n_triads <= GE_MAX_TRIADS,
 * every index < n_inputs, no channel in two places, entries in [-2^14, 2^14];
 * else GE_ERR_MOUNTING.
 */
ge_status ge_mounting_check(const ge_mounting *m, uint16_t n_inputs);

/**
 * out[0 .. n_inputs) = counts with every triad of m rotated (m checked, n_triads >= 1):
 *     out[idx[i]] = sat16((sum_j rot[3i + j] * counts[idx[j]] + 2^13) >> 14)
 * int32 arithmetic (|sum| < 3 * 2^29 + 2^13 < 2^31).  out may equal counts.
 */
void ge_mounting_apply(const ge_mounting *m, const int16_t *counts, int16_t *out, uint16_t n_inputs);

#endif
