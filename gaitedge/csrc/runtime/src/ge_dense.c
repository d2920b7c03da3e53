/* ge_dense.c - dense head: logits[k] = sat16(mulhr(bias[k] + sum_j W[k][j] h[j], mult[k])). */
#include "ge_dense.h"

#include "ge_math.h"
#include "ge_matvec.h"

ge_status ge_dense(const ge_dense_params *p, const int16_t *h, int16_t *logits, int32_t *acc)
{
    uint32_t k;
    (void)ge_matvec4(p->weights, h, p->cols, (p->rows + 3u) / 4u, acc);
    for (k = 0; k < p->rows; k++) logits[k] = (int16_t)ge_sat16(ge_mulhr(acc[k], p->mult[k]));
    return GE_OK;
}
