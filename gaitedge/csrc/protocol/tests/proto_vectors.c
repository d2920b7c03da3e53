/*
 * proto_vectors.c - runs ge_proto.c on the shared test vectors (tests/test_protocol.py).
 *
 * One command per stdin line, one answer line per command on stdout:
 *   C <hex>                 -> crc32 as 8 hex digits
 *   B <hex>                 -> COBS encoding as hex
 *   E <type> <seq> <hex|->  -> the complete wire frame as hex
 *   D <hex>                 -> each verdict of a fresh decoder fed these bytes, space separated
 *                              ("ok:TT:SSSS:payloadhex", "crc", "framing", "oversize"),
 *                              then "| ok crc framing oversize" counters
 *   M <n_inputs> <hex|->    -> SET_MOUNTING payload through fw_mount_decode (../firmware/fw_mount.c) for a
 *                              model with n_inputs channels: "code detail hex", hex = fw_mount_encode of
 *                              the decoded mounting ("-" when refused)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_mount.h"
#include "ge_proto.h"

static unsigned char *unhex(const char *s, size_t *n)
{
    size_t len = strlen(s), i;
    unsigned char *out;
    if (strcmp(s, "-") == 0) len = 0;
    out = malloc(len / 2 + 1);
    for (i = 0; i + 1 < len; i += 2) {
        unsigned v;
        sscanf(s + i, "%2x", &v);
        out[i / 2] = (unsigned char)v;
    }
    *n = len / 2;
    return out;
}

static void puthex(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) printf("%02x", p[i]);
}

int main(void)
{
    static char line[1 << 20];
    static gp_decoder dec;
    static unsigned char out[GP_MAX_ENCODED + 16], scratch[GP_MAX_FRAME];
    while (fgets(line, sizeof line, stdin)) {
        char *cmd = strtok(line, " \r\n"), *a = strtok(NULL, " \r\n");
        size_t n = 0, i;
        unsigned char *b;
        if (!cmd) continue;
        if (strcmp(cmd, "C") == 0) {
            b = unhex(a ? a : "-", &n);
            printf("%08lx\n", (unsigned long)gp_crc32(0, b, n));
            free(b);
        } else if (strcmp(cmd, "B") == 0) {
            static unsigned char enc[1 << 19];
            size_t m;
            b = unhex(a ? a : "-", &n);
            m = gp_cobs_encode(b, n, enc, sizeof enc);
            puthex(enc, m);
            printf("\n");
            free(b);
        } else if (strcmp(cmd, "E") == 0) {
            unsigned type = (unsigned)strtoul(a, NULL, 0);
            unsigned seq = (unsigned)strtoul(strtok(NULL, " \r\n"), NULL, 0);
            char *h = strtok(NULL, " \r\n");
            size_t m;
            b = unhex(h ? h : "-", &n);
            m = gp_frame_encode((uint8_t)type, (uint16_t)seq, b, (uint16_t)n, scratch, out, sizeof out);
            puthex(out, m);
            printf("\n");
            free(b);
        } else if (strcmp(cmd, "D") == 0) {
            b = unhex(a ? a : "-", &n);
            gp_decoder_init(&dec);
            for (i = 0; i < n; i++) {
                int r = gp_decoder_push(&dec, b[i]);
                if (r == GP_FRAME) {
                    printf("ok:%02x:%04x:", dec.frame.type, dec.frame.seq);
                    puthex(dec.frame.payload, dec.frame.len);
                    if (dec.frame.len == 0) printf("-");
                    if (dec.frame.version != GP_VERSION) printf(":v%u", dec.frame.version);
                    printf(" ");
                } else if (r == GP_ERR_CRC) {
                    printf("crc ");
                } else if (r == GP_ERR_FRAMING) {
                    printf("framing ");
                } else if (r == GP_ERR_OVERSIZE) {
                    printf("oversize ");
                }
            }
            printf("| %lu %lu %lu %lu\n", (unsigned long)dec.cnt.frames_ok, (unsigned long)dec.cnt.crc_errors,
                   (unsigned long)dec.cnt.framing_errors, (unsigned long)dec.cnt.oversize);
            free(b);
        } else if (strcmp(cmd, "M") == 0) {
            const unsigned n_inputs = (unsigned)strtoul(a, NULL, 0);
            char *h = strtok(NULL, " \r\n");
            ge_mounting m;
            uint32_t detail = 0;
            unsigned char enc[FW_MOUNT_MAX_BYTES];
            int code;
            b = unhex(h ? h : "-", &n);
            code = fw_mount_decode(b, (uint32_t)n, (uint16_t)n_inputs, &m, &detail);
            printf("%d %lu ", code, (unsigned long)detail);
            if (code == 0)
                puthex(enc, fw_mount_encode(&m, enc));
            else
                printf("-");
            printf("\n");
            free(b);
        } else {
            printf("?\n");
        }
        fflush(stdout);
    }
    return 0;
}
