//! The QEMU q35 DMAR of the test machine, parsed field by field.

mod support;

use conduit_dmar::{
    Bdf, DeviceScope, Dmar, DmarError, Drhd, PathEntry, RemappingStructure, ScopeType,
};
use support::{FakeBridges, Table, bdf, drhd_body, q35_built, q35_bytes, q35_scopes};

/// (type, enumeration id, start bus, device, function) of the q35 scopes, in table order.
const Q35_SCOPES: [(ScopeType, u8, u8, u8, u8); 9] = [
    (ScopeType::IoApic, 0, 0xff, 0, 0),
    (ScopeType::Endpoint, 0, 0, 0x00, 0),
    (ScopeType::Endpoint, 0, 0, 0x01, 0),
    (ScopeType::Bridge, 0, 0, 0x02, 0),
    (ScopeType::Bridge, 0, 0, 0x03, 0),
    (ScopeType::Endpoint, 0, 0, 0x04, 0),
    (ScopeType::Endpoint, 0, 0, 0x1f, 0),
    (ScopeType::Endpoint, 0, 0, 0x1f, 2),
    (ScopeType::Endpoint, 0, 0, 0x1f, 3),
];

fn only_drhd<'a>(dmar: &Dmar<'a>) -> Drhd<'a> {
    let all: Vec<_> = dmar.structures().collect::<Result<_, _>>().expect("valid");
    assert_eq!(all.len(), 1, "q35 has exactly one remapping structure");
    match all[0] {
        RemappingStructure::Drhd(d) => d,
        other => panic!("expected a DRHD, got {other:?}"),
    }
}

/// Asserts every semantic field of a q35 DMAR (shared by the built table and a real capture).
fn assert_q35_semantics(dmar: &Dmar<'_>) {
    let h = dmar.header();
    assert_eq!(&h.signature, b"DMAR");
    assert_eq!(h.revision, 1);
    assert_eq!(&h.oem_id, b"BOCHS ");
    assert_eq!(&h.oem_table_id, b"BXPC    ");
    assert_eq!(h.oem_revision, 1);
    assert_eq!(&h.creator_id, b"BXPC");
    assert_eq!(h.creator_revision, 1);
    assert_eq!(dmar.host_address_width_raw(), 0x2f);
    assert_eq!(dmar.host_address_width(), 48);
    let f = dmar.flags();
    assert_eq!(f.0, 0x01);
    assert!(f.intr_remap() && !f.x2apic_opt_out() && !f.dma_ctrl_platform_opt_in());

    let d = only_drhd(dmar);
    assert_eq!(d.offset(), 48);
    assert_eq!(d.bytes().len(), 88);
    assert_eq!(d.flags(), 0);
    assert!(!d.include_pci_all(), "QEMU lists scopes explicitly");
    assert_eq!(d.size_field(), 0);
    assert_eq!(d.register_set_size(), 4096);
    assert_eq!(d.segment(), 0);
    assert_eq!(d.register_base(), 0xfed9_0000);

    let scopes: Vec<DeviceScope<'_>> = d.scopes().collect::<Result<_, _>>().expect("valid scopes");
    assert_eq!(scopes.len(), Q35_SCOPES.len());
    for (i, (s, &(ty, id, bus, dev, func))) in scopes.iter().zip(Q35_SCOPES.iter()).enumerate() {
        assert_eq!(s.scope_type(), ty, "scope {i}");
        assert_eq!(s.bytes().len(), 8, "scope {i}");
        assert_eq!(s.offset(), 64 + 8 * i, "scope {i}");
        assert_eq!(s.flags(), 0, "scope {i}");
        assert_eq!(s.enumeration_id(), id, "scope {i}");
        assert_eq!(s.start_bus(), bus, "scope {i}");
        assert_eq!(s.path_len(), 1, "scope {i}");
        assert_eq!(
            s.path().collect::<Vec<_>>(),
            [PathEntry {
                device: dev,
                function: func
            }],
            "scope {i}"
        );
    }
}

#[test]
fn builder_reproduces_the_independent_golden_bytes() {
    let golden = q35_bytes();
    assert_eq!(golden.len(), 136);
    assert_eq!(golden[9], 0xc9);
    assert_eq!(q35_built(), golden);
    let mut t = Table::new(0x2f, 0x01);
    t.structure(0, &drhd_body(0, 0, 0, 0xfed9_0000, &q35_scopes()));
    assert_eq!(t.finish().len(), 136);
}

