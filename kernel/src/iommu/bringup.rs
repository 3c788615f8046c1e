//! Bringing DMA remapping up from the DMAR table, unit by unit, as Linux's intel-iommu does:
//! each unit is taken over from firmware (`conduit_vtd::takeover`: pending faults and FSTS error
//! bits cleared, firmware's translation / interrupt remapping / queued invalidation turned off),
//! given an empty root table; interrupt remapping follows the DMAR's flags (VT-d spec §8.1:
//! INTR_REMAP, X2APIC_OPT_OUT); devices with RMRRs (§8.4) get identity domains; translation is
//! enabled unit by unit and only then the protected memory regions are disabled (§10.4.16).
//!
//! A unit that fails is left off and named with the reason; the others stay consistent (their
//! tables are valid), and only the devices the failed unit translates lose DMA remapping.
//! Remapping is off machine-wide only when no unit came up.

use super::domain::Domain;
use super::{DomainId, GuestMemory, State, dmar, intremap};
use crate::pci::Pci;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_dmar::{Action, Dmar, PciBridges, PlanEntry, Use};
use conduit_hw::apic;
use conduit_hw::memory::{Frames, Memory};
use conduit_hw::vtd::RemappingUnit;
use conduit_pci::{Bdf, PciAddress};
use conduit_vtd::takeover::Pmr;
use log::{error, info, warn};

/// A unit that could not be brought up: its register base and why.
#[derive(Debug, Clone)]
pub struct FailedUnit {
    pub base: u64,
    pub reason: String,
}

/// [`super::init`]; `register_only`: use register-based invalidation on every unit.
pub(super) fn bring_up(mem: &'static Memory, dmar: Option<&[u8]>, register_only: bool) {
    let Some(bytes) = dmar else {
        let reason = String::from("the firmware reports no DMAR table");
        return super::disable_with(mem, reason, log::Level::Warn);
    };
    let table = match Dmar::parse(bytes) {
        Ok(t) => t,
        Err(e) => {
            error!("DMAR: malformed table refused: {e}");
            return super::disable(mem, alloc::format!("malformed DMAR: {e}"));
        }
    };
    let Some(pci) = crate::pci::get() else {
        return super::disable(mem, String::from("PCI enumeration did not run"));
    };
    dmar::log_structures(&table, pci);
    let flags = table.flags();
    let haw = table.host_address_width().clamp(32, 52) as u8;
    let mut units = Vec::new();
    let mut failed = Vec::new();
    for drhd in table.drhds() {
        let base = drhd.register_base();
        // Context tables for the buses of the unit's own segment (VT-d spec §8.3).
        let mut buses: Vec<u8> = pci
            .functions()
            .iter()
            .filter(|f| f.segment == drhd.segment())
            .map(|f| f.bdf.bus())
            .collect();
        buses.sort_unstable();
        buses.dedup();
        match RemappingUnit::new(mem, base, haw, register_only, drhd.segment(), &buses) {
            Ok(u) => units.push(u),
            Err(e) => {
                error!(
                    "iommu: unit at {base:#x} failed to come up: {e}; it is left off and the \
                     devices it translates are not remapped"
                );
                failed.push(FailedUnit {
                    base,
                    reason: alloc::format!("{e}"),
                });
            }
        }
    }
    if units.is_empty() {
        let reason = match failed.first() {
            Some(f) => alloc::format!("unit at {:#x} failed: {}", f.base, f.reason),
            None => String::from("the DMAR lists no remapping unit"),
        };
        return super::disable(mem, reason);
    }
    let (apic_id, ir) = intremap::bring_up(mem, &mut units, register_only, flags);
    match apic_id {
        Ok(apic_id) => {
            for u in &units {
                if let Err(e) = u.enable_fault_interrupt(apic_id, apic::vectors::VTD_FAULT) {
                    warn!(
                        "vtd: unit {:#x}: fault event interrupt not enabled: {e}; its faults are \
                         found by polling the fault status only",
                        u.phys()
                    );
                }
            }
        }
        Err(e) => warn!("iommu: {e}: DMA faults are found by polling the fault status only"),
    }
    let mut domains = Vec::new();
    let mut next_did = 1;
    identity_domains(mem, &table, pci, &mut units, &mut domains, &mut next_did);
    enable_translation(mem, &mut units, &mut domains, &mut failed);
    if units.is_empty() {
        return super::disable(mem, String::from("every remapping unit failed"));
    }
    report_failed(&table, pci, &failed);
    let _ = super::service_faults();
    *super::STATE.lock() = Some(State {
        mem,
        disabled: None,
        dmar: bytes.to_vec(),
        units,
        failed,
        domains,
        next_did,
        ir: ir.tables,
        ir_off: ir.off,
    });
}

