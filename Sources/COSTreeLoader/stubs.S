/*
 * One trampoline per function of symbols.h, with the function's own name (hidden: the programs do
 * not export them, so the libraries never bind to them). A trampoline jumps through its slot of
 * `aptl_ostree_table`; while the slot is empty it jumps to `aptl_ostree_slow` with its index in
 * %r11 (free at a call in the System V ABI). The slow path saves every argument register (and %rax,
 * the vector count of variadic calls such as g_variant_builder_add), lets loader.c load and resolve
 * everything, restores them and jumps to the function as if it had been called directly.
 */
#if defined(__x86_64__)

        .text

        .macro APTL_STUB name, index
        .globl \name
        .hidden \name
        .type \name, @function
        .p2align 4
\name:
        movq aptl_ostree_table+8*\index(%rip), %r11
        testq %r11, %r11
        jz 1f
        jmp *%r11
1:      movl $\index, %r11d
        jmp aptl_ostree_slow
        .size \name, .-\name
        .endm

#define APTL_SYMBOL(name) APTL_STUB name, __COUNTER__
#include "symbols.h"
#undef APTL_SYMBOL

        .hidden aptl_ostree_slow
        .type aptl_ostree_slow, @function
        .p2align 4
aptl_ostree_slow:
        pushq %rbp                      /* %rsp is 16-byte aligned from here on */
        movq %rsp, %rbp
        pushq %rdi
        pushq %rsi
        pushq %rdx
        pushq %rcx
        pushq %r8
        pushq %r9
        pushq %rax
        pushq %r11
        subq $128, %rsp
        movdqu %xmm0, 0(%rsp)
        movdqu %xmm1, 16(%rsp)
        movdqu %xmm2, 32(%rsp)
        movdqu %xmm3, 48(%rsp)
        movdqu %xmm4, 64(%rsp)
        movdqu %xmm5, 80(%rsp)
        movdqu %xmm6, 96(%rsp)
        movdqu %xmm7, 112(%rsp)
        call aptl_ostree_load_or_exit   /* returns only when every slot is filled */
        movdqu 0(%rsp), %xmm0
        movdqu 16(%rsp), %xmm1
        movdqu 32(%rsp), %xmm2
        movdqu 48(%rsp), %xmm3
        movdqu 64(%rsp), %xmm4
        movdqu 80(%rsp), %xmm5
        movdqu 96(%rsp), %xmm6
        movdqu 112(%rsp), %xmm7
        addq $128, %rsp
        popq %r11
        popq %rax
        popq %r9
        popq %r8
        popq %rcx
        popq %rdx
        popq %rsi
        popq %rdi
        popq %rbp
        leaq aptl_ostree_table(%rip), %r10
        jmp *(%r10,%r11,8)
        .size aptl_ostree_slow, .-aptl_ostree_slow

#else
#error "the libostree trampolines (stubs.S) are written for x86_64 only"
#endif

        .section .note.GNU-stack,"",@progbits
