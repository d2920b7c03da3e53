/* ge_math.c - out-of-line entry points of the primitive operations (for tests). */
#include "ge_math.h"

int32_t ge_math_sigmoid(int32_t u) { return ge_sigmoid(ge_usat16(u)); }
int32_t ge_math_tanh(int32_t u) { return ge_tanh(ge_usat16(u)); }
int32_t ge_math_mulhr(int32_t a, int32_t m) { return ge_mulhr(a, m); }
