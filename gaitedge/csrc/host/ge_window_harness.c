/*
 * ge_window_harness.c - host test driver for the window API (ge_window_run) and an exported window model.
 *
 *   ge_window_harness [-m ..] run N < samples.bin   N samples as one window; one line per step:
 *                                           "label logit0 .. logitK-1"
 *                                           (-m: sensor mounting triads, ge_mount_args.h;
 *                                           run through ge_window_run_mounted)
 *   ge_window_harness selftest              status codes for bad arguments; prints "ok"
 *
 * samples.bin: little-endian int16 counts, n_inputs per sample.  N <= GE_MODEL_DATA_WINDOW.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ge_mount_args.h"
#include "ge_window.h"
#include "model_data.h"

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u + 1u];
static int16_t counts[GE_MODEL_DATA_WINDOW * GE_MODEL_DATA_N_INPUTS];
static int16_t logits[GE_MODEL_DATA_WINDOW * GE_MODEL_DATA_N_CLASSES];
static int8_t labels[GE_MODEL_DATA_WINDOW];
static ge_mounting mount;

static int run(unsigned long n)
{
    unsigned char *buf;
    size_t i, t;
    int k;
    ge_status s;
    if (n > GE_MODEL_DATA_WINDOW) return 2;
    buf = (unsigned char *)malloc(2u * GE_MODEL_DATA_N_INPUTS * (n ? n : 1u));
    if (buf == NULL || fread(buf, 2u * GE_MODEL_DATA_N_INPUTS, n, stdin) != n) return 3;
    for (i = 0; i < n * GE_MODEL_DATA_N_INPUTS; i++)
        counts[i] = (int16_t)(uint16_t)(buf[2 * i] | (buf[2 * i + 1] << 8));
    free(buf);
    if (ge_window_arena_bytes(&ge_model_data, (uint32_t)n) > GE_MODEL_DATA_ARENA_BYTES) return 4;
    s = ge_window_run_mounted(&ge_model_data, &mount, counts, (uint32_t)n, arena, GE_MODEL_DATA_ARENA_BYTES, logits,
                              labels);
    if (s != GE_OK) {
        printf("status %d\n", (int)s);
        return 5;
    }
    for (t = 0; t < n; t++) {
        printf("%d", labels[t]);
        for (k = 0; k < GE_MODEL_DATA_N_CLASSES; k++) printf(" %d", logits[t * GE_MODEL_DATA_N_CLASSES + (size_t)k]);
        printf("\n");
    }
    return 0;
}

static int selftest(void)
{
    ge_window_model bad = ge_model_data;
    ge_rnn_params layers[16];
    const uint32_t n = GE_MODEL_DATA_WINDOW;
    int fails = 0;
#define EXPECT(expr, want)                                                         \
    do {                                                                           \
        const int got_ = (int)(expr);                                              \
        if (got_ != (want)) {                                                      \
            printf("%s: got %d, want %d\n", #expr, got_, (int)(want));             \
            fails++;                                                               \
        }                                                                          \
    } while (0)
    EXPECT(ge_window_check(&ge_model_data), GE_OK);
    EXPECT(ge_window_arena_bytes(&ge_model_data, n) == GE_MODEL_DATA_ARENA_BYTES, 1);
    EXPECT(ge_window_check(NULL), GE_ERR_NULL);
    EXPECT(ge_window_run(&ge_model_data, NULL, 1, arena, sizeof arena, NULL, NULL), GE_ERR_NULL);
    EXPECT(ge_window_run(&ge_model_data, counts, 1, NULL, sizeof arena, NULL, NULL), GE_ERR_NULL);
    EXPECT(ge_window_run(&ge_model_data, counts, n, arena, GE_MODEL_DATA_ARENA_BYTES - 1u, NULL, NULL),
           GE_ERR_BUFFER);
    EXPECT(ge_window_run(&ge_model_data, counts, n, (unsigned char *)arena + 4, GE_MODEL_DATA_ARENA_BYTES, NULL,
                         NULL),
           GE_ERR_BUFFER);
    EXPECT(ge_window_run(&ge_model_data, counts, 0, arena, sizeof arena, NULL, NULL), GE_OK);
    EXPECT(ge_window_run(&ge_model_data, counts, n, arena, sizeof arena, NULL, NULL), GE_OK);
    {
        ge_mounting bm;
        memset(&bm, 0, sizeof bm);
        EXPECT(ge_window_run_mounted(&ge_model_data, NULL, counts, n, arena, sizeof arena, NULL, NULL), GE_OK);
        EXPECT(ge_window_run_mounted(&ge_model_data, &bm, counts, n, arena, sizeof arena, NULL, NULL), GE_OK);
        bm.n_triads = 1; /* channel 0 three times */
        EXPECT(ge_window_run_mounted(&ge_model_data, &bm, counts, n, arena, sizeof arena, NULL, NULL),
               GE_ERR_MOUNTING);
    }
    bad.magic ^= 1u;
    EXPECT(ge_window_check(&bad), GE_ERR_MODEL);
    EXPECT(ge_window_arena_bytes(&bad, n), 0);
    bad = ge_model_data;
    bad.spec_version++;
    EXPECT(ge_window_check(&bad), GE_ERR_MODEL);
    bad = ge_model_data;
    bad.arch = 9;
    EXPECT(ge_window_check(&bad), GE_ERR_UNSUPPORTED);
    bad = ge_model_data;
    bad.head.cols += 4;
    EXPECT(ge_window_check(&bad), GE_ERR_MODEL);
    bad = ge_model_data;
    bad.n_classes = 1;
    EXPECT(ge_window_check(&bad), GE_ERR_MODEL);
    if (ge_model_data.n_layers <= 16) {
        memcpy(layers, ge_model_data.layers, ge_model_data.n_layers * sizeof layers[0]);
        bad = ge_model_data;
        bad.layers = layers;
        layers[1].kind = 99;
        EXPECT(ge_window_check(&bad), GE_ERR_UNSUPPORTED);
        layers[1] = ge_model_data.layers[1];
        layers[1].in_size += 2;
        EXPECT(ge_window_check(&bad), GE_ERR_MODEL);
        layers[1] = ge_model_data.layers[1];
        layers[0].weights = NULL;
        EXPECT(ge_window_check(&bad), GE_ERR_NULL);
    }
    if (fails == 0) printf("ok\n");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    const int used = ge_mount_args(argc, argv, &mount);
    if (used < 0) {
        fprintf(stderr, "bad -m option\n");
        return 2;
    }
    argc -= used;
    argv += used;
    if (argc >= 3 && strcmp(argv[1], "run") == 0) return run(strtoul(argv[2], NULL, 10));
    if (argc >= 2 && strcmp(argv[1], "selftest") == 0) return selftest();
    fprintf(stderr, "usage: ge_window_harness run N < samples.bin | selftest\n");
    return 2;
}
