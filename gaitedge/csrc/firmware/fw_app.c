/*
 * fw_app.c - the gaitedge firmware: UART bytes -> frames -> requests -> replies.
 *
 * The receive interrupt puts bytes into a ring (fw_uart_rx; a full ring counts an
 * overrun); the main loop decodes frames byte by byte (ge_proto.c), runs one ge_step()
 * per received sample on the active model and answers every request with one reply
 * frame (PROTOCOL.md).  When the ring is empty the CPU sleeps in board_idle() (wfi).
 * The active model is the built-in one (model_data.c) or the newest committed weights
 * slot (fw_blob.c); the architecture is fixed at build time (fw_model.h).  The sensor
 * mounting (SET_MOUNTING, fw_mount.c) is kept in the board's settings pages and applied
 * with ge_set_mounting() after every ge_init(), so it survives reboots and weight updates.
 */
#include "fw_app.h"

#include <string.h>

#include "board.h"
#include "fw_blob.h"
#include "fw_model.h"
#include "fw_mount.h"
#include "gaitedge_rt.h"
#include "ge_proto.h"

#if (FW_RX_RING & (FW_RX_RING - 1u)) != 0
#error "FW_RX_RING must be a power of two"
#endif

/* ---- receive ring (written by the interrupt, read by the main loop) ---------------------- */
static uint8_t rx_ring[FW_RX_RING];
static volatile uint32_t rx_head, rx_tail;
static volatile uint32_t rx_overruns, rx_bytes, rx_high;

void fw_uart_rx(uint8_t b)
{
    uint32_t h = rx_head, fill = h - rx_tail;
    if (fill >= FW_RX_RING) {
        rx_overruns++;
        return;
    }
    rx_ring[h & (FW_RX_RING - 1u)] = b;
    __asm__ volatile("" ::: "memory");
    rx_head = h + 1u;
    rx_bytes++;
    if (fill + 1u > rx_high) rx_high = fill + 1u;
}

void fw_uart_overrun(void) { rx_overruns++; }

/* ---- application state ------------------------------------------------------------------ */
#define N_INPUTS FW_N_INPUTS
#define N_CLASSES FW_N_CLASSES
#define RECORD_BYTES (8u + 2u * N_CLASSES)
#define MAX_BY_IN ((GP_MAX_PAYLOAD - 4u) / (2u * N_INPUTS))
#define MAX_BY_OUT ((GP_MAX_PAYLOAD - 8u) / RECORD_BYTES)
#define MAX_SAMPLES (MAX_BY_IN < MAX_BY_OUT ? MAX_BY_IN : MAX_BY_OUT)

static uint64_t arena[(GE_MODEL_DATA_ARENA_BYTES + 7u) / 8u];

static struct {
    gp_decoder dec;
    ge_state st;
    ge_model models[2];                    /* slot-bound descriptors (double buffered) */
    ge_rnn_params layers[2][FW_N_LAYERS];
    const ge_model *model;                 /* the active model */
    int active;                            /* -1 built-in, else the slot */
    uint32_t generation;
    ge_mounting mount;                     /* the sensor mounting in force (as set, identity triads included) */
    uint32_t mount_gen;                    /* generation of its flash record (0: none) */
    fw_flash_session flash;
    uint8_t tx_raw[GP_MAX_FRAME];          /* reply under construction (payload at +6) */
    uint8_t tx_enc[GP_MAX_ENCODED];        /* the last reply as sent (replayed for duplicates) */
    uint32_t tx_len;
    uint8_t have_last;                     /* the last request was SAMPLES: its reply is in tx_enc */
    uint16_t last_seq;
    uint32_t last_crc;
    /* statistics */
    uint32_t naks, duplicates, steps, steps_timed, tmin, tmax, tlast, tx_bytes, frame_ticks;
    uint64_t ticks_total;
} fw;

/* ---- model selection ------------------------------------------------------------------ */
/* ge_init() starts with the identity: put the mounting in force again (it was checked when set). */
static void apply_mounting(void)
{
    if (ge_set_mounting(&fw.st, &fw.mount) != GE_OK) {
        memset(&fw.mount, 0, sizeof fw.mount);
        fw.mount_gen = 0;
    }
}

