//! Every remapping structure type, parsed from a synthetic table.

mod support;

use conduit_dmar::{Dmar, DmarFlags, PathEntry, RemappingStructure, ScopeType, structure_type};
use support::{Table, drhd_body, scope};

fn rich_table() -> Vec<u8> {
    let mut t = Table::new(
        0x26,
        DmarFlags::INTR_REMAP | DmarFlags::X2APIC_OPT_OUT | DmarFlags::DMA_CTRL_PLATFORM_OPT_IN,
    );
    // DRHD, INCLUDE_PCI_ALL, size 2 (16 KiB), segment 1, with IOAPIC and HPET scopes.
    t.structure(
        structure_type::DRHD,
        &drhd_body(
            1,
            2,
            1,
            0xfed9_1000,
            &[
                scope(3, 2, 0xf0, &[(0x1f, 0)]),
                scope(4, 0, 0, &[(0x0f, 7)]),
            ],
        ),
    );
    // RMRR: segment 0, [0xe0000, 0xe3fff], for endpoint 00:14.0.
    t.u16(structure_type::RMRR).u16(32);
    t.u16(0)
        .u16(0)
        .u64(0xe_0000)
        .u64(0xe_3fff)
        .raw(&scope(1, 0, 0, &[(0x14, 0)]));
    // ATSR: ALL_PORTS, segment 0, no scopes; and one with a root-port scope.
    t.structure(structure_type::ATSR, &[1, 0, 0, 0]);
    let mut atsr = vec![0, 0, 2, 0];
    atsr.extend(scope(2, 0, 0, &[(0x1c, 0)]));
    t.structure(structure_type::ATSR, &atsr);
    // RHSA: base 0xfed91000, proximity domain 3.
    t.u16(structure_type::RHSA)
        .u16(20)
        .u32(0)
        .u64(0xfed9_1000)
        .u32(3);
    // ANDD: device number 1, "\_SB.PCI0.UAR1" NUL-terminated.
    let mut andd = vec![0, 0, 0, 1];
    andd.extend_from_slice(b"\\_SB.PCI0.UAR1\0");
    t.structure(structure_type::ANDD, &andd);
    // ANDD without the terminating NUL.
    let mut andd2 = vec![0, 0, 0, 2];
    andd2.extend_from_slice(b"\\_SB.I2C0");
    t.structure(structure_type::ANDD, &andd2);
    // SATC: ATC_REQUIRED, segment 0, one endpoint.
    let mut satc = vec![1, 0, 0, 0];
    satc.extend(scope(1, 0, 0, &[(0x0a, 0)]));
    t.structure(structure_type::SATC, &satc);
    // SIDP: segment 0, one endpoint scope with flags byte 0x01.
    let mut sidp = vec![0, 0, 0, 0];
    let mut s = scope(1, 0, 0, &[(0x0b, 0)]);
    s[2] = 0x01;
    sidp.extend(s);
    t.structure(structure_type::SIDP, &sidp);
    // An ACPI-namespace scope with a two-element path in a DRHD of segment 0.
    t.structure(
        structure_type::DRHD,
        &drhd_body(
            0,
            0,
            0,
            0xfed9_0000,
            &[scope(5, 1, 0, &[(0x1e, 0), (0, 2)])],
        ),
    );
    t.finish()
}

