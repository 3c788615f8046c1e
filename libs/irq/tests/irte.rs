//! IRTE encodings against hand-computed values (VT-d §9.10), decoding and validation.

use conduit_irq::{
    ApicMode, DeliveryMode, Destination, DestinationMode, FormatError, Irte, IrteBuilder,
    SourceQualifier, SourceValidation, TriggerMode, raw_present,
};

#[test]
fn minimal_xapic_entry() {
    // P = 1; V = 0x30 in 23:16; APIC ID 0x05 in 47:40.
    let irte = IrteBuilder::new(Destination::XApic(0x05), 0x30)
        .build()
        .unwrap();
    assert_eq!(irte.encode(), [0x0000_0500_0030_0001, 0]);
    assert_eq!(Irte::decode(irte.encode(), ApicMode::XApic), Ok(irte));
}

#[test]
fn every_field_x2apic_entry() {
    let irte = IrteBuilder::new(Destination::X2Apic(0x1234_5678), 0xec)
        .fault_processing_disable(true)
        .destination_mode(DestinationMode::Logical)
        .redirection_hint(true)
        .trigger_mode(TriggerMode::Level)
        .delivery_mode(DeliveryMode::LowestPriority)
        .avail(0xa)
        .verify_bus_range(0x02, 0x05)
        .build()
        .unwrap();
    // Low: P|FPD|DM|RH|TM = 0x1f, DLM 001 << 5 = 0x20, AVAIL 0xa << 8, V 0xec << 16, DST << 32.
    // High: SID 0x0205, SQ 0, SVT 10b << 18.
    assert_eq!(
        irte.encode(),
        [0x1234_5678_00ec_0a3f, 0x0000_0000_0008_0205]
    );
    let back = Irte::decode(irte.encode(), ApicMode::X2Apic).unwrap();
    assert_eq!(back, irte);
    assert!(back.is_present() && back.fault_processing_disabled() && back.redirection_hint());
    assert_eq!(back.destination_mode(), DestinationMode::Logical);
    assert_eq!(back.trigger_mode(), TriggerMode::Level);
    assert_eq!(back.delivery_mode(), DeliveryMode::LowestPriority);
    assert_eq!((back.avail(), back.vector()), (0xa, 0xec));
    assert_eq!(back.destination(), Destination::X2Apic(0x1234_5678));
    assert_eq!(
        back.source_validation(),
        SourceValidation::BusRange { start: 2, end: 5 }
    );
    assert_eq!(back.sid(), 0x0205);
}

#[test]
fn nmi_entry_with_requester_verification() {
    let irte = IrteBuilder::new(Destination::XApic(0xff), 0)
        .delivery_mode(DeliveryMode::Nmi)
        .verify_requester(0x00f8, SourceQualifier::IgnoreBits2To0)
        .build()
        .unwrap();
    // DLM 100b << 5 = 0x80; ID 0xff << 40. High: SID 0x00f8, SQ 11b << 16, SVT 01b << 18.
    assert_eq!(
        irte.encode(),
        [0x0000_ff00_0000_0081, 0x0000_0000_0007_00f8]
    );
    assert_eq!(Irte::decode(irte.encode(), ApicMode::XApic), Ok(irte));
}

#[test]
fn delivery_mode_encodings() {
    for (mode, bits) in [
        (DeliveryMode::Fixed, 0),
        (DeliveryMode::LowestPriority, 1),
        (DeliveryMode::Smi, 2),
        (DeliveryMode::Nmi, 4),
        (DeliveryMode::Init, 5),
        (DeliveryMode::ExtInt, 7),
    ] {
        assert_eq!(mode.bits(), bits);
        assert_eq!(DeliveryMode::from_bits(bits), Some(mode));
        let vector = if mode.carries_vector() { 0x40 } else { 0 };
        let irte = IrteBuilder::new(Destination::XApic(1), vector)
            .delivery_mode(mode)
            .build()
            .unwrap();
        assert_eq!((irte.encode()[0] >> 5) & 7, u64::from(bits));
    }
    assert_eq!(DeliveryMode::from_bits(3), None);
    assert_eq!(DeliveryMode::from_bits(6), None);
    assert_eq!(DeliveryMode::from_bits(8), None);
}

