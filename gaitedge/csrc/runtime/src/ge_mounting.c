/*
 * ge_mounting.c - sensor mounting (QUANTIZATION.md "Sensor mounting"; twin gaitedge.quant.mounting).
 *
 * Each triad (3 input channels: x, y, z of one sensor's accelerometer or gyroscope)
 * is rotated from the sensor's frame into the canonical foot frame by a Q1.14
 * matrix R before the preprocessing:
 *     out[idx[i]] = sat16((R[i][0] c0 + R[i][1] c1 + R[i][2] c2 + 2^13) >> 14),  c_j = counts[idx[j]]
 * Channels in no triad pass unchanged.  The mounting lives in the caller's ge_state;
 * ge_step() skips all of this when n_triads is 0.
 */
#include "ge_mounting.h"

#include <string.h>

#include "ge_math.h"

#define GE_MOUNT_ONE (1 << GE_MOUNT_FRAC)

ge_status ge_mounting_check(const ge_mounting *m, uint16_t n_inputs)
{
    uint32_t t, i, j, n;
    if (m == NULL) return GE_ERR_NULL;
    if (m->n_triads > GE_MAX_TRIADS) return GE_ERR_MOUNTING;
    n = 3u * m->n_triads;
    for (i = 0; i < n; i++) {
        const uint8_t a = m->idx[i / 3u][i % 3u];
        if (a >= n_inputs) return GE_ERR_MOUNTING;
        for (j = i + 1u; j < n; j++)
            if (m->idx[j / 3u][j % 3u] == a) return GE_ERR_MOUNTING;
    }
    for (t = 0; t < m->n_triads; t++)
        for (i = 0; i < 9u; i++)
            if (m->rot[t][i] < -GE_MOUNT_ONE || m->rot[t][i] > GE_MOUNT_ONE) return GE_ERR_MOUNTING;
    return GE_OK;
}

void ge_mounting_apply(const ge_mounting *m, const int16_t *counts, int16_t *out, uint16_t n_inputs)
{
    uint32_t t, i;
    if (out != counts) memcpy(out, counts, (size_t)n_inputs * sizeof(int16_t));
    for (t = 0; t < m->n_triads; t++) {
        const uint8_t *idx = m->idx[t];
        const int16_t *r = m->rot[t];
        const int32_t c0 = out[idx[0]], c1 = out[idx[1]], c2 = out[idx[2]];
        for (i = 0; i < 3u; i++, r += 3) {
            const int32_t acc = r[0] * c0 + r[1] * c1 + r[2] * c2 + (1 << (GE_MOUNT_FRAC - 1));
            out[idx[i]] = (int16_t)ge_sat16(ge_asr32(acc, GE_MOUNT_FRAC));
        }
    }
}

ge_status ge_set_mounting(ge_state *st, const ge_mounting *m)
{
    ge_status s;
    uint8_t t, n = 0;
    if (st == NULL) return GE_ERR_NULL;
    if (st->model == NULL) return GE_ERR_STATE;
    if (m == NULL || m->n_triads == 0) {
        memset(&st->mount, 0, sizeof st->mount);
        return GE_OK;
    }
    s = ge_mounting_check(m, st->model->pre.n_inputs);
    if (s != GE_OK) return s;
    /* identity triads change nothing ((2^14 c + 2^13) >> 14 = c): keep only the others */
    memset(&st->mount, 0, sizeof st->mount);
    for (t = 0; t < m->n_triads; t++) {
        const int16_t *r = m->rot[t];
        if (r[0] == GE_MOUNT_ONE && r[4] == GE_MOUNT_ONE && r[8] == GE_MOUNT_ONE && !r[1] && !r[2] && !r[3] && !r[5] &&
            !r[6] && !r[7])
            continue;
        memcpy(st->mount.idx[n], m->idx[t], sizeof m->idx[t]);
        memcpy(st->mount.rot[n], m->rot[t], sizeof m->rot[t]);
        n++;
    }
    st->mount.n_triads = n;
    return GE_OK;
}
