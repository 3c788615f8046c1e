//! The MSRs each guest has its own copy of (docs/cpu-state.md): STAR, LSTAR, CSTAR, FMASK,
//! KERNEL_GS_BASE and TSC_AUX, switched by the VMCS MSR areas (Intel SDM Vol. 3C §25.7.2
//! "VM-Exit Controls for MSRs", §25.8.2 "VM-Entry Controls for MSRs"):
//! - each guest's frame is both its VM-entry MSR-load area (its values go in at every entry) and
//!   its VM-exit MSR-store area (they come back at every exit), so it always holds the guest's
//!   current values;
//! - one host frame, shared by every VMCS on this CPU, is the VM-exit MSR-load area: the host's
//!   values, read from the MSRs after the control task's SYSCALL set-up (`control::init` runs
//!   before any guest is created), return at every exit, so the control task's `SYSCALL` enters
//!   the hypervisor whatever the guest wrote into LSTAR.
//!
//! The MSR bitmap lets the guest read and write these MSRs, and SYSENTER_CS/ESP/EIP (VMCS
//! guest-state fields, switched by every entry and exit), without a VM exit; so SWAPGS exchanges
//! GS.base with the guest's real KERNEL_GS_BASE.

use super::{CreateError, Guest, VmxHost};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_cpustate::msrs::{self, MsrEntry};
use conduit_hw::memory::{Memory, PhysAddr, PhysWindow};
use conduit_hw::msr;
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vmx::fields::{Control32, Control64};
use core::arch::x86_64::{__cpuid, __cpuid_count};

/// The host's side: its values in the VM-exit MSR-load area, and which MSRs are switched.
#[derive(Debug)]
pub struct HostMsrs {
    area: PhysAddr,
    list: &'static [u32],
}

/// Why MSR switching cannot be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrSetupError {
    /// No frame for an MSR area.
    OutOfMemory,
    /// The CPU takes fewer entries per area than Conduit switches.
    TooMany(msrs::TooManyMsrs),
    /// An MSR the bitmap cannot name (never for the fixed list).
    NotInBitmap(u32),
}

impl core::fmt::Display for MsrSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OutOfMemory => write!(f, "no memory for an MSR area"),
            Self::TooMany(e) => write!(f, "{e}"),
            Self::NotInBitmap(m) => write!(f, "MSR {m:#x} is outside the MSR bitmap"),
        }
    }
}

/// Whether IA32_TSC_AUX exists: RDTSCP (CPUID.80000001H:EDX bit 27) or RDPID
/// (CPUID.(EAX=07H,ECX=0):ECX bit 22).
fn has_tsc_aux() -> bool {
    let ext_max = __cpuid(0x8000_0000).eax;
    let rdtscp = ext_max >= 0x8000_0001 && __cpuid(0x8000_0001).edx & (1 << 27) != 0;
    let rdpid = __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ecx & (1 << 22) != 0;
    rdtscp || rdpid
}

/// Whether IA32_SPEC_CTRL exists: CPUID.(EAX=07H,ECX=0):EDX bit 26 (IBRS/IBPB), 27 (STIBP) or
/// 31 (SSBD).
fn has_spec_ctrl() -> bool {
    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).edx & ((1 << 26) | (1 << 27) | (1 << 31)) != 0
}

fn write_area(window: &PhysWindow, area: PhysAddr, entries: impl Iterator<Item = MsrEntry>) {
    let base = window.virt(area.0).cast::<MsrEntry>();
    for (i, e) in entries.enumerate() {
        // SAFETY: the frame is an MSR area owned by the caller and mapped through the window;
        // at most a handful of 16-byte entries fit far inside its 4 KiB.
        unsafe { core::ptr::write_volatile(base.add(i), e) };
    }
}

impl HostMsrs {
    /// Reads the host's values into a new VM-exit MSR-load area and clears the switched MSRs'
    /// bits in the MSR bitmap (`bitmap`: its 4 KiB, all ones so far). `misc`: IA32_VMX_MISC.
    pub fn new(mem: &Memory, misc: u64, bitmap: &mut [u8; 4096]) -> Result<Self, MsrSetupError> {
        let tsc_aux = has_tsc_aux();
        let spec_ctrl = has_spec_ctrl();
        let list = msrs::switched(tsc_aux, spec_ctrl);
        msrs::check_count(list.len(), misc).map_err(MsrSetupError::TooMany)?;
        for m in msrs::passed_through(tsc_aux, spec_ctrl) {
            msrs::pass_through(bitmap, m).map_err(|e| MsrSetupError::NotInBitmap(e.0))?;
        }
        let area = mem
            .frames
            .lock()
            .allocate()
            .ok_or(MsrSetupError::OutOfMemory)?;
        let window = PhysWindow::new(mem, true);
        window.zero_frame(area);
        let entries = list.iter().map(|&m| {
            // SAFETY: the list names only MSRs every x86-64 CPU has, and TSC_AUX and SPEC_CTRL only
            // where CPUID reports them; reading them has no side effect.
            MsrEntry::new(m, unsafe { msr::read(m) })
        });
        write_area(&window, area, entries);
        Ok(Self { area, list })
    }

    /// A guest's MSR area, every value at its reset value (0).
    pub fn guest_area(&self, mem: &Memory) -> Result<GuestMsrs, CreateError> {
        let area = mem
            .frames
            .lock()
            .allocate()
            .ok_or_else(|| CreateError::Vmcs(format!("{}", MsrSetupError::OutOfMemory)))?;
        let g = GuestMsrs { area };
        g.reset(mem, self);
        Ok(g)
    }

    /// The switched MSRs, for the log.
    pub fn names(&self) -> String {
        let names: Vec<_> = self.list.iter().map(|&m| msrs::name(m)).collect();
        names.join(" ")
    }

    /// Points the current VMCS at the areas (SDM Vol. 3C §25.7.2, §25.8.2).
    fn write_vmcs(&self, guest: &GuestMsrs, v: &mut Current) -> Result<(), FieldError> {
        let n = self.list.len() as u32;
        v.set(Control64::EntryMsrLoadAddress, guest.area.0)?;
        v.set(Control64::ExitMsrStoreAddress, guest.area.0)?;
        v.set(Control64::ExitMsrLoadAddress, self.area.0)?;
        v.set(Control32::EntryMsrLoadCount, n)?;
        v.set(Control32::ExitMsrStoreCount, n)?;
        v.set(Control32::ExitMsrLoadCount, n)?;
        Ok(())
    }
}

/// Points `guest`'s current VMCS at its MSR area and the host's (a guest without a vCPU has no
/// VMCS: nothing to write).
pub(super) fn write_vmcs(host: &VmxHost, guest: &Guest, v: &mut Current) -> Result<(), FieldError> {
    match guest.vcpu().vmx.as_ref() {
        Some(vcpu) => host.msrs.write_vmcs(&vcpu.msrs, v),
        None => Ok(()),
    }
}

/// One guest's MSR area: VM-entry MSR-load and VM-exit MSR-store at once.
#[derive(Debug)]
pub struct GuestMsrs {
    area: PhysAddr,
}

impl GuestMsrs {
    /// Sets every switched MSR of the guest to 0, its value after reset (SDM Vol. 3A §10.1.1,
    /// Table 10-1), e.g. when the guest restarts.
    pub fn reset(&self, mem: &Memory, host: &HostMsrs) {
        let window = PhysWindow::new(mem, true);
        window.zero_frame(self.area);
        write_area(
            &window,
            self.area,
            host.list.iter().map(|&m| MsrEntry::new(m, 0)),
        );
    }
}