static void activate_builtin(void)
{
    fw.model = &ge_model_data;
    fw.active = -1;
    fw.generation = 0;
}

static void select_model(void)
{
    int k, best = -1;
    uint32_t best_gen = 0;
    fw_slot_info info;
    activate_builtin();
    for (k = 0; k < BOARD_N_SLOTS; k++) {
        if (fw_slot_check(k, &info) == 0 && (best < 0 || info.generation > best_gen)) {
            best = k;
            best_gen = info.generation;
        }
    }
    if (best >= 0 && fw_slot_bind(best, &fw.models[best], fw.layers[best]) == GE_OK) {
        fw.model = &fw.models[best];
        fw.active = best;
        fw.generation = best_gen;
    }
    if (ge_init(&fw.st, fw.model, arena, sizeof arena) != GE_OK) { /* cannot happen for a checked model */
        activate_builtin();
        ge_init(&fw.st, fw.model, arena, sizeof arena);
    }
    apply_mounting();
}

/* ---- replies ---------------------------------------------------------------------------- */
static uint8_t *payload_buf(void) { return fw.tx_raw + GP_HEADER_BYTES; }

static void send_reply(uint8_t type, uint16_t seq, uint32_t len)
{
    fw.tx_len = (uint32_t)gp_frame_encode(type, seq, NULL, (uint16_t)len, fw.tx_raw, fw.tx_enc, sizeof fw.tx_enc);
    board_uart_write(fw.tx_enc, fw.tx_len);
    fw.tx_bytes += fw.tx_len;
}

static void nak(const gp_frame *f, uint16_t code, uint32_t detail, const char *text)
{
    uint8_t *p = payload_buf();
    uint32_t n = 0;
    p[0] = f->type;
    p[1] = 0;
    gp_wr16(p + 2, code);
    gp_wr32(p + 4, detail);
    while (text != NULL && text[n] != '\0' && n < 120u) {
        p[8 + n] = (uint8_t)text[n];
        n++;
    }
    fw.naks++;
    send_reply(GP_NAK, f->seq, 8u + n);
}

static uint32_t put_str(uint8_t *p, uint32_t pos, const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0' && n < 255u && pos + 1u + n < GP_MAX_PAYLOAD) n++;
    if (pos + 1u + n > GP_MAX_PAYLOAD) return pos;
    p[pos] = (uint8_t)n;
    memcpy(p + pos + 1u, s, n);
    return pos + 1u + n;
}

static uint32_t build_info(uint8_t *p)
{
    uint32_t pos, k;
    const ge_model *m = fw.model;
    memset(p, 0, 132);
    p[0] = GP_VERSION;
    p[1] = FW_VERSION_MAJOR;
    p[2] = FW_VERSION_MINOR;
    p[3] = FW_VERSION_PATCH;
    gp_wr16(p + 4, GP_MAX_PAYLOAD);
    gp_wr16(p + 6, (uint16_t)MAX_SAMPLES);
    gp_wr16(p + 8, (uint16_t)(FW_RX_RING > 0xFFFFu ? 0xFFFFu : FW_RX_RING));
    gp_wr16(p + 10, FW_MAX_CHUNK);
    gp_wr32(p + 12, m->rate_mhz);
    p[16] = (uint8_t)m->pre.n_inputs;
    p[17] = (uint8_t)m->n_classes;
    gp_wr16(p + 18, m->delay);
    gp_wr16(p + 20, m->events.min_run);
    p[22] = (uint8_t)m->events.swing;
    p[23] = (uint8_t)(fw.active + 1);
    gp_wr32(p + 24, fw.generation);
    gp_wr32(p + 28, board_tick_hz());
    gp_wr32(p + 32, fw.st.step);
    memcpy(p + 36, fw_arch_hash, 32);
    for (k = 0; k < 64u && m->weights_sha256 != NULL && m->weights_sha256[k] != '\0'; k++)
        p[68 + k] = (uint8_t)m->weights_sha256[k];
    pos = 132;
    pos = put_str(p, pos, board_name());
    pos = put_str(p, pos, FW_FAMILY);
    for (k = 0; k < m->n_classes; k++) pos = put_str(p, pos, m->class_names[k]);
    for (k = 0; k < FW_N_INPUTS; k++) pos = put_str(p, pos, fw_channel_names[k]);
    for (k = 0; k < FW_N_INPUTS; k++) pos = put_str(p, pos, fw_channel_units[k]);
    for (k = 0; k < FW_N_INPUTS && pos + 8u <= GP_MAX_PAYLOAD; k++, pos += 8u) {
        gp_wr32(p + pos, (uint32_t)fw_channel_lsb_bits[k]);
        gp_wr32(p + pos + 4u, (uint32_t)(fw_channel_lsb_bits[k] >> 32));
    }
    return pos;
}

