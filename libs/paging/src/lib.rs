//! One generic page-table builder for the three kinds of paging structures Conduit builds:
//! EPT (guest-physical to host-physical), VT-d second-level tables (IOVA to host-physical) and
//! x86-64 4-level host paging. They share their geometry and differ only in entry bits, which
//! an [`EntryFormat`] encodes: [`Ept`], [`VtdSecondLevel`], [`Host`].
//!
//! The crate is pure logic. It reaches memory only through two traits, [`FrameAllocator`]
//! (4 KiB frames for paging structures) and [`PhysMemory`] (read and write one 64-bit entry by
//! physical address, and flush modified entries for a non-coherent IOMMU), so the kernel runs
//! it over its physical-memory offset mapping and the host tests over fake memory. It contains
//! no `unsafe`.
//!
//! ```text
//! let mut ept = PageTable::new(Ept::new(), mem, Config::new(PagingLevels::Four)
//!     .with_large_pages(LargePages::SIZE_2M | LargePages::SIZE_1G), &mut frames)?;
//! let inv = ept.map(&mut frames, gpa, hpa, len, Attributes::wb(Access::RWX))?;
//! let inv = ept.unmap(&mut frames, gpa, 0x1000)?;   // splits a 2 MiB leaf if needed
//! let t = ept.translate(gpa)?;                       // phys, page size, attributes
//! ept.destroy(&mut frames);                          // returns every frame
//! ```
//!
//! Tables the crate did not write (a guest's own page tables) are walked read-only through
//! [`ReadOnlyTable`] over a [`PhysRead`] view, with reserved bits checked as the processor
//! checks them; [`GuestPaging`] picks the walk a guest's CR0/CR4/EFER select.
//!
//! Every range operation returns an [`Invalidation`] naming the input range whose cached
//! translations it made stale; issuing INVEPT, VT-d IOTLB invalidations or INVLPG is the
//! caller's job.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod error;
mod format;
mod guest;
mod invalidation;
mod map;
mod memory;
mod read;
mod table;
mod types;
mod unmap;
mod walk;

pub use error::Error;
pub use format::{ADDR_MASK, EntryFormat, Ept, Host, PAGE_SIZE_BIT, VtdSecondLevel};
pub use guest::{GuestPaging, GuestRegisters, UnsupportedPaging};
pub use invalidation::Invalidation;
pub use memory::{FrameAllocator, PhysMemory};
pub use read::{PhysRead, ReadOnlyTable};
pub use table::PageTable;
pub use types::{
    Access, Attributes, Config, ENTRIES, LargePages, Level, MAX_PHYS_BITS, MemoryType, PAGE_SIZE,
    PageSize, PagingLevels, Translation,
};
pub use walk::{Walk, WalkStep};
