//! Servicing VT-d faults: every DMA and interrupt-remapping fault recorded since the last call
//! is decoded, counted per requester ([`super::view`]) and logged, with the per-source log limit
//! and the report of fault-interrupt storms (`conduit_vtd::limit`). Requester IDs are read in the
//! recording unit's PCI segment (VT-d spec §8.3).

use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::vtd::fault::{self, Fault};
use conduit_pci::PciAddress;
use conduit_vtd::limit::{FaultLimiter, Verdict};
use log::error;
use spin::Mutex;

/// Faults of one source logged one by one per tick; further faults of that source within the
/// tick are counted and summarised (like the device-interrupt flood limit, per source per tick).
pub const FAULT_LOG_LIMIT: u32 = 8;

/// The per-source fault limiter (tracks 32 sources per tick).
static LIMITER: Mutex<FaultLimiter<32>> = Mutex::new(FaultLimiter::new(FAULT_LOG_LIMIT));

/// Decodes, logs and clears every DMA and interrupt-remapping fault recorded since the last call,
/// and returns them. Every fault is counted (per requester, see [`view`]); beyond
/// [`FAULT_LOG_LIMIT`] per source per tick they are summarised instead of logged one by one.
pub fn service_faults() -> Vec<Fault> {
    let found = fault::take();
    super::view::remember(&found.faults);
    let tick = crate::irq::dispatch::ticks();
    let mut limiter = LIMITER.lock();
    for f in &found.faults {
        // Requester IDs are numbers within the recording unit's segment.
        let source = PciAddress::new(f.segment, f.source);
        if limiter.admit(tick, source) == Verdict::Count {
            continue;
        }
        let via = match f.via {
            fault::Via::Interrupt => "the fault event interrupt",
            fault::Via::Poll => "polling the fault status",
        };
        if let Some(index) = f.interrupt_index {
            error!(
                "vtd: interrupt remapping fault on unit {:#x}: source {}, interrupt index {index} \
                 ({index:#x}), reason {:#04x}: {}; the interrupt was not delivered (reported by \
                 {via})",
                f.unit,
                source,
                f.reason,
                fault::reason_text(f.reason),
            );
            continue;
        }
        error!(
            "vtd: DMA fault on unit {:#x}: source {}, {} at IOVA {:#x}{}, reason {:#04x}: {} \
             (reported by {})",
            f.unit,
            source,
            if f.write { "write" } else { "read" },
            f.address,
            f.pasid
                .map_or_else(String::new, |p| alloc::format!(" (PASID {p:#x})")),
            f.reason,
            fault::reason_text(f.reason),
            via
        );
    }
    limiter.take_suppressed(|source, n| match source {
        Some(b) => error!(
            "vtd: fault storm from {b}: {n} further fault(s) counted, not logged (limit \
             {FAULT_LOG_LIMIT} per source per tick)"
        ),
        None => error!(
            "vtd: fault storm: {n} further fault(s) from untracked sources counted, not logged"
        ),
    });
    drop(limiter);
    if found.overflow {
        error!("vtd: primary fault overflow (FSTS.PFO): faults were lost");
    }
    if found.dropped != 0 {
        error!("vtd: {} fault(s) dropped: pending list full", found.dropped);
    }
    if found.masked != 0 {
        error!(
            "vtd: fault storm: the fault event interrupt was masked {} time(s) for the rest of a \
             tick (more than {} fault interrupts in one tick); the faults were recorded and \
             drained all the same",
            found.masked,
            fault::INTERRUPT_LIMIT
        );
    }
    found.faults
}
