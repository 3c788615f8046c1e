//! VT-d second-level paging entries, as used for requests without PASID (legacy-mode context
//! entries, or scalable mode with second-level translation).
//!
//! Authority: Intel Virtualization Technology for Directed I/O Architecture Specification,
//! §9.8 "Second-Level Paging Entries" ("Second-Stage Paging Entries" in revision 4 and later)
//! and §3.7 "Second-Level Translation".
//!
//! | bits  | table-referencing entry | leaf (SL-PTE, 2 MiB SL-PDE, 1 GiB SL-PDPE) |
//! |-------|-------------------------|---------------------------------------------|
//! | 0     | R                       | R                                           |
//! | 1     | W                       | W                                           |
//! | 2     | X: execute, only used with second-level execute enable (SLEE) for requests with PASID; ignored or reserved otherwise | same |
//! | 5:3, 6 | ignored                | EMT / IPAT: only with extended memory type (EMTE, scalable nested); ignored otherwise |
//! | 7     | 0 (page size)           | 1 in SL-PDE/SL-PDPE (page size); ignored/reserved in SL-PTE |
//! | 8, 9  | accessed                | accessed, dirty (only with SLADE)           |
//! | 11    | reserved (0)            | SNP: snoop every access; reserved (0) unless ECAP.SC = 1 |
//! | 51:12 | next table              | page address (HAW-limited)                  |
//! | 62    | reserved (0)            | TM (transient mapping, a device-TLB hint in early revisions); reserved (0) in later ones |
//!
//! There is no present bit: an entry with R and W both clear is not present. This format writes
//! R, W, PS, SNP and the address; it leaves X, EMT, IPAT, A, D and TM zero.

use super::{EntryFormat, PAGE_SIZE_BIT, split_common};
use crate::error::Error;
use crate::types::{Access, Attributes, MemoryType, PageSize};

const READ: u64 = 1 << 0;
const WRITE: u64 = 1 << 1;
const SNOOP: u64 = 1 << 11;

/// VT-d second-level entries.
///
/// Rights: `READ` and `WRITE` map to R and W; write-only is allowed (devices may be granted
/// DMA writes without reads). `EXECUTE` is accepted and ignored (DMA without PASID never
/// fetches instructions, so dropping it grants nothing more), so guest-RAM attributes shared
/// with EPT can be reused. `USER` is refused. Memory type: only write-back is accepted; DMA
/// coherency is a property of the request's snoop attribute and of SNP, not of a memory type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VtdSecondLevel {
    /// Set SNP (bit 11) in every leaf, forcing snooped DMA whatever the request says. Only
    /// allowed when the remapping unit reports snoop control (ECAP.SC = 1); otherwise bit 11 is
    /// reserved and must stay clear.
    pub snoop: bool,
}

impl VtdSecondLevel {
    /// Second-level entries without snoop control.
    pub const fn new() -> Self {
        Self { snoop: false }
    }

    /// The same format setting (or not) SNP in every leaf.
    pub const fn with_snoop(mut self, snoop: bool) -> Self {
        self.snoop = snoop;
        self
    }
}

impl EntryFormat for VtdSecondLevel {
    fn name(&self) -> &'static str {
        "VT-d SL"
    }

    fn table_entry(&self, table: u64) -> u64 {
        table | READ | WRITE
    }

    fn leaf_entry(&self, size: PageSize, phys: u64, attributes: Attributes) -> Result<u64, Error> {
        let access = attributes.access;
        if access.contains(Access::USER) || !access.intersects(Access::RW) {
            return Err(Error::UnsupportedAccess { access });
        }
        if attributes.memory_type != MemoryType::WriteBack {
            return Err(Error::UnsupportedMemoryType {
                memory_type: attributes.memory_type,
            });
        }
        let mut raw = phys;
        if access.contains(Access::READ) {
            raw |= READ;
        }
        if access.contains(Access::WRITE) {
            raw |= WRITE;
        }
        if self.snoop {
            raw |= SNOOP;
        }
        if size != PageSize::Size4K {
            raw |= PAGE_SIZE_BIT;
        }
        Ok(raw)
    }

    fn is_present(&self, raw: u64) -> bool {
        raw & (READ | WRITE) != 0
    }

    fn access(&self, raw: u64) -> Access {
        let mut access = Access::empty();
        access.set(Access::READ, raw & READ != 0);
        access.set(Access::WRITE, raw & WRITE != 0);
        access
    }

    /// Always write-back: the only type this format accepts.
    fn memory_type(&self, _size: PageSize, _raw: u64) -> MemoryType {
        MemoryType::WriteBack
    }

    fn split_leaf(&self, size: PageSize, raw: u64, index: usize) -> u64 {
        // R, W, SNP and the accessed/dirty flags carry over; PS is cleared for SL-PTEs.
        split_common(size, raw, index)
    }
}
