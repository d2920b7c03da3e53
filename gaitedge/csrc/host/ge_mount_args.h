/*
 * ge_mount_args.h - sensor mounting from the command line of the host test drivers.
 *
 *   -m i0,i1,i2,r00,r01,r02,r10,r11,r12,r20,r21,r22   one triad: three input channels and the
 *                                                      row-major Q1.14 matrix (repeatable, up to
 *                                                      GE_MAX_TRIADS times)
 */
#ifndef GE_MOUNT_ARGS_H
#define GE_MOUNT_ARGS_H

#include <stdlib.h>
#include <string.h>

#include "gaitedge_rt.h"

/* Leading "-m SPEC" pairs of argv[1..] into *m; returns how many argv entries they took, -1 if malformed. */
static int ge_mount_args(int argc, char **argv, ge_mounting *m)
{
    int used = 0;
    memset(m, 0, sizeof *m);
    while (1 + used + 1 < argc && strcmp(argv[1 + used], "-m") == 0) {
        const char *p = argv[2 + used];
        long v[12];
        int k;
        char *end;
        if (m->n_triads >= GE_MAX_TRIADS) return -1;
        for (k = 0; k < 12; k++) {
            v[k] = strtol(p, &end, 10);
            if (end == p || (k < 11 && *end != ',') || (k == 11 && *end != '\0')) return -1;
            p = end + 1;
        }
        for (k = 0; k < 3; k++) {
            if (v[k] < 0 || v[k] > 255) return -1;
            m->idx[m->n_triads][k] = (uint8_t)v[k];
        }
        for (k = 0; k < 9; k++) {
            if (v[3 + k] < -32768 || v[3 + k] > 32767) return -1;
            m->rot[m->n_triads][k] = (int16_t)v[3 + k];
        }
        m->n_triads++;
        used += 2;
    }
    return used;
}

#endif
