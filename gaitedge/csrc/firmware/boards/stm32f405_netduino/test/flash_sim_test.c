/*
 * flash_sim_test.c - host test of stm32f4_flash.c against a simulated STM32F4 flash
 * controller (build the driver with -DSTM32F4_FLASH_SIM and link this file).
 *
 * The simulation follows the register descriptions of the STM32F405/407 reference manual:
 * CR locked after reset and unlocked only by KEY1 then KEY2 (a wrong key locks it until
 * reset); CR ignores writes while locked; STRT with SER erases sector SNB to 0xFF; a store
 * into the array programs it only with PG set (else PGSERR), only at the width PSIZE
 * selects (else PGPERR), only aligned (else PGAERR), and can only clear bits; SR error
 * flags are cleared by writing 1; BSY stays set for a few reads after every operation,
 * and the driver must not write CR or start another operation meanwhile; writes to
 * write-protected sectors set WRPERR.  Prints "ok N" and exits 0 when every check passes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stm32f4_flash.h"

static uint8_t mem[STM32F4_FLASH_SIZE];
static uint32_t sr, cr = STM32F4_CR_LOCK, acr = STM32F4_ACR_DCEN | STM32F4_ACR_ICEN | 5u;
static int key_state;      /* 0: locked, 1: KEY1 seen */
static int key_dead;       /* a wrong key sequence: locked until reset */
static int busy_reads;     /* reads of SR that still show BSY */
static int busy_per_op = 3;
static int stuck_busy;     /* BSY never clears */
static uint32_t wrp_mask;  /* sectors with write protection */
static int violations;     /* CR written while busy, operation started while busy */
static int erases[STM32F4_FLASH_N_SECTORS], programs, dcache_resets;
static int checks, failures;

#define CHECK(c)                                                                        \
    do {                                                                                \
        checks++;                                                                       \
        if (!(c)) {                                                                     \
            failures++;                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);       \
        }                                                                               \
    } while (0)

static void sim_reset(void)
{
    memset(mem, 0x00, sizeof mem); /* "programmed" until erased */
    sr = 0;
    cr = STM32F4_CR_LOCK;
    key_state = key_dead = busy_reads = stuck_busy = violations = programs = dcache_resets = 0;
    busy_per_op = 3;
    wrp_mask = 0;
    memset(erases, 0, sizeof erases);
}

static int busy(void) { return stuck_busy || busy_reads > 0; }

static void start_busy(void) { busy_reads = busy_per_op; }

uint32_t stm32f4_sim_reg_read(uint32_t off)
{
    switch (off) {
    case STM32F4_FLASH_ACR: return acr;
    case STM32F4_FLASH_SR: {
        uint32_t v = sr | (busy() ? STM32F4_SR_BSY : 0u);
        if (busy_reads > 0) busy_reads--;
        return v;
    }
    case STM32F4_FLASH_CR: return cr;
    default: return 0;
    }
}

static unsigned psize_bytes_of_cr(void) { return 1u << ((cr & STM32F4_CR_PSIZE_MASK) >> STM32F4_CR_PSIZE_SHIFT); }

