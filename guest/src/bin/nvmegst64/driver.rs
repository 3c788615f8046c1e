//! The guest's NVMe admin-queue driver: BAR0 registers read and written with plain volatile
//! accesses at the address the guest programmed into its virtual BAR0 (mapped by the hypervisor
//! in EPT onto the VF's physical BAR), and one admin queue pair in the guest's own memory,
//! addressed by guest-physical address (the VF's DMA goes through the guest's IOMMU domain, where
//! IOVA = GPA). Every encoding and the queue state machine are `conduit_nvme`'s, the same the
//! hypervisor's driver (`kernel/src/nvme/controller.rs`) uses.
//!
//! Section numbers cite the NVM Express Base Specification, Revision 2.0.

use conduit_nvme::regs::offset;
use conduit_nvme::{
    Aqa, Cap, Cc, Command, Completion, Csts, ParseError, QueueError, QueueMemory, QueuePair, Status,
};
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{Ordering, fence};

/// Bytes of one memory page (CC.MPS = 0, §3.1.3.5).
pub const PAGE: usize = 4096;
/// Admin queue sizes (AQA, §3.1.3.8): one page holds 64 submission or 256 completion entries.
pub const SQ_ENTRIES: u16 = 32;
pub const CQ_ENTRIES: u16 = 32;
/// Polls per millisecond of a timeout. The guest has no calibrated clock: each poll is one
/// uncached MMIO read of the controller (CSTS), which takes at least 250 ns on hardware and far
/// longer when the controller is emulated, so 4000 polls last at least 1 ms. TSC cycles are
/// reported next to the counts.
pub const POLLS_PER_MS: u64 = 4000;
/// Most time one admin command may take, in milliseconds (as the hypervisor's driver allows).
pub const ADMIN_TIMEOUT_MS: u64 = 2000;

/// The pages of [`MEMORY`], by index.
pub mod page {
    /// A sentinel below the queues.
    pub const SENTINEL_LOW: usize = 0;
    /// Admin Submission Queue.
    pub const SQ: usize = 1;
    /// Admin Completion Queue.
    pub const CQ: usize = 2;
    /// Identify data.
    pub const DATA: usize = 3;
    /// A sentinel above the data page.
    pub const SENTINEL_HIGH: usize = 4;
    /// Pages in all.
    pub const COUNT: usize = 5;
}

/// Page-aligned memory of this guest for the queues, the data and the sentinels.
#[repr(C, align(4096))]
pub struct Pages(UnsafeCell<[[u8; PAGE]; page::COUNT]>);

// SAFETY: the guest is single-threaded with interrupts off; the pages are only touched through
// volatile accesses by this thread and by the controller's DMA.
unsafe impl Sync for Pages {}

/// In `.bss`, so inside the guest's memory (image at 1 MiB, identity-mapped: linear = GPA).
pub static MEMORY: Pages = Pages(UnsafeCell::new([[0; PAGE]; page::COUNT]));

/// Guest-physical address of page `index` of [`MEMORY`] (= its linear address).
pub fn gpa(index: usize) -> u64 {
    MEMORY.0.get() as u64 + (index * PAGE) as u64
}

fn byte_ptr(index: usize) -> *mut u8 {
    (MEMORY.0.get() as *mut u8).wrapping_add(index * PAGE)
}

/// Fills page `index` with `byte`.
pub fn fill(index: usize, byte: u8) {
    assert!(index < page::COUNT);
    for i in 0..PAGE {
        // SAFETY: `i` < PAGE, inside page `index` of MEMORY (checked above); volatile because
        // the controller may write the page too.
        unsafe { byte_ptr(index).add(i).write_volatile(byte) };
    }
}

/// Copies page `index` out.
pub fn read_page(index: usize, out: &mut [u8; PAGE]) {
    assert!(index < page::COUNT);
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: inside page `index` of MEMORY; volatile: the controller wrote it by DMA.
        *b = unsafe { byte_ptr(index).add(i).read_volatile() };
    }
}

