//! Physical memory: the frame allocator built from the loader's memory map, the kernel heap, and
//! access to physical memory through the loader's physical-memory mapping.

mod frames;
mod heap;
pub mod mmio;
mod phys;

pub use frames::{ClaimError, FRAME_SIZE, FrameAllocator, PhysAddr};
pub use phys::{Frames, PhysWindow};

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use log::info;

/// Bytes of kernel heap, carved from the frame allocator at boot.
const HEAP_SIZE: usize = 8 * 1024 * 1024;

/// Why memory could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// No usable region is large enough for the kernel heap.
    NoRoomForHeap { wanted: usize },
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRoomForHeap { wanted } => {
                write!(
                    f,
                    "no usable memory region holds the {} KiB kernel heap",
                    wanted / 1024
                )
            }
        }
    }
}

/// The memory manager handed to the rest of the kernel.
#[derive(Debug)]
pub struct Memory {
    phys_offset: u64,
    usable_bytes: u64,
    pub frames: spin::Mutex<FrameAllocator>,
    /// Every entry of the loader's memory map (the UEFI memory map, every descriptor type kept:
    /// RAM, ACPI, runtime, reserved and MMIO ranges), merged where adjacent and of one kind.
    map: alloc::vec::Vec<MapEntry>,
}

/// One range of the firmware's memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    pub kind: MemoryRegionKind,
}

impl Memory {
    /// Where physical address 0 appears in the kernel's address space.
    pub fn phys_offset(&self) -> u64 {
        self.phys_offset
    }

    /// Usable RAM reported by the firmware, in MiB.
    pub fn usable_mib(&self) -> u64 {
        self.usable_bytes >> 20
    }

    /// The firmware's memory map, sorted by address: what occupies physical address space
    /// (for the PCI free-space map, which never carves windows out of it).
    pub fn map(&self) -> &[MapEntry] {
        &self.map
    }
}

/// Builds the frame allocator from the memory map and starts the heap.
pub fn init(phys_offset: u64, regions: &MemoryRegions) -> Result<Memory, MemoryError> {
    let usable = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable);
    let mut frames = FrameAllocator::new();
    let mut usable_bytes = 0;
    let mut count = 0;
    for r in usable {
        usable_bytes += r.end - r.start;
        count += 1;
        frames.add_region(r.start, r.end);
    }
    info!(
        "usable memory: {} MiB in {} regions (of {} in the map), physical memory mapped at {:#x}",
        usable_bytes >> 20,
        count,
        regions.len(),
        phys_offset
    );
    let heap_frames = HEAP_SIZE / FRAME_SIZE as usize;
    let heap_phys = frames
        .allocate_contiguous(heap_frames, 1)
        .ok_or(MemoryError::NoRoomForHeap { wanted: HEAP_SIZE })?;
    // SAFETY: the range was just taken from the usable memory the loader reported and is mapped
    // through the physical-memory window; the frame allocator will never hand it out again.
    unsafe { heap::init(phys_offset + heap_phys.0, HEAP_SIZE) };
    info!(
        "heap {} KiB at physical {:#x}, {} frames left",
        HEAP_SIZE / 1024,
        heap_phys.0,
        frames.available_frames()
    );
    let mut map: alloc::vec::Vec<MapEntry> = alloc::vec::Vec::with_capacity(regions.len());
    let mut sorted: alloc::vec::Vec<_> = regions.iter().collect();
    sorted.sort_unstable_by_key(|r| r.start);
    for r in sorted {
        match map.last_mut() {
            Some(last) if last.kind == r.kind && last.end == r.start => last.end = r.end,
            _ => map.push(MapEntry {
                start: r.start,
                end: r.end,
                kind: r.kind,
            }),
        }
    }
    Ok(Memory {
        phys_offset,
        usable_bytes,
        frames: spin::Mutex::new(frames),
        map,
    })
}
