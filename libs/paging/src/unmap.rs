//! Unmapping a range: splitting large leaves at its ends, clearing leaves, freeing tables that
//! became empty.

use crate::error::Error;
use crate::format::EntryFormat;
use crate::invalidation::{Changes, Invalidation};
use crate::map::{chunk, indices};
use crate::memory::{FrameAllocator, PhysMemory};
use crate::table::{PageTable, Pending};
use crate::types::{ENTRIES, Level, PageSize};

impl<F: EntryFormat, M: PhysMemory> PageTable<F, M> {
    /// Unmaps whatever is mapped in `[addr, addr + len)`; holes are skipped. A 2 MiB or 1 GiB
    /// leaf that the range covers only in part is first split into smaller leaves with the same
    /// attributes, so the part outside the range keeps its translation. Tables left empty are
    /// unlinked and freed (after their parent entry was flushed).
    ///
    /// Splitting needs frames: at most two per end of the range. The splits are done first, so
    /// on [`Error::OutOfFrames`] (or [`Error::BadFrame`]) nothing was unmapped, and every
    /// translation is as before (some large pages may already be split).
    ///
    /// Returns the range to invalidate, or `None` if nothing was mapped in the range.
    pub fn unmap<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        addr: u64,
        len: u64,
    ) -> Result<Option<Invalidation>, Error> {
        let (start, end) = self.check_range(addr, len)?;
        let mut changes = Changes::default();
        self.split_at(alloc, start, &mut changes)?;
        self.split_at(alloc, end, &mut changes)?;
        let top = self.config.levels.top();
        self.clear_level(alloc, self.root, top, 0, start, end, &mut changes)?;
        Ok(changes.finish(|offset| self.to_addr(offset)))
    }

    /// Splits large leaves until `boundary` (a table offset) falls on a leaf boundary.
    fn split_at<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        boundary: u64,
        changes: &mut Changes,
    ) -> Result<(), Error> {
        let mut table = self.root;
        let mut level = self.config.levels.top();
        let mut base = 0;
        if boundary >= 1 << self.address_bits() {
            return Ok(());
        }
        loop {
            let index = level.index(boundary);
            let raw = self.read(table, index);
            if !self.format.is_present(raw) {
                return Ok(());
            }
            let entry_start = base + index as u64 * level.entry_span();
            let next = if self.format.is_leaf(level, raw) {
                match level.page_size() {
                    Some(size)
                        if size != PageSize::Size4K && !boundary.is_multiple_of(size.bytes()) =>
                    {
                        changes.add(entry_start, entry_start + size.bytes());
                        self.split(alloc, table, index, size, raw)?
                    }
                    _ => return Ok(()),
                }
            } else {
                self.format.address(level, raw)
            };
            let Some(lower) = level.lower() else {
                return Ok(());
            };
            (table, level, base) = (next, lower, entry_start);
        }
    }

    /// Replaces the large leaf `raw` (entry `index` of `table`) by a table of leaves one level
    /// down with the same attributes. The new table is filled and flushed before it is linked,
    /// so a concurrent walk sees either the old leaf or the complete table.
    fn split<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        table: u64,
        index: usize,
        size: PageSize,
        raw: u64,
    ) -> Result<u64, Error> {
        let child = self.new_table(alloc)?;
        for child_index in 0..ENTRIES {
            let entry = self.format.split_leaf(size, raw, child_index);
            self.write(child, child_index, entry);
        }
        self.memory.flush(child, crate::types::PAGE_SIZE);
        let entry = self.format.table_entry(child);
        self.write_flush(table, index, entry);
        Ok(child)
    }

    /// Clears every leaf inside `[start, end)` below `table` (at `level`, covering `base..`),
    /// frees tables that became empty, and returns whether `table` itself is now empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn clear_level<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        table: u64,
        level: Level,
        base: u64,
        start: u64,
        end: u64,
        changes: &mut Changes,
    ) -> Result<bool, Error> {
        let mut pending = Pending::new(table);
        for index in indices(level, base, start, end) {
            let result = self.clear_entry(
                alloc,
                table,
                level,
                base,
                index,
                [start, end],
                changes,
                &mut pending,
            );
            if let Err(error) = result {
                pending.flush(&mut self.memory);
                return Err(error);
            }
        }
        pending.flush(&mut self.memory);
        Ok(self.is_empty(table))
    }

    #[allow(clippy::too_many_arguments)]
    fn clear_entry<A: FrameAllocator + ?Sized>(
        &mut self,
        alloc: &mut A,
        table: u64,
        level: Level,
        base: u64,
        index: usize,
        [start, end]: [u64; 2],
        changes: &mut Changes,
        pending: &mut Pending,
    ) -> Result<(), Error> {
        let [entry_start, entry_end, chunk_start, chunk_end] =
            chunk(level, base, index, start, end);
        let raw = self.read(table, index);
        if !self.format.is_present(raw) {
            return Ok(());
        }
        let child = if self.format.is_leaf(level, raw) {
            if chunk_start == entry_start && chunk_end == entry_end {
                self.write(table, index, 0);
                pending.note(index);
                changes.add(entry_start, entry_end);
                return Ok(());
            }
            // Partly covered large leaf (normally split beforehand by `unmap`).
            let Some(size) = level.page_size() else {
                return Ok(());
            };
            changes.add(entry_start, entry_end);
            self.split(alloc, table, index, size, raw)?
        } else {
            self.format.address(level, raw)
        };
        let Some(lower) = level.lower() else {
            return Ok(());
        };
        if self.clear_level(
            alloc,
            child,
            lower,
            entry_start,
            chunk_start,
            chunk_end,
            changes,
        )? {
            self.write_flush(table, index, 0);
            alloc.free_frame(child);
            changes.tables_freed = true;
            changes.add(chunk_start, chunk_end);
        }
        Ok(())
    }
}
