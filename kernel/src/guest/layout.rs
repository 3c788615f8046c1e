//! A guest's memory: host frames, the EPT that maps them at GPA 0, the image, and for 64-bit
//! guests the boot structures the hypervisor provides (a GDT with a TSS at 0x800 and identity page
//! tables at 0x1000-0x7fff, built by the same page-table builder as EPT).

use super::spec::{Entry, GuestSpec};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_bootproto::ram::GuestRam;
use conduit_config::GuestConfig;
use conduit_hw::memory::{FRAME_SIZE, Frames, Memory, PhysAddr, PhysWindow};
use conduit_paging::{Access, Attributes, Config, Ept, Host, LargePages, PageTable, PagingLevels};
use conduit_vmx::caps::VmxCapabilities;
use core::ops::Range;
use log::{error, info};
use spin::Mutex;

/// Where the hypervisor puts a 64-bit guest's GDT, TSS and page tables (guest-physical).
pub const GDT_GPA: u64 = 0x800;
pub const TSS_GPA: u64 = 0x880;
pub const PAGE_TABLES_GPA: u64 = 0x1000;
pub const PAGE_TABLES_END: u64 = 0x8000;
/// The selectors of a 64-bit guest's boot GDT (each a flat 4 GiB descriptor; the TSS takes two
/// slots: SDM Vol. 3A §8.2.3 "TSS Descriptor in 64-bit mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootSelectors {
    pub cs: u16,
    pub ds: u16,
    pub tr: u16,
}

impl BootSelectors {
    /// Conduit's own 64-bit guests: code 0x08, data 0x10, TSS 0x18.
    pub const CONDUIT: Self = Self {
        cs: 0x08,
        ds: 0x10,
        tr: 0x18,
    };
    /// The Linux 64-bit boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18 (Linux
    /// `Documentation/arch/x86/boot.rst`, "64-bit Boot Protocol"), TSS 0x20.
    pub const LINUX: Self = Self {
        cs: 0x10,
        ds: 0x18,
        tr: 0x20,
    };

    /// GDTR.limit: the last byte of the TSS descriptor.
    pub const fn gdt_limit(self) -> u16 {
        self.tr + 15
    }
}

/// The boot GDT a 64-bit entry needs (`None`: a real-mode guest has none).
pub fn boot_selectors(entry: Entry) -> Option<BootSelectors> {
    match entry {
        Entry::Long64 { .. } => Some(BootSelectors::CONDUIT),
        Entry::Linux { .. } => Some(BootSelectors::LINUX),
        Entry::Real16 { .. } | Entry::Multiboot { .. } => None,
    }
}

const _: () = assert!(GDT_GPA + (BootSelectors::LINUX.gdt_limit() as u64) < TSS_GPA);

/// Largest guest, as the configuration validator allows.
const MAX_MIB: u32 = 512;
const MIB: u64 = 1 << 20;
const TWO_MIB_FRAMES: u64 = 512;

/// Why a guest could not be laid out.
#[derive(Debug, Clone)]
pub enum LayoutError {
    BadSize(u32),
    OutOfMemory {
        mib: u32,
    },
    /// Its identity-placed RAM could not be had: the host range and why.
    Identity {
        range: Range<u64>,
        why: String,
    },
    SegmentOutside {
        gpa: u64,
        len: u64,
        memory: u64,
    },
    Paging(conduit_paging::Error),
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadSize(m) => write!(f, "memory of {m} MiB is outside 1..={MAX_MIB}"),
            Self::OutOfMemory { mib } => write!(f, "no {mib} MiB of contiguous free memory"),
            Self::Identity { range, why } => write!(
                f,
                "identity-placed RAM at host [{:#x}, {:#x}) is not available: {why}",
                range.start, range.end
            ),
            Self::SegmentOutside { gpa, len, memory } => write!(
                f,
                "image segment at GPA {gpa:#x} (+{len:#x}) lies outside the guest's {memory:#x} bytes"
            ),
            Self::Paging(e) => write!(f, "page tables: {e}"),
        }
    }
}

/// A guest's RAM: one contiguous block of host memory, mapped at guest-physical 0 or, for an
/// identity-placed guest, its first MiB at GPA 0 and the rest at GPA = HPA (`ram`,
/// `conduit_bootproto::ram`).
#[derive(Debug)]
pub struct GuestMemory {
    pub host: PhysAddr,
    pub size: u64,
    /// Where the block appears in guest-physical space.
    pub ram: GuestRam,
    window: PhysWindow,
}

/// A host range claimed at boot for an identity-placed guest.
#[derive(Debug)]
struct Claim {
    guest: String,
    range: Range<u64>,
    /// `Err`: why the range could not be had.
    result: Result<(), String>,
}

/// The claims made at boot, until each guest's memory takes its own.
static IDENTITY: Mutex<Vec<Claim>> = Mutex::new(Vec::new());

