/*
 * fw_mount.h - the sensor mounting on the device: wire format, checks, and its flash record.
 *
 * Wire format (PROTOCOL.md 3.7), little-endian:
 *   u8 n_triads, 3 x u8 0, then per triad: u8 idx[3], u8 0, i16 rot[9] (Q1.14, row-major)
 * i.e. 4 + 22 n bytes.  The runtime applies it with ge_set_mounting() (QUANTIZATION.md
 * "Sensor mounting").  fw_mount.c: codec and checks (no board dependency);
 * fw_mount_store.c: the record in the board's two settings pages.
 */
#ifndef FW_MOUNT_H
#define FW_MOUNT_H

#include <stdint.h>

#include "gaitedge_rt.h"

#define FW_MOUNT_HEAD_BYTES 4u
#define FW_MOUNT_TRIAD_BYTES 22u
#define FW_MOUNT_MAX_BYTES (FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * GE_MAX_TRIADS)
/** Rows must be orthonormal within this, in Q28 (Q14 x Q14): |r_i . r_k - [i == k] 2^28| <= 2^20 (0.4 %). */
#define FW_MOUNT_ORTHO_TOL (1L << 20)

/**
 * Decode and check a mounting payload for a model with n_inputs channels into *m.
 * Returns 0, or GP_E_LENGTH (detail: expected length), GP_E_MOUNT_TRIADS (detail:
 * GE_MAX_TRIADS), GP_E_MOUNT_INDEX (detail: 3 * triad + axis of the first bad index) or
 * GP_E_MOUNT_ROTATION (detail: the triad whose rows are not orthonormal, or hold an entry
 * beyond +-2^14).
 */
int fw_mount_decode(const uint8_t *p, uint32_t len, uint16_t n_inputs, ge_mounting *m, uint32_t *detail);
/** Encode m (4 + 22 n bytes into p, at most FW_MOUNT_MAX_BYTES); returns the length. */
uint32_t fw_mount_encode(const ge_mounting *m, uint8_t *p);

/* ---- flash record (fw_mount_store.c) ----------------------------------------------------- */
#define FW_MOUNT_MAGIC 0x544D4547u /* "GEMT" */
#define FW_MOUNT_RECORD_BYTES 128u

/**
 * The newest valid record (magic, CRC, this firmware's architecture, a mounting that passes
 * fw_mount_decode for n_inputs) into *m and *generation.  Returns 0, or -1 when there is none
 * (then *m is the identity and *generation 0).
 */
int fw_mount_load(uint16_t n_inputs, ge_mounting *m, uint32_t *generation);
/**
 * Write m as a record of this generation into the page that does not hold the newest valid
 * record (erase, body, then the CRC word last; read back).  The previous record stays intact
 * until this one is complete.  Returns 0 or GP_E_FLASH.
 */
int fw_mount_store(const ge_mounting *m, uint32_t generation);
/** Erase both settings pages (no mounting after the next load).  Returns 0 or GP_E_FLASH. */
int fw_mount_erase(void);

#endif /* FW_MOUNT_H */
