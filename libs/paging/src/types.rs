//! Format-independent vocabulary: levels, page sizes, access rights, memory types and the
//! per-table configuration.

use bitflags::bitflags;

/// Size of a paging-structure frame and of the smallest page (4 KiB).
pub const PAGE_SIZE: u64 = 4096;
/// Entries per paging structure: every level of all three formats holds 512 64-bit entries.
pub const ENTRIES: usize = 512;
/// Largest physical-address width any of the formats can express (bits 51:12 hold the address).
pub const MAX_PHYS_BITS: u8 = 52;

/// One level of the paging hierarchy, numbered as the Intel manuals do: level 1 holds the
/// entries that map 4 KiB pages, level 4 is the PML4 (EPT PML4 / VT-d SL-PML4E table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table (PTE, maps 4 KiB).
    Pt = 1,
    /// Page directory (PDE, maps 2 MiB or references a page table).
    Pd = 2,
    /// Page-directory-pointer table (PDPTE, maps 1 GiB or references a page directory).
    Pdpt = 3,
    /// PML4 (always references a page-directory-pointer table).
    Pml4 = 4,
}

impl Level {
    /// Number of the level (1..=4).
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// Bit position of the lowest address bit that indexes this level (12, 21, 30, 39).
    pub const fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }

    /// Bytes of input address space controlled by one entry of this level.
    pub const fn entry_span(self) -> u64 {
        1 << self.shift()
    }

    /// Index of the entry for the (table-relative) address `addr` in a table of this level.
    pub const fn index(self, addr: u64) -> usize {
        ((addr >> self.shift()) & (ENTRIES as u64 - 1)) as usize
    }

    /// The next level towards the leaves, or `None` below the page table.
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pt => None,
            Level::Pd => Some(Level::Pt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pml4 => Some(Level::Pdpt),
        }
    }

    /// The page size a leaf entry at this level maps, if this level can hold leaves at all.
    pub const fn page_size(self) -> Option<PageSize> {
        match self {
            Level::Pt => Some(PageSize::Size4K),
            Level::Pd => Some(PageSize::Size2M),
            Level::Pdpt => Some(PageSize::Size1G),
            Level::Pml4 => None,
        }
    }
}

/// Size of a leaf mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB page, mapped by a level-1 entry.
    Size4K,
    /// 2 MiB page, mapped by a level-2 entry with the page-size bit set.
    Size2M,
    /// 1 GiB page, mapped by a level-3 entry with the page-size bit set.
    Size1G,
}

impl PageSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        self.level().entry_span()
    }

    /// The level whose entries map pages of this size.
    pub const fn level(self) -> Level {
        match self {
            PageSize::Size4K => Level::Pt,
            PageSize::Size2M => Level::Pd,
            PageSize::Size1G => Level::Pdpt,
        }
    }
}

/// How many levels a table has, which fixes the width of its input addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PagingLevels {
    /// 3 levels, 39-bit input addresses: VT-d SAGAW bit 1 (e.g. QEMU `intel-iommu,aw-bits=39`).
    Three,
    /// 4 levels, 48-bit input addresses: EPT with a page-walk length of 4, 4-level host paging,
    /// VT-d SAGAW bit 2.
    #[default]
    Four,
}

impl PagingLevels {
    /// The root level of a table with this many levels.
    pub const fn top(self) -> Level {
        match self {
            PagingLevels::Three => Level::Pdpt,
            PagingLevels::Four => Level::Pml4,
        }
    }

    /// Width in bits of the input addresses (39 or 48).
    pub const fn address_bits(self) -> u32 {
        self.top().shift() + 9
    }

    /// Number of levels (3 or 4).
    pub const fn count(self) -> u8 {
        self.top().number()
    }
}

