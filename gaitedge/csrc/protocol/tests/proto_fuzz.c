/*
 * proto_fuzz.c - seeded random robustness run of the C frame decoder (build it with
 * -fsanitize=address,undefined; tests/test_protocol.py does).
 *
 *   proto_fuzz SEED FRAMES
 *
 * Sends FRAMES random frames (payloads 0..1024 bytes, many zeros) through gp_frame_encode,
 * mutating about half of them on the way: bit flips, dropped bytes, inserted garbage
 * (zeros included), truncation, runs of non-zero bytes longer than any frame, and frames
 * whose length field lies (with a correct CRC).  Oracle, checked at every byte:
 *   - every unmutated frame is decoded exactly, at its own closing delimiter;
 *   - anything accepted equals a frame that was really sent (the current or previous one);
 *   - verdicts and counters agree.
 * Then a stretch of pure random bytes.  Exit status 0 when all holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ge_proto.h"

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    uint8_t payload[GP_MAX_PAYLOAD];
} sent_frame;

static gp_decoder dec;
static unsigned long n_ok, n_crc, n_framing, n_oversize, failures;

static int same(const sent_frame *s)
{
    return dec.frame.type == s->type && dec.frame.seq == s->seq && dec.frame.len == s->len &&
           memcmp(dec.frame.payload, s->payload, s->len) == 0;
}

static int feed(uint8_t b)
{
    int r = gp_decoder_push(&dec, b);
    if (r == GP_FRAME) n_ok++;
    if (r == GP_ERR_CRC) n_crc++;
    if (r == GP_ERR_FRAMING) n_framing++;
    if (r == GP_ERR_OVERSIZE) n_oversize++;
    return r;
}

static void fail(const char *what, unsigned long i)
{
    if (failures < 10) fprintf(stderr, "FAIL frame %lu: %s\n", i, what);
    failures++;
}

/* wire bytes of a frame whose header says `len_field` (CRC correct over the lying header) */
static size_t lying_frame(const sent_frame *f, uint16_t len_field, uint8_t *out, size_t cap)
{
    static uint8_t raw[GP_MAX_FRAME];
    size_t n;
    raw[0] = GP_VERSION;
    raw[1] = f->type;
    gp_wr16(raw + 2, f->seq);
    gp_wr16(raw + 4, len_field);
    memcpy(raw + 6, f->payload, f->len);
    gp_wr32(raw + 6 + f->len, gp_crc32(0, raw, 6u + f->len));
    out[0] = 0;
    n = gp_cobs_encode(raw, 10u + f->len, out + 1, cap - 2);
    out[n + 1] = 0;
    return n + 2;
}

int main(int argc, char **argv)
{
    static sent_frame cur, prev;
    static uint8_t wire[GP_MAX_ENCODED + 4096], scratch[GP_MAX_FRAME], tmp[GP_MAX_ENCODED + 4096];
    unsigned long seed = argc > 1 ? strtoul(argv[1], NULL, 0) : 1, frames = argc > 2 ? strtoul(argv[2], NULL, 0) : 200000;
    unsigned long i, mutated = 0, random_bytes = 0;
    size_t j;
    rng_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0xBF58476D1CE4E5B9ull);
    if (rng_state == 0) rng_state = 1;
    gp_decoder_init(&dec);
    memset(&prev, 0, sizeof prev);
    prev.len = 0xFFFF; /* nothing sent yet */
    for (i = 0; i < frames; i++) {
        uint32_t pick = below(100);
        size_t n, k;
        int mut = below(100) < 45 ? (int)(1 + below(7)) : 0;
        cur.type = (uint8_t)rnd();
        cur.seq = (uint16_t)rnd();
        cur.len = (uint16_t)(pick < 70 ? below(49) : pick < 95 ? 49 + below(252) : 301 + below(724));
        if (below(200) == 0) cur.len = GP_MAX_PAYLOAD;
        for (k = 0; k < cur.len; k++) cur.payload[k] = below(5) == 0 ? 0 : (uint8_t)rnd();
        n = gp_frame_encode(cur.type, cur.seq, cur.payload, cur.len, scratch, wire, sizeof wire);
        if (n == 0 || n > GP_MAX_ENCODED) {
            fail("gp_frame_encode refused a valid frame", i);
            continue;
        }
        switch (mut) {
        case 1: /* flip bits */
            for (k = 1 + below(3); k > 0; k--) wire[below((uint32_t)n)] ^= (uint8_t)(1u << below(8));
            break;
        case 2: /* drop bytes */
            for (k = 1 + below(3); k > 0 && n > 1; k--) {
                size_t at = below((uint32_t)n);
                memmove(wire + at, wire + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3: { /* insert garbage */
            size_t at = below((uint32_t)n + 1), g = 1 + below(20);
            memmove(wire + at + g, wire + at, n - at);
            for (k = 0; k < g; k++) wire[at + k] = below(4) == 0 ? 0 : (uint8_t)rnd();
            n += g;
            break;
        }
        case 4: /* truncate */
            n = below((uint32_t)n);
            break;
        case 5: /* a run of non-zero bytes longer than any frame */
            n = 1100 + below(2000);
            for (k = 0; k < n; k++) wire[k] = (uint8_t)(1 + below(255));
            wire[n++] = 0;
            break;
        case 6: /* length field > max, CRC right */
            n = lying_frame(&cur, (uint16_t)(GP_MAX_PAYLOAD + 1 + below(60000)), wire, sizeof wire);
            break;
        case 7: /* length field differs from the payload, CRC right */
            n = lying_frame(&cur, (uint16_t)((cur.len + 1 + below(40)) % (GP_MAX_PAYLOAD + 1)), wire, sizeof wire);
            break;
        default:
            break;
        }
        if (mut) mutated++;
        for (j = 0; j < n; j++) {
            int r = feed(wire[j]);
            if (r == GP_FRAME && !same(&cur) && !(prev.len != 0xFFFF && same(&prev)))
                fail("accepted a frame that was never sent", i);
            if (!mut && j + 1 == n && (r != GP_FRAME || !same(&cur))) fail("an intact frame was not decoded", i);
            if (!mut && j + 1 < n && r == GP_FRAME && same(&cur)) fail("frame decoded before its delimiter", i);
        }
        memcpy(&prev, &cur, sizeof cur);
    }
    /* pure random bytes, then one good frame must still come through */
    for (i = 0; i < frames * 20; i++) {
        feed(below(8) == 0 ? 0 : (uint8_t)rnd());
        random_bytes++;
    }
    cur.type = 1;
    cur.seq = 7;
    cur.len = 3;
    memcpy(cur.payload, "\x00\x01\x00", 3);
    j = gp_frame_encode(cur.type, cur.seq, cur.payload, cur.len, scratch, tmp, sizeof tmp);
    {
        size_t k;
        int last = 0;
        for (k = 0; k < j; k++) last = feed(tmp[k]);
        if (last != GP_FRAME || !same(&cur)) fail("no resync after random bytes", frames);
    }
    if (dec.cnt.frames_ok != n_ok || dec.cnt.crc_errors != n_crc || dec.cnt.framing_errors != n_framing ||
        dec.cnt.oversize != n_oversize)
        fail("counters disagree with verdicts", frames);
    printf("seed %lu: %lu frames (%lu mutated) + %lu random bytes: ok %lu, crc %lu, framing %lu, oversize %lu; "
           "failures %lu\n",
           seed, frames, mutated, random_bytes, n_ok, n_crc, n_framing, n_oversize, failures);
    return failures ? 1 : 0;
}