/// Enables translation on one unit after the other; a unit that fails is turned off again and
/// dropped (its table removed from every domain), then each translating unit's PMRs are
/// disabled.
fn enable_translation(
    mem: &'static Memory,
    units: &mut Vec<RemappingUnit>,
    domains: &mut [Domain],
    failed: &mut Vec<FailedUnit>,
) {
    let mut i = 0;
    while i < units.len() {
        let u = &mut units[i];
        let Err(e) = u.enable_translation() else {
            i += 1;
            continue;
        };
        let base = u.phys();
        let mut off = match u.disable_translation() {
            Ok(()) => String::from("translation is off again"),
            Err(e) => alloc::format!("turning translation off again failed too: {e}"),
        };
        // The shared interrupt remapping table's entries are invalidated only on the units kept,
        // so a dropped unit must not keep using it.
        if u.global_status() & conduit_hw::vtd::regs::global::IRE != 0 {
            match u.disable_interrupt_remapping() {
                Ok(()) => off.push_str(", interrupt remapping off"),
                Err(e) => off.push_str(&alloc::format!(
                    ", interrupt remapping could not be turned off: {e}"
                )),
            }
        }
        error!(
            "iommu: unit at {base:#x}: enabling translation failed: {e}; {off}; the devices it \
             translates are not remapped"
        );
        failed.push(FailedUnit {
            base,
            reason: alloc::format!("enabling translation: {e}"),
        });
        units.remove(i);
        let mut frames = Frames::new(mem);
        for d in domains.iter_mut() {
            d.tables.remove(i).destroy(&mut frames);
        }
    }
    for u in units.iter_mut() {
        match u.disable_pmr() {
            Ok(Pmr::Absent) => {}
            Ok(Pmr::Off) => info!(
                "vtd: unit {:#x}: protected memory regions not enabled by firmware",
                u.phys()
            ),
            Ok(Pmr::Disabled { low, high }) => info!(
                "vtd: unit {:#x}: protected memory regions disabled now that translation is on \
                 (low {:#x}-{:#x}, high {:#x}-{:#x})",
                u.phys(),
                low.0,
                low.1,
                high.0,
                high.1
            ),
            Err(e) => error!(
                "vtd: unit {:#x}: {e}: DMA to the protected regions stays blocked",
                u.phys()
            ),
        }
    }
}

/// Logs, per device, that DMA remapping is off because its unit failed.
fn report_failed(table: &Dmar<'_>, pci: &Pci, failed: &[FailedUnit]) {
    for f in pci.functions() {
        let Ok(Some(base)) = dmar::unit_for(table, pci, f.address()) else {
            continue;
        };
        if let Some(unit) = failed.iter().find(|u| u.base == base) {
            warn!(
                "iommu: {}: DMA remapping off (unit {base:#x} failed: {}); it cannot be assigned",
                f.address(),
                unit.reason
            );
        }
    }
}

/// The RMRR plan for `devices` of `segment` on this machine (RMRRs of that segment, read
/// through its bridges), or why the RMRRs could not be read.
pub(super) fn rmrr_plan(
    table: &Dmar<'_>,
    pci: &Pci,
    segment: u16,
    devices: &[(Bdf, Use)],
) -> Result<Vec<PlanEntry>, conduit_dmar::DmarError> {
    let mut plan = Vec::new();
    pci.with_segment(segment, |cfg| {
        conduit_dmar::identity_plan(table, segment, &PciBridges(&*cfg), devices, |e| {
            plan.push(e);
        })
    })?;
    Ok(plan)
}

