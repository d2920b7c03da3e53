/* fw_app.h - the gaitedge firmware application (portable; see board.h for the hardware). */
#ifndef FW_APP_H
#define FW_APP_H

#include <stdint.h>

#define FW_VERSION_MAJOR 1
#define FW_VERSION_MINOR 0
#define FW_VERSION_PATCH 0

/** Bytes of the UART receive ring (power of two; one maximum frame fits about four times). */
#ifndef FW_RX_RING
#define FW_RX_RING 4096u
#endif
/** Largest FLASH_CHUNK data the client should send (a multiple of BOARD_FLASH_ALIGN). */
#define FW_MAX_CHUNK 512u

/** Initialise everything after board_init(): select the model, send the BOOT frame. */
void fw_init(void);
/** Process received bytes; sleep (board_idle) when there are none. */
void fw_poll(void);
/** board_init(); fw_init(); for (;;) fw_poll(); */
void fw_main(void);

#endif