#[test]
fn every_structure_type() {
    let bytes = rich_table();
    let dmar = Dmar::parse(&bytes).expect("valid");
    assert_eq!(dmar.host_address_width(), 39);
    let f = dmar.flags();
    assert!(f.intr_remap() && f.x2apic_opt_out() && f.dma_ctrl_platform_opt_in());
    assert_eq!(
        format!("{f:?}"),
        "DmarFlags(0x07 INTR_REMAP X2APIC_OPT_OUT DMA_CTRL_PLATFORM_OPT_IN)"
    );

    let s: Vec<RemappingStructure<'_>> =
        dmar.structures().collect::<Result<_, _>>().expect("valid");
    assert_eq!(s.len(), 10);

    let RemappingStructure::Drhd(d) = s[0] else {
        panic!("{:?}", s[0])
    };
    assert!(d.include_pci_all());
    assert_eq!((d.size_field(), d.register_set_size()), (2, 16 << 10));
    assert_eq!((d.segment(), d.register_base()), (1, 0xfed9_1000));
    let sc: Vec<_> = d.scopes().collect::<Result<_, _>>().expect("valid");
    assert_eq!(sc.len(), 2);
    assert_eq!(
        (
            sc[0].scope_type(),
            sc[0].enumeration_id(),
            sc[0].start_bus()
        ),
        (ScopeType::IoApic, 2, 0xf0)
    );
    assert_eq!(
        (sc[1].scope_type(), sc[1].path().next()),
        (
            ScopeType::Hpet,
            Some(PathEntry {
                device: 0x0f,
                function: 7
            })
        )
    );

    let RemappingStructure::Rmrr(r) = s[1] else {
        panic!("{:?}", s[1])
    };
    assert_eq!((r.segment(), r.base(), r.limit()), (0, 0xe_0000, 0xe_3fff));
    assert_eq!(r.limit() - r.base() + 1, 16 << 10);
    let rs: Vec<_> = r.scopes().collect::<Result<_, _>>().expect("valid");
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].path().collect::<Vec<_>>(),
        [PathEntry {
            device: 0x14,
            function: 0
        }]
    );

    let RemappingStructure::Atsr(a) = s[2] else {
        panic!("{:?}", s[2])
    };
    assert!(a.all_ports());
    assert_eq!((a.segment(), a.scopes().count()), (0, 0));
    let RemappingStructure::Atsr(a2) = s[3] else {
        panic!("{:?}", s[3])
    };
    assert!(!a2.all_ports());
    assert_eq!(a2.segment(), 2);
    assert_eq!(
        a2.scopes()
            .next()
            .and_then(Result::ok)
            .map(|x| x.scope_type()),
        Some(ScopeType::Bridge)
    );

    let RemappingStructure::Rhsa(h) = s[4] else {
        panic!("{:?}", s[4])
    };
    assert_eq!((h.register_base(), h.proximity_domain()), (0xfed9_1000, 3));
    assert_eq!(s[4].scopes().count(), 0);

    let RemappingStructure::Andd(n) = s[5] else {
        panic!("{:?}", s[5])
    };
    assert_eq!(
        (n.acpi_device_number(), n.object_name()),
        (1, &b"\\_SB.PCI0.UAR1"[..])
    );
    let RemappingStructure::Andd(n2) = s[6] else {
        panic!("{:?}", s[6])
    };
    assert_eq!(
        (n2.acpi_device_number(), n2.object_name()),
        (2, &b"\\_SB.I2C0"[..])
    );

    let RemappingStructure::Satc(c) = s[7] else {
        panic!("{:?}", s[7])
    };
    assert!(c.atc_required());
    assert_eq!((c.segment(), c.scopes().count()), (0, 1));

    let RemappingStructure::Sidp(p) = s[8] else {
        panic!("{:?}", s[8])
    };
    assert_eq!(p.segment(), 0);
    assert_eq!(
        p.scopes().next().and_then(Result::ok).map(|x| x.flags()),
        Some(0x01)
    );

    let RemappingStructure::Drhd(d2) = s[9] else {
        panic!("{:?}", s[9])
    };
    let ns = d2.scopes().next().and_then(Result::ok).expect("scope");
    assert_eq!(
        (ns.scope_type(), ns.enumeration_id(), ns.path_len()),
        (ScopeType::AcpiNamespace, 1, 2)
    );
    assert_eq!(
        dmar.drhds().map(|d| d.register_base()).collect::<Vec<_>>(),
        [0xfed9_1000, 0xfed9_0000]
    );
}

#[test]
fn scope_type_codes() {
    for t in 0..=255u8 {
        assert_eq!(ScopeType::from_u8(t).as_u8(), t);
    }
    assert_eq!(ScopeType::from_u8(0), ScopeType::Unknown(0));
    assert_eq!(ScopeType::from_u8(6), ScopeType::Unknown(6));
    assert_eq!(ScopeType::from_u8(2), ScopeType::Bridge);
}
