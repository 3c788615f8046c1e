//! The register and non-register checks of SDM Vol. 3C, "Checks on the Guest-State Area" (the
//! segment-register checks are in `segments.rs`), in the SDM's order.

use super::{
    ActivityState, CheckContext, DescriptorTableReg, GuestState, GuestStateError as E, efer,
    interruptibility as intr, is_canonical, rflags,
};
use crate::controls::{EntryControls, PinBasedControls};
use crate::cr::{cr0, cr4};
use crate::exit::{InterruptionType, vector};

/// IA32_DEBUGCTL bits that may be 1: 0 (LBR), 1 (BTF), 2 (BLD, on processors with bus-lock
/// detection), 6-15; bits 5:3 and 63:16 are reserved.
const DEBUGCTL_DEFINED: u64 = 0x0000_ffc7;
const DEBUGCTL_BTF: u64 = 1 << 1;
/// IA32_EFER bits that may be 1 on Intel processors: SCE, LME, LMA, NXE.
const EFER_DEFINED: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;

/// "Checks on Guest Control Registers, Debug Registers, and MSRs".
pub(super) fn control_registers_and_msrs(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    let ia32e = ctx.ia32e_mode_guest();
    // CR0 against the fixed MSRs. CD (bit 30) and NW (bit 29) are never checked (VM entry does
    // not change them); PE and PG are exempt from FIXED0 with "unrestricted guest".
    let not_checked = cr0::CD | cr0::NW;
    let mut fixed0 = ctx.cr0_fixed.fixed0 & !not_checked;
    if ctx.unrestricted_guest() {
        fixed0 &= !(cr0::PE | cr0::PG);
    }
    let missing = fixed0 & !s.cr0;
    if missing & (cr0::PE | cr0::PG) != 0 {
        return Err(E::Cr0ProtectionOrPagingOff { cr0: s.cr0 });
    }
    if missing != 0 {
        return Err(E::Cr0Fixed0 { missing });
    }
    let forbidden = s.cr0 & !ctx.cr0_fixed.fixed1 & !not_checked;
    if forbidden != 0 {
        return Err(E::Cr0Fixed1 { forbidden });
    }
    if s.cr0 & cr0::PG != 0 && s.cr0 & cr0::PE == 0 {
        return Err(E::Cr0PagingWithoutProtection);
    }
    let missing = ctx.cr4_fixed.missing_ones(s.cr4);
    if missing != 0 {
        return Err(E::Cr4Fixed0 { missing });
    }
    let forbidden = ctx.cr4_fixed.forbidden_ones(s.cr4);
    if forbidden != 0 {
        return Err(E::Cr4Fixed1 { forbidden });
    }
    if s.cr4 & cr4::CET != 0 && s.cr0 & cr0::WP == 0 {
        return Err(E::Cr4CetWithoutWp);
    }
    let load_debug = ctx.entry.contains(EntryControls::LOAD_DEBUG_CONTROLS);
    if load_debug && s.debugctl & !DEBUGCTL_DEFINED != 0 {
        return Err(E::DebugctlReserved { value: s.debugctl });
    }
    if ia32e {
        if s.cr0 & cr0::PG == 0 {
            return Err(E::LongModeWithoutPaging);
        }
        if s.cr4 & cr4::PAE == 0 {
            return Err(E::LongModeWithoutPae);
        }
    } else if s.cr4 & cr4::PCIDE != 0 {
        return Err(E::PcideOutsideLongMode);
    }
    let width = u32::from(ctx.physical_address_width.clamp(32, 52));
    if s.cr3 >> width != 0 {
        return Err(E::Cr3BeyondPhysicalWidth { cr3: s.cr3 });
    }
    if load_debug && s.dr7 >> 32 != 0 {
        return Err(E::Dr7High { dr7: s.dr7 });
    }
    if !is_canonical(s.sysenter_esp, ctx.linear_address_width) {
        return Err(E::SysenterEspNotCanonical {
            value: s.sysenter_esp,
        });
    }
    if !is_canonical(s.sysenter_eip, ctx.linear_address_width) {
        return Err(E::SysenterEipNotCanonical {
            value: s.sysenter_eip,
        });
    }
    if ctx.entry.contains(EntryControls::LOAD_PAT) {
        for (index, value) in s.pat.to_le_bytes().into_iter().enumerate() {
            if !matches!(value, 0 | 1 | 4 | 5 | 6 | 7) {
                return Err(E::PatInvalidType {
                    index: index as u8,
                    value,
                });
            }
        }
    }
    if ctx.entry.contains(EntryControls::LOAD_EFER) {
        if s.efer & !EFER_DEFINED != 0 {
            return Err(E::EferReserved { efer: s.efer });
        }
        let lma = s.efer & efer::LMA != 0;
        if lma != ia32e {
            return Err(E::EferLmaMismatch);
        }
        if s.cr0 & cr0::PG != 0 && (s.efer & efer::LME != 0) != lma {
            return Err(E::EferLmeMismatch);
        }
    }
    Ok(())
}

