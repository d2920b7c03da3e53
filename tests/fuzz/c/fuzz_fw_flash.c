/*
 * fuzz_fw_flash.c - libFuzzer target: what the firmware reads back from flash at boot,
 * the weight slots (fw_blob.c: commit record, blob header, payload CRC, binding and
 * ge_check_model of the bound model) and the mounting records (fw_mount_store.c).
 *
 * Input:  u8 fix, u8 fix2, 32 bytes commit record, 128 bytes settings record,
 *         then the slot image (blob header + payload, cut to fit before the commit record).
 * The slot image goes to slot 0 and the commit record to its end; the settings record to
 * page 0.  So that mutations reach the deeper checks, `fix` can make parts right:
 *   bit 0 the firmware's architecture hash in the header,  bit 1 the header CRC,
 *   bit 2 the payload CRC in the header and the commit record (and lengths, header CRC),
 *   bit 3 the commit record's magic and CRC,  bit 4 the settings record's magic, hash and CRC,
 *   bit 5 a copy of slot 0 in slot 1 with generation + 1 and a few payload bytes changed
 *   (fix2 says which; CRCs redone when bit 2 is set).
 * Then: fw_slot_check on both slots, fw_mount_load, and a boot (fw_init: select the model,
 * ge_init) followed by a SAMPLES request (counts from the image's last bytes) that steps
 * whatever model was selected.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "fake_board.h"
#include "fw_app.h"
#include "fw_blob.h"
#include "fw_model.h"
#include "fw_mount.h"
#include "ge_proto.h"

#define HDR FW_BLOB_HEADER_BYTES
#define COMMIT_AT (FAKE_SLOT_SIZE - FW_COMMIT_BYTES)

static void fix_slot(uint8_t *s, uint8_t fix)
{
    uint32_t plen = gp_rd32(s + 40);
    if (fix & 1u) memcpy(s + 8, fw_arch_hash, 32);
    if ((fix & 4u) && plen <= COMMIT_AT - HDR) gp_wr32(s + 44, gp_crc32(0, s + HDR, plen));
    if (fix & 6u) gp_wr32(s + 60, gp_crc32(0, s, 60));
    if (fix & 4u) {
        gp_wr32(s + COMMIT_AT + 8, gp_rd32(s + 44));
        gp_wr32(s + COMMIT_AT + 12, gp_rd32(s + 60));
        gp_wr32(s + COMMIT_AT + 16, plen);
    }
    if (fix & 8u) {
        gp_wr32(s + COMMIT_AT, FW_COMMIT_MAGIC);
        gp_wr32(s + COMMIT_AT + 28, gp_crc32(0, s + COMMIT_AT, 28));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t slot[FAKE_SLOT_SIZE], cfg[FW_MOUNT_RECORD_BYTES], wire[GP_MAX_ENCODED], scratch[GP_MAX_FRAME];
    static uint8_t samples[4 + 2 * 8 * FW_N_INPUTS];
    uint8_t fix, fix2;
    size_t n, i;
    fw_slot_info info;
    ge_mounting m;
    uint32_t gen;
    if (size < 2 + FW_COMMIT_BYTES + FW_MOUNT_RECORD_BYTES) return 0;
    fake_board_clear();
    fix = data[0];
    fix2 = data[1];
    data += 2;
    size -= 2;
    memset(slot, 0xFF, sizeof slot);
    memcpy(slot + COMMIT_AT, data, FW_COMMIT_BYTES);
    memcpy(cfg, data + FW_COMMIT_BYTES, FW_MOUNT_RECORD_BYTES);
    data += FW_COMMIT_BYTES + FW_MOUNT_RECORD_BYTES;
    size -= FW_COMMIT_BYTES + FW_MOUNT_RECORD_BYTES;
    n = size < COMMIT_AT ? size : COMMIT_AT;
    memcpy(slot, data, n);
    fix_slot(slot, fix);
    fake_flash_put(0, slot, FAKE_SLOT_SIZE);
    if (fix & 32u) {
        gp_wr32(slot + COMMIT_AT + 4, gp_rd32(slot + COMMIT_AT + 4) + 1u);
        slot[HDR + (fix2 * 7u) % (COMMIT_AT - HDR)] ^= (uint8_t)(1u + (fix2 >> 3));
        fix_slot(slot, (uint8_t)(fix & 12u));
        fake_flash_put(FAKE_SLOT_SIZE, slot, FAKE_SLOT_SIZE);
    }
    if (fix & 16u) {
        gp_wr32(cfg, FW_MOUNT_MAGIC);
        memcpy(cfg + 8, fw_arch_hash, 8);
        gp_wr32(cfg + FW_MOUNT_RECORD_BYTES - 4u, gp_crc32(0, cfg, FW_MOUNT_RECORD_BYTES - 4u));
    }
    fake_flash_put(BOARD_N_SLOTS * FAKE_SLOT_SIZE, cfg, sizeof cfg);

    for (i = 0; i < BOARD_N_SLOTS; i++)
        if (fw_slot_check((int)i, &info) == 0 && (info.valid != 1 || info.model_hash == NULL)) __builtin_trap();
    if (fw_mount_load(FW_N_INPUTS, &m, &gen) == 0 && m.n_triads > GE_MAX_TRIADS) __builtin_trap();

    if (setjmp(fake_reset_point) != 0) __builtin_trap(); /* nothing here reboots */
    fw_init();
    /* 8 samples of counts from the payload bytes (or zeros) through the selected model */
    samples[0] = 8;
    samples[1] = 0;
    samples[2] = FW_N_INPUTS;
    samples[3] = 0;
    for (i = 4; i < sizeof samples; i++) /* the image's last bytes, backwards */
        samples[i] = n > HDR + i ? slot[n - 1 - i] : (uint8_t)(i * 37u);
    n = gp_frame_encode(GP_SAMPLES, 1, samples, sizeof samples, scratch, wire, sizeof wire);
    fake_uart_feed(wire, (uint32_t)n);
    if (fake_replies != 2) __builtin_trap(); /* BOOT, then the SAMPLES reply (or a NAK) */
    return 0;
}
