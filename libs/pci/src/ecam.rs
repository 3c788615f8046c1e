//! ECAM windows of every PCI segment, and configuration access on a chosen segment.
//!
//! The ACPI MCFG lists one *configuration space base address allocation* per range of buses
//! (PCI Firmware Spec 3.3 §4.1.2, Table 4-3): base address, PCI Segment Group number, start and
//! end bus. Within an allocation, function `bus:dev.fn` has its 4 KiB configuration space at
//! `base + ((bus << 20) | (dev << 15) | (fn << 12))` (PCIe Base Spec r6.0 §7.2.2, Table 7-1): the
//! base is that of bus 0 even when the allocation starts at a later bus. A segment may be covered
//! by several allocations (different bus ranges); two allocations of one segment must not claim
//! the same bus.
//!
//! [`SegmentAccess`] is configuration access with the segment as an extra argument (the kernel's
//! accessor holds one window per allocation); [`OnSegment`] binds a segment and so gives the
//! single-segment [`ConfigAccess`] every other module of this crate works with.

use crate::bdf::Bdf;
use crate::config::ConfigAccess;

/// Bytes of configuration space per bus (32 devices × 8 functions × 4 KiB).
pub const BUS_BYTES: u64 = 1 << 20;
/// Bytes of configuration space per function.
pub const FUNCTION_BYTES: u64 = 1 << 12;

/// One MCFG allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EcamWindow {
    /// Physical address of bus 0's configuration space in this segment (the MCFG's Base
    /// Address; the allocation itself begins `bus_start` MiB above it).
    pub base: u64,
    /// PCI Segment Group number.
    pub segment: u16,
    /// First bus decoded.
    pub bus_start: u8,
    /// Last bus decoded.
    pub bus_end: u8,
}

/// Why MCFG allocations cannot be used as they are.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EcamError {
    /// End bus below start bus.
    #[error("segment {segment}: bus range {bus_start:02x}-{bus_end:02x} is empty")]
    EmptyRange {
        /// Segment of the allocation.
        segment: u16,
        /// Its start bus.
        bus_start: u8,
        /// Its end bus.
        bus_end: u8,
    },
    /// The window's address range wraps past the top of the address space.
    #[error("segment {segment}: ECAM at {base:#x} wraps the address space")]
    Wraps {
        /// Segment of the allocation.
        segment: u16,
        /// Its base address.
        base: u64,
    },
    /// Two allocations of one segment decode the same bus.
    #[error("segment {segment}: bus {bus:02x} is in two MCFG allocations")]
    BusTwice {
        /// The segment.
        segment: u16,
        /// The first bus both claim.
        bus: u8,
    },
}

impl EcamWindow {
    /// Number of buses decoded (1..=256 for a valid window).
    #[must_use]
    pub fn buses(&self) -> u16 {
        u16::from(self.bus_end).saturating_sub(u16::from(self.bus_start)) + 1
    }

    /// Physical address of the first byte the window decodes (bus `bus_start`).
    #[must_use]
    pub fn first_byte(&self) -> u64 {
        self.base
            .wrapping_add(u64::from(self.bus_start) * BUS_BYTES)
    }

    /// Bytes from [`Self::first_byte`] to the end of bus `bus_end`.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        u64::from(self.buses()) * BUS_BYTES
    }

    /// Whether the window decodes `bus` of `segment`.
    #[must_use]
    pub fn decodes(&self, segment: u16, bus: u8) -> bool {
        self.segment == segment && (self.bus_start..=self.bus_end).contains(&bus)
    }

    /// Offset from [`Self::first_byte`] of register `offset` of `bdf`: `None` if the bus is not
    /// in the window, or `offset` is not a dword-aligned offset below 4 KiB.
    #[must_use]
    pub fn offset_of(&self, bdf: Bdf, offset: u16) -> Option<u64> {
        if !(self.bus_start..=self.bus_end).contains(&bdf.bus())
            || u64::from(offset) >= FUNCTION_BYTES
            || !offset.is_multiple_of(4)
        {
            return None;
        }
        Some(
            u64::from(bdf.bus() - self.bus_start) * BUS_BYTES
                + u64::from(bdf.devfn()) * FUNCTION_BYTES
                + u64::from(offset),
        )
    }

    /// Checks one allocation on its own: a non-empty bus range whose bytes do not wrap.
    pub fn check(&self) -> Result<(), EcamError> {
        if self.bus_end < self.bus_start {
            return Err(EcamError::EmptyRange {
                segment: self.segment,
                bus_start: self.bus_start,
                bus_end: self.bus_end,
            });
        }
        let wraps = self
            .base
            .checked_add(u64::from(self.bus_start) * BUS_BYTES)
            .and_then(|first| first.checked_add(self.bytes() - 1))
            .is_none();
        if wraps {
            return Err(EcamError::Wraps {
                segment: self.segment,
                base: self.base,
            });
        }
        Ok(())
    }
}

