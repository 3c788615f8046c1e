use super::*;
use crate::testutil::FakeVmcs;
use std::collections::HashSet;
use std::vec::Vec;

/// Checks every variant of one group against the group's declared width and type, and returns
/// the encodings for the global uniqueness check.
fn check_group<F: VmcsReadable + core::fmt::Debug>(all: &[F]) -> Vec<u32> {
    assert!(!all.is_empty());
    let mut out = Vec::new();
    for &f in all {
        let e = FieldEncoding(f.encoding());
        assert!(e.is_well_formed(), "{f:?}: reserved bits set in {:#x}", e.0);
        assert!(
            !e.is_high(),
            "{f:?}: enum variants use the full access type"
        );
        assert_eq!(
            e.width(),
            <F::Width as Width>::WIDTH,
            "{f:?}: width bits 14:13"
        );
        assert_eq!(e.field_type(), F::TYPE, "{f:?}: type bits 11:10");
        assert_eq!(
            FieldEncoding::new(e.width(), e.field_type(), e.index(), false),
            e
        );
        assert!(!f.name().is_empty());
        out.push(e.0);
    }
    out
}

#[test]
fn every_variant_has_width_and_type_bits_of_its_group() {
    let mut all = Vec::new();
    all.extend(check_group(Control16::ALL));
    all.extend(check_group(Control32::ALL));
    all.extend(check_group(Control64::ALL));
    all.extend(check_group(ControlNatural::ALL));
    all.extend(check_group(Guest16::ALL));
    all.extend(check_group(Guest32::ALL));
    all.extend(check_group(Guest64::ALL));
    all.extend(check_group(GuestNatural::ALL));
    all.extend(check_group(Host16::ALL));
    all.extend(check_group(Host32::ALL));
    all.extend(check_group(Host64::ALL));
    all.extend(check_group(HostNatural::ALL));
    all.extend(check_group(ReadOnly32::ALL));
    all.extend(check_group(ReadOnly64::ALL));
    all.extend(check_group(ReadOnlyNatural::ALL));
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "two variants share an encoding");
    assert!(all.len() > 150, "{} fields", all.len());
}

#[test]
fn high_access_of_every_64_bit_field() {
    fn check<F: Full64 + core::fmt::Debug>(all: &[F]) {
        for &f in all {
            let h = High(f);
            let e = FieldEncoding(h.encoding());
            assert_eq!(h.encoding(), f.encoding() + 1);
            assert!(e.is_high() && e.is_well_formed());
            assert_eq!(e.width(), FieldWidth::Bits64);
            assert_eq!(
                <<High<F> as VmcsReadable>::Width as Width>::WIDTH,
                FieldWidth::Bits32
            );
            assert_eq!(High::<F>::TYPE, F::TYPE);
        }
    }
    check(Control64::ALL);
    check(Guest64::ALL);
    check(Host64::ALL);
    check(ReadOnly64::ALL);
    assert_eq!(Control64::EptPointer.high().encoding(), 0x201b);
}

