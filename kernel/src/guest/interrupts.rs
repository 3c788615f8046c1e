//! A guest's MSI-X table writes and MSI capability become interrupt-remapping table entries
//! routed to that guest.
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
//!
//! Plain MSI (`MsiChanged`, PCIe Base Spec r6.0 §7.7.1) takes the same checks and an IRTE of the
//! guest's; the physical capability lives in configuration space, which the control task owns,
//! so the core hands it the remappable-format message (`Op::PhysicalMsi`) instead of writing it.
//! One vector is routed (Multiple Message Enable stays 0 on the device).

use crate::irq::{self, MsiKind};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_control_abi::{Op, PHYSICAL_MSI_ENABLE, Request};
use conduit_hw::memory::Memory;
use conduit_irq::{GuestId, Owner};
use conduit_pci::Bdf;
use log::{info, warn};
use spin::Mutex;

/// `Bound::entry` of a function's MSI capability (MSI-X entries are 0..=2047).
const MSI: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Bound {
    guest: u16,
    bdf: Bdf,
    /// MSI-X entry, or [`MSI`].
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

/// Removes and returns the binding of (guest, bdf, entry), if any.
fn take_bound(guest: u16, bdf: Bdf, entry: u16) -> Option<Bound> {
    let mut bound = BOUND.lock();
    let at = bound
        .iter()
        .position(|b| b.guest == guest && b.bdf == bdf && b.entry == entry);
    at.map(|i| bound.remove(i))
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
    let old = take_bound(guest, bdf, entry);
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

/// What the guest's virtual MSI capability holds now (`Event::MsiChanged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiChange {
    pub enabled: bool,
    pub address: u64,
    pub data: u32,
    /// Mask bits (bit 0 masks the one vector routed).
    pub mask: u32,
    /// Vectors the guest enabled (Multiple Message Enable); one is routed.
    pub vectors: u8,
}

impl MsiChange {
    /// The change an `Event::MsiChanged` reports (`None` for any other event).
    pub fn from_event(e: &conduit_vpci::Event) -> Option<Self> {
        match *e {
            conduit_vpci::Event::MsiChanged {
                enabled,
                address,
                data,
                mask,
                vectors,
            } => Some(Self {
                enabled,
                address,
                data,
                mask,
                vectors,
            }),
            _ => None,
        }
    }
}

/// A guest (`guest`, called `name`) changed the MSI capability of its function `bdf`, which it
/// sees at `vbdf`. Enabled and unmasked with a valid message: an IRTE of the guest's verifying
/// `bdf`'s source-id, and the control task programs the physical capability with the
/// remappable-format message (one vector: with Multiple Message Enable above 1 only the first
/// is routed). Otherwise the physical MSI goes off.
pub fn on_msi(guest: u16, name: &str, bdf: Bdf, vbdf: Bdf, change: MsiChange) -> Option<Routed> {
    if let Some(b) = take_bound(guest, bdf, MSI) {
        release(&b);
    }
    if !change.enabled || change.mask & 1 != 0 {
        physical_msi(guest, name, vbdf, 0, 0, false);
        return None;
    }
    let guest_vector = match guest_vector(change.address, change.data) {
        Ok(v) => v,
        Err(why) => {
            physical_msi(guest, name, vbdf, 0, 0, false);
            warn!("guest \"{name}\": MSI of {bdf} not routed: {why}");
            return None;
        }
    };
    if change.vectors > 1 {
        warn!(
            "guest \"{name}\": MSI of {bdf}: {} vectors enabled, only the first ({guest_vector:#x}) is routed",
            change.vectors
        );
    }
    let owner = Owner::Guest(GuestId(guest));
    let route = match irq::bind_msi(owner, bdf, MsiKind::MsiByCaller, Some(guest_vector)) {
        Ok(r) => r,
        Err(e) => {
            physical_msi(guest, name, vbdf, 0, 0, false);
            warn!("guest \"{name}\": MSI of {bdf} not routed: {e}");
            return None;
        }
    };
    let bound = Bound {
        guest,
        bdf,
        entry: MSI,
        index: route.index,
        vector: route.vector,
    };
    let m = route.message;
    if !physical_msi(guest, name, vbdf, u64::from(m.address), m.data, true) {
        release(&bound);
        return None;
    }
    BOUND.lock().push(bound);
    info!(
        "guest \"{name}\": MSI of {bdf} (its vector {guest_vector:#x}) routed: IRTE {} -> vector {:#x}; the control task programmed address {:#010x} data {:#06x}",
        route.index, route.vector, m.address, m.data
    );
    Some(Routed {
        index: route.index,
        vector: route.vector,
        guest_vector,
    })
}

/// Asks the control task to program (or turn off) the physical MSI of (guest, vbdf).
fn physical_msi(guest: u16, name: &str, vbdf: Bdf, address: u64, data: u32, enable: bool) -> bool {
    let req = Request {
        offset: address,
        value: u64::from(data & 0xffff) | if enable { PHYSICAL_MSI_ENABLE } else { 0 },
        ..Request::new(Op::PhysicalMsi, guest, vbdf)
    };
    match crate::control::call(&req) {
        Ok(_) => true,
        Err(e) => {
            warn!("guest \"{name}\": physical MSI of {vbdf} not programmed: {e}");
            false
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
