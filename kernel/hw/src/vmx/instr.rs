//! The VMX instructions (Intel SDM Vol. 3C, "VMX Instruction Reference"); this module is the only
//! place that executes them. Every instruction reports VMfailInvalid (CF = 1) or VMfailValid
//! (ZF = 1, with the error number in the VM-instruction error field), never a silent default.

use conduit_vmx::exit::VmInstructionError;
use conduit_vmx::fields::{ReadOnly32, VmcsReadable};
use core::arch::asm;

/// How a VMX instruction failed (SDM "Conventions" for VMX instructions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFail {
    /// CF = 1: no current VMCS (or the operand is invalid before one exists).
    Invalid,
    /// ZF = 1: the VM-instruction error field holds the reason.
    Valid(u32),
}

impl core::fmt::Display for VmFail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Invalid => write!(f, "VMfailInvalid (no current VMCS)"),
            Self::Valid(n) => match VmInstructionError::from_raw(*n) {
                Ok(e) => write!(f, "VMfailValid, VM-instruction error {n}: {}", e.message()),
                Err(_) => write!(f, "VMfailValid, VM-instruction error {n} (unknown)"),
            },
        }
    }
}

/// Turns the flags after a VMX instruction into a result. On VMfailValid the error number is read
/// from the VM-instruction error field; if even that read fails, no VMCS is current, which is
/// VMfailInvalid.
fn check(cf: u8, zf: u8) -> Result<(), VmFail> {
    if cf != 0 {
        return Err(VmFail::Invalid);
    }
    if zf != 0 {
        // SAFETY: VMREAD of the VM-instruction error field only reads the current VMCS.
        let (value, cf, zf) = unsafe { vmread_flags(ReadOnly32::VmInstructionError.encoding()) };
        return Err(if cf == 0 && zf == 0 {
            VmFail::Valid(value as u32)
        } else {
            VmFail::Invalid
        });
    }
    Ok(())
}

/// VMXON with the physical address of the VMXON region.
///
/// # Safety
/// CR4.VMXE is set, CR0/CR4 satisfy the fixed bits, and the region holds the revision id.
pub unsafe fn vmxon(region: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller; the operand is a memory location holding the address.
    unsafe {
        asm!("vmxon [{0}]", "setc {1}", "setz {2}", in(reg) &region, out(reg_byte) cf, out(reg_byte) zf,
            options(nostack))
    };
    check(cf, zf)
}

/// VMCLEAR: makes the VMCS at `region` inactive and clear (launch state "clear").
///
/// # Safety
/// VMX is on and `region` is a VMCS region owned by the caller.
pub unsafe fn vmclear(region: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("vmclear [{0}]", "setc {1}", "setz {2}", in(reg) &region, out(reg_byte) cf, out(reg_byte) zf,
            options(nostack))
    };
    check(cf, zf)
}

/// VMPTRLD: makes the VMCS at `region` current.
///
/// # Safety
/// VMX is on and `region` is a VMCS region with the right revision id, owned by the caller.
pub unsafe fn vmptrld(region: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("vmptrld [{0}]", "setc {1}", "setz {2}", in(reg) &region, out(reg_byte) cf, out(reg_byte) zf,
            options(nostack))
    };
    check(cf, zf)
}

/// VMREAD of a raw encoding: the value and the CF/ZF flags.
///
/// # Safety
/// VMX is on.
unsafe fn vmread_flags(encoding: u32) -> (u64, u8, u8) {
    let (cf, zf): (u8, u8);
    let value: u64;
    // SAFETY: guaranteed by the caller; VMREAD only reads the current VMCS.
    unsafe {
        asm!("vmread {0}, {1}", "setc {2}", "setz {3}", out(reg) value, in(reg) u64::from(encoding),
            out(reg_byte) cf, out(reg_byte) zf, options(nostack))
    };
    (value, cf, zf)
}

/// VMREAD of a typed field (raw 64-bit operand).
///
/// # Safety
/// VMX is on and a VMCS is current.
pub unsafe fn vmread<F: VmcsReadable>(field: F) -> Result<u64, VmFail> {
    // SAFETY: guaranteed by the caller.
    let (value, cf, zf) = unsafe { vmread_flags(field.encoding()) };
    check(cf, zf)?;
    Ok(value)
}

/// VMWRITE of a raw 64-bit operand to a typed field.
///
/// # Safety
/// VMX is on and a VMCS is current; the field must be writable (the type system guarantees it
/// for `VmcsWritable` callers in `vmcs`).
pub unsafe fn vmwrite(encoding: u32, value: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("vmwrite {0}, {1}", "setc {2}", "setz {3}", in(reg) u64::from(encoding), in(reg) value,
            out(reg_byte) cf, out(reg_byte) zf, options(nostack))
    };
    check(cf, zf)
}

/// INVEPT type 1 (single-context) for `eptp` (SDM "INVEPT").
///
/// # Safety
/// VMX is on and the CPU supports single-context INVEPT.
pub unsafe fn invept_single(eptp: u64) -> Result<(), VmFail> {
    let desc: [u64; 2] = [eptp, 0];
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller; the descriptor is a 128-bit memory operand.
    unsafe {
        asm!("invept {0}, [{1}]", "setc {2}", "setz {3}", in(reg) 1u64, in(reg) &desc,
            out(reg_byte) cf, out(reg_byte) zf, options(nostack))
    };
    check(cf, zf)
}

/// INVVPID type 1 (single-context) for `vpid` (SDM "INVVPID").
///
/// # Safety
/// VMX is on and the CPU supports single-context INVVPID.
pub unsafe fn invvpid_single(vpid: u16) -> Result<(), VmFail> {
    let desc: [u64; 2] = [u64::from(vpid), 0];
    let (cf, zf): (u8, u8);
    // SAFETY: guaranteed by the caller; the descriptor is a 128-bit memory operand.
    unsafe {
        asm!("invvpid {0}, [{1}]", "setc {2}", "setz {3}", in(reg) 1u64, in(reg) &desc,
            out(reg_byte) cf, out(reg_byte) zf, options(nostack))
    };
    check(cf, zf)
}
