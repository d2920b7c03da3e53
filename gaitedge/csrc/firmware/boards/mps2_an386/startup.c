/*
 * startup.c - reset and vector table for the gaitedge firmware on mps2-an386 (Cortex-M4F).
 *
 * Reset_Handler copies .data from flash, zeroes .bss and enters fw_main().  Faults end in
 * BKPT: QEMU then stops with "Lockup" (a crash is visible to tests instead of a hang);
 * on a real board with a debugger attached the core halts at the fault.
 */
#include <stdint.h>

extern uint32_t __StackTop, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern void fw_main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void UART0RX_Handler(void);

void Fault_Handler(void)
{
    __asm__ volatile("bkpt #0");
    for (;;) {
    }
}

void Default_Handler(void)
{
    __asm__ volatile("bkpt #1");
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    fw_main();
    for (;;) {
    }
}

typedef void (*vector_fn)(void);

/* 16 system exceptions + 32 external interrupts (UART0 RX = IRQ 0 on mps2-an385/an386). */
__attribute__((section(".vectors"), used)) const vector_fn fw_vectors[16 + 32] = {
    (vector_fn)(uintptr_t)&__StackTop,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    UART0RX_Handler, /* IRQ 0: UART0 RX */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,
};
