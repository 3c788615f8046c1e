//! RMRRs in the layout of real machines' DMAR tables, and the identity-domain plan.
//!
//! The bytes are written from the structure definitions of the VT-d spec ch. 8: DRHD (type 0:
//! flags, size, segment, register base, scopes §8.3), RMRR (type 1: 2 reserved bytes, segment,
//! base, limit, scopes §8.4), device scopes (§8.3.1: type, length, 2 reserved, enumeration ID,
//! start bus, path of (device, function)).

mod support;

use conduit_dmar::{Action, Dmar, PlanEntry, Reserved, Use, identity_plan};
use support::{FakeBridges, Table, bdf, drhd_body, scope};

const ENDPOINT: u8 = 1;
const BRIDGE: u8 = 2;
const IOAPIC: u8 = 3;
const HPET: u8 = 4;

fn rmrr_body(segment: u16, base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&segment.to_le_bytes());
    v.extend_from_slice(&base.to_le_bytes());
    v.extend_from_slice(&limit.to_le_bytes());
    for s in scopes {
        v.extend_from_slice(s);
    }
    v
}

/// A desktop/laptop client platform: the graphics unit (DRHD for the iGPU 00:02.0 only) and the
/// INCLUDE_PCI_ALL unit with the I/O APIC and HPET scopes; RMRRs for the xHCI 00:14.0 and the
/// iGPU's stolen memory (flags INTR_REMAP | X2APIC_OPT_OUT).
fn client() -> Vec<u8> {
    let mut t = Table::new(38, 0x03);
    t.structure(
        0,
        &drhd_body(0, 0, 0, 0xfed9_0000, &[scope(ENDPOINT, 0, 0, &[(2, 0)])]),
    );
    t.structure(
        0,
        &drhd_body(
            1,
            0,
            0,
            0xfed9_1000,
            &[
                scope(IOAPIC, 2, 0xf0, &[(0x1f, 0)]),
                scope(HPET, 0, 0x00, &[(0x1f, 0)]),
            ],
        ),
    );
    t.structure(
        1,
        &rmrr_body(
            0,
            0x7b80_0000,
            0x7b9f_ffff,
            &[scope(ENDPOINT, 0, 0, &[(0x14, 0)])],
        ),
    );
    t.structure(
        1,
        &rmrr_body(
            0,
            0x7c00_0000,
            0x7fff_ffff,
            &[scope(ENDPOINT, 0, 0, &[(2, 0)])],
        ),
    );
    t.finish()
}

/// A two-socket server: one DRHD per I/O stack (root port scopes on buses 0x16 and 0x64), the
/// INCLUDE_PCI_ALL unit for the legacy stack on bus 0 last; RMRRs for the xHCI 00:14.0 (two
/// regions) and for the BMC's VGA 03:00.0 behind the root port 00:1c.0.
fn server() -> Vec<u8> {
    let mut t = Table::new(45, 0x01);
    t.structure(
        0,
        &drhd_body(0, 0, 0, 0xaaff_c000, &[scope(BRIDGE, 0, 0x16, &[(0, 0)])]),
    );
    t.structure(
        0,
        &drhd_body(0, 0, 0, 0xb87f_c000, &[scope(BRIDGE, 0, 0x64, &[(0, 0)])]),
    );
    t.structure(
        0,
        &drhd_body(1, 0, 0, 0xc5ff_c000, &[scope(IOAPIC, 8, 0, &[(0x1f, 0)])]),
    );
    t.structure(
        1,
        &rmrr_body(
            0,
            0x6f2e_0000,
            0x6f2f_ffff,
            &[scope(ENDPOINT, 0, 0, &[(0x14, 0)])],
        ),
    );
    t.structure(
        1,
        &rmrr_body(
            0,
            0x6f7c_0000,
            0x6f7c_ffff,
            &[
                scope(ENDPOINT, 0, 0, &[(0x14, 0)]),
                scope(ENDPOINT, 0, 0, &[(0x1c, 0), (0, 0)]),
            ],
        ),
    );
    t.finish()
}

fn server_bridges() -> FakeBridges {
    let mut b = FakeBridges::default();
    b.0.insert(bdf(0x16, 0, 0), (0x17, 0x17));
    b.0.insert(bdf(0x64, 0, 0), (0x65, 0x66));
    b.0.insert(bdf(0, 0x1c, 0), (3, 3));
    b
}