static void put_stat(uint8_t *p, uint32_t *pos, uint32_t v)
{
    gp_wr32(p + *pos, v);
    *pos += 4;
}

static uint32_t build_stats(uint8_t *p)
{
    uint32_t pos = 0;
    put_stat(p, &pos, fw.dec.cnt.frames_ok);
    put_stat(p, &pos, fw.dec.cnt.crc_errors);
    put_stat(p, &pos, fw.dec.cnt.framing_errors);
    put_stat(p, &pos, fw.dec.cnt.oversize);
    put_stat(p, &pos, rx_overruns);
    put_stat(p, &pos, fw.naks);
    put_stat(p, &pos, fw.duplicates);
    put_stat(p, &pos, fw.steps);
    put_stat(p, &pos, fw.steps_timed);
    put_stat(p, &pos, (uint32_t)fw.ticks_total);
    put_stat(p, &pos, (uint32_t)(fw.ticks_total >> 32));
    put_stat(p, &pos, fw.steps_timed ? fw.tmin : 0u);
    put_stat(p, &pos, fw.tmax);
    put_stat(p, &pos, fw.tlast);
    put_stat(p, &pos, board_tick_hz());
    put_stat(p, &pos, rx_bytes);
    put_stat(p, &pos, fw.tx_bytes);
    put_stat(p, &pos, rx_high);
    put_stat(p, &pos, fw.frame_ticks);
    return pos;
}

static void clear_stats(void)
{
    memset(&fw.dec.cnt, 0, sizeof fw.dec.cnt);
    board_irq_disable();
    rx_overruns = 0;
    rx_bytes = 0;
    rx_high = 0;
    board_irq_enable();
    fw.naks = fw.duplicates = fw.steps = fw.steps_timed = fw.tmax = fw.tlast = fw.tx_bytes = 0;
    fw.tmin = 0xFFFFFFFFu;
    fw.ticks_total = 0;
}

/* ---- requests --------------------------------------------------------------------------- */
static void do_samples(const gp_frame *f)
{
    const uint8_t *in = f->payload;
    uint8_t *p = payload_buf(), *r;
    uint32_t n, i, c;
    int16_t counts[FW_N_INPUTS];
    ge_output o;
    if (f->len < 4u) {
        nak(f, GP_E_LENGTH, 4, "SAMPLES needs n, channels, flags");
        return;
    }
    n = gp_rd16(in);
    if (in[2] != N_INPUTS) {
        nak(f, GP_E_CHANNELS, N_INPUTS, "channel count differs from the model's");
        return;
    }
    if (n == 0 || n > MAX_SAMPLES) {
        nak(f, GP_E_TOO_MANY, MAX_SAMPLES, "samples per frame out of range");
        return;
    }
    if (f->len != 4u + 2u * n * N_INPUTS) {
        nak(f, GP_E_LENGTH, 4u + 2u * n * N_INPUTS, "SAMPLES length differs from n * channels * 2 + 4");
        return;
    }
    gp_wr32(p, fw.st.step);
    gp_wr16(p + 4, (uint16_t)n);
    p[6] = N_CLASSES;
    p[7] = 0;
    r = p + 8;
    for (i = 0; i < n; i++) {
        uint32_t t0, dt;
        const uint8_t *s = in + 4u + 2u * i * N_INPUTS;
        for (c = 0; c < N_INPUTS; c++) counts[c] = (int16_t)gp_rd16(s + 2u * c);
        t0 = board_ticks();
        ge_step(&fw.st, counts, &o);
        dt = board_ticks() - t0;
        fw.steps++;
        fw.steps_timed++;
        fw.ticks_total += dt;
        fw.tlast = dt;
        if (dt < fw.tmin) fw.tmin = dt;
        if (dt > fw.tmax) fw.tmax = dt;
        r[0] = (uint8_t)o.label;
        r[1] = (uint8_t)o.raw_label;
        r[2] = o.event;
        r[3] = 0;
        gp_wr32(r + 4, (uint32_t)o.event_sample);
        for (c = 0; c < N_CLASSES; c++) gp_wr16(r + 8u + 2u * c, (uint16_t)o.logits[c]);
        r += RECORD_BYTES;
    }
    send_reply(GP_SAMPLES | GP_REPLY, f->seq, 8u + n * RECORD_BYTES);
}