/// FNV-1a over the page's little-endian 64-bit words: the checksum the hypervisor's `nvme-vf`
/// self-test prints for the same Identify data.
pub fn checksum(index: usize) -> u64 {
    assert!(index < page::COUNT);
    let words = byte_ptr(index).cast::<u64>();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..PAGE / 8 {
        // SAFETY: inside page `index` of MEMORY, which is 4096-byte aligned.
        let w = unsafe { words.add(i).read_volatile() };
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Why the driver gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// BAR0 is smaller than the registers and the admin doorbells.
    SmallBar {
        size: u64,
        needed: u64,
    },
    /// CAP reads 0 or all ones: no controller answers behind the BAR.
    NotAnswering {
        cap: u64,
        csts: u32,
    },
    /// CAP does not allow 4 KiB memory pages (§3.1.3.1 MPSMIN/MPSMAX).
    PageSize {
        min: u64,
        max: u64,
    },
    /// Controller Fatal Status (§3.1.3.6).
    Fatal {
        csts: u32,
    },
    /// No answer within `polls` polls.
    Timeout {
        what: &'static str,
        polls: u64,
    },
    Queue(QueueError),
    /// The completion carried another command's identifier.
    WrongCid {
        expected: u16,
        got: u16,
    },
    /// The command completed with an error status.
    Status {
        what: &'static str,
        status: Status,
    },
    Parse(ParseError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmallBar { size, needed } => {
                write!(f, "BAR0 is {size:#x} bytes, the driver needs {needed:#x}")
            }
            Self::NotAnswering { cap, csts } => write!(
                f,
                "the controller does not answer (CAP {cap:#x}, CSTS {csts:#x})"
            ),
            Self::PageSize { min, max } => {
                write!(
                    f,
                    "memory page sizes {min:#x}-{max:#x} do not include 4 KiB"
                )
            }
            Self::Fatal { csts } => write!(f, "controller fatal status (CSTS {csts:#x})"),
            Self::Timeout { what, polls } => write!(f, "{what}: no answer in {polls} polls"),
            Self::Queue(e) => write!(f, "admin queue: {e}"),
            Self::WrongCid { expected, got } => write!(
                f,
                "completion for command {got:#06x} while waiting for {expected:#06x}"
            ),
            Self::Status { what, status } => write!(f, "{what}: {status}"),
            Self::Parse(e) => write!(f, "Identify data: {e}"),
        }
    }
}

/// The admin queues in [`MEMORY`], by slot (§4.1: 64-byte SQ entries, 16-byte CQ entries).
struct AdminQueues;

impl QueueMemory for AdminQueues {
    fn write_command(&mut self, slot: u16, command: &Command) {
        let dst = byte_ptr(page::SQ)
            .cast::<u32>()
            .wrapping_add(usize::from(slot % SQ_ENTRIES) * 16);
        for (i, chunk) in command.to_bytes().as_chunks::<4>().0.iter().enumerate() {
            let dword = u32::from_le_bytes(*chunk);
            // SAFETY: the slot is reduced modulo the queue size: the 64 bytes lie inside the SQ
            // page of MEMORY, 4-byte aligned.
            unsafe { dst.add(i).write_volatile(dword) };
        }
    }

    fn read_completion(&self, slot: u16) -> Completion {
        let src = byte_ptr(page::CQ)
            .cast::<u32>()
            .wrapping_add(usize::from(slot % CQ_ENTRIES) * 4);
        // SAFETY: the 16 bytes lie inside the CQ page of MEMORY (slot reduced modulo the queue
        // size), 4-byte aligned. Dword 3 (with the phase tag) is read first: the others only
        // mean something once it shows a new entry (§4.6).
        unsafe {
            let dw3 = src.add(3).read_volatile();
            fence(Ordering::Acquire);
            Completion {
                dw0: src.read_volatile(),
                dw1: src.add(1).read_volatile(),
                dw2: src.add(2).read_volatile(),
                dw3,
            }
        }
    }
}

/// Reads the time-stamp counter (cycles, not calibrated).
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; CR4.TSD is clear in the guest's initial state.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One NVMe controller behind a BAR at `base` (guest-physical, mapped uncached by EPT).
pub struct Controller {
    base: u64,
    cap: Cap,
    queue: QueuePair,
}

impl Controller {
    /// Reads CAP (low half first, §3.1.3) and checks that the controller answers, supports
    /// 4 KiB pages and has its admin doorbells inside the `size` bytes of the BAR.
    pub fn open(base: u64, size: u64) -> Result<Self, Error> {
        let mut c = Self {
            base,
            cap: Cap(0),
            queue: QueuePair::new(0, SQ_ENTRIES, CQ_ENTRIES).map_err(Error::Queue)?,
        };
        if size < offset::DOORBELLS {
            return Err(Error::SmallBar {
                size,
                needed: offset::DOORBELLS + 8,
            });
        }
        let lo = c.read(offset::CAP);
        let hi = c.read(offset::CAP + 4);
        c.cap = Cap((u64::from(hi) << 32) | u64::from(lo));
        if c.cap.0 == 0 || c.cap.0 == u64::MAX {
            return Err(Error::NotAnswering {
                cap: c.cap.0,
                csts: c.read(offset::CSTS),
            });
        }
        if !c.cap.supports_4k_pages() {
            return Err(Error::PageSize {
                min: c.cap.min_page_size(),
                max: c.cap.max_page_size(),
            });
        }
        let needed = c.cap.cq_head_doorbell(0) + 4;
        if size < needed {
            return Err(Error::SmallBar { size, needed });
        }
        Ok(c)
    }

    fn read(&self, off: u64) -> u32 {
        let p = (self.base + off) as usize as *const u32;
        // SAFETY: `off` is a register offset inside the BAR (checked against its size in
        // `open`); the identity map covers the BAR window and the hypervisor maps the VF's BAR
        // there in EPT (else the access stops this guest with an EPT violation).
        unsafe { p.read_volatile() }
    }

