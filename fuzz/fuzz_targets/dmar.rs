//! Fuzz target: parse arbitrary bytes as a DMAR table and touch everything a consumer could.
//! Any panic (index out of bounds, overflow in debug builds, infinite loop caught by the
//! fuzzer's timeout) is a bug; typed errors are expected.
#![no_main]

use conduit_dmar::{
    Action, Bdf, BridgeBus, Dmar, ParseOptions, RemappingStructure, Use, identity_plan,
};
use libfuzzer_sys::fuzz_target;

/// Bridges whose bus numbers are a deterministic function of the BDF, so multi-element paths and
/// bridge ranges get exercised (including inconsistent ones: subordinate below secondary).
struct HashBridges;

impl BridgeBus for HashBridges {
    fn secondary_bus(&self, bridge: Bdf) -> Option<u8> {
        let rid = bridge.routing_id();
        (!rid.is_multiple_of(3)).then_some((rid as u8).wrapping_mul(7).wrapping_add(1))
    }
    fn subordinate_bus(&self, bridge: Bdf) -> Option<u8> {
        let rid = bridge.routing_id();
        (!rid.is_multiple_of(5)).then_some((rid >> 3) as u8)
    }
}

fn walk(dmar: &Dmar<'_>) {
    let _ = (dmar.header(), dmar.host_address_width(), dmar.flags());
    let table_len = dmar.bytes().len();
    for s in dmar.structures() {
        let Ok(s) = s else { return };
        match s {
            RemappingStructure::Drhd(d) => {
                let _ = (
                    d.flags(),
                    d.include_pci_all(),
                    d.register_set_size(),
                    d.segment(),
                    d.register_base(),
                );
                assert!(d.offset() + d.bytes().len() <= table_len);
            }
            RemappingStructure::Rmrr(r) => {
                let _ = (r.segment(), r.base(), r.limit());
            }
            RemappingStructure::Atsr(a) => {
                let _ = (a.all_ports(), a.segment());
            }
            RemappingStructure::Rhsa(h) => {
                let _ = (h.register_base(), h.proximity_domain());
            }
            RemappingStructure::Andd(n) => {
                let _ = (n.acpi_device_number(), n.object_name().len());
            }
            RemappingStructure::Satc(c) => {
                let _ = (c.atc_required(), c.segment());
            }
            RemappingStructure::Sidp(p) => {
                let _ = p.segment();
            }
            RemappingStructure::Unknown { bytes, .. } => {
                assert!(bytes.len() >= 4);
            }
        }
        for scope in s.scopes() {
            let Ok(scope) = scope else { return };
            let _ = (
                scope.scope_type(),
                scope.flags(),
                scope.enumeration_id(),
                scope.start_bus(),
            );
            assert_eq!(scope.path().count(), scope.path_len());
            if let Ok(c) = scope.coverage(&HashBridges) {
                let _ = c.covers(c.device);
            }
        }
    }
    for rid in [0x0000u16, 0x0010, 0x0100, 0x0182, 0x0201, 0xff00, 0xffff] {
        let _ = dmar.drhd_for_device(0, Bdf::from_routing_id(rid), &HashBridges);
    }
    let _ = dmar.drhd_for_ioapic(0, &HashBridges);
    let _ = dmar.drhd_for_hpet(0, &HashBridges);
    plan(dmar);
}

/// The RMRR plan for a few devices, kept and assigned: a range is identity-mapped or refused
/// only if it is well formed, and then its length is exactly `limit - base + 1` (what the
/// kernel maps); an assigned device with a reserved range is never identity-mapped.
fn plan(dmar: &Dmar<'_>) {
    let devices: Vec<(Bdf, Use)> = [0x00a0u16, 0x0010, 0x0100, 0x0182]
        .into_iter()
        .flat_map(|rid| {
            let bdf = Bdf::from_routing_id(rid);
            [(bdf, Use::Kept), (bdf, Use::Assigned)]
        })
        .collect();
    let result = identity_plan(dmar, 0, &HashBridges, &devices, |e| {
        let usage = devices
            .iter()
            .find(|(d, _)| *d == e.device)
            .map(|(_, u)| *u);
        match e.action {
            Action::Identity | Action::Refused => {
                assert!(e.range.well_formed(), "{e:?}");
                let width = dmar.host_address_width();
                assert!(e.range.below_width(width), "{e:?}: above {width} bits");
                let len = u128::from(e.range.limit) - u128::from(e.range.base) + 1;
                assert_eq!(u128::from(e.range.bytes()), len, "{e:?}: length");
                assert!(e.range.base.is_multiple_of(4096) && len.is_multiple_of(4096));
            }
            Action::Malformed => assert!(!e.range.well_formed()),
            Action::AboveHostWidth { width } => {
                assert_eq!(width, dmar.host_address_width());
                assert!(
                    e.range.well_formed() && !e.range.below_width(width),
                    "{e:?}"
                );
            }
        }
        assert!(usage.is_some(), "a plan entry for a device not asked about");
    });
    if let Err(e) = result {
        assert!(
            dmar.structures().any(|s| s.is_err()),
            "plan failed on a valid table: {e:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(dmar) = Dmar::parse(data) {
        assert!(dmar.validate().is_ok(), "parse validated the framing");
        walk(&dmar);
    }
    if let Ok(dmar) = Dmar::parse_with(
        data,
        ParseOptions {
            verify_checksum: false,
        },
    ) {
        walk(&dmar);
    }
});
