//! Access validation and the events a write produces.
//!
//! Configuration accesses are 1, 2 or 4 bytes, naturally aligned, within the 4 KiB space of a
//! function (PCIe Base Spec r6.0 §7.2.2: ECAM accesses do not cross a dword; PCI Local Bus Spec
//! 3.0 §3.2.2.3.2 for the `0xCFC` data port). Anything else is a typed [`AccessError`]; the caller
//! decides what the guest sees (typically all ones for a read, nothing for a write).

use conduit_pci::BarKind;

use crate::CONFIG_SPACE_SIZE;

/// Why an access was refused. No state changes when one is returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AccessError {
    /// Size other than 1, 2 or 4 (configuration space) or 4, 8 (MSI-X table).
    #[error("unsupported access size {size}")]
    BadSize {
        /// The size asked for.
        size: u8,
    },
    /// Not naturally aligned (`offset % size != 0`) but within one dword.
    #[error("access of {size} bytes at {offset:#x} is misaligned")]
    Misaligned {
        /// Offset of the access.
        offset: u64,
        /// Its size.
        size: u8,
    },
    /// The access crosses a dword boundary (for the MSI-X table: a qword boundary).
    #[error("access of {size} bytes at {offset:#x} straddles a dword")]
    Straddles {
        /// Offset of the access.
        offset: u64,
        /// Its size.
        size: u8,
    },
    /// The access lies (partly) beyond the 4 KiB configuration space.
    #[error("offset {offset:#x} beyond the configuration space")]
    OutOfRange {
        /// Offset of the access.
        offset: u64,
    },
}

/// Validates a 1/2/4-byte configuration access; returns the offset as an index into the image.
pub(crate) fn check_config(offset: u16, size: u8) -> Result<u16, AccessError> {
    check_aligned(u64::from(offset), size, &[1, 2, 4], 4)?;
    if u32::from(offset) + u32::from(size) > u32::from(CONFIG_SPACE_SIZE) {
        return Err(AccessError::OutOfRange {
            offset: u64::from(offset),
        });
    }
    Ok(offset)
}

/// Size and alignment check: `size` must be one of `sizes`, and the access must be naturally
/// aligned. A misaligned access that crosses a `unit`-byte boundary is reported as straddling.
pub(crate) fn check_aligned(
    offset: u64,
    size: u8,
    sizes: &[u8],
    unit: u64,
) -> Result<(), AccessError> {
    if !sizes.contains(&size) {
        return Err(AccessError::BadSize { size });
    }
    let sz = u64::from(size);
    if !offset.is_multiple_of(sz) {
        return Err(if (offset % unit) + sz > unit {
            AccessError::Straddles { offset, size }
        } else {
            AccessError::Misaligned { offset, size }
        });
    }
    Ok(())
}

/// All-ones of an access of `size` bytes (what a read of an absent function returns).
#[must_use]
pub const fn all_ones(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// Something the core must act on after a guest write. The emulation has already updated its
/// virtual state; the event says what changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// The guest asked for a Function Level Reset (Device Control bit 15, PCIe Base Spec r6.0
    /// §6.6.2). The virtual state has been reset (the unmapping and disabling events follow in
    /// the same batch); the core resets the physical function.
    FunctionReset,
    /// One of the emulated Command bits changed (PCI Local Bus Spec 3.0 §6.2.2). `memory` and
    /// `io` gate the BAR mappings (reported separately as [`Event::BarMoved`] /
    /// [`Event::BarUnmapped`]); `bus_master` is for the core to apply to the physical function
    /// (its DMA then runs in the guest's IOMMU domain); `intx_disable` as written.
    CommandChanged {
        /// Memory Space enable (bit 1).
        memory: bool,
        /// I/O Space enable (bit 0); always false for a function without I/O BARs.
        io: bool,
        /// Bus Master enable (bit 2).
        bus_master: bool,
        /// Interrupt Disable (bit 10).
        intx_disable: bool,
    },
    /// BAR `index` now decodes at `guest_addr`: map `guest_addr..guest_addr + size` of the
    /// guest onto `phys_addr..` (EPT for memory, the I/O bitmap for I/O) and unmap
    /// `old_guest_addr` if it is `Some`. Emitted when the guest moves a decoding BAR or turns
    /// decode on. The address is what the guest programmed, masked to the BAR's alignment; the
    /// core must still check it against the guest's physical address map.
    BarMoved {
        /// BAR index (the lower index of a 64-bit pair).
        index: u8,
        /// Memory (32/64-bit) or I/O.
        kind: BarKind,
        /// New guest address.
        guest_addr: u64,
        /// Previously mapped guest address, if the BAR was decoding before.
        old_guest_addr: Option<u64>,
        /// Size in bytes (power of two).
        size: u64,
        /// Physical address of the BAR (for a VF, this VF's aperture).
        phys_addr: u64,
    },
    /// BAR `index` stopped decoding (decode turned off, or reset): unmap `guest_addr`.
    BarUnmapped {
        /// BAR index.
        index: u8,
        /// Memory (32/64-bit) or I/O.
        kind: BarKind,
        /// The guest address that was mapped.
        guest_addr: u64,
        /// Size in bytes.
        size: u64,
    },
    /// The guest changed the virtual MSI capability (PCIe Base Spec r6.0 §7.7.1). The
    /// physical MSI capability is never written from here.
    MsiChanged {
        /// MSI Enable.
        enabled: bool,
        /// Message address (upper half 0 for a 32-bit capability).
        address: u64,
        /// Message data (16 bits, 32 with Extended Message Data enabled).
        data: u32,
        /// Mask bits (0 without per-vector masking).
        mask: u32,
        /// Vectors enabled by Multiple Message Enable (1, 2, 4, … 32).
        vectors: u8,
    },
    /// The guest changed MSI-X Enable or Function Mask (PCIe Base Spec r6.0 §7.7.2.2).
    MsixControlChanged {
        /// MSI-X Enable.
        enabled: bool,
        /// Function Mask.
        function_mask: bool,
    },
    /// The guest wrote MSI-X table entry `index` (PCIe Base Spec r6.0 §7.7.2.5–§7.7.2.8).
    MsixEntryChanged {
        /// Entry (vector) number.
        index: u16,
        /// Message address.
        address: u64,
        /// Message data.
        data: u32,
        /// Vector Control Mask bit.
        masked: bool,
    },
}

