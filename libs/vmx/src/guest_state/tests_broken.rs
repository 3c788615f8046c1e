//! Deliberate breakages of the canonical states, each named by its exact error.

use super::tests_valid::{ctx, ctx_restricted, long, real, user_mode, v86};
use super::*;
use crate::caps::VmxMisc;
use crate::controls::EntryControls;
use crate::cr::{cr0, cr4};
use crate::exit::{InterruptionInfo, InterruptionType, vector};
use std::format;

type E = GuestStateError;

fn seg(register: SegReg, rule: SegmentRule) -> Result<(), E> {
    Err(E::Segment { register, rule })
}

#[test]
fn cr0_rules() {
    // Real mode without "unrestricted guest".
    assert_eq!(
        real().check(&ctx_restricted(false)),
        Err(E::Cr0ProtectionOrPagingOff { cr0: 0x30 })
    );
    let mut s = long();
    s.cr0 &= !cr0::NE;
    assert_eq!(s.check(&ctx(true)), Err(E::Cr0Fixed0 { missing: cr0::NE }));
    let mut s = long();
    s.cr0 |= 1 << 32;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::Cr0Fixed1 { forbidden: 1 << 32 })
    );
    // With "unrestricted guest" PE may be 0, but not under PG.
    let mut s = real();
    s.cr0 |= cr0::PG;
    assert_eq!(s.check(&ctx(false)), Err(E::Cr0PagingWithoutProtection));
}

#[test]
fn cr4_rules() {
    let mut s = long();
    s.cr4 &= !cr4::VMXE;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::Cr4Fixed0 { missing: cr4::VMXE })
    );
    let mut s = long();
    s.cr4 |= cr4::LA57;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::Cr4Fixed1 {
            forbidden: cr4::LA57
        })
    );
    let mut s = long();
    s.cr4 |= cr4::CET;
    s.cr0 &= !cr0::WP;
    assert_eq!(s.check(&ctx(true)), Err(E::Cr4CetWithoutWp));
    let mut s = real();
    s.cr4 |= cr4::PCIDE;
    assert_eq!(s.check(&ctx(false)), Err(E::PcideOutsideLongMode));
}

#[test]
fn ia32e_mode_needs_paging_and_pae() {
    let mut s = long();
    s.cr4 &= !cr4::PAE;
    assert_eq!(s.check(&ctx(true)), Err(E::LongModeWithoutPae));
    // The real-mode state under "IA-32e mode guest" (CR0.PG = 0).
    assert_eq!(real().check(&ctx(true)), Err(E::LongModeWithoutPaging));
}

#[test]
fn cr3_dr7_debugctl_sysenter() {
    let mut s = long();
    s.cr3 = 1 << 40;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::Cr3BeyondPhysicalWidth { cr3: 1 << 40 })
    );
    let mut c = ctx(true);
    c.entry |= EntryControls::LOAD_DEBUG_CONTROLS;
    let mut s = long();
    s.dr7 = 0x1_0000_0400;
    assert_eq!(s.check(&c), Err(E::Dr7High { dr7: 0x1_0000_0400 }));
    let mut s = long();
    s.debugctl = 1 << 3;
    assert_eq!(s.check(&c), Err(E::DebugctlReserved { value: 8 }));
    s.debugctl = 0x4003; // BLD, BTF, LBR, FREEZE_WHILE_SMM
    assert_eq!(s.check(&c), Ok(()));
    let mut s = long();
    s.sysenter_eip = 0x0000_8000_0000_0000;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::SysenterEipNotCanonical {
            value: 0x8000_0000_0000
        })
    );
}