/// Values from SDM Vol. 3D, Appendix B (tables B-1 .. B-14).
#[test]
fn sample_encodings_match_appendix_b() {
    assert_eq!(Control16::VirtualProcessorId.encoding(), 0x0000);
    assert_eq!(Guest16::CsSelector.encoding(), 0x0802);
    assert_eq!(Guest16::TrSelector.encoding(), 0x080e);
    assert_eq!(Host16::TrSelector.encoding(), 0x0c0c);
    assert_eq!(Control64::IoBitmapA.encoding(), 0x2000);
    assert_eq!(Control64::MsrBitmap.encoding(), 0x2004);
    assert_eq!(Control64::TscOffset.encoding(), 0x2010);
    assert_eq!(Control64::EptPointer.encoding(), 0x201a);
    assert_eq!(ReadOnly64::GuestPhysicalAddress.encoding(), 0x2400);
    assert_eq!(Guest64::VmcsLinkPointer.encoding(), 0x2800);
    assert_eq!(Guest64::Debugctl.encoding(), 0x2802);
    assert_eq!(Guest64::Pat.encoding(), 0x2804);
    assert_eq!(Guest64::Efer.encoding(), 0x2806);
    assert_eq!(Host64::Pat.encoding(), 0x2c00);
    assert_eq!(Host64::Efer.encoding(), 0x2c02);
    assert_eq!(Control32::PinBasedControls.encoding(), 0x4000);
    assert_eq!(Control32::PrimaryProcessorControls.encoding(), 0x4002);
    assert_eq!(Control32::ExceptionBitmap.encoding(), 0x4004);
    assert_eq!(Control32::ExitControls.encoding(), 0x400c);
    assert_eq!(Control32::EntryControls.encoding(), 0x4012);
    assert_eq!(Control32::EntryInterruptionInfo.encoding(), 0x4016);
    assert_eq!(Control32::SecondaryProcessorControls.encoding(), 0x401e);
    assert_eq!(ReadOnly32::VmInstructionError.encoding(), 0x4400);
    assert_eq!(ReadOnly32::ExitReason.encoding(), 0x4402);
    assert_eq!(ReadOnly32::ExitInterruptionInfo.encoding(), 0x4404);
    assert_eq!(ReadOnly32::IdtVectoringInfo.encoding(), 0x4408);
    assert_eq!(ReadOnly32::ExitInstructionLength.encoding(), 0x440c);
    assert_eq!(ReadOnly32::ExitInstructionInfo.encoding(), 0x440e);
    assert_eq!(Guest32::EsLimit.encoding(), 0x4800);
    assert_eq!(Guest32::CsAccessRights.encoding(), 0x4816);
    assert_eq!(Guest32::TrAccessRights.encoding(), 0x4822);
    assert_eq!(Guest32::InterruptibilityState.encoding(), 0x4824);
    assert_eq!(Guest32::ActivityState.encoding(), 0x4826);
    assert_eq!(Guest32::SysenterCs.encoding(), 0x482a);
    assert_eq!(Guest32::PreemptionTimerValue.encoding(), 0x482e);
    assert_eq!(Host32::SysenterCs.encoding(), 0x4c00);
    assert_eq!(ControlNatural::Cr0GuestHostMask.encoding(), 0x6000);
    assert_eq!(ControlNatural::Cr4ReadShadow.encoding(), 0x6006);
    assert_eq!(ReadOnlyNatural::ExitQualification.encoding(), 0x6400);
    assert_eq!(ReadOnlyNatural::GuestLinearAddress.encoding(), 0x640a);
    assert_eq!(GuestNatural::Cr0.encoding(), 0x6800);
    assert_eq!(GuestNatural::GdtrBase.encoding(), 0x6816);
    assert_eq!(GuestNatural::Dr7.encoding(), 0x681a);
    assert_eq!(GuestNatural::Rip.encoding(), 0x681e);
    assert_eq!(GuestNatural::Rflags.encoding(), 0x6820);
    assert_eq!(GuestNatural::PendingDebugExceptions.encoding(), 0x6822);
    assert_eq!(HostNatural::Cr0.encoding(), 0x6c00);
    assert_eq!(HostNatural::TrBase.encoding(), 0x6c0a);
    assert_eq!(HostNatural::Rsp.encoding(), 0x6c14);
    assert_eq!(HostNatural::Rip.encoding(), 0x6c16);
}

#[test]
fn encoding_decoder() {
    let e = FieldEncoding(0x6c16);
    assert_eq!(e.width(), FieldWidth::Natural);
    assert_eq!(e.field_type(), FieldType::HostState);
    assert_eq!(e.index(), 11);
    let e = FieldEncoding(0x2001);
    assert!(e.is_high() && e.is_well_formed());
    assert!(
        !FieldEncoding(0x4001).is_well_formed(),
        "high access of a 32-bit field"
    );
    assert!(!FieldEncoding(0x1_0000).is_well_formed());
    assert!(!FieldEncoding(0x1000).is_well_formed());
    assert_eq!(Guest32::from_encoding(0x4826), Some(Guest32::ActivityState));
    assert_eq!(Guest32::from_encoding(0x6800), None);
    assert_eq!(ReadOnly32::ExitReason.name(), "exit reason");
}

#[test]
fn typed_access_through_the_traits() {
    let mut v = FakeVmcs::default();
    v.write(Guest16::CsSelector, 0x08).unwrap();
    v.write(Guest64::Efer, 0x0000_0001_0000_0d01).unwrap();
    v.write(GuestNatural::Rip, 0xffff_8000_0000_1000).unwrap();
    let cs: u16 = v.read(Guest16::CsSelector).unwrap();
    assert_eq!(cs, 0x08);
    assert_eq!(v.read(Guest64::Efer.high()).unwrap(), 1u32);
    v.write(Guest64::Efer.high(), 0).unwrap();
    assert_eq!(v.read(Guest64::Efer).unwrap(), 0xd01);
    assert_eq!(v.read(GuestNatural::Rip).unwrap(), 0xffff_8000_0000_1000);
    v.set_exit_info(ReadOnly32::ExitReason.encoding(), 12);
    assert_eq!(v.read(ReadOnly32::ExitReason).unwrap(), 12u32);
    assert!(v.read(Guest32::SysenterCs).is_err(), "never written");
}
