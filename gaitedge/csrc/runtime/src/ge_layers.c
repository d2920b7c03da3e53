/*
 * ge_layers.c - dispatch over the layer kinds of the streaming stack.
 *
 * Adding a kind: a kernel file ge_<kind>.c with its header, a GE_LAYER_* code in
 * gaitedge_rt.h, one case in each function below, and the Python twin registered
 * in gaitedge.quant.kernels with the same code.
 *
 * Only the kinds a firmware needs have to be linked: every kind is compiled in
 * unless GE_WITH_<KIND> says otherwise; `-DGE_WITH_ALL_KINDS=0 -DGE_WITH_GRU=1`
 * links only the GRU kernel.  The generated gaitedge_config.h of an exported
 * model defines them for its kinds; flags on the command line take precedence.
 * A descriptor with a kind left out is refused by ge_check_model()
 * (GE_ERR_UNSUPPORTED).
 */
#include "gaitedge_config.h"
#include "ge_layers.h"

#ifndef GE_WITH_ALL_KINDS
#define GE_WITH_ALL_KINDS 1
#endif
#ifndef GE_WITH_LSTM
#define GE_WITH_LSTM GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_GRU
#define GE_WITH_GRU GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_ELMAN
#define GE_WITH_ELMAN GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_RESERVOIR
#define GE_WITH_RESERVOIR GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_JORDAN
#define GE_WITH_JORDAN GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_PEEPHOLE
#define GE_WITH_PEEPHOLE GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_TCN
#define GE_WITH_TCN GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_PCRNN
#define GE_WITH_PCRNN GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_CTRNN
#define GE_WITH_CTRNN GE_WITH_ALL_KINDS
#endif
#ifndef GE_WITH_GACTRNN
#define GE_WITH_GACTRNN GE_WITH_ALL_KINDS
#endif

#if GE_WITH_CTRNN
#include "ge_ctrnn.h"
#endif
#if GE_WITH_ELMAN
#include "ge_elman.h"
#endif
#if GE_WITH_GACTRNN
#include "ge_gactrnn.h"
#endif
#if GE_WITH_GRU
#include "ge_gru.h"
#endif
#if GE_WITH_JORDAN
#include "ge_jordan.h"
#endif
#if GE_WITH_PEEPHOLE
#include "ge_peephole.h"
#endif
#if GE_WITH_LSTM
#include "ge_lstm.h"
#endif
#if GE_WITH_RESERVOIR
#include "ge_reservoir.h"
#endif
#if GE_WITH_PCRNN
#include "ge_pcrnn.h"
#endif
#if GE_WITH_TCN
#include "ge_tcn.h"
#endif

ge_status ge_layer_check(const ge_rnn_params *p)
{
    if (p->weights == NULL || p->mult == NULL) return GE_ERR_NULL;
    if (p->n_extra && p->extra == NULL) return GE_ERR_NULL;
    switch (p->kind) {
#if GE_WITH_LSTM
    case GE_LAYER_LSTM:
        if (p->cell_frac < 8 || p->cell_frac > 12 || p->aux != p->hidden) return GE_ERR_MODEL;
        return GE_OK;
#endif
#if GE_WITH_GRU
    case GE_LAYER_GRU:
        return p->aux == 0 ? GE_OK : GE_ERR_MODEL;
#endif
#if GE_WITH_ELMAN
    case GE_LAYER_ELMAN:
        return p->aux == 0 ? GE_OK : GE_ERR_MODEL;
#endif
#if GE_WITH_RESERVOIR
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_check(p);
#endif
#if GE_WITH_JORDAN
    case GE_LAYER_JORDAN:
        return ge_jordan_check(p);
#endif
#if GE_WITH_PEEPHOLE
    case GE_LAYER_PEEPHOLE:
        return ge_peephole_check(p);
#endif
#if GE_WITH_TCN
    case GE_LAYER_TCN:
        return ge_tcn_check(p);
#endif
#if GE_WITH_PCRNN
    case GE_LAYER_PCRNN:
        return ge_pcrnn_check(p);
#endif
#if GE_WITH_CTRNN
    case GE_LAYER_CTRNN:
        return ge_ctrnn_check(p);
#endif
#if GE_WITH_GACTRNN
    case GE_LAYER_GACTRNN:
        return ge_gactrnn_check(p);
#endif
    default:
        return GE_ERR_UNSUPPORTED;
    }
}

size_t ge_layer_scratch(const ge_rnn_params *p)
{
    switch (p->kind) {
#if GE_WITH_RESERVOIR
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_scratch(p);
#endif
#if GE_WITH_JORDAN
    case GE_LAYER_JORDAN:
        return ge_jordan_scratch(p);
#endif
#if GE_WITH_TCN
    case GE_LAYER_TCN:
        return ge_tcn_scratch(p);
#endif
#if GE_WITH_PCRNN
    case GE_LAYER_PCRNN:
        return ge_pcrnn_scratch(p);
#endif
    case GE_LAYER_CTRNN:   /* one accumulator per unit of a block */
    case GE_LAYER_GACTRNN: /* three per unit (i, f, drive) */
    default:
        return 4u * (size_t)(p->hidden < GE_BLOCK ? p->hidden : GE_BLOCK);
    }
}

ge_status ge_layer_step(const ge_rnn_params *p, int16_t *v, int16_t *aux, int16_t *h_new, int32_t *acc)
{
    (void)aux; /* unused when only stateless kinds are linked */
    (void)h_new;
    switch (p->kind) {
#if GE_WITH_LSTM
    case GE_LAYER_LSTM:
        return ge_lstm_step(p, v, aux, h_new, acc);
#endif
#if GE_WITH_GRU
    case GE_LAYER_GRU:
        return ge_gru_step(p, v, h_new, acc);
#endif
#if GE_WITH_ELMAN
    case GE_LAYER_ELMAN:
        return ge_elman_step(p, v, h_new, acc);
#endif
#if GE_WITH_RESERVOIR
    case GE_LAYER_RESERVOIR:
        return ge_reservoir_step(p, v, acc);
#endif
#if GE_WITH_JORDAN
    case GE_LAYER_JORDAN:
        return ge_jordan_step(p, v, aux, acc);
#endif
#if GE_WITH_PEEPHOLE
    case GE_LAYER_PEEPHOLE:
        return ge_peephole_step(p, v, aux, h_new, acc);
#endif
#if GE_WITH_TCN
    case GE_LAYER_TCN:
        return ge_tcn_step(p, v, aux, acc);
#endif
#if GE_WITH_PCRNN
    case GE_LAYER_PCRNN:
        return ge_pcrnn_step(p, v, aux, acc);
#endif
#if GE_WITH_CTRNN
    case GE_LAYER_CTRNN:
        return ge_ctrnn_step(p, v, aux, h_new, acc);
#endif
#if GE_WITH_GACTRNN
    case GE_LAYER_GACTRNN:
        return ge_gactrnn_step(p, v, aux, h_new, acc);
#endif
    default:
        return GE_ERR_UNSUPPORTED;
    }
}
