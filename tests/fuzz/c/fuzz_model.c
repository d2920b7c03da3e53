/*
 * fuzz_model.c - libFuzzer target: ge_check_model / ge_init / ge_step on a model
 * descriptor made from the input (the runtime must refuse what it cannot run, and never
 * read or write outside the arrays and the arena it was given).
 *
 * Input: a header of sizes and settings (read in the order of the code below; missing
 * bytes are 0), then content bytes that fill every array in turn (cycled when short).  The
 * header says how many bytes of each layer's weights and multipliers, and of the head's
 * weights, come from the content; the rest of those buffers holds a fixed pattern.  The arrays
 * whose length the descriptor states (norm_mult/norm_bias [n_inputs], sos [n_sections][5],
 * zi [n_sections][2], extra [n_extra], head mult [rows]) and the arena (ge_arena_bytes)
 * are heap blocks of exactly that size, so ASan sees any access beyond them.  The packed
 * weights and per-unit multipliers, whose length follows from the layer kind's packing,
 * point into large static buffers.  After a successful ge_init: a mounting from the input,
 * a few ge_step and a ge_run.  With GE_FUZZ_TRACE set, ge_check_model's verdict goes to stderr.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaitedge_rt.h"

#define MAX_LAYERS 5
#define BIG_WORDS (2u << 20)   /* packed weights: 8 MB, far beyond any layer ge_check_model accepts */

static uint32_t big_w[MAX_LAYERS + 1][BIG_WORDS];
static int32_t big_m[MAX_LAYERS][8192];

typedef struct {
    const uint8_t *p;
    size_t n, at;
} cursor;

static uint32_t take(cursor *c, int bytes)
{
    uint32_t v = 0;
    int i;
    for (i = 0; i < bytes; i++) v |= (uint32_t)(c->at < c->n ? c->p[c->at++] : 0u) << (8 * i);
    return v;
}

/* fill n bytes from the content (cycled; zeros when there is none) */
static void fill(cursor *c, void *dst, size_t n)
{
    uint8_t *d = (uint8_t *)dst;
    size_t i;
    if (c->n == 0) {
        memset(d, 0, n);
        return;
    }
    for (i = 0; i < n; i++) {
        if (c->at >= c->n) c->at = 0;
        d[i] = c->p[c->at];
        c->at = (c->at + 1u) % c->n;
    }
}

static void *exact(cursor *c, size_t n)
{
    void *p = malloc(n ? n : 1u);
    if (p == NULL) abort();
    fill(c, p, n);
    return p;
}

static uint32_t pattern_word(uint32_t i)
{
    uint32_t x = i * 2654435761u + 0x9E3779B9u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    return x ^ (x >> 12);
}

