/* ge_proto.c - framing of the gaitedge wire protocol (see ge_proto.h, ../PROTOCOL.md). */
#include "ge_proto.h"

/* 16-entry (nibble) table: 64 bytes of flash, two lookups per byte. */
static const uint32_t gp_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t gp_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ gp_crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ gp_crc_nibble[crc & 15u];
    }
    return ~crc;
}

void gp_decoder_init(gp_decoder *d)
{
    uint32_t i;
    uint8_t *raw = (uint8_t *)d;
    for (i = 0; i < sizeof *d; i++) raw[i] = 0;
}

static void gp_restart(gp_decoder *d)
{
    d->n = 0;
    d->code = 0;
    d->zero = 0;
    d->overflow = 0;
    d->started = 0;
}

static int gp_finish(gp_decoder *d)
{
    uint32_t len, crc;
    if (d->overflow) {
        d->cnt.oversize++;
        return GP_ERR_OVERSIZE;
    }
    if (d->code != 0 || d->n < GP_HEADER_BYTES + GP_CRC_BYTES) { /* truncated block or too short */
        d->cnt.framing_errors++;
        return GP_ERR_FRAMING;
    }
    len = gp_rd16(d->buf + 4);
    if (len > GP_MAX_PAYLOAD) {
        d->cnt.oversize++;
        return GP_ERR_OVERSIZE;
    }
    if (len + GP_HEADER_BYTES + GP_CRC_BYTES != d->n) {
        d->cnt.framing_errors++;
        return GP_ERR_FRAMING;
    }
    crc = gp_crc32(0, d->buf, GP_HEADER_BYTES + len);
    if (crc != gp_rd32(d->buf + GP_HEADER_BYTES + len)) {
        d->cnt.crc_errors++;
        return GP_ERR_CRC;
    }
    d->frame.version = d->buf[0];
    d->frame.type = d->buf[1];
    d->frame.seq = gp_rd16(d->buf + 2);
    d->frame.len = (uint16_t)len;
    d->frame.payload = d->buf + GP_HEADER_BYTES;
    d->cnt.frames_ok++;
    return GP_FRAME;
}

static void gp_put(gp_decoder *d, uint8_t b)
{
    if (d->n >= GP_MAX_FRAME) {
        d->overflow = 1;
        return;
    }
    d->buf[d->n++] = b;
}

int gp_decoder_push(gp_decoder *d, uint8_t b)
{
    int r;
    if (b == 0) {
        if (!d->started) return GP_NONE; /* empty frame: extra delimiters are allowed */
        r = gp_finish(d);
        gp_restart(d);
        return r;
    }
    d->started = 1;
    if (d->overflow) return GP_NONE;
    if (d->code == 0) { /* a code byte */
        if (d->zero) gp_put(d, 0);
        d->code = (uint8_t)(b - 1u);
        d->zero = (uint8_t)(b != 0xFFu);
    } else {
        gp_put(d, b);
        d->code--;
    }
    return GP_NONE;
}

size_t gp_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t out = 1, code_at = 0, i;
    uint8_t code = 1;
    if (cap < n + n / 254u + 1u) return 0; /* worst case */
    for (i = 0; i < n; i++) {
        if (src[i] != 0) {
            dst[out++] = src[i];
            code++;
        }
        if (src[i] == 0 || code == 0xFFu) { /* close the block */
            dst[code_at] = code;
            code = 1;
            code_at = out;
            if (src[i] == 0 || i + 1 < n) out++;
        }
    }
    if (code_at < out) dst[code_at] = code;
    return out;
}

size_t gp_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *scratch,
                       uint8_t *out, size_t cap)
{
    size_t n, i;
    uint32_t crc;
    if (len > GP_MAX_PAYLOAD || cap < 3) return 0;
    scratch[0] = (uint8_t)GP_VERSION;
    scratch[1] = type;
    gp_wr16(scratch + 2, seq);
    gp_wr16(scratch + 4, len);
    if (payload != NULL && payload != scratch + GP_HEADER_BYTES)
        for (i = 0; i < len; i++) scratch[GP_HEADER_BYTES + i] = payload[i];
    crc = gp_crc32(0, scratch, GP_HEADER_BYTES + (size_t)len);
    gp_wr32(scratch + GP_HEADER_BYTES + len, crc);
    out[0] = 0;
    n = gp_cobs_encode(scratch, GP_HEADER_BYTES + (size_t)len + GP_CRC_BYTES, out + 1, cap - 2);
    if (n == 0) return 0;
    out[1 + n] = 0;
    return n + 2;
}
