//! A guest's MSI-X table writes and MSI capability become interrupt-remapping table entries
//! routed to that guest.
//!
//! The guest programs its *virtual* MSI-X table (the control task's `conduit-vpci` table, reached
//! through the trapped table page); each change comes back as `MsixEntryChanged`. For an unmasked
//! entry the core checks the guest's message (a compatibility-format MSI to the local APICs:
//! address bits 31:20 = 0xFEE, upper address 0, delivery mode fixed or lowest priority, vector
//! 0x10-0xFF; Intel SDM Vol. 3A §11.11), then `irq::bind_msi` gives the entry a fresh host vector
//! and an IRTE owned by the guest that only this function may use (source-id verified), aimed at
//! the CPU of the vCPU the message's destination names (the caller decides it from the
//! address: `devices.rs`), and
//! programs the physical table entry in remappable format (VT-d spec §5.1.2). A delivery is
//! counted for the guest with its own vector pending (`irq::dispatch`). Masking masks the
//! physical entry; a changed entry gets a new binding; a reset releases them. The physical MSI-X
//! Enable and Function Mask follow the guest's through the control task.
//!
//! A binding's IRTE is given back only once the device can no longer send its handle: the
//! physical entry is masked (or, for MSI, the capability turned off) first. If that fails, the
//! failure is logged with its typed error, naming the guest and the function, and the binding is
//! kept with its IRTE masked (not present, fault processing disabled): the handle stays the
//! guest's and delivers nothing, and no other route can be given it.
//!
//! Anything else a guest writes there (NMI, SMI, INIT delivery modes, a remappable-format
//! address, a vector below 0x10) is refused and the physical entry stays masked.
//!
//! Plain MSI (`MsiChanged`, PCIe Base Spec r6.0 §7.7.1) takes the same checks and an IRTE of the
//! guest's; the physical capability lives in configuration space, which the control task owns,
//! so the core hands it the remappable-format message (`Op::PhysicalMsi`) instead of writing it.
//! One vector is routed: the virtual capability offers one (Multiple Message Capable 0,
//! `conduit_vpci::msi`), and Multiple Message Enable stays 0 on the device.

use crate::irq::{self, MsiKind};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_control_abi::{Op, PHYSICAL_MSI_ENABLE, Request};
use conduit_hw::memory::Memory;
use conduit_irq::{GuestId, Owner};
use conduit_pci::{Bdf, PciAddress};
use log::{error, info, warn};
use spin::Mutex;

