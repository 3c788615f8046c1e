//! DRHDs and RMRRs on two PCI segments (VT-d spec §8.3: a DRHD's scopes and INCLUDE_PCI_ALL
//! apply within its Segment Number; §8.4: an RMRR's scopes within its own). Bus numbers repeat
//! from segment to segment, so each lookup is given the segment and that segment's bridges.

mod support;

use conduit_dmar::{Action, Dmar, PlanEntry, Reserved, Use, identity_plan};
use support::{FakeBridges, Table, bdf, drhd_body, scope};

const ENDPOINT: u8 = 1;
const BRIDGE: u8 = 2;
const IOAPIC: u8 = 3;
const INCLUDE_PCI_ALL: u8 = 1;

/// A two-segment server: segment 0 has a unit for the endpoint 00:02.0 and an INCLUDE_PCI_ALL
/// unit (with the I/O APIC); segment 1 has a unit for the root port 00:03.0 (bus 01 behind it)
/// and its own INCLUDE_PCI_ALL unit; an RMRR names 01:00.0 on segment 1 only.
fn two_segments() -> Vec<u8> {
    let mut t = Table::new(46, 0x01);
    t.structure(
        0,
        &drhd_body(0, 0, 0, 0xfed9_0000, &[scope(ENDPOINT, 0, 0, &[(2, 0)])]),
    );
    t.structure(
        0,
        &drhd_body(
            INCLUDE_PCI_ALL,
            0,
            0,
            0xfed9_1000,
            &[scope(IOAPIC, 8, 0xf0, &[(0x1f, 0)])],
        ),
    );
    t.structure(
        0,
        &drhd_body(0, 0, 1, 0xfed9_2000, &[scope(BRIDGE, 0, 0, &[(3, 0)])]),
    );
    t.structure(0, &drhd_body(INCLUDE_PCI_ALL, 0, 1, 0xfed9_3000, &[]));
    let mut rmrr = vec![0, 0];
    rmrr.extend_from_slice(&1u16.to_le_bytes());
    rmrr.extend_from_slice(&0x7a00_0000u64.to_le_bytes());
    rmrr.extend_from_slice(&0x7a0f_ffffu64.to_le_bytes());
    rmrr.extend_from_slice(&scope(ENDPOINT, 0, 1, &[(0, 0)]));
    t.structure(1, &rmrr);
    t.finish()
}

/// Segment 0: no bridges. Segment 1: root port 00:03.0 forwards bus 01.
fn bridges() -> (FakeBridges, FakeBridges) {
    let mut one = FakeBridges::default();
    one.0.insert(bdf(0, 3, 0), (1, 1));
    (FakeBridges::default(), one)
}

#[test]
fn each_function_is_translated_by_a_unit_of_its_own_segment() {
    let bytes = two_segments();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let (seg0, seg1) = bridges();
    let unit = |segment: u16, b, bridges: &FakeBridges| {
        dmar.drhd_for_device(segment, b, bridges)
            .expect("table reads")
            .map(|d| (d.segment(), d.register_base()))
    };
    assert_eq!(unit(0, bdf(0, 2, 0), &seg0), Some((0, 0xfed9_0000)));
    assert_eq!(unit(0, bdf(1, 0, 0), &seg0), Some((0, 0xfed9_1000)));
    // The same numbers on segment 1: the root port's unit covers it and what is behind it.
    assert_eq!(unit(1, bdf(0, 3, 0), &seg1), Some((1, 0xfed9_2000)));
    assert_eq!(unit(1, bdf(1, 0, 0), &seg1), Some((1, 0xfed9_2000)));
    // 00:02.0 of segment 1 is not the endpoint segment 0's first unit names.
    assert_eq!(unit(1, bdf(0, 2, 0), &seg1), Some((1, 0xfed9_3000)));
    assert_eq!(unit(1, bdf(5, 0, 0), &seg1), Some((1, 0xfed9_3000)));
    // A segment without a DRHD is not translated at all.
    assert_eq!(unit(2, bdf(0, 2, 0), &seg0), None);
}

#[test]
fn rmrrs_apply_on_their_segment_only() {
    let bytes = two_segments();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let (seg0, seg1) = bridges();
    let devices = [(bdf(1, 0, 0), Use::Assigned)];
    let mut on0 = Vec::new();
    identity_plan(&dmar, 0, &seg0, &devices, |e| on0.push(e)).expect("table reads");
    assert_eq!(on0, []);
    let mut on1 = Vec::new();
    identity_plan(&dmar, 1, &seg1, &devices, |e| on1.push(e)).expect("table reads");
    assert_eq!(
        on1,
        [PlanEntry {
            device: bdf(1, 0, 0),
            range: Reserved {
                base: 0x7a00_0000,
                limit: 0x7a0f_ffff
            },
            action: Action::Refused
        }]
    );
}

#[test]
fn the_io_apic_source_id_comes_with_its_unit() {
    let bytes = two_segments();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let (seg0, _) = bridges();
    let (unit, sid) = dmar
        .drhd_for_ioapic(8, &seg0)
        .expect("table reads")
        .expect("listed");
    assert_eq!(
        (unit.segment(), unit.register_base(), sid),
        (0, 0xfed9_1000, bdf(0xf0, 0x1f, 0))
    );
}

#[test]
fn an_io_apic_on_segment_1_is_resolved_through_that_segments_bridges() {
    // Segment 1's unit lists an I/OxAPIC behind its root port 00:03.0 (path 00:03.0 -> 00.0):
    // only segment 1's bridges put it on bus 01.
    let mut t = Table::new(46, 0x01);
    t.structure(
        0,
        &drhd_body(
            INCLUDE_PCI_ALL,
            0,
            1,
            0xfed9_3000,
            &[scope(IOAPIC, 9, 0, &[(3, 0), (0, 0)])],
        ),
    );
    let bytes = t.finish();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let (seg0, seg1) = bridges();
    let (unit, scope) = dmar.ioapic_scope(9).expect("table reads").expect("listed");
    assert_eq!(unit.segment(), 1);
    assert_eq!(scope.resolve(&seg1), Ok(bdf(1, 0, 0)));
    assert!(
        scope.resolve(&seg0).is_err(),
        "no bridge at 00:03.0 on segment 0"
    );
    assert_eq!(dmar.ioapic_scope(8).expect("table reads"), None);
}