static void do_flash_status(const gp_frame *f)
{
    uint8_t *p = payload_buf();
    int k;
    fw_slot_info info;
    memset(p, 0, 12u + 72u * BOARD_N_SLOTS);
    p[0] = fw.flash.state;
    p[1] = fw.flash.target < 0 ? 0xFFu : (uint8_t)fw.flash.target;
    p[2] = (uint8_t)(fw.active + 1);
    p[3] = BOARD_N_SLOTS;
    gp_wr32(p + 4, fw.flash.received);
    gp_wr32(p + 8, fw.flash.payload_len);
    for (k = 0; k < BOARD_N_SLOTS; k++) {
        uint8_t *q = p + 12 + 72 * k;
        if (fw_slot_check(k, &info) == 0) {
            q[0] = 1;
            gp_wr32(q + 4, info.generation);
            memcpy(q + 8, info.model_hash, 64);
        }
    }
    send_reply(GP_FLASH_STATUS | GP_REPLY, f->seq, 12u + 72u * BOARD_N_SLOTS);
}

static const char *flash_text(int code)
{
    switch (code) {
    case GP_E_BLOB_MAGIC: return "not a gaitedge weights blob";
    case GP_E_BLOB_VERSION: return "unsupported blob format version";
    case GP_E_HEADER_CRC: return "blob header CRC mismatch";
    case GP_E_ARCH: return "blob is for another model architecture than this firmware's";
    case GP_E_BLOB_SIZE: return "blob payload length is not this architecture's";
    case GP_E_STATE: return "not valid in the current flash state";
    case GP_E_OFFSET: return "unexpected chunk offset or length";
    case GP_E_VERIFY: return "payload CRC-32 mismatch: slot left uncommitted";
    case GP_E_FLASH: return "flash erase/write/read-back failed";
    case GP_E_MODEL: return "runtime refused the bound model";
    case GP_E_LENGTH: return "bad payload length";
    default: return "refused";
    }
}