#[test]
fn pat_and_efer() {
    let mut s = long();
    s.pat = 0x0007_0406_0002_0406;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::PatInvalidType { index: 2, value: 2 })
    );
    let mut s = long();
    s.efer &= !efer::LMA;
    assert_eq!(s.check(&ctx(true)), Err(E::EferLmaMismatch));
    let mut s = long();
    s.efer &= !efer::LME;
    assert_eq!(s.check(&ctx(true)), Err(E::EferLmeMismatch));
    let mut s = long();
    s.efer |= 1 << 9;
    assert_eq!(s.check(&ctx(true)), Err(E::EferReserved { efer: 0x700 }));
    // A real-mode guest with EFER.LMA under "load IA32_EFER".
    let mut s = real();
    s.efer = efer::LMA;
    assert_eq!(s.check(&ctx(false)), Err(E::EferLmaMismatch));
}

#[test]
fn selectors() {
    let mut s = long();
    s.tr.selector = 0x1c;
    assert_eq!(s.check(&ctx(true)), seg(SegReg::Tr, SegmentRule::TiFlagSet));
    let mut s = real();
    s.ldtr.selector = 0x4;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Ldtr, SegmentRule::TiFlagSet)
    );
    let mut s = long();
    s.ss.selector = 0x13;
    assert_eq!(
        s.check(&ctx_restricted(true)),
        seg(SegReg::Ss, SegmentRule::RplMismatch)
    );
    // With "unrestricted guest" the RPL comparison is skipped (and SS.DPL = 0 = CS.DPL holds).
    assert_eq!(s.check(&ctx(true)), Ok(()));
}

#[test]
fn bases() {
    let mut s = long();
    s.fs.base = 0x0001_0000_0000_0000;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Fs, SegmentRule::BaseNotCanonical)
    );
    let mut s = real();
    s.cs.base = 1 << 32;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Cs, SegmentRule::BaseHighBits)
    );
    let mut s = v86();
    s.ds.base = 0;
    assert_eq!(s.check(&ctx(false)), seg(SegReg::Ds, SegmentRule::V86Base));
    let mut s = v86();
    s.ss.limit = 0xfffff;
    assert_eq!(s.check(&ctx(false)), seg(SegReg::Ss, SegmentRule::V86Limit));
    let mut s = v86();
    s.gs.access_rights = 0x93;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Gs, SegmentRule::V86AccessRights)
    );
}

#[test]
fn code_and_data_types() {
    // A data segment in CS of a 64-bit guest without "unrestricted guest".
    let mut s = long();
    s.cs.access_rights = (s.cs.access_rights & !0xf) | 0x3;
    assert_eq!(
        s.check(&ctx_restricted(true)),
        seg(SegReg::Cs, SegmentRule::CsType)
    );
    let mut s = long();
    s.cs.access_rights &= !1; // not accessed
    assert_eq!(s.check(&ctx(true)), seg(SegReg::Cs, SegmentRule::CsType));
    let mut s = long();
    s.ss.access_rights = (s.ss.access_rights & !0xf) | 0xb;
    assert_eq!(s.check(&ctx(true)), seg(SegReg::Ss, SegmentRule::SsType));
    let mut s = long();
    s.ds.access_rights &= !1;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Ds, SegmentRule::NotAccessed)
    );
    let mut s = long();
    s.es.access_rights = (s.es.access_rights & !0xf) | 0x9; // execute-only code
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Es, SegmentRule::CodeNotReadable)
    );
    let mut s = long();
    s.gs.access_rights &= !AccessRights::S;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Gs, SegmentRule::NotCodeOrData)
    );
    // An unusable data segment is not checked.
    let mut s = long();
    s.gs = Segment::unusable();
    assert_eq!(s.check(&ctx(true)), Ok(()));
}

#[test]
fn privilege_levels() {
    let mut s = user_mode();
    s.ss.access_rights &= !(3 << 5);
    s.ss.selector = 0x20;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Cs, SegmentRule::CsDplNotSsDpl)
    );
    let mut s = real();
    s.cs.access_rights = 0x93 | (3 << 5);
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Cs, SegmentRule::CsDplNotZero)
    );
    let mut s = real();
    s.cs.access_rights = 0x9f | (3 << 5); // conforming, DPL 3 > SS.DPL 0
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Cs, SegmentRule::CsDplAboveSsDpl)
    );
    let mut s = real();
    s.ss.access_rights |= 3 << 5;
    s.cs.access_rights |= 3 << 5;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Ss, SegmentRule::SsDplNotZero)
    );
    let mut s = long();
    s.ss.selector = 0x13;
    s.cs.selector = 0x0b;
    assert_eq!(
        s.check(&ctx_restricted(true)),
        seg(SegReg::Ss, SegmentRule::SsDplNotRpl)
    );
    let mut s = long();
    s.ds.selector = 0x13;
    assert_eq!(
        s.check(&ctx_restricted(true)),
        seg(SegReg::Ds, SegmentRule::DplBelowRpl)
    );
}

