//! From the DMAR table to this machine: which unit translates which function, what the bridge
//! scopes expand to, and reserved memory regions (VT-d spec §8.3, §8.3.1, §8.4).

use crate::pci::{Pci, report};
use alloc::string::String;
use conduit_dmar::{Dmar, PciBridges, RemappingStructure, ScopeType};
use conduit_pci::PciAddress;
use core::fmt::Write;
use log::{info, warn};

fn function_label(pci: &Pci, at: PciAddress) -> String {
    match pci.function_at(at) {
        Some(f) => alloc::format!(
            "{at} {:04x}:{:04x} ({})",
            f.vendor_id(),
            f.device_id(),
            report::class_name(f.header.class)
        ),
        None => alloc::format!("{at} (absent)"),
    }
}

/// The PCI segment a structure's scopes apply to (VT-d spec §8.3, §8.4, §8.5: DRHD, RMRR and
/// ATSR carry a Segment Number; the others are read on segment 0).
fn segment_of(s: &RemappingStructure<'_>) -> u16 {
    match s {
        RemappingStructure::Drhd(d) => d.segment(),
        RemappingStructure::Rmrr(r) => r.segment(),
        RemappingStructure::Atsr(a) => a.segment(),
        _ => 0,
    }
}

/// Logs every remapping structure, with each device scope resolved on this machine (through the
/// bridges of the structure's segment) and bridge scopes expanded to the functions on the buses
/// behind the bridge.
pub fn log_structures(dmar: &Dmar<'_>, pci: &Pci) {
    let h = dmar.header();
    info!(
        "DMAR: host address width {}, flags {:?}, OEM {:?}",
        dmar.host_address_width(),
        dmar.flags(),
        core::str::from_utf8(&h.oem_id).unwrap_or("?")
    );
    for s in dmar.structures().map_while(Result::ok) {
        let segment = segment_of(&s);
        let at = |bdf| PciAddress::new(segment, bdf);
        pci.with_segment(segment, |cfg| {
            let bridges = PciBridges(&*cfg);
            match s {
                RemappingStructure::Drhd(d) => info!(
                    "DMAR: DRHD: unit at {:#x}, segment {}, flags {:#x} (INCLUDE_PCI_ALL {})",
                    d.register_base(),
                    d.segment(),
                    d.flags(),
                    if d.include_pci_all() {
                        "set"
                    } else {
                        "not set"
                    }
                ),
                RemappingStructure::Rmrr(r) => warn!(
                    "DMAR: RMRR {:#x}-{:#x}: devices in its scope keep it identity-mapped while \
                     the hypervisor keeps them; Conduit refuses to assign them",
                    r.base(),
                    r.limit()
                ),
                RemappingStructure::Atsr(_) => info!("DMAR: ATSR (ATS-capable root ports)"),
                RemappingStructure::Rhsa(_) => info!("DMAR: RHSA (unit proximity)"),
                other => info!("DMAR: structure {other:?} (not used)"),
            }
            for scope in s.scopes().map_while(Result::ok) {
                let resolved = scope.coverage(&bridges);
                match (scope.scope_type(), resolved) {
                    (ScopeType::Endpoint, Ok(c)) => {
                        info!("DMAR:   endpoint {}", function_label(pci, at(c.device)));
                    }
                    (ScopeType::Bridge, Ok(c)) => {
                        let (first, last) =
                            c.buses.as_ref().map_or((0, 0), |r| (*r.start(), *r.end()));
                        let mut behind = String::new();
                        for f in pci.on_buses(segment, first, last) {
                            let _ = write!(
                                behind,
                                "{}{} {:04x}:{:04x}",
                                if behind.is_empty() { "" } else { ", " },
                                f.address(),
                                f.vendor_id(),
                                f.device_id()
                            );
                        }
                        if behind.is_empty() {
                            behind.push_str("no function enumerated");
                        }
                        info!(
                            "DMAR:   bridge {} covers buses {first:02x}-{last:02x}: {behind}",
                            function_label(pci, at(c.device))
                        );
                    }
                    (ScopeType::IoApic, Ok(c)) => info!(
                        "DMAR:   I/OxAPIC id {}, source-id {}",
                        scope.enumeration_id(),
                        at(c.device)
                    ),
                    (ScopeType::Hpet, Ok(c)) => info!(
                        "DMAR:   HPET {}, source-id {}",
                        scope.enumeration_id(),
                        at(c.device)
                    ),
                    (t, Ok(c)) => info!("DMAR:   scope {t:?} -> {}", at(c.device)),
                    (t, Err(e)) => warn!("DMAR:   scope {t:?} does not resolve here: {e}"),
                }
            }
        });
    }
}

/// The register base of the unit translating `at` (a DRHD of its segment), if any.
pub fn unit_for(
    dmar: &Dmar<'_>,
    pci: &Pci,
    at: PciAddress,
) -> Result<Option<u64>, conduit_dmar::DmarError> {
    pci.with_segment(at.segment, |cfg| {
        let bridges = PciBridges(&*cfg);
        Ok(dmar
            .drhd_for_device(at.segment, at.bdf, &bridges)?
            .map(|d| d.register_base()))
    })
}