static void do_flash(const gp_frame *f)
{
    uint8_t *p = payload_buf();
    uint32_t detail = 0;
    int r = 0;
    switch (f->type) {
    case GP_FLASH_BEGIN:
        r = fw_flash_begin(&fw.flash, f->payload, f->len, fw.active, &detail);
        if (r == 0) {
            p[0] = (uint8_t)fw.flash.target;
            p[1] = 0;
            gp_wr16(p + 2, FW_MAX_CHUNK);
            gp_wr32(p + 4, fw.flash.payload_len);
            send_reply(f->type | GP_REPLY, f->seq, 8);
            return;
        }
        if (r == GP_E_ARCH) { /* tell the host which architecture this firmware runs */
            detail = gp_rd32(fw_arch_hash);
        }
        break;
    case GP_FLASH_CHUNK:
        if (f->len < 5u) {
            r = GP_E_LENGTH;
            break;
        }
        r = fw_flash_chunk(&fw.flash, gp_rd32(f->payload), f->payload + 4, f->len - 4u, &detail);
        if (r == 0) {
            gp_wr32(p, detail);
            send_reply(f->type | GP_REPLY, f->seq, 4);
            return;
        }
        break;
    case GP_FLASH_VERIFY:
        r = fw_flash_verify(&fw.flash, &detail);
        if (r == 0) {
            gp_wr32(p, detail);
            send_reply(f->type | GP_REPLY, f->seq, 4);
            return;
        }
        break;
    case GP_FLASH_COMMIT:
        if (fw.flash.state == FW_FLASH_COMMITTED && fw.flash.target == fw.active) {
            r = 0; /* a repeated COMMIT (the first reply was lost): same answer */
        } else {
            int k = fw.flash.target;
            r = (k < 0) ? GP_E_STATE
                        : fw_flash_commit(&fw.flash, fw.generation + 1u, &fw.models[k], fw.layers[k], &detail);
            if (r == 0) {
                fw.model = &fw.models[k];
                fw.active = k;
                fw.generation++;
                if (ge_init(&fw.st, fw.model, arena, sizeof arena) != GE_OK) {
                    select_model(); /* unreachable: the slot was checked before the commit */
                }
                apply_mounting();
            }
        }
        if (r == 0) {
            memset(p, 0, 72);
            p[0] = (uint8_t)fw.active;
            gp_wr32(p + 4, fw.generation);
            memcpy(p + 8, fw.model->weights_sha256, 64);
            send_reply(f->type | GP_REPLY, f->seq, 72);
            return;
        }
        break;
    case GP_FLASH_ABORT:
        fw_flash_abort(&fw.flash);
        send_reply(f->type | GP_REPLY, f->seq, 0);
        return;
    default:
        break;
    }
    nak(f, (uint16_t)r, detail, flash_text(r));
}

static const char *mount_text(int code)
{
    switch (code) {
    case GP_E_LENGTH: return "mounting length is not 4 + 22 * triads";
    case GP_E_MOUNT_TRIADS: return "too many triads in the mounting";
    case GP_E_MOUNT_INDEX: return "mounting channel index out of range or used twice";
    case GP_E_MOUNT_ROTATION: return "mounting matrix is not a rotation (rows not orthonormal)";
    case GP_E_FLASH: return "settings flash write failed: previous mounting kept";
    default: return "mounting refused";
    }
}

/* Reply payload of SET_MOUNTING / GET_MOUNTING: u32 generation, then the mounting. */
static void mounting_reply(const gp_frame *f)
{
    uint8_t *p = payload_buf();
    gp_wr32(p, fw.mount_gen);
    send_reply(f->type | GP_REPLY, f->seq, 4u + fw_mount_encode(&fw.mount, p + 4));
}

static void do_set_mounting(const gp_frame *f)
{
    ge_mounting m;
    uint8_t now[FW_MOUNT_MAX_BYTES], want[FW_MOUNT_MAX_BYTES];
    uint32_t detail = 0, n_now, n_want;
    int r = fw_mount_decode(f->payload, f->len, N_INPUTS, &m, &detail);
    if (r != 0) {
        nak(f, (uint16_t)r, detail, mount_text(r));
        return;
    }
    n_now = fw_mount_encode(&fw.mount, now);
    n_want = fw_mount_encode(&m, want);
    if (fw.mount_gen == 0 || n_now != n_want || memcmp(now, want, n_want) != 0) { /* a repeat writes nothing */
        r = fw_mount_store(&m, fw.mount_gen + 1u);
        if (r != 0) {
            nak(f, (uint16_t)r, 0, mount_text(r));
            return;
        }
        fw.mount = m;
        fw.mount_gen++;
    }
    apply_mounting();
    ge_reset(&fw.st); /* a new stream with the new mounting (as RESET_STATE) */
    mounting_reply(f);
}

