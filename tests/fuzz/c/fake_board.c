/*
 * fake_board.c - board.h in RAM for the libFuzzer targets: flash is an array (weights
 * slots of FAKE_SLOT_SIZE, settings pages of FAKE_CFG_SIZE), the UART hands replies to
 * a decoder that checks each write is exactly one valid frame, ticks count calls,
 * board_reset() longjmps back into the target.  With GE_FUZZ_TRACE set in the environment
 * every reply's type (and a NAK's code) is printed to stderr.
 */
#include "fake_board.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "fw_app.h"
#include "ge_proto.h"

#define SLOTS_BYTES (BOARD_N_SLOTS * FAKE_SLOT_SIZE)
#define FLASH_BYTES (SLOTS_BYTES + BOARD_N_CFG * FAKE_CFG_SIZE)

jmp_buf fake_reset_point;
uint32_t fake_replies;
uint8_t fake_flash[FLASH_BYTES] __attribute__((aligned(8)));
static uint32_t ticks;
static gp_decoder reply_dec;

void fake_board_clear(void)
{
    memset(fake_flash, 0xFF, sizeof fake_flash);
    fake_replies = 0;
    gp_decoder_init(&reply_dec);
}

void fake_flash_put(uint32_t offset, const uint8_t *data, uint32_t n)
{
    if (offset > FLASH_BYTES) return;
    if (n > FLASH_BYTES - offset) n = FLASH_BYTES - offset;
    memcpy(fake_flash + offset, data, n);
}

void fake_uart_feed(const uint8_t *data, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        fw_uart_rx(data[i]);
        if (((i + 1u) & 1023u) == 0) fw_poll(); /* the ring holds 4096 */
    }
    fw_poll();
}

void board_init(void) {}
const char *board_name(void) { return "fuzz"; }

/* Every reply is one frame: 0x00, COBS, 0x00, decoding to a valid frame at its end only. */
void board_uart_write(const uint8_t *data, uint32_t n)
{
    uint32_t i, frames = 0;
    if (n < 2 || data[0] != 0 || data[n - 1] != 0) abort();
    for (i = 0; i < n; i++) {
        const int r = gp_decoder_push(&reply_dec, data[i]);
        if (r == GP_FRAME) frames++;
        if (r < 0 || (r == GP_FRAME && i + 1 != n)) abort();
    }
    if (frames != 1) abort();
    fake_replies++;
    if (getenv("GE_FUZZ_TRACE") != NULL) {
        const gp_frame *f = &reply_dec.frame;
        if (f->type == GP_NAK && f->len >= 4)
            fprintf(stderr, "reply NAK %02x code %u\n", f->payload[0], gp_rd16(f->payload + 2));
        else
            fprintf(stderr, "reply %02x len %u%s%u\n", f->type, f->len, f->len > 23 ? " byte23 " : "",
                    f->len > 23 ? f->payload[23] : 0u);
    }
}

uint32_t board_ticks(void) { return ticks++; }
uint32_t board_tick_hz(void) { return 1000000u; }
void board_irq_disable(void) {}
void board_irq_enable(void) {}
void board_idle(void) {}

uint32_t board_slot_size(void) { return FAKE_SLOT_SIZE; }
const uint8_t *board_slot_addr(int slot)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS) abort();
    return fake_flash + (size_t)slot * FAKE_SLOT_SIZE;
}

int board_slot_erase(int slot)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS) abort();
    memset(fake_flash + (size_t)slot * FAKE_SLOT_SIZE, 0xFF, FAKE_SLOT_SIZE);
    return 0;
}

int board_slot_write(int slot, uint32_t offset, const void *data, uint32_t n)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS || offset > FAKE_SLOT_SIZE || n > FAKE_SLOT_SIZE - offset) abort();
    memcpy(fake_flash + (size_t)slot * FAKE_SLOT_SIZE + offset, data, n);
    return 0;
}

uint32_t board_cfg_size(void) { return FAKE_CFG_SIZE; }
const uint8_t *board_cfg_addr(int page)
{
    if (page < 0 || page >= BOARD_N_CFG) abort();
    return fake_flash + SLOTS_BYTES + (size_t)page * FAKE_CFG_SIZE;
}

int board_cfg_erase(int page)
{
    if (page < 0 || page >= BOARD_N_CFG) abort();
    memset(fake_flash + SLOTS_BYTES + (size_t)page * FAKE_CFG_SIZE, 0xFF, FAKE_CFG_SIZE);
    return 0;
}

int board_cfg_write(int page, uint32_t offset, const void *data, uint32_t n)
{
    if (page < 0 || page >= BOARD_N_CFG || offset > FAKE_CFG_SIZE || n > FAKE_CFG_SIZE - offset) abort();
    memcpy(fake_flash + SLOTS_BYTES + (size_t)page * FAKE_CFG_SIZE + offset, data, n);
    return 0;
}

void board_reset(void) { longjmp(fake_reset_point, 1); }
