//! The platform commands: `pci`, `iommu`, `irq`. This build has no PCI enumeration, no VT-d
//! driver and no interrupt remapping: each command says so, and shows what the firmware's tables
//! (read at boot and kept) tell about the hardware it would drive.

use super::say;
use crate::platform::Platform;

/// `pci`: the PCI tree.
pub fn pci(platform: &Platform) {
    say!(
        "pci: unavailable on this build: it does not enumerate PCI (no device tree, no SR-IOV, no owners)"
    );
    if platform.ecam.is_empty() {
        say!("  the firmware describes no ECAM region (no MCFG)");
    }
    for e in &platform.ecam {
        say!(
            "  firmware: ECAM at {:#x}, segment {}, buses {}-{}",
            e.base,
            e.segment,
            e.bus_start,
            e.bus_end
        );
    }
}

/// `iommu`: the VT-d units, domains and faults.
pub fn iommu(platform: &Platform) {
    say!(
        "iommu: unavailable on this build: it has no VT-d driver (no units programmed, no domains, no fault records)"
    );
    let Some(table) = platform.dmar else {
        say!("  firmware: no DMAR table: this machine reports no IOMMU");
        return;
    };
    let dmar = match conduit_dmar::Dmar::parse(table) {
        Ok(d) => d,
        Err(e) => {
            say!("  firmware: the DMAR table is malformed: {e}");
            return;
        }
    };
    say!(
        "  firmware: DMAR of {} bytes, host address width {}, flags {:#x}; DMA remapping is off",
        table.len(),
        dmar.host_address_width(),
        dmar.flags().0
    );
    for unit in dmar.drhds() {
        say!(
            "  firmware: DRHD unit at {:#x} (segment {}, {} KiB of registers, {}, {} device scope(s)); not driven",
            unit.register_base(),
            unit.segment(),
            unit.register_set_size() / 1024,
            if unit.include_pci_all() {
                "INCLUDE_PCI_ALL"
            } else {
                "explicit scopes"
            },
            unit.scopes().count()
        );
    }
}

/// `irq`: vectors and interrupt remapping.
pub fn irq(platform: &Platform) {
    say!(
        "irq: interrupt remapping is not enabled on this build (no IRTEs); the hypervisor runs with interrupts off and uses vectors 0-31 (exceptions) only"
    );
    for a in &platform.io_apics {
        say!(
            "  firmware: IOAPIC id {} at {:#x}, GSI base {} (not programmed)",
            a.id,
            a.address,
            a.gsi_base
        );
    }
}
