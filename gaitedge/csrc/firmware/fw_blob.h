/*
 * fw_blob.h - weights blobs in A/B flash slots: parse, receive, verify, commit, select at boot.
 *
 * Slot layout (PROTOCOL.md, "Flash slots"):
 *   +0                      blob header (64 bytes, as sent in FLASH_BEGIN)
 *   +64                     blob payload (params block, then the weight arrays), used in place
 *   +slot_size - 32         commit record (written last; its CRC makes the commit atomic)
 * A slot counts only with a valid commit record whose CRCs match the header and payload, an
 * architecture hash equal to this firmware's, and a payload the runtime accepts.  The active
 * slot is the valid one with the highest generation; with none, the built-in model runs.
 */
#ifndef FW_BLOB_H
#define FW_BLOB_H

#include <stdint.h>

#include "gaitedge_rt.h"

#define FW_BLOB_MAGIC 0x42574547u   /* "GEWB" little-endian */
#define FW_BLOB_VERSION 1u
#define FW_BLOB_HEADER_BYTES 64u
#define FW_BLOB_PARAMS_BYTES 96u
#define FW_COMMIT_MAGIC 0x52434547u /* "GECR" */
#define FW_COMMIT_BYTES 32u

enum { FW_FLASH_IDLE = 0, FW_FLASH_RECEIVING = 1, FW_FLASH_VERIFIED = 2, FW_FLASH_COMMITTED = 3 };

typedef struct {
    uint8_t state;
    int8_t target;          /* slot being written, -1 when none */
    uint32_t received;      /* payload bytes written so far */
    uint32_t payload_len;
    uint32_t payload_crc;
    uint32_t header_crc;
} fw_flash_session;

/** What a valid slot holds. */
typedef struct {
    uint8_t valid;
    uint32_t generation;
    const char *model_hash; /* 64 hex characters inside the slot (NULL when invalid) */
} fw_slot_info;

/** Check a slot completely (commit record, header, CRC of the payload, binding). */
int fw_slot_check(int slot, fw_slot_info *info);
/** Bind a slot's payload into model m (layers: FW_N_LAYERS entries); GE_OK or an error. */
int fw_slot_bind(int slot, ge_model *m, ge_rnn_params *layers);

/* Weight update steps; each returns 0 or a GP_E_* code (detail: extra number for the NAK). */
int fw_flash_begin(fw_flash_session *s, const uint8_t *hdr, uint32_t len, int active_slot, uint32_t *detail);
int fw_flash_chunk(fw_flash_session *s, uint32_t offset, const uint8_t *data, uint32_t n, uint32_t *detail);
int fw_flash_verify(fw_flash_session *s, uint32_t *crc);
/** Verify again, bind into (m, layers), then write the commit record (generation). */
int fw_flash_commit(fw_flash_session *s, uint32_t generation, ge_model *m, ge_rnn_params *layers,
                    uint32_t *detail);
void fw_flash_abort(fw_flash_session *s);

#endif /* FW_BLOB_H */
