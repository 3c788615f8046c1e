//! Uncached mappings of device registers (MMIO) in the kernel's address space.
//!
//! The loader's physical-memory window maps the first 4 GiB write-back and nothing of the MMIO
//! space above the top of RAM, so device registers get their own mappings here: strong
//! uncacheable (PCD and PWT set, PAT entry 3 = UC with the power-on PAT; SDM Vol. 3A §12.12.3),
//! not executable, in a virtual region of one otherwise unused PML4 slot. 2 MiB pages are used
//! where a range allows them (the ECAM window), 4 KiB pages elsewhere. Mapping a range that is
//! already mapped returns the existing mapping when it covers the request.
//!
//! A mapping stays until [`unmap`] removes it. One mapping is removed today: `pci::hand_over`
//! takes the ECAM window away (with [`unmap_direct`] for the loader's window over the same
//! range) when physical configuration space goes to the control task; every other mapping
//! (VT-d units, the local and I/O APICs, device BARs) lives as long as the hypervisor. Both
//! removals are `unsafe`: their caller promises that nothing uses the range any more. After a
//! removal every other online CPU flushes its TLB (`smp::flush_tlb_everywhere`). Virtual
//! addresses are never handed out twice (the region is a bump allocator), so a mapping made later
//! never lands where a removed one was.
//!
//! Users: VT-d remapping units, ECAM, the local APIC, the I/O APICs, device BARs (MSI-X tables,
//! the igb and NVMe PFs, the BAR pages a guest's accesses are forwarded to).
//!
//! The same region holds the APs' stacks ([`map_stacks`]): RAM mapped write-back, each stack above
//! an unmapped guard page. The page-table engine and the bump allocator are shared; the stacks
//! are not recorded among the MMIO mappings (`map` never returns one of them).

use super::{FRAME_SIZE, Memory};
use alloc::vec::Vec;
use core::ptr::NonNull;
use spin::Mutex;
use volatile::VolatilePtr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator as X86FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags,
    PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr as X86PhysAddr, VirtAddr};

const SIZE_2M: u64 = 2 * 1024 * 1024;
/// Bytes covered by one PML4 entry.
const PML4_SPAN: u64 = 1 << 39;
/// Largest single mapping accepted (the ECAM window of 256 buses is 256 MiB).
const MAX_LEN: u64 = 1 << 30;

/// Why a range could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// Zero length, or a range that wraps around or exceeds the largest mapping.
    BadRange { phys: u64, len: u64 },
    /// Every lower-half PML4 slot is in use: there is no room for the MMIO region.
    NoVirtualSpace,
    /// The MMIO region is exhausted.
    RegionFull { wanted: u64 },
    /// No frame left for a page table.
    OutOfFrames,
    /// The page tables already map a page of the region (another mapper used the slot).
    AlreadyMapped { virt: u64 },
    /// A register block does not fit the mapping, or is misaligned.
    BlockOutside { offset: u64, size: u64, len: u64 },
    /// A page of a range being removed could not be unmapped; it stays mapped.
    NotUnmapped { virt: u64 },
    /// The range is unmapped, but another CPU did not confirm flushing its TLB.
    Shootdown(crate::smp::CallError),
}

impl core::fmt::Display for MmioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadRange { phys, len } => {
                write!(f, "cannot map {len:#x} bytes at {phys:#x}")
            }
            Self::NoVirtualSpace => write!(f, "no free PML4 slot for the MMIO region"),
            Self::RegionFull { wanted } => {
                write!(f, "the MMIO region has no room for {wanted:#x} more bytes")
            }
            Self::OutOfFrames => write!(f, "out of frames for MMIO page tables"),
            Self::AlreadyMapped { virt } => write!(f, "{virt:#x} is already mapped"),
            Self::BlockOutside { offset, size, len } => write!(
                f,
                "a {size}-byte register block at offset {offset:#x} does not fit a {len:#x}-byte \
                 mapping (or is misaligned)"
            ),
            Self::NotUnmapped { virt } => {
                write!(f, "the page at {virt:#x} could not be unmapped")
            }
            Self::Shootdown(e) => write!(f, "TLB shootdown after the unmap: {e}"),
        }
    }
}

