/*
 * gaitedge_rt.h - fixed-point gait-phase runtime for microcontrollers (public API).
 *
 * Portable C99, integer arithmetic only: no malloc, no libm, no floating point in
 * the inference path.  The model is a const descriptor (generated model_data.c);
 * all mutable memory is a caller-owned arena handed to ge_init().  The arithmetic
 * is specified in QUANTIZATION.md and mirrored bit for bit by the Python package
 * (gaitedge.quant).
 *
 * Typical use:
 *     static uint64_t arena[(GE_MODEL_ARENA_BYTES + 7) / 8];
 *     ge_state st;
 *     ge_init(&st, &ge_model_data, arena, sizeof arena);
 *     for (;;) { read_imu(counts); ge_step(&st, counts, &out); if (out.event) ...; }
 */
#ifndef GAITEDGE_RT_H
#define GAITEDGE_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Fixed-point spec implemented by this runtime (checked against the model). */
#define GE_SPEC_VERSION 1
/** Magic number at the start of every model descriptor ("GEM1"). */
#define GE_MODEL_MAGIC 0x314D4547u
/** Rows per packed weight group (see QUANTIZATION.md "Weight packing"). */
#define GE_GROUP_ROWS 4
/**
 * Units per block: a layer runs one matrix pass per block of this many units,
 * then their gates (scratch: 4 int32 per unit of the largest block).  Layers of
 * at most GE_BLOCK units are one block and update their state in place; GRU
 * weights are packed per block.
 */
#define GE_BLOCK 64
/** Longest concatenated row input (hidden + inputs) and largest class count. */
#define GE_MAX_ROW_INPUTS 512
#define GE_MAX_CLASSES 16

/** Status codes: 0 is success, negative values are errors. */
typedef enum {
    GE_OK = 0,
    GE_ERR_NULL = -1,        /**< a required pointer is NULL */
    GE_ERR_MODEL = -2,       /**< bad descriptor: magic, spec version or sizes */
    GE_ERR_UNSUPPORTED = -3, /**< a layer kind this runtime has no kernel for */
    GE_ERR_BUFFER = -4,      /**< arena too small or misaligned */
    GE_ERR_STATE = -5,       /**< state not initialised */
    GE_ERR_MOUNTING = -6     /**< sensor mounting refused: too many triads, index out of range or repeated, entry beyond +-2^14 */
} ge_status;

/**
 * Layer kinds.  Each kind is one kernel file (ge_<kind>.c) with one Python integer
 * twin (gaitedge.quant.<kind>); ge_layers.c dispatches on the kind.
 */
enum { GE_LAYER_LSTM = 1, GE_LAYER_GRU = 2, GE_LAYER_ELMAN = 3 };
/** Reservoir (echo state networks: ESN, leaky ESN, deep ESN), sparse recurrent matrix: ge_reservoir.c. */
enum { GE_LAYER_RESERVOIR = 40 };
/** Continuous-time networks: ge_ctrnn.c (CTRNN; also the S-CTRNN class path), ge_gactrnn.c (gated adaptive). */
enum { GE_LAYER_CTRNN = 10, GE_LAYER_GACTRNN = 11 };
/** Jordan network (output feedback), LSTM with peephole connections: ge_jordan.c, ge_peephole.c. */
enum { GE_LAYER_JORDAN = 20, GE_LAYER_PEEPHOLE = 21 };
/** Residual block of a temporal convolutional network, streamed with ring buffers: ge_tcn.c. */
enum { GE_LAYER_TCN = 30 };
/** Predictive-coding RNN (two levels relaxed K steps per sample): ge_pcrnn.c. */
enum { GE_LAYER_PCRNN = 15 };

/** Event codes reported by ge_step(). */
enum { GE_EVENT_NONE = 0, GE_EVENT_TOE_OFF = 1, GE_EVENT_HEEL_STRIKE = 2 };

