/*
 * board.h - the board layer of the gaitedge firmware.
 *
 * Everything the application (fw_app.c, fw_blob.c) needs from the hardware.  A port
 * implements these functions in boards/<name>/ (see ../PORTING.md); the application
 * itself is portable C99.  Boards: mps2_an386 (QEMU Cortex-M4F), stm32f405_netduino
 * (STM32F405 on QEMU netduinoplus2 and on the chip), host (POSIX process, serial on TCP
 * or a pty, flash in a file).
 */
#ifndef GE_BOARD_H
#define GE_BOARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Number of weight slots (A/B) and the size of one slot in bytes (a multiple of the erase page). */
#define BOARD_N_SLOTS 2

/** Bring up clocks, the tick timer, the UART (receive interrupt enabled) and the flash. */
void board_init(void);
/** Short board name reported by INFO (e.g. "mps2-an386"). */
const char *board_name(void);

/* ---- serial link --------------------------------------------------------------------- */
/** Transmit n bytes; blocks until they are handed to the UART (or dropped when unplugged). */
void board_uart_write(const uint8_t *data, uint32_t n);
/* The board's UART receive interrupt calls fw_uart_rx(byte) for every byte received and
 * fw_uart_overrun() when the hardware lost bytes.  Both are provided by the application. */
void fw_uart_rx(uint8_t byte);
void fw_uart_overrun(void);

/* ---- time -------------------------------------------------------------------------- */
/** Free-running 32-bit tick counter (wraps), board_tick_hz() ticks per second. */
uint32_t board_ticks(void);
uint32_t board_tick_hz(void);

/* ---- interrupts and sleep ------------------------------------------------------------ */
void board_irq_disable(void);
void board_irq_enable(void);
/** Called with interrupts disabled when there is nothing to do: sleep until an interrupt is
 *  pending (Cortex-M: wfi, which wakes even with PRIMASK set), return with them disabled. */
void board_idle(void);

/* ---- flash (weight slots) ------------------------------------------------------------ */
/** Size of one slot in bytes. */
uint32_t board_slot_size(void);
/** Memory-mapped read address of a slot (execute-in-place flash: weights are used in place). */
const uint8_t *board_slot_addr(int slot);
/** Erase a whole slot to 0xFF.  Returns 0 on success. */
int board_slot_erase(int slot);
/** Program n bytes at offset (offset and n multiples of BOARD_FLASH_ALIGN, except a final
 *  partial write padded by the board).  Returns 0 on success. */
int board_slot_write(int slot, uint32_t offset, const void *data, uint32_t n);
#define BOARD_FLASH_ALIGN 8u

/* ---- settings pages (per-user records: the sensor mounting) ---------------------------- */
/** Two small erasable flash pages, apart from the image and the weight slots; fw_mount_store.c
 *  keeps one CRC'd record in each and writes the older one (A/B), so a torn write leaves
 *  the previous record in force. */
#define BOARD_N_CFG 2
/** Size of one settings page in bytes (at least 128; the erase unit of the part). */
uint32_t board_cfg_size(void);
/** Memory-mapped read address of a settings page. */
const uint8_t *board_cfg_addr(int page);
/** Erase a settings page to 0xFF.  Returns 0 on success. */
int board_cfg_erase(int page);
/** Program n bytes at offset of a settings page (multiples of BOARD_FLASH_ALIGN).  Returns 0 on success. */
int board_cfg_write(int page, uint32_t offset, const void *data, uint32_t n);

/* ---- reset ------------------------------------------------------------------------- */
/** System reset (does not return). */
void board_reset(void);

#ifdef __cplusplus
}
#endif
#endif /* GE_BOARD_H */
