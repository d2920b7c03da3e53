/*
 * fw_mount_store.c - the sensor mounting in flash: one record per settings page (A/B).
 *
 * Record (FW_MOUNT_RECORD_BYTES = 128, at the start of a page; PROTOCOL.md "Flash slots"):
 *     0  u32 magic "GEMT"          4  u32 generation
 *     8  u8[8] architecture hash (first 8 bytes; a record of another firmware is ignored)
 *    16  u16 payload length        18  u16 0
 *    20  payload (the SET_MOUNTING wire format, <= 92 bytes), then 0xFF up to 124
 *   124  u32 CRC-32 of bytes 0..123
 * Writing: erase the page that does not hold the newest valid record, program bytes 0..119,
 * then bytes 120..127 (the CRC) last, read back.  A write torn anywhere leaves that page
 * without a valid record, so the previous mounting (the other page) is the one loaded.
 */
#include <string.h>

#include "board.h"
#include "fw_model.h"
#include "fw_mount.h"
#include "ge_proto.h"

#define REC FW_MOUNT_RECORD_BYTES
#define BODY 120u

/* 0 when page k holds a valid record for n_inputs channels (decoded into m, generation into *gen). */
static int read_page(int k, uint16_t n_inputs, ge_mounting *m, uint32_t *gen)
{
    const uint8_t *r = board_cfg_addr(k);
    uint32_t len, detail;
    if (gp_rd32(r) != FW_MOUNT_MAGIC || gp_crc32(0, r, REC - 4u) != gp_rd32(r + REC - 4u)) return -1;
    if (memcmp(r + 8, fw_arch_hash, 8) != 0) return -2;
    len = gp_rd16(r + 16);
    if (len > FW_MOUNT_MAX_BYTES || fw_mount_decode(r + 20, len, n_inputs, m, &detail) != 0) return -3;
    *gen = gp_rd32(r + 4);
    return 0;
}

/* The page with the newest valid record (-1: none); its generation into *gen. */
static int newest_page(uint16_t n_inputs, ge_mounting *m, uint32_t *gen)
{
    ge_mounting tmp;
    uint32_t g;
    int k, best = -1;
    *gen = 0;
    for (k = 0; k < BOARD_N_CFG; k++)
        if (read_page(k, n_inputs, &tmp, &g) == 0 && (best < 0 || g > *gen)) {
            best = k;
            *gen = g;
            if (m != NULL) *m = tmp;
        }
    return best;
}

int fw_mount_load(uint16_t n_inputs, ge_mounting *m, uint32_t *generation)
{
    memset(m, 0, sizeof *m);
    if (newest_page(n_inputs, m, generation) < 0) {
        memset(m, 0, sizeof *m);
        *generation = 0;
        return -1;
    }
    return 0;
}

int fw_mount_store(const ge_mounting *m, uint32_t generation)
{
    uint8_t rec[REC];
    uint32_t gen, len;
    const int cur = newest_page(FW_N_INPUTS, NULL, &gen);
    const int page = cur == 0 ? 1 : 0;
    memset(rec, 0xFF, sizeof rec);
    gp_wr32(rec, FW_MOUNT_MAGIC);
    gp_wr32(rec + 4, generation);
    memcpy(rec + 8, fw_arch_hash, 8);
    len = fw_mount_encode(m, rec + 20);
    gp_wr16(rec + 16, (uint16_t)len);
    gp_wr16(rec + 18, 0);
    gp_wr32(rec + REC - 4u, gp_crc32(0, rec, REC - 4u));
    /* erasing the older page first: from here on it holds no valid record until the CRC is in */
    if (board_cfg_erase(page) != 0) return GP_E_FLASH;
    if (board_cfg_write(page, 0, rec, BODY) != 0) return GP_E_FLASH;
    if (board_cfg_write(page, BODY, rec + BODY, REC - BODY) != 0) return GP_E_FLASH;
    if (memcmp(board_cfg_addr(page), rec, REC) != 0) return GP_E_FLASH;
    return 0;
}

int fw_mount_erase(void)
{
    int k, bad = 0;
    for (k = 0; k < BOARD_N_CFG; k++) bad |= board_cfg_erase(k);
    return bad ? GP_E_FLASH : 0;
}
