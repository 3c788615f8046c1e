//! VM entry and VM exit: the trampoline that swaps general-purpose registers (SDM Vol. 3C,
//! "VM Entries", "VM Exits": VMX transitions load RSP/RIP from the VMCS but no other GPR).
//!
//! `conduit_vmx_run(regs, launched)` saves the callee-saved host registers, writes HOST_RSP,
//! loads the guest's CR2 and GPRs and executes VMLAUNCH (first entry) or VMRESUME. A VM exit
//! lands at `conduit_vmx_exit` (HOST_RIP) with RSP = HOST_RSP, stores the guest's GPRs and CR2
//! back and returns 0. A failed entry returns 1 (VMfailInvalid) or 2 (VMfailValid).
//!
//! CR2 is not part of the VMCS (SDM Vol. 3C §25.4.1 lists the control registers it holds: CR0,
//! CR3, CR4): the guest's value stays in the register across a VM exit, and any host page fault
//! (the control task faults while serving the very exit being handled) overwrites it. So it is
//! saved at every exit and loaded before every entry; the load is skipped when the register
//! already holds the value (the usual case), as MOV to CR2 is a serializing instruction.

use super::instr::VmFail;
use core::arch::global_asm;

/// The guest's general-purpose registers, in the SDM's register numbering (0 RAX, 1 RCX, 2 RDX,
/// 3 RBX, 4 RSP (unused: the VMCS holds it), 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15), and CR2.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct GuestRegs {
    pub gpr: [u64; 16],
    /// The guest's CR2 (its last page-fault address), at offset 128.
    pub cr2: u64,
}

const _: () = assert!(core::mem::size_of::<GuestRegs>() == 136);

/// HOST_RSP's encoding, used by the trampoline (SDM Appendix B.4.4).
const HOST_RSP: u32 = 0x6c14;

global_asm!(
    ".global conduit_vmx_run",
    "conduit_vmx_run:",
    "push rbp", "push rbx", "push r12", "push r13", "push r14", "push r15",
    "push rdi",
    "mov rax, {host_rsp}",
    "vmwrite rax, rsp",
    "mov rax, [rdi + 128]",
    "mov rcx, cr2",
    "cmp rax, rcx",
    "je 4f",
    "mov cr2, rax",
    "4:",
    "test sil, sil",
    // MOVs leave the flags of `test` intact.
    "mov rax, [rdi + 0]", "mov rcx, [rdi + 8]", "mov rdx, [rdi + 16]", "mov rbx, [rdi + 24]",
    "mov rbp, [rdi + 40]", "mov rsi, [rdi + 48]",
    "mov r8, [rdi + 64]", "mov r9, [rdi + 72]", "mov r10, [rdi + 80]", "mov r11, [rdi + 88]",
    "mov r12, [rdi + 96]", "mov r13, [rdi + 104]", "mov r14, [rdi + 112]", "mov r15, [rdi + 120]",
    "mov rdi, [rdi + 56]",
    "jnz 2f",
    "vmlaunch",
    "jmp 3f",
    "2:",
    "vmresume",
    "3:",
    // Entry failed: CF = VMfailInvalid, ZF = VMfailValid.
    "mov eax, 2",
    "mov ecx, 1",
    "cmovc eax, ecx",
    "add rsp, 8",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx", "pop rbp",
    "ret",
    ".global conduit_vmx_exit",
    "conduit_vmx_exit:",
    "push rax",
    "mov rax, [rsp + 8]",
    "mov [rax + 8], rcx", "mov [rax + 16], rdx", "mov [rax + 24], rbx",
    "mov [rax + 40], rbp", "mov [rax + 48], rsi", "mov [rax + 56], rdi",
    "mov [rax + 64], r8", "mov [rax + 72], r9", "mov [rax + 80], r10", "mov [rax + 88], r11",
    "mov [rax + 96], r12", "mov [rax + 104], r13", "mov [rax + 112], r14", "mov [rax + 120], r15",
    "mov rcx, cr2",
    "mov [rax + 128], rcx",
    "pop rcx",
    "mov [rax + 0], rcx",
    "add rsp, 8",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx", "pop rbp",
    "xor eax, eax",
    "ret",
    host_rsp = const HOST_RSP,
);

unsafe extern "C" {
    fn conduit_vmx_run(regs: *mut GuestRegs, launched: u8) -> u64;
    fn conduit_vmx_exit();
}

/// The address VM exits continue at (HOST_RIP).
pub fn exit_entry_point() -> u64 {
    conduit_vmx_exit as *const () as u64
}

/// Enters the guest of the current VMCS and returns at its next VM exit.
///
/// # Safety
/// The current VMCS is fully set up (host state pointing at `exit_entry_point`, guest state
/// checked), and `launched` tells whether VMLAUNCH already succeeded on it.
pub unsafe fn enter(regs: &mut GuestRegs, launched: bool) -> Result<(), VmFail> {
    // SAFETY: guaranteed by the caller; the trampoline preserves the System V callee-saved
    // registers and the stack.
    match unsafe { conduit_vmx_run(regs, u8::from(launched)) } {
        0 => Ok(()),
        1 => Err(VmFail::Invalid),
        _ => {
            // SAFETY: VMfailValid means a VMCS is current.
            let error = unsafe {
                super::instr::vmread(conduit_vmx::fields::ReadOnly32::VmInstructionError)
            };
            Err(match error {
                Ok(n) => VmFail::Valid(n as u32),
                Err(fail) => fail,
            })
        }
    }
}
