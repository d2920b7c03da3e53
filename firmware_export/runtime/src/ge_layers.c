/*
 * ge_layers.c - dispatch over the layer kinds of the streaming stack.
 *
 * Adding a kind: a kernel file ge_<kind>.c with its header, a GE_LAYER_* code in
 * gaitedge_rt.h, one case in each function below, and the Python twin registered
 * in gaitedge.quant.kernels with the same code.
 */
#include "ge_layers.h"

#include "ge_ctrnn.h"
#include "ge_elman.h"
#include "ge_gactrnn.h"
#include "ge_gru.h"
#include "ge_jordan.h"
#include "ge_peephole.h"
#include "ge_lstm.h"
#include "ge_reservoir.h"
#include "ge_pcrnn.h"
#include "ge_tcn.h"

ge_status ge_layer_check(const ge_rnn_params *p)
{
    if (p->weights == NULL || p->mult == NULL) return GE_ERR_NULL;
    if (p->n_extra && p->extra == NULL) return GE_ERR_NULL;
    switch (p->kind) {
    case GE_LAYER_LSTM:
        if (p->cell_frac < 8 || p->cell_frac > 12 || p->aux != p->hidden) return GE_ERR_MODEL;
        return GE_OK;
    case GE_LAYER_GRU:
    case GE_LAYER_ELMAN:
        return p->aux == 0 ? GE_OK : GE_ERR_MODEL;
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_check(p);
    case GE_LAYER_JORDAN:
        return ge_jordan_check(p);
    case GE_LAYER_PEEPHOLE:
        return ge_peephole_check(p);
    case GE_LAYER_TCN:
        return ge_tcn_check(p);
    case GE_LAYER_PCRNN:
        return ge_pcrnn_check(p);
    case GE_LAYER_CTRNN:
        return ge_ctrnn_check(p);
    case GE_LAYER_GACTRNN:
        return ge_gactrnn_check(p);
    default:
        return GE_ERR_UNSUPPORTED;
    }
}

size_t ge_layer_scratch(const ge_rnn_params *p)
{
    switch (p->kind) {
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_scratch(p);
    case GE_LAYER_JORDAN:
        return ge_jordan_scratch(p);
    case GE_LAYER_TCN:
        return ge_tcn_scratch(p);
    case GE_LAYER_PCRNN:
        return ge_pcrnn_scratch(p);
    case GE_LAYER_CTRNN:   /* one accumulator per unit of a block */
    case GE_LAYER_GACTRNN: /* three per unit (i, f, drive) */
    default:
        return 4u * (size_t)(p->hidden < GE_BLOCK ? p->hidden : GE_BLOCK);
    }
}

ge_status ge_layer_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int16_t *h_new, int32_t *acc)
{
    switch (p->kind) {
    case GE_LAYER_LSTM:
        return ge_lstm_step(p, v, aux, h_new, acc);
    case GE_LAYER_GRU:
        return ge_gru_step(p, v, h_new, acc);
    case GE_LAYER_ELMAN:
        return ge_elman_step(p, v, h_new, acc);
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_step(p, v, acc);
    case GE_LAYER_JORDAN:
        return ge_jordan_step(p, v, aux, acc);
    case GE_LAYER_PEEPHOLE:
        return ge_peephole_step(p, v, aux, h_new, acc);
    case GE_LAYER_TCN:
        return ge_tcn_step(p, v, aux, acc);
    case GE_LAYER_PCRNN:
        return ge_pcrnn_step(p, v, aux, acc);
    case GE_LAYER_CTRNN:
        return ge_ctrnn_step(p, v, aux, h_new, acc);
    case GE_LAYER_GACTRNN:
        return ge_gactrnn_step(p, v, aux, h_new, acc);
    default:
        return GE_ERR_UNSUPPORTED;
    }
}
