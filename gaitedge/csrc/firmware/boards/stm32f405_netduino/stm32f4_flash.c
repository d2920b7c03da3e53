/*
 * stm32f4_flash.c - STM32F4 flash controller driver: unlock (KEYR), sector erase
 * (CR.SER + SNB + STRT), program (CR.PG at the parallelism of the supply voltage),
 * wait on SR.BSY, error flags, data-cache flush.  See stm32f4_flash.h.
 *
 * Every operation: wait until the controller is idle, clear stale error flags (write 1),
 * unlock, set up CR, start, wait for BSY to clear, check SR, clear the mode bits and lock
 * CR again, so that a stray store into flash between operations raises an error instead
 * of programming anything.
 */
#include <stdint.h>
#include <string.h>

#include "stm32f4_flash.h"

#ifdef STM32F4_FLASH_SIM
/* host test build: the controller and the flash array are simulated (test/flash_sim_test.c) */
uint32_t stm32f4_sim_reg_read(uint32_t off);
void stm32f4_sim_reg_write(uint32_t off, uint32_t value);
void stm32f4_sim_program(uint32_t addr, uint32_t value, unsigned bytes);
const uint8_t *stm32f4_sim_mem(uint32_t addr);
#define FL_RD(off) stm32f4_sim_reg_read(off)
#define FL_WR(off, v) stm32f4_sim_reg_write((off), (v))
#define FL_PROG(addr, v, bytes) stm32f4_sim_program((addr), (v), (bytes))
#define FL_MEM(addr) stm32f4_sim_mem(addr)
#define FL_BARRIER() ((void)0)
#else
#define FL_REG(off) (*(volatile uint32_t *)(uintptr_t)(STM32F4_FLASH_R_BASE + (off)))
#define FL_RD(off) FL_REG(off)
#define FL_WR(off, v) (FL_REG(off) = (v))
#define FL_MEM(addr) ((const uint8_t *)(uintptr_t)(addr))
#define FL_BARRIER() __asm__ volatile("dsb" ::: "memory")
static void FL_PROG(uint32_t addr, uint32_t v, unsigned bytes)
{
    if (bytes == 1)
        *(volatile uint8_t *)(uintptr_t)addr = (uint8_t)v;
    else if (bytes == 2)
        *(volatile uint16_t *)(uintptr_t)addr = (uint16_t)v;
    else
        *(volatile uint32_t *)(uintptr_t)addr = v;
}
#endif

/* Polls of SR.BSY before giving up: a 128 KB sector erase takes up to 2 s at x32 (4 s at
 * x8); one poll is a few core cycles, so this bound is far above that at 168 MHz. */
#ifndef STM32F4_FLASH_BSY_POLLS
#define STM32F4_FLASH_BSY_POLLS 0x40000000u
#endif

static unsigned psize_bytes = 4; /* 2.7-3.6 V until stm32f4_flash_init() says otherwise */
static uint32_t last_sr;

unsigned stm32f4_flash_psize_for_mv(unsigned mv)
{
    if (mv >= 2700u) return 32u;
    if (mv >= 2100u) return 16u;
    if (mv >= 1800u) return 8u;
    return 0u;
}

unsigned stm32f4_flash_init(unsigned supply_mv)
{
    unsigned bits = stm32f4_flash_psize_for_mv(supply_mv);
    if (bits) psize_bytes = bits / 8u;
    return bits;
}

uint32_t stm32f4_flash_last_sr(void) { return last_sr; }

int stm32f4_flash_sector_of(uint32_t addr)
{
    uint32_t off;
    if (addr < STM32F4_FLASH_BASE || addr - STM32F4_FLASH_BASE >= STM32F4_FLASH_SIZE) return -1;
    off = addr - STM32F4_FLASH_BASE;
    if (off < 0x10000u) return (int)(off >> 14);          /* 0-3: 16 KB */
    if (off < 0x20000u) return 4;                         /* 4: 64 KB */
    return 4 + (int)(off >> 17);                          /* 5-11: 128 KB */
}

