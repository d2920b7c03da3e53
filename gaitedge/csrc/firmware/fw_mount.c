/* fw_mount.c - sensor mounting payloads: decode, check, encode (fw_mount.h, PROTOCOL.md 3.7). */
#include "fw_mount.h"

#include <string.h>

#include "ge_mounting.h"
#include "ge_proto.h"

#define ONE (1L << GE_MOUNT_FRAC)

/* 0 when the rows of r (Q1.14, entries within +-2^14) are orthonormal within FW_MOUNT_ORTHO_TOL. */
static int check_rows(const int16_t *r)
{
    int i, k;
    for (i = 0; i < 9; i++)
        if (r[i] < -ONE || r[i] > ONE) return -1;
    for (i = 0; i < 3; i++)
        for (k = i; k < 3; k++) {
            /* |entries| <= 2^14: each product <= 2^28, the sum < 2^31 */
            int32_t d = (int32_t)r[3 * i] * r[3 * k] + (int32_t)r[3 * i + 1] * r[3 * k + 1] +
                        (int32_t)r[3 * i + 2] * r[3 * k + 2];
            if (i == k) d -= (int32_t)(ONE * ONE);
            if (d > FW_MOUNT_ORTHO_TOL || d < -FW_MOUNT_ORTHO_TOL) return -1;
        }
    return 0;
}

int fw_mount_decode(const uint8_t *p, uint32_t len, uint16_t n_inputs, ge_mounting *m, uint32_t *detail)
{
    uint32_t n, t, j, k;
    memset(m, 0, sizeof *m);
    *detail = 0;
    if (len < FW_MOUNT_HEAD_BYTES) {
        *detail = FW_MOUNT_HEAD_BYTES;
        return GP_E_LENGTH;
    }
    n = p[0];
    if (n > GE_MAX_TRIADS) {
        *detail = GE_MAX_TRIADS;
        return GP_E_MOUNT_TRIADS;
    }
    if (len != FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * n) {
        *detail = FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * n;
        return GP_E_LENGTH;
    }
    m->n_triads = (uint8_t)n;
    for (t = 0; t < n; t++) {
        const uint8_t *q = p + FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * t;
        for (j = 0; j < 3; j++) m->idx[t][j] = q[j];
        for (j = 0; j < 9; j++) m->rot[t][j] = (int16_t)gp_rd16(q + 4 + 2 * j);
    }
    /* indices: in range, each channel once (in the order of the payload) */
    for (t = 0; t < 3 * n; t++) {
        const uint8_t a = m->idx[t / 3][t % 3];
        int bad = a >= n_inputs;
        for (k = 0; k < t && !bad; k++) bad = m->idx[k / 3][k % 3] == a;
        if (bad) {
            *detail = t;
            memset(m, 0, sizeof *m);
            return GP_E_MOUNT_INDEX;
        }
    }
    for (t = 0; t < n; t++)
        if (check_rows(m->rot[t]) != 0) {
            *detail = t;
            memset(m, 0, sizeof *m);
            return GP_E_MOUNT_ROTATION;
        }
    if (ge_mounting_check(m, n_inputs) != GE_OK) { /* implied by the checks above */
        memset(m, 0, sizeof *m);
        return GP_E_MOUNT_INDEX;
    }
    return 0;
}

uint32_t fw_mount_encode(const ge_mounting *m, uint8_t *p)
{
    uint32_t t, j, n = m->n_triads > GE_MAX_TRIADS ? GE_MAX_TRIADS : m->n_triads;
    memset(p, 0, FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * n);
    p[0] = (uint8_t)n;
    for (t = 0; t < n; t++) {
        uint8_t *q = p + FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * t;
        for (j = 0; j < 3; j++) q[j] = m->idx[t][j];
        for (j = 0; j < 9; j++) gp_wr16(q + 4 + 2 * j, (uint16_t)m->rot[t][j]);
    }
    return FW_MOUNT_HEAD_BYTES + FW_MOUNT_TRIAD_BYTES * n;
}