bitflags! {
    /// Leaf sizes above 4 KiB a table may use. Set from the hardware capabilities:
    /// IA32_VMX_EPT_VPID_CAP bits 16/17 for EPT, CAP_REG.SLLPS bits 0/1 for VT-d,
    /// CPUID PSE / Page1GB for host paging.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct LargePages: u8 {
        /// 2 MiB leaves in level-2 entries.
        const SIZE_2M = 1 << 0;
        /// 1 GiB leaves in level-3 entries.
        const SIZE_1G = 1 << 1;
    }
}

bitflags! {
    /// Access rights of a mapping, independent of the format. Each format maps them to its own
    /// bits or refuses a combination it cannot express (see [`crate::EntryFormat::leaf_entry`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Access: u8 {
        /// Reads (and, for host paging, presence: host paging has no write-only pages).
        const READ = 1 << 0;
        /// Writes.
        const WRITE = 1 << 1;
        /// Instruction fetches.
        const EXECUTE = 1 << 2;
        /// Accessible from CPL 3 (host paging only).
        const USER = 1 << 3;
    }
}

impl Access {
    /// Read and write.
    pub const RW: Access = Access::READ.union(Access::WRITE);
    /// Read, write and execute.
    pub const RWX: Access = Access::RW.union(Access::EXECUTE);
    /// Read and execute.
    pub const RX: Access = Access::READ.union(Access::EXECUTE);
}

/// Memory type (caching attribute) of a mapping. SDM Vol. 3A §12.3 "Methods of Caching
/// Available" (Table 12-2); the discriminants are the architectural encodings used by the MTRRs,
/// the PAT and the EPT memory-type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemoryType {
    /// Strong uncacheable (UC).
    Uncacheable = 0,
    /// Write combining (WC).
    WriteCombining = 1,
    /// Write through (WT).
    WriteThrough = 4,
    /// Write protected (WP).
    WriteProtect = 5,
    /// Write back (WB).
    #[default]
    WriteBack = 6,
    /// UC- (PAT only; MTRR WC can override it). Not expressible in EPT.
    UncacheableMinus = 7,
}

/// Everything a leaf says about the memory it maps, format-independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes {
    /// Access rights.
    pub access: Access,
    /// Memory type.
    pub memory_type: MemoryType,
}

impl Attributes {
    /// Attributes with the given rights and memory type.
    pub const fn new(access: Access, memory_type: MemoryType) -> Self {
        Self {
            access,
            memory_type,
        }
    }

    /// Write-back memory with the given rights: ordinary RAM.
    pub const fn wb(access: Access) -> Self {
        Self::new(access, MemoryType::WriteBack)
    }
}

/// Per-table configuration, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Number of levels (input-address width).
    pub levels: PagingLevels,
    /// Leaf sizes above 4 KiB the hardware supports.
    pub large_pages: LargePages,
    /// Output-address width: MAXPHYADDR (CPUID 8000_0008h) for EPT and host paging, the host
    /// address width (CAP_REG.MGAW / DMAR HAW) for VT-d. At most 52. Frames handed out by the
    /// allocator and every mapped physical address must lie below `1 << phys_addr_bits`.
    pub phys_addr_bits: u8,
}

impl Config {
    /// A configuration with `levels` levels, no large pages and 52-bit physical addresses.
    pub const fn new(levels: PagingLevels) -> Self {
        Self {
            levels,
            large_pages: LargePages::empty(),
            phys_addr_bits: MAX_PHYS_BITS,
        }
    }

    /// The same configuration with the given large-page sizes allowed.
    pub const fn with_large_pages(mut self, large_pages: LargePages) -> Self {
        self.large_pages = large_pages;
        self
    }

    /// The same configuration with the given physical-address width.
    pub const fn with_phys_addr_bits(mut self, bits: u8) -> Self {
        self.phys_addr_bits = bits;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(PagingLevels::Four)
    }
}

/// The result of translating one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translation {
    /// The physical address the input address translates to.
    pub phys: u64,
    /// Physical base of the page containing it.
    pub page_phys: u64,
    /// Size of the leaf that maps it.
    pub page_size: PageSize,
    /// Decoded attributes of that leaf.
    pub attributes: Attributes,
    /// The raw leaf entry.
    pub raw: u64,
}
