/*
 * ge_proto.h - gaitedge wire protocol: framing (COBS + 0x00 delimiter, CRC-32) and
 * message constants.  The specification is ../PROTOCOL.md; the Python twin is
 * gaitedge.protocol.  Portable C99, no malloc, no libc beyond <stdint.h>/<stddef.h>.
 *
 * Decoder: feed bytes one at a time with gp_decoder_push(); it returns GP_FRAME when a
 * complete frame with a valid CRC and consistent length is in dec->frame, a negative
 * GP_ERR_* verdict when the bytes since the last delimiter were not a valid frame (the
 * matching counter has been incremented), and GP_NONE otherwise.  The decoder never
 * reads or writes outside its own buffer and always resynchronises at the next 0x00.
 */
#ifndef GE_PROTO_H
#define GE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GP_VERSION 1u
/** Header: version u8, type u8, seq u16, len u16. */
#define GP_HEADER_BYTES 6u
#define GP_CRC_BYTES 4u
/** Largest payload of any frame (both directions). */
#define GP_MAX_PAYLOAD 1024u
#define GP_MAX_FRAME (GP_HEADER_BYTES + GP_MAX_PAYLOAD + GP_CRC_BYTES)
/** COBS adds one byte per 254 and the frame is followed by 0x00 (and preceded by one). */
#define GP_MAX_ENCODED (GP_MAX_FRAME + GP_MAX_FRAME / 254u + 1u + 2u)

/* ---- message types (a reply has the request's type | 0x80) ---------------------- */
enum {
    GP_PING = 0x01,
    GP_INFO = 0x02,
    GP_SAMPLES = 0x03,
    GP_RESET_STATE = 0x04,
    GP_STATS = 0x05,
    GP_FLASH_BEGIN = 0x10,
    GP_FLASH_CHUNK = 0x11,
    GP_FLASH_VERIFY = 0x12,
    GP_FLASH_COMMIT = 0x13,
    GP_FLASH_ABORT = 0x14,
    GP_FLASH_STATUS = 0x15,
    GP_REBOOT = 0x20,
    GP_FACTORY_RESET = 0x21,
    GP_SET_MOUNTING = 0x30, /* sensor mounting: validate, store in flash, apply (PROTOCOL.md 3.7) */
    GP_GET_MOUNTING = 0x31,
    GP_BOOT = 0x7E, /* unsolicited, device -> host, seq 0, payload as the INFO reply */
    GP_NAK = 0x7F,  /* reply to a refused request: u8 type, u8 0, u16 code, u32 detail, text */
    GP_REPLY = 0x80
};

/* ---- NAK codes -------------------------------------------------------------------- */
enum {
    GP_E_VERSION = 1,     /* unsupported protocol version */
    GP_E_TYPE = 2,        /* unknown message type */
    GP_E_LENGTH = 3,      /* payload length wrong for this type */
    GP_E_CHANNELS = 4,    /* SAMPLES channel count is not the model's */
    GP_E_TOO_MANY = 5,    /* more samples than fit in one RESULTS frame */
    GP_E_BLOB_MAGIC = 10, /* not a gaitedge weights blob */
    GP_E_BLOB_VERSION = 11,
    GP_E_ARCH = 12,       /* blob built for another model architecture */
    GP_E_BLOB_SIZE = 13,  /* blob payload length not this architecture's / too big for a slot */
    GP_E_HEADER_CRC = 14,
    GP_E_STATE = 15,      /* request not valid in the current flash state */
    GP_E_OFFSET = 16,     /* chunk offset/length not acceptable (detail: next expected offset) */
    GP_E_VERIFY = 17,     /* payload CRC-32 mismatch (detail: CRC computed by the device) */
    GP_E_FLASH = 18,      /* erase / write / read-back failed */
    GP_E_MODEL = 19,      /* the runtime refused the bound model */
    GP_E_MOUNT_TRIADS = 20,   /* mounting: more triads than GE_MAX_TRIADS (detail: the maximum) */
    GP_E_MOUNT_INDEX = 21,    /* mounting: channel index out of range or repeated (detail: 3 * triad + axis) */
    GP_E_MOUNT_ROTATION = 22  /* mounting: rows not orthonormal within tolerance (detail: triad) */
};

/* ---- decoder verdicts -------------------------------------------------------------- */
enum {
    GP_NONE = 0,
    GP_FRAME = 1,
    GP_ERR_CRC = -1,      /* well-formed frame, CRC mismatch */
    GP_ERR_FRAMING = -2,  /* bad COBS, too short, or length field != bytes received */
    GP_ERR_OVERSIZE = -3  /* more bytes than the largest frame, or length field > max */
};

typedef struct {
    uint32_t frames_ok;
    uint32_t crc_errors;
    uint32_t framing_errors;
    uint32_t oversize;
} gp_counters;

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the decoder's buffer */
} gp_frame;

typedef struct {
    uint8_t buf[GP_MAX_FRAME];
    uint32_t n;        /* decoded bytes so far */
    uint8_t code;      /* bytes left in the current COBS block (0: next byte is a code) */
    uint8_t zero;      /* a zero is implied before the next block */
    uint8_t overflow;  /* discarding until the next delimiter */
    uint8_t started;   /* non-delimiter bytes seen since the last delimiter */
    gp_frame frame;    /* valid after GP_FRAME until the next push */
    gp_counters cnt;
} gp_decoder;

/** CRC-32/ISO-HDLC (zlib's crc32): poly 0xEDB88320 reflected, init/xorout 0xFFFFFFFF.
 *  Check value crc32("123456789") = 0xCBF43926.  Chain with gp_crc32(prev, ...). */
uint32_t gp_crc32(uint32_t crc, const void *data, size_t n);

void gp_decoder_init(gp_decoder *d);
int gp_decoder_push(gp_decoder *d, uint8_t byte);

/** COBS-encode src[n] into dst (capacity cap); returns bytes written or 0 if it does not fit.
 *  No delimiter is added. */
size_t gp_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/**
 * Build a complete wire frame: 0x00, COBS(header + payload + crc), 0x00 into out (capacity
 * cap, GP_MAX_ENCODED is always enough).  Returns the byte count or 0 if len > GP_MAX_PAYLOAD
 * or cap is too small.  `scratch` must hold GP_HEADER_BYTES + len + GP_CRC_BYTES bytes; the
 * payload may already be at scratch + GP_HEADER_BYTES (then pass payload = NULL).
 */
size_t gp_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *scratch,
                       uint8_t *out, size_t cap);

/* little-endian helpers */
static inline uint16_t gp_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t gp_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void gp_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void gp_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#ifdef __cplusplus
}
#endif
#endif /* GE_PROTO_H */
