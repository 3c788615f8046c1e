//! EPT paging-structure entries.
//!
//! Authority: Intel SDM Vol. 3C, ch. 29 "VMX Support for Address Translation", the EPT
//! translation mechanism and the EPT entry formats (Tables 29-1..29-6 in recent editions,
//! 28-1..28-6 in older ones), "EPT Misconfigurations" and "EPT and Memory Typing".
//!
//! | bits | table-referencing entry | leaf (4 KiB PTE, 2 MiB PDE, 1 GiB PDPTE) |
//! |------|-------------------------|-------------------------------------------|
//! | 0    | R                       | R                                         |
//! | 1    | W                       | W                                         |
//! | 2    | X (supervisor-mode X with mode-based execute control) | X         |
//! | 5:3  | reserved (0)            | EPT memory type (UC 0, WC 1, WT 4, WP 5, WB 6) |
//! | 6    | ignored                 | ignore PAT                                |
//! | 7    | 0 (reserved in PML4E)   | 1 in PDE/PDPTE (page size); ignored in PTE |
//! | 8, 9 | accessed (8)            | accessed, dirty (only with EPTP bit 6)    |
//! | 51:12 | next table            | page address (bits 20:12 / 29:12 reserved for 2 MiB / 1 GiB) |
//! | 63   | ignored                 | suppress #VE                              |
//!
//! An entry is present when any of bits 2:0 is set. This format never sets the accessed and
//! dirty flags, user-mode execute (bit 10), or suppress-#VE, and ignores the accessed and dirty
//! flags when it decodes entries.

use super::{EntryFormat, PAGE_SIZE_BIT, split_common};
use crate::error::Error;
use crate::types::{Access, Attributes, MemoryType, PageSize};

const READ: u64 = 1 << 0;
const WRITE: u64 = 1 << 1;
const EXECUTE: u64 = 1 << 2;
const MEMORY_TYPE_SHIFT: u32 = 3;
const MEMORY_TYPE_MASK: u64 = 0b111 << MEMORY_TYPE_SHIFT;
const IGNORE_PAT: u64 = 1 << 6;

/// EPT entries for a table referenced by an EPTP with page-walk length 4 (or, for tests of
/// narrower tables, 3; the CPU only accepts the lengths IA32_VMX_EPT_VPID_CAP reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ept {
    /// Execute-only translations are supported (IA32_VMX_EPT_VPID_CAP bit 0). Without it an
    /// entry with X set and R clear is an EPT misconfiguration, so such rights are refused.
    pub execute_only: bool,
    /// Set the ignore-PAT bit in every leaf: the EPT memory type alone decides, the guest's PAT
    /// is ignored. Leave it clear to let the guest's PAT combine with the EPT memory type.
    pub ignore_guest_pat: bool,
}

impl Ept {
    /// EPT without execute-only support, honouring the guest PAT.
    pub const fn new() -> Self {
        Self {
            execute_only: false,
            ignore_guest_pat: false,
        }
    }

    /// The same format with execute-only support as reported by the CPU.
    pub const fn with_execute_only(mut self, supported: bool) -> Self {
        self.execute_only = supported;
        self
    }

    /// The same format setting (or not) the ignore-PAT bit in every leaf.
    pub const fn with_ignore_guest_pat(mut self, ignore: bool) -> Self {
        self.ignore_guest_pat = ignore;
        self
    }

    fn memory_type_bits(memory_type: MemoryType) -> Result<u64, Error> {
        match memory_type {
            MemoryType::Uncacheable
            | MemoryType::WriteCombining
            | MemoryType::WriteThrough
            | MemoryType::WriteProtect
            | MemoryType::WriteBack => Ok((memory_type as u64) << MEMORY_TYPE_SHIFT),
            MemoryType::UncacheableMinus => Err(Error::UnsupportedMemoryType { memory_type }),
        }
    }
}

impl EntryFormat for Ept {
    fn name(&self) -> &'static str {
        "EPT"
    }

    fn table_entry(&self, table: u64) -> u64 {
        table | READ | WRITE | EXECUTE
    }

    fn leaf_entry(&self, size: PageSize, phys: u64, attributes: Attributes) -> Result<u64, Error> {
        let access = attributes.access;
        // Write without read is a misconfiguration; execute without read needs the
        // execute-only capability; no right at all would be a not-present entry.
        let refused = access.contains(Access::USER)
            || (access.contains(Access::WRITE) && !access.contains(Access::READ))
            || (access == Access::EXECUTE && !self.execute_only)
            || !access.intersects(Access::RWX);
        if refused {
            return Err(Error::UnsupportedAccess { access });
        }
        let mut raw = phys | Self::memory_type_bits(attributes.memory_type)?;
        if access.contains(Access::READ) {
            raw |= READ;
        }
        if access.contains(Access::WRITE) {
            raw |= WRITE;
        }
        if access.contains(Access::EXECUTE) {
            raw |= EXECUTE;
        }
        if self.ignore_guest_pat {
            raw |= IGNORE_PAT;
        }
        if size != PageSize::Size4K {
            raw |= PAGE_SIZE_BIT;
        }
        Ok(raw)
    }

    fn is_present(&self, raw: u64) -> bool {
        raw & (READ | WRITE | EXECUTE) != 0
    }

    fn access(&self, raw: u64) -> Access {
        let mut access = Access::empty();
        access.set(Access::READ, raw & READ != 0);
        access.set(Access::WRITE, raw & WRITE != 0);
        access.set(Access::EXECUTE, raw & EXECUTE != 0);
        access
    }

    /// Decodes bits 5:3. The reserved encodings 2, 3 and 7 (which this format never writes and
    /// the CPU treats as a misconfiguration) decode as uncacheable.
    fn memory_type(&self, _size: PageSize, raw: u64) -> MemoryType {
        match (raw & MEMORY_TYPE_MASK) >> MEMORY_TYPE_SHIFT {
            1 => MemoryType::WriteCombining,
            4 => MemoryType::WriteThrough,
            5 => MemoryType::WriteProtect,
            6 => MemoryType::WriteBack,
            _ => MemoryType::Uncacheable,
        }
    }

    fn split_leaf(&self, size: PageSize, raw: u64, index: usize) -> u64 {
        // Memory type, ignore-PAT and the accessed/dirty flags carry over unchanged.
        split_common(size, raw, index)
    }
}