void stm32f4_sim_reg_write(uint32_t off, uint32_t v)
{
    switch (off) {
    case STM32F4_FLASH_ACR:
        if ((v & STM32F4_ACR_DCRST) && !(v & STM32F4_ACR_DCEN)) dcache_resets++;
        if ((v & STM32F4_ACR_DCRST) && (v & STM32F4_ACR_DCEN)) violations++; /* reset only while disabled */
        acr = v;
        break;
    case STM32F4_FLASH_KEYR:
        if (key_dead || !(cr & STM32F4_CR_LOCK)) {
            key_dead = 1; /* keys while unlocked, or after a bad sequence: bus error, stays locked */
            cr |= STM32F4_CR_LOCK;
        } else if (key_state == 0 && v == STM32F4_FLASH_KEY1) {
            key_state = 1;
        } else if (key_state == 1 && v == STM32F4_FLASH_KEY2) {
            key_state = 0;
            cr &= ~STM32F4_CR_LOCK;
        } else {
            key_dead = 1;
        }
        break;
    case STM32F4_FLASH_SR: sr &= ~(v & (STM32F4_SR_EOP | STM32F4_SR_ERRORS)); break;
    case STM32F4_FLASH_CR:
        if (cr & STM32F4_CR_LOCK) break; /* ignored while locked */
        if (busy()) {
            violations++;
            break;
        }
        cr = v & ~STM32F4_CR_STRT;
        if (v & STM32F4_CR_STRT) {
            if (v & STM32F4_CR_SER) {
                int s = (int)((v & STM32F4_CR_SNB_MASK) >> STM32F4_CR_SNB_SHIFT);
                if (s >= STM32F4_FLASH_N_SECTORS || (v & STM32F4_CR_PG)) {
                    sr |= STM32F4_SR_PGSERR;
                } else if (wrp_mask & (1u << s)) {
                    sr |= STM32F4_SR_WRPERR;
                } else {
                    memset(mem + (stm32f4_flash_sector_addr(s) - STM32F4_FLASH_BASE), 0xFF,
                           stm32f4_flash_sector_size(s));
                    erases[s]++;
                }
            } else {
                sr |= STM32F4_SR_PGSERR;
            }
            start_busy();
        }
        break;
    default: break;
    }
}

void stm32f4_sim_program(uint32_t addr, uint32_t value, unsigned bytes)
{
    uint32_t off = addr - STM32F4_FLASH_BASE, b;
    int s = stm32f4_flash_sector_of(addr);
    if (busy()) violations++;
    if (s < 0 || (cr & STM32F4_CR_LOCK) || !(cr & STM32F4_CR_PG)) {
        sr |= STM32F4_SR_PGSERR;
        return;
    }
    if (bytes != psize_bytes_of_cr()) {
        sr |= STM32F4_SR_PGPERR;
        return;
    }
    if (addr % bytes) {
        sr |= STM32F4_SR_PGAERR;
        return;
    }
    if (wrp_mask & (1u << s)) {
        sr |= STM32F4_SR_WRPERR;
        return;
    }
    for (b = 0; b < bytes; b++) mem[off + b] &= (uint8_t)(value >> (8u * b)); /* bits only go 1 -> 0 */
    programs++;
    start_busy();
}

const uint8_t *stm32f4_sim_mem(uint32_t addr) { return mem + (addr - STM32F4_FLASH_BASE); }

static int all_ff(uint32_t addr, uint32_t n)
{
    const uint8_t *p = stm32f4_sim_mem(addr);
    uint32_t k;
    for (k = 0; k < n; k++)
        if (p[k] != 0xFF) return 0;
    return 1;
}

static void idle_and_locked(void)
{
    CHECK(!busy());
    CHECK(cr & STM32F4_CR_LOCK);
    CHECK(!(cr & (STM32F4_CR_PG | STM32F4_CR_SER | STM32F4_CR_MER)));
    CHECK(violations == 0);
}

static void test_sector_map(void)
{
    CHECK(stm32f4_flash_sector_of(0x08000000u) == 0);
    CHECK(stm32f4_flash_sector_of(0x08003FFFu) == 0);
    CHECK(stm32f4_flash_sector_of(0x08004000u) == 1);
    CHECK(stm32f4_flash_sector_of(0x0800C000u) == 3);
    CHECK(stm32f4_flash_sector_of(0x08010000u) == 4);
    CHECK(stm32f4_flash_sector_of(0x0801FFFFu) == 4);
    CHECK(stm32f4_flash_sector_of(0x08020000u) == 5);
    CHECK(stm32f4_flash_sector_of(0x080C0000u) == 10);
    CHECK(stm32f4_flash_sector_of(0x080FFFFFu) == 11);
    CHECK(stm32f4_flash_sector_of(0x08100000u) == -1);
    CHECK(stm32f4_flash_sector_of(0x07FFFFFFu) == -1);
    {
        int s;
        uint32_t end = STM32F4_FLASH_BASE;
        for (s = 0; s < STM32F4_FLASH_N_SECTORS; s++) { /* contiguous, covering the whole 1 MB */
            CHECK(stm32f4_flash_sector_addr(s) == end);
            CHECK(stm32f4_flash_sector_of(end) == s);
            end += stm32f4_flash_sector_size(s);
        }
        CHECK(end == STM32F4_FLASH_BASE + STM32F4_FLASH_SIZE);
    }
}