/// Claims the host range of every identity-placed guest (`identity_ram_at`) from the frame
/// allocator, right after the configuration is read and before anything else allocates, so that
/// the range is still free. A range that is not free is logged with the reason; that guest is
/// then refused when it is created.
pub fn claim_identity(guests: &[GuestConfig], mem: &Memory) {
    let mut claimed = IDENTITY.lock();
    for g in guests {
        let Some(base) = g.identity_ram_at else {
            continue;
        };
        let range = base..base + g.memory_bytes();
        let result = mem
            .frames
            .lock()
            .claim(range.start, range.end)
            .map_err(|e| alloc::format!("{e}"));
        match &result {
            Ok(()) => info!(
                "guest \"{}\": host [{:#x}, {:#x}) reserved for its identity-placed RAM (GPA = HPA above its first MiB)",
                g.name, range.start, range.end
            ),
            Err(why) => error!(
                "guest \"{}\": host [{:#x}, {:#x}) cannot hold its identity-placed RAM: {why}",
                g.name, range.start, range.end
            ),
        }
        claimed.push(Claim {
            guest: g.name.clone(),
            range,
            result,
        });
    }
}

/// The block claimed for `name` at boot, taken (a guest's memory is allocated once).
fn take_identity(name: &str, ram: &GuestRam, size: u64) -> Result<PhysAddr, LayoutError> {
    let base = ram.high().start - conduit_bootproto::ram::LOW_SIZE;
    let range = base..base + size;
    let mut claimed = IDENTITY.lock();
    let Some(at) = claimed
        .iter()
        .position(|c| c.guest == name && c.range == range)
    else {
        return Err(LayoutError::Identity {
            range,
            why: String::from("it was not claimed at boot"),
        });
    };
    claimed
        .remove(at)
        .result
        .map(|()| PhysAddr(base))
        .map_err(|why| LayoutError::Identity { range, why })
}

impl GuestMemory {
    /// Allocates and zeroes `mib` MiB, 2 MiB aligned so EPT can use 2 MiB leaves; for
    /// identity-placed RAM (`ram`), the block claimed for guest `name` at boot.
    pub fn allocate(
        mem: &Memory,
        name: &str,
        mib: u32,
        ram: GuestRam,
    ) -> Result<Self, LayoutError> {
        if mib == 0 || mib > MAX_MIB {
            return Err(LayoutError::BadSize(mib));
        }
        let size = u64::from(mib) * MIB;
        let host = if ram.is_identity() {
            take_identity(name, &ram, size)?
        } else {
            let frames = (size / FRAME_SIZE) as usize;
            mem.frames
                .lock()
                .allocate_contiguous(frames, TWO_MIB_FRAMES)
                .ok_or(LayoutError::OutOfMemory { mib })?
        };
        let window = PhysWindow::new(mem, true);
        // SAFETY: the range was just allocated (or claimed) for this guest alone and is mapped
        // through the window.
        unsafe { core::ptr::write_bytes(window.virt(host.0), 0, size as usize) };
        Ok(Self {
            host,
            size,
            ram,
            window,
        })
    }

    /// The pieces of guest RAM as (GPA, HPA, length), for EPT and the IOMMU domain.
    pub fn pieces(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.ram
            .pieces()
            .map(|(gpa, offset, len)| (gpa, self.host.0 + offset, len))
    }

    /// Zeroes all of the guest's memory again (before a restart reloads the image).
    pub fn reset(&mut self) {
        // SAFETY: the range is this guest's memory, owned by `self` and mapped through the window;
        // the guest does not run while the hypervisor writes it (one CPU).
        unsafe { core::ptr::write_bytes(self.window.virt(self.host.0), 0, self.size as usize) };
    }

    /// The host address of guest-physical `gpa` if `[gpa, gpa + len)` is guest memory.
    fn host_ptr(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        let offset = self.ram.offset(gpa, len)?;
        Some(self.window.virt(self.host.0 + offset))
    }

    /// Guest memory at `gpa` for `len` bytes, if the range is guest memory.
    pub fn bytes(&self, gpa: u64, len: u64) -> Option<&[u8]> {
        let p = self.host_ptr(gpa, len)?;
        // SAFETY: the range lies inside this guest's memory, which this object owns; the guest
        // does not run while the hypervisor holds the borrow (one CPU).
        Some(unsafe { core::slice::from_raw_parts(p, len as usize) })
    }

    /// Guest memory at `gpa` for `len` bytes, writable.
    pub fn bytes_mut(&mut self, gpa: u64, len: u64) -> Option<&mut [u8]> {
        let p = self.host_ptr(gpa, len)?;
        // SAFETY: as in `bytes`, and `&mut self` makes the borrow exclusive.
        Some(unsafe { core::slice::from_raw_parts_mut(p, len as usize) })
    }