/// `Bound::entry` of a function's MSI capability (MSI-X entries are 0..=2047).
const MSI: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Bound {
    guest: u16,
    bdf: PciAddress,
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
fn take_bound(guest: u16, bdf: PciAddress, entry: u16) -> Option<Bound> {
    let mut bound = BOUND.lock();
    let at = bound
        .iter()
        .position(|b| b.guest == guest && b.bdf == bdf && b.entry == entry);
    at.map(|i| bound.remove(i))
}

/// Gives a binding's IRTE and vector back. If its entry cannot be cleared, `irq::release` keeps
/// both allocated to the guest (an entry that may be live is never reused).
fn release(b: &Bound) {
    let owner = Owner::Guest(GuestId(b.guest));
    if let Err(e) = irq::release(owner, b.index, Some(b.vector)) {
        error!(
            "irq: releasing IRTE {} of guest {}: {e}; the entry and its vector stay allocated",
            b.index, b.guest
        );
    }
}

impl Bound {
    fn what(&self) -> String {
        if self.entry == MSI {
            format!("MSI of {}", self.bdf)
        } else {
            format!("MSI-X entry {} of {}", self.entry, self.bdf)
        }
    }
}

/// The device could not be stopped from sending `b`'s message: the binding is kept, its IRTE
/// masked (not present, fault processing disabled), so the handle the device may still use stays
/// the guest's and delivers nothing. A later change of the entry, or a reset of the function,
/// tries again.
fn keep_masked_off(name: &str, b: Bound) {
    let owner = Owner::Guest(GuestId(b.guest));
    match irq::mask(owner, b.index) {
        Ok(()) => error!(
            "guest \"{name}\": {}: IRTE {} (vector {:#x}) kept for the guest, masked: it \
             delivers nothing",
            b.what(),
            b.index,
            b.vector
        ),
        Err(e) => error!(
            "guest \"{name}\": {}: IRTE {} (vector {:#x}) could not be masked either ({e}); \
             it stays allocated to the guest",
            b.what(),
            b.index,
            b.vector
        ),
    }
    BOUND.lock().push(b);
}

/// Masks MSI-X entry `entry` of `bdf` on the device, then releases `old`, the entry's previous
/// binding: a handle is given back only once the device can no longer send it. A failed mask is
/// reported with its error and `old` is kept masked-off ([`keep_masked_off`]). Returns whether
/// the entry is masked.
fn mask_msix_entry(
    name: &str,
    mem: &Memory,
    bdf: PciAddress,
    entry: u16,
    old: Option<Bound>,
) -> bool {
    match crate::pci::msi::set_msix_entry_masked(mem, bdf, entry, true) {
        Ok(()) => {
            if let Some(b) = old {
                release(&b);
            }
            true
        }
        Err(e) => {
            error!(
                "guest \"{name}\": MSI-X entry {entry} of {bdf} could not be masked on the \
                 device: {e}"
            );
            if let Some(b) = old {
                keep_masked_off(name, b);
            }
            false
        }
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

/// A guest (`guest`, called `name`) changed an MSI-X entry of its function `bdf`; the message is
/// for its vCPU `vcpu` (the entry's IRTE aims at that vCPU's CPU).
pub fn on_msix_entry(
    guest: u16,
    vcpu: u8,
    name: &str,
    mem: &Memory,
    bdf: PciAddress,
    change: EntryChange,
) -> Option<Routed> {
    let EntryChange {
        entry,
        address,
        data,
        masked,
    } = change;
    let wanted = if masked {
        None
    } else {
        match guest_vector(address, data) {
            Ok(v) => Some(v),
            Err(why) => {
                warn!("guest \"{name}\": MSI-X entry {entry} of {bdf} not routed: {why}");
                None
            }
        }
    };
    // Quiet on the device first (the guest may unmask it again: a new binding then); the old
    // binding goes only once the device cannot use it any more.
    let old = take_bound(guest, bdf, entry);
    if !mask_msix_entry(name, mem, bdf, entry, old) {
        return None;
    }
    let guest_vector = wanted?;
    let owner = Owner::Guest(GuestId(guest));
    match irq::bind_msi(owner, vcpu, bdf, MsiKind::Msix(entry), Some(guest_vector)) {
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
/// is routed), its IRTE aimed at the CPU of the guest's vCPU `vcpu`, whom the message is for.
/// Otherwise the physical MSI goes off.
pub fn on_msi(
    guest: u16,
    vcpu: u8,
    name: &str,
    bdf: PciAddress,
    vbdf: Bdf,
    change: MsiChange,
) -> Option<Routed> {
    let old = take_bound(guest, bdf, MSI);
    if !change.enabled || change.mask & 1 != 0 {
        msi_off(guest, name, vbdf, [old, None]);
        return None;
    }
    let guest_vector = match guest_vector(change.address, change.data) {
        Ok(v) => v,
        Err(why) => {
            warn!("guest \"{name}\": MSI of {bdf} not routed: {why}");
            msi_off(guest, name, vbdf, [old, None]);
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
    // The new entry is bound before the old one goes: the old handle is given back only once
    // the device holds the new message (or MSI is off).
    let route = match irq::bind_msi(owner, vcpu, bdf, MsiKind::MsiByCaller, Some(guest_vector)) {
        Ok(r) => r,
        Err(e) => {
            warn!("guest \"{name}\": MSI of {bdf} not routed: {e}");
            msi_off(guest, name, vbdf, [old, None]);
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
        msi_off(guest, name, vbdf, [old, Some(bound)]);
        return None;
    }
    if let Some(b) = old {
        release(&b);
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

/// Turns the physical MSI of (guest, vbdf) off, then releases `bindings`; if the control task
/// could not turn it off, they are kept masked-off instead ([`keep_masked_off`]).
fn msi_off(guest: u16, name: &str, vbdf: Bdf, bindings: [Option<Bound>; 2]) {
    let off = physical_msi(guest, name, vbdf, 0, 0, false);
    for b in bindings.into_iter().flatten() {
        if off {
            release(&b);
        } else {
            keep_masked_off(name, b);
        }
    }
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

/// Guest `guest`'s function `bdf` is quarantined (a request of the guest's crashed the control
/// task): every interrupt routed for it is masked, its IRTE kept the guest's (not present, fault
/// processing disabled) so that a message the device still sends with that handle reaches nobody
/// and no other owner can be given the entry meanwhile.
pub fn quarantine_function(guest: u16, bdf: PciAddress) {
    let owner = Owner::Guest(GuestId(guest));
    let bound: Vec<(u16, String)> = BOUND
        .lock()
        .iter()
        .filter(|b| b.guest == guest && b.bdf == bdf)
        .map(|b| (b.index, b.what()))
        .collect();
    for (index, what) in bound {
        if let Err(e) = irq::mask(owner, index) {
            error!("irq: quarantining {what} of guest {guest}: masking IRTE {index}: {e}");
        }
    }
}

/// Releases every entry routed for `guest`'s function `bdf` (its function was reset).
pub fn release_function(guest: u16, bdf: PciAddress) {
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
