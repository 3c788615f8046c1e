//! VMX operation: VMXON, VMCS regions, VM entry/exit, INVEPT/INVVPID (Intel SDM Vol. 3C,
//! "Introduction to Virtual Machine Extensions", "Enabling and Entering VMX Operation").
//!
//! Policy (what a guest looks like, how exits are handled) lives in the kernel's `guest`; this
//! module only drives the hardware.

pub mod instr;
pub mod run;
pub mod vmcs;

use super::cpu::VmxInfo;
use super::{gdt, msr};
use crate::memory::{Memory, PhysAddr, PhysWindow};
use conduit_vmx::caps::{VmxCapabilities, VmxMsrs, msr as vmx_msr};
use conduit_vmx::fields::{Host16, Host32, Host64, HostNatural};
use instr::VmFail;
use log::info;
use vmcs::{Current, FieldError};
use x86_64::registers::control::{Cr0, Cr3, Cr4};

/// Why VMX could not be turned on.
#[derive(Debug, Clone, Copy)]
pub enum VmxError {
    /// Firmware locked IA32_FEATURE_CONTROL without "enable VMXON outside SMX" (SDM 24.7).
    FeatureControlLocked(u64),
    /// The host CR0 or CR4 cannot satisfy the VMX fixed bits.
    FixedBits {
        cr: u8,
        value: u64,
        fixed0: u64,
        fixed1: u64,
    },
    /// No frame for the VMXON region.
    OutOfMemory,
    /// VMXON itself failed.
    Vmxon(VmFail),
}

impl core::fmt::Display for VmxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::FeatureControlLocked(v) => write!(
                f,
                "IA32_FEATURE_CONTROL is locked ({v:#x}) with VMXON outside SMX disabled: enable VT-x in the firmware setup"
            ),
            Self::FixedBits {
                cr,
                value,
                fixed0,
                fixed1,
            } => write!(
                f,
                "CR{cr} = {value:#x} cannot satisfy the VMX fixed bits (fixed0 {fixed0:#x}, fixed1 {fixed1:#x})"
            ),
            Self::OutOfMemory => write!(f, "no memory for the VMXON region"),
            Self::Vmxon(e) => write!(f, "VMXON failed: {e}"),
        }
    }
}

/// This CPU in VMX root operation.
#[derive(Debug)]
pub struct Vmx {
    pub msrs: VmxMsrs,
    pub caps: VmxCapabilities,
    _vmxon_region: PhysAddr,
}

/// IA32_FEATURE_CONTROL bits (SDM Vol. 4, Table 2-2): lock, VMXON outside SMX.
const FC_LOCK: u64 = 1 << 0;
const FC_VMXON_OUTSIDE_SMX: u64 = 1 << 2;
const CR4_VMXE: u64 = 1 << 13;

/// Turns VMX on: feature control, the CR0/CR4 fixed bits, CR4.VMXE, the VMXON region, VMXON
/// (SDM "Enabling and Entering VMX Operation").
pub fn enable(info: &VmxInfo, mem: &Memory) -> Result<Vmx, VmxError> {
    let fc = info.feature_control;
    if fc & FC_LOCK == 0 {
        // SAFETY: CPUID reports VMX, so IA32_FEATURE_CONTROL exists and is unlocked.
        unsafe {
            msr::write(
                vmx_msr::IA32_FEATURE_CONTROL,
                fc | FC_LOCK | FC_VMXON_OUTSIDE_SMX,
            )
        };
    } else if fc & FC_VMXON_OUTSIDE_SMX == 0 {
        return Err(VmxError::FeatureControlLocked(fc));
    }
    let m = &info.msrs;
    let cr0 = Cr0::read_raw();
    let want0 = (cr0 | m.cr0_fixed0) & m.cr0_fixed1;
    if want0 & m.cr0_fixed0 != m.cr0_fixed0 {
        return Err(VmxError::FixedBits {
            cr: 0,
            value: cr0,
            fixed0: m.cr0_fixed0,
            fixed1: m.cr0_fixed1,
        });
    }
    let cr4 = Cr4::read_raw() | CR4_VMXE;
    let want4 = (cr4 | m.cr4_fixed0) & m.cr4_fixed1;
    if want4 & m.cr4_fixed0 != m.cr4_fixed0 || want4 & CR4_VMXE == 0 {
        return Err(VmxError::FixedBits {
            cr: 4,
            value: cr4,
            fixed0: m.cr4_fixed0,
            fixed1: m.cr4_fixed1,
        });
    }
    // SAFETY: only bits the CPU requires for VMX operation change (CR0.NE/PE/PG are already set in
    // long mode; CR4.VMXE has no effect outside VMX).
    unsafe {
        Cr0::write_raw(want0);
        Cr4::write_raw(want4);
    }
    let region = mem.frames.lock().allocate().ok_or(VmxError::OutOfMemory)?;
    let window = PhysWindow::new(mem, true);
    window.zero_frame(region);
    // SAFETY: the frame was just allocated and is mapped through the window.
    unsafe {
        core::ptr::write_volatile(
            window.virt(region.0).cast::<u32>(),
            info.caps.basic.revision,
        )
    };
    // SAFETY: CR4.VMXE is set, the fixed bits hold, the region carries the revision id.
    unsafe { instr::vmxon(region.0) }.map_err(VmxError::Vmxon)?;
    CAPS.call_once(|| info.caps);
    let me = crate::percpu::current();
    me.set_vmx_on();
    info!(
        "VMXON done (region at {:#x}), CR0 {want0:#x}, CR4 {want4:#x}: cpu {} (APIC ID {})",
        region.0,
        me.index(),
        me.apic_id()
    );
    Ok(Vmx {
        msrs: info.msrs,
        caps: info.caps,
        _vmxon_region: region,
    })
}

