/*
 * board.c - board layer for ARM MPS2 AN386 (Cortex-M4F at 25 MHz) as emulated by QEMU
 * (`qemu-system-arm -M mps2-an386`).  See ../../board.h and ../../../PORTING.md.
 *
 *   UART     CMSDK APB UART0 at 0x40004000, RX interrupt = IRQ 0, polled transmit.
 *   Tick     SysTick on the core clock (25 MHz), 24-bit down-counter extended to 32 bits
 *            by its wrap interrupt.  Under `-icount shift=0` one tick = 40 instructions.
 *   Flash    the 4 MB code memory at 0x0 is writable under QEMU: two 512 KB weight slots at
 *            0x00300000 and 0x00380000 (outside the ELF image, so a system reset keeps them);
 *            erase = fill with 0xFF, write = copy.  Two 4 KB settings pages (the sensor
 *            mounting) at 0x002F0000 and 0x002F1000, also outside the image (link.ld).  A real
 *            part needs its flash controller here (PORTING.md).
 *   Reset    SYSRESETREQ through SCB->AIRCR.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"

#define REG(a) (*(volatile uint32_t *)(a))

/* CMSDK APB UART */
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00u)
#define UART_STATE REG(UART0 + 0x04u)
#define UART_CTRL REG(UART0 + 0x08u)
#define UART_INTCLR REG(UART0 + 0x0Cu)
#define UART_BAUDDIV REG(UART0 + 0x10u)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u
#define STATE_RXOVR 8u
#define CTRL_TXEN 1u
#define CTRL_RXEN 2u
#define CTRL_RXIRQ 8u

/* Cortex-M system registers */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define SCB_AIRCR REG(0xE000ED0Cu)

#define CORE_HZ 25000000u
#define BAUD 115200u

#define SLOT_BASE 0x00300000u
#define SLOT_SIZE 0x00080000u
#define CFG_BASE 0x002F0000u
#define CFG_SIZE 0x00001000u

static volatile uint32_t tick_hi; /* SysTick wraps (each 2^24 ticks) */

void SysTick_Handler(void) { tick_hi++; }

void UART0RX_Handler(void)
{
    UART_INTCLR = STATE_RXFULL; /* clear first: a byte arriving after the drain re-raises it */
    while (UART_STATE & STATE_RXFULL) fw_uart_rx((uint8_t)UART_DATA);
    if (UART_STATE & STATE_RXOVR) {
        UART_STATE = STATE_RXOVR; /* write 1 to clear */
        fw_uart_overrun();
    }
}

void board_init(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* core clock, interrupt, enable */
    UART_BAUDDIV = CORE_HZ / BAUD;
    UART_CTRL = CTRL_TXEN | CTRL_RXEN | CTRL_RXIRQ;
    NVIC_ISER0 = 1u << 0; /* UART0 RX */
    __asm__ volatile("cpsie i" ::: "memory");
}

const char *board_name(void) { return "mps2-an386"; }

void board_uart_write(const uint8_t *data, uint32_t n)
{
    while (n--) {
        while (UART_STATE & STATE_TXFULL) {
        }
        UART_DATA = *data++;
    }
}

uint32_t board_ticks(void)
{
    uint32_t hi, lo;
    do {
        hi = tick_hi;
        lo = SYST_CVR;
        /* a wrap between the two reads (pending interrupt) is caught by re-reading tick_hi */
    } while (hi != tick_hi);
    if ((REG(0xE000ED04u) & (1u << 26)) && lo > 0x00800000u) hi++; /* SysTick pending, not yet counted */
    return (hi << 24) | (0x00FFFFFFu - lo);
}

uint32_t board_tick_hz(void) { return CORE_HZ; }

void board_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
void board_irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
void board_idle(void) { __asm__ volatile("dsb\n\twfi" ::: "memory"); }

uint32_t board_slot_size(void) { return SLOT_SIZE; }

const uint8_t *board_slot_addr(int slot) { return (const uint8_t *)(uintptr_t)(SLOT_BASE + (uint32_t)slot * SLOT_SIZE); }

int board_slot_erase(int slot)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS) return -1;
    memset((void *)(uintptr_t)(SLOT_BASE + (uint32_t)slot * SLOT_SIZE), 0xFF, SLOT_SIZE);
    return 0;
}

int board_slot_write(int slot, uint32_t offset, const void *data, uint32_t n)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS || offset > SLOT_SIZE || n > SLOT_SIZE - offset) return -1;
    memcpy((void *)(uintptr_t)(SLOT_BASE + (uint32_t)slot * SLOT_SIZE + offset), data, n);
    return 0;
}

uint32_t board_cfg_size(void) { return CFG_SIZE; }

const uint8_t *board_cfg_addr(int page) { return (const uint8_t *)(uintptr_t)(CFG_BASE + (uint32_t)page * CFG_SIZE); }

int board_cfg_erase(int page)
{
    if (page < 0 || page >= BOARD_N_CFG) return -1;
    memset((void *)(uintptr_t)(CFG_BASE + (uint32_t)page * CFG_SIZE), 0xFF, CFG_SIZE);
    return 0;
}

int board_cfg_write(int page, uint32_t offset, const void *data, uint32_t n)
{
    if (page < 0 || page >= BOARD_N_CFG || offset > CFG_SIZE || n > CFG_SIZE - offset) return -1;
    memcpy((void *)(uintptr_t)(CFG_BASE + (uint32_t)page * CFG_SIZE + offset), data, n);
    return 0;
}

void board_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}
