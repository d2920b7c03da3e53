/*
 * ge_harness.c - host test driver for the C runtime and an exported model.
 *
 *   ge_harness step   < samples.bin   one line per step:
 *                                     "raw label event event_sample logit0 .. logitK-1"
 *   ge_harness run    < samples.bin   ge_run() over everything: labels line, then events
 *   ge_harness reset N < samples.bin  like step, with ge_reset() before sample N
 *   ge_harness lut                    sigmoid(u) tanh(u) for u = 0..65535
 *   ge_harness selftest               status codes for bad arguments; prints "ok"
 *   ge_harness time R < samples.bin   R passes over the samples; prints ns per ge_step()
 *
 * samples.bin: little-endian int16 counts, n_inputs per sample.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ge_math.h"
#include "gaitedge_rt.h"
#include "model_data.h"

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];

static int read_sample(int16_t *c, int n)
{
    unsigned char buf[2 * 64];
    int i;
    if (fread(buf, 2, (size_t)n, stdin) != (size_t)n) return 0;
    for (i = 0; i < n; i++) c[i] = (int16_t)(uint16_t)(buf[2 * i] | (buf[2 * i + 1] << 8));
    return 1;
}

static int selftest(void)
{
    static uint64_t big[(GE_MODEL_DATA_ARENA_BYTES + 15u) / 8u];
    ge_model bad = ge_model_data;
    ge_rnn_params layers[8];
    ge_state st;
    ge_output o;
    int16_t counts[64] = {0};
    int fails = 0;
    uint16_t l;
#define EXPECT(expr, want)                                                         \
    do {                                                                           \
        const int got_ = (int)(expr);                                              \
        if (got_ != (want)) {                                                      \
            printf("%s: got %d, want %d\n", #expr, got_, (int)(want));             \
            fails++;                                                               \
        }                                                                          \
    } while (0)
    EXPECT(ge_check_model(&ge_model_data), GE_OK);
    EXPECT(ge_init(NULL, &ge_model_data, big, sizeof big), GE_ERR_NULL);
    EXPECT(ge_init(&st, NULL, big, sizeof big), GE_ERR_NULL);
    EXPECT(ge_init(&st, &ge_model_data, big, GE_MODEL_DATA_ARENA_BYTES - 1u), GE_ERR_BUFFER);
    EXPECT(ge_init(&st, &ge_model_data, (unsigned char *)big + 4, GE_MODEL_DATA_ARENA_BYTES), GE_ERR_BUFFER);
    EXPECT(ge_step(&st, counts, &o), GE_ERR_STATE);
    EXPECT(ge_reset(&st), GE_ERR_STATE);
    bad.magic ^= 1u;
    EXPECT(ge_init(&st, &bad, big, sizeof big), GE_ERR_MODEL);
    bad = ge_model_data;
    bad.spec_version = GE_SPEC_VERSION + 1;
    EXPECT(ge_init(&st, &bad, big, sizeof big), GE_ERR_MODEL);
    bad = ge_model_data;
    for (l = 0; l < bad.n_layers && l < 8; l++) layers[l] = ge_model_data.layers[l];
    layers[0].kind = 9;
    bad.layers = layers;
    EXPECT(ge_init(&st, &bad, big, sizeof big), GE_ERR_UNSUPPORTED);
    EXPECT(ge_arena_bytes(&bad), 0);
    layers[0].kind = ge_model_data.layers[0].kind;
    layers[0].hidden += 2;
    EXPECT(ge_check_model(&bad), GE_ERR_MODEL);
    EXPECT(ge_init(&st, &ge_model_data, big, sizeof big), GE_OK);
    EXPECT(ge_step(&st, NULL, &o), GE_ERR_NULL);
    EXPECT(ge_step(&st, counts, NULL), GE_OK);
    EXPECT(ge_run(&st, counts, 1, NULL, NULL, 0, NULL), GE_OK);
    if (fails == 0) printf("ok\n");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    ge_state st;
    ge_output o;
    int16_t counts[64];
    const int n = ge_model_data.pre.n_inputs;
    long t = 0, reset_at = -1;
    int k;
    if (argc > 1 && strcmp(argv[1], "lut") == 0) {
        long u;
        for (u = 0; u < 65536; u++) printf("%ld %ld\n", (long)ge_math_sigmoid((int32_t)u), (long)ge_math_tanh((int32_t)u));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "selftest") == 0) return selftest();
    if (ge_arena_bytes(&ge_model_data) != GE_MODEL_DATA_ARENA_BYTES) {
        fprintf(stderr, "arena size mismatch: %lu vs %lu\n", (unsigned long)ge_arena_bytes(&ge_model_data),
                (unsigned long)GE_MODEL_DATA_ARENA_BYTES);
        return 3;
    }
    if (ge_init(&st, &ge_model_data, arena, sizeof arena) != GE_OK) {
        fprintf(stderr, "ge_init failed\n");
        return 3;
    }
    if (argc > 1 && strcmp(argv[1], "run") == 0) {
        size_t cap = 1024, len = 0;
        int16_t *all = malloc(cap * sizeof *all * (size_t)n);
        int8_t *labels;
        ge_event *ev;
        uint32_t nev = 0, i;
        while (all && read_sample(all + len * (size_t)n, n)) {
            if (++len == cap) {
                cap *= 2;
                all = realloc(all, cap * sizeof *all * (size_t)n);
            }
        }
        labels = malloc(len + 1);
        ev = malloc((len + 1) * sizeof *ev);
        if (!all || !labels || !ev) return 4;
        if (ge_run(&st, all, (uint32_t)len, labels, ev, (uint32_t)len, &nev) != GE_OK) return 5;
        for (i = 0; i < len; i++) printf("%d%c", labels[i], i + 1 == len ? '\n' : ' ');
        if (len == 0) printf("\n");
        for (i = 0; i < nev; i++) printf("%d %ld\n", ev[i].kind, (long)ev[i].sample);
        free(all);
        free(labels);
        free(ev);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "time") == 0) {
        const long reps = strtol(argv[2], NULL, 10);
        size_t cap = 1024, len = 0, i;
        int16_t *all = malloc(cap * sizeof *all * (size_t)n);
        struct timespec t0, t1;
        long r;
        double ns;
        unsigned sink = 0;
        while (all && read_sample(all + len * (size_t)n, n)) {
            if (++len == cap) {
                cap *= 2;
                all = realloc(all, cap * sizeof *all * (size_t)n);
            }
        }
        if (!all || len == 0) return 4;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (r = 0; r < reps; r++)
            for (i = 0; i < len; i++) {
                ge_step(&st, all + i * (size_t)n, &o);
                sink += (unsigned)o.raw_label;
            }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / ((double)reps * (double)len);
        printf("%.1f %u\n", ns, sink);
        free(all);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "reset") == 0) reset_at = strtol(argv[2], NULL, 10);
    while (read_sample(counts, n)) {
        if (t == reset_at && ge_reset(&st) != GE_OK) return 5;
        if (ge_step(&st, counts, &o) != GE_OK) return 5;
        printf("%d %d %d %ld", o.raw_label, o.label, o.event, (long)o.event_sample);
        for (k = 0; k < ge_model_data.n_classes; k++) printf(" %d", o.logits[k]);
        printf("\n");
        t++;
    }
    return 0;
}
