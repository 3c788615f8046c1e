//! Mapping a range.

use crate::error::Error;
use crate::format::EntryFormat;
use crate::invalidation::{Changes, Invalidation};
use crate::memory::{FrameAllocator, PhysMemory};
use crate::table::{PageTable, Pending};
use crate::types::{Attributes, ENTRIES, LargePages, Level, PageSize};

/// What one `map` call installs, in table-offset space.
struct Job {
    start: u64,
    end: u64,
    phys: u64,
    attributes: Attributes,
}

/// The two passes of `map`: first every missing table is created (the only step that can run
/// out of frames), then the leaves are written (which cannot fail).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Tables,
    Leaves,
}

/// The part of the entry `index` of a table at `level` covering `base..` that `[start, end)`
/// overlaps: `(entry_start, entry_end, chunk_start, chunk_end)`.
pub(crate) fn chunk(level: Level, base: u64, index: usize, start: u64, end: u64) -> [u64; 4] {
    let entry_start = base + index as u64 * level.entry_span();
    let entry_end = entry_start + level.entry_span();
    [
        entry_start,
        entry_end,
        start.max(entry_start),
        end.min(entry_end),
    ]
}

/// Indices of the entries of a table at `level` covering `base..` that `[start, end)`
/// overlaps; empty if the range is empty or outside the table.
pub(crate) fn indices(
    level: Level,
    base: u64,
    start: u64,
    end: u64,
) -> core::ops::RangeInclusive<usize> {
    let table_end = base + level.entry_span() * ENTRIES as u64;
    let (start, end) = (start.max(base), end.min(table_end));
    if start >= end {
        #[allow(clippy::reversed_empty_ranges)]
        return 1..=0;
    }
    let first = ((start - base) >> level.shift()) as usize;
    let last = ((end - 1 - base) >> level.shift()) as usize;
    first..=last
}

impl<F: EntryFormat, M: PhysMemory> PageTable<F, M> {
    /// Maps `[addr, addr + len)` to `[phys, phys + len)` with `attributes`, using 1 GiB and
    /// 2 MiB leaves wherever both addresses are aligned to them, the range covers them and the
    /// table's [`LargePages`] allow them, 4 KiB leaves elsewhere.
    ///
    /// Nothing in the range may be mapped yet ([`Error::AlreadyMapped`]). All checks
    /// (alignment, widths, attributes the format cannot express, overlap) happen before the
    /// table changes. If the allocator runs out ([`Error::OutOfFrames`], [`Error::BadFrame`]) the
    /// tables created so far are freed again and no leaf was written; they were empty, but the
    /// caller should treat the range as if it had been unmapped (see
    /// [`FrameAllocator::free_frame`]).
    ///
    /// Returns the range to invalidate (where the hardware may cache not-present entries).
    pub fn map<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        addr: u64,
        phys: u64,
        len: u64,
        attributes: Attributes,
    ) -> Result<Invalidation, Error> {
        let (start, end) = self.check_range(addr, len)?;
        self.check_phys(phys, len)?;
        // The format refuses attributes independently of the page size.
        self.format.leaf_entry(PageSize::Size4K, phys, attributes)?;
        let top = self.config.levels.top();
        if let Some(mapped) = self.find_mapped(self.root, top, 0, start, end) {
            return Err(Error::AlreadyMapped {
                addr: self.to_addr(mapped),
            });
        }
        let job = Job {
            start,
            end,
            phys,
            attributes,
        };
        for pass in [Pass::Tables, Pass::Leaves] {
            if let Err(error) = self.map_level(alloc, self.root, top, 0, &job, pass) {
                // Back to the previous state: the range held no leaf before, so clearing it
                // only removes what this call wrote and frees the tables it created.
                let mut changes = Changes::default();
                let _ = self.clear_level(alloc, self.root, top, 0, start, end, &mut changes);
                return Err(error);
            }
        }
        Ok(Invalidation {
            start: addr,
            len,
            tables_freed: false,
        })
    }

    /// Whether a leaf of `level` can map the chunk `[chunk_start, chunk_end)` of the entry
    /// `[entry_start, entry_end)` at physical address `phys`.
    fn leaf_fits(&self, level: Level, chunk: [u64; 4], phys: u64) -> bool {
        let [entry_start, entry_end, chunk_start, chunk_end] = chunk;
        let allowed = match level {
            Level::Pt => return true,
            Level::Pd => self.config.large_pages.contains(LargePages::SIZE_2M),
            Level::Pdpt => self.config.large_pages.contains(LargePages::SIZE_1G),
            Level::Pml4 => false,
        };
        allowed
            && chunk_start == entry_start
            && chunk_end == entry_end
            && phys.is_multiple_of(level.entry_span())
    }

    fn map_level<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        table: u64,
        level: Level,
        base: u64,
        job: &Job,
        pass: Pass,
    ) -> Result<(), Error> {
        let mut pending = Pending::new(table);
        for index in indices(level, base, job.start, job.end) {
            let result = self.map_entry(alloc, table, level, base, index, job, pass, &mut pending);
            if result.is_err() {
                pending.flush(&mut self.memory);
                return result;
            }
        }
        pending.flush(&mut self.memory);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn map_entry<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        table: u64,
        level: Level,
        base: u64,
        index: usize,
        job: &Job,
        pass: Pass,
        pending: &mut Pending,
    ) -> Result<(), Error> {
        let chunk = chunk(level, base, index, job.start, job.end);
        let [entry_start, _, chunk_start, _] = chunk;
        let phys = job.phys + (chunk_start - job.start);
        let raw = self.read(table, index);
        let child = if !self.format.is_present(raw) {
            match (level.page_size(), level.lower()) {
                (Some(size), lower) if lower.is_none() || self.leaf_fits(level, chunk, phys) => {
                    if pass == Pass::Leaves {
                        let leaf = self.format.leaf_entry(size, phys, job.attributes)?;
                        self.write(table, index, leaf);
                        pending.note(index);
                    }
                    return Ok(());
                }
                _ => {
                    let child = self.new_table(alloc)?;
                    let entry = self.format.table_entry(child);
                    self.write_flush(table, index, entry);
                    child
                }
            }
        } else if self.format.is_leaf(level, raw) {
            return Err(Error::AlreadyMapped {
                addr: self.to_addr(chunk_start),
            });
        } else {
            self.format.address(level, raw)
        };
        match level.lower() {
            Some(lower) => self.map_level(alloc, child, lower, entry_start, job, pass),
            None => Ok(()),
        }
    }

    /// The first offset in `[start, end)` that a present leaf maps, if any.
    fn find_mapped(
        &self,
        table: u64,
        level: Level,
        base: u64,
        start: u64,
        end: u64,
    ) -> Option<u64> {
        for index in indices(level, base, start, end) {
            let [entry_start, _, chunk_start, chunk_end] = chunk(level, base, index, start, end);
            let raw = self.read(table, index);
            if !self.format.is_present(raw) {
                continue;
            }
            if self.format.is_leaf(level, raw) {
                return Some(chunk_start);
            }
            let lower = level.lower()?;
            let child = self.format.address(level, raw);
            if let Some(found) = self.find_mapped(child, lower, entry_start, chunk_start, chunk_end)
            {
                return Some(found);
            }
        }
        None
    }
}
