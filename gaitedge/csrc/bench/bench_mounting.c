/*
 * bench_mounting.c - on-target cost and exactness of the sensor mounting (QEMU).
 *
 * Three passes of BENCH_N streaming steps over the samples of bench_input.h, each
 * from a fresh ge_init(): no mounting, the first 2 triads of bench_mount.h (one
 * foot: acc, gyr), all 4 (two feet).  Every ge_step() is bracketed by
 * ge_bench_begin() / ge_bench_end() (the TCG plugin icount_plugin.c prints the
 * instructions executed between them); three empty brackets come first (marker
 * overhead), and after the passes BENCH_N_KERNEL brackets around ge_mounting_apply()
 * alone with 2, then 4 triads.  With BENCH_PRINT each step's output goes to stdout
 * (semihosting) as "raw label event event_sample logits...".
 *
 * bench_mount.h (generated) defines BENCH_MOUNT: a ge_mounting with 4 triads.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_input.h"
#include "bench_mount.h"
#include "gaitedge_rt.h"
#include "ge_mounting.h"
#include "model_data.h"

#ifndef BENCH_PRINT
#define BENCH_PRINT 1
#endif
#ifndef BENCH_N_KERNEL
#define BENCH_N_KERNEL 20
#endif

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];

__attribute__((noinline)) void ge_bench_begin(void) { __asm__ volatile(""); }
__attribute__((noinline)) void ge_bench_end(void) { __asm__ volatile(""); }

int main(void)
{
    static ge_state st;
    static const ge_mounting full = BENCH_MOUNT;
    ge_mounting m;
    ge_output o;
    int16_t out[BENCH_NI];
    long t;
    int k, pass;
    printf("sizeof_state %u sizeof_mounting %u\n", (unsigned)sizeof st, (unsigned)sizeof m);
    for (t = 0; t < 3; t++) {
        ge_bench_begin();
        ge_bench_end();
    }
    for (pass = 0; pass < 3; pass++) {
        m = full;
        m.n_triads = (uint8_t)(pass == 0 ? 0 : 2 * pass);
        if (ge_init(&st, &ge_model_data, arena, sizeof arena) != GE_OK || ge_set_mounting(&st, &m) != GE_OK) {
            printf("init failed\n");
            exit(2);
        }
        printf("pass %d triads\n", m.n_triads);
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
    }
    for (pass = 1; pass <= 2; pass++) {
        m = full;
        m.n_triads = (uint8_t)(2 * pass);
        for (t = 0; t < BENCH_N_KERNEL; t++) {
            ge_bench_begin();
            ge_mounting_apply(&m, &bench_input[t * BENCH_NI], out, BENCH_NI);
            ge_bench_end();
        }
    }
    printf("done\n");
    exit(0);
}
