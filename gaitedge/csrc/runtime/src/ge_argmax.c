/* ge_argmax.c - index of the largest value; the lowest index wins ties. */
#include "ge_argmax.h"

int ge_argmax(const int16_t *v, uint16_t n)
{
    int best = 0;
    uint16_t k;
    for (k = 1; k < n; k++)
        if (v[k] > v[best]) best = (int)k;
    return best;
}