#[test]
fn builder_validates_vectors() {
    let b = IrteBuilder::new(Destination::XApic(0), 15);
    assert_eq!(
        b.build(),
        Err(FormatError::IllegalVector {
            vector: 15,
            delivery: DeliveryMode::Fixed
        })
    );
    assert!(b.vector(16).build().is_ok());
    assert!(b.vector(255).build().is_ok());
    assert_eq!(
        b.vector(0)
            .delivery_mode(DeliveryMode::LowestPriority)
            .build(),
        Err(FormatError::IllegalVector {
            vector: 0,
            delivery: DeliveryMode::LowestPriority
        })
    );
    for mode in [
        DeliveryMode::Smi,
        DeliveryMode::Nmi,
        DeliveryMode::Init,
        DeliveryMode::ExtInt,
    ] {
        assert_eq!(
            b.vector(2).delivery_mode(mode).build(),
            Err(FormatError::UnexpectedVector {
                vector: 2,
                delivery: mode
            })
        );
        assert!(b.vector(0).delivery_mode(mode).build().is_ok());
    }
}

#[test]
fn builder_validates_avail_and_bus_range() {
    let b = IrteBuilder::new(Destination::XApic(0), 0x20);
    assert!(b.avail(0xf).build().is_ok());
    assert_eq!(b.avail(0x10).build(), Err(FormatError::AvailTooWide(0x10)));
    assert!(b.verify_bus_range(7, 7).build().is_ok());
    assert_eq!(
        b.verify_bus_range(5, 2).build(),
        Err(FormatError::EmptyBusRange { start: 5, end: 2 })
    );
    // Switching back to no validation clears SID and SQ.
    let irte = b
        .verify_requester(0xabcd, SourceQualifier::IgnoreBit2)
        .no_source_validation();
    assert_eq!(irte.build().unwrap().encode()[1], 0);
}

#[test]
fn not_present_entry_is_all_zero() {
    assert_eq!(Irte::NOT_PRESENT.encode(), [0, 0]);
    assert_eq!(Irte::decode([0, 0], ApicMode::XApic), Ok(Irte::NOT_PRESENT));
    assert!(!raw_present([0xffff_fffe, 0]));
    assert!(raw_present([1, 0]));
    let irte = IrteBuilder::new(Destination::XApic(1), 0x20)
        .present(false)
        .build()
        .unwrap();
    assert_eq!(irte.encode()[0] & 1, 0);
}

#[test]
fn decode_rejects_posted_format_and_reserved_bits() {
    let good = 0x0000_0500_0030_0001u64;
    assert_eq!(
        Irte::decode([good | 1 << 15, 0], ApicMode::XApic),
        Err(FormatError::PostedFormat)
    );
    for bit in [12, 13, 14, 24, 31] {
        assert_eq!(
            Irte::decode([good | 1 << bit, 0], ApicMode::X2Apic),
            Err(FormatError::ReservedBits {
                field: "IRTE bits 63:0",
                bits: 1 << bit
            }),
            "bit {bit}"
        );
    }
    for bit in [20, 40, 63] {
        assert_eq!(
            Irte::decode([good, 1 << bit], ApicMode::X2Apic),
            Err(FormatError::ReservedBits {
                field: "IRTE bits 127:64",
                bits: 1 << bit
            }),
            "bit {}",
            bit + 64
        );
    }
    // In xAPIC mode DST bits 39:32 and 63:48 are reserved; in x2APIC mode they are the ID.
    for bit in [32, 39, 48, 63] {
        assert_eq!(
            Irte::decode([good | 1 << bit, 0], ApicMode::XApic),
            Err(FormatError::ReservedBits {
                field: "IRTE xAPIC DST",
                bits: 1 << bit
            }),
            "bit {bit}"
        );
        assert!(Irte::decode([good | 1 << bit, 0], ApicMode::X2Apic).is_ok());
    }
    assert_eq!(
        Irte::decode([good | 3 << 5, 0], ApicMode::XApic),
        Err(FormatError::ReservedDeliveryMode(3))
    );
    assert_eq!(
        Irte::decode([good | 6 << 5, 0], ApicMode::XApic),
        Err(FormatError::ReservedDeliveryMode(6))
    );
    assert_eq!(
        Irte::decode([good, 3 << 18], ApicMode::XApic),
        Err(FormatError::ReservedSourceValidation)
    );
}

