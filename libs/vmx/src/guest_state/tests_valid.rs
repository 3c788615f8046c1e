//! The canonical states pass; helpers shared with `tests_broken`.

use super::*;
use crate::controls::{ControlRequest, VmxControls};
use crate::exit::{InterruptionInfo, vector};
use crate::fixtures::{BOCHS_TIGERLAKE, KNOWN_CPUS};
use crate::testutil::FakeVmcs;

pub(super) fn ctx_for(msrs: &VmxMsrs, long_mode: bool) -> CheckContext {
    let controls = VmxControls::compute(msrs, &ControlRequest::conduit(long_mode)).unwrap();
    CheckContext::new(msrs, &controls).with_address_widths(40, 48)
}

/// Tigerlake, Conduit's controls (unrestricted guest on).
pub(super) fn ctx(long_mode: bool) -> CheckContext {
    ctx_for(&BOCHS_TIGERLAKE, long_mode)
}

/// Tigerlake without "unrestricted guest".
pub(super) fn ctx_restricted(long_mode: bool) -> CheckContext {
    let mut c = ctx(long_mode);
    c.secondary.remove(SecondaryControls::UNRESTRICTED_GUEST);
    c
}

pub(super) fn long() -> GuestState {
    GuestState::long_mode_flat(0xffff_8000_0010_0000, 0xffff_8000_0020_0000, 0x1000)
}

pub(super) fn real() -> GuestState {
    GuestState::real_mode(0, 0x7c00)
}

/// A 64-bit guest at CPL 3 (CS 0x2b, SS 0x23, DPL 3).
pub(super) fn user_mode() -> GuestState {
    let mut s = long();
    s.cs.selector = 0x2b;
    s.cs.access_rights |= 3 << 5;
    s.ss.selector = 0x23;
    s.ss.access_rights |= 3 << 5;
    s.rip = 0x40_0000;
    s
}

/// Virtual-8086 mode inside a 32-bit protected-mode guest without paging.
pub(super) fn v86() -> GuestState {
    let mut s = real();
    s.cr0 |= crate::cr::cr0::PE;
    s.rflags |= rflags::VM;
    let seg = Segment::new(0x1000, 0x1_0000, 0xffff, 0xf3);
    (s.es, s.cs, s.ss, s.ds, s.fs, s.gs) = (seg, seg, seg, seg, seg, seg);
    s.ldtr = Segment::unusable();
    s
}

#[test]
fn canonical_states_pass_on_every_known_cpu() {
    for cpu in KNOWN_CPUS {
        assert_eq!(
            long().check(&ctx_for(&cpu.msrs, true)),
            Ok(()),
            "{} long mode",
            cpu.name
        );
        assert_eq!(
            real().check(&ctx_for(&cpu.msrs, false)),
            Ok(()),
            "{} real mode",
            cpu.name
        );
    }
}

#[test]
fn long_mode_passes_without_unrestricted_guest() {
    assert_eq!(long().check(&ctx_restricted(true)), Ok(()));
}

#[test]
fn other_valid_states() {
    assert_eq!(GuestState::real_mode(0x07c0, 0).check(&ctx(false)), Ok(()));
    assert_eq!(
        GuestState::real_mode(0xf000, 0xfff0).check(&ctx(false)),
        Ok(())
    );
    assert_eq!(user_mode().check(&ctx(true)), Ok(()));
    assert_eq!(user_mode().check(&ctx_restricted(true)), Ok(()));
    assert_eq!(v86().check(&ctx(false)), Ok(()));
    // Unrestricted guest: CS may be an accessed read/write data segment with DPL 0.
    let mut s = real();
    s.cs.access_rights = 0x93;
    assert_eq!(s.check(&ctx(false)), Ok(()));
    // A reset CPU's busy 16-bit TSS and an unusable LDTR.
    let mut s = real();
    s.tr.access_rights = 0x83;
    s.ldtr = Segment::unusable();
    assert_eq!(s.check(&ctx(false)), Ok(()));
    // CR0.CD/NW are never checked.
    let mut s = long();
    s.cr0 |= crate::cr::cr0::CD | crate::cr::cr0::NW;
    assert_eq!(s.check(&ctx(true)), Ok(()));
    // DR7 bits 63:32 only matter with "load debug controls".
    let mut s = long();
    s.dr7 = 1 << 32;
    assert_eq!(s.check(&ctx(true)), Ok(()));
}

#[test]
fn allowed_injections() {
    let mut s = long();
    s.rflags |= rflags::IF;
    let ext = ctx(true).with_injection(InterruptionInfo::external_interrupt(0x20));
    assert_eq!(s.check(&ext), Ok(()));
    let mut s = long();
    s.activity_state = ActivityState::Hlt as u32;
    let db = ctx(true).with_injection(InterruptionInfo::hardware_exception(vector::DB));
    assert_eq!(s.check(&db), Ok(()));
    s.activity_state = ActivityState::Shutdown as u32;
    assert_eq!(
        s.check(&ctx(true).with_injection(InterruptionInfo::nmi())),
        Ok(())
    );
    // STI blocking with TF = 1 needs BS in the pending debug exceptions.
    let mut s = long();
    s.rflags |= rflags::IF | rflags::TF;
    s.interruptibility = interruptibility::BLOCKING_BY_STI;
    s.pending_debug_exceptions = 1 << 14;
    assert_eq!(s.check(&ctx(true)), Ok(()));
}

#[test]
fn vmcs_round_trip_then_check() {
    let mut v = FakeVmcs::default();
    let s = long();
    s.write_to(&mut v).unwrap();
    assert_eq!(v.fields.len(), 21 + 4 * 8);
    let back = GuestState::read_from(&mut v).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.check(&ctx(true)), Ok(()));
    assert_eq!(v.fields.get(&0x0802), Some(&0x08), "guest CS selector");
    assert_eq!(
        v.fields.get(&0x4816),
        Some(&0xa09b),
        "guest CS access rights"
    );
    assert_eq!(v.fields.get(&0x2800), Some(&u64::MAX), "VMCS link pointer");
    let mut v = FakeVmcs::default();
    real().write_to(&mut v).unwrap();
    assert_eq!(GuestState::read_from(&mut v).unwrap(), real());
}

#[test]
fn canonical_addresses() {
    assert!(is_canonical(0x0000_7fff_ffff_ffff, 48));
    assert!(is_canonical(0xffff_8000_0000_0000, 48));
    assert!(!is_canonical(0x0000_8000_0000_0000, 48));
    assert!(!is_canonical(0xfffe_8000_0000_0000, 48));
    assert!(is_canonical(0x00ff_ffff_ffff_ffff, 57));
    assert!(is_canonical(0x8000_0000_0000_0000, 64));
    assert!(is_canonical(0, 0), "widths are clamped, never a bad shift");
}

#[test]
fn access_rights_of_the_presets() {
    let s = long();
    assert_eq!(s.cs.access_rights, 0xa09b);
    assert_eq!(s.ds.access_rights, 0xc093);
    assert_eq!(s.tr.access_rights, 0x8b);
    let ar = s.cs.ar();
    assert!(ar.long() && !ar.default_big() && ar.granularity() && ar.present());
    assert_eq!((ar.seg_type(), ar.dpl()), (11, 0));
    assert!(s.ldtr.ar().unusable());
    let r = GuestState::real_mode(0x07c0, 0);
    assert_eq!((r.cs.base, r.cs.access_rights, r.rip), (0x7c00, 0x9b, 0));
}