#[test]
fn q35_table_every_field() {
    let bytes = q35_bytes();
    let dmar = Dmar::parse(&bytes).expect("valid q35 DMAR");
    let h = dmar.header();
    assert_eq!(h.length, 136);
    assert_eq!(h.checksum, 0xc9);
    assert_eq!(dmar.bytes().len(), 136);
    assert_eq!(
        bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)),
        0,
        "checksum is right"
    );
    assert_q35_semantics(&dmar);
    assert_eq!(dmar.validate(), Ok(()));
    assert_eq!(dmar.drhds().count(), 1);
}

#[test]
fn trailing_bytes_past_length_are_ignored() {
    let mut bytes = q35_bytes();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    let dmar = Dmar::parse(&bytes).expect("Length governs");
    assert_eq!(dmar.bytes().len(), 136);
    assert_q35_semantics(&dmar);
}

#[test]
fn aw_bits_39_variant() {
    let mut t = Table::new(0x26, 0x01);
    t.structure(0, &drhd_body(0, 0, 0, 0xfed9_0000, &q35_scopes()));
    let bytes = t.finish();
    let dmar = Dmar::parse(&bytes).expect("valid");
    assert_eq!(dmar.host_address_width(), 39);
}

#[test]
fn q35_coverage_through_the_root_ports() {
    let bytes = q35_bytes();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let bridges = FakeBridges::q35();
    let d = only_drhd(&dmar);
    for b in [
        bdf(0, 0, 0),
        bdf(0, 1, 0),
        bdf(0, 2, 0),
        bdf(0, 3, 0),
        bdf(0, 4, 0),
        bdf(0, 0x1f, 0),
        bdf(0, 0x1f, 2),
        bdf(0, 0x1f, 3),
        bdf(1, 0, 0),
        bdf(2, 0, 0),
        bdf(1, 0x10, 0),
        bdf(1, 0x10, 2),
        bdf(1, 0x11, 6),
        bdf(2, 0, 1),
        bdf(2, 0, 4),
    ] {
        let unit = dmar
            .drhd_for_device(0, b, &bridges)
            .expect("valid")
            .map(|d| d.register_base());
        assert_eq!(unit, Some(0xfed9_0000), "{b}");
    }
    // Not listed: no unit (the table has no INCLUDE_PCI_ALL unit).
    for b in [bdf(0, 5, 0), bdf(0, 0x1f, 1), bdf(3, 0, 0), bdf(0xff, 0, 0)] {
        assert_eq!(
            dmar.drhd_for_device(0, b, &bridges).expect("valid"),
            None,
            "{b}"
        );
    }
    assert_eq!(
        dmar.drhd_for_device(1, bdf(0, 4, 0), &bridges)
            .expect("valid"),
        None,
        "segment 1"
    );
    // The IOAPIC's interrupt source-id is ff:00.0.
    let (unit, sid) = dmar
        .drhd_for_ioapic(0, &bridges)
        .expect("valid")
        .expect("listed");
    assert_eq!((unit, sid), (d, bdf(0xff, 0, 0)));
    assert_eq!(dmar.drhd_for_ioapic(1, &bridges).expect("valid"), None);
    assert_eq!(dmar.drhd_for_hpet(0, &bridges).expect("valid"), None);
    // Without the bridge accessor knowing the root ports, their buses are not covered.
    let none = FakeBridges::default();
    assert_eq!(
        dmar.drhd_for_device(0, bdf(1, 0, 0), &none).expect("valid"),
        None
    );
    assert!(
        dmar.drhd_for_device(0, bdf(0, 4, 0), &none)
            .expect("valid")
            .is_some()
    );
}

/// A DMAR captured from a real boot (`acpidump`-style raw table) may be dropped in by a colleague.
#[test]
fn real_capture_from_a_qemu_boot() -> Result<(), DmarError> {
    // Captured from the kernel's `DMAR bytes:` debug line in a QEMU 10 q35 + OVMF boot.
    let bytes = include_bytes!("data/qemu-q35.bin");
    assert_eq!(
        &bytes[..],
        &q35_bytes()[..],
        "the capture and the hand-built table differ"
    );
    let dmar = Dmar::parse(bytes)?;
    assert_q35_semantics(&dmar);
    assert_eq!(dmar.header().length as usize, 136);
    let bridges = FakeBridges::q35();
    let vf: Bdf = bdf(1, 0x10, 2);
    assert!(dmar.drhd_for_device(0, vf, &bridges)?.is_some());
    Ok(())
}