static void test_voltage_ranges(void)
{
    CHECK(stm32f4_flash_psize_for_mv(3300) == 32 && stm32f4_flash_psize_for_mv(2700) == 32);
    CHECK(stm32f4_flash_psize_for_mv(2699) == 16 && stm32f4_flash_psize_for_mv(2100) == 16);
    CHECK(stm32f4_flash_psize_for_mv(2099) == 8 && stm32f4_flash_psize_for_mv(1800) == 8);
    CHECK(stm32f4_flash_psize_for_mv(1700) == 0);
    CHECK(stm32f4_flash_init(1700) == 0); /* too low: parallelism unchanged */
}

static void test_erase_and_program(unsigned mv, unsigned unit)
{
    uint8_t data[1000];
    uint32_t slot = 0x080C0000u, k;
    int before;
    sim_reset();
    CHECK(stm32f4_flash_init(mv) == unit * 8u);
    for (k = 0; k < sizeof data; k++) data[k] = (uint8_t)(k * 37u + 11u);

    /* erase the two 128 KB sectors of the weight slots: only they change */
    CHECK(stm32f4_flash_erase_range(slot, 0x40000u) == STM32F4_FLASH_OK);
    CHECK(erases[10] == 1 && erases[11] == 1 && erases[9] == 0 && erases[2] == 0);
    CHECK(all_ff(slot, 0x40000u));
    CHECK(stm32f4_sim_mem(slot - 1u)[0] == 0x00);
    CHECK(dcache_resets >= 1 && (acr & STM32F4_ACR_DCEN) && !(acr & STM32F4_ACR_DCRST));
    idle_and_locked();

    /* program: 997 bytes (a partial final unit at x16/x32, padded with 0xFF) */
    before = programs;
    CHECK(stm32f4_flash_program(slot + 64u, data, 997) == STM32F4_FLASH_OK);
    CHECK(memcmp(stm32f4_sim_mem(slot + 64u), data, 997) == 0);
    CHECK(all_ff(slot + 64u + 997u, 0x1000u));
    CHECK(all_ff(slot, 64u));
    CHECK(programs - before == (int)((997u + unit - 1u) / unit)); /* one store per unit */
    CHECK(stm32f4_flash_last_sr() == 0);
    idle_and_locked();

    /* the rest of the erased unit can still be programmed (0xFF padding left it erased) */
    if (unit > 1) {
        uint32_t tail = (slot + 64u + 997u) & ~(unit - 1u);
        uint8_t want[4];
        memcpy(want, stm32f4_sim_mem(tail), unit);
        for (k = (slot + 64u + 997u) - tail; k < unit; k++) want[k] = 0x5A;
        CHECK(stm32f4_flash_program(tail, want, unit) == STM32F4_FLASH_OK);
        CHECK(memcmp(stm32f4_sim_mem(tail), want, unit) == 0);
    }

    /* programming over programmed bits cannot set them: the read-back check reports it */
    {
        uint8_t other[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
        CHECK(stm32f4_flash_program(slot + 64u, other, 8) == STM32F4_FLASH_E_VERIFY);
        CHECK(memcmp(stm32f4_sim_mem(slot + 64u), data, 8) == 0);
        idle_and_locked();
    }

    /* a misaligned start for the parallelism is refused before anything is stored */
    if (unit > 1) {
        before = programs;
        CHECK(stm32f4_flash_program(slot + 0x2000u + 1u, data, 16) == STM32F4_FLASH_E_ARG);
        CHECK(programs == before && all_ff(slot + 0x2000u, 32));
    } else {
        CHECK(stm32f4_flash_program(slot + 0x2000u + 1u, data, 16) == STM32F4_FLASH_OK);
        CHECK(memcmp(stm32f4_sim_mem(slot + 0x2001u), data, 16) == 0);
    }
    idle_and_locked();
}

static void test_errors(void)
{
    uint8_t data[64];
    memset(data, 0xA5, sizeof data);
    sim_reset();
    stm32f4_flash_init(3300);

    /* ranges that do not match whole sectors, outside the flash */
    CHECK(stm32f4_flash_erase_range(0x080C0000u, 0x1000u) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_erase_range(0x080C1000u, 0x20000u) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_erase_range(0x080E0000u, 0x40000u) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_erase_sector(12) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_erase_sector(-1) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_program(0x080FFFF0u, data, 64) == STM32F4_FLASH_E_ARG);
    CHECK(stm32f4_flash_erase_range(0x08008000u, 0x8000u) == STM32F4_FLASH_OK); /* sectors 2-3: settings */
    CHECK(erases[2] == 1 && erases[3] == 1 && erases[1] == 0 && erases[4] == 0);

    /* a write-protected sector: WRPERR, reported, and cleared before the next operation */
    wrp_mask = 1u << 11;
    CHECK(stm32f4_flash_erase_sector(11) == STM32F4_FLASH_E_HW);
    CHECK(stm32f4_flash_last_sr() & STM32F4_SR_WRPERR);
    idle_and_locked();
    wrp_mask = 0;
    CHECK(stm32f4_flash_erase_sector(11) == STM32F4_FLASH_OK);
    CHECK(stm32f4_flash_program(0x080E0000u, data, 64) == STM32F4_FLASH_OK);
    CHECK(!(sr & STM32F4_SR_ERRORS));

    /* a stale error flag from elsewhere does not fail the next operation */
    sr |= STM32F4_SR_PGSERR;
    CHECK(stm32f4_flash_program(0x080E0040u, data, 64) == STM32F4_FLASH_OK);

    /* BSY never clears: the driver gives up instead of hanging, and does not touch CR */
    stuck_busy = 1;
    CHECK(stm32f4_flash_erase_sector(10) == STM32F4_FLASH_E_TIMEOUT);
    CHECK(erases[10] == 0 && violations == 0);
    stuck_busy = 0;

    /* the controller refuses to unlock (a wrong key earlier): the driver reports it */
    key_dead = 1;
    CHECK(stm32f4_flash_erase_sector(10) == STM32F4_FLASH_E_LOCKED);
    CHECK(stm32f4_flash_program(0x080E0080u, data, 8) == STM32F4_FLASH_E_LOCKED);
    CHECK(erases[10] == 0 && all_ff(0x080E0080u, 8));
    key_dead = 0;

    /* busy for longer than one poll after every operation: still correct */
    busy_per_op = 50;
    CHECK(stm32f4_flash_erase_sector(10) == STM32F4_FLASH_OK && erases[10] == 1);
    CHECK(stm32f4_flash_program(0x080C0000u, data, 64) == STM32F4_FLASH_OK);
    CHECK(memcmp(stm32f4_sim_mem(0x080C0000u), data, 64) == 0);
    idle_and_locked();
}

int main(void)
{
    test_sector_map();
    test_voltage_ranges();
    test_erase_and_program(3300, 4); /* 2.7-3.6 V: x32 */
    test_erase_and_program(2400, 2); /* 2.1-2.7 V: x16 */
    test_erase_and_program(1800, 1); /* 1.8-2.1 V: x8 */
    test_errors();
    if (failures) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("ok %d\n", checks);
    return 0;
}
