//! x86-64 4-level paging entries for the hypervisor's own address space.
//!
//! Authority: Intel SDM Vol. 3A §4.5 "4-Level Paging and 5-Level Paging" (Tables 4-14..4-20:
//! PML4E, PDPTE mapping 1 GiB or referencing a page directory, PDE mapping 2 MiB or
//! referencing a page table, PTE), §4.6 "Access Rights", §4.9.2 "Paging and Memory Typing".
//!
//! | bit | meaning                                                                    |
//! |-----|----------------------------------------------------------------------------|
//! | 0   | P: present                                                                 |
//! | 1   | R/W: writes allowed                                                        |
//! | 2   | U/S: CPL 3 accesses allowed                                                |
//! | 3, 4 | PWT, PCD: with PAT select one of the eight PAT entries                    |
//! | 5, 6 | accessed, dirty (dirty on leaves only)                                    |
//! | 7   | PS in PDPTE/PDE (maps a page); PAT in a 4 KiB PTE                          |
//! | 8   | G: global (leaves, with CR4.PGE)                                           |
//! | 12  | PAT in a PDPTE/PDE that maps a page                                        |
//! | 51:12 | next table or page address                                               |
//! | 63  | XD: execute disable (with IA32_EFER.NXE; reserved otherwise)               |
//!
//! Memory types assume the power-on default IA32_PAT (PAT0 WB, PAT1 WT, PAT2 UC-, PAT3 UC,
//! repeated for PAT4..7): write-back, write-through, UC- and UC are expressed with PWT/PCD and
//! the PAT bit stays clear; write-combining and write-protect are refused.

use super::{ADDR_MASK, EntryFormat, PAGE_SIZE_BIT, split_common};
use crate::error::Error;
use crate::types::{
    Access, Attributes, Config, LargePages, Level, MemoryType, PageSize, PagingLevels,
};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const GLOBAL: u64 = 1 << 8;
const PAT_4K: u64 = 1 << 7;
const PAT_LARGE: u64 = 1 << 12;
const NO_EXECUTE: u64 = 1 << 63;

/// Host (IA-32e, 4-level) paging entries. Input addresses are canonical virtual addresses;
/// tables must have four levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Host {
    /// IA32_EFER.NXE is set: bit 63 can deny instruction fetches. Without it every present
    /// page is executable, so mappings without `EXECUTE` are refused.
    pub no_execute: bool,
    /// Set G in every leaf (translations survive CR3 loads when CR4.PGE = 1).
    pub global: bool,
}

impl Host {
    /// Host paging with NX available and no global pages.
    pub const fn new() -> Self {
        Self {
            no_execute: true,
            global: false,
        }
    }

    /// The same format with (or without) IA32_EFER.NXE.
    pub const fn with_no_execute(mut self, enabled: bool) -> Self {
        self.no_execute = enabled;
        self
    }

    /// The same format setting (or not) G in every leaf.
    pub const fn with_global(mut self, global: bool) -> Self {
        self.global = global;
        self
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl EntryFormat for Host {
    const CANONICAL_INPUT: bool = true;

    fn name(&self) -> &'static str {
        "host"
    }

    fn supports_levels(&self, levels: PagingLevels) -> bool {
        levels == PagingLevels::Four
    }

    fn table_entry(&self, table: u64) -> u64 {
        table | PRESENT | WRITABLE | USER
    }

    fn leaf_entry(&self, size: PageSize, phys: u64, attributes: Attributes) -> Result<u64, Error> {
        let access = attributes.access;
        if !access.contains(Access::READ) || (!self.no_execute && !access.contains(Access::EXECUTE))
        {
            return Err(Error::UnsupportedAccess { access });
        }
        let caching = match attributes.memory_type {
            MemoryType::WriteBack => 0,
            MemoryType::WriteThrough => PWT,
            MemoryType::UncacheableMinus => PCD,
            MemoryType::Uncacheable => PCD | PWT,
            memory_type @ (MemoryType::WriteCombining | MemoryType::WriteProtect) => {
                return Err(Error::UnsupportedMemoryType { memory_type });
            }
        };
        let mut raw = phys | PRESENT | caching;
        if access.contains(Access::WRITE) {
            raw |= WRITABLE;
        }
        if access.contains(Access::USER) {
            raw |= USER;
        }
        if self.no_execute && !access.contains(Access::EXECUTE) {
            raw |= NO_EXECUTE;
        }
        if self.global {
            raw |= GLOBAL;
        }
        if size != PageSize::Size4K {
            raw |= PAGE_SIZE_BIT;
        }
        Ok(raw)
    }

    fn is_present(&self, raw: u64) -> bool {
        raw & PRESENT != 0
    }

    fn access(&self, raw: u64) -> Access {
        let mut access = Access::READ;
        access.set(Access::WRITE, raw & WRITABLE != 0);
        access.set(Access::USER, raw & USER != 0);
        access.set(Access::EXECUTE, !self.no_execute || raw & NO_EXECUTE == 0);
        access
    }

    /// PWT/PCD under the default PAT; the PAT bit selects PAT4..7, which equal PAT0..3 there.
    fn memory_type(&self, _size: PageSize, raw: u64) -> MemoryType {
        match (raw & PCD != 0, raw & PWT != 0) {
            (false, false) => MemoryType::WriteBack,
            (false, true) => MemoryType::WriteThrough,
            (true, false) => MemoryType::UncacheableMinus,
            (true, true) => MemoryType::Uncacheable,
        }
    }

    /// SDM Vol. 3A §4.5.4, Tables 4-15..4-20 ("Reserved (must be 0)"): address bits 51:M above
    /// MAXPHYADDR in every entry; XD (bit 63) without IA32_EFER.NXE; PS in a PML4E; PS in a
    /// PDPTE where 1 GiB pages are not supported; the bits between the PAT bit (12) and the
    /// page address of a 1 GiB (29:13) or 2 MiB (20:13) leaf.
    fn reserved_bits(&self, level: Level, raw: u64, config: &Config) -> u64 {
        let above_maxphyaddr = ADDR_MASK & !((1u64 << config.phys_addr_bits) - 1);
        let mut reserved = raw & above_maxphyaddr;
        if !self.no_execute {
            reserved |= raw & NO_EXECUTE;
        }
        let large = raw & PAGE_SIZE_BIT != 0;
        match level {
            Level::Pml4 => reserved |= raw & PAGE_SIZE_BIT,
            Level::Pdpt if large && !config.large_pages.contains(LargePages::SIZE_1G) => {
                reserved |= PAGE_SIZE_BIT;
            }
            Level::Pdpt | Level::Pd if large => {
                let page = if level == Level::Pdpt {
                    PageSize::Size1G
                } else {
                    PageSize::Size2M
                };
                let between = (page.bytes() - 1) & !(PAT_LARGE | (PAT_LARGE - 1));
                reserved |= raw & between;
            }
            _ => {}
        }
        reserved
    }

    fn split_leaf(&self, size: PageSize, raw: u64, index: usize) -> u64 {
        let child = split_common(size, raw, index);
        // A 4 KiB PTE keeps its PAT bit at 7 (where large leaves have PS), not at 12.
        if size == PageSize::Size2M && raw & PAT_LARGE != 0 {
            child | PAT_4K
        } else {
            child
        }
    }
}
