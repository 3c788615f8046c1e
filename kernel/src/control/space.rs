//! The control task's address space and image (Intel SDM Vol. 3A §4.5 "4-Level Paging", §4.6
//! "Access Rights").
//!
//! One PML4 of its own, built with `conduit-paging`'s [`Host`] format. The task's slot
//! ([`layout::SLOT`]) holds, user-accessible: each `PT_LOAD` segment of its ELF image with that
//! segment's rights (R+X or R+W, never both; NX where EFER.NXE allows), its stack (with an
//! unmapped guard page below), the shared page, and the ECAM window (uncached) where the
//! platform has one. Every other slot repeats the kernel's PML4 entry with U/S cleared, so the
//! kernel's code, stacks, IDT, GDT and TSS are there for exceptions and `SYSCALL` (no CR3 switch
//! on entry) while nothing of it is reachable at CPL 3: a supervisor PML4 entry makes its whole
//! subtree supervisor-only (§4.6.1).
//!
//! The kernel's own entries are shared, not copied deeper: a mapping the kernel adds later in an
//! existing slot is visible here too. The slot entries are copied again at every restart.

use alloc::vec::Vec;
use conduit_control_abi::{SharedPage, layout};
use conduit_hw::memory::{FRAME_SIZE, Frames, Memory, PhysAddr, PhysWindow};
use conduit_paging::{
    Access, Attributes, Config, Host, LargePages, MemoryType, PageTable, PagingLevels, PhysMemory,
};
use x86_64::registers::control::Cr3;

/// U/S in a paging-structure entry.
const USER: u64 = 1 << 2;
/// ELF `p_flags`.
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PT_LOAD: u32 = 1;

/// Why the task's address space could not be built.
#[derive(Debug, Clone)]
pub enum SpaceError {
    Elf(conduit_config::elf::ElfError),
    /// A segment lies outside `[IMAGE_BASE, IMAGE_BASE + IMAGE_MAX)`.
    OutsideSlot {
        addr: u64,
        len: u64,
    },
    /// A segment is both writable and executable.
    WritableAndExecutable {
        addr: u64,
    },
    /// Two segments share a page.
    Overlap {
        addr: u64,
    },
    /// The entry point is not in an executable segment.
    BadEntry(u64),
    /// The kernel already uses the task's PML4 slot.
    SlotInUse(usize),
    /// More ECAM windows than the task's layout has room for.
    TooManyWindows(usize),
    OutOfMemory,
    Paging(conduit_paging::Error),
}

impl core::fmt::Display for SpaceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "image: {e}"),
            Self::OutsideSlot { addr, len } => write!(
                f,
                "segment {addr:#x}+{len:#x} lies outside the task's image range"
            ),
            Self::WritableAndExecutable { addr } => {
                write!(f, "segment at {addr:#x} is writable and executable")
            }
            Self::Overlap { addr } => write!(f, "segments share the page at {addr:#x}"),
            Self::BadEntry(e) => write!(f, "entry point {e:#x} is not in an executable segment"),
            Self::SlotInUse(s) => write!(f, "the kernel already maps PML4 slot {s}"),
            Self::TooManyWindows(n) => write!(
                f,
                "{n} ECAM windows: the task maps at most {}",
                layout::MAX_WINDOWS
            ),
            Self::OutOfMemory => write!(f, "out of memory"),
            Self::Paging(e) => write!(f, "page tables: {e}"),
        }
    }
}

/// One loaded segment: its frames and what to put back at a restart.
#[derive(Debug)]
struct Segment {
    /// First page's virtual address.
    va: u64,
    frames: PhysAddr,
    pages: u64,
    /// Offset of the file bytes in the first page.
    offset: u64,
    bytes: &'static [u8],
    executable: bool,
    writable: bool,
}

/// The task's address space.
#[derive(Debug)]
pub struct Space {
    tables: PageTable<Host, PhysWindow>,
    window: PhysWindow,
    segments: Vec<Segment>,
    stack: PhysAddr,
    shared: PhysAddr,
    pub entry: u64,
}