/// Writes the host-state area of the current VMCS from this CPU's present state, so every VM
/// exit returns to `run::exit_entry_point` on the current descriptor tables and page tables
/// (SDM "Host-State Area", "Checks on Host Control Registers, MSRs, and Segment Registers").
pub fn write_host_state(v: &mut Current) -> Result<(), FieldError> {
    let sel = gdt::selectors();
    let gdtr = x86_64::instructions::tables::sgdt();
    let idtr = x86_64::instructions::tables::sidt();
    let (cr3, cr3_flags) = Cr3::read_raw();
    v.set(HostNatural::Cr0, Cr0::read_raw())?;
    v.set(
        HostNatural::Cr3,
        cr3.start_address().as_u64() | u64::from(cr3_flags),
    )?;
    v.set(HostNatural::Cr4, Cr4::read_raw())?;
    v.set(Host16::CsSelector, sel.code.0)?;
    v.set(Host16::SsSelector, sel.data.0)?;
    v.set(Host16::DsSelector, sel.data.0)?;
    v.set(Host16::EsSelector, sel.data.0)?;
    v.set(Host16::FsSelector, 0)?;
    v.set(Host16::GsSelector, 0)?;
    v.set(Host16::TrSelector, sel.tss.0)?;
    // SAFETY: FS_BASE, GS_BASE, EFER and PAT exist on every x86-64 CPU; reading them has no
    // side effects.
    let (fs_base, gs_base, efer, pat) = unsafe {
        (
            msr::read(0xc000_0100),
            msr::read(0xc000_0101),
            msr::read(0xc000_0080),
            msr::read(0x277),
        )
    };
    v.set(HostNatural::FsBase, fs_base)?;
    v.set(HostNatural::GsBase, gs_base)?;
    v.set(HostNatural::TrBase, gdt::tss_base())?;
    v.set(HostNatural::GdtrBase, gdtr.base.as_u64())?;
    v.set(HostNatural::IdtrBase, idtr.base.as_u64())?;
    v.set(Host32::SysenterCs, 0)?;
    v.set(HostNatural::SysenterEsp, 0)?;
    v.set(HostNatural::SysenterEip, 0)?;
    v.set(Host64::Efer, efer)?;
    v.set(Host64::Pat, pat)?;
    v.set(HostNatural::Rip, run::exit_entry_point())?;
    Ok(())
}

/// INVEPT single-context for `eptp`, falling back to nothing only when the CPU has no INVEPT at
/// all (then EPT changes are impossible while a guest runs, and Conduit never makes them).
pub fn invept(caps: &VmxCapabilities, eptp: u64) -> Result<(), VmFail> {
    if caps.ept_vpid.invept_single_context {
        // SAFETY: VMX is on and single-context INVEPT is supported.
        unsafe { instr::invept_single(eptp) }
    } else {
        Ok(())
    }
}

/// The VMX capabilities, once VMXON succeeded on some CPU (every CPU is of one kind).
static CAPS: spin::Once<VmxCapabilities> = spin::Once::new();

/// The VMX capabilities, once some CPU is in VMX operation.
pub fn capabilities() -> Option<&'static VmxCapabilities> {
    CAPS.get()
}