    /// Copies the image segments in (the memory is already zero, which covers BSS).
    pub fn load(&mut self, spec: &GuestSpec) -> Result<(), LayoutError> {
        for seg in &spec.segments {
            let outside = LayoutError::SegmentOutside {
                gpa: seg.gpa,
                len: seg.mem_len,
                memory: self.size,
            };
            if (seg.bytes.len() as u64) > seg.mem_len {
                return Err(outside);
            }
            let dst = self.bytes_mut(seg.gpa, seg.mem_len).ok_or(outside)?;
            dst[..seg.bytes.len()].copy_from_slice(seg.bytes);
        }
        Ok(())
    }

    /// Builds the EPT mapping the guest's RAM pieces to this memory, write-back, RWX, with the largest
    /// leaves the CPU allows (SDM "EPT Translation Mechanism"); without VMX (`caps` `None`:
    /// no processor walks it) 4 KiB leaves only.
    pub fn build_ept(
        &self,
        mem: &Memory,
        caps: Option<&VmxCapabilities>,
    ) -> Result<PageTable<Ept, PhysWindow>, LayoutError> {
        let mut large = LargePages::empty();
        let ept_caps = caps.map(|c| c.ept_vpid);
        large.set(LargePages::SIZE_2M, ept_caps.is_some_and(|c| c.pages_2m));
        large.set(LargePages::SIZE_1G, ept_caps.is_some_and(|c| c.pages_1g));
        let mut frames = Frames::new(mem);
        let format = Ept::new().with_execute_only(ept_caps.is_some_and(|c| c.execute_only));
        let config = Config::new(PagingLevels::Four).with_large_pages(large);
        let mut ept = PageTable::new(format, PhysWindow::new(mem, true), config, &mut frames)
            .map_err(LayoutError::Paging)?;
        for (gpa, hpa, len) in self.pieces() {
            ept.map(&mut frames, gpa, hpa, len, Attributes::wb(Access::RWX))
                .map_err(LayoutError::Paging)?;
        }
        Ok(ept)
    }

    /// Writes the 64-bit boot structures: a GDT with the flat code, data and TSS descriptors at
    /// the selectors of `sel`, and the identity map of the first 4 GiB in 2 MiB pages. Returns
    /// CR3.
    pub fn build_long_mode(&mut self, sel: BootSelectors) -> Result<u64, LayoutError> {
        let size = self.size;
        let len = u64::from(sel.gdt_limit()) + 1;
        let gdt = self
            .bytes_mut(GDT_GPA, len)
            .ok_or(LayoutError::SegmentOutside {
                gpa: GDT_GPA,
                len,
                memory: size,
            })?;
        gdt.fill(0);
        let tss_desc_low =
            0x67 | ((TSS_GPA & 0xff_ffff) << 16) | (0x8b << 40) | ((TSS_GPA >> 24) & 0xff) << 56;
        let entries: [(u16, u64); 4] = [
            (sel.cs, 0x00af_9b00_0000_ffff),
            (sel.ds, 0x00cf_9300_0000_ffff),
            (sel.tr, tss_desc_low),
            (sel.tr + 8, TSS_GPA >> 32),
        ];
        for (at, e) in entries {
            let at = usize::from(at);
            gdt[at..at + 8].copy_from_slice(&e.to_le_bytes());
        }
        let mut alloc = GuestFrames {
            next: PAGE_TABLES_GPA,
        };
        let phys = GuestPhys { mem: &mut *self };
        let config = Config::new(PagingLevels::Four).with_large_pages(LargePages::SIZE_2M);
        let mut tables =
            PageTable::new(Host::new().with_no_execute(false), phys, config, &mut alloc)
                .map_err(LayoutError::Paging)?;
        tables
            .map(&mut alloc, 0, 0, 4 << 30, Attributes::wb(Access::RWX))
            .map_err(LayoutError::Paging)?;
        // The tables live in guest memory for the guest's lifetime: never destroyed here.
        Ok(tables.root())
    }
}

/// Frames for the guest's own page tables, from the reserved low area of guest memory.
struct GuestFrames {
    next: u64,
}

impl conduit_paging::FrameAllocator for GuestFrames {
    fn allocate_frame(&mut self) -> Option<u64> {
        // Guest memory starts zeroed, so fresh frames read as zero.
        (self.next < PAGE_TABLES_END).then(|| {
            let f = self.next;
            self.next += FRAME_SIZE;
            f
        })
    }

    fn free_frame(&mut self, _frame: u64) {}
}

/// Guest-physical memory as seen by the page-table builder when it writes the guest's tables.
struct GuestPhys<'a> {
    mem: &'a mut GuestMemory,
}

impl conduit_paging::PhysMemory for GuestPhys<'_> {
    fn read_entry(&self, gpa: u64) -> u64 {
        self.mem
            .bytes(gpa, 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    fn write_entry(&mut self, gpa: u64, value: u64) {
        if let Some(b) = self.mem.bytes_mut(gpa, 8) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }
}
