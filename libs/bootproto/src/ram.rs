//! Where a guest's RAM lies in guest-physical space, and which bytes of its host block back it.
//!
//! A guest's RAM is one contiguous, 2 MiB-aligned block of host memory, mapped in two pieces:
//! - the low piece, GPA `[0, 1 MiB)`, from the block's first MiB: the boot structures (GDT, page
//!   tables, zero page, command line, firmware tables) and the 640 KiB an OS expects there;
//! - the high piece, the rest of the block, either right after it (GPA `[1 MiB, size)`: the
//!   usual guest, [`GuestRam::contiguous`]) or at its own host address (GPA = HPA,
//!   [`GuestRam::identity`]).
//!
//! Identity placement lets a device assigned without an IOMMU DMA into the guest's memory: the
//! guest programs guest-physical addresses into the device, and for the high piece those are the
//! host-physical ones. The low piece stays translated. That is safe for Linux because Linux
//! 5.13 and later keep the whole first MiB out of the page allocator (`arch/x86/kernel/setup.c`,
//! "reserve the first 1M" against firmware corruption): no buffer it hands a driver, and so no
//! DMA address, ever lies there. `docs/linux-guests.md` describes the map.

use core::ops::Range;

/// The low piece: GPA `[0, LOW_SIZE)`.
pub const LOW_SIZE: u64 = 0x10_0000;
/// Alignment of an identity-placed block (EPT can use 2 MiB leaves for most of it).
pub const IDENTITY_ALIGN: u64 = 0x20_0000;

/// Why an identity placement is not possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RamError {
    #[error("{base:#x} is not a multiple of 2 MiB")]
    Misaligned { base: u64 },
    #[error("the block must start at or above 1 MiB (the low MiB is translated), not {base:#x}")]
    TooLow { base: u64 },
    #[error("{size:#x} bytes are not more than the low MiB")]
    TooSmall { size: u64 },
    #[error("[{base:#x}, +{size:#x}) wraps around")]
    Wraps { base: u64, size: u64 },
}

/// One guest's RAM: `size` bytes of host memory; the high piece starts at GPA `high_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestRam {
    size: u64,
    high_start: u64,
}

impl GuestRam {
    /// RAM at GPA `[0, size)` (any host address).
    #[must_use]
    pub const fn contiguous(size: u64) -> Self {
        Self {
            size,
            high_start: LOW_SIZE,
        }
    }

    /// RAM of a block at host-physical `base`: the low MiB translated, the rest at GPA = HPA
    /// (`[base + 1 MiB, base + size)`).
    pub fn identity(base: u64, size: u64) -> Result<Self, RamError> {
        if !base.is_multiple_of(IDENTITY_ALIGN) {
            return Err(RamError::Misaligned { base });
        }
        if base < LOW_SIZE {
            return Err(RamError::TooLow { base });
        }
        if size <= LOW_SIZE {
            return Err(RamError::TooSmall { size });
        }
        base.checked_add(size)
            .ok_or(RamError::Wraps { base, size })?;
        Ok(Self {
            size,
            high_start: base + LOW_SIZE,
        })
    }

    /// Bytes of RAM (the host block's size).
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// Whether the high piece is at GPA = HPA.
    #[must_use]
    pub const fn is_identity(&self) -> bool {
        self.high_start != LOW_SIZE
    }

    /// The GPA range of RAM above the low MiB (empty for a guest of at most 1 MiB).
    #[must_use]
    pub fn high(&self) -> Range<u64> {
        let len = self.size.saturating_sub(LOW_SIZE);
        self.high_start..self.high_start + len
    }

    /// One past the highest guest-physical byte of RAM.
    #[must_use]
    pub fn end(&self) -> u64 {
        if self.size <= LOW_SIZE {
            self.size
        } else {
            self.high().end
        }
    }

    /// The offset into the host block of `[gpa, gpa + len)`, if that range is RAM, all in one
    /// piece.
    #[must_use]
    pub fn offset(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        if !self.is_identity() {
            return (end <= self.size).then_some(gpa);
        }
        if end <= LOW_SIZE {
            return Some(gpa);
        }
        let high = self.high();
        (gpa >= high.start && end <= high.end).then(|| gpa - high.start + LOW_SIZE)
    }

