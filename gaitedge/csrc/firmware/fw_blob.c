/* fw_blob.c - weights blob slots (see fw_blob.h and PROTOCOL.md "Weight update"). */
#include "fw_blob.h"

#include <string.h>

#include "board.h"
#include "fw_model.h"
#include "ge_proto.h"

static uint32_t commit_offset(void) { return board_slot_size() - FW_COMMIT_BYTES; }

/* Header checks shared by FLASH_BEGIN and the boot scan. */
static int check_header(const uint8_t *h, uint32_t *detail)
{
    uint32_t plen;
    if (gp_rd32(h) != FW_BLOB_MAGIC) return GP_E_BLOB_MAGIC;
    if (gp_rd16(h + 4) != FW_BLOB_VERSION || gp_rd16(h + 6) != FW_BLOB_HEADER_BYTES) {
        *detail = gp_rd16(h + 4);
        return GP_E_BLOB_VERSION;
    }
    if (gp_crc32(0, h, 60) != gp_rd32(h + 60)) return GP_E_HEADER_CRC;
    if (memcmp(h + 8, fw_arch_hash, 32) != 0) return GP_E_ARCH;
    plen = gp_rd32(h + 40);
    if (plen != FW_BLOB_PAYLOAD_BYTES || FW_BLOB_HEADER_BYTES + plen + FW_COMMIT_BYTES > board_slot_size()) {
        *detail = FW_BLOB_PAYLOAD_BYTES;
        return GP_E_BLOB_SIZE;
    }
    return 0;
}

int fw_slot_bind(int slot, ge_model *m, ge_rnn_params *layers)
{
    const uint8_t *base = board_slot_addr(slot);
    const uint8_t *payload = base + FW_BLOB_HEADER_BYTES;
    int r = fw_bind_blob(m, layers, payload, gp_rd32(base + 40));
    if (r != 0) return GE_ERR_MODEL;
    return ge_check_model(m);
}

int fw_slot_check(int slot, fw_slot_info *info)
{
    const uint8_t *base = board_slot_addr(slot);
    const uint8_t *rec = base + commit_offset();
    uint32_t detail = 0, plen;
    static ge_model tmp_model; /* scratch: binding check only */
    static ge_rnn_params tmp_layers[FW_N_LAYERS];
    info->valid = 0;
    info->generation = 0;
    info->model_hash = NULL;
    if (gp_rd32(rec) != FW_COMMIT_MAGIC || gp_crc32(0, rec, 28) != gp_rd32(rec + 28)) return -1;
    if (check_header(base, &detail) != 0) return -2;
    plen = gp_rd32(base + 40);
    if (gp_rd32(rec + 8) != gp_rd32(base + 44) || gp_rd32(rec + 12) != gp_rd32(base + 60) ||
        gp_rd32(rec + 16) != plen)
        return -3;
    if (gp_crc32(0, base + FW_BLOB_HEADER_BYTES, plen) != gp_rd32(base + 44)) return -4;
    if (fw_slot_bind(slot, &tmp_model, tmp_layers) != GE_OK) return -5;
    info->valid = 1;
    info->generation = gp_rd32(rec + 4);
    info->model_hash = (const char *)(base + FW_BLOB_HEADER_BYTES);
    return 0;
}

int fw_flash_begin(fw_flash_session *s, const uint8_t *hdr, uint32_t len, int active_slot, uint32_t *detail)
{
    int r, target;
    if (len != FW_BLOB_HEADER_BYTES) return GP_E_LENGTH;
    r = check_header(hdr, detail);
    if (r != 0) return r;
    target = (active_slot == 0) ? 1 : 0;
    s->state = FW_FLASH_IDLE;
    s->target = (int8_t)target;
    s->received = 0;
    s->payload_len = gp_rd32(hdr + 40);
    s->payload_crc = gp_rd32(hdr + 44);
    s->header_crc = gp_rd32(hdr + 60);
    /* Erasing removes the commit record first of all: the slot is invalid from here on. */
    if (board_slot_erase(target) != 0) return GP_E_FLASH;
    if (board_slot_write(target, 0, hdr, FW_BLOB_HEADER_BYTES) != 0 ||
        memcmp(board_slot_addr(target), hdr, FW_BLOB_HEADER_BYTES) != 0)
        return GP_E_FLASH;
    s->state = FW_FLASH_RECEIVING;
    return 0;
}