/* the fixed pattern into words [0, n) of a weights buffer (all of it on the first call) */
static void pattern(uint32_t *w, size_t n)
{
    size_t i;
    for (i = 0; i < n && i < BIG_WORDS; i++) w[i] = pattern_word((uint32_t)i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t kinds[] = {GE_LAYER_LSTM, GE_LAYER_GRU, GE_LAYER_ELMAN, GE_LAYER_RESERVOIR, GE_LAYER_CTRNN,
                                    GE_LAYER_GACTRNN, GE_LAYER_JORDAN, GE_LAYER_PEEPHOLE, GE_LAYER_TCN, GE_LAYER_PCRNN};
    static const char *const names[GE_MAX_CLASSES] = {"a", "b", "c", "d", "e", "f", "g", "h",
                                                      "i", "j", "k", "l", "m", "n", "o", "p"};
    cursor c = {data, size, 0};
    ge_model m;
    ge_rnn_params layers[MAX_LAYERS];
    int32_t *norm_mult, *norm_bias, *sos = NULL, *zi = NULL, *head_mult, *extra[MAX_LAYERS] = {NULL};
    uint32_t flags, l, k;
    size_t arena_n;
    void *arena = NULL;
    ge_state st;
    ge_output out;
    ge_mounting mount;
    int16_t *counts;
    int8_t labels[4];
    ge_event events[4];
    uint32_t n_events, w_bytes[MAX_LAYERS + 1] = {0}, m_bytes[MAX_LAYERS] = {0};
    static int patterned;
    if (!patterned) {
        for (l = 0; l <= MAX_LAYERS; l++) pattern(big_w[l], BIG_WORDS);
        patterned = 1;
    }
    memset(&m, 0, sizeof m);
    memset(layers, 0, sizeof layers);
    flags = take(&c, 1);
    m.magic = (flags & 1u) ? take(&c, 4) : GE_MODEL_MAGIC;
    m.spec_version = (flags & 2u) ? (uint16_t)take(&c, 2) : GE_SPEC_VERSION;
    m.n_layers = (uint16_t)(take(&c, 1) % (MAX_LAYERS + 1u));
    m.n_classes = (uint16_t)(take(&c, 1) % 24u);
    m.delay = (uint16_t)take(&c, 2);
    m.rate_mhz = 100000u;
    m.pre.n_inputs = (uint16_t)(take(&c, 1) % 40u);
    m.pre.in_pad = (flags & 4u) ? (uint16_t)(take(&c, 1) % 48u) : (uint16_t)(m.pre.n_inputs + (m.pre.n_inputs & 1u));
    m.pre.n_sections = (uint8_t)(take(&c, 1) % 10u);
    m.head.rows = (flags & 8u) ? (uint16_t)(take(&c, 1) % 24u) : m.n_classes;
    m.head.cols = (uint16_t)(take(&c, 2) % 1100u);
    m.head.logit_frac = (uint8_t)take(&c, 1);
    m.events.min_run = (uint16_t)take(&c, 2);
    m.events.swing = (int8_t)take(&c, 1);
    w_bytes[MAX_LAYERS] = take(&c, 2);
    for (l = 0; l < m.n_layers; l++) {
        const uint32_t kind = take(&c, 1);
        layers[l].kind = kind < 0xF0u ? kinds[kind % sizeof kinds] : (uint8_t)kind;
        layers[l].cell_frac = (uint8_t)take(&c, 1);
        layers[l].in_size = (uint16_t)(take(&c, 2) % 1100u);
        layers[l].hidden = (uint16_t)(take(&c, 2) % 1100u);
        layers[l].aux = (uint16_t)take(&c, 2);
        layers[l].n_extra = (uint16_t)(take(&c, 2) % 4096u);
        w_bytes[l] = take(&c, 2);
        m_bytes[l] = take(&c, 2) % (uint32_t)sizeof big_m[l];
    }
    /* the arrays, from the content that follows */
    c.p += c.at;
    c.n -= c.at;
    c.at = 0;
    norm_mult = exact(&c, m.pre.n_inputs * sizeof(int32_t));
    norm_bias = exact(&c, m.pre.n_inputs * sizeof(int32_t));
    if (m.pre.n_sections) {
        sos = exact(&c, m.pre.n_sections * 5u * sizeof(int32_t));
        zi = exact(&c, m.pre.n_sections * 2u * sizeof(int32_t));
    }
    m.pre.norm_mult = norm_mult;
    m.pre.norm_bias = norm_bias;
    m.pre.sos = sos;
    m.pre.zi = zi;
    for (l = 0; l < m.n_layers; l++) {
        if (layers[l].n_extra) extra[l] = exact(&c, layers[l].n_extra * sizeof(int32_t));
        fill(&c, big_w[l], w_bytes[l]);
        memset(big_m[l], 0, sizeof big_m[l]);
        fill(&c, big_m[l], m_bytes[l]);
        layers[l].weights = big_w[l];
        layers[l].mult = big_m[l];
        layers[l].extra = extra[l];
    }
    fill(&c, big_w[MAX_LAYERS], w_bytes[MAX_LAYERS]);
    head_mult = exact(&c, m.head.rows * sizeof(int32_t));
    m.head.weights = big_w[MAX_LAYERS];
    m.head.mult = head_mult;
    m.layers = (flags & 16u) ? NULL : layers;
    m.class_names = names;
    m.weights_sha256 = "";

    if (getenv("GE_FUZZ_TRACE") != NULL) fprintf(stderr, "ge_check_model: %d\n", (int)ge_check_model(&m));
    if (ge_check_model(&m) == GE_OK) {
        arena_n = ge_arena_bytes(&m);
        if (arena_n == 0) __builtin_trap();
        arena = malloc(arena_n);
        if (ge_init(&st, &m, arena, arena_n - 8u) != GE_ERR_BUFFER && arena_n >= 8u) __builtin_trap();
        if (ge_init(&st, &m, arena, arena_n) != GE_OK) __builtin_trap();
        memset(&mount, 0, sizeof mount);
        mount.n_triads = (uint8_t)(take(&c, 1) % (GE_MAX_TRIADS + 2u));
        fill(&c, mount.idx, sizeof mount.idx);
        fill(&c, mount.rot, sizeof mount.rot);
        (void)ge_set_mounting(&st, &mount);
        counts = exact(&c, 4u * m.pre.n_inputs * sizeof(int16_t));
        for (k = 0; k < 4u; k++) {
            if (ge_step(&st, counts + k * m.pre.n_inputs, &out) != GE_OK) __builtin_trap();
            if (out.raw_label < 0 || out.raw_label >= (int)m.n_classes || out.label >= (int)m.n_classes)
                __builtin_trap();
        }
        if (ge_reset(&st) != GE_OK) __builtin_trap();
        if (ge_run(&st, counts, 4u, labels, events, 4u, &n_events) != GE_OK) __builtin_trap();
        free(counts);
    } else if (ge_arena_bytes(&m) != 0) {
        __builtin_trap();
    }
    free(arena);
    free(norm_mult);
    free(norm_bias);
    free(sos);
    free(zi);
    free(head_mult);
    for (l = 0; l < MAX_LAYERS; l++) free(extra[l]);
    for (l = 0; l <= MAX_LAYERS; l++) pattern(big_w[l], (w_bytes[l] + 3u) / 4u);
    return 0;
}