/// "Checks on Guest Descriptor-Table Registers".
pub(super) fn descriptor_tables(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    for (reg, dt) in [
        (DescriptorTableReg::Gdtr, s.gdtr),
        (DescriptorTableReg::Idtr, s.idtr),
    ] {
        if !is_canonical(dt.base, ctx.linear_address_width) {
            return Err(E::DescriptorTableBaseNotCanonical(reg));
        }
    }
    for (reg, dt) in [
        (DescriptorTableReg::Gdtr, s.gdtr),
        (DescriptorTableReg::Idtr, s.idtr),
    ] {
        if dt.limit >> 16 != 0 {
            return Err(E::DescriptorTableLimitHigh(reg));
        }
    }
    Ok(())
}

/// "Checks on Guest RIP, RFLAGS, and SSP" (SSP: CET is not used).
pub(super) fn rip_and_rflags(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    let long64 = ctx.ia32e_mode_guest() && s.cs.ar().long();
    if !long64 && s.rip >> 32 != 0 {
        return Err(E::RipHighBits { rip: s.rip });
    }
    // Bits 63:N identical, N the linear-address width (one bit looser than "canonical").
    if long64 && !is_canonical(s.rip, ctx.linear_address_width.saturating_add(1)) {
        return Err(E::RipNotCanonical { rip: s.rip });
    }
    if s.rflags & rflags::RESERVED != 0 {
        return Err(E::RflagsReserved { rflags: s.rflags });
    }
    if s.rflags & rflags::FIXED_1 == 0 {
        return Err(E::RflagsBit1Clear);
    }
    if s.rflags & rflags::VM != 0 && (ctx.ia32e_mode_guest() || s.cr0 & cr0::PE == 0) {
        return Err(E::RflagsVmInvalid);
    }
    if ctx.entry_interruption.valid_kind() == Some(InterruptionType::ExternalInterrupt)
        && s.rflags & rflags::IF == 0
    {
        return Err(E::RflagsIfClearForExternalInterrupt);
    }
    Ok(())
}

/// "Checks on Guest Non-Register State": activity state, interruptibility state, pending debug
/// exceptions, VMCS link pointer.
pub(super) fn non_register_state(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    activity_state(s, ctx)?;
    interruptibility_state(s, ctx)?;
    pending_debug_exceptions(s)?;
    if s.vmcs_link_pointer != u64::MAX {
        return Err(E::VmcsLinkPointerNotAllOnes {
            value: s.vmcs_link_pointer,
        });
    }
    Ok(())
}

