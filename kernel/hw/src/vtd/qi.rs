//! Queued invalidation (§6.5.2): a ring of 128-bit descriptors in memory that the unit fetches
//! from IQH up to IQT.
//!
//! One 4 KiB page holds 256 descriptors (IQA.QS = 0, legacy 128-bit descriptors). Every
//! submission ends with an invalidation wait descriptor (§6.5.2.8) asking for a status write of a
//! fresh sequence number; submission waits for that write, so the ring never holds more than one
//! batch and the invalidations are complete when `submit` returns. The descriptors (context
//! cache §6.5.2.1, IOTLB §6.5.2.3, invalidation wait §6.5.2.8) are encoded by `conduit_vtd`.
//!
//! The same queue carries interrupt-entry-cache invalidations (type 4) once interrupt remapping
//! is enabled.

use super::VtdError;
use super::inval::wait_for;
use super::regs::{Registers, fsts};
use crate::memory::{Frames, PhysWindow};
use conduit_paging::{FrameAllocator, PhysMemory};
pub use conduit_vtd::Descriptor;
use volatile::{VolatilePtr, map_field};

/// Descriptors in the one-page queue.
const ENTRIES: u64 = 256;
/// Largest batch: the ring must keep room for the wait descriptor.
const MAX_BATCH: usize = 64;

/// The invalidation queue of one unit.
pub struct Queue {
    window: PhysWindow,
    base: u64,
    status: u64,
    tail: u64,
    sequence: u32,
}

impl Queue {
    /// Allocates the ring and the status word.
    pub fn new(window: PhysWindow, frames: &mut Frames<'_>) -> Result<Self, VtdError> {
        let base = frames.allocate_frame().ok_or(VtdError::OutOfFrames)?;
        let status = frames.allocate_frame().ok_or(VtdError::OutOfFrames)?;
        let mut window = window;
        window.flush(base, 4096);
        Ok(Self {
            window,
            base,
            status,
            tail: 0,
            sequence: 0,
        })
    }

    /// The IQA value: base address, 128-bit descriptors (DW = 0), one page (QS = 0).
    pub fn iqa(&self) -> u64 {
        self.base
    }

    fn status_word(&self) -> u32 {
        let ptr = self.window.virt(self.status).cast::<u32>();
        // SAFETY: the status frame belongs to this queue and is mapped through the window; the
        // unit writes it with a DMA write, so it is read volatile.
        unsafe { core::ptr::read_volatile(ptr) }
    }

    /// Queues `descriptors` plus a wait descriptor and waits until the unit has processed them.
    /// A queue error (FSTS.IQE, ICE, ITE) is cleared and returned with the head index.
    pub fn submit(
        &mut self,
        regs: VolatilePtr<'static, Registers>,
        descriptors: &[Descriptor],
    ) -> Result<(), VtdError> {
        if descriptors.len() > MAX_BATCH {
            return Err(VtdError::BatchTooLarge {
                len: descriptors.len(),
            });
        }
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let wait = Descriptor::wait(self.status, self.sequence);
        for d in descriptors.iter().chain(core::iter::once(&wait)) {
            let at = self.base + self.tail * 16;
            self.window.write_entry(at, d.lo);
            self.window.write_entry(at + 8, d.hi);
            self.window.flush(at, 16);
            self.tail = (self.tail + 1) % ENTRIES;
        }
        map_field!(regs.iqt).write(self.tail << 4);
        let sequence = self.sequence;
        let status = map_field!(regs.fsts);
        let mut error = 0;
        let done = wait_for(|| {
            error = status.read() & fsts::QUEUE_ERRORS;
            error != 0 || self.status_word() == sequence
        });
        if error != 0 {
            // Drop what is left of the batch (the tail moves back to where the unit stopped),
            // then clear the error so that the unit fetches again.
            let head = (map_field!(regs.iqh).read() >> 4) & (ENTRIES - 1);
            self.tail = head;
            map_field!(regs.iqt).write(head << 4);
            status.write(error);
            return Err(VtdError::QueueError { fsts: error, head });
        }
        if !done {
            return Err(VtdError::Timeout {
                what: "invalidation wait descriptor status write",
            });
        }
        Ok(())
    }
}
