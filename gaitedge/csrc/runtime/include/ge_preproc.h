/* ge_preproc.h - raw int16 counts -> normalized, filtered Q0.15 model inputs. */
#ifndef GE_PREPROC_H
#define GE_PREPROC_H

#include "gaitedge_rt.h"

/**
 * counts: [n_inputs] raw sensor counts; x: [in_pad] Q0.15 output (padding zeroed);
 * filt: [n_inputs][n_sections][2] int64 state; *primed: 0 right after a reset
 * (the first sample then sets the filter to its steady state).  x may equal counts
 * (each channel is read before it is written).
 */
void ge_preproc_step(const ge_preproc_params *p, const int16_t *counts, int64_t *filt, uint8_t *primed,
                     int16_t *x);

#endif
