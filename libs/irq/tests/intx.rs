//! INTx: locating a pin's GSI (PCI Local Bus Spec 3.0 §6.2.4, ACPI 6.5 §5.2.12.5), the
//! compatibility-format entry (82093AA §3.2.4), the shared-line rule and the level hand-off.

use conduit_irq::intx::{LINE_UNKNOWN, foreign_user, locate};
use conduit_irq::{
    DirectRte, GuestId, IntxError, IntxSource, IntxState, LineOverride, LineUser, OnEoi, OnFire,
    Owner, Polarity, TriggerMode,
};

/// QEMU's MADT: IRQ 0 on GSI 2 (flags conform), 5/9/10/11 level active high.
fn qemu_overrides() -> Vec<LineOverride> {
    let mut v = vec![LineOverride {
        isa: 0,
        gsi: 2,
        polarity: None,
        trigger: None,
    }];
    for isa in [5, 9, 10, 11] {
        v.push(LineOverride {
            isa,
            gsi: u32::from(isa),
            polarity: Some(Polarity::ActiveHigh),
            trigger: Some(TriggerMode::Level),
        });
    }
    v
}

#[test]
fn line_without_override_is_pci_level_active_low() {
    let s = locate(1, 11, &[]).unwrap();
    assert_eq!(
        s,
        IntxSource {
            pin: 1,
            line: 11,
            gsi: 11,
            polarity: Polarity::ActiveLow,
            trigger: TriggerMode::Level
        }
    );
}

#[test]
fn override_gives_gsi_polarity_and_trigger() {
    let o = qemu_overrides();
    let s = locate(1, 10, &o).unwrap();
    assert_eq!(
        (s.gsi, s.polarity, s.trigger),
        (10, Polarity::ActiveHigh, TriggerMode::Level)
    );
    // A conforming override moves the GSI and keeps PCI's signalling.
    let s = locate(2, 0, &o).unwrap();
    assert_eq!(
        (s.gsi, s.polarity, s.trigger),
        (2, Polarity::ActiveLow, TriggerMode::Level)
    );
    // An override that states only one of the two.
    let half = [LineOverride {
        isa: 9,
        gsi: 20,
        polarity: Some(Polarity::ActiveHigh),
        trigger: None,
    }];
    let s = locate(4, 9, &half).unwrap();
    assert_eq!(
        (s.gsi, s.polarity, s.trigger),
        (20, Polarity::ActiveHigh, TriggerMode::Level)
    );
}

#[test]
fn pins_and_lines_that_do_not_locate() {
    assert_eq!(locate(0, 11, &[]), Err(IntxError::NoPin));
    assert_eq!(locate(5, 11, &[]), Err(IntxError::BadPin(5)));
    assert_eq!(locate(0xff, 11, &[]), Err(IntxError::BadPin(0xff)));
    assert_eq!(locate(1, LINE_UNKNOWN, &[]), Err(IntxError::NotRouted));
    // A line above 15 (APIC-mode firmware) is taken as the GSI itself.
    assert_eq!(locate(1, 19, &qemu_overrides()).unwrap().gsi, 19);
}

#[test]
fn direct_entry_encoding() {
    let rte = DirectRte {
        vector: 0x41,
        dest: 0x03,
        trigger: TriggerMode::Level,
        polarity: Polarity::ActiveLow,
        masked: true,
    };
    // Destination 0x03 << 56, mask 16, level 15, active low 13, vector 0x41; fixed, physical.
    assert_eq!(rte.encode(), 0x0300_0000_0001_a041);
    assert_eq!(DirectRte::decode(rte.encode()), Some(rte));
    let edge_high = DirectRte {
        trigger: TriggerMode::Edge,
        polarity: Polarity::ActiveHigh,
        masked: false,
        ..rte
    };
    assert_eq!(edge_high.encode(), 0x0300_0000_0000_0041);
    // Remote IRR and delivery status (read-only) do not matter for decoding.
    assert_eq!(
        DirectRte::decode(rte.encode() | 1 << 14 | 1 << 12),
        Some(rte)
    );
}

#[test]
fn direct_entry_decode_refuses_other_entries() {
    let base = 0x0000_0000_0001_a041u64;
    for bad in [
        base | 1 << 8,  // lowest priority
        base | 7 << 8,  // ExtINT
        base | 1 << 11, // logical destination
        base | 1 << 48, // remappable format
        base | 1 << 17, // reserved
        base | 1 << 55, // reserved
    ] {
        assert_eq!(DirectRte::decode(bad), None, "{bad:#x}");
    }
}

#[test]
fn shared_line_rule() {
    let g1 = Owner::Guest(GuestId(1));
    let g2 = Owner::Guest(GuestId(2));
    let users = [
        LineUser {
            function: 0x20u16,
            gsi: 10,
            owner: g1,
        },
        LineUser {
            function: 0x21,
            gsi: 10,
            owner: g1,
        },
        LineUser {
            function: 0xfa,
            gsi: 11,
            owner: Owner::Hypervisor,
        },
        LineUser {
            function: 0x30,
            gsi: 11,
            owner: g1,
        },
        LineUser {
            function: 0x40,
            gsi: 16,
            owner: g2,
        },
        LineUser {
            function: 0x41,
            gsi: 16,
            owner: g1,
        },
    ];
    // Two functions of the same guest share a line: allowed.
    assert_eq!(foreign_user(&users, 0x20, 10, g1), None);
    // A hypervisor-kept function on the line: refused, naming it.
    assert_eq!(
        foreign_user(&users, 0x30, 11, g1).map(|u| u.function),
        Some(0xfa)
    );
    // Another guest's function on the line: refused, naming it.
    let u = foreign_user(&users, 0x41, 16, g1).unwrap();
    assert_eq!((u.function, u.owner), (0x40, g2));
    // Alone on its line.
    assert_eq!(foreign_user(&users, 0x50, 5, g1), None);
}

#[test]
fn level_hand_off() {
    let s = IntxState::Armed;
    let (s, a) = s.fire();
    assert_eq!((s, a), (IntxState::Asserted, OnFire::MaskAndAssert));
    // Fires again before the EOI (e.g. an unmask raced): only re-masked, not asserted twice.
    let (s, a) = s.fire();
    assert_eq!((s, a), (IntxState::Asserted, OnFire::Remask));
    let (s, a) = s.eoi();
    assert_eq!((s, a), (IntxState::Armed, OnEoi::DeassertAndUnmask));
    // A spurious EOI changes nothing.
    assert_eq!(s.eoi(), (IntxState::Armed, OnEoi::Nothing));
    // Cut off: stays masked whatever happens.
    let c = IntxState::CutOff;
    assert_eq!(c.fire(), (IntxState::CutOff, OnFire::Remask));
    assert_eq!(c.eoi(), (IntxState::CutOff, OnEoi::Deassert));
}

#[test]
fn state_byte_round_trip() {
    for s in [IntxState::Armed, IntxState::Asserted, IntxState::CutOff] {
        assert_eq!(IntxState::from_u8(s.to_u8()), s);
    }
    assert_eq!(IntxState::from_u8(0x77), IntxState::CutOff);
}