    /// The pieces as (GPA, offset into the block, length): one for contiguous RAM, two for
    /// identity placement.
    pub fn pieces(&self) -> impl Iterator<Item = (u64, u64, u64)> {
        let (low, high) = if self.is_identity() {
            (
                (0, 0, LOW_SIZE),
                (self.high_start, LOW_SIZE, self.size - LOW_SIZE),
            )
        } else {
            ((0, 0, self.size), (0, 0, 0))
        };
        [low, high].into_iter().filter(|p| p.2 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn contiguous_ram_is_one_piece_from_zero() {
        let r = GuestRam::contiguous(192 * MIB);
        assert!(!r.is_identity());
        assert_eq!(r.high(), MIB..192 * MIB);
        assert_eq!(r.end(), 192 * MIB);
        assert_eq!(r.pieces().collect::<Vec<_>>(), [(0, 0, 192 * MIB)]);
        assert_eq!(r.offset(0x10000, 0x1000), Some(0x10000));
        assert_eq!(r.offset(100 * MIB, 8), Some(100 * MIB));
        assert_eq!(r.offset(192 * MIB - 8, 8), Some(192 * MIB - 8));
        assert_eq!(r.offset(192 * MIB - 8, 9), None);
        // A range across the low/high boundary is still one piece here.
        assert_eq!(r.offset(MIB - 8, 16), Some(MIB - 8));
    }

    #[test]
    fn small_contiguous_ram_has_no_high_piece() {
        let r = GuestRam::contiguous(0x8_0000);
        assert_eq!(r.high(), MIB..MIB);
        assert_eq!(r.end(), 0x8_0000);
        assert_eq!(r.offset(0x7_fff8, 8), Some(0x7_fff8));
        assert_eq!(r.offset(0x8_0000, 1), None);
        assert_eq!(r.pieces().count(), 1);
    }

    #[test]
    fn identity_ram_maps_the_low_mib_and_the_rest_at_its_host_address() {
        let base = 256 * MIB;
        let r = GuestRam::identity(base, 192 * MIB).unwrap();
        assert!(r.is_identity());
        assert_eq!(r.high(), base + MIB..base + 192 * MIB);
        assert_eq!(r.end(), base + 192 * MIB);
        assert_eq!(
            r.pieces().collect::<Vec<_>>(),
            [(0, 0, MIB), (base + MIB, MIB, 191 * MIB)]
        );
        // The zero page is in the low piece, the kernel at GPA = HPA.
        assert_eq!(r.offset(0x10000, 0x1000), Some(0x10000));
        assert_eq!(r.offset(base + 16 * MIB, 0x1000), Some(16 * MIB));
        // The block's first MiB is reachable only at GPA 0; the hole and ranges across pieces
        // are not RAM.
        assert_eq!(r.offset(base, 8), None);
        assert_eq!(r.offset(MIB, 8), None);
        assert_eq!(r.offset(MIB - 8, 16), None);
        assert_eq!(r.offset(base + MIB - 8, 16), None);
        assert_eq!(r.offset(base + 192 * MIB - 8, 8), Some(192 * MIB - 8));
        assert_eq!(r.offset(base + 192 * MIB, 1), None);
    }

    #[test]
    fn bad_identity_blocks_are_refused() {
        assert_eq!(
            GuestRam::identity(0x1010_0000, 4 * MIB),
            Err(RamError::Misaligned { base: 0x1010_0000 })
        );
        assert_eq!(
            GuestRam::identity(0, 4 * MIB),
            Err(RamError::TooLow { base: 0 })
        );
        assert_eq!(
            GuestRam::identity(2 * MIB, MIB),
            Err(RamError::TooSmall { size: MIB })
        );
        assert_eq!(
            GuestRam::identity(u64::MAX - (2 * MIB - 1), 4 * MIB),
            Err(RamError::Wraps {
                base: u64::MAX - (2 * MIB - 1),
                size: 4 * MIB
            })
        );
    }
}