#[test]
fn xapic_and_x2apic_destinations_land_in_different_bits() {
    let x = IrteBuilder::new(Destination::XApic(0xab), 0x20)
        .build()
        .unwrap()
        .encode()[0];
    let x2 = IrteBuilder::new(Destination::X2Apic(0xab), 0x20)
        .build()
        .unwrap()
        .encode()[0];
    assert_eq!(x >> 32, 0xab00);
    assert_eq!(x2 >> 32, 0xab);
    // The same raw bits read in the other mode give another ID.
    assert_eq!(
        Irte::decode([x, 0], ApicMode::X2Apic)
            .unwrap()
            .destination(),
        Destination::X2Apic(0xab00)
    );
    assert!(Irte::decode([x2, 0], ApicMode::XApic).is_err());
}

#[test]
fn decode_then_encode_is_exact_for_every_accepted_word() {
    // xorshift over raw words, thinned to valid ones often enough to matter.
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut accepted = 0;
    for i in 0..50_000 {
        let mode = if i % 2 == 0 {
            ApicMode::XApic
        } else {
            ApicMode::X2Apic
        };
        let mut low = next() & !(0x7000 | 0xff00_0000 | 1 << 15);
        if mode == ApicMode::XApic {
            low &= !0xffff_00ff_0000_0000;
        }
        let high = next() & 0xf_ffff;
        let raw = [low, high];
        match Irte::decode(raw, mode) {
            Ok(irte) => {
                assert_eq!(irte.encode(), raw, "{raw:x?}");
                assert_eq!(irte.to_builder().build().is_ok(), irte.validate().is_ok());
                accepted += 1;
            }
            Err(e) => assert!(
                matches!(
                    e,
                    FormatError::ReservedDeliveryMode(_) | FormatError::ReservedSourceValidation
                ),
                "{e:?}"
            ),
        }
        // Unfiltered words never panic.
        let _ = Irte::decode([next(), next()], mode);
    }
    assert!(accepted > 25_000, "{accepted}");
}

#[test]
fn requester_id_verification_follows_sq() {
    // Requester 03:02.0 = 0x0310.
    let irte = |sq| {
        IrteBuilder::new(Destination::XApic(0), 0x20)
            .verify_requester(0x0310, sq)
            .build()
            .unwrap()
    };
    let all = irte(SourceQualifier::All);
    assert!(all.accepts_requester(0x0310));
    assert!(!all.accepts_requester(0x0311));
    let ignore2 = irte(SourceQualifier::IgnoreBit2);
    assert!(ignore2.accepts_requester(0x0314));
    assert!(!ignore2.accepts_requester(0x0312));
    let ignore21 = irte(SourceQualifier::IgnoreBits2To1);
    assert!(ignore21.accepts_requester(0x0312) && ignore21.accepts_requester(0x0316));
    assert!(!ignore21.accepts_requester(0x0311));
    let ignore210 = irte(SourceQualifier::IgnoreBits2To0);
    assert!(ignore210.accepts_requester(0x0317));
    assert!(!ignore210.accepts_requester(0x0318), "another device");
    assert!(!ignore210.accepts_requester(0x0410), "another bus");
}

#[test]
fn bus_range_and_no_verification() {
    let ranged = IrteBuilder::new(Destination::XApic(0), 0x20)
        .verify_bus_range(2, 5)
        .build()
        .unwrap();
    assert!(ranged.accepts_requester(0x0200) && ranged.accepts_requester(0x05ff));
    assert!(!ranged.accepts_requester(0x01ff) && !ranged.accepts_requester(0x0600));
    let open = IrteBuilder::new(Destination::XApic(0), 0x20)
        .build()
        .unwrap();
    assert_eq!(open.source_validation(), SourceValidation::None);
    assert!(open.accepts_requester(0xffff) && open.accepts_requester(0));
}
