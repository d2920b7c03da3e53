/* ge_matvec.h - int8 x int16 matrix-vector kernel over packed 4-row groups. */
#ifndef GE_MATVEC_H
#define GE_MATVEC_H

#include <stdint.h>

/**
 * For each of `ngroups` packed 4-row groups: acc[4g + r] = bias[r] + sum_k W[r][k] * x[k]
 * over `ncols` (even) columns of x, where each group's four int32 biases lead its
 * weight words.  Returns the weight pointer after the last group.
 * Packing: QUANTIZATION.md, "Weight packing".
 */
const uint32_t *ge_matvec4(const uint32_t *w, const int16_t *x, uint32_t ncols, uint32_t ngroups, int32_t *acc);

/** Words one packed group of 4 rows over ncols columns occupies (biases included). */
#define GE_GROUP_WORDS(ncols) (4u + ((ncols) / 4u) * 4u + (((ncols) & 2u) ? 2u : 0u))

#endif