fn invept_here(eptp: u64) -> u64 {
    match CAPS.get().map(|c| invept(c, eptp)) {
        Some(Err(e)) => vm_fail_code(e),
        _ => 0,
    }
}

fn invvpid_here(vpid: u64) -> u64 {
    match CAPS.get().map(|c| invvpid(c, vpid as u16)) {
        Some(Err(e)) => vm_fail_code(e),
        _ => 0,
    }
}

/// A VMfail as one word for a cross-CPU reply: 1 VMfailInvalid, 2 + n VMfailValid(n).
fn vm_fail_code(e: VmFail) -> u64 {
    match e {
        VmFail::Invalid => 1,
        VmFail::Valid(n) => 2 + u64::from(n),
    }
}

/// Why an invalidation on every CPU failed: on which CPU, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EverywhereError {
    /// The request could not be carried to the CPU.
    Call(usize, crate::smp::CallError),
    /// The instruction failed there (1: VMfailInvalid, 2 + n: VMfailValid(n)).
    Failed(usize, u64),
    /// The CPU is not in VMX operation.
    NoVmx(usize),
    /// The VMCS is current on that CPU (it was interrupted between a VM exit and its next
    /// entry): clearing it there would pull it from under its user.
    Current(usize),
}

impl core::fmt::Display for EverywhereError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Call(cpu, e) => write!(f, "cpu {cpu}: {e}"),
            Self::Failed(cpu, 1) => write!(f, "cpu {cpu}: VMfailInvalid"),
            Self::Failed(cpu, n) => write!(f, "cpu {cpu}: VMfailValid({})", n - 2),
            Self::NoVmx(cpu) => write!(f, "cpu {cpu} is not in VMX operation"),
            Self::Current(cpu) => write!(f, "cpu {cpu} has the VMCS current (refused)"),
        }
    }
}

fn on_every_vmx_cpu(f: fn(u64) -> u64, arg: u64) -> Result<usize, EverywhereError> {
    on_vmx_cpus(crate::percpu::all().map(|c| c.index()), f, arg)
}

/// Runs `f(arg)` on each of `cpus` that is in VMX operation (a cross-CPU call, or directly on
/// this CPU); a non-zero result is a failure code (`vm_fail_code`).
fn on_vmx_cpus(
    cpus: impl Iterator<Item = usize>,
    f: fn(u64) -> u64,
    arg: u64,
) -> Result<usize, EverywhereError> {
    let mut done = 0;
    let vmx = cpus.filter_map(crate::percpu::get).filter(|c| c.vmx_on());
    for cpu in vmx {
        match crate::smp::call_on(cpu.index(), f, arg) {
            Ok(0) => done += 1,
            Ok(code) => return Err(EverywhereError::Failed(cpu.index(), code)),
            Err(e) => return Err(EverywhereError::Call(cpu.index(), e)),
        }
    }
    Ok(done)
}

/// INVEPT single-context for `eptp` on every CPU in VMX operation (each caches EPT-derived
/// translations of its own, SDM Vol. 3C §29.4.3.1): after a change to an EPT that any CPU may
/// have used. Returns how many CPUs invalidated.
pub fn invept_everywhere(eptp: u64) -> Result<usize, EverywhereError> {
    on_every_vmx_cpu(invept_here, eptp)
}

/// INVEPT single-context for `eptp` on each of `cpus` in VMX operation (SDM Vol. 3C §29.4.3.1):
/// after a change to an EPT only those CPUs use (the CPUs of one guest's vCPUs). Returns how
/// many CPUs invalidated.
pub fn invept_on(cpus: &[usize], eptp: u64) -> Result<usize, EverywhereError> {
    on_vmx_cpus(cpus.iter().copied(), invept_here, eptp)
}

/// INVVPID single-context for `vpid` on every CPU in VMX operation (SDM Vol. 3C §29.4.3.3).
pub fn invvpid_everywhere(vpid: u16) -> Result<usize, EverywhereError> {
    on_every_vmx_cpu(invvpid_here, u64::from(vpid))
}

/// INVVPID single-context for `vpid` where supported.
pub fn invvpid(caps: &VmxCapabilities, vpid: u16) -> Result<(), VmFail> {
    if caps.ept_vpid.invvpid_single_context {
        // SAFETY: VMX is on and single-context INVVPID is supported.
        unsafe { instr::invvpid_single(vpid) }
    } else {
        Ok(())
    }
}
