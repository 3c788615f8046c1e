//! The NVMe controller registers of BAR0 as a typed volatile block (NVMe Base Spec 2.0 §3.1.3,
//! Figure 35), and the memory the admin queue pair lives in.
//!
//! 64-bit registers (CAP, ASQ, ACQ) are accessed as two 32-bit halves, low half first, which
//! every controller must accept (§3.1.3); doorbells are separate 32-bit registers at offsets
//! computed from CAP.DSTRD (`conduit_nvme::Cap::sq_tail_doorbell`).

use conduit_hw::memory::PhysWindow;
use conduit_nvme::regs::offset;
use conduit_nvme::{Command, Completion, QueueMemory};
use core::mem::offset_of;

/// Controller registers 00h-37h.
#[repr(C)]
pub struct Registers {
    pub cap_lo: u32,
    pub cap_hi: u32,
    pub vs: u32,
    pub intms: u32,
    pub intmc: u32,
    pub cc: u32,
    _reserved: u32,
    pub csts: u32,
    pub nssr: u32,
    pub aqa: u32,
    pub asq_lo: u32,
    pub asq_hi: u32,
    pub acq_lo: u32,
    pub acq_hi: u32,
}

const _: () = {
    assert!(offset_of!(Registers, cap_lo) as u64 == offset::CAP);
    assert!(offset_of!(Registers, vs) as u64 == offset::VS);
    assert!(offset_of!(Registers, intms) as u64 == offset::INTMS);
    assert!(offset_of!(Registers, intmc) as u64 == offset::INTMC);
    assert!(offset_of!(Registers, cc) as u64 == offset::CC);
    assert!(offset_of!(Registers, csts) as u64 == offset::CSTS);
    assert!(offset_of!(Registers, nssr) as u64 == offset::NSSR);
    assert!(offset_of!(Registers, aqa) as u64 == offset::AQA);
    assert!(offset_of!(Registers, asq_lo) as u64 == offset::ASQ);
    assert!(offset_of!(Registers, acq_lo) as u64 == offset::ACQ);
    assert!(core::mem::size_of::<Registers>() == 0x38);
};

/// Bytes of one page of queue or data memory (CC.MPS = 0).
pub const PAGE: u64 = 4096;
/// Admin queue sizes: one page each is room for 64 submission and 256 completion entries.
pub const ADMIN_SQ_ENTRIES: u16 = 32;
pub const ADMIN_CQ_ENTRIES: u16 = 32;
/// Pages of [`AdminMemory`]: submission queue, completion queue, one data page.
pub const ADMIN_PAGES: u64 = 3;

/// The three pages an admin queue pair and its data transfers use: host-physical `hpa` (for the
/// CPU, through the physical-memory window) and `device` (the address the controller is given:
/// an IOVA of the domain its function is assigned to).
#[derive(Debug, Clone, Copy)]
pub struct AdminMemory {
    pub window: PhysWindow,
    pub hpa: u64,
    pub device: u64,
}

impl AdminMemory {
    /// Device address of the submission queue.
    pub fn sq(&self) -> u64 {
        self.device
    }

    /// Device address of the completion queue.
    pub fn cq(&self) -> u64 {
        self.device + PAGE
    }

    /// Device address of the data page.
    pub fn data(&self) -> u64 {
        self.device + 2 * PAGE
    }

    fn hpa_of(&self, device: u64) -> u64 {
        self.hpa + (device - self.device)
    }

    fn zero(&self, page: u64) {
        // SAFETY: every page of the admin memory belongs to it (allocated for it, or guest
        // memory lent to it) and is mapped through the window.
        unsafe { core::ptr::write_bytes(self.window.virt(self.hpa_of(page)), 0, PAGE as usize) };
    }

    /// Zeroes the completion queue: every entry's phase tag becomes 0.
    pub fn clear_queue(&self) {
        self.zero(self.cq());
    }

    /// Zeroes the data page.
    pub fn clear_data(&self) {
        self.zero(self.data());
    }

    /// Fills the data page with `data` (a command's input).
    pub fn write_data(&self, data: &[u8; PAGE as usize]) {
        let dst = self.window.virt(self.hpa_of(self.data()));
        for (i, b) in data.iter().enumerate() {
            // SAFETY: the data page is mapped through the window and belongs to this memory;
            // volatile because the controller reads it by DMA.
            unsafe { core::ptr::write_volatile(dst.add(i), *b) };
        }
    }

    /// Copies the data page out.
    pub fn read_data(&self, out: &mut [u8; PAGE as usize]) {
        let src = self.window.virt(self.hpa_of(self.data()));
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: the data page is mapped through the window; volatile because the
            // controller wrote it by DMA.
            *b = unsafe { core::ptr::read_volatile(src.add(i)) };
        }
    }
}

impl QueueMemory for AdminMemory {
    fn write_command(&mut self, slot: u16, command: &Command) {
        let at = self.hpa_of(self.sq()) + u64::from(slot % ADMIN_SQ_ENTRIES) * 64;
        let dst = self.window.virt(at).cast::<u32>();
        for (i, chunk) in command.to_bytes().as_chunks::<4>().0.iter().enumerate() {
            // SAFETY: `slot` is reduced modulo the queue size, so the 64 bytes lie inside the
            // submission queue page, which is mapped through the window and 4-byte aligned.
            unsafe { core::ptr::write_volatile(dst.add(i), u32::from_le_bytes(*chunk)) };
        }
    }

    fn read_completion(&self, slot: u16) -> Completion {
        let at = self.hpa_of(self.cq()) + u64::from(slot % ADMIN_CQ_ENTRIES) * 16;
        let src = self.window.virt(at).cast::<u32>();
        // SAFETY: the 16 bytes lie inside the completion queue page (slot reduced modulo the
        // queue size), mapped through the window, 4-byte aligned. Dword 3 (with the phase tag)
        // is read first: the other dwords are only meaningful once it shows a new entry.
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
