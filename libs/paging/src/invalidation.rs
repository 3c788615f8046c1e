//! What a range operation tells its caller to invalidate.

use crate::types::PAGE_SIZE;

/// The input-address range whose cached translations a `map` or `unmap` made stale, so the
/// caller can invalidate precisely (VT-d page-selective IOTLB invalidation, INVLPG) or decide
/// to invalidate globally (INVEPT single-context, domain-selective IOTLB, CR3 reload).
///
/// The range covers every entry the operation changed: cleared leaves, large leaves that were
/// split (whole large page, although the split alone keeps every translation), and unlinked
/// tables (clipped to the operation's range). It may include addresses that were never mapped.
///
/// For `map` it is the mapped range. EPT and coherent host paging do not cache not-present
/// entries (SDM Vol. 3C "Caching Translation Information"; Vol. 3A §4.10.4.3 "Optional
/// Invalidation"), but a VT-d unit with caching mode (CAP_REG.CM = 1, e.g. QEMU's
/// `caching-mode=on`) may, and must be told of new mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Invalidation {
    /// First address of the range (sign-extended for host paging).
    pub start: u64,
    /// Length in bytes: a nonzero multiple of 4 KiB.
    pub len: u64,
    /// Paging-structure frames were unlinked and freed: paging-structure caches must be
    /// invalidated too, so a leaf-only hint (VT-d IOTLB invalidation with IH = 1) is not
    /// enough, and the freed frames must not be reused before the invalidation completed.
    pub tables_freed: bool,
}

impl Invalidation {
    /// Last address of the range (inclusive).
    pub const fn last(&self) -> u64 {
        self.start.wrapping_add(self.len - 1)
    }

    /// Number of 4 KiB pages in the range.
    pub const fn pages(&self) -> u64 {
        self.len / PAGE_SIZE
    }

    /// The smallest naturally aligned block of `2^order` 4 KiB pages that contains the range,
    /// as `(base, order)`: the address and address-mask (AM) of a VT-d page-selective
    /// invalidation (VT-d spec §6.5.2.3 "IOTLB Invalidate Descriptor"; usable when `order`
    /// does not exceed CAP_REG.MAMV).
    pub const fn aligned_block(&self) -> (u64, u32) {
        let first = self.start >> 12;
        let last = self.last() >> 12;
        let order = 64 - (first ^ last).leading_zeros();
        // Page numbers have at most 52 bits, so `order <= 52` and the shifts cannot overflow.
        ((first >> order << order) << 12, order)
    }

    /// The smallest single invalidation covering both `self` and `other`.
    pub fn merge(self, other: Invalidation) -> Invalidation {
        let start = self.start.min(other.start);
        let last = self.last().max(other.last());
        Invalidation {
            start,
            len: last - start + 1,
            tables_freed: self.tables_freed || other.tables_freed,
        }
    }
}

/// Accumulates changed ranges in table-offset space (zero-extended, exclusive end).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Changes {
    range: Option<(u64, u64)>,
    pub(crate) tables_freed: bool,
}

impl Changes {
    pub(crate) fn add(&mut self, start: u64, end: u64) {
        self.range = Some(match self.range {
            None => (start, end),
            Some((lo, hi)) => (lo.min(start), hi.max(end)),
        });
    }

    /// The accumulated range as an [`Invalidation`], converting offsets with `to_addr`.
    pub(crate) fn finish(self, to_addr: impl Fn(u64) -> u64) -> Option<Invalidation> {
        self.range.map(|(start, end)| Invalidation {
            start: to_addr(start),
            len: end - start,
            tables_freed: self.tables_freed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(start: u64, len: u64) -> Invalidation {
        Invalidation {
            start,
            len,
            tables_freed: false,
        }
    }

    #[test]
    fn aligned_block_of_single_page_is_order_zero() {
        assert_eq!(inv(0x5000, 0x1000).aligned_block(), (0x5000, 0));
    }

    #[test]
    fn aligned_block_grows_to_cover_unaligned_pairs() {
        // Pages 1 and 2 straddle an order-1 boundary: the block is pages 0..4.
        assert_eq!(inv(0x1000, 0x2000).aligned_block(), (0, 2));
        // Pages 2 and 3 fit an order-1 block.
        assert_eq!(inv(0x2000, 0x2000).aligned_block(), (0x2000, 1));
        // An aligned 2 MiB range is order 9.
        assert_eq!(
            inv(0x4020_0000, 0x20_0000).aligned_block(),
            (0x4020_0000, 9)
        );
    }

    #[test]
    fn aligned_block_of_upper_half_range() {
        let top = inv(0xffff_ffff_ffff_f000, 0x1000);
        assert_eq!(top.last(), u64::MAX);
        assert_eq!(top.aligned_block(), (0xffff_ffff_ffff_f000, 0));
        let whole = inv(0, u64::MAX - 0xfff);
        assert_eq!(whole.aligned_block(), (0, 52));
    }

    #[test]
    fn merge_covers_both_and_keeps_tables_freed() {
        let a = inv(0x1000, 0x1000);
        let mut b = inv(0x8000, 0x2000);
        b.tables_freed = true;
        let m = a.merge(b);
        assert_eq!((m.start, m.len, m.tables_freed), (0x1000, 0x9000, true));
        assert_eq!(m.pages(), 9);
    }

    #[test]
    fn changes_accumulate_min_and_max() {
        let mut c = Changes::default();
        assert_eq!(c.finish(|a| a), None);
        c.add(0x3000, 0x4000);
        c.add(0x1000, 0x2000);
        let i = c
            .finish(|a| a | 0xffff_0000_0000_0000)
            .expect("changes recorded");
        assert_eq!((i.start, i.len), (0xffff_0000_0000_1000, 0x3000));
    }
}
