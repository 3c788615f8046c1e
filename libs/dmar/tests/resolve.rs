//! Device-scope resolution: paths through bridges, bridge bus ranges, DRHD selection.

mod support;

use std::collections::BTreeMap;

use conduit_dmar::{
    Bdf, BridgeBus, Coverage, DeviceScope, Dmar, PciBridges, ResolveError, structure_type,
};
use conduit_pci::ConfigAccess;
use support::{FakeBridges, Table, bdf, drhd_body, q35_bytes, scope};

/// The scopes of the first DRHD of `bytes`, parsed.
fn scopes_of(bytes: &[u8]) -> Vec<DeviceScope<'_>> {
    let dmar = Dmar::parse(bytes).expect("valid");
    let d = dmar.drhds().next().expect("a DRHD");
    d.scopes().collect::<Result<_, _>>().expect("valid")
}

fn table_with_scopes(scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Table::new(0x2f, 1);
    t.structure(
        structure_type::DRHD,
        &drhd_body(0, 0, 0, 0xfed9_0000, scopes),
    );
    t.finish()
}

#[test]
fn q35_bridge_scopes_expand_to_buses_1_and_2() {
    let bytes = q35_bytes();
    let scopes = scopes_of(&bytes);
    let bridges = FakeBridges::q35();
    let rp0 = scopes[3].coverage(&bridges).expect("00:02.0");
    assert_eq!(
        rp0,
        Coverage {
            device: bdf(0, 2, 0),
            buses: Some(1..=1)
        }
    );
    let rp1 = scopes[4].coverage(&bridges).expect("00:03.0");
    assert_eq!(
        rp1,
        Coverage {
            device: bdf(0, 3, 0),
            buses: Some(2..=2)
        }
    );
    // igb PF, one of its VFs, nvme PF and VF.
    assert!(rp0.covers(bdf(1, 0, 0)));
    assert!(rp0.covers(bdf(1, 0x10, 2)));
    assert!(rp0.covers(bdf(0, 2, 0)), "the bridge itself");
    assert!(!rp0.covers(bdf(2, 0, 0)));
    assert!(rp1.covers(bdf(2, 0, 0)) && rp1.covers(bdf(2, 0, 1)));
    assert!(!rp1.covers(bdf(0, 3, 1)));
    // Endpoint scopes cover exactly their function.
    let edu = scopes[5].coverage(&bridges).expect("00:04.0");
    assert_eq!(
        edu,
        Coverage {
            device: bdf(0, 4, 0),
            buses: None
        }
    );
    assert!(edu.covers(bdf(0, 4, 0)) && !edu.covers(bdf(0, 4, 1)));
    assert!(scopes[1].covers_pci(&bridges, bdf(0, 0, 0)));
    // The IOAPIC scope resolves to its source-id but is not a PCI scope.
    assert_eq!(scopes[0].resolve(&bridges), Ok(bdf(0xff, 0, 0)));
    assert!(!scopes[0].covers_pci(&bridges, bdf(0xff, 0, 0)));
}

#[test]
fn bridge_scope_with_subordinate_buses() {
    let bytes = table_with_scopes(&[scope(2, 0, 0, &[(2, 0)])]);
    let scopes = scopes_of(&bytes);
    let mut bridges = FakeBridges::default();
    bridges.0.insert(bdf(0, 2, 0), (1, 4));
    let c = scopes[0].coverage(&bridges).expect("resolves");
    assert_eq!(c.buses, Some(1..=4));
    for bus in 1..=4 {
        assert!(c.covers(bdf(bus, 0x1f, 7)), "bus {bus}");
    }
    assert!(!c.covers(bdf(5, 0, 0)));
    // Absent bridge: the scope does not resolve and covers nothing.
    let none = FakeBridges::default();
    assert_eq!(
        scopes[0].coverage(&none),
        Err(ResolveError::NotABridge { bdf: bdf(0, 2, 0) })
    );
    assert!(!scopes[0].covers_pci(&none, bdf(1, 0, 0)));
}

