/* startup.c - minimal Cortex-M vector table for QEMU mps2-an385/an386 benchmark firmware.
 * Reset jumps to newlib's _start (rdimon semihosting crt0); faults end in BKPT so that
 * QEMU stops ("Lockup") instead of hanging. */
#include <stdint.h>

extern void _start(void);
extern uint32_t __StackTop;
void Reset_Handler(void);
void Fault_Handler(void);

void Fault_Handler(void)
{
    __asm__ volatile("bkpt #0");
    for (;;) {
    }
}

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: enable CP10/CP11 */
#endif
    _start();
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) void (*const ge_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, Fault_Handler};
