/*
 * gaitedge_config.h - build configuration of the runtime.
 *
 * This default configures nothing: every layer kind's kernel is compiled into
 * ge_layers.c and the portable C path is used unless the build defines
 *   GE_WITH_ALL_KINDS=0 GE_WITH_<KIND>=1   only these kinds' kernels (ge_layers.c)
 *   GE_USE_DSP                             the Cortex-M DSP path (ge_math.h)
 * `gaitedge export c` writes a gaitedge_config.h for one model in its place, so
 * that an exported library builds without any -D flags.
 */
#ifndef GAITEDGE_CONFIG_H
#define GAITEDGE_CONFIG_H

#endif