fn plan(
    dmar: &Dmar<'_>,
    bridges: &FakeBridges,
    devices: &[(conduit_dmar::Bdf, Use)],
) -> Vec<PlanEntry> {
    let mut v = Vec::new();
    identity_plan(dmar, 0, bridges, devices, |e| v.push(e)).expect("plan");
    v
}

fn r(base: u64, limit: u64) -> Reserved {
    Reserved { base, limit }
}

#[test]
fn client_layout_parses_with_its_flags_and_units() {
    let bytes = client();
    let dmar = Dmar::parse(&bytes).expect("valid");
    assert!(dmar.flags().intr_remap() && dmar.flags().x2apic_opt_out());
    let units: Vec<(u64, bool)> = dmar
        .drhds()
        .map(|d| (d.register_base(), d.include_pci_all()))
        .collect();
    assert_eq!(units, [(0xfed9_0000, false), (0xfed9_1000, true)]);
    let none = FakeBridges::default();
    let gfx = dmar.drhd_for_device(0, bdf(0, 2, 0), &none).expect("ok");
    assert_eq!(gfx.map(|d| d.register_base()), Some(0xfed9_0000));
    let usb = dmar.drhd_for_device(0, bdf(0, 0x14, 0), &none).expect("ok");
    assert_eq!(usb.map(|d| d.register_base()), Some(0xfed9_1000));
}

#[test]
fn client_kept_usb_and_igpu_get_exactly_their_ranges() {
    let bytes = client();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let devices = [
        (bdf(0, 2, 0), Use::Kept),
        (bdf(0, 0x14, 0), Use::Kept),
        (bdf(0, 0x1f, 3), Use::Kept),
        (bdf(1, 0, 0), Use::Assigned),
    ];
    let p = plan(&dmar, &FakeBridges::default(), &devices);
    assert_eq!(
        p,
        [
            PlanEntry {
                device: bdf(0, 2, 0),
                range: r(0x7c00_0000, 0x7fff_ffff),
                action: Action::Identity
            },
            PlanEntry {
                device: bdf(0, 0x14, 0),
                range: r(0x7b80_0000, 0x7b9f_ffff),
                action: Action::Identity
            },
        ]
    );
    assert_eq!(p[1].range.bytes(), 0x20_0000);
}

#[test]
fn client_assigning_the_usb_controller_is_refused() {
    let bytes = client();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let p = plan(
        &dmar,
        &FakeBridges::default(),
        &[(bdf(0, 0x14, 0), Use::Assigned), (bdf(0, 2, 0), Use::Kept)],
    );
    assert_eq!(p[0].action, Action::Refused);
    assert_eq!(p[0].range, r(0x7b80_0000, 0x7b9f_ffff));
    assert_eq!(p[1].action, Action::Identity);
}

#[test]
fn server_layout_units_and_ranges_behind_bridges() {
    let bytes = server();
    let dmar = Dmar::parse(&bytes).expect("valid");
    assert!(dmar.flags().intr_remap() && !dmar.flags().x2apic_opt_out());
    let b = server_bridges();
    let unit = |d| {
        dmar.drhd_for_device(0, d, &b)
            .expect("ok")
            .map(|u| u.register_base())
    };
    assert_eq!(unit(bdf(0x17, 0, 0)), Some(0xaaff_c000));
    assert_eq!(unit(bdf(0x66, 0, 1)), Some(0xb87f_c000));
    assert_eq!(unit(bdf(0, 0x14, 0)), Some(0xc5ff_c000), "INCLUDE_PCI_ALL");
    assert_eq!(unit(bdf(3, 0, 0)), Some(0xc5ff_c000));

    let p = plan(
        &dmar,
        &b,
        &[
            (bdf(0, 0x14, 0), Use::Kept),
            (bdf(3, 0, 0), Use::Kept),
            (bdf(0x17, 0, 0), Use::Assigned),
        ],
    );
    assert_eq!(
        p,
        [
            PlanEntry {
                device: bdf(0, 0x14, 0),
                range: r(0x6f2e_0000, 0x6f2f_ffff),
                action: Action::Identity
            },
            PlanEntry {
                device: bdf(0, 0x14, 0),
                range: r(0x6f7c_0000, 0x6f7c_ffff),
                action: Action::Identity
            },
            PlanEntry {
                device: bdf(3, 0, 0),
                range: r(0x6f7c_0000, 0x6f7c_ffff),
                action: Action::Identity
            },
        ],
        "the assigned NIC on bus 0x17 has no RMRR: nothing planned, nothing refused"
    );
}

