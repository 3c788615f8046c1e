//! The AP start code and its installation below 1 MiB (layout: `conduit_smp::trampoline`).
//!
//! Real mode (CS = the page's segment, IP = 0; Intel SDM Vol. 3A §9.4.4) → LGDT with a 32-bit
//! operand (the whole base) → CR0.PE and a far jump into 32-bit protected mode (§9.9.1) → CR4
//! (PAE), CR3 (the temporary PML4), IA32_EFER (LME, NXE), CR0 (PG) and a far jump into 64-bit
//! code (§9.8.5, "Initializing IA-32e Mode") → a start slot by `lock xadd`, its stack, and a call
//! of the kernel's entry with the slot and the kernel's CR3. The code runs at its physical
//! address throughout (the identity map of the temporary tables) until that call.

use conduit_smp::trampoline::{self as layout, DATA, LM_ENTRY, MAX_SLOTS, PM_ENTRY, off};
use core::arch::global_asm;

global_asm!(
    ".pushsection .rodata.conduit_ap_trampoline, \"a\"",
    ".global conduit_ap_trampoline",
    "conduit_ap_trampoline:",
    ".code16",
    "cli",
    "cld",
    "xorl %ebx, %ebx",
    "movw %cs, %bx",
    "movw %bx, %ds",
    "shll $4, %ebx",
    "lgdtl {gdtr}",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl *{pm_jump}",
    ".org {pm_entry}",
    ".code32",
    "movw ${data32}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    "movl {cr4}(%ebx), %eax",
    "movl %eax, %cr4",
    "movl {cr3}(%ebx), %eax",
    "movl %eax, %cr3",
    "movl $0xc0000080, %ecx",
    "movl {efer}(%ebx), %eax",
    "movl {efer}+4(%ebx), %edx",
    "wrmsr",
    "movl {cr0}(%ebx), %eax",
    "movl %eax, %cr0",
    "ljmpl *{lm_jump}(%ebx)",
    ".org {lm_entry}",
    ".code64",
    "movl %ebx, %ebx",
    "movl $1, %eax",
    "lock xaddl %eax, {next_slot}(%rbx)",
    "cmpl ${max_slots}, %eax",
    "jae 9f",
    "movq {stacks}(%rbx,%rax,8), %rsp",
    "testq %rsp, %rsp",
    "jz 9f",
    "andq $-16, %rsp",
    "movq %rax, %rdi",
    "movq {kernel_cr3}(%rbx), %rsi",
    "movq {entry}(%rbx), %rax",
    "callq *%rax",
    "9:",
    "cli",
    "hlt",
    "jmp 9b",
    ".global conduit_ap_trampoline_end",
    "conduit_ap_trampoline_end:",
    ".popsection",
    gdtr = const DATA + off::GDTR,
    pm_jump = const DATA + off::PM_JUMP,
    pm_entry = const PM_ENTRY,
    data32 = const layout::DATA32,
    cr4 = const DATA + off::CR4,
    cr3 = const DATA + off::CR3,
    efer = const DATA + off::EFER,
    cr0 = const DATA + off::CR0,
    lm_jump = const DATA + off::LM_JUMP,
    lm_entry = const LM_ENTRY,
    next_slot = const DATA + off::NEXT_SLOT,
    max_slots = const MAX_SLOTS,
    stacks = const DATA + off::STACKS,
    kernel_cr3 = const DATA + off::KERNEL_CR3,
    entry = const DATA + off::ENTRY,
    options(att_syntax)
);

unsafe extern "C" {
    static conduit_ap_trampoline: u8;
    static conduit_ap_trampoline_end: u8;
}

/// The start code's bytes, as assembled into the kernel image.
pub fn code() -> &'static [u8] {
    let start = &raw const conduit_ap_trampoline;
    let end = &raw const conduit_ap_trampoline_end;
    let len = end as usize - start as usize;
    // SAFETY: both symbols delimit the start code in the kernel's read-only data, which lives
    // forever; `len` is the distance between them.
    unsafe { core::slice::from_raw_parts(start, len) }
}
