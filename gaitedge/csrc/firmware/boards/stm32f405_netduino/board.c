/*
 * board.c - board layer for the STM32F405 (Cortex-M4F, 1 MB flash, 128 KB SRAM + 64 KB CCM),
 * laid out for the Netduino Plus 2 and QEMU's model of it (`qemu-system-arm -M netduinoplus2`).
 * See ../../board.h and ../../../PORTING.md (this port is its worked example).
 *
 * Two builds from these files:
 *
 *   emulated (default; `gaitedge firmware build --board stm32f405`) for QEMU 7.2:
 *     Clock  QEMU does not model the RCC (reads 0, writes ignored): the core runs at a fixed
 *            168 MHz SYSCLK from reset, so the PLL bring-up is skipped (its ready bits would
 *            never rise) and SysTick counts 168 MHz.
 *     Slots  QEMU ignores writes to the flash array, so the two weight slots and the two
 *            settings pages live in a RAM-backed region instead: the upper 64 KB of SRAM
 *            (link.ld; QEMU 7.2 does not model the CCM RAM): slots of 28 KB at 0x2001_0000 /
 *            0x2001_7000, settings pages of 4 KB at 0x2001_E000 / 0x2001_F000.  They survive
 *            REBOOT (SYSRESETREQ) but not a restart of QEMU, and hold weights of up to ~27.9 KB.
 *
 *   chip (`--board stm32f405-chip`, -DSTM32F405_CHIP, link_chip.ld) for the real part:
 *     Clock  HSE (BOARD_HSE_HZ, 25 MHz on the Netduino Plus 2) -> PLL 168 MHz, AHB 168,
 *            APB1 42, APB2 84 MHz, voltage scale 1, 5 flash wait states, caches and prefetch
 *            on; if the crystal does not start, the board stays on the 16 MHz HSI.
 *     Slots  flash sectors 10 and 11 (128 KB each, 0x080C_0000 / 0x080E_0000); settings
 *            pages in sectors 2 and 3 (16 KB each, 0x0800_8000 / 0x0800_C000), erased and
 *            programmed by stm32f4_flash.c at the x32 parallelism of a 3.3 V supply.
 *
 * Both builds:
 *   UART   USART1 (QEMU connects its first -serial to USART1), PA9 TX / PA10 RX (AF7),
 *          115200 8N1 from PCLK2 = 84 MHz; receive interrupt RXNE (IRQ 37), polled
 *          transmit on TXE.  QEMU drops bytes that arrive before RE is set; the host
 *          only sends after the BOOT frame, which follows board_init().
 *   Tick   SysTick on the core clock, 24-bit down-counter extended to 32 bits by its wrap
 *          interrupt.  Under `-icount shift=0` (1 ns per instruction) one tick is 1/0.168
 *          instructions.
 *   Reset  SYSRESETREQ through SCB->AIRCR.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "stm32f4_flash.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))

/* RCC */
#define RCC 0x40023800u
#define RCC_CR REG(RCC + 0x00u)
#define RCC_PLLCFGR REG(RCC + 0x04u)
#define RCC_CFGR REG(RCC + 0x08u)
#define RCC_AHB1ENR REG(RCC + 0x30u)
#define RCC_APB1ENR REG(RCC + 0x40u)
#define RCC_APB2ENR REG(RCC + 0x44u)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define PWR_CR REG(0x40007000u)
#define PWR_CR_VOS (1u << 14)

/* GPIOA */
#define GPIOA 0x40020000u
#define GPIOA_MODER REG(GPIOA + 0x00u)
#define GPIOA_PUPDR REG(GPIOA + 0x0Cu)
#define GPIOA_AFRH REG(GPIOA + 0x24u)

/* USART1 */
#define USART1 0x40011000u
#define USART_SR REG(USART1 + 0x00u)
#define USART_DR REG(USART1 + 0x04u)
#define USART_BRR REG(USART1 + 0x08u)
#define USART_CR1 REG(USART1 + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)
#define USART1_IRQ 37u

/* Cortex-M system registers */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_AIRCR REG(0xE000ED0Cu)

#define BAUD 115200u

#ifdef STM32F405_CHIP
#ifndef BOARD_HSE_HZ
#define BOARD_HSE_HZ 25000000u
#endif
#define SUPPLY_MV 3300u
#define SLOT_BASE 0x080C0000u /* sectors 10, 11 */
#define SLOT_SIZE 0x00020000u
#define CFG_BASE 0x08008000u /* sectors 2, 3 */
#define CFG_SIZE 0x00004000u
static uint32_t core_hz = 16000000u, pclk2_hz = 16000000u; /* HSI until the PLL runs */
#else
#define SLOT_BASE 0x20010000u /* upper half of SRAM (link.ld) */
#define SLOT_SIZE 0x00007000u
#define CFG_BASE 0x2001E000u
#define CFG_SIZE 0x00001000u
static const uint32_t core_hz = 168000000u, pclk2_hz = 84000000u; /* QEMU's fixed SYSCLK */
#endif

static volatile uint32_t tick_hi; /* SysTick wraps (each 2^24 ticks) */

void SysTick_Handler(void) { tick_hi++; }

void USART1_IRQHandler(void)
{
    uint32_t sr;
    /* reading SR then DR clears RXNE and ORE; with ORE set DR still holds the last good byte */
    while ((sr = USART_SR) & (SR_RXNE | SR_ORE)) {
        uint8_t b = (uint8_t)USART_DR;
        if (sr & SR_ORE) fw_uart_overrun();
        if (sr & SR_RXNE) fw_uart_rx(b);
    }
}