/// A mapped MMIO range. Copies refer to the same mapping, which lives until [`unmap`] removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    phys: u64,
    virt: u64,
    len: u64,
}

impl Mmio {
    /// Physical base of the range.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The kernel virtual address of byte `offset` (not checked).
    pub fn virt(&self, offset: u64) -> u64 {
        self.virt + offset
    }

    /// A volatile pointer to a register block of type `T` at `offset`, checked to lie inside the
    /// mapping and to be aligned for `T`.
    pub fn block<T>(&self, offset: u64) -> Result<VolatilePtr<'static, T>, MmioError> {
        let size = core::mem::size_of::<T>() as u64;
        let aligned = (self.virt + offset).is_multiple_of(core::mem::align_of::<T>() as u64);
        if !aligned || offset.checked_add(size).is_none_or(|end| end > self.len) {
            return Err(MmioError::BlockOutside {
                offset,
                size,
                len: self.len,
            });
        }
        let ptr = NonNull::new((self.virt + offset) as *mut T).ok_or(MmioError::BadRange {
            phys: self.phys,
            len: self.len,
        })?;
        // SAFETY: the block lies inside this live mapping (checked above; only the unsafe `unmap`
        // removes one, its callers promising no later use) and is aligned for `T`: uncached device
        // memory no Rust object aliases, and register blocks hold only integers.
        Ok(unsafe { VolatilePtr::new(ptr) })
    }
}

/// The MMIO virtual region: a bump allocator over one PML4 slot, and the mappings made.
struct Space {
    next: u64,
    end: u64,
    maps: Vec<Mmio>,
}

static SPACE: Mutex<Option<Space>> = Mutex::new(None);

/// Zeroed 4 KiB frames for the x86-64 page-table mapper.
struct TableFrames<'a>(&'a Memory);

// SAFETY: every frame comes from the kernel's frame allocator, which never hands a frame out
// twice; it is zeroed before use through the physical-memory window.
unsafe impl X86FrameAllocator<Size4KiB> for TableFrames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let frame = self.0.frames.lock().allocate()?;
        super::PhysWindow::new(self.0, true).zero_frame(frame);
        Some(PhysFrame::containing_address(X86PhysAddr::new(frame.0)))
    }
}

fn active_tables(mem: &Memory) -> OffsetPageTable<'static> {
    let (frame, _) = Cr3::read();
    let l4 = (mem.phys_offset() + frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: CR3 names the active level-4 table, reachable through the physical-memory window.
    // Only this module changes the kernel's tables after boot, always under the `SPACE` lock, so
    // no other reference to the table is alive while this one is used.
    unsafe { OffsetPageTable::new(&mut *l4, VirtAddr::new(mem.phys_offset())) }
}

/// Finds an unused lower-half PML4 slot (searching down from the top of the lower half, away
/// from where loaders put things) and returns the virtual range it covers.
fn find_region(mem: &Memory) -> Result<(u64, u64), MmioError> {
    let mut tables = active_tables(mem);
    let l4 = tables.level_4_table_mut();
    let index = (1..256usize)
        .rev()
        .find(|&i| l4[i].is_unused())
        .ok_or(MmioError::NoVirtualSpace)?;
    let start = index as u64 * PML4_SPAN;
    Ok((start, start + PML4_SPAN))
}

/// The region, found on first use.
fn space_of<'a>(mem: &Memory, slot: &'a mut Option<Space>) -> Result<&'a mut Space, MmioError> {
    if slot.is_none() {
        let (next, end) = find_region(mem)?;
        *slot = Some(Space {
            next,
            end,
            maps: Vec::new(),
        });
    }
    slot.as_mut().ok_or(MmioError::NoVirtualSpace)
}