/// `p_flags` of the non-empty `PT_LOAD` headers, in file order (what `elf::parse` returns).
fn load_flags(image: &[u8]) -> Vec<u32> {
    let u16_at = |o: usize| {
        image
            .get(o..o + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        image
            .get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        image.get(o..o + 8).map_or(0, |b| {
            let mut w = [0; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        })
    };
    let phoff = u64_at(0x20) as usize;
    let count = usize::from(u16_at(0x38));
    (0..count)
        .map(|i| phoff + i * 56)
        .filter(|&h| u32_at(h) == PT_LOAD && u64_at(h + 0x28) > 0)
        .map(|h| u32_at(h + 4))
        .collect()
}

fn nxe() -> bool {
    // SAFETY: IA32_EFER exists on every x86-64 CPU; reading it has no side effects.
    let efer = unsafe { conduit_hw::msr::read(0xc000_0080) };
    efer & (1 << 11) != 0
}

impl Space {
    /// Builds the address space and loads `image`. `config` are the ECAM windows (physical
    /// address of each one's first bus, length), of every PCI segment, where there are any:
    /// window `i` at [`layout::config_va`]`(i)`.
    pub fn build(
        mem: &Memory,
        image: &'static [u8],
        config: &[(u64, u64)],
    ) -> Result<Self, SpaceError> {
        if config.len() > layout::MAX_WINDOWS {
            return Err(SpaceError::TooManyWindows(config.len()));
        }
        let elf = conduit_config::elf::parse(image).map_err(SpaceError::Elf)?;
        let flags = load_flags(image);
        let window = PhysWindow::new(mem, true);
        let mut frames = Frames::new(mem);
        let format = Host::new().with_no_execute(nxe());
        let cfg = Config::new(PagingLevels::Four).with_large_pages(LargePages::SIZE_2M);
        let mut tables =
            PageTable::new(format, window, cfg, &mut frames).map_err(SpaceError::Paging)?;
        let mut segments: Vec<Segment> = Vec::new();
        let end = layout::IMAGE_BASE + layout::IMAGE_MAX;
        for (i, s) in elf.segments.iter().enumerate() {
            let f = flags.get(i).copied().unwrap_or(0);
            let (w, x) = (f & PF_W != 0, f & PF_X != 0);
            let outside = SpaceError::OutsideSlot {
                addr: s.gpa,
                len: s.mem_len,
            };
            if s.gpa < layout::IMAGE_BASE || s.end() > end {
                return Err(outside);
            }
            if w && x {
                return Err(SpaceError::WritableAndExecutable { addr: s.gpa });
            }
            let va = s.gpa & !(FRAME_SIZE - 1);
            let pages = (s.end().next_multiple_of(FRAME_SIZE) - va) / FRAME_SIZE;
            if segments
                .iter()
                .any(|o| va < o.va + o.pages * FRAME_SIZE && o.va < va + pages * FRAME_SIZE)
            {
                return Err(SpaceError::Overlap { addr: va });
            }
            let bytes = usize::try_from(s.file_offset)
                .ok()
                .zip(usize::try_from(s.file_len).ok())
                .and_then(|(o, l)| image.get(o..o.checked_add(l)?))
                .ok_or(outside)?;
            let phys = mem
                .frames
                .lock()
                .allocate_contiguous(pages as usize, 1)
                .ok_or(SpaceError::OutOfMemory)?;
            let mut access = Access::READ | Access::USER;
            access.set(Access::WRITE, w);
            access.set(Access::EXECUTE, x);
            tables
                .map(
                    &mut frames,
                    va,
                    phys.0,
                    pages * FRAME_SIZE,
                    Attributes::wb(access),
                )
                .map_err(SpaceError::Paging)?;
            segments.push(Segment {
                va,
                frames: phys,
                pages,
                offset: s.gpa - va,
                bytes,
                executable: x,
                writable: w,
            });
        }
        if !segments
            .iter()
            .any(|s| s.executable && (s.va..s.va + s.pages * FRAME_SIZE).contains(&elf.entry))
        {
            return Err(SpaceError::BadEntry(elf.entry));
        }
        let data = Attributes::wb(Access::RW | Access::USER);
        let stack_pages = (layout::STACK_SIZE / FRAME_SIZE) as usize;
        let stack = mem
            .frames
            .lock()
            .allocate_contiguous(stack_pages, 1)
            .ok_or(SpaceError::OutOfMemory)?;
        let shared = mem
            .frames
            .lock()
            .allocate()
            .ok_or(SpaceError::OutOfMemory)?;
        tables
            .map(
                &mut frames,
                layout::STACK_TOP - layout::STACK_SIZE,
                stack.0,
                layout::STACK_SIZE,
                data,
            )
            .map_err(SpaceError::Paging)?;
        tables
            .map(&mut frames, layout::SHARED_VA, shared.0, FRAME_SIZE, data)
            .map_err(SpaceError::Paging)?;
        let uc = Attributes::new(Access::RW | Access::USER, MemoryType::Uncacheable);
        for (i, &(phys, len)) in config.iter().enumerate() {
            let len = len.min(layout::CONFIG_MAX);
            tables
                .map(&mut frames, layout::config_va(i), phys, len, uc)
                .map_err(SpaceError::Paging)?;
        }
        let mut space = Self {
            tables,
            window,
            segments,
            stack,
            shared,
            entry: elf.entry,
        };
        space.share_kernel_slots()?;
        space.reset();
        Ok(space)
    }

    /// Repeats the kernel's PML4 entries (except the task's slot) with U/S cleared.
    fn share_kernel_slots(&mut self) -> Result<(), SpaceError> {
        let (kernel, _) = Cr3::read_raw();
        let kernel = kernel.start_address().as_u64();
        let root = self.tables.root();
        let mut window = self.window;
        let slot_entry = window.read_entry(kernel + layout::SLOT as u64 * 8);
        if slot_entry & 1 != 0 {
            return Err(SpaceError::SlotInUse(layout::SLOT));
        }
        for i in (0..512u64).filter(|&i| i != layout::SLOT as u64) {
            let e = window.read_entry(kernel + i * 8);
            window.write_entry(root + i * 8, e & !USER);
        }
        Ok(())
    }

    /// Puts the image back as it was loaded and zeroes the stack and the shared page: the task
    /// starts from scratch (its `.data` initial values, its `.bss` zero).
    pub fn reset(&mut self) {
        for s in &self.segments {
            let base = self.window.virt(s.frames.0);
            // SAFETY: the frames were allocated for this segment and are mapped through the
            // window; the task is not running (one CPU, synchronous calls).
            unsafe {
                core::ptr::write_bytes(base, 0, (s.pages * FRAME_SIZE) as usize);
                core::ptr::copy_nonoverlapping(
                    s.bytes.as_ptr(),
                    base.add(s.offset as usize),
                    s.bytes.len(),
                );
            }
        }
        // SAFETY: as above, for the stack's and the shared page's frames.
        unsafe {
            core::ptr::write_bytes(
                self.window.virt(self.stack.0),
                0,
                layout::STACK_SIZE as usize,
            );
        }
        self.window.zero_frame(self.shared);
    }

    /// CR3 for the task.
    pub fn cr3(&self) -> u64 {
        self.tables.root()
    }

    /// The shared page, as the kernel sees it.
    pub fn shared(&self) -> *mut SharedPage {
        self.window.virt(self.shared.0).cast()
    }

    /// Bytes of the image's segments (for the log).
    pub fn image_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.pages * FRAME_SIZE).sum()
    }

    /// (R+X pages, R+W pages) of the image, for the log.
    pub fn image_pages(&self) -> (u64, u64) {
        let x = self
            .segments
            .iter()
            .filter(|s| s.executable)
            .map(|s| s.pages)
            .sum();
        let w = self
            .segments
            .iter()
            .filter(|s| s.writable)
            .map(|s| s.pages)
            .sum();
        (x, w)
    }

    /// Copies the kernel's PML4 entries again (after the kernel may have added a slot). Fails,
    /// copying nothing, if the kernel now uses the task's own slot.
    pub fn refresh_kernel_slots(&mut self) -> Result<(), SpaceError> {
        self.share_kernel_slots()
    }
}