/// Capacity of [`Events`]. The largest batch one write can cause is a Function Level Reset with
/// everything live: [`Event::FunctionReset`], [`Event::CommandChanged`], six
/// [`Event::BarUnmapped`], [`Event::MsiChanged`] and [`Event::MsixControlChanged`]: 10.
pub const MAX_EVENTS: usize = 12;

/// The events of one write, in order, without allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Events {
    slots: [Option<Event>; MAX_EVENTS],
    len: usize,
}

impl Events {
    /// No events.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slots: [None; MAX_EVENTS],
            len: 0,
        }
    }

    /// Appends an event. The capacity covers the worst case (see [`MAX_EVENTS`]); were it ever
    /// exceeded, the event would be dropped rather than panic.
    pub(crate) fn push(&mut self, event: Event) {
        if let Some(slot) = self.slots.get_mut(self.len) {
            *slot = Some(event);
            self.len += 1;
        }
    }

    /// Number of events.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when the write changed nothing the core must act on.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th event.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&Event> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    /// The events in order.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.slots.iter().flatten()
    }
}

impl IntoIterator for Events {
    type Item = Event;
    type IntoIter = core::iter::Flatten<core::array::IntoIter<Option<Event>, MAX_EVENTS>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = core::iter::Flatten<core::slice::Iter<'a, Option<Event>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_order_and_never_overflow() {
        let mut ev = Events::new();
        assert!(ev.is_empty());
        for i in 0..MAX_EVENTS + 3 {
            ev.push(Event::MsixEntryChanged {
                index: i as u16,
                address: 0,
                data: 0,
                masked: true,
            });
        }
        assert_eq!(ev.len(), MAX_EVENTS);
        let idx: Vec<u16> = ev
            .iter()
            .map(|e| match e {
                Event::MsixEntryChanged { index, .. } => *index,
                _ => u16::MAX,
            })
            .collect();
        assert_eq!(idx, (0..MAX_EVENTS as u16).collect::<Vec<_>>());
        assert_eq!(ev.get(MAX_EVENTS), None);
        assert_eq!(ev.into_iter().count(), MAX_EVENTS);
    }

    #[test]
    fn config_access_checks() {
        assert_eq!(check_config(0xffc, 4), Ok(0xffc));
        assert_eq!(
            check_config(0x1000, 1),
            Err(AccessError::OutOfRange { offset: 0x1000 })
        );
        assert_eq!(check_config(0, 3), Err(AccessError::BadSize { size: 3 }));
        assert_eq!(
            check_config(6, 4),
            Err(AccessError::Straddles { offset: 6, size: 4 })
        );
        assert_eq!(
            check_config(5, 2),
            Err(AccessError::Misaligned { offset: 5, size: 2 })
        );
        assert_eq!(
            (all_ones(1), all_ones(2), all_ones(4)),
            (0xff, 0xffff, u32::MAX)
        );
    }
}