#ifdef STM32F405_CHIP
static int wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t want)
{
    uint32_t n = 1000000u;
    while ((*reg & mask) != want)
        if (--n == 0) return -1;
    return 0;
}

/* HSE -> PLL (VCO 336 MHz from a 1 MHz input): SYSCLK 168, 48 MHz for USB/SDIO, APB1 /4, APB2 /2. */
static void clock_init(void)
{
    const uint32_t pllm = BOARD_HSE_HZ / 1000000u, plln = 336u, pllp = 2u, pllq = 7u;
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    PWR_CR |= PWR_CR_VOS; /* scale 1: needed above 144 MHz */
    RCC_CR |= RCC_CR_HSEON;
    if (wait_bits(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY) != 0) return; /* no crystal: stay on HSI */
    RCC_PLLCFGR = pllm | (plln << 6) | ((pllp / 2u - 1u) << 16) | (1u << 22) /* HSE */ | (pllq << 24);
    RCC_CR |= RCC_CR_PLLON;
    if (wait_bits(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY) != 0) return;
    /* 5 wait states at 168 MHz and 2.7-3.6 V, before raising the clock */
    REG(STM32F4_FLASH_R_BASE + STM32F4_FLASH_ACR) = 5u | STM32F4_ACR_PRFTEN | STM32F4_ACR_ICEN | STM32F4_ACR_DCEN;
    RCC_CFGR = (RCC_CFGR & ~0xFCF3u) | (5u << 10) /* APB1 /4 */ | (4u << 13) /* APB2 /2 */ | 2u /* SW = PLL */;
    if (wait_bits(&RCC_CFGR, 0xCu, 0x8u) != 0) return; /* SWS = PLL */
    core_hz = 168000000u;
    pclk2_hz = 84000000u;
}
#endif

void board_init(void)
{
#ifdef STM32F405_CHIP
    clock_init();
    stm32f4_flash_init(SUPPLY_MV);
#endif
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* read back: the clock reaches the peripheral before it is written */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);     /* PA9, PA10: alternate function */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);       /* AF7 = USART1 */
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0x3u << 20)) | (0x1u << 20);     /* pull-up on RX */
    USART_BRR = (pclk2_hz + BAUD / 2u) / BAUD; /* oversampling by 16: mantissa.fraction = PCLK2 / baud */
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    NVIC_ISER(USART1_IRQ / 32u) = 1u << (USART1_IRQ % 32u);
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* core clock, interrupt, enable */
    __asm__ volatile("cpsie i" ::: "memory");
}

#ifdef STM32F405_CHIP
const char *board_name(void) { return "stm32f405"; }
#else
const char *board_name(void) { return "stm32f405-qemu"; }
#endif

void board_uart_write(const uint8_t *data, uint32_t n)
{
    while (n--) {
        while (!(USART_SR & SR_TXE)) {
        }
        USART_DR = *data++;
    }
}

uint32_t board_ticks(void)
{
    uint32_t hi, lo;
    do {
        hi = tick_hi;
        lo = SYST_CVR;
    } while (hi != tick_hi);
    if ((SCB_ICSR & (1u << 26)) && lo > 0x00800000u) hi++; /* SysTick pending, not yet counted */
    return (hi << 24) | (0x00FFFFFFu - lo);
}

uint32_t board_tick_hz(void) { return core_hz; }

void board_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
void board_irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
void board_idle(void) { __asm__ volatile("dsb\n\twfi" ::: "memory"); }

/* ---- weight slots and settings pages: erase / program one region ---------------------- */
static int region_erase(uint32_t addr, uint32_t size)
{
#ifdef STM32F405_CHIP
    return stm32f4_flash_erase_range(addr, size) == STM32F4_FLASH_OK ? 0 : -1;
#else
    memset((void *)(uintptr_t)addr, 0xFF, size);
    return 0;
#endif
}

static int region_write(uint32_t addr, const void *data, uint32_t n)
{
#ifdef STM32F405_CHIP
    return stm32f4_flash_program(addr, data, n) == STM32F4_FLASH_OK ? 0 : -1;
#else
    memcpy((void *)(uintptr_t)addr, data, n);
    return 0;
#endif
}

uint32_t board_slot_size(void) { return SLOT_SIZE; }

const uint8_t *board_slot_addr(int slot)
{
    return (const uint8_t *)(uintptr_t)(SLOT_BASE + (uint32_t)slot * SLOT_SIZE);
}

int board_slot_erase(int slot)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS) return -1;
    return region_erase(SLOT_BASE + (uint32_t)slot * SLOT_SIZE, SLOT_SIZE);
}

int board_slot_write(int slot, uint32_t offset, const void *data, uint32_t n)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS || offset > SLOT_SIZE || n > SLOT_SIZE - offset) return -1;
    return region_write(SLOT_BASE + (uint32_t)slot * SLOT_SIZE + offset, data, n);
}

uint32_t board_cfg_size(void) { return CFG_SIZE; }

const uint8_t *board_cfg_addr(int page) { return (const uint8_t *)(uintptr_t)(CFG_BASE + (uint32_t)page * CFG_SIZE); }

int board_cfg_erase(int page)
{
    if (page < 0 || page >= BOARD_N_CFG) return -1;
    return region_erase(CFG_BASE + (uint32_t)page * CFG_SIZE, CFG_SIZE);
}

int board_cfg_write(int page, uint32_t offset, const void *data, uint32_t n)
{
    if (page < 0 || page >= BOARD_N_CFG || offset > CFG_SIZE || n > CFG_SIZE - offset) return -1;
    return region_write(CFG_BASE + (uint32_t)page * CFG_SIZE + offset, data, n);
}

void board_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}
