//! The platform commands: `pci` (the enumerated tree, SR-IOV read live from each PF, owners from
//! the IOMMU domains), `iommu` (units, domains, recent DMA faults), `irq` (vectors, interrupt
//! remapping, delivery counts).

use super::say;
use crate::guest::Guests;
use crate::iommu::{self, View};
use crate::pci::{self, Function, report};
use crate::platform::Platform;
use alloc::string::String;
use conduit_hw::apic::{self, vectors};
use conduit_hw::vtd::fault::{Via, reason_text};
use conduit_hw::vtd::regs::global;
use conduit_pci::PciAddress;
use conduit_pci::sriov::SriovCap;
use core::fmt::Write as _;

/// PCIe extended capability ID of SR-IOV.
const EXT_CAP_SRIOV: u16 = 0x10;
/// Faults `iommu` shows.
const FAULTS_SHOWN: usize = 8;

/// Who owns `at`: the guest whose IOMMU domain holds it, or a guest it was assigned to without
/// one (`unsafe_no_iommu`), else the hypervisor.
fn owner(view: Option<&View>, guests: &Guests, at: PciAddress) -> String {
    if let Some(d) = view.and_then(|v| v.domains.iter().find(|d| d.devices.contains(&at))) {
        return alloc::format!("guest \"{}\" (domain {})", d.name, d.id);
    }
    let assigned = guests.list.iter().find(|g| g.devices.contains(&at));
    match assigned {
        Some(g) => alloc::format!("guest \"{}\" (no IOMMU domain: unprotected)", g.name),
        None => String::from("hypervisor"),
    }
}

/// `pci`: the tree found at boot, with SR-IOV PFs, their VFs and the owner of every function.
pub fn pci(platform: &Platform, guests: &Guests) {
    let Some(pci) = pci::get() else {
        say!("pci: unavailable: PCI enumeration did not run");
        return;
    };
    let view = iommu::view();
    let how = match platform.ecam.first() {
        Some(e) => alloc::format!("ECAM at {:#x}", e.base),
        None => String::from("port I/O 0xcf8/0xcfc (no MCFG)"),
    };
    let vfs = pci.functions().iter().filter(|f| f.vf.is_some()).count();
    say!(
        "pci: {} function(s) ({vfs} of them SR-IOV VFs), enumerated at boot through {how}; owners from the IOMMU domains",
        pci.functions().len()
    );
    // VFs are listed under their PF.
    for f in pci.functions().iter().filter(|f| f.vf.is_none()) {
        function(pci, f, view.as_ref(), guests);
    }
}

fn function(pci: &pci::Pci, f: &Function, view: Option<&View>, guests: &Guests) {
    let indent = "  ".repeat(usize::from(f.depth) + 1);
    let mut line = alloc::format!(
        "{indent}{} {:04x}:{:04x} {}",
        f.address(),
        f.vendor_id(),
        f.device_id(),
        report::class_name(f.header.class)
    );
    if let Some(range) = f.bridge.and_then(|b| b.range()) {
        let _ = write!(line, ", buses {:02x}-{:02x}", range.start(), range.end());
    }
    say!("{line}; owner: {}", owner(view, guests, f.address()));
    let Some(offset) = f
        .ext_caps
        .iter()
        .find(|c| c.id == EXT_CAP_SRIOV)
        .map(|c| c.offset)
    else {
        return;
    };
    // Read now: NumVFs and VF Enable change when VFs are set up.
    let cap = pci.with_segment(f.segment, |cfg| SriovCap::read(&*cfg, f.bdf, offset));
    let cap = match cap {
        Ok(c) => c,
        Err(e) => {
            say!("{indent}  SR-IOV PF: capability at {offset:#x} unreadable: {e}");
            return;
        }
    };
    say!(
        "{indent}  SR-IOV PF: TotalVFs {}, NumVFs {}, VF Enable {}, VF device {:04x}:{:04x}, first VF offset {:#x}, stride {}",
        cap.total_vfs,
        cap.num_vfs,
        if cap.vf_enabled() { "on" } else { "off" },
        f.vendor_id(),
        cap.vf_device_id,
        cap.first_vf_offset,
        cap.vf_stride
    );
    if !cap.vf_enabled() || cap.num_vfs == 0 {
        say!("{indent}    no VF enabled");
        return;
    }
    let vfs = match cap.vfs() {
        Ok(v) => v,
        Err(e) => {
            say!("{indent}    VFs: {e}");
            return;
        }
    };
    for (i, vf) in vfs.enumerate() {
        // A VF's own vendor/device registers read 0xffff (PCIe Base 6.0, 9.3.4.1.1): its identity
        // is the one enumeration recorded from the PF (vendor) and the SR-IOV capability (device).
        let vf = PciAddress::new(f.segment, vf);
        let state = match pci.function_at(vf) {
            Some(v) => alloc::format!("{:04x}:{:04x}", v.vendor_id(), v.device_id()),
            None => String::from("not enumerated"),
        };
        say!(
            "{indent}    VF {i} {vf} {state}; owner: {}",
            owner(view, guests, vf)
        );
    }
}