/// A DMAR (host address width field 38) with one INCLUDE_PCI_ALL unit and one RMRR per range
/// (base, limit), each naming the USB controller 00:14.0.
fn usb_rmrrs(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut t = Table::new(38, 0x01);
    t.structure(0, &drhd_body(1, 0, 0, 0xfed9_1000, &[]));
    for &(base, limit) in ranges {
        t.structure(
            1,
            &rmrr_body(0, base, limit, &[scope(ENDPOINT, 0, 0, &[(0x14, 0)])]),
        );
    }
    t.finish()
}

#[test]
fn a_malformed_rmrr_is_flagged_not_mapped() {
    let bytes = usb_rmrrs(&[(0x7b80_0800, 0x7b80_0fff), (0x7c00_0000, 0x7bff_ffff)]);
    let dmar = Dmar::parse(&bytes).expect("valid");
    let p = plan(
        &dmar,
        &FakeBridges::default(),
        &[(bdf(0, 0x14, 0), Use::Kept)],
    );
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|e| e.action == Action::Malformed));
}

/// Regression (found while fuzzing the plan): an RMRR covering the whole 64-bit space passed
/// `well_formed` (aligned, not empty, not wrapping) and was planned as an identity mapping, but
/// its length, 2^64 bytes, does not fit `bytes()` (`u64::MAX - 0 + 1` overflowed: a panic with
/// overflow checks, a zero-length mapping without). It is malformed, and `bytes()` of any range
/// never overflows.
#[test]
fn an_rmrr_of_the_whole_address_space_is_malformed() {
    let whole = r(0, u64::MAX);
    assert!(!whole.well_formed());
    let bytes = usb_rmrrs(&[(0, u64::MAX)]);
    let dmar = Dmar::parse(&bytes).expect("valid");
    let p = plan(
        &dmar,
        &FakeBridges::default(),
        &[(bdf(0, 0x14, 0), Use::Kept)],
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].action, Action::Malformed);
    // The largest range that is well formed: everything but the first page.
    let most = r(0x1000, u64::MAX);
    assert!(most.well_formed());
    assert_eq!(most.bytes(), u64::MAX - 0xfff);
    assert_eq!(
        r(0x2000, 0x0fff).bytes(),
        0,
        "a reversed range has no bytes"
    );
}

/// An RMRR whose limit lies above the DMAR's host address width (HAW field 38: 39 bits, DMA
/// reaches 0x7f_ffff_ffff at most) cannot be mapped by any remapping structure: it is refused
/// with the width, for kept and assigned devices alike, while a range ending exactly at the last
/// reachable byte is still identity-mapped.
#[test]
fn an_rmrr_above_the_host_address_width_is_refused() {
    let bytes = usb_rmrrs(&[
        (0x7f_ffff_0000, 0x7f_ffff_ffff),
        (0x7f_ffff_f000, 0x80_0000_0fff),
    ]);
    let dmar = Dmar::parse(&bytes).expect("valid");
    assert_eq!(dmar.host_address_width(), 39);
    for usage in [Use::Kept, Use::Assigned] {
        let p = plan(&dmar, &FakeBridges::default(), &[(bdf(0, 0x14, 0), usage)]);
        assert_eq!(p.len(), 2);
        let expected_first = match usage {
            Use::Kept => Action::Identity,
            Use::Assigned => Action::Refused,
        };
        assert_eq!(p[0].action, expected_first);
        assert_eq!(p[1].action, Action::AboveHostWidth { width: 39 });
        assert_eq!(p[1].range, r(0x7f_ffff_f000, 0x80_0000_0fff));
    }
    assert_eq!(Reserved::highest_below(39), 0x7f_ffff_ffff);
    assert_eq!(Reserved::highest_below(64), u64::MAX);
    assert!(r(0, u64::MAX - 0xfff).below_width(64));
    assert!(!r(0, 0x80_0000_0fff).below_width(39));
}
