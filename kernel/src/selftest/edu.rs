//! QEMU's `edu` teaching device (1234:11e8, `hw/misc/edu.c`, `docs/specs/edu.rst`) as a DMA
//! master for the VT-d self-test.
//!
//! BAR0 (1 MiB MMIO): 0x00 identification (0x010000ed), 0x04 liveness (reads back the bitwise
//! NOT of what was written), 0x80 DMA source, 0x88 DMA destination, 0x90 count, 0x98 command
//! (bit 0 start, bit 1 direction: 0 = RAM to the device buffer, 1 = buffer to RAM, bit 2 raise an
//! interrupt when done). Interrupts: 0x24 interrupt status, 0x60 raise (the value is ORed into the
//! status and an interrupt is sent, every time: with MSI one message per write), 0x64 acknowledge
//! (clears those status bits); a finished DMA with bit 2 raises status bit 8 (0x100). One MSI
//! vector (capability at 0x40, 64-bit, no per-vector mask), INTx A otherwise. The device buffer is 4 KiB at device address 0x40000. A transfer runs
//! from a timer about 100 ms after the command; bit 0 reads 1 until it is done. DMA addresses are
//! masked to 28 bits.

use crate::pci::Function;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, Mmio};
use conduit_pci::Bdf;
use core::mem::offset_of;
use volatile::{VolatilePtr, map_field};

/// edu's vendor and device ID.
pub const VENDOR: u16 = 0x1234;
pub const DEVICE: u16 = 0x11e8;
/// Value of the identification register.
pub const ID: u32 = 0x0100_00ed;
/// The device's DMA buffer: device address and size.
pub const BUFFER: u64 = 0x40000;
pub const BUFFER_LEN: u64 = 4096;
/// DMA addresses above this are cut by the device.
pub const DMA_LIMIT: u64 = 1 << 28;

const CMD_START: u64 = 1 << 0;
const CMD_TO_RAM: u64 = 1 << 1;
const CMD_IRQ: u64 = 1 << 2;
/// The interrupt status bit a finished DMA with "raise interrupt" sets.
pub const DMA_IRQ: u32 = 0x100;

/// The registers of BAR0 used here.
#[repr(C)]
struct Registers {
    id: u32,
    liveness: u32,
    _r08: [u32; 6],
    status: u32,
    irq_status: u32,
    _r28: [u32; 14],
    irq_raise: u32,
    irq_ack: u32,
    _r68: [u32; 6],
    dma_src: u64,
    dma_dst: u64,
    dma_count: u64,
    dma_cmd: u64,
}

const _: () = {
    assert!(offset_of!(Registers, liveness) == 0x04);
    assert!(offset_of!(Registers, status) == 0x20);
    assert!(offset_of!(Registers, irq_status) == 0x24);
    assert!(offset_of!(Registers, irq_raise) == 0x60);
    assert!(offset_of!(Registers, irq_ack) == 0x64);
    assert!(offset_of!(Registers, dma_src) == 0x80);
    assert!(offset_of!(Registers, dma_dst) == 0x88);
    assert!(offset_of!(Registers, dma_count) == 0x90);
    assert!(offset_of!(Registers, dma_cmd) == 0x98);
};

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// RAM at the IOVA into the device buffer (a DMA read).
    FromRam,
    /// The device buffer to RAM at the IOVA (a DMA write).
    ToRam,
}

/// An opened edu device.
pub struct Edu {
    pub bdf: Bdf,
    bar: Mmio,
    regs: VolatilePtr<'static, Registers>,
}

