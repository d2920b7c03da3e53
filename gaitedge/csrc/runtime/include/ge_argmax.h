/* ge_argmax.h - index of the largest value (lowest index on ties). */
#ifndef GE_ARGMAX_H
#define GE_ARGMAX_H

#include <stdint.h>

int ge_argmax(const int16_t *v, uint16_t n);

#endif
