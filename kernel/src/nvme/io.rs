//! I/O queues and data transfers of the NVMe driver ([`Controller`]): Create I/O Completion Queue
//! (with its MSI-X vector) and Create I/O Submission Queue, Read and Write with PRP1/PRP2 and a
//! PRP list, split so that no command exceeds the controller's MDTS (NVMe Base Spec 2.0 §3.3.1,
//! §4.1.1; the encodings are `conduit_nvme`'s).
//!
//! As for the admin queue, the caller decides where the queue and data memory lie and which
//! addresses the controller is given ([`DmaPages`]: host-physical for the CPU, device addresses
//! for the controller — a guest's guest-physical addresses when the function is in the guest's
//! IOMMU domain). Completions are polled, bounded by [`IO_TIMEOUT_MS`]; an interrupt the
//! completion queue raises goes wherever its MSI-X vector is routed, without the driver waiting
//! for it.

use super::controller::{Controller, NvmeError, Ring};
use super::regs::PAGE;
use conduit_hw::memory::PhysWindow;
use conduit_nvme::prp::{Chunk, Chunks, Prp, max_transfer, single_list_limit};
use conduit_nvme::{
    Command, Completion, Direction, IdentifyController, QueueMemory, QueuePair, Status,
};
use conduit_pci::Bdf;
use volatile::VolatilePtr;

/// Most time one I/O command may take.
pub const IO_TIMEOUT_MS: u64 = 2000;
/// Entries of each I/O queue (one page holds 64 submission entries).
pub const IO_ENTRIES: u16 = 64;

/// Pages lent to the driver: `hpa` for the CPU (through the physical-memory window), `device`
/// for the controller.
#[derive(Debug, Clone, Copy)]
pub struct DmaPages {
    pub window: PhysWindow,
    pub hpa: u64,
    pub device: u64,
    pub pages: u64,
}

impl DmaPages {
    /// Zeroes every page.
    pub fn zero(&self) {
        // SAFETY: the pages were lent to the driver (allocated for it, or guest memory lent to
        // it) and are mapped through the window.
        unsafe {
            core::ptr::write_bytes(self.window.virt(self.hpa), 0, (self.pages * PAGE) as usize)
        };
    }

    /// Writes the 64-bit little-endian `values` from the start of the first page (a PRP list);
    /// returns how many were written (at most a page's worth).
    pub fn write_u64s(&self, values: impl Iterator<Item = u64>) -> usize {
        let dst = self.window.virt(self.hpa).cast::<u64>();
        let mut n = 0;
        for v in values.take((PAGE / 8) as usize) {
            // SAFETY: `n` < PAGE / 8, so the 8 bytes lie in the first page, which is mapped
            // through the window and 8-byte aligned (pages are).
            unsafe { core::ptr::write_volatile(dst.add(n), v.to_le()) };
            n += 1;
        }
        n
    }
}

/// An I/O queue pair's memory: the submission queue in `sq`, the completion queue in `cq`.
#[derive(Debug, Clone, Copy)]
pub struct IoMemory {
    pub sq: DmaPages,
    pub cq: DmaPages,
}

impl QueueMemory for IoMemory {
    fn write_command(&mut self, slot: u16, command: &Command) {
        let at = self.sq.hpa + u64::from(slot % IO_ENTRIES) * 64;
        let dst = self.sq.window.virt(at).cast::<u32>();
        for (i, chunk) in command.to_bytes().as_chunks::<4>().0.iter().enumerate() {
            // SAFETY: `slot` is reduced modulo IO_ENTRIES (64 entries of 64 bytes: one page), so
            // the entry lies inside the submission queue page, mapped and 4-byte aligned.
            unsafe { core::ptr::write_volatile(dst.add(i), u32::from_le_bytes(*chunk)) };
        }
    }

    fn read_completion(&self, slot: u16) -> Completion {
        let at = self.cq.hpa + u64::from(slot % IO_ENTRIES) * 16;
        let src = self.cq.window.virt(at).cast::<u32>();
        // SAFETY: the 16 bytes lie inside the completion queue page (slot reduced modulo
        // IO_ENTRIES), mapped through the window, 4-byte aligned. Dword 3 (with the phase tag) is
        // read first: the others are only meaningful once it shows a new entry.
        unsafe {
            let dw3 = core::ptr::read_volatile(src.add(3));
            core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
            Completion {
                dw0: core::ptr::read_volatile(src),
                dw1: core::ptr::read_volatile(src.add(1)),
                dw2: core::ptr::read_volatile(src.add(2)),
                dw3,
            }
        }
    }
}

/// One created I/O queue pair (submission queue `qid` completing on completion queue `qid`).
pub struct IoQueue {
    pub bdf: Bdf,
    pub qid: u16,
    queue: QueuePair,
    mem: IoMemory,
    sq_doorbell: VolatilePtr<'static, u32>,
    cq_doorbell: VolatilePtr<'static, u32>,
    stuck: bool,
}

// SAFETY: the only non-`Send` fields are volatile pointers to the queue's doorbells in the
// controller's BAR0, device memory mapped for the life of the hypervisor; a queue is used through
// `&mut` by one CPU at a time.
unsafe impl Send for IoQueue {}