/// `iommu`: the remapping units with CAP/ECAP, the domains with their functions, the latest
/// DMA faults decoded.
pub fn iommu(platform: &Platform) {
    let Some(view) = iommu::view() else {
        say!("iommu: unavailable: the IOMMU was not initialised");
        return;
    };
    match &view.disabled {
        None => say!(
            "iommu: DMA remapping on: {} unit(s), {} domain(s)",
            view.units.len(),
            view.domains.len()
        ),
        Some(why) => {
            say!("iommu: DMA remapping off: {why}");
            if let Some(table) = platform.dmar {
                say!("  firmware: DMAR table of {} bytes", table.len());
            }
        }
    }
    for u in &view.units {
        let gsts = u.global_status;
        say!(
            "  unit {:#x}: CAP {:#018x}, ECAP {:#018x}; translation {}, interrupt remapping {}, {} invalidation; root table {:#x}",
            u.base,
            u.cap.0,
            u.ecap.0,
            if gsts & global::TE != 0 { "on" } else { "off" },
            if gsts & global::IRE != 0 { "on" } else { "off" },
            if u.queued_invalidation {
                "queued"
            } else {
                "register-based"
            },
            u.root_table
        );
        say!("    CAP: {}", u.cap);
        say!("    ECAP: {}", u.ecap);
    }
    for (base, why) in &view.failed {
        say!("  unit {base:#x}: failed ({why}): its devices are not remapped");
    }
    for d in &view.domains {
        let mut devices = String::new();
        for b in &d.devices {
            let sep = if devices.is_empty() { "" } else { ", " };
            let _ = write!(devices, "{sep}{b}");
        }
        if devices.is_empty() {
            devices.push_str("none");
        }
        say!("  {}; functions: {devices}", d.description);
    }
    let (faults, total) = iommu::recent_faults();
    if faults.is_empty() {
        say!("  faults: none recorded since boot");
        return;
    }
    let shown = faults.len().min(FAULTS_SHOWN);
    say!("  faults: {total} since boot; the last {shown}:");
    for f in &faults[faults.len() - shown..] {
        say!(
            "    unit {:#x}: source {}, {} at IOVA {:#x}, reason {:#04x}: {} (by {})",
            f.unit,
            PciAddress::new(f.segment, f.source),
            if f.write { "write" } else { "read" },
            f.address,
            f.reason,
            reason_text(f.reason),
            match f.via {
                Via::Interrupt => "interrupt",
                Via::Poll => "polling",
            }
        );
    }
}

/// `irq`: the vectors in use with their owners and delivery counts, and interrupt remapping.
pub fn irq(platform: &Platform) {
    let units = iommu::view().map(|v| v.units).unwrap_or_default();
    let remapping = units.iter().any(|u| u.global_status & global::IRE != 0);
    if remapping {
        say!("irq: interrupt remapping is on");
    } else {
        let supported = units.iter().filter(|u| u.ecap.ir()).count();
        say!(
            "irq: interrupt remapping is not enabled: no IRTE is allocated ({supported} of {} unit(s) support it)",
            units.len()
        );
    }
    let if_flag = x86_64::instructions::interrupts::are_enabled();
    say!(
        "  {}; host interrupts {}",
        apic::describe(),
        if if_flag {
            "enabled"
        } else {
            "disabled (events are polled between time slices)"
        }
    );
    say!(
        "  vectors 0x00-0x1f: CPU exceptions, owner hypervisor (fatal: decoded, then the run ends)"
    );
    let vtd_units: alloc::vec::Vec<String> = units
        .iter()
        .map(|u| alloc::format!("{:#x}", u.base))
        .collect();
    let vtd_owner = if vtd_units.is_empty() {
        String::from("no unit programmed")
    } else {
        alloc::format!("unit(s) {}", vtd_units.join(", "))
    };
    say!(
        "  vector {:#04x}: VT-d fault event ({vtd_owner}), owner hypervisor; delivered {} time(s)",
        vectors::VTD_FAULT,
        apic::deliveries(vectors::VTD_FAULT)
    );
    say!(
        "  vector {:#04x}: local APIC spurious interrupt, owner hypervisor; delivered {} time(s)",
        vectors::SPURIOUS,
        apic::deliveries(vectors::SPURIOUS)
    );
    // Every vector the interrupt dispatcher has bound: its owner, the IRTE behind it, the guest's
    // own vector, and what was delivered or suppressed by the flood guard since it was bound.
    let mut bound = 0;
    for v in 0x20..=0xfe_u8 {
        let Some(b) = crate::irq::dispatch::binding(v) else {
            continue;
        };
        bound += 1;
        let irte = b.index.map_or_else(
            || String::from("local source"),
            |i| alloc::format!("IRTE {i}"),
        );
        let virt = b
            .virtual_vector
            .map_or_else(String::new, |g| alloc::format!(", guest vector {g:#04x}"));
        say!(
            "  vector {v:#04x}: {irte}, owner {}{virt}; delivered {}, suppressed {}",
            b.owner,
            crate::irq::dispatch::delivered(v),
            crate::irq::dispatch::suppressed(v)
        );
    }
    if bound == 0 {
        say!("  no device vector is bound");
    }
    say!(
        "  vector {:#04x}: hypervisor tick (local APIC timer), owner hypervisor; {} tick(s)",
        vectors::TICK,
        crate::irq::dispatch::ticks()
    );
    for a in &platform.io_apics {
        say!(
            "  IOAPIC id {} at {:#x}, GSI base {}: every input masked at boot; routes are programmed on demand in remappable format",
            a.id,
            a.address,
            a.gsi_base
        );
    }
}