/**
 * One layer of the streaming stack (packed int8 weights with int32 biases, int32
 * multipliers).  A layer reads [its own h; in_size words that follow it in the
 * state vector] and writes its new h.
 */
typedef struct {
    uint8_t kind;        /**< GE_LAYER_* */
    uint8_t cell_frac;   /**< LSTM: fraction bits of the int16 cell state (8..12); other kinds: see their file */
    uint16_t in_size;    /**< input width (even): the words after h in the state vector this layer reads */
    uint16_t hidden;     /**< hidden units (multiple of 4) */
    uint16_t aux;        /**< int16 words of per-stream layer state besides h (LSTM: the cell state) */
    uint16_t n_extra;    /**< entries of extra */
    const uint32_t *weights; /**< packed groups (biases first), QUANTIZATION.md "Weight packing" */
    const int32_t *mult;     /**< requantization multipliers, per unit: LSTM i f g o, GRU r z nh nx */
    const int32_t *extra;    /**< kind-specific int32 constants (NULL when n_extra is 0) */
} ge_rnn_params;

/** Dense head: logits = sat16(mulhr(bias + W h, mult)), Q(logit_frac). */
typedef struct {
    uint16_t rows;       /**< classes */
    uint16_t cols;       /**< hidden of the last layer, or of all layers ([h_L .. h_1], the state vector's start) */
    uint8_t logit_frac;
    const uint32_t *weights; /**< packed groups of 4 rows (biases first; last group zero-padded) */
    const int32_t *mult;     /**< [rows] */
} ge_dense_params;

/** On-device preprocessing: scaling of raw counts, normalization, causal filter. */
typedef struct {
    uint16_t n_inputs;   /**< sensor channels */
    uint16_t in_pad;     /**< n_inputs rounded up to even */
    uint8_t n_sections;  /**< second-order filter sections (0 = no filter) */
    const int32_t *norm_mult; /**< [n_inputs] */
    const int32_t *norm_bias; /**< [n_inputs] */
    const int32_t *sos;  /**< [n_sections][5]: b0 b1 b2 a1 a2, Q28 */
    const int32_t *zi;   /**< [n_sections][2]: steady-state state per unit input, Q28 */
} ge_preproc_params;

/** Label debounce / transition detector settings. */
typedef struct {
    uint16_t min_run;    /**< samples a new label must last (<= 1: no debounce) */
    int8_t swing;        /**< class index of "swing" (-1: no events) */
} ge_events_params;

/** A complete model (generated as const data by `gaitedge export c`). */
typedef struct {
    uint32_t magic;          /**< GE_MODEL_MAGIC */
    uint16_t spec_version;   /**< GE_SPEC_VERSION */
    uint16_t n_layers;
    uint16_t n_classes;
    uint16_t delay;          /**< output delay: step t classifies sample t - delay */
    uint32_t rate_mhz;       /**< sampling rate in mHz (metadata) */
    ge_preproc_params pre;
    const ge_rnn_params *layers;
    ge_dense_params head;
    ge_events_params events;
    const char *const *class_names;
    const char *weights_sha256;
} ge_model;

/** Debounce / detector state (one stream). */
typedef struct {
    int8_t confirmed;    /**< -1 before the first label */
    int8_t cand;
    uint16_t run;
    int32_t start;       /**< sample index where the candidate run began */
} ge_events_state;

/** Most sensor triads a mounting rotates (two feet: acc + gyr each). */
#define GE_MAX_TRIADS 4
/** Fraction bits of the mounting rotation entries (Q1.14: 16384 = 1.0). */
#define GE_MOUNT_FRAC 14

/**
 * Sensor mounting (QUANTIZATION.md "Sensor mounting"): per triad, three input
 * channels (indices in the model's input order) are rotated into the canonical
 * foot frame before the preprocessing,
 *     out[idx[i]] = sat16((sum_j rot[3i + j] * counts[idx[j]] + 2^13) >> 14).
 * n_triads = 0 is the identity (no cost in ge_step).  Per user and wear, not part of
 * the weights: set with ge_set_mounting().
 */
