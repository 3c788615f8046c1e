//! A guest's MSI-X table writes become interrupt-remapping table entries routed to that guest.
//!
//! The guest programs its *virtual* MSI-X table (the control task's `conduit-vpci` table, reached
//! through the trapped table page); each change comes back as `MsixEntryChanged`. For an unmasked
//! entry the core checks the guest's message (a compatibility-format MSI to the local APICs:
//! address bits 31:20 = 0xFEE, upper address 0, delivery mode fixed or lowest priority, vector
//! 0x10-0xFF; Intel SDM Vol. 3A §11.11), then `irq::bind_msi` gives the entry a fresh host vector
//! and an IRTE owned by the guest that only this function may use (source-id verified), and
//! programs the physical table entry in remappable format (VT-d spec §5.1.2). A delivery is
//! counted for the guest with its own vector pending (`irq::dispatch`). Masking masks the
//! physical entry; a changed entry gets a new binding; a reset releases them. The physical MSI-X
//! Enable and Function Mask follow the guest's through the control task.
//!
//! Anything else a guest writes there (NMI, SMI, INIT delivery modes, a remappable-format
//! address, a vector below 0x10) is refused and the physical entry stays masked.

use crate::irq::{self, MsiKind};
use crate::memory::Memory;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_irq::{GuestId, Owner};
use conduit_pci::Bdf;
use log::{info, warn};
use spin::Mutex;

#[derive(Debug, Clone, Copy)]
struct Bound {
    guest: u16,
    bdf: Bdf,
    entry: u16,
    index: u16,
    vector: u8,
}

static BOUND: Mutex<Vec<Bound>> = Mutex::new(Vec::new());

/// An entry routed for a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// IRT index (the handle in the device's message).
    pub index: u16,
    /// Host vector the IRTE delivers.
    pub vector: u8,
    /// The guest's own vector (injected on delivery).
    pub guest_vector: u8,
}

/// Checks a guest's MSI message; returns its vector.
pub fn guest_vector(address: u64, data: u32) -> Result<u8, String> {
    if address >> 32 != 0 || (address >> 20) & 0xfff != 0xfee {
        return Err(format!(
            "address {address:#x} is not an MSI to the local APICs"
        ));
    }
    if address & (1 << 4) != 0 {
        return Err(String::from(
            "a remappable-format address is the hypervisor's",
        ));
    }
    let mode = (data >> 8) & 0x7;
    if mode > 1 {
        return Err(format!(
            "delivery mode {mode} (only fixed and lowest priority are routed)"
        ));
    }
    let vector = data as u8;
    if vector < 0x10 {
        return Err(format!("vector {vector:#x} is reserved"));
    }
    Ok(vector)
}

fn release(b: &Bound) {
    let owner = Owner::Guest(GuestId(b.guest));
    if let Err(e) = irq::release(owner, b.index, Some(b.vector)) {
        warn!("irq: releasing IRTE {} of guest {}: {e}", b.index, b.guest);
    }
}

/// What the guest wrote to one MSI-X table entry (`Event::MsixEntryChanged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryChange {
    pub entry: u16,
    pub address: u64,
    pub data: u32,
    pub masked: bool,
}

/// A guest (`guest`, called `name`) changed an MSI-X entry of its function `bdf`.
pub fn on_msix_entry(
    guest: u16,
    name: &str,
    mem: &Memory,
    bdf: Bdf,
    change: EntryChange,
) -> Option<Routed> {
    let EntryChange {
        entry,
        address,
        data,
        masked,
    } = change;
    let old = {
        let mut bound = BOUND.lock();
        let at = bound
            .iter()
            .position(|b| b.guest == guest && b.bdf == bdf && b.entry == entry);
        at.map(|i| bound.remove(i))
    };
    if masked {
        // Keep it quiet on the device; the guest may unmask it again (a new binding then).
        let _ = crate::pci::msi::set_msix_entry_masked(mem, bdf, entry, true);
        if let Some(b) = old {
            release(&b);
        }
        return None;
    }
    if let Some(b) = old {
        release(&b);
    }
    let guest_vector = match guest_vector(address, data) {
        Ok(v) => v,
        Err(why) => {
            let _ = crate::pci::msi::set_msix_entry_masked(mem, bdf, entry, true);
            warn!("guest \"{name}\": MSI-X entry {entry} of {bdf} not routed: {why}");
            return None;
        }
    };
    let owner = Owner::Guest(GuestId(guest));
    match irq::bind_msi(owner, bdf, MsiKind::Msix(entry), Some(guest_vector)) {
        Ok(route) => {
            BOUND.lock().push(Bound {
                guest,
                bdf,
                entry,
                index: route.index,
                vector: route.vector,
            });
            info!(
                "guest \"{name}\": MSI-X entry {entry} of {bdf} (its vector {guest_vector:#x}) routed: IRTE {} -> vector {:#x}",
                route.index, route.vector
            );
            Some(Routed {
                index: route.index,
                vector: route.vector,
                guest_vector,
            })
        }
        Err(e) => {
            warn!("guest \"{name}\": MSI-X entry {entry} of {bdf} not routed: {e}");
            None
        }
    }
}

/// Releases every entry routed for `guest`'s function `bdf` (its function was reset).
pub fn release_function(guest: u16, bdf: Bdf) {
    let gone: Vec<Bound> = {
        let mut bound = BOUND.lock();
        let (gone, keep): (Vec<Bound>, Vec<Bound>) =
            bound.iter().partition(|b| b.guest == guest && b.bdf == bdf);
        *bound = keep;
        gone
    };
    for b in &gone {
        release(b);
    }
}