#[test]
fn present_reserved_db_granularity() {
    let mut s = long();
    s.ss.access_rights &= !AccessRights::P;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Ss, SegmentRule::NotPresent)
    );
    let mut s = long();
    s.ds.access_rights |= 0x100;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Ds, SegmentRule::ReservedBits11To8)
    );
    let mut s = long();
    s.cs.access_rights |= AccessRights::DB;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Cs, SegmentRule::LongModeCsWithDb)
    );
    let mut s = long();
    s.cs.access_rights &= !AccessRights::G; // 4-GiB limit needs G = 1
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Cs, SegmentRule::Granularity)
    );
    let mut s = real();
    s.ds.access_rights |= AccessRights::G;
    s.ds.limit = 0xfff0; // limit[11:0] not all ones with G = 1
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Ds, SegmentRule::Granularity)
    );
    let mut s = long();
    s.fs.access_rights |= 1 << 20;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Fs, SegmentRule::ReservedBits31To17)
    );
}

#[test]
fn tr_and_ldtr() {
    let mut s = real();
    s.tr.access_rights = 0x89; // available 32-bit TSS
    assert_eq!(s.check(&ctx(false)), seg(SegReg::Tr, SegmentRule::TrType));
    let mut s = long();
    s.tr.access_rights = 0x83; // busy 16-bit TSS in IA-32e mode
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Tr, SegmentRule::TrTypeLongMode)
    );
    let mut s = long();
    s.tr = Segment::unusable();
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Tr, SegmentRule::TrTypeLongMode)
    );
    let mut s = long();
    s.tr.access_rights |= AccessRights::UNUSABLE.0;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Tr, SegmentRule::TrUnusable)
    );
    let mut s = long();
    s.tr.access_rights |= AccessRights::S;
    assert_eq!(s.check(&ctx(true)), seg(SegReg::Tr, SegmentRule::NotSystem));
    let mut s = long();
    s.tr.limit = 0x10_0000; // limit above 1 MiB with G = 0
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Tr, SegmentRule::Granularity)
    );
    let mut s = real();
    s.ldtr.access_rights = 0x83;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Ldtr, SegmentRule::LdtrType)
    );
    let mut s = real();
    s.ldtr.access_rights = 0x02;
    assert_eq!(
        s.check(&ctx(false)),
        seg(SegReg::Ldtr, SegmentRule::NotPresent)
    );
}

#[test]
fn descriptor_tables() {
    let mut s = long();
    s.gdtr.limit = 0x1_0000;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::DescriptorTableLimitHigh(DescriptorTableReg::Gdtr))
    );
    let mut s = long();
    s.idtr.base = 0x0000_9000_0000_0000;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::DescriptorTableBaseNotCanonical(DescriptorTableReg::Idtr))
    );
}