typedef struct {
    uint8_t n_triads;                    /**< 0 .. GE_MAX_TRIADS */
    uint8_t idx[GE_MAX_TRIADS][3];       /**< input channels of each triad (x, y, z of the sensor) */
    int16_t rot[GE_MAX_TRIADS][9];       /**< row-major Q1.14 matrix, entries in [-16384, 16384] */
} ge_mounting;

/** Per-stream state: pointers into the caller's arena plus a few scalars. */
typedef struct {
    const ge_model *model;
    int16_t *vec;        /**< [h_L .. h_1, x]: hidden states then inputs */
    int16_t *aux;        /**< per-layer state besides h (LSTM cells, ...), layers concatenated */
    int16_t *h_new;      /**< scratch: next hidden state of a layer wider than GE_BLOCK */
    int32_t *acc;        /**< scratch: int32 accumulators of one block */
    int64_t *filt;       /**< filter state [n_inputs][n_sections][2] */
    int16_t *logits;     /**< [n_classes] */
    uint32_t step;       /**< steps since reset */
    uint8_t primed;      /**< filter initialised from the first sample */
    ge_events_state ev;
    ge_mounting mount;   /**< sensor mounting (identity after ge_init; kept by ge_reset) */
} ge_state;

/** What one ge_step() reports. */
typedef struct {
    const int16_t *logits;   /**< [n_classes], Q(head.logit_frac); valid until the next step */
    int8_t raw_label;        /**< argmax of the logits */
    int8_t label;            /**< debounced label of `sample` so far; -1 while step < delay */
    uint8_t event;           /**< GE_EVENT_* confirmed at this step */
    int32_t sample;          /**< sample index this step classifies (step - delay; < 0 during warm-up) */
    int32_t event_sample;    /**< sample index of the event (where the new label began), -1 if none */
} ge_output;

/** One gait event. */
typedef struct {
    uint8_t kind;            /**< GE_EVENT_TOE_OFF or GE_EVENT_HEEL_STRIKE */
    int32_t sample;
} ge_event;

/** Arena bytes a model needs (state + scratch), including alignment slack. */
size_t ge_arena_bytes(const ge_model *m);
/** Check the descriptor (magic, spec version, sizes, layer kinds). */
ge_status ge_check_model(const ge_model *m);
/** Bind a state to a model and an arena (8-byte aligned, ge_arena_bytes() long); resets it, identity mounting. */
ge_status ge_init(ge_state *st, const ge_model *m, void *arena, size_t arena_bytes);
/**
 * Set the sensor mounting applied to the counts of every following ge_step()
 * (m NULL or m->n_triads 0: identity).  Checks the triads against the model's
 * inputs (index < n_inputs, no channel twice, entries within +-2^14): on
 * GE_ERR_MOUNTING the previous mounting stays in force.  Identity triads (2^14 on
 * the diagonal, 0 elsewhere) change nothing and are not kept in st->mount, so an
 * all-identity mounting costs what no mounting costs.  Needs ge_init() first.
 */
ge_status ge_set_mounting(ge_state *st, const ge_mounting *m);
/** Zero the recurrent state, re-arm the filter's steady-state start and the detector (the mounting stays). */
ge_status ge_reset(ge_state *st);
/** One sample of raw int16 sensor counts [n_inputs] in, logits / label / event out. */
ge_status ge_step(ge_state *st, const int16_t *counts, ge_output *out);
/**
 * n samples (counts[n][n_inputs], row-major) through ge_step().  labels (nullable)
 * receives each step's debounced label; events (nullable) up to max_events events;
 * *n_events (nullable) the number of events found (may exceed max_events).
 */
ge_status ge_run(ge_state *st, const int16_t *counts, uint32_t n, int8_t *labels, ge_event *events,
                 uint32_t max_events, uint32_t *n_events);

#ifdef __cplusplus
}
#endif
#endif /* GAITEDGE_RT_H */
