//! The table itself: creation, address checks, entry access, destruction.

use core::fmt;

use crate::error::Error;
use crate::format::EntryFormat;
use crate::memory::{FrameAllocator, PhysMemory};
use crate::types::{Config, ENTRIES, Level, MAX_PHYS_BITS, PAGE_SIZE, PagingLevels};

/// Smallest physical-address width accepted in a [`Config`].
const MIN_PHYS_BITS: u8 = 32;

/// A page-table tree in the format `F`, reached through the physical-memory accessor `M`.
///
/// The table owns its frames but not an allocator: every operation that may allocate or free
/// takes the allocator as an argument. Dropping a table leaks its frames; give them back with
/// [`PageTable::destroy`].
///
/// Invariant kept by every operation: every table below the root maps at least one page, so
/// empty tables never linger (they are freed by `unmap`, and a failed `map` frees those it
/// created).
#[must_use = "a table's frames are only returned by `destroy`"]
pub struct PageTable<F: EntryFormat, M: PhysMemory> {
    pub(crate) format: F,
    pub(crate) memory: M,
    pub(crate) config: Config,
    pub(crate) root: u64,
}

impl<F: EntryFormat, M: PhysMemory> fmt::Debug for PageTable<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTable")
            .field("format", &self.format.name())
            .field("root", &format_args!("{:#x}", self.root))
            .field("config", &self.config)
            .finish()
    }
}

/// Modified-entry bookkeeping for one table: the index range of entries written since the
/// last flush, flushed as one range.
pub(crate) struct Pending {
    table: u64,
    range: Option<(usize, usize)>,
}

impl Pending {
    pub(crate) fn new(table: u64) -> Self {
        Self { table, range: None }
    }

    pub(crate) fn note(&mut self, index: usize) {
        self.range = Some(match self.range {
            None => (index, index),
            Some((lo, hi)) => (lo.min(index), hi.max(index)),
        });
    }

    pub(crate) fn flush<M: PhysMemory>(&mut self, memory: &mut M) {
        if let Some((lo, hi)) = self.range.take() {
            memory.flush(self.table + lo as u64 * 8, (hi - lo + 1) as u64 * 8);
        }
    }
}

impl<F: EntryFormat, M: PhysMemory> PageTable<F, M> {
    /// Creates an empty table: allocates and flushes the root.
    ///
    /// Errors: [`Error::InvalidPhysicalWidth`], [`Error::UnsupportedLevels`] (host paging with
    /// three levels), [`Error::OutOfFrames`], [`Error::BadFrame`].
    pub fn new<A: FrameAllocator + ?Sized>(
        format: F,
        memory: M,
        config: Config,
        alloc: &mut A,
    ) -> Result<Self, Error> {
        if !(MIN_PHYS_BITS..=MAX_PHYS_BITS).contains(&config.phys_addr_bits) {
            return Err(Error::InvalidPhysicalWidth {
                bits: config.phys_addr_bits,
            });
        }
        if !format.supports_levels(config.levels) {
            return Err(Error::UnsupportedLevels {
                levels: config.levels,
            });
        }
        let mut table = Self {
            format,
            memory,
            config,
            root: 0,
        };
        table.root = table.new_table(alloc)?;
        Ok(table)
    }

    /// Physical address of the root table: for the EPTP, the VT-d context entry's SLPTPTR,
    /// or CR3.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The entry format.
    pub fn format(&self) -> &F {
        &self.format
    }

    /// The configuration the table was created with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of levels.
    pub fn levels(&self) -> PagingLevels {
        self.config.levels
    }

    /// The physical-memory accessor.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Width in bits of the input addresses (39 or 48).
    pub fn address_bits(&self) -> u32 {
        self.config.levels.address_bits()
    }

    /// Frees every frame of the tree (the root included) and returns how many there were.
    /// Mapped pages are not touched. The caller must have stopped the hardware from using the
    /// table (and invalidated its caches) first.
    pub fn destroy<A: FrameAllocator + ?Sized>(self, alloc: &mut A) -> usize {
        self.free_tree(alloc, self.root, self.config.levels.top())
    }