uint32_t stm32f4_flash_sector_addr(int sector)
{
    if (sector < 0 || sector >= STM32F4_FLASH_N_SECTORS) return 0;
    if (sector < 4) return STM32F4_FLASH_BASE + (uint32_t)sector * 0x4000u;
    if (sector == 4) return STM32F4_FLASH_BASE + 0x10000u;
    return STM32F4_FLASH_BASE + (uint32_t)(sector - 4) * 0x20000u;
}

uint32_t stm32f4_flash_sector_size(int sector)
{
    if (sector < 0 || sector >= STM32F4_FLASH_N_SECTORS) return 0;
    return sector < 4 ? 0x4000u : sector == 4 ? 0x10000u : 0x20000u;
}

static uint32_t cr_psize(void)
{
    uint32_t code = psize_bytes == 1 ? 0u : psize_bytes == 2 ? 1u : 2u;
    return code << STM32F4_CR_PSIZE_SHIFT;
}

static int wait_idle(void)
{
    uint32_t n = STM32F4_FLASH_BSY_POLLS;
    while (FL_RD(STM32F4_FLASH_SR) & STM32F4_SR_BSY) {
        if (--n == 0) return STM32F4_FLASH_E_TIMEOUT;
    }
    return STM32F4_FLASH_OK;
}

static int unlock(void)
{
    if (FL_RD(STM32F4_FLASH_CR) & STM32F4_CR_LOCK) {
        FL_WR(STM32F4_FLASH_KEYR, STM32F4_FLASH_KEY1);
        FL_WR(STM32F4_FLASH_KEYR, STM32F4_FLASH_KEY2);
    }
    return (FL_RD(STM32F4_FLASH_CR) & STM32F4_CR_LOCK) ? STM32F4_FLASH_E_LOCKED : STM32F4_FLASH_OK;
}

/* Idle, stale flags cleared, unlocked: ready for CR to be set up. */
static int begin(void)
{
    int rc = wait_idle();
    if (rc != STM32F4_FLASH_OK) return rc;
    FL_WR(STM32F4_FLASH_SR, STM32F4_SR_EOP | STM32F4_SR_ERRORS); /* write 1 to clear */
    return unlock();
}

/* Wait for the operation, record SR, clear the mode bits and lock CR. */
static int finish(int rc)
{
    int w = wait_idle();
    last_sr = FL_RD(STM32F4_FLASH_SR);
    if (w == STM32F4_FLASH_OK) { /* CR must not be written while busy */
        FL_WR(STM32F4_FLASH_CR, FL_RD(STM32F4_FLASH_CR) & ~(STM32F4_CR_PG | STM32F4_CR_SER | STM32F4_CR_MER |
                                                           STM32F4_CR_SNB_MASK));
        FL_WR(STM32F4_FLASH_CR, FL_RD(STM32F4_FLASH_CR) | STM32F4_CR_LOCK);
    }
    if (rc != STM32F4_FLASH_OK) return rc;
    if (w != STM32F4_FLASH_OK) return w;
    return (last_sr & STM32F4_SR_ERRORS) ? STM32F4_FLASH_E_HW : STM32F4_FLASH_OK;
}

/* The data cache may hold words of the old contents: reset it (only allowed while disabled). */
static void flush_dcache(void)
{
    uint32_t acr = FL_RD(STM32F4_FLASH_ACR);
    if (acr & STM32F4_ACR_DCEN) {
        FL_WR(STM32F4_FLASH_ACR, acr & ~STM32F4_ACR_DCEN);
        FL_WR(STM32F4_FLASH_ACR, (acr & ~STM32F4_ACR_DCEN) | STM32F4_ACR_DCRST);
        FL_WR(STM32F4_FLASH_ACR, acr & ~STM32F4_ACR_DCRST);
    }
}

