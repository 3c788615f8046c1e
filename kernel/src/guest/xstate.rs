//! Each vCPU's extended state (docs/cpu-state.md): x87/SSE/AVX/AVX-512/PKRU registers in an XSAVE
//! area, its XCR0 and its debug registers DR0-DR3/DR6, none of which the VMCS switches.
//!
//! Switching is lazy: the registers stay in the CPU after a vCPU's slice, and each slice starts
//! with [`load`] (after the scheduler's `guest::release_ext` for a slice of another guest); only
//! when a different vCPU is about to run is the owner's state saved (XSAVE with XCR0 at the full
//! allowed mask, so no component is lost) and the next one's loaded (XRSTOR, then its own XCR0). The hypervisor never uses these registers itself (a
//! soft-float target), so between two slices of the same vCPU they cannot change. A new or
//! restarted vCPU starts from the architectural initial state.
//!
//! XSETBV exits ([`xsetbv`]): the guest's new XCR0 is checked (`conduit_cpustate::xcr0`) against
//! what the hypervisor allows, [`conduit_hw::xsave::Xsave::mask`] (the one `xcr0_supported` input
//! a CPUID policy takes); a refusal is a #GP with RIP left on the XSETBV (SDM Vol. 2C, XSETBV).

use super::exits::Outcome;
use super::{Guest, cpu::CpuState};
use conduit_cpustate::xcr0;
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_hw::xsave::{DebugRegs, Xsave, XsaveArea};

/// One vCPU's extended state while it does not own the CPU's registers.
#[derive(Debug)]
pub struct ExtState {
    xsave: Xsave,
    area: XsaveArea,
    /// The guest's XCR0 (1, x87 only, after reset).
    xcr0: u64,
    debug: DebugRegs,
    /// Its state is in the CPU's registers now (it is the owner); `area` and `debug` are stale.
    live: bool,
}

impl ExtState {
    /// The reset state: FNINIT-equivalent registers, XCR0 = 1, DR0-DR3 zero, DR6 at its reset
    /// value.
    pub fn new(xsave: Xsave) -> Self {
        Self {
            area: xsave.new_area(),
            xsave,
            xcr0: xcr0::X87,
            debug: DebugRegs::INIT,
            live: false,
        }
    }

    /// Back to the reset state (a restarted guest): whatever the CPU holds of it is abandoned.
    pub fn reset(&mut self) {
        self.area.reset();
        self.xcr0 = xcr0::X87;
        self.debug = DebugRegs::INIT;
        self.live = false;
    }
}

/// What the XSETBV check allows guests: the host's supported components that Conduit switches.
/// `None` without a vCPU.
pub fn xcr0_supported(g: &Guest) -> Option<u64> {
    g.vcpu().vmx.as_ref().map(|v| v.ext.xsave.mask())
}

/// The guest's XCR0 (x87 only for a guest without a vCPU).
pub fn guest_xcr0(g: &Guest) -> u64 {
    g.vcpu().vmx.as_ref().map_or(xcr0::X87, |v| v.ext.xcr0)
}

/// Saves the extended state of `g`'s vCPU that owns this CPU's registers, if one does: they
/// are free for another vCPU then.
pub fn save_live(g: &mut Guest) {
    // Only a vCPU placed on this CPU can be live in its registers.
    let here = crate::sched::cpus::this_cpu();
    let mine = g.vcpus.iter_mut().filter(|v| v.home == here);
    let vcpus = mine.filter_map(|v| v.vmx.as_mut());
    for ext in vcpus.map(|v| &mut v.ext).filter(|e| e.live) {
        ext.xsave.save(&mut ext.area);
        ext.debug = DebugRegs::read();
        ext.live = false;
    }
}

/// Makes the extended state of `g`'s current vCPU the CPU's, before its slice: a sibling vCPU
/// that owns the registers is saved first ([`save_live`] has saved another guest's). A vCPU
/// whose state is already live costs nothing.
pub fn load(g: &mut Guest) -> Result<(), xcr0::XsetbvError> {
    let i = g.current;
    if g.vcpus[i].vmx.as_ref().is_none_or(|v| v.ext.live) {
        return Ok(());
    }
    save_live(g);
    let Some(into) = g.vcpus[i].vmx.as_mut().map(|v| &mut v.ext) else {
        return Ok(());
    };
    into.xsave.switch(None, &into.area, into.xcr0)?;
    into.debug.load();
    into.live = true;
    Ok(())
}

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;

/// An XSETBV exit (basic reason 55): XCR`ECX` := EDX:EAX if the guest may, else #GP(0).
pub fn xsetbv(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let ecx = g.vcpu().regs.gpr[RCX] as u32;
    let value = (g.vcpu().regs.gpr[RDX] << 32) | (g.vcpu().regs.gpr[RAX] & 0xffff_ffff);
    let cr4 = v.cr4()?;
    let Some(allowed) = xcr0_supported(g) else {
        return super::exits::stop(g, v, alloc::string::String::from("XSETBV without a vCPU"));
    };
    let Some(ext) = g.ext_mut() else {
        return super::exits::stop(g, v, alloc::string::String::from("XSETBV without a vCPU"));
    };
    let checked = xcr0::check_xsetbv(ecx, value, allowed, cr4);
    // The guest that exited owns the registers (`switch_to` ran before its slice): its XCR0 is
    // loaded at once.
    let result = match checked {
        Ok(()) if ext.live => ext.xsave.set_xcr0(value),
        other => other,
    };
    match result {
        Ok(()) => {
            ext.xcr0 = value;
            v.skip()?;
        }
        Err(e) => {
            log::debug!(
                "guest \"{}\": XSETBV XCR{ecx} := {value:#x} refused: {e}",
                g.name
            );
            g.vcpu_mut().events.raise_gp();
        }
    }
    Ok(Outcome::Resume)
}