    fn write(&self, off: u64, value: u32) {
        let p = (self.base + off) as usize as *mut u32;
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) };
    }

    pub fn cap(&self) -> Cap {
        self.cap
    }

    pub fn version(&self) -> conduit_nvme::Version {
        conduit_nvme::Version(self.read(offset::VS))
    }

    pub fn csts(&self) -> Csts {
        Csts(self.read(offset::CSTS))
    }

    /// Polls allowed for CAP.TO (at least 500 ms, as the hypervisor's driver allows).
    fn enable_polls(&self) -> u64 {
        u64::from(self.cap.timeout_ms().max(500)) * POLLS_PER_MS
    }

    /// Polls `done` up to `polls` times; returns the polls used and the TSC cycles spent.
    fn poll(&self, polls: u64, mut done: impl FnMut(Csts) -> bool) -> Option<(u64, u64)> {
        let start = rdtsc();
        for n in 1..=polls {
            if done(self.csts()) {
                return Some((n, rdtsc().wrapping_sub(start)));
            }
            core::hint::spin_loop();
        }
        None
    }

    /// CC.EN = 0 and waits for CSTS.RDY = 0 (§3.5.2): the controller drops its queues.
    /// Returns the polls used and the TSC cycles spent.
    pub fn disable(&mut self) -> Result<(u64, u64), Error> {
        let cc = Cc(self.read(offset::CC));
        if cc.enabled() {
            self.write(offset::CC, cc.with_enable(false).0);
        }
        let polls = self.enable_polls();
        self.poll(polls, |s| !s.ready()).ok_or(Error::Timeout {
            what: "CSTS.RDY to clear after CC.EN = 0",
            polls,
        })
    }

    /// Memory-based initialization (§3.5.1): disabled first, completion queue zeroed (every
    /// phase tag 0), interrupts masked (INTMS: completions are polled), AQA, ASQ and ACQ by
    /// guest-physical address, CC (4 KiB pages, 64/16-byte entries) then CC.EN = 1, and CSTS.RDY
    /// awaited. Returns the polls used and the TSC cycles spent waiting for RDY.
    pub fn enable(&mut self) -> Result<(u64, u64), Error> {
        self.disable()?;
        fill(page::SQ, 0);
        fill(page::CQ, 0);
        self.queue.reset();
        let aqa = Aqa::new(SQ_ENTRIES, CQ_ENTRIES).ok_or(Error::Queue(QueueError::BadSize {
            entries: SQ_ENTRIES,
        }))?;
        let (sq, cq) = (gpa(page::SQ), gpa(page::CQ));
        self.write(offset::INTMS, u32::MAX);
        self.write(offset::AQA, aqa.0);
        self.write(offset::ASQ, sq as u32);
        self.write(offset::ASQ + 4, (sq >> 32) as u32);
        self.write(offset::ACQ, cq as u32);
        self.write(offset::ACQ + 4, (cq >> 32) as u32);
        self.write(offset::CC, Cc::standard(false).0);
        self.write(offset::CC, Cc::standard(true).0);
        let polls = self.enable_polls();
        let waited = self.poll(polls, |s| s.ready() || s.fatal() || s.absent());
        let csts = self.csts();
        if csts.fatal() || csts.absent() {
            return Err(Error::Fatal { csts: csts.0 });
        }
        waited.ok_or(Error::Timeout {
            what: "CSTS.RDY after CC.EN = 1",
            polls,
        })
    }

    /// Submits `command`, rings the SQ tail doorbell and polls the CQ for its completion
    /// (§3.3.1.2 and §4.6: a new entry shows the expected phase tag), then rings the CQ head
    /// doorbell. Returns the completion whatever its status.
    pub fn admin(&mut self, command: Command, what: &'static str) -> Result<Completion, Error> {
        let submitted = self
            .queue
            .submit(&mut AdminQueues, command)
            .map_err(Error::Queue)?;
        // The entry must be in memory before the controller hears of it.
        fence(Ordering::SeqCst);
        self.write(self.cap.sq_tail_doorbell(0), u32::from(submitted.sq_tail));
        let polls = ADMIN_TIMEOUT_MS * POLLS_PER_MS;
        for _ in 0..polls {
            if let Some(reaped) = self.queue.poll(&AdminQueues).map_err(Error::Queue)? {
                self.write(self.cap.cq_head_doorbell(0), u32::from(reaped.cq_head));
                let got = reaped.completion.cid();
                if got != submitted.cid {
                    return Err(Error::WrongCid {
                        expected: submitted.cid,
                        got,
                    });
                }
                return Ok(reaped.completion);
            }
            // One MMIO read per poll: it paces the loop and catches a fatal controller.
            let csts = self.csts();
            if csts.fatal() {
                return Err(Error::Fatal { csts: csts.0 });
            }
            core::hint::spin_loop();
        }
        Err(Error::Timeout { what, polls })
    }
}