impl Controller {
    /// Creates I/O completion queue `qid` (interrupts on MSI-X `vector`, or none) and I/O
    /// submission queue `qid` on it, in `mem` (its completion page is zeroed first).
    pub fn create_io_queue(
        &mut self,
        qid: u16,
        mem: IoMemory,
        vector: Option<u16>,
    ) -> Result<IoQueue, NvmeError> {
        let entries = u16::try_from(self.cap().max_queue_entries())
            .unwrap_or(u16::MAX)
            .min(IO_ENTRIES);
        let encode = |what| move |error| NvmeError::Encode { what, error };
        let what = "Create I/O Completion Queue";
        mem.cq.zero();
        let cq = Command::create_io_cq(qid, entries.into(), mem.cq.device, vector)
            .map_err(encode(what))?;
        self.admin_ok(cq, what)?;
        let what = "Create I/O Submission Queue";
        let sq =
            Command::create_io_sq(qid, entries.into(), mem.sq.device, qid).map_err(encode(what))?;
        self.admin_ok(sq, what)?;
        let (sq_doorbell, cq_doorbell) = self.doorbells(qid)?;
        let bdf = self.bdf;
        Ok(IoQueue {
            bdf,
            qid,
            queue: QueuePair::new(qid, entries, entries)
                .map_err(|error| NvmeError::Queue { bdf, error })?,
            mem,
            sq_doorbell,
            cq_doorbell,
            stuck: false,
        })
    }

    /// Deletes the queue pair (submission queue first, as the specification requires).
    pub fn delete_io_queue(&mut self, q: IoQueue) -> Result<(), NvmeError> {
        let encode = |what| move |error| NvmeError::Encode { what, error };
        let what = "Delete I/O Submission Queue";
        self.admin_ok(Command::delete_io_sq(q.qid).map_err(encode(what))?, what)?;
        let what = "Delete I/O Completion Queue";
        self.admin_ok(Command::delete_io_cq(q.qid).map_err(encode(what))?, what)?;
        Ok(())
    }

    /// Most bytes one command may move: MDTS (from `id`, in units of CAP.MPSMIN) and what PRP1
    /// and one PRP list page describe, whichever is smaller.
    pub fn transfer_limit(&self, id: &IdentifyController) -> u64 {
        let list = single_list_limit(PAGE);
        max_transfer(id.mdts, self.cap().min_page_size()).map_or(list, |m| m.min(list))
    }
}

impl IoQueue {
    /// Submits `command` and polls for its completion, returned whatever its status.
    pub fn run(&mut self, command: Command, what: &'static str) -> Result<Completion, NvmeError> {
        let mut ring = Ring {
            bdf: self.bdf,
            queue: &mut self.queue,
            mem: &mut self.mem,
            sq_doorbell: &self.sq_doorbell,
            cq_doorbell: &self.cq_doorbell,
            stuck: &mut self.stuck,
        };
        ring.run(command, what, IO_TIMEOUT_MS, || None)
    }
}

/// A Read or Write of a whole buffer.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub direction: Direction,
    pub nsid: u32,
    /// First logical block.
    pub slba: u64,
    /// Logical block size of the namespace.
    pub block: u32,
    /// The buffer (device address) and its length in bytes.
    pub buffer: u64,
    pub bytes: u64,
    /// Most bytes per command ([`Controller::transfer_limit`]).
    pub limit: u64,
}

/// One command of a [`Transfer`], as it completed.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub chunk: Chunk,
    pub prp1: u64,
    pub prp2: u64,
    /// PRP list entries written for it (0: none needed).
    pub list_entries: usize,
    pub status: Status,
}

/// Runs `t` on `q`, one command per MDTS-sized chunk, each chunk's PRP list (if it needs one) in
/// `list` (one page, not inside the buffer). Stops at the first command that fails to complete or
/// completes with an error status; `each` sees every completed command.
pub fn transfer(
    q: &mut IoQueue,
    t: &Transfer,
    list: &DmaPages,
    mut each: impl FnMut(&Done),
) -> Result<usize, NvmeError> {
    let what = t.direction.name();
    let prp_err = |error| NvmeError::Prp { what, error };
    let chunks = Chunks::new(t.bytes, t.block, t.limit).map_err(prp_err)?;
    let mut commands = 0;
    for chunk in chunks {
        let prp = Prp::new(t.buffer + chunk.offset, chunk.bytes, PAGE).map_err(prp_err)?;
        let list_entries = if prp.needs_list() {
            list.write_u64s(prp.list())
        } else {
            0
        };
        let prp2 = prp.prp2(list.device).map_err(prp_err)?;
        let slba = t.slba + chunk.offset / u64::from(t.block);
        let command =
            Command::read_write(t.direction, t.nsid, slba, chunk.blocks, prp.prp1(), prp2)
                .map_err(|error| NvmeError::Encode { what, error })?;
        let c = q.run(command, what)?;
        commands += 1;
        let done = Done {
            chunk,
            prp1: prp.prp1(),
            prp2,
            list_entries,
            status: c.status(),
        };
        each(&done);
        if !done.status.is_success() {
            return Err(NvmeError::Status {
                what,
                status: done.status,
            });
        }
    }
    Ok(commands)
}