static void handle_frame(const gp_frame *f)
{
    uint32_t t0 = board_ticks();
    uint32_t crc = gp_rd32(f->payload + f->len);
    uint32_t len;
    if (f->version != GP_VERSION) {
        nak(f, GP_E_VERSION, GP_VERSION, "unsupported protocol version");
        fw.have_last = 0;
        return;
    }
    if (f->type == GP_SAMPLES && fw.have_last && f->seq == fw.last_seq && crc == fw.last_crc) {
        board_uart_write(fw.tx_enc, fw.tx_len); /* duplicate: replay, do not step again */
        fw.tx_bytes += fw.tx_len;
        fw.duplicates++;
        return;
    }
    fw.have_last = 0;
    switch (f->type) {
    case GP_PING:
        memcpy(payload_buf(), f->payload, f->len);
        send_reply(GP_PING | GP_REPLY, f->seq, f->len);
        break;
    case GP_INFO:
        len = build_info(payload_buf());
        send_reply(GP_INFO | GP_REPLY, f->seq, len);
        break;
    case GP_SAMPLES:
        do_samples(f);
        fw.have_last = 1;
        fw.last_seq = f->seq;
        fw.last_crc = crc;
        break;
    case GP_RESET_STATE:
        ge_reset(&fw.st);
        send_reply(GP_RESET_STATE | GP_REPLY, f->seq, 0);
        break;
    case GP_STATS:
        len = build_stats(payload_buf());
        send_reply(GP_STATS | GP_REPLY, f->seq, len);
        if (f->len >= 1u && f->payload[0] != 0) clear_stats();
        break;
    case GP_FLASH_BEGIN:
    case GP_FLASH_CHUNK:
    case GP_FLASH_VERIFY:
    case GP_FLASH_COMMIT:
    case GP_FLASH_ABORT:
        do_flash(f);
        break;
    case GP_FLASH_STATUS:
        do_flash_status(f);
        break;
    case GP_SET_MOUNTING:
        do_set_mounting(f);
        break;
    case GP_GET_MOUNTING:
        mounting_reply(f);
        break;
    case GP_REBOOT:
        send_reply(GP_REBOOT | GP_REPLY, f->seq, 0);
        board_reset();
        break;
    case GP_FACTORY_RESET: {
        int k, bad = 0;
        fw_flash_abort(&fw.flash);
        for (k = 0; k < BOARD_N_SLOTS; k++) bad |= board_slot_erase(k);
        bad |= fw_mount_erase();
        memset(&fw.mount, 0, sizeof fw.mount);
        fw.mount_gen = 0;
        select_model();
        if (bad)
            nak(f, GP_E_FLASH, 0, "slot or settings erase failed");
        else
            send_reply(GP_FACTORY_RESET | GP_REPLY, f->seq, 0);
        break;
    }
    default:
        nak(f, GP_E_TYPE, f->type, "unknown message type");
        break;
    }
    fw.frame_ticks = board_ticks() - t0;
}

/* ---- main loop ------------------------------------------------------------------------- */
void fw_init(void)
{
    uint32_t len;
    memset(&fw, 0, sizeof fw);
    fw.tmin = 0xFFFFFFFFu;
    fw.flash.target = -1;
    gp_decoder_init(&fw.dec);
    board_irq_disable();
    rx_head = rx_tail = 0;
    rx_overruns = rx_bytes = rx_high = 0;
    board_irq_enable();
    fw_mount_load(N_INPUTS, &fw.mount, &fw.mount_gen); /* none valid: identity */
    select_model();
    len = build_info(payload_buf());
    send_reply(GP_BOOT, 0, len);
}

void fw_poll(void)
{
    while (rx_tail != rx_head) {
        uint32_t t = rx_tail;
        uint8_t b = rx_ring[t & (FW_RX_RING - 1u)];
        __asm__ volatile("" ::: "memory");
        rx_tail = t + 1u;
        if (gp_decoder_push(&fw.dec, b) == GP_FRAME) handle_frame(&fw.dec.frame);
    }
    board_irq_disable();
    if (rx_tail == rx_head) board_idle();
    board_irq_enable();
}

void fw_main(void)
{
    board_init();
    fw_init();
    for (;;) fw_poll();
}
