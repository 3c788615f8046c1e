//! Firmware-style BAR placement: the addresses an OS guest finds already programmed in its
//! assigned functions' BARs, as a PC's firmware leaves them (PCI Firmware Spec 3.3 §2: the
//! firmware assigns resources to every function before the OS boots, inside the host bridge's
//! windows the OS reads from `_CRS`, ACPI 6.5 §6.2.2).
//!
//! Each BAR is naturally aligned (PCI Local Bus Spec 3.0 §6.2.5.1: a BAR decodes an aligned
//! power-of-two range). Memory BARs get at least a page of their own, so that each can be
//! mapped (or trapped) in EPT on its own; 64-bit BARs are placed in the 32-bit window too, which
//! every OS accepts. Functions are placed in the order given, BARs by index, so the result is
//! the same at every boot.

use conduit_pci::{Bar, BarKind};
use core::ops::Range;

/// The smallest piece of guest-physical space a memory BAR gets: one 4 KiB page.
pub const MIN_MEMORY_ALIGN: u64 = 0x1000;

/// Why a BAR could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The BAR's window has no aligned room left for it.
    #[error("BAR{index} ({size:#x} bytes) does not fit what is left of its window")]
    NoRoom {
        /// The BAR's index.
        index: u8,
        /// Its size.
        size: u64,
    },
}

/// Hands out BAR addresses from a memory window and an I/O port window, lowest first.
#[derive(Debug, Clone)]
pub struct BarPlacer {
    memory: Range<u64>,
    io: Range<u64>,
}

impl BarPlacer {
    /// A placer over the memory window `memory` (guest-physical) and the port window `io`.
    #[must_use]
    pub const fn new(memory: Range<u64>, io: Range<u64>) -> Self {
        Self { memory, io }
    }

    /// The address `bar` gets (naturally aligned, memory BARs at least page-aligned and
    /// page-sized), taken from the window of its kind.
    pub fn place(&mut self, bar: &Bar) -> Result<u64, PlaceError> {
        let (window, align, len) = match bar.kind {
            BarKind::Io => (&mut self.io, bar.size, bar.size),
            BarKind::Memory32 | BarKind::Memory64 => (
                &mut self.memory,
                bar.size.max(MIN_MEMORY_ALIGN),
                bar.size.max(MIN_MEMORY_ALIGN),
            ),
        };
        let no_room = PlaceError::NoRoom {
            index: bar.index,
            size: bar.size,
        };
        let at = window
            .start
            .checked_next_multiple_of(align.max(1))
            .ok_or(no_room)?;
        let end = at.checked_add(len).ok_or(no_room)?;
        if end > window.end {
            return Err(no_room);
        }
        window.start = end;
        Ok(at)
    }

    /// Places every BAR of one function: `(index, address)` in the order of `bars`.
    pub fn place_all(&mut self, bars: &[Bar]) -> Result<alloc::vec::Vec<(u8, u64)>, PlaceError> {
        bars.iter()
            .map(|b| self.place(b).map(|at| (b.index, at)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(index: u8, kind: BarKind, size: u64) -> Bar {
        Bar {
            index,
            kind,
            prefetchable: false,
            address: 0xfebc_0000,
            size,
        }
    }

    #[test]
    fn e1000_bars_land_at_the_window_starts() {
        // Bochs' 82540EM: 128 KiB of registers, 64 I/O ports.
        let mut p = BarPlacer::new(0xc000_0000..0xe000_0000, 0xc000..0x1_0000);
        let placed = p
            .place_all(&[
                bar(0, BarKind::Memory32, 0x2_0000),
                bar(1, BarKind::Io, 0x40),
            ])
            .unwrap();
        assert_eq!(placed, [(0, 0xc000_0000), (1, 0xc000)]);
    }

    #[test]
    fn bars_are_naturally_aligned_and_do_not_overlap() {
        let mut p = BarPlacer::new(0xc000_1000..0xe000_0000, 0xc004..0x1_0000);
        let a = p.place(&bar(0, BarKind::Memory32, 0x1000)).unwrap();
        let b = p.place(&bar(2, BarKind::Memory64, 0x4000)).unwrap();
        let c = p.place(&bar(4, BarKind::Memory32, 0x1000)).unwrap();
        assert_eq!((a, b, c), (0xc000_1000, 0xc000_4000, 0xc000_8000));
        let io1 = p.place(&bar(1, BarKind::Io, 0x20)).unwrap();
        let io2 = p.place(&bar(3, BarKind::Io, 0x8)).unwrap();
        assert_eq!((io1, io2), (0xc020, 0xc040));
    }

    #[test]
    fn small_memory_bars_get_a_page_of_their_own() {
        let mut p = BarPlacer::new(0xc000_0000..0xe000_0000, 0xc000..0x1_0000);
        let a = p.place(&bar(0, BarKind::Memory32, 0x100)).unwrap();
        let b = p.place(&bar(1, BarKind::Memory32, 0x100)).unwrap();
        assert_eq!((a, b), (0xc000_0000, 0xc000_1000));
    }

    #[test]
    fn a_full_window_is_refused_and_the_placer_keeps_its_state() {
        let mut p = BarPlacer::new(0xc000_0000..0xc000_3000, 0xfff0..0x1_0000);
        assert_eq!(
            p.place(&bar(0, BarKind::Memory32, 0x4000)),
            Err(PlaceError::NoRoom {
                index: 0,
                size: 0x4000
            })
        );
        assert_eq!(p.place(&bar(1, BarKind::Memory32, 0x2000)), Ok(0xc000_0000));
        assert_eq!(
            p.place(&bar(2, BarKind::Io, 0x20)),
            Err(PlaceError::NoRoom {
                index: 2,
                size: 0x20
            })
        );
        assert_eq!(p.place(&bar(3, BarKind::Io, 0x10)), Ok(0xfff0));
    }
}
