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
 *   ge_harness rotate < samples.bin   the counts after the mounting (ge_mounting_apply), one line per sample
 *   ge_harness mount                  prints the status ge_set_mounting() returns for the -m triads
 *
 * Any mode may be preceded by "-m i0,i1,i2,r00,..,r22" options (ge_mount_args.h): the sensor
 * mounting set with ge_set_mounting() after ge_init() (a refused mounting prints
 * "status N" and exits with 6).
 *
 * samples.bin: little-endian int16 counts, n_inputs per sample.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ge_math.h"
#include "ge_mount_args.h"
#include "ge_mounting.h"
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
    {
        ge_state fresh;
        ge_mounting mt, bad_m;
        memset(&fresh, 0, sizeof fresh);
        memset(&mt, 0, sizeof mt);
        EXPECT(ge_set_mounting(NULL, &mt), GE_ERR_NULL);
        EXPECT(ge_set_mounting(&fresh, &mt), GE_ERR_STATE);
        EXPECT(ge_set_mounting(&st, NULL), GE_OK);
        EXPECT(ge_set_mounting(&st, &mt), GE_OK);
        EXPECT(st.mount.n_triads, 0);
        mt.n_triads = 1;
        mt.idx[0][0] = 0;
        mt.idx[0][1] = (uint8_t)(ge_model_data.pre.n_inputs > 1 ? 1 : 0);
        mt.idx[0][2] = (uint8_t)(ge_model_data.pre.n_inputs > 2 ? 2 : 0);
        mt.rot[0][0] = mt.rot[0][4] = mt.rot[0][8] = 16384;
        EXPECT(ge_set_mounting(&st, &mt), ge_model_data.pre.n_inputs > 2 ? GE_OK : GE_ERR_MOUNTING);
        EXPECT(st.mount.n_triads, 0); /* an identity triad is dropped: no cost */
        mt.rot[0][0] = mt.rot[0][4] = 0; /* x and y swapped (a mirror) */
        mt.rot[0][1] = mt.rot[0][3] = 16384;
        EXPECT(ge_set_mounting(&st, &mt), ge_model_data.pre.n_inputs > 2 ? GE_OK : GE_ERR_MOUNTING);
        bad_m = mt;
        bad_m.n_triads = GE_MAX_TRIADS + 1;
        EXPECT(ge_set_mounting(&st, &bad_m), GE_ERR_MOUNTING);
        bad_m = mt;
        bad_m.rot[0][3] = 16385;
        EXPECT(ge_set_mounting(&st, &bad_m), GE_ERR_MOUNTING);
        bad_m = mt;
        bad_m.idx[0][2] = (uint8_t)ge_model_data.pre.n_inputs;
        EXPECT(ge_set_mounting(&st, &bad_m), GE_ERR_MOUNTING);
        bad_m = mt;
        bad_m.idx[0][2] = bad_m.idx[0][0];
        EXPECT(ge_set_mounting(&st, &bad_m), GE_ERR_MOUNTING);
        EXPECT(st.mount.n_triads, ge_model_data.pre.n_inputs > 2 ? 1 : 0); /* refused: the previous one stays */
        EXPECT(ge_reset(&st), GE_OK);
        EXPECT(st.mount.n_triads, ge_model_data.pre.n_inputs > 2 ? 1 : 0); /* ge_reset keeps it */
        EXPECT(ge_init(&st, &ge_model_data, big, sizeof big), GE_OK);
        EXPECT(st.mount.n_triads, 0); /* ge_init: identity */
        EXPECT(ge_mounting_check(NULL, 3), GE_ERR_NULL);
    }
    if (fails == 0) printf("ok\n");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    ge_state st;
    ge_output o;
    ge_mounting mount;
    int16_t counts[64];
    const int n = ge_model_data.pre.n_inputs;
    long t = 0, reset_at = -1;
    int k;
    ge_status ms;
    const int used = ge_mount_args(argc, argv, &mount);
    if (used < 0) {
        fprintf(stderr, "bad -m option\n");
        return 2;
    }
    argc -= used;
    argv += used;
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
    ms = ge_set_mounting(&st, &mount);
    if (argc > 1 && strcmp(argv[1], "mount") == 0) {
        printf("%d\n", (int)ms);
        return 0;
    }
    if (ms != GE_OK) {
        printf("status %d\n", (int)ms);
        return 6;
    }
    if (argc > 1 && strcmp(argv[1], "rotate") == 0) {
        int16_t rotated[64];
        while (read_sample(counts, n)) {
            if (mount.n_triads)
                ge_mounting_apply(&mount, counts, rotated, (uint16_t)n);
            else
                memcpy(rotated, counts, (size_t)n * sizeof counts[0]);
            for (k = 0; k < n; k++) printf("%d%c", rotated[k], k + 1 == n ? '\n' : ' ');
        }
        return 0;
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