impl Edu {
    /// Maps BAR0 of `f` and checks the identification and liveness registers.
    pub fn open(mem: &Memory, f: &Function) -> Result<Self, alloc::string::String> {
        let bar = f
            .bars
            .get(0)
            .filter(|b| b.is_memory() && b.size >= 0x100)
            .ok_or_else(|| alloc::format!("{}: no memory BAR0", f.bdf))?;
        let bar = mmio::map(mem, bar.address, bar.size)
            .map_err(|e| alloc::format!("{}: BAR0: {e}", f.bdf))?;
        let regs = bar
            .block::<Registers>(0)
            .map_err(|e| alloc::format!("{}: BAR0: {e}", f.bdf))?;
        let id = map_field!(regs.id).read();
        map_field!(regs.liveness).write(0x1234_5678);
        let alive = map_field!(regs.liveness).read();
        if id != ID || alive != !0x1234_5678 {
            return Err(alloc::format!(
                "{}: not an edu device (id {id:#010x}, liveness {alive:#010x})",
                f.bdf
            ));
        }
        Ok(Self {
            bdf: f.bdf,
            bar,
            regs,
        })
    }

    /// Physical address of BAR0.
    pub fn bar(&self) -> u64 {
        self.bar.phys()
    }

    /// Sets `bits` in the interrupt status and raises an interrupt (register 0x60).
    pub fn raise(&self, bits: u32) {
        let regs = self.regs;
        map_field!(regs.irq_raise).write(bits);
    }

    /// Clears `bits` of the interrupt status (register 0x64).
    pub fn ack(&self, bits: u32) {
        let regs = self.regs;
        map_field!(regs.irq_ack).write(bits);
    }

    /// Raises the interrupt `times` times for guest `guest`'s function, each time waiting (with
    /// interrupts enabled, at most `wait` TSC ticks) until the interrupt path has delivered it to
    /// the guest, then acknowledging it; stops at the first that does not arrive. Returns how
    /// many arrived.
    pub fn raise_for_guest(&self, guest: conduit_irq::GuestId, times: u64, wait: u64) -> u64 {
        let delivered = || crate::irq::dispatch::guest_delivered(guest);
        let before = delivered();
        for n in 1..=times {
            self.raise(1);
            let arrived = super::intremap::wait_with_interrupts(wait, || delivered() >= before + n);
            self.ack(1);
            if !arrived {
                return n - 1;
            }
        }
        times
    }

    /// The interrupt status (register 0x24).
    pub fn irq_status(&self) -> u32 {
        let regs = self.regs;
        map_field!(regs.irq_status).read()
    }

    /// Starts a transfer of `len` bytes between the device buffer and `iova` and polls until the
    /// device reports it finished (a few seconds at most).
    pub fn dma(&self, direction: Direction, iova: u64, len: u64) -> Result<(), &'static str> {
        self.dma_inner(direction, iova, len, false)
    }

    /// [`Edu::dma`] with "raise interrupt when done": status bit [`DMA_IRQ`] and an interrupt.
    pub fn dma_with_interrupt(
        &self,
        direction: Direction,
        iova: u64,
        len: u64,
    ) -> Result<(), &'static str> {
        self.dma_inner(direction, iova, len, true)
    }

    fn dma_inner(
        &self,
        direction: Direction,
        iova: u64,
        len: u64,
        irq: bool,
    ) -> Result<(), &'static str> {
        let regs = self.regs;
        if len > BUFFER_LEN {
            return Err("longer than the device buffer");
        }
        if map_field!(regs.dma_cmd).read() & CMD_START != 0 {
            return Err("the previous transfer has not finished");
        }
        let (src, dst, cmd) = match direction {
            Direction::FromRam => (iova, BUFFER, CMD_START),
            Direction::ToRam => (BUFFER, iova, CMD_START | CMD_TO_RAM),
        };
        map_field!(regs.dma_src).write(src);
        map_field!(regs.dma_dst).write(dst);
        map_field!(regs.dma_count).write(len);
        map_field!(regs.dma_cmd).write(if irq { cmd | CMD_IRQ } else { cmd });
        let cmd = map_field!(regs.dma_cmd);
        let done = conduit_hw::vtd::inval::wait_for(|| cmd.read() & CMD_START == 0);
        if done {
            Ok(())
        } else {
            Err("the transfer did not finish")
        }
    }
}