#[test]
fn rip_and_rflags() {
    let mut s = long();
    s.rip = 0x0001_0000_0000_0000;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::RipNotCanonical {
            rip: 0x1_0000_0000_0000
        })
    );
    // Only bits 63:N (N = 48) must be identical for RIP, one bit looser than "canonical".
    s.rip = 0x0000_8000_0000_0000;
    assert_eq!(s.check(&ctx(true)), Ok(()));
    let mut s = real();
    s.rip = 0x1_0000_7c00;
    assert_eq!(
        s.check(&ctx(false)),
        Err(E::RipHighBits { rip: 0x1_0000_7c00 })
    );
    let mut s = long();
    s.rflags = 0;
    assert_eq!(s.check(&ctx(true)), Err(E::RflagsBit1Clear));
    let mut s = long();
    s.rflags |= 1 << 3;
    assert_eq!(s.check(&ctx(true)), Err(E::RflagsReserved { rflags: 0xa }));
    // RFLAGS.VM with CR0.PE = 0 (the segments are valid for virtual-8086 mode).
    let mut s = v86();
    s.cr0 &= !cr0::PE;
    assert_eq!(s.check(&ctx(false)), Err(E::RflagsVmInvalid));
    // In a 64-bit guest, RFLAGS.VM first makes the segment checks those of virtual-8086 mode.
    let mut s = long();
    s.rflags |= rflags::VM;
    assert_eq!(s.check(&ctx(true)), seg(SegReg::Cs, SegmentRule::V86Base));
    let c = ctx(true).with_injection(InterruptionInfo::external_interrupt(0x20));
    assert_eq!(long().check(&c), Err(E::RflagsIfClearForExternalInterrupt));
}

#[test]
fn activity_state() {
    let mut s = long();
    s.activity_state = 4;
    assert_eq!(s.check(&ctx(true)), Err(E::ActivityStateInvalid(4)));
    let mut c = ctx(true);
    c.misc = VmxMisc {
        activity_hlt: false,
        ..c.misc
    };
    s.activity_state = 1;
    assert_eq!(
        s.check(&c),
        Err(E::ActivityStateUnsupported(ActivityState::Hlt))
    );
    let mut s = user_mode();
    s.activity_state = ActivityState::Hlt as u32;
    assert_eq!(s.check(&ctx(true)), Err(E::HltWithSsDplNonZero));
    let mut s = long();
    s.rflags |= rflags::IF;
    s.interruptibility = interruptibility::BLOCKING_BY_STI;
    s.activity_state = ActivityState::Hlt as u32;
    assert_eq!(s.check(&ctx(true)), Err(E::NotActiveWithStiOrMovSsBlocking));
    let mut s = long();
    s.activity_state = ActivityState::Hlt as u32;
    let gp = ctx(true).with_injection(InterruptionInfo::hardware_exception(vector::GP));
    assert_eq!(
        s.check(&gp),
        Err(E::InjectionInActivityState {
            activity: ActivityState::Hlt,
            kind: InterruptionType::HardwareException,
            vector: vector::GP
        })
    );
    s.activity_state = ActivityState::WaitForSipi as u32;
    let nmi = ctx(true).with_injection(InterruptionInfo::nmi());
    assert!(matches!(
        s.check(&nmi),
        Err(E::InjectionInActivityState { .. })
    ));
}

#[test]
fn interruptibility_state() {
    let mut s = long();
    s.interruptibility = 1 << 5;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::InterruptibilityReserved { value: 0x20 })
    );
    let mut s = long();
    s.rflags |= rflags::IF;
    s.interruptibility = interruptibility::BLOCKING_BY_STI | interruptibility::BLOCKING_BY_MOV_SS;
    assert_eq!(s.check(&ctx(true)), Err(E::StiAndMovSsBlocking));
    let mut s = long();
    s.interruptibility = interruptibility::BLOCKING_BY_STI;
    assert_eq!(s.check(&ctx(true)), Err(E::StiBlockingWithIfClear));
    let mut s = long();
    s.rflags |= rflags::IF;
    s.interruptibility = interruptibility::BLOCKING_BY_MOV_SS;
    let ext = ctx(true).with_injection(InterruptionInfo::external_interrupt(0x30));
    assert_eq!(
        s.check(&ext),
        Err(E::BlockingWithExternalInterruptInjection)
    );
    let nmi = ctx(true).with_injection(InterruptionInfo::nmi());
    assert_eq!(s.check(&nmi), Err(E::MovSsBlockingWithNmiInjection));
    let mut s = long();
    s.interruptibility = interruptibility::BLOCKING_BY_SMI;
    assert_eq!(s.check(&ctx(true)), Err(E::SmiBlockingOutsideSmm));
    let mut s = long();
    s.interruptibility = interruptibility::BLOCKING_BY_NMI;
    assert_eq!(s.check(&ctx(true)), Ok(()), "NMI blocking alone is fine");
    assert_eq!(s.check(&nmi), Err(E::NmiBlockingWithVirtualNmiInjection));
}