/// Maps `[phys, phys + len)` uncached and returns the mapping. The range is widened to whole
/// 4 KiB pages; the returned mapping starts at `phys` itself.
pub fn map(mem: &Memory, phys: u64, len: u64) -> Result<Mmio, MmioError> {
    let bad = MmioError::BadRange { phys, len };
    let end = phys.checked_add(len).ok_or(bad)?;
    if len == 0 || len > MAX_LEN {
        return Err(bad);
    }
    let mut guard = SPACE.lock();
    let space = space_of(mem, &mut guard)?;
    if let Some(m) = space
        .maps
        .iter()
        .find(|m| m.phys <= phys && end <= m.phys + m.len)
    {
        return Ok(Mmio {
            phys,
            virt: m.virt + (phys - m.phys),
            len,
        });
    }
    let page_start = phys & !(FRAME_SIZE - 1);
    let page_end = end.next_multiple_of(FRAME_SIZE);
    // Keep virt ≡ phys (mod 2 MiB) so that 2 MiB-aligned physical chunks can use large pages.
    let virt_start = space.next.next_multiple_of(SIZE_2M) + (page_start & (SIZE_2M - 1));
    let virt_end = virt_start + (page_end - page_start);
    if virt_end > space.end {
        return Err(MmioError::RegionFull {
            wanted: page_end - page_start,
        });
    }
    map_pages(mem, page_start, page_end, virt_start)?;
    space.next = virt_end;
    let mapping = Mmio {
        phys: page_start,
        virt: virt_start,
        len: page_end - page_start,
    };
    space.maps.push(mapping);
    Ok(Mmio {
        phys,
        virt: virt_start + (phys - page_start),
        len,
    })
}

fn map_pages(mem: &Memory, start: u64, end: u64, virt: u64) -> Result<(), MmioError> {
    let mut tables = active_tables(mem);
    let mut frames = TableFrames(mem);
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH;
    let mut phys = start;
    while phys < end {
        let va = virt + (phys - start);
        let large = phys.is_multiple_of(SIZE_2M) && end - phys >= SIZE_2M;
        let result = if large {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::<Size2MiB>::containing_address(X86PhysAddr::new(phys));
            // SAFETY: the page lies in the MMIO region, which nothing else maps; the frame is
            // device memory, mapped uncached, so no Rust object aliases it.
            unsafe { tables.map_to(page, frame, flags, &mut frames) }
                .map(|flush| flush.flush())
                .map_err(|e| map_error(e, va))
        } else {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::<Size4KiB>::containing_address(X86PhysAddr::new(phys));
            // SAFETY: as above.
            unsafe { tables.map_to(page, frame, flags, &mut frames) }
                .map(|flush| flush.flush())
                .map_err(|e| map_error(e, va))
        };
        result?;
        phys += if large { SIZE_2M } else { FRAME_SIZE };
    }
    Ok(())
}

fn map_error<S: x86_64::structures::paging::PageSize>(e: MapToError<S>, virt: u64) -> MmioError {
    match e {
        MapToError::FrameAllocationFailed => MmioError::OutOfFrames,
        MapToError::ParentEntryHugePage | MapToError::PageAlreadyMapped(_) => {
            MmioError::AlreadyMapped { virt }
        }
    }
}

