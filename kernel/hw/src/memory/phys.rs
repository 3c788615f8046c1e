//! Access to physical memory through the loader's physical-memory window, and the adapters that
//! let the page-table library (`conduit-paging`) build EPT, VT-d and host tables in real memory.

use super::{FRAME_SIZE, Memory, PhysAddr};

/// Physical memory seen through the offset window. `coherent = false` makes every table update
/// flushed from the CPU caches (CLFLUSH), for a VT-d unit whose page walks do not snoop
/// (VT-d spec, 11.4.3 Extended Capability Register, field C).
#[derive(Debug, Clone, Copy)]
pub struct PhysWindow {
    offset: u64,
    coherent: bool,
}

/// Cache-line size used for CLFLUSH (CPUID.1:EBX[15:8] * 8 is 64 on every x86-64 CPU we support).
const CACHE_LINE: u64 = 64;

impl PhysWindow {
    pub fn new(mem: &Memory, coherent: bool) -> Self {
        Self {
            offset: mem.phys_offset(),
            coherent,
        }
    }

    /// The kernel virtual address of a physical address.
    pub fn virt(&self, phys: u64) -> *mut u8 {
        (self.offset + phys) as *mut u8
    }

    /// Zeroes one frame.
    pub fn zero_frame(&self, frame: PhysAddr) {
        // SAFETY: the frame is physical memory owned by the caller, mapped through the window.
        unsafe { core::ptr::write_bytes(self.virt(frame.0), 0, FRAME_SIZE as usize) };
    }

    /// Whether this CPU has CMPXCHG16B (CPUID.01H:ECX bit 13), which [`Self::store_128`] needs.
    pub fn has_store_128() -> bool {
        raw_cpuid::CpuId::new()
            .get_feature_info()
            .is_some_and(|f| f.has_cmpxchg16b())
    }

    /// Stores `value` (low qword first) into the 16 bytes at `phys` in one atomic access, so a
    /// reader that also reads 16 bytes at once (a VT-d unit fetching an IRTE) sees the old or the
    /// new value, never half of each: LOCK CMPXCHG16B, retried until it takes (SDM Vol. 2A,
    /// "CMPXCHG8B/CMPXCHG16B"). `phys` must be 16-byte aligned, owned by the caller, and the CPU
    /// must have the instruction ([`Self::has_store_128`]).
    pub fn store_128(&mut self, phys: u64, value: [u64; 2]) {
        assert!(
            phys.is_multiple_of(16),
            "store_128 of an unaligned address {phys:#x}"
        );
        let p = self.virt(phys).cast::<u64>();
        // SAFETY: `p` is mapped, aligned and the caller's (see above); two aligned loads.
        let (mut lo, mut hi) = unsafe { (p.read_volatile(), p.add(1).read_volatile()) };
        loop {
            let swapped: u8;
            // SAFETY: CMPXCHG16B on a 16-byte-aligned, mapped address the caller owns. RBX is
            // reserved by the compiler: the low qword is swapped in and RBX restored after.
            unsafe {
                core::arch::asm!(
                    "xchg rbx, {new_lo}",
                    "lock cmpxchg16b [{p}]",
                    "sete {ok}",
                    "xchg rbx, {new_lo}",
                    p = in(reg) p,
                    new_lo = inout(reg) value[0] => _,
                    ok = out(reg_byte) swapped,
                    in("rcx") value[1],
                    inout("rax") lo,
                    inout("rdx") hi,
                    options(nostack),
                );
            }
            if swapped != 0 {
                return;
            }
        }
    }
}

impl conduit_paging::PhysMemory for PhysWindow {
    fn read_entry(&self, phys: u64) -> u64 {
        // SAFETY: the page-table library only reads entries of frames it allocated through
        // `Frames`, which are mapped through the window and 8-byte aligned.
        unsafe { core::ptr::read_volatile(self.virt(phys).cast::<u64>()) }
    }

    fn write_entry(&mut self, phys: u64, value: u64) {
        // SAFETY: as in `read_entry`; a single aligned 64-bit volatile store is never torn.
        unsafe { core::ptr::write_volatile(self.virt(phys).cast::<u64>(), value) };
    }

    fn flush(&mut self, phys: u64, len: u64) {
        if self.coherent {
            return;
        }
        let mut line = phys & !(CACHE_LINE - 1);
        while line < phys + len {
            // SAFETY: CLFLUSH of a mapped address only writes the line back; it has no other
            // architectural effect.
            unsafe { core::arch::x86_64::_mm_clflush(self.virt(line)) };
            line += CACHE_LINE;
        }
        // SAFETY: MFENCE orders the flushes before the invalidation that follows.
        unsafe { core::arch::x86_64::_mm_mfence() };
    }
}

/// Zeroed 4 KiB frames for page tables, from the kernel's frame allocator.
#[derive(Debug, Clone, Copy)]
pub struct Frames<'a> {
    mem: &'a Memory,
}

impl<'a> Frames<'a> {
    pub fn new(mem: &'a Memory) -> Self {
        Self { mem }
    }
}

impl conduit_paging::FrameAllocator for Frames<'_> {
    fn allocate_frame(&mut self) -> Option<u64> {
        let frame = self.mem.frames.lock().allocate()?;
        PhysWindow::new(self.mem, true).zero_frame(frame);
        Some(frame.0)
    }

    fn free_frame(&mut self, frame: u64) {
        self.mem.frames.lock().free(PhysAddr(frame));
    }
}