int stm32f4_flash_erase_sector(int sector)
{
    uint32_t base, size, k;
    int rc;
    if (sector < 0 || sector >= STM32F4_FLASH_N_SECTORS) return STM32F4_FLASH_E_ARG;
    rc = begin();
    if (rc != STM32F4_FLASH_OK) return rc;
    FL_WR(STM32F4_FLASH_CR, (FL_RD(STM32F4_FLASH_CR) & ~(STM32F4_CR_PSIZE_MASK | STM32F4_CR_SNB_MASK |
                                                         STM32F4_CR_PG | STM32F4_CR_MER)) |
                                cr_psize() | STM32F4_CR_SER | ((uint32_t)sector << STM32F4_CR_SNB_SHIFT));
    FL_WR(STM32F4_FLASH_CR, FL_RD(STM32F4_FLASH_CR) | STM32F4_CR_STRT);
    FL_BARRIER();
    rc = finish(STM32F4_FLASH_OK);
    flush_dcache();
    if (rc != STM32F4_FLASH_OK) return rc;
    base = stm32f4_flash_sector_addr(sector);
    size = stm32f4_flash_sector_size(sector);
    for (k = 0; k < size; k += 4) {
        const uint8_t *p = FL_MEM(base + k);
        if ((p[0] & p[1] & p[2] & p[3]) != 0xFFu) return STM32F4_FLASH_E_VERIFY;
    }
    return STM32F4_FLASH_OK;
}

int stm32f4_flash_erase_range(uint32_t addr, uint32_t n)
{
    int first = stm32f4_flash_sector_of(addr), last, s, rc;
    if (n == 0) return STM32F4_FLASH_OK;
    last = stm32f4_flash_sector_of(addr + n - 1u);
    if (first < 0 || last < 0 || stm32f4_flash_sector_addr(first) != addr ||
        stm32f4_flash_sector_addr(last) + stm32f4_flash_sector_size(last) != addr + n)
        return STM32F4_FLASH_E_ARG;
    for (s = first; s <= last; s++) {
        rc = stm32f4_flash_erase_sector(s);
        if (rc != STM32F4_FLASH_OK) return rc;
    }
    return STM32F4_FLASH_OK;
}

int stm32f4_flash_program(uint32_t addr, const void *data, uint32_t n)
{
    const uint8_t *src = (const uint8_t *)data;
    uint32_t unit = psize_bytes, k;
    int rc;
    if (n == 0) return STM32F4_FLASH_OK;
    if (addr % unit || stm32f4_flash_sector_of(addr) < 0 || stm32f4_flash_sector_of(addr + n - 1u) < 0)
        return STM32F4_FLASH_E_ARG;
    rc = begin();
    if (rc != STM32F4_FLASH_OK) return rc;
    FL_WR(STM32F4_FLASH_CR, (FL_RD(STM32F4_FLASH_CR) & ~(STM32F4_CR_PSIZE_MASK | STM32F4_CR_SNB_MASK |
                                                         STM32F4_CR_SER | STM32F4_CR_MER)) |
                                cr_psize() | STM32F4_CR_PG);
    for (k = 0; k < n && rc == STM32F4_FLASH_OK; k += unit) {
        uint32_t v = 0, b;
        for (b = 0; b < unit; b++) v |= (uint32_t)(k + b < n ? src[k + b] : 0xFFu) << (8u * b); /* little-endian */
        FL_PROG(addr + k, v, unit);
        FL_BARRIER();
        rc = wait_idle();
        if (rc == STM32F4_FLASH_OK && (FL_RD(STM32F4_FLASH_SR) & STM32F4_SR_ERRORS)) rc = STM32F4_FLASH_E_HW;
    }
    rc = finish(rc);
    flush_dcache();
    if (rc != STM32F4_FLASH_OK) return rc;
    return memcmp(FL_MEM(addr), src, n) == 0 ? STM32F4_FLASH_OK : STM32F4_FLASH_E_VERIFY;
}