#[test]
fn pending_debug_exceptions_and_link_pointer() {
    let mut s = long();
    s.pending_debug_exceptions = 1 << 4;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::PendingDebugReserved { value: 0x10 })
    );
    let mut s = long();
    s.rflags |= rflags::IF | rflags::TF;
    s.interruptibility = interruptibility::BLOCKING_BY_STI;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::PendingDebugBsMismatch { expected: true })
    );
    let mut s = long();
    s.pending_debug_exceptions = 1 << 16;
    assert_eq!(s.check(&ctx(true)), Err(E::PendingDebugRtmInvalid));
    let mut s = long();
    s.vmcs_link_pointer = 0;
    assert_eq!(
        s.check(&ctx(true)),
        Err(E::VmcsLinkPointerNotAllOnes { value: 0 })
    );
}

#[test]
fn the_first_failing_check_in_sdm_order_is_reported() {
    // Broken CR0, TR, RIP and link pointer: the control-register check comes first.
    let mut s = long();
    s.cr0 &= !cr0::NE;
    s.tr = Segment::unusable();
    s.rip = 0x0001_0000_0000_0000;
    s.vmcs_link_pointer = 0;
    assert_eq!(s.check(&ctx(true)), Err(E::Cr0Fixed0 { missing: cr0::NE }));
    s.cr0 |= cr0::NE;
    assert_eq!(
        s.check(&ctx(true)),
        seg(SegReg::Tr, SegmentRule::TrTypeLongMode)
    );
    s.tr = long().tr;
    assert!(matches!(
        s.check(&ctx(true)),
        Err(E::RipNotCanonical { .. })
    ));
    s.rip = long().rip;
    assert!(matches!(
        s.check(&ctx(true)),
        Err(E::VmcsLinkPointerNotAllOnes { .. })
    ));
}

#[test]
fn messages_name_the_sdm_rule() {
    let msg = |e: E| format!("{e}");
    assert_eq!(
        msg(E::Cr0PagingWithoutProtection),
        "CR0.PG set but CR0.PE clear"
    );
    assert_eq!(msg(E::RflagsBit1Clear), "RFLAGS reserved bit 1 must be 1");
    assert_eq!(
        msg(E::Segment {
            register: SegReg::Tr,
            rule: SegmentRule::TrType
        }),
        "TR: TR must be usable and type 3 or 11 (busy TSS)"
    );
    assert!(
        msg(E::VmcsLinkPointerNotAllOnes { value: 0 })
            .starts_with("VMCS link pointer must be all ones")
    );
    assert!(
        msg(E::Cr0ProtectionOrPagingOff { cr0: 0x30 }).contains("only with it may CR0.PE/PG be 0")
    );
    let cs = msg(E::Segment {
        register: SegReg::Cs,
        rule: SegmentRule::CsType,
    });
    assert!(
        cs.starts_with("CS: access rights: type must be 9, 11, 13 or 15 (accessed code segment)")
    );
    assert_eq!(
        msg(E::PendingDebugBsMismatch { expected: true })
            .split(" (")
            .next(),
        Some("pending debug exceptions BS must be 1")
    );
    assert_eq!(
        E::RflagsBit1Clear.sdm_section(),
        "Checks on Guest RIP, RFLAGS, and SSP"
    );
    assert_eq!(
        E::Segment {
            register: SegReg::Cs,
            rule: SegmentRule::CsType
        }
        .sdm_section(),
        "Checks on Guest Segment Registers"
    );
    assert_eq!(
        E::HltWithSsDplNonZero.sdm_section(),
        "Checks on Guest Non-Register State"
    );
}
