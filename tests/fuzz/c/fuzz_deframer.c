/*
 * fuzz_deframer.c - libFuzzer target: the frame decoder of ge_proto.c.
 *
 * The input goes through gp_decoder_push byte by byte.  Every verdict must agree with the
 * counters, and every frame it accepts must re-encode (gp_frame_encode) to wire bytes that
 * decode to the same frame.  Then the input, cut to the largest payload, is sent as the
 * payload of a frame and must come back exactly.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ge_proto.h"

static uint8_t scratch[GP_MAX_FRAME], wire[GP_MAX_ENCODED];

/* Decode wire[n] with a fresh decoder: the one frame must equal (type, seq, payload, len). */
static void roundtrip(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len)
{
    static gp_decoder d2;
    size_t n = gp_frame_encode(type, seq, payload, len, scratch, wire, sizeof wire), i;
    int got = 0;
    if (n == 0 || n > GP_MAX_ENCODED) __builtin_trap();
    gp_decoder_init(&d2);
    for (i = 0; i < n; i++) {
        const int r = gp_decoder_push(&d2, wire[i]);
        if (r < 0) __builtin_trap();
        if (r == GP_FRAME) {
            if (i + 1 != n || got) __builtin_trap();
            got = 1;
            if (d2.frame.version != GP_VERSION || d2.frame.type != type || d2.frame.seq != seq ||
                d2.frame.len != len || memcmp(d2.frame.payload, payload, len) != 0)
                __builtin_trap();
        }
    }
    if (!got) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gp_decoder d;
    static uint8_t copy[GP_MAX_PAYLOAD];
    uint32_t ok = 0, crc = 0, framing = 0, oversize = 0;
    size_t i;
    gp_decoder_init(&d);
    for (i = 0; i < size; i++) {
        const int r = gp_decoder_push(&d, data[i]);
        switch (r) {
        case GP_NONE: break;
        case GP_FRAME:
            ok++;
            if (d.frame.len > GP_MAX_PAYLOAD || d.frame.payload != d.buf + GP_HEADER_BYTES) __builtin_trap();
            if (gp_crc32(0, d.buf, GP_HEADER_BYTES + d.frame.len) != gp_rd32(d.buf + GP_HEADER_BYTES + d.frame.len))
                __builtin_trap();
            memcpy(copy, d.frame.payload, d.frame.len);
            if (d.frame.version == GP_VERSION) roundtrip(d.frame.type, d.frame.seq, copy, d.frame.len);
            break;
        case GP_ERR_CRC: crc++; break;
        case GP_ERR_FRAMING: framing++; break;
        case GP_ERR_OVERSIZE: oversize++; break;
        default: __builtin_trap();
        }
    }
    if (d.cnt.frames_ok != ok || d.cnt.crc_errors != crc || d.cnt.framing_errors != framing ||
        d.cnt.oversize != oversize)
        __builtin_trap();
    if (size >= 3) {
        const size_t len = size - 3 > GP_MAX_PAYLOAD ? GP_MAX_PAYLOAD : size - 3;
        roundtrip(data[0], gp_rd16(data + 1), data + 3, (uint16_t)len);
    }
    return 0;
}