/// Every function the hypervisor keeps (all of them, at boot) that has RMRRs gets an identity
/// domain mapping exactly those ranges, attached on its unit before translation is enabled.
fn identity_domains(
    mem: &'static Memory,
    table: &Dmar<'_>,
    pci: &Pci,
    units: &mut [RemappingUnit],
    domains: &mut Vec<Domain>,
    next_did: &mut u16,
) {
    let mut segments: Vec<u16> = pci.functions().iter().map(|f| f.segment).collect();
    segments.sort_unstable();
    segments.dedup();
    let mut plan: Vec<(PciAddress, PlanEntry)> = Vec::new();
    for segment in segments {
        let kept: Vec<(Bdf, Use)> = pci
            .functions()
            .iter()
            .filter(|f| f.segment == segment)
            .map(|f| (f.bdf, Use::Kept))
            .collect();
        match rmrr_plan(table, pci, segment, &kept) {
            Ok(p) => plan.extend(
                p.into_iter()
                    .map(|e| (PciAddress::new(segment, e.device), e)),
            ),
            Err(e) => error!("DMAR: RMRRs of segment {segment} not read: {e}"),
        }
    }
    // A device named by several RMRRs appears once per RMRR, not always next to itself: sort
    // first, so that it gets one identity domain holding all of its ranges.
    let mut devices: Vec<PciAddress> = plan.iter().map(|(at, _)| *at).collect();
    devices.sort_unstable();
    devices.dedup();
    for bdf in devices {
        let mut ranges = Vec::new();
        for (_, e) in plan.iter().filter(|(at, _)| *at == bdf) {
            match e.action {
                Action::Identity => ranges.push(GuestMemory {
                    gpa: e.range.base,
                    hpa: e.range.base,
                    len: e.range.bytes(),
                }),
                Action::Malformed | Action::Refused => error!(
                    "iommu: {bdf}: RMRR {:#x}-{:#x} is malformed (misaligned or empty): not \
                     mapped",
                    e.range.base, e.range.limit
                ),
                Action::AboveHostWidth { width } => error!(
                    "iommu: {bdf}: RMRR {:#x}-{:#x} lies above the DMAR's host address width \
                     ({width} bits: DMA reaches {:#x} at most): refused, not mapped",
                    e.range.base,
                    e.range.limit,
                    conduit_dmar::Reserved::highest_below(width)
                ),
            }
        }
        if ranges.is_empty() {
            continue;
        }
        if let Err(e) = identity_domain(mem, table, pci, units, domains, next_did, bdf, &ranges) {
            error!(
                "iommu: {bdf}: no identity domain for its RMRRs ({e}): its firmware-driven DMA \
                 will fault"
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn identity_domain(
    mem: &'static Memory,
    table: &Dmar<'_>,
    pci: &Pci,
    units: &mut [RemappingUnit],
    domains: &mut Vec<Domain>,
    next_did: &mut u16,
    bdf: PciAddress,
    ranges: &[GuestMemory],
) -> Result<(), String> {
    let base = dmar::unit_for(table, pci, bdf)
        .map_err(|e| alloc::format!("DMAR: {e}"))?
        .ok_or_else(|| String::from("no remapping unit translates it"))?;
    let index = units
        .iter()
        .position(|u| u.phys() == base)
        .ok_or_else(|| alloc::format!("its unit {base:#x} is not up"))?;
    let limit = units.iter().map(|u| u.cap().domains()).min().unwrap_or(1);
    if u32::from(*next_did) >= limit {
        return Err(String::from("no domain ID left"));
    }
    let id = DomainId(*next_did);
    let name = alloc::format!("identity {bdf}");
    let mut frames = Frames::new(mem);
    let mut domain = Domain::new(id, &name, ranges, &[], units, &mut frames)
        .map_err(|e| alloc::format!("{e}"))?;
    let root = domain.tables[index].root();
    if let Err(e) = units[index].attach(&mut frames, bdf.bdf, id.0, root) {
        let freed = domain.destroy(&mut frames);
        return Err(alloc::format!(
            "attach on unit {base:#x}: {e} ({freed} frame(s) freed)"
        ));
    }
    domain.devices.push(bdf);
    *next_did += 1;
    for r in ranges {
        info!(
            "iommu: {bdf} keeps RMRR {:#x}-{:#x} identity-mapped (domain {id})",
            r.hpa,
            r.hpa + r.len - 1
        );
    }
    domains.push(domain);
    Ok(())
}
