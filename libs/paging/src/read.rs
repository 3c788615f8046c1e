//! Walking a table the walker may only read: a guest's own page tables, seen by the hypervisor
//! through a read-only view of guest memory. The tables were written by someone else (the guest),
//! so every entry is checked as the processor checks it: an entry with reserved bits set is a
//! fault (Intel SDM Vol. 3A §4.13, page-fault error code bit 3, RSVD), not a translation, and an
//! entry outside the readable memory ends the walk with an error instead of a value.

use crate::error::Error;
use crate::format::{ADDR_MASK, EntryFormat};
use crate::types::{Config, MAX_PHYS_BITS, PagingLevels, Translation};
use crate::walk::{Walk, walk_entries};

/// Read-only access to physical memory by address.
pub trait PhysRead {
    /// The 8-byte aligned entry at physical address `phys`, or `None` when `phys` is not
    /// readable memory (for a guest: outside its memory).
    fn read_u64(&self, phys: u64) -> Option<u64>;
}

impl<R: PhysRead + ?Sized> PhysRead for &R {
    fn read_u64(&self, phys: u64) -> Option<u64> {
        (**self).read_u64(phys)
    }
}

/// A page-table tree that exists in memory, walked and never written.
///
/// `config.levels` fixes the input width; `config.large_pages` says which large leaves the
/// processor honours (a page-size bit where they are not is a reserved bit);
/// `config.phys_addr_bits` is MAXPHYADDR (address bits above it are reserved).
#[derive(Debug, Clone, Copy)]
pub struct ReadOnlyTable<F: EntryFormat, R: PhysRead> {
    format: F,
    memory: R,
    config: Config,
    root: u64,
}

impl<F: EntryFormat, R: PhysRead> ReadOnlyTable<F, R> {
    /// The tree whose root table is at physical `root` (its low 12 bits are ignored, as CR3's
    /// are). Errors: [`Error::InvalidPhysicalWidth`], [`Error::UnsupportedLevels`].
    pub fn new(format: F, memory: R, config: Config, root: u64) -> Result<Self, Error> {
        if !(1..=MAX_PHYS_BITS).contains(&config.phys_addr_bits) {
            return Err(Error::InvalidPhysicalWidth {
                bits: config.phys_addr_bits,
            });
        }
        if !format.supports_levels(config.levels) {
            return Err(Error::UnsupportedLevels {
                levels: config.levels,
            });
        }
        Ok(Self {
            format,
            memory,
            config,
            root: root & ADDR_MASK,
        })
    }

    /// Physical address of the root table.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Reads the entry for `addr` at every level, from the root down to the leaf or the first
    /// not-present entry. Errors: [`Error::AddressOutOfRange`] (outside the input space, or not
    /// canonical for canonical formats), [`Error::Unreadable`] (an entry outside the memory),
    /// [`Error::ReservedBits`] (a present entry with a reserved bit set).
    pub fn walk(&self, addr: u64) -> Result<Walk, Error> {
        let offset = input_offset::<F>(self.config.levels, addr)?;
        walk_entries(
            &self.format,
            self.config.levels,
            self.root,
            addr,
            offset,
            |phys| self.memory.read_u64(phys).ok_or(Error::Unreadable { phys }),
            |level, raw| {
                let bits = self.format.reserved_bits(level, raw, &self.config);
                if bits == 0 {
                    Ok(())
                } else {
                    Err(Error::ReservedBits { level, raw, bits })
                }
            },
        )
    }

    /// The translation of `addr`: [`Error::NotMapped`] when a level is not present, or any
    /// error of [`ReadOnlyTable::walk`].
    pub fn translate(&self, addr: u64) -> Result<Translation, Error> {
        self.walk(addr)?
            .translation()
            .ok_or(Error::NotMapped { addr })
    }
}

/// The table offset of input address `addr` in a tree of `levels` levels (sign-extended inputs
/// for canonical formats, zero-extended otherwise).
pub(crate) fn input_offset<F: EntryFormat>(levels: PagingLevels, addr: u64) -> Result<u64, Error> {
    let bits = levels.address_bits();
    let offset = addr & ((1 << bits) - 1);
    let back = if F::CANONICAL_INPUT {
        let unused = 64 - bits;
        (((offset << unused) as i64) >> unused) as u64
    } else {
        offset
    };
    if back == addr {
        Ok(offset)
    } else {
        Err(Error::AddressOutOfRange { addr, bits })
    }
}
