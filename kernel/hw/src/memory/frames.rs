//! The physical frame allocator.
//!
//! Usable regions from the loader's memory map are handed out from their low end (bump), which
//! also serves naturally aligned contiguous runs (guest memory in 2 MiB pages, the heap). Freed
//! frames are kept on a list and reused first.

/// Size of a physical frame.
pub const FRAME_SIZE: u64 = 4096;
const MAX_REGIONS: usize = 64;

/// A physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysAddr(pub u64);

use alloc::vec::Vec;

#[derive(Debug, Clone, Copy)]
struct Region {
    /// Where the region began (what was handed out lies in `[start, next)`).
    start: u64,
    next: u64,
    end: u64,
}

/// Why [`FrameAllocator::claim`] could not take a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Not page-aligned, or empty.
    Unaligned,
    /// Part of it was already handed out (the region it is in gives frames from `next` on).
    Taken { next: u64 },
    /// Not inside one usable region of the firmware's memory map.
    NotUsable,
}

impl core::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unaligned => write!(f, "the range is empty or not page-aligned"),
            Self::Taken { next } => write!(
                f,
                "part of it is not free (its region is handed out up to {next:#x})"
            ),
            Self::NotUsable => write!(
                f,
                "it is not inside one usable region of the firmware's memory map"
            ),
        }
    }
}

/// Hands out 4 KiB physical frames.
#[derive(Debug)]
pub struct FrameAllocator {
    regions: [Region; MAX_REGIONS],
    count: usize,
    /// Single frames given back (the list lives on the heap, so frees only happen after boot
    /// brought the heap up).
    free: Vec<PhysAddr>,
}

impl FrameAllocator {
    pub(crate) const fn new() -> Self {
        Self {
            regions: [Region {
                start: 0,
                next: 0,
                end: 0,
            }; MAX_REGIONS],
            count: 0,
            free: Vec::new(),
        }
    }

    /// Adds a usable region; frame 0 is never handed out (a null physical address is a classic bug
    /// to hide). Regions beyond the table's capacity are ignored, the smallest first.
    pub fn add_region(&mut self, start: u64, end: u64) {
        let start = start.max(FRAME_SIZE).next_multiple_of(FRAME_SIZE);
        let end = end & !(FRAME_SIZE - 1);
        if end <= start {
            return;
        }
        let new = Region {
            start,
            next: start,
            end,
        };
        if self.count < MAX_REGIONS {
            self.regions[self.count] = new;
            self.count += 1;
        } else if let Some(smallest) = self
            .regions
            .iter_mut()
            .min_by_key(|r| r.end - r.next)
            .filter(|r| r.end - r.next < end - start)
        {
            *smallest = new;
        }
    }

    /// Allocates one frame (contents undefined).
    pub fn allocate(&mut self) -> Option<PhysAddr> {
        self.free.pop().or_else(|| self.allocate_contiguous(1, 1))
    }

    /// Gives a frame back for reuse.
    pub fn free(&mut self, frame: PhysAddr) {
        debug_assert!(frame.0.is_multiple_of(FRAME_SIZE) && frame.0 != 0);
        self.free.push(frame);
    }

    /// Allocates `count` contiguous frames whose start is aligned to `align_frames` frames.
    pub fn allocate_contiguous(&mut self, count: usize, align_frames: u64) -> Option<PhysAddr> {
        let bytes = count as u64 * FRAME_SIZE;
        let align = align_frames.max(1) * FRAME_SIZE;
        let regions = &mut self.regions[..self.count];
        let region = regions.iter_mut().find(|r| {
            let start = r.next.next_multiple_of(align);
            start.checked_add(bytes).is_some_and(|end| end <= r.end)
        })?;
        let start = region.next.next_multiple_of(align);
        region.next = start + bytes;
        Some(PhysAddr(start))
    }

    /// Takes the frames of `[start, end)` (page-aligned) out of the pool for one owner, before
    /// anyone else is handed them: a guest whose RAM must lie at a given host address. The range
    /// must lie in one usable region, above what that region has already handed out.
    pub fn claim(&mut self, start: u64, end: u64) -> Result<(), ClaimError> {
        if !start.is_multiple_of(FRAME_SIZE) || !end.is_multiple_of(FRAME_SIZE) || end <= start {
            return Err(ClaimError::Unaligned);
        }
        let count = self.count;
        let Some(at) = self.regions[..count]
            .iter()
            .position(|r| r.next <= start && end <= r.end)
        else {
            // The region the range starts in has handed its start out already; otherwise the
            // range is not (all) in usable memory.
            return Err(self.regions[..count]
                .iter()
                .find(|r| r.start <= start && start < r.next)
                .map_or(ClaimError::NotUsable, |r| ClaimError::Taken {
                    next: r.next,
                }));
        };
        // The frames below the range stay available in the region; those above become a region
        // of their own (or replace the smallest when the table is full).
        let tail_end = self.regions[at].end;
        self.regions[at].end = start;
        if end < tail_end {
            self.add_region(end, tail_end);
        }
        Ok(())
    }

    /// Frames still available (for reports).
    pub fn available_frames(&self) -> u64 {
        self.regions[..self.count]
            .iter()
            .map(|r| (r.end - r.next) / FRAME_SIZE)
            .sum()
    }
}
