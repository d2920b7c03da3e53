/*
 * stm32f4_flash.h - STM32F4 embedded flash driver (sector erase, program), for the
 * STM32F405/407/415/417 1 MB parts: sectors 0-3 of 16 KB, 4 of 64 KB, 5-11 of 128 KB
 * from 0x0800_0000.  Register interface of the flash controller at 0x4002_3C00
 * (ACR, KEYR, SR, CR).
 *
 * The program parallelism (CR.PSIZE) must match the supply voltage range of the
 * board: x8 from 1.8 V, x16 from 2.1 V, x32 from 2.7 V (x64 only with VPP, not used).
 * stm32f4_flash_init() picks it from the supply in millivolts.
 *
 * Built with -DSTM32F4_FLASH_SIM the driver reaches the registers and the flash
 * array through stm32f4_sim_*() functions instead of the bus, so its logic runs on a
 * host against a simulated controller (test/flash_sim_test.c).
 */
#ifndef STM32F4_FLASH_H
#define STM32F4_FLASH_H

#include <stdint.h>

#define STM32F4_FLASH_BASE 0x08000000u
#define STM32F4_FLASH_SIZE 0x00100000u
#define STM32F4_FLASH_N_SECTORS 12
#define STM32F4_FLASH_R_BASE 0x40023C00u

/* controller registers (offsets from STM32F4_FLASH_R_BASE) */
#define STM32F4_FLASH_ACR 0x00u
#define STM32F4_FLASH_KEYR 0x04u
#define STM32F4_FLASH_SR 0x0Cu
#define STM32F4_FLASH_CR 0x10u

#define STM32F4_FLASH_KEY1 0x45670123u
#define STM32F4_FLASH_KEY2 0xCDEF89ABu

/* SR */
#define STM32F4_SR_EOP (1u << 0)
#define STM32F4_SR_OPERR (1u << 1)
#define STM32F4_SR_WRPERR (1u << 4)
#define STM32F4_SR_PGAERR (1u << 5)
#define STM32F4_SR_PGPERR (1u << 6)
#define STM32F4_SR_PGSERR (1u << 7)
#define STM32F4_SR_BSY (1u << 16)
#define STM32F4_SR_ERRORS (STM32F4_SR_OPERR | STM32F4_SR_WRPERR | STM32F4_SR_PGAERR | STM32F4_SR_PGPERR | \
                           STM32F4_SR_PGSERR)
/* CR */
#define STM32F4_CR_PG (1u << 0)
#define STM32F4_CR_SER (1u << 1)
#define STM32F4_CR_MER (1u << 2)
#define STM32F4_CR_SNB_SHIFT 3u
#define STM32F4_CR_SNB_MASK (0xFu << 3)
#define STM32F4_CR_PSIZE_SHIFT 8u
#define STM32F4_CR_PSIZE_MASK (3u << 8)
#define STM32F4_CR_STRT (1u << 16)
#define STM32F4_CR_LOCK (1u << 31)
/* ACR */
#define STM32F4_ACR_LATENCY_MASK 0xFu
#define STM32F4_ACR_PRFTEN (1u << 8)
#define STM32F4_ACR_ICEN (1u << 9)
#define STM32F4_ACR_DCEN (1u << 10)
#define STM32F4_ACR_ICRST (1u << 11)
#define STM32F4_ACR_DCRST (1u << 12)

/* results (0 = success) */
#define STM32F4_FLASH_OK 0
#define STM32F4_FLASH_E_ARG (-1)     /* address / length / sector out of range or misaligned */
#define STM32F4_FLASH_E_LOCKED (-2)  /* the unlock sequence did not unlock CR */
#define STM32F4_FLASH_E_TIMEOUT (-3) /* BSY did not clear */
#define STM32F4_FLASH_E_HW (-4)      /* an error flag in SR (see stm32f4_flash_last_sr) */
#define STM32F4_FLASH_E_VERIFY (-5)  /* read-back differs (e.g. programming over non-erased bits) */

/** Program parallelism in bits (8, 16 or 32) for a supply of mv millivolts (0 if below 1.8 V). */
unsigned stm32f4_flash_psize_for_mv(unsigned mv);
/** Select the parallelism for the board's supply; returns it in bits, 0 if the supply is too low. */
unsigned stm32f4_flash_init(unsigned supply_mv);
/** Sector holding addr, or -1 outside the flash. */
int stm32f4_flash_sector_of(uint32_t addr);
uint32_t stm32f4_flash_sector_addr(int sector);
uint32_t stm32f4_flash_sector_size(int sector);
/** Erase one sector to 0xFF (then checked blank). */
int stm32f4_flash_erase_sector(int sector);
/** Erase the sectors [addr, addr + n): addr must start a sector and addr + n end one. */
int stm32f4_flash_erase_range(uint32_t addr, uint32_t n);
/** Program n bytes at addr (aligned to the parallelism); a final partial unit is padded with
 *  0xFF, which leaves those bytes erased.  The result is read back and compared. */
int stm32f4_flash_program(uint32_t addr, const void *data, uint32_t n);
/** SR as it was when the last operation ended (error bits explain STM32F4_FLASH_E_HW). */
uint32_t stm32f4_flash_last_sr(void);

#endif /* STM32F4_FLASH_H */
