//! The IOMMU as diagnostics see it (the debug shell's `iommu` and `pci`): the units, the domains
//! and the latest DMA faults, read from the live state under its lock.

use super::{DomainId, STATE};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::vtd::fault::Fault;
use conduit_pci::PciAddress;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// One remapping unit as diagnostics see it, read under the lock.
#[derive(Debug, Clone, Copy)]
pub struct UnitView {
    pub base: u64,
    pub cap: conduit_vtd::Cap,
    pub ecap: conduit_vtd::Ecap,
    /// The Global Status register, read now.
    pub global_status: u32,
    pub root_table: u64,
    /// Invalidations go through the queue (else the registers).
    pub queued_invalidation: bool,
}

/// One domain as diagnostics see it.
#[derive(Debug, Clone)]
pub struct DomainView {
    pub id: DomainId,
    pub name: String,
    /// Its mappings in words (`domain 1 "a": IOVA ... -> HPA ...`).
    pub description: String,
    pub devices: Vec<PciAddress>,
}

/// The IOMMU now: whether remapping is on, the units, the domains.
#[derive(Debug, Clone)]
pub struct View {
    /// Why remapping is off (`None`: it is on).
    pub disabled: Option<String>,
    pub units: Vec<UnitView>,
    /// Units that could not be brought up (register base, why): their devices are not remapped.
    pub failed: Vec<(u64, String)>,
    pub domains: Vec<DomainView>,
}

/// The IOMMU's state, read now; `None` before [`init`].
pub fn view() -> Option<View> {
    let guard = STATE.lock();
    let s = guard.as_ref()?;
    Some(View {
        disabled: s.disabled.clone(),
        units: s
            .units
            .iter()
            .map(|u| UnitView {
                base: u.phys(),
                cap: u.cap(),
                ecap: u.ecap(),
                global_status: u.global_status(),
                root_table: u.root_table(),
                queued_invalidation: u.queued_invalidation(),
            })
            .collect(),
        failed: s
            .failed
            .iter()
            .map(|f| (f.base, f.reason.clone()))
            .collect(),
        domains: s
            .domains
            .iter()
            .map(|d| DomainView {
                id: d.id,
                name: d.name.clone(),
                description: d.describe(),
                devices: d.devices.clone(),
            })
            .collect(),
    })
}

/// How many decoded faults [`recent_faults`] keeps.
pub const RECENT_FAULTS: usize = 16;

/// The latest faults [`service_faults`] handled, oldest first.
static RECENT: Mutex<VecDeque<Fault>> = Mutex::new(VecDeque::new());

/// The last [`RECENT_FAULTS`] DMA faults, oldest first (after servicing the pending ones), and how
/// many were handled since boot.
pub fn recent_faults() -> (Vec<Fault>, u64) {
    let _ = super::service_faults();
    let recent = RECENT.lock();
    (
        recent.iter().copied().collect(),
        FAULTS_SEEN.load(Ordering::Relaxed),
    )
}

static FAULTS_SEEN: AtomicU64 = AtomicU64::new(0);

/// Faults per source function since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceFaults {
    /// Blocked DMA requests (reasons below 0x20).
    pub dma: u64,
    /// Blocked interrupt requests (interrupt-remapping reasons 0x20-0x27).
    pub interrupt: u64,
}

static BY_SOURCE: Mutex<Vec<(PciAddress, SourceFaults)>> = Mutex::new(Vec::new());

/// The faults recorded with `at` as their requester since boot (the pending ones serviced first,
/// so they count too).
#[cfg(feature = "selftest")]
pub fn faults_from(at: PciAddress) -> SourceFaults {
    let _ = super::service_faults();
    BY_SOURCE
        .lock()
        .iter()
        .find(|(b, _)| *b == at)
        .map_or_else(SourceFaults::default, |(_, n)| *n)
}

/// Keeps `faults` (just serviced) among the recent ones and counts them per source.
pub(super) fn remember(faults: &[Fault]) {
    if faults.is_empty() {
        return;
    }
    {
        let mut by_source = BY_SOURCE.lock();
        for f in faults {
            let source = PciAddress::new(f.segment, f.source);
            let at = match by_source.iter().position(|(b, _)| *b == source) {
                Some(i) => i,
                None => {
                    by_source.push((source, SourceFaults::default()));
                    by_source.len() - 1
                }
            };
            let n = &mut by_source[at].1;
            if f.interrupt_index.is_some() {
                n.interrupt += 1;
            } else {
                n.dma += 1;
            }
        }
    }
    let mut recent = RECENT.lock();
    for f in faults {
        if recent.len() == RECENT_FAULTS {
            recent.pop_front();
        }
        recent.push_back(*f);
    }
    FAULTS_SEEN.fetch_add(faults.len() as u64, Ordering::Relaxed);
}
