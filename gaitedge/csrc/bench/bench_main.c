/*
 * bench_main.c - on-target benchmark and exactness check for the C runtime (QEMU).
 *
 * Runs BENCH_N streaming steps of the exported model on the samples in
 * bench_input.h.  Each ge_step() call is bracketed by ge_bench_begin() /
 * ge_bench_end(); the TCG plugin (icount_plugin.c) prints the instructions
 * executed between them.  Three empty brackets come first (marker overhead), then
 * the BENCH_N steps, then BENCH_N_KERNEL brackets around the first recurrent
 * layer's kernel alone.  With BENCH_PRINT each step's output goes to stdout
 * (semihosting) as "raw label event event_sample logits...".
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_input.h"
#include "gaitedge_rt.h"
#include "ge_layers.h"
#include "model_data.h"

#ifndef BENCH_PRINT
#define BENCH_PRINT 1
#endif
#ifndef BENCH_N_KERNEL
#define BENCH_N_KERNEL 5
#endif

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];

__attribute__((noinline)) void ge_bench_begin(void) { __asm__ volatile(""); }
__attribute__((noinline)) void ge_bench_end(void) { __asm__ volatile(""); }

int main(void)
{
    static ge_state st;
    ge_output o;
    const ge_rnn_params *l0 = &ge_model_data.layers[0];
    long t;
    int k;
    if (ge_init(&st, &ge_model_data, arena, sizeof arena) != GE_OK) {
        printf("init failed\n");
        exit(2);
    }
    printf("sizeof_state %u\n", (unsigned)sizeof st);
    for (t = 0; t < 3; t++) {
        ge_bench_begin();
        ge_bench_end();
    }
    for (t = 0; t < BENCH_N; t++) {
        ge_status s;
        ge_bench_begin();
        s = ge_step(&st, &bench_input[t * BENCH_NI], &o);
        ge_bench_end();
        if (s != GE_OK) {
            printf("step failed %d\n", (int)s);
            exit(3);
        }
        if (BENCH_PRINT) {
            printf("%d %d %d %ld", o.raw_label, o.label, o.event, (long)o.event_sample);
            for (k = 0; k < ge_model_data.n_classes; k++) printf(" %d", o.logits[k]);
            printf("\n");
        }
    }
    for (t = 0; t < BENCH_N_KERNEL; t++) {
        int16_t *v = st.vec;
        for (k = 1; k < ge_model_data.n_layers; k++) v += ge_model_data.layers[k].hidden;
        ge_bench_begin();
        (void)ge_layer_step(l0, v, st.aux, st.h_new, st.acc);
        ge_bench_end();
    }
    printf("done\n");
    exit(0);
}
