/*
 * bench_window.c - on-target benchmark and exactness check of the window API (QEMU).
 *
 * Runs the BENCH_N samples of bench_input.h as one window through ge_window_run(),
 * bracketed by ge_bench_begin() / ge_bench_end() (the TCG plugin icount_plugin.c
 * prints the instructions executed between them).  Three empty brackets come first
 * (marker overhead).  With BENCH_PRINT each step's output goes to stdout
 * (semihosting) as "label logits...".
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_input.h"
#include "ge_window.h"
#include "model_data.h"

#ifndef BENCH_PRINT
#define BENCH_PRINT 1
#endif

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];
static int16_t logits[BENCH_N * GE_MODEL_DATA_N_CLASSES];
static int8_t labels[BENCH_N];

__attribute__((noinline)) void ge_bench_begin(void) { __asm__ volatile(""); }
__attribute__((noinline)) void ge_bench_end(void) { __asm__ volatile(""); }

int main(void)
{
    ge_status s;
    long t;
    int k;
    if (BENCH_N > GE_MODEL_DATA_WINDOW || ge_window_check(&ge_model_data) != GE_OK) {
        printf("bad model or window\n");
        exit(2);
    }
    for (t = 0; t < 3; t++) {
        ge_bench_begin();
        ge_bench_end();
    }
    ge_bench_begin();
    s = ge_window_run(&ge_model_data, bench_input, BENCH_N, arena, sizeof arena, logits, labels);
    ge_bench_end();
    if (s != GE_OK) {
        printf("window failed %d\n", (int)s);
        exit(3);
    }
    if (BENCH_PRINT) {
        for (t = 0; t < BENCH_N; t++) {
            printf("%d", labels[t]);
            for (k = 0; k < GE_MODEL_DATA_N_CLASSES; k++) printf(" %d", logits[t * GE_MODEL_DATA_N_CLASSES + k]);
            printf("\n");
        }
    }
    printf("done\n");
    exit(0);
}
