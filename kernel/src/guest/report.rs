//! Per-guest counters for the log: the interrupts delivered to each guest (`irq::dispatch`
//! counts a delivery through an IRTE the guest owns, with its own vector pending) and the faults
//! its functions caused, DMA and interrupt remapping apart (`iommu::faults_from`, counted by the
//! requester ID the remapping unit recorded; VT-d spec §7.2.1 "Primary Fault Logging"). A
//! guest's fault counts are the sums over the functions assigned to it now.

use super::boot;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_irq::GuestId;
use conduit_pci::PciAddress;
use log::info;

/// One guest's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub name: String,
    pub interrupts: u64,
    pub dma_faults: u64,
    pub interrupt_faults: u64,
    pub functions: Vec<PciAddress>,
}

/// The counters of every placed guest, in configuration order.
pub fn counters() -> Vec<Counters> {
    boot::placed()
        .into_iter()
        .map(|g| {
            let (dma_faults, interrupt_faults) = g.devices.iter().fold((0, 0), |(d, i), b| {
                let n = crate::iommu::faults_from(*b);
                (d + n.dma, i + n.interrupt)
            });
            Counters {
                interrupts: crate::irq::guest_interrupts(GuestId(g.index)),
                name: g.name,
                dma_faults,
                interrupt_faults,
                functions: g.devices,
            }
        })
        .collect()
}

/// Logs one line per guest: `guest "a": interrupts 17, DMA faults 0, interrupt-remapping faults
/// 1 (functions 01:10.0)`.
pub fn log_counters() {
    for c in counters() {
        let functions: Vec<String> = c.functions.iter().map(|b| alloc::format!("{b}")).collect();
        info!(
            "guest \"{}\": interrupts {}, DMA faults {}, interrupt-remapping faults {} (functions \
             {})",
            c.name,
            c.interrupts,
            c.dma_faults,
            c.interrupt_faults,
            if functions.is_empty() {
                String::from("none")
            } else {
                functions.join(", ")
            }
        );
    }
}