int fw_flash_chunk(fw_flash_session *s, uint32_t offset, const uint8_t *data, uint32_t n, uint32_t *detail)
{
    const uint8_t *dst;
    if (s->state != FW_FLASH_RECEIVING && s->state != FW_FLASH_VERIFIED) return GP_E_STATE;
    *detail = s->received;
    if (n == 0 || offset > s->payload_len || n > s->payload_len - offset) return GP_E_OFFSET;
    dst = board_slot_addr(s->target) + FW_BLOB_HEADER_BYTES + offset;
    if (offset + n <= s->received) { /* a retransmission of a chunk already written */
        return memcmp(dst, data, n) == 0 ? 0 : GP_E_OFFSET;
    }
    if (offset != s->received || s->state != FW_FLASH_RECEIVING) return GP_E_OFFSET;
    if ((offset % BOARD_FLASH_ALIGN) != 0 || ((n % BOARD_FLASH_ALIGN) != 0 && offset + n != s->payload_len))
        return GP_E_OFFSET;
    if (board_slot_write(s->target, FW_BLOB_HEADER_BYTES + offset, data, n) != 0 || memcmp(dst, data, n) != 0) {
        s->state = FW_FLASH_IDLE;
        return GP_E_FLASH;
    }
    s->received += n;
    *detail = s->received;
    return 0;
}

int fw_flash_verify(fw_flash_session *s, uint32_t *crc)
{
    const uint8_t *base;
    if (s->state != FW_FLASH_RECEIVING && s->state != FW_FLASH_VERIFIED) return GP_E_STATE;
    if (s->received != s->payload_len) {
        *crc = s->received;
        return GP_E_STATE;
    }
    base = board_slot_addr(s->target);
    *crc = gp_crc32(0, base + FW_BLOB_HEADER_BYTES, s->payload_len);
    if (*crc != s->payload_crc || gp_rd32(base + 44) != s->payload_crc) {
        s->state = FW_FLASH_IDLE; /* the slot stays uncommitted; a new BEGIN is needed */
        return GP_E_VERIFY;
    }
    s->state = FW_FLASH_VERIFIED;
    return 0;
}

int fw_flash_commit(fw_flash_session *s, uint32_t generation, ge_model *m, ge_rnn_params *layers,
                    uint32_t *detail)
{
    uint8_t rec[FW_COMMIT_BYTES];
    uint32_t crc;
    int r;
    if (s->state != FW_FLASH_VERIFIED) return GP_E_STATE;
    r = fw_flash_verify(s, &crc);
    if (r != 0) {
        *detail = crc;
        return r;
    }
    if (fw_slot_bind(s->target, m, layers) != GE_OK) {
        s->state = FW_FLASH_IDLE;
        return GP_E_MODEL;
    }
    memset(rec, 0xFF, sizeof rec);
    gp_wr32(rec, FW_COMMIT_MAGIC);
    gp_wr32(rec + 4, generation);
    gp_wr32(rec + 8, s->payload_crc);
    gp_wr32(rec + 12, s->header_crc);
    gp_wr32(rec + 16, s->payload_len);
    gp_wr32(rec + 28, gp_crc32(0, rec, 28));
    if (board_slot_write(s->target, commit_offset(), rec, sizeof rec) != 0 ||
        memcmp(board_slot_addr(s->target) + commit_offset(), rec, sizeof rec) != 0) {
        s->state = FW_FLASH_IDLE;
        return GP_E_FLASH;
    }
    s->state = FW_FLASH_COMMITTED;
    return 0;
}

void fw_flash_abort(fw_flash_session *s)
{
    s->state = FW_FLASH_IDLE;
    s->target = -1;
    s->received = 0;
}