#[test]
fn multi_element_paths_walk_through_bridges() {
    let bytes = table_with_scopes(&[
        scope(1, 0, 0, &[(2, 0), (0, 0)]),
        scope(1, 0, 0, &[(2, 0), (0, 0), (3, 1)]),
        scope(2, 0, 0, &[(3, 0), (0, 0)]),
        scope(1, 0, 0, &[(4, 0), (0, 0)]),
        scope(1, 0, 0, &[(0x20, 0)]),
        scope(1, 0, 0, &[(2, 0), (0, 9)]),
    ]);
    let s = scopes_of(&bytes);
    let mut bridges = FakeBridges::q35();
    bridges.0.insert(bdf(1, 0, 0), (5, 6)); // a switch behind root port 0
    bridges.0.insert(bdf(2, 0, 0), (7, 7));
    assert_eq!(s[0].resolve(&bridges), Ok(bdf(1, 0, 0)));
    assert_eq!(s[1].resolve(&bridges), Ok(bdf(5, 3, 1)));
    assert_eq!(
        s[2].coverage(&bridges),
        Ok(Coverage {
            device: bdf(2, 0, 0),
            buses: Some(7..=7)
        })
    );
    assert_eq!(
        s[3].resolve(&bridges),
        Err(ResolveError::NotABridge { bdf: bdf(0, 4, 0) })
    );
    assert_eq!(
        s[4].resolve(&bridges),
        Err(ResolveError::InvalidPathEntry {
            bus: 0,
            device: 0x20,
            function: 0
        })
    );
    assert_eq!(
        s[5].resolve(&bridges),
        Err(ResolveError::InvalidPathEntry {
            bus: 1,
            device: 0,
            function: 9
        })
    );
}

#[test]
fn explicit_scopes_win_over_include_pci_all() {
    let mut t = Table::new(0x2f, 1);
    // Unit A: explicit, edu and root port 1.
    t.structure(
        structure_type::DRHD,
        &drhd_body(
            0,
            0,
            0,
            0xa000_0000,
            &[scope(1, 0, 0, &[(4, 0)]), scope(2, 0, 0, &[(3, 0)])],
        ),
    );
    // Unit B: segment 1, explicit 00:04.0 as well.
    t.structure(
        structure_type::DRHD,
        &drhd_body(0, 0, 1, 0xb000_0000, &[scope(1, 0, 0, &[(4, 0)])]),
    );
    // Unit C: INCLUDE_PCI_ALL for segment 0 (last, as §8.3 requires), with the IOAPIC.
    t.structure(
        structure_type::DRHD,
        &drhd_body(1, 0, 0, 0xc000_0000, &[scope(3, 8, 0xf0, &[(0x1f, 0)])]),
    );
    let bytes = t.finish();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let bridges = FakeBridges::q35();
    let unit = |seg, b| {
        dmar.drhd_for_device(seg, b, &bridges)
            .expect("valid")
            .map(|d| d.register_base())
    };
    assert_eq!(unit(0, bdf(0, 4, 0)), Some(0xa000_0000));
    assert_eq!(
        unit(0, bdf(2, 0, 3)),
        Some(0xa000_0000),
        "behind root port 1"
    );
    assert_eq!(
        unit(0, bdf(1, 0x10, 2)),
        Some(0xc000_0000),
        "igb VF: include-all"
    );
    assert_eq!(unit(0, bdf(0, 0x1f, 3)), Some(0xc000_0000));
    assert_eq!(unit(1, bdf(0, 4, 0)), Some(0xb000_0000));
    assert_eq!(
        unit(1, bdf(0, 5, 0)),
        None,
        "segment 1 has no include-all unit"
    );
    assert_eq!(unit(2, bdf(0, 4, 0)), None);
    let (ioapic_unit, sid) = dmar
        .drhd_for_ioapic(8, &bridges)
        .expect("valid")
        .expect("listed");
    assert_eq!(
        (ioapic_unit.register_base(), sid),
        (0xc000_0000, bdf(0xf0, 0x1f, 0))
    );
}

