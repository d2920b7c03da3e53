/*
 * fuzz_fw_requests.c - libFuzzer target: the firmware's request handling (fw_app.c with
 * fw_blob.c, fw_mount.c, fw_mount_store.c and the built-in model) on the RAM board.
 *
 * Input: records  u8 type, u8 flags, u16 len, len bytes  (len cut to what is left).
 * A record becomes one request frame (version 1, its type, seq counting up) sent to the
 * board's UART; flags bit 0 sends the record's bytes unframed instead (line noise),
 * bit 1 repeats the previous seq, bit 2 puts a right header CRC into a 64-byte
 * FLASH_BEGIN payload.  A REBOOT restarts the firmware with the flash kept.  Every reply
 * must be exactly one valid frame (fake_board.c aborts otherwise).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_board.h"
#include "fw_app.h"
#include "ge_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t scratch[GP_MAX_FRAME], wire[GP_MAX_ENCODED], payload[GP_MAX_PAYLOAD];
    static volatile size_t pos;
    static volatile uint16_t seq;
    fake_board_clear();
    pos = 0;
    seq = 0;
    if (setjmp(fake_reset_point) != 0) {
        /* REBOOT: the firmware starts again on the same flash */
    }
    fw_init();
    while (pos + 4u <= size) {
        const uint8_t type = data[pos], flags = data[pos + 1];
        size_t len = gp_rd16(data + pos + 2), n;
        pos += 4u;
        if (len > size - pos) len = size - pos;
        if (flags & 1u) {
            const uint8_t *raw = data + pos;
            pos += len;
            fake_uart_feed(raw, (uint32_t)len);
            continue;
        }
        if (len > GP_MAX_PAYLOAD) len = GP_MAX_PAYLOAD;
        memcpy(payload, data + pos, len);
        pos += len;
        if ((flags & 4u) && type == GP_FLASH_BEGIN && len == 64u) gp_wr32(payload + 60, gp_crc32(0, payload, 60));
        if (!(flags & 2u)) seq++;
        n = gp_frame_encode(type, seq, payload, (uint16_t)len, scratch, wire, sizeof wire);
        if (n == 0) __builtin_trap();
        fake_uart_feed(wire, (uint32_t)n);
    }
    return 0;
}