/// Checks every allocation ([`EcamWindow::check`]) and that no bus of a segment is in two.
pub fn check_windows(windows: &[EcamWindow]) -> Result<(), EcamError> {
    for (i, w) in windows.iter().enumerate() {
        w.check()?;
        for earlier in &windows[..i] {
            if earlier.segment == w.segment
                && earlier.bus_start <= w.bus_end
                && w.bus_start <= earlier.bus_end
            {
                return Err(EcamError::BusTwice {
                    segment: w.segment,
                    bus: w.bus_start.max(earlier.bus_start),
                });
            }
        }
    }
    Ok(())
}

/// Configuration access with the segment as an argument. Contract as for [`ConfigAccess`]; a
/// segment or bus no window decodes reads all ones and drops writes.
pub trait SegmentAccess {
    /// Reads the dword at `offset` of `bdf` on `segment`.
    fn read32_on(&self, segment: u16, bdf: Bdf, offset: u16) -> u32;

    /// Writes the dword at `offset` of `bdf` on `segment`.
    fn write32_on(&mut self, segment: u16, bdf: Bdf, offset: u16, value: u32);
}

/// A [`SegmentAccess`] bound to one segment: the [`ConfigAccess`] of that segment.
#[derive(Debug)]
pub struct OnSegment<'a, A: ?Sized> {
    access: &'a mut A,
    segment: u16,
}

impl<'a, A: SegmentAccess + ?Sized> OnSegment<'a, A> {
    /// `access` restricted to `segment`.
    pub fn new(access: &'a mut A, segment: u16) -> Self {
        Self { access, segment }
    }

    /// The segment this accessor reaches.
    #[must_use]
    pub fn segment(&self) -> u16 {
        self.segment
    }
}

impl<A: SegmentAccess + ?Sized> ConfigAccess for OnSegment<'_, A> {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.access.read32_on(self.segment, bdf, offset)
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.access.write32_on(self.segment, bdf, offset, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(segment: u16, bus_start: u8, bus_end: u8) -> EcamWindow {
        EcamWindow {
            base: 0xe000_0000,
            segment,
            bus_start,
            bus_end,
        }
    }

    #[test]
    fn offsets_are_relative_to_the_start_bus() {
        let w = window(1, 0x80, 0xff);
        let bdf = Bdf::new(0x81, 2, 3).expect("valid");
        assert_eq!(w.first_byte(), 0xe000_0000 + 0x80 * BUS_BYTES);
        assert_eq!(w.bytes(), 0x80 * BUS_BYTES);
        assert_eq!(
            w.offset_of(bdf, 0x100),
            Some(BUS_BYTES + (2 << 15) + (3 << 12) + 0x100)
        );
        assert_eq!(w.offset_of(Bdf::new(0x7f, 0, 0).expect("valid"), 0), None);
        assert_eq!(w.offset_of(bdf, 0x1000), None);
        assert_eq!(w.offset_of(bdf, 2), None);
        assert!(w.decodes(1, 0x80) && !w.decodes(0, 0x80) && !w.decodes(1, 0x7f));
    }

    #[test]
    fn windows_are_checked() {
        assert_eq!(
            check_windows(&[window(0, 0, 0xff), window(1, 0, 0xff)]),
            Ok(())
        );
        assert_eq!(
            check_windows(&[window(0, 0, 0x7f), window(0, 0x80, 0xff)]),
            Ok(())
        );
        assert_eq!(
            check_windows(&[window(0, 0, 0x7f), window(0, 0x40, 0xff)]),
            Err(EcamError::BusTwice {
                segment: 0,
                bus: 0x40
            })
        );
        assert_eq!(
            check_windows(&[window(2, 5, 4)]),
            Err(EcamError::EmptyRange {
                segment: 2,
                bus_start: 5,
                bus_end: 4
            })
        );
        let high = EcamWindow {
            base: u64::MAX - BUS_BYTES,
            ..window(3, 0, 1)
        };
        assert_eq!(
            check_windows(&[high]),
            Err(EcamError::Wraps {
                segment: 3,
                base: u64::MAX - BUS_BYTES
            })
        );
    }
}