/// Maps RAM as stacks, write-back and not executable, in the same virtual region: the stacks
/// of `sizes` (whole 4 KiB pages each) take consecutive frames from `phys` on, and in virtual
/// space each lies above its own unmapped guard page (`gdt::GUARD`), so that an overflow faults
/// instead of running into the stack below (docs/smp.md). Returns the virtual address of the
/// first guard page; the range is [`stacks_span`]`(sizes)` bytes long. Used for the APs'
/// kernel and trap stacks.
pub fn map_stacks(mem: &Memory, phys: u64, sizes: &[u64]) -> Result<u64, MmioError> {
    let total: u64 = sizes.iter().sum();
    let bad = MmioError::BadRange { phys, len: total };
    if total == 0 || total > MAX_LEN || sizes.iter().any(|s| !s.is_multiple_of(FRAME_SIZE)) {
        return Err(bad);
    }
    phys.checked_add(total).ok_or(bad)?;
    let mut guard = SPACE.lock();
    let space = space_of(mem, &mut guard)?;
    let span = stacks_span(sizes);
    let base = space.next.next_multiple_of(FRAME_SIZE);
    if base + span > space.end {
        return Err(MmioError::RegionFull { wanted: span });
    }
    // Reserved before mapping: a failure part-way leaves addresses that are never handed out again.
    space.next = base + span;
    let mut tables = active_tables(mem);
    let mut frames = TableFrames(mem);
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    let (mut va, mut pa) = (base, phys);
    for &size in sizes {
        va += FRAME_SIZE; // The guard page stays unmapped.
        for _ in 0..size / FRAME_SIZE {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::<Size4KiB>::containing_address(X86PhysAddr::new(pa));
            // SAFETY: the page lies in the region's range just reserved, which nothing else maps;
            // the frame is RAM the caller took from the frame allocator for these stacks, so the
            // only other way to it is the physical-memory window, which the caller no longer uses.
            unsafe { tables.map_to(page, frame, flags, &mut frames) }
                .map(|flush| flush.flush())
                .map_err(|e| map_error(e, va))?;
            va += FRAME_SIZE;
            pa += FRAME_SIZE;
        }
    }
    Ok(base)
}

/// Virtual bytes [`map_stacks`] takes for stacks of `sizes`: each stack and its guard page.
pub fn stacks_span(sizes: &[u64]) -> u64 {
    sizes.iter().map(|s| s + FRAME_SIZE).sum()
}

/// Removes stacks [`map_stacks`] mapped: `ranges` are (first guard page, [`stacks_span`]); then
/// one TLB shootdown for all of them, after which their frames may be given back.
///
/// # Safety
///
/// No CPU runs on, or uses, any of the stacks afterwards.
pub unsafe fn unmap_stacks(mem: &Memory, ranges: &[(u64, u64)]) -> Result<(), MmioError> {
    let guard = SPACE.lock();
    for &(virt, len) in ranges {
        unmap_range(mem, virt, len)?;
    }
    drop(guard);
    shoot_down()
}

/// The physical address `virt` translates to in the kernel's page tables; `None` if it is not
/// mapped (a stack's guard page, say).
#[cfg(feature = "selftest")]
pub fn translate(mem: &Memory, virt: u64) -> Option<u64> {
    use x86_64::structures::paging::Translate;
    let _guard = SPACE.lock();
    active_tables(mem)
        .translate_addr(VirtAddr::new(virt))
        .map(|p| p.as_u64())
}

/// Removes the mapping `m` was made from (the whole range `map` created), so that the kernel
/// keeps no way into that device memory; used when physical configuration space is handed to
/// the control task. Returns the bytes unmapped.
///
/// # Safety
///
/// Nothing uses the mapping afterwards: no copy of `m` or of any [`Mmio`] within the same range
/// (a later `map` of a sub-range would have returned one) makes a block again, and no
/// `VolatilePtr` obtained from one is used again.
pub unsafe fn unmap(mem: &Memory, m: &Mmio) -> Result<u64, MmioError> {
    let mut guard = SPACE.lock();
    let space = guard.as_mut().ok_or(MmioError::NoVirtualSpace)?;
    let Some(at) = space
        .maps
        .iter()
        .position(|s| s.virt <= m.virt && m.virt < s.virt + s.len)
    else {
        return Ok(0);
    };
    let whole = space.maps.remove(at);
    unmap_range(mem, whole.virt, whole.len)?;
    drop(guard);
    shoot_down()?;
    Ok(whole.len)
}