#[test]
fn include_all_listed_first_still_loses_to_explicit_scopes() {
    let mut t = Table::new(0x2f, 1);
    t.structure(structure_type::DRHD, &drhd_body(1, 0, 0, 0xc000_0000, &[]));
    t.structure(
        structure_type::DRHD,
        &drhd_body(0, 0, 0, 0xa000_0000, &[scope(1, 0, 0, &[(4, 0)])]),
    );
    let bytes = t.finish();
    let dmar = Dmar::parse(&bytes).expect("valid");
    let b = FakeBridges::default();
    assert_eq!(
        dmar.drhd_for_device(0, bdf(0, 4, 0), &b)
            .expect("valid")
            .map(|d| d.register_base()),
        Some(0xa000_0000)
    );
    assert_eq!(
        dmar.drhd_for_device(0, bdf(0, 5, 0), &b)
            .expect("valid")
            .map(|d| d.register_base()),
        Some(0xc000_0000)
    );
}

#[test]
fn hpet_source_id() {
    let bytes = table_with_scopes(&[scope(4, 0, 0, &[(0x0f, 0)]), scope(4, 1, 0, &[(0x20, 0)])]);
    let dmar = Dmar::parse(&bytes).expect("valid");
    let b = FakeBridges::default();
    assert_eq!(
        dmar.drhd_for_hpet(0, &b)
            .expect("valid")
            .map(|(_, sid)| sid),
        Some(bdf(0, 0x0f, 0))
    );
    assert_eq!(
        dmar.drhd_for_hpet(1, &b).expect("valid"),
        None,
        "unresolvable path is skipped"
    );
}

/// A minimal config space with the two q35 root ports' Type 1 headers.
struct RootPortConfig(BTreeMap<Bdf, [u32; 8]>);

impl ConfigAccess for RootPortConfig {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.0
            .get(&bdf)
            .and_then(|d| d.get(usize::from(offset / 4)).copied())
            .unwrap_or(u32::MAX)
    }
    fn write32(&mut self, _bdf: Bdf, _offset: u16, _value: u32) {}
}

#[test]
fn pci_bridges_adapter_reads_type1_headers() {
    let rp = |sec: u32| {
        [
            0x000c_1b36,
            0x0010_0007,
            0x0604_0000,
            0x0001_0000,
            0,
            0,
            sec << 8 | sec << 16,
            0,
        ]
    };
    let mut m = BTreeMap::new();
    m.insert(bdf(0, 2, 0), rp(1));
    m.insert(bdf(0, 3, 0), rp(2));
    // An endpoint (header type 0) is not a bridge.
    m.insert(
        bdf(0, 4, 0),
        [0x11e8_1234, 0, 0x00ff_0000, 0, 0, 0, 0x0003_0300, 0],
    );
    let cfg = RootPortConfig(m);
    let bridges = PciBridges(&cfg);
    assert_eq!(
        (
            bridges.secondary_bus(bdf(0, 2, 0)),
            bridges.subordinate_bus(bdf(0, 2, 0))
        ),
        (Some(1), Some(1))
    );
    assert_eq!(bridges.secondary_bus(bdf(0, 3, 0)), Some(2));
    assert_eq!(bridges.secondary_bus(bdf(0, 4, 0)), None);
    assert_eq!(bridges.secondary_bus(bdf(0, 9, 0)), None);
    let bytes = q35_bytes();
    let dmar = Dmar::parse(&bytes).expect("valid");
    for vf in [bdf(1, 0x10, 0), bdf(1, 0x10, 2), bdf(2, 0, 1)] {
        let unit = dmar.drhd_for_device(0, vf, &bridges).expect("valid");
        assert_eq!(unit.map(|d| d.register_base()), Some(0xfed9_0000), "{vf}");
    }
}
