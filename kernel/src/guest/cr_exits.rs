//! Control-register exits (Intel SDM Vol. 3C §26.1.3, Table 28-3): a guest's MOV to CR0 or CR4
//! that changes a bit the hypervisor owns (the VMX-fixed bits: the guest sees its own value
//! through the read shadow while the processor keeps the fixed one), and CR8 (the TPR) when the
//! local APIC is emulated in software. The checks and the IA-32e mode transition are
//! `conduit_vmx::cr`'s; this module reads and writes the VMCS. Conduit's own test guests may not
//! do any of this: their access stops them with the reason.

use super::Guest;
use super::exits::{Outcome, stop};
use alloc::format;
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vmx::controls::EntryControls;
use conduit_vmx::cr::{cr0, cr4, guest_cr0_write, guest_cr4_write};
use conduit_vmx::exit::{CrAccess, Gpr};
use conduit_vmx::fields::{
    Control32, ControlNatural, Guest32, Guest64, GuestNatural, ReadOnlyNatural,
};

const EFER_LMA: u64 = 1 << 10;

fn gpr(g: &Guest, v: &mut Current, r: Gpr) -> Result<u64, FieldError> {
    match r {
        Gpr::Rsp => v.get(GuestNatural::Rsp),
        r => Ok(g.vcpu().regs.gpr[r as usize]),
    }
}

/// A control-register exit.
pub fn cr_access(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let q = CrAccess::decode(v.get(ReadOnlyNatural::ExitQualification)?);
    if g.platform.is_none() {
        return stop(
            g,
            v,
            format!("control-register access not permitted: {q:?}"),
        );
    }
    // CR8 exits only where the local APIC is emulated in software: it is the TPR.
    if let Some(done) = super::vplatform_exits::cr8(g, v, q) {
        return done;
    }
    let done = match q {
        CrAccess::MovToCr { cr: 0, gpr: r } => {
            let value = gpr(g, v, r)?;
            mov_to_cr0(g, v, value)?
        }
        CrAccess::MovToCr { cr: 4, gpr: r } => {
            let value = gpr(g, v, r)?;
            let long_mode = v.get(Guest64::Efer)? & EFER_LMA != 0;
            match guest_cr4_write(g.vcpu().cr_fixed.1, value, long_mode) {
                Ok((actual, shadow)) => {
                    v.set(GuestNatural::Cr4, actual)?;
                    v.set(ControlNatural::Cr4ReadShadow, shadow)?;
                    true
                }
                Err(e) => {
                    log::debug!("guest \"{}\": MOV to CR4 {value:#x} refused: {e:?}", g.name);
                    false
                }
            }
        }
        // CLTS and LMSW touch bits the hypervisor does not own (TS; PE can only be set by
        // LMSW, and it is the guest's with unrestricted guest); an exit for them means the
        // guest's CR0 differs in an owned bit: carry it out as the equivalent MOV to CR0.
        CrAccess::Clts => {
            let shadow = v.get(ControlNatural::Cr0ReadShadow)?;
            mov_to_cr0(g, v, shadow & !(1 << 3))?
        }
        CrAccess::Lmsw { source, .. } => {
            let shadow = v.get(ControlNatural::Cr0ReadShadow)?;
            let low = u64::from(source) & 0xf;
            // LMSW cannot clear PE.
            mov_to_cr0(g, v, (shadow & !0xe) | low | (shadow & 1))?
        }
        other => {
            return stop(
                g,
                v,
                format!("control-register access not emulated: {other:?}"),
            );
        }
    };
    if g.state != super::State::Runnable {
        return Ok(Outcome::Done);
    }
    if done {
        let rip = v.get(GuestNatural::Rip)?;
        let len = v.get(conduit_vmx::fields::ReadOnly32::ExitInstructionLength)?;
        v.set(GuestNatural::Rip, rip.wrapping_add(u64::from(len)))?;
    } else {
        g.vcpu_mut().events.raise_gp();
    }
    Ok(Outcome::Resume)
}

/// MOV to CR0 of `value`: checked, the fixed bits forced, the read shadow updated, and EFER.LMA
/// with the "IA-32e mode guest" entry control following paging on or off (SDM Vol. 3A §9.8.5,
/// Vol. 3C §26.8.1: on VM exit the processor stores LMA into that control; an emulated write must
/// do the same). `false`: #GP.
fn mov_to_cr0(g: &mut Guest, v: &mut Current, value: u64) -> Result<bool, FieldError> {
    let old = v.get(ControlNatural::Cr0ReadShadow)?;
    let efer = v.get(Guest64::Efer)?;
    let code64 = v.get(Guest32::CsAccessRights)? & (1 << 13) != 0;
    let pae = v.get(GuestNatural::Cr4)? & cr4::PAE != 0;
    let w = match guest_cr0_write(g.vcpu().cr_fixed.0, old, value, efer, code64, pae) {
        Ok(w) => w,
        Err(e) => {
            log::debug!("guest \"{}\": MOV to CR0 {value:#x} refused: {e:?}", g.name);
            return Ok(false);
        }
    };
    v.set(GuestNatural::Cr0, w.actual)?;
    v.set(ControlNatural::Cr0ReadShadow, w.shadow)?;
    // A MOV to CR0 that changes PG, WP, CD or PE flushes the TLBs (SDM Vol. 3A §4.10.4.1); with
    // VPID the next VM entry does not, so the emulated one does it for the guest's VPID.
    if (old ^ w.shadow) & (cr0::PG | cr0::WP | cr0::CD | cr0::PE) != 0
        && let Some(caps) = g.vmx_caps()
        && let Err(e) = conduit_hw::vmx::invvpid(caps, g.vcpu().vpid)
    {
        // Stale translations would outlive the guest's own paging change: it does not run on.
        g.stop(format!("INVVPID after its CR0 write failed: {e}"));
    }
    if w.long_mode != (efer & EFER_LMA != 0) {
        let efer = if w.long_mode {
            efer | EFER_LMA
        } else {
            efer & !EFER_LMA
        };
        v.set(Guest64::Efer, efer)?;
        let entry = EntryControls::from_bits_retain(v.get(Control32::EntryControls)?);
        let entry = if w.long_mode {
            entry | EntryControls::IA32E_MODE_GUEST
        } else {
            entry - EntryControls::IA32E_MODE_GUEST
        };
        v.set(Control32::EntryControls, entry.bits())?;
    }
    Ok(true)
}