/// Removes the loader's physical-memory window over `[phys, phys + len)`, in the 2 MiB pages
/// the loader mapped it with; pages that hold anything outside the range stay. Returns the
/// bytes unmapped.
///
/// # Safety
///
/// Nothing reads or writes `[phys, phys + len)` through the physical-memory window afterwards
/// (no `PhysWindow` user, no reference made through it): the range holds no RAM the kernel uses.
pub unsafe fn unmap_direct(mem: &Memory, phys: u64, len: u64) -> Result<u64, MmioError> {
    let start = phys.next_multiple_of(SIZE_2M);
    let end = phys
        .checked_add(len)
        .ok_or(MmioError::BadRange { phys, len })?
        & !(SIZE_2M - 1);
    if end <= start {
        return Ok(0);
    }
    let guard = SPACE.lock();
    unmap_range(mem, mem.phys_offset() + start, end - start)?;
    drop(guard);
    shoot_down()?;
    Ok(end - start)
}

/// Unmaps whatever 4 KiB or 2 MiB pages map `[virt, virt + len)` on this CPU; the caller then
/// drops the address-space lock and calls [`shoot_down`] (a CPU spinning for that lock with
/// interrupts off could not take the shootdown's IPI).
fn unmap_range(mem: &Memory, virt: u64, len: u64) -> Result<(), MmioError> {
    use x86_64::structures::paging::Translate;
    use x86_64::structures::paging::mapper::{MappedFrame, TranslateResult};
    let mut tables = active_tables(mem);
    let mut va = virt;
    while va < virt + len {
        let step = match tables.translate(VirtAddr::new(va)) {
            TranslateResult::Mapped {
                frame: MappedFrame::Size2MiB(_),
                ..
            } => {
                let page = Page::<Size2MiB>::containing_address(VirtAddr::new(va));
                let (_, flush) = tables
                    .unmap(page)
                    .map_err(|_| MmioError::NotUnmapped { virt: va })?;
                flush.flush();
                SIZE_2M - (va & (SIZE_2M - 1))
            }
            TranslateResult::Mapped { .. } => {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
                let (_, flush) = tables
                    .unmap(page)
                    .map_err(|_| MmioError::NotUnmapped { virt: va })?;
                flush.flush();
                FRAME_SIZE - (va & (FRAME_SIZE - 1))
            }
            TranslateResult::NotMapped | TranslateResult::InvalidFrameAddress(_) => {
                FRAME_SIZE - (va & (FRAME_SIZE - 1))
            }
        };
        va += step;
    }
    Ok(())
}

/// The other CPUs may cache the old translations too (TLB shootdown, SDM Vol. 3A §4.10.5).
/// A cross-CPU call: the caller runs with interrupts enabled (`smp::with_interrupts`), else
/// the shootdown fails with `CallError::InterruptsOff` while other CPUs are online.
fn shoot_down() -> Result<(), MmioError> {
    crate::smp::flush_tlb_everywhere()
        .map(|_cpus| ())
        .map_err(MmioError::Shootdown)
}

/// Self-test of the TLB shootdown only: points the 4 KiB page of `m` at byte 0 to `frame` and
/// invalidates it on this CPU alone (INVLPG), so that other CPUs may keep the old translation
/// until a shootdown (SDM Vol. 3A §4.10.5). `m` must map a single 4 KiB page.
///
/// # Safety
///
/// `frame` is a frame the caller owns (no Rust object lives in it), and nothing but the caller
/// uses `m`'s mapping.
#[cfg(feature = "selftest")]
pub unsafe fn retarget_local(mem: &Memory, m: &Mmio, frame: u64) -> Result<(), MmioError> {
    let _guard = SPACE.lock();
    let mut tables = active_tables(mem);
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(m.virt));
    let (_, stale) = tables
        .unmap(page)
        .map_err(|_| MmioError::NotUnmapped { virt: m.virt })?;
    // The INVLPG of the new mapping below covers this page on this CPU; the other CPUs are
    // deliberately left with the old translation.
    stale.ignore();
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH;
    let to = PhysFrame::<Size4KiB>::containing_address(X86PhysAddr::new(frame));
    // SAFETY: the page is the caller's mapping (its sole user); the frame is the caller's.
    unsafe { tables.map_to(page, to, flags, &mut TableFrames(mem)) }
        .map(|flush| flush.flush())
        .map_err(|e| map_error(e, m.virt))
}