fn activity_state(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    let activity = ActivityState::from_raw(s.activity_state)
        .ok_or(E::ActivityStateInvalid(s.activity_state))?;
    let supported = match activity {
        ActivityState::Active => true,
        ActivityState::Hlt => ctx.misc.activity_hlt,
        ActivityState::Shutdown => ctx.misc.activity_shutdown,
        ActivityState::WaitForSipi => ctx.misc.activity_wait_sipi,
    };
    if !supported {
        return Err(E::ActivityStateUnsupported(activity));
    }
    if activity == ActivityState::Hlt && s.ss.ar().dpl() != 0 {
        return Err(E::HltWithSsDplNonZero);
    }
    let sti_or_mov_ss = intr::BLOCKING_BY_STI | intr::BLOCKING_BY_MOV_SS;
    if activity != ActivityState::Active && s.interruptibility & sti_or_mov_ss != 0 {
        return Err(E::NotActiveWithStiOrMovSsBlocking);
    }
    if let Some(kind) = ctx.entry_interruption.valid_kind() {
        let v = ctx.entry_interruption.vector();
        let allowed = match activity {
            ActivityState::Active => true,
            ActivityState::Hlt => match kind {
                InterruptionType::ExternalInterrupt | InterruptionType::Nmi => true,
                InterruptionType::HardwareException => v == vector::DB || v == vector::MC,
                InterruptionType::OtherEvent => v == 0,
                _ => false,
            },
            ActivityState::Shutdown => match kind {
                InterruptionType::Nmi => true,
                InterruptionType::HardwareException => v == vector::MC,
                _ => false,
            },
            ActivityState::WaitForSipi => false,
        };
        if !allowed {
            return Err(E::InjectionInActivityState {
                activity,
                kind,
                vector: v,
            });
        }
    }
    Ok(())
}

fn interruptibility_state(s: &GuestState, ctx: &CheckContext) -> Result<(), E> {
    let i = s.interruptibility;
    if i >> 5 != 0 {
        return Err(E::InterruptibilityReserved { value: i });
    }
    let sti = i & intr::BLOCKING_BY_STI != 0;
    let mov_ss = i & intr::BLOCKING_BY_MOV_SS != 0;
    if sti && mov_ss {
        return Err(E::StiAndMovSsBlocking);
    }
    if sti && s.rflags & rflags::IF == 0 {
        return Err(E::StiBlockingWithIfClear);
    }
    let injecting = ctx.entry_interruption.valid_kind();
    if injecting == Some(InterruptionType::ExternalInterrupt) && (sti || mov_ss) {
        return Err(E::BlockingWithExternalInterruptInjection);
    }
    if injecting == Some(InterruptionType::Nmi) && mov_ss {
        return Err(E::MovSsBlockingWithNmiInjection);
    }
    // Conduit never enters guests in SMM.
    if i & intr::BLOCKING_BY_SMI != 0 {
        return Err(E::SmiBlockingOutsideSmm);
    }
    if ctx.pin.contains(PinBasedControls::VIRTUAL_NMIS)
        && injecting == Some(InterruptionType::Nmi)
        && i & intr::BLOCKING_BY_NMI != 0
    {
        return Err(E::NmiBlockingWithVirtualNmiInjection);
    }
    if i & intr::ENCLAVE_INTERRUPTION != 0 && mov_ss {
        return Err(E::EnclaveInterruptionWithMovSs);
    }
    Ok(())
}

/// Pending debug exceptions (SDM table "Format of Pending-Debug-Exceptions"): B3-B0 (3:0), BLD
/// (11, on processors with bus-lock detection; older editions reserve it, so it is accepted here),
/// enabled breakpoint (12), BS (14), RTM (16).
fn pending_debug_exceptions(s: &GuestState) -> Result<(), E> {
    const RESERVED: u64 = 0x7f0 | (1 << 13) | (1 << 15) | !0x1_ffff;
    const BS: u64 = 1 << 14;
    const ENABLED_BREAKPOINT: u64 = 1 << 12;
    const RTM: u64 = 1 << 16;
    let p = s.pending_debug_exceptions;
    if p & RESERVED != 0 {
        return Err(E::PendingDebugReserved { value: p });
    }
    let blocking = s.interruptibility & (intr::BLOCKING_BY_STI | intr::BLOCKING_BY_MOV_SS) != 0;
    if blocking || s.activity_state == ActivityState::Hlt as u32 {
        let expected = s.rflags & rflags::TF != 0 && s.debugctl & DEBUGCTL_BTF == 0;
        if (p & BS != 0) != expected {
            return Err(E::PendingDebugBsMismatch { expected });
        }
    }
    if p & RTM != 0
        && (p & 0xfff != 0
            || p & (0x7 << 13) != 0
            || p & ENABLED_BREAKPOINT == 0
            || s.interruptibility & intr::BLOCKING_BY_MOV_SS != 0)
    {
        return Err(E::PendingDebugRtmInvalid);
    }
    Ok(())
}