    fn free_tree<A: FrameAllocator + ?Sized>(
        &self,
        alloc: &mut A,
        table: u64,
        level: Level,
    ) -> usize {
        let mut freed = 0;
        if let Some(lower) = level.lower() {
            for index in 0..ENTRIES {
                let raw = self.read(table, index);
                if self.format.is_present(raw) && !self.format.is_leaf(level, raw) {
                    freed += self.free_tree(alloc, self.format.address(level, raw), lower);
                }
            }
        }
        alloc.free_frame(table);
        freed + 1
    }

    /// A fresh, flushed, empty table frame.
    pub(crate) fn new_table<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
    ) -> Result<u64, Error> {
        let frame = alloc.allocate_frame().ok_or(Error::OutOfFrames)?;
        if frame % PAGE_SIZE != 0 || frame >> self.config.phys_addr_bits != 0 {
            alloc.free_frame(frame);
            return Err(Error::BadFrame { frame });
        }
        self.memory.flush(frame, PAGE_SIZE);
        Ok(frame)
    }

    pub(crate) fn read(&self, table: u64, index: usize) -> u64 {
        self.memory.read_entry(table + index as u64 * 8)
    }

    pub(crate) fn write(&mut self, table: u64, index: usize, value: u64) {
        self.memory.write_entry(table + index as u64 * 8, value);
    }

    /// Writes one entry and flushes it at once (used when linking or unlinking tables, where
    /// what follows depends on the entry being visible).
    pub(crate) fn write_flush(&mut self, table: u64, index: usize, value: u64) {
        self.write(table, index, value);
        self.memory.flush(table + index as u64 * 8, 8);
    }

    /// Whether all entries of `table` are not present.
    pub(crate) fn is_empty(&self, table: u64) -> bool {
        (0..ENTRIES).all(|index| !self.format.is_present(self.read(table, index)))
    }

    fn out_of_range(&self, addr: u64) -> Error {
        Error::AddressOutOfRange {
            addr,
            bits: self.address_bits(),
        }
    }

    /// The table offset (zero-extended, below `2^address_bits`) of an input address.
    pub(crate) fn to_offset(&self, addr: u64) -> Result<u64, Error> {
        crate::read::input_offset::<F>(self.config.levels, addr)
    }

    /// The input address of a table offset: sign-extended for canonical formats.
    pub(crate) fn to_addr(&self, offset: u64) -> u64 {
        if F::CANONICAL_INPUT {
            let unused = 64 - self.address_bits();
            (((offset << unused) as i64) >> unused) as u64
        } else {
            offset
        }
    }

    /// Checks an input range and returns it as table offsets `[start, end)`.
    pub(crate) fn check_range(&self, addr: u64, len: u64) -> Result<(u64, u64), Error> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Error::MisalignedAddress { addr });
        }
        if len == 0 {
            return Err(Error::EmptyRange);
        }
        if !len.is_multiple_of(PAGE_SIZE) {
            return Err(Error::MisalignedLength { len });
        }
        let start = self.to_offset(addr)?;
        let last = addr
            .checked_add(len - 1)
            .ok_or(self.out_of_range(addr.wrapping_add(len - 1)))?;
        let last_offset = self.to_offset(last)?;
        // Both ends valid but the range crosses the non-canonical hole.
        if last_offset.checked_sub(start) != Some(len - 1) {
            return Err(self.out_of_range(last));
        }
        Ok((start, last_offset + 1))
    }

    /// Checks a physical range `[phys, phys + len)` against alignment and the width.
    pub(crate) fn check_phys(&self, phys: u64, len: u64) -> Result<(), Error> {
        if !phys.is_multiple_of(PAGE_SIZE) {
            return Err(Error::MisalignedPhysical { phys });
        }
        let bits = self.config.phys_addr_bits;
        match phys.checked_add(len) {
            Some(end) if end <= 1 << bits => Ok(()),
            _ => Err(Error::PhysicalOutOfRange {
                phys: if phys >> bits != 0 { phys } else { 1 << bits },
                bits,
            }),
        }
    }
}
