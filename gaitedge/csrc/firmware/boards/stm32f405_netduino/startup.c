/*
 * startup.c - reset and vector table for the gaitedge firmware on the STM32F405.
 *
 * The table sits at the start of flash (0x0800_0000, aliased at 0x0 after reset from main
 * flash); Reset_Handler enables the FPU coprocessors (the image is soft-float, but the
 * part has one and a library built hard-float may be linked in), copies .data from flash,
 * zeroes .bss and enters fw_main().  Faults end in BKPT: QEMU then stops with "Lockup";
 * on the chip with a debugger attached the core halts at the fault.
 */
#include <stdint.h>

extern uint32_t __StackTop, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern void fw_main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void USART1_IRQHandler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

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
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    fw_main();
    for (;;) {
    }
}

typedef void (*vector_fn)(void);

#define D1 Default_Handler
#define D4 D1, D1, D1, D1
#define D8 D4, D4
#define D32 D8, D8, D8, D8

/* 16 system exceptions + 82 external interrupts (STM32F405/407: IRQ 0 WWDG .. 81 FPU);
 * only SysTick and USART1 (IRQ 37) are used. */
__attribute__((section(".vectors"), used)) const vector_fn fw_vectors[16 + 82] = {
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
    D32, D4, D1,       /* IRQ 0-36 */
    USART1_IRQHandler, /* IRQ 37: USART1 */
    D32, D8, D4,       /* IRQ 38-81 */
};
