/* fake_board.h - the firmware's board layer in RAM for the libFuzzer targets (fake_board.c). */
#ifndef FAKE_BOARD_H
#define FAKE_BOARD_H

#include <setjmp.h>
#include <stdint.h>

#define FAKE_SLOT_SIZE 4096u
#define FAKE_CFG_SIZE 256u

/** Where board_reset() jumps (set by the target before it feeds requests). */
extern jmp_buf fake_reset_point;
/** Replies (frames) the firmware has sent since fake_board_clear(); each write must be one whole frame. */
extern uint32_t fake_replies;
/** The RAM flash: two weight slots, then two settings pages. */
extern uint8_t fake_flash[];

/** Erase the flash, forget the replies. */
void fake_board_clear(void);
/** Write bytes straight into flash (no erase needed): slots first, then the settings pages. */
void fake_flash_put(uint32_t offset, const uint8_t *data, uint32_t n);
/** Feed bytes to the firmware's UART and let it process them. */
void fake_uart_feed(const uint8_t *data, uint32_t n);

#endif
