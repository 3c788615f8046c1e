//! Entry formats: the only thing in which EPT, VT-d second-level tables and host paging differ.
//!
//! All three use the same geometry (4 KiB tables of 512 eight-byte entries, 9 index bits per
//! level, the physical address in bits 51:12, the page-size bit 7 in level-2 and level-3 entries
//! that map 2 MiB and 1 GiB pages). The walker in [`crate::PageTable`] relies on exactly that
//! and asks the format for everything else.

mod ept;
mod host;
mod vtd;

pub use ept::Ept;
pub use host::Host;
pub use vtd::VtdSecondLevel;

use crate::error::Error;
use crate::types::{Access, Attributes, Config, Level, MemoryType, PageSize, PagingLevels};

/// Bits 51:12: the physical address field of every entry of every format.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Bit 7 in a level-2 or level-3 entry: the entry maps a page instead of referencing a table.
pub const PAGE_SIZE_BIT: u64 = 1 << 7;

/// The bit layout of one kind of paging structure.
///
/// Implementations only encode and decode single entries; they never touch memory.
pub trait EntryFormat {
    /// Whether input addresses are canonical virtual addresses (sign-extended from the top
    /// input bit), as for host paging; otherwise they are zero-extended (GPA, IOVA).
    const CANONICAL_INPUT: bool = false;

    /// Short name for diagnostics ("EPT", "VT-d SL", "host").
    fn name(&self) -> &'static str;

    /// Whether tables of this many levels exist in this format.
    fn supports_levels(&self, levels: PagingLevels) -> bool {
        let _ = levels;
        true
    }

    /// The entry that references the next-level table at physical address `table`. It grants
    /// every right, so that the leaf alone decides.
    fn table_entry(&self, table: u64) -> u64;

    /// The leaf entry mapping a page of `size` at physical address `phys` (aligned to `size`),
    /// or the reason these attributes cannot be expressed. The result must not depend on
    /// `size` or `phys` being refused or not: the table checks attributes once with a 4 KiB
    /// leaf before it changes anything.
    fn leaf_entry(&self, size: PageSize, phys: u64, attributes: Attributes) -> Result<u64, Error>;

    /// Whether the entry is present (references a table or maps a page).
    fn is_present(&self, raw: u64) -> bool;

    /// Whether a present entry at `level` maps a page rather than references a table.
    fn is_leaf(&self, level: Level, raw: u64) -> bool {
        match level {
            Level::Pt => true,
            Level::Pd | Level::Pdpt => raw & PAGE_SIZE_BIT != 0,
            Level::Pml4 => false,
        }
    }

    /// The physical address in a present entry at `level`: the next table, or the page base.
    fn address(&self, level: Level, raw: u64) -> u64 {
        match level.page_size() {
            Some(size) if self.is_leaf(level, raw) => raw & ADDR_MASK & !(size.bytes() - 1),
            _ => raw & ADDR_MASK,
        }
    }

    /// The access rights a present entry (table or leaf) grants.
    fn access(&self, raw: u64) -> Access;

    /// The memory type of a leaf mapping a page of `size`.
    fn memory_type(&self, size: PageSize, raw: u64) -> MemoryType;

    /// Both of the above, for a leaf.
    fn leaf_attributes(&self, size: PageSize, raw: u64) -> Attributes {
        Attributes::new(self.access(raw), self.memory_type(size, raw))
    }

    /// The reserved bits set in the present entry `raw` at `level` of a table configured as
    /// `config` (0: none). Only walks of tables the crate did not write check this
    /// ([`crate::ReadOnlyTable`]); the default knows no reserved bits.
    fn reserved_bits(&self, level: Level, raw: u64, config: &Config) -> u64 {
        let _ = (level, raw, config);
        0
    }

    /// Entry `index` (0..512) of the table that replaces the leaf `raw` mapping a page of
    /// `size` (2 MiB or 1 GiB): a leaf one level down mapping the `index`-th part of the same
    /// page with the same attributes, so the split changes no translation.
    fn split_leaf(&self, size: PageSize, raw: u64, index: usize) -> u64;
}

/// The shared part of [`EntryFormat::split_leaf`]: `raw` with its page address replaced by the
/// address of part `index`. For 2 MiB parts of a 1 GiB page the page-size bit and the low bits
/// below the 2 MiB address field (host PAT bit 12) are kept; for 4 KiB parts the page-size bit
/// is cleared and the bits below the large-page address field are dropped (they are address
/// bits of a 4 KiB leaf): the caller relocates format bits that move (host PAT, bit 12 -> 7).
pub(crate) fn split_common(size: PageSize, raw: u64, index: usize) -> u64 {
    let large_mask = ADDR_MASK & !(size.bytes() - 1);
    let base = raw & large_mask;
    let outside = raw & !ADDR_MASK;
    let below = raw & ADDR_MASK & (size.bytes() - 1);
    match size {
        PageSize::Size1G => {
            let child = PageSize::Size2M.bytes();
            outside | (below & (child - 1)) | (base + index as u64 * child)
        }
        PageSize::Size2M | PageSize::Size4K => {
            let child = PageSize::Size4K.bytes();
            (outside & !PAGE_SIZE_BIT) | (base + index as u64 * child)
        }
    }
}
