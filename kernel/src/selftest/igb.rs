//! QEMU's igb PF (8086:10c9, an 82576 model, `hw/net/igb_core.c`) as an MSI-X source for the
//! interrupt remapping self-test: no packets, only its extended interrupt registers.
//!
//! BAR0 (128 KiB MMIO): GPIE 0x1514 (bit 4 MSIX_MODE: one MSI-X vector per EICR bit), EICS
//! 0x1520 (cause set), EIMS 0x1524 (mask set), EIMC 0x1528 (mask clear), EICR 0x1580 (cause,
//! write 1 to clear). In MSI-X mode a cause bit set in EICS that is enabled in EIMS and newly
//! raised in EICR sends that MSI-X vector; clearing EICR first makes every EICS write one message.
//! The MSI-X table is in BAR3.

use crate::memory::Memory;
use crate::memory::mmio;
use crate::pci::Function;
use conduit_pci::Bdf;
use core::mem::offset_of;
use volatile::{VolatilePtr, map_field};

pub const VENDOR: u16 = 0x8086;
pub const DEVICE: u16 = 0x10c9;

const GPIE_MSIX_MODE: u32 = 1 << 4;
/// Offset of the block below in BAR0.
const BLOCK: u64 = 0x1514;

/// The extended interrupt registers, from GPIE (0x1514) to EICR (0x1580).
#[repr(C)]
struct Registers {
    gpie: u32,
    _r1518: [u32; 2],
    eics: u32,
    eims: u32,
    eimc: u32,
    _r152c: [u32; 21],
    eicr: u32,
}

const _: () = {
    assert!(offset_of!(Registers, eics) == 0x1520 - BLOCK as usize);
    assert!(offset_of!(Registers, eims) == 0x1524 - BLOCK as usize);
    assert!(offset_of!(Registers, eimc) == 0x1528 - BLOCK as usize);
    assert!(offset_of!(Registers, eicr) == 0x1580 - BLOCK as usize);
};

/// An opened igb PF.
pub struct Igb {
    pub bdf: Bdf,
    regs: VolatilePtr<'static, Registers>,
}

impl Igb {
    /// Maps the interrupt registers of BAR0.
    pub fn open(mem: &Memory, f: &Function) -> Result<Self, alloc::string::String> {
        let bar = f
            .bars
            .get(0)
            .filter(|b| b.is_memory() && b.size >= 0x2000)
            .ok_or_else(|| alloc::format!("{}: no memory BAR0", f.bdf))?;
        let map = mmio::map(mem, bar.address, bar.size)
            .map_err(|e| alloc::format!("{}: BAR0: {e}", f.bdf))?;
        let regs = map
            .block::<Registers>(BLOCK)
            .map_err(|e| alloc::format!("{}: BAR0: {e}", f.bdf))?;
        Ok(Self { bdf: f.bdf, regs })
    }

    /// MSI-X mode with cause `vector` enabled.
    pub fn enable(&self, vector: u32) {
        let regs = self.regs;
        let gpie = map_field!(regs.gpie);
        gpie.write(gpie.read() | GPIE_MSIX_MODE);
        map_field!(regs.eicr).write(1 << vector);
        map_field!(regs.eims).write(1 << vector);
    }

    /// One message on MSI-X vector `vector`.
    pub fn raise(&self, vector: u32) {
        let regs = self.regs;
        map_field!(regs.eicr).write(1 << vector);
        map_field!(regs.eics).write(1 << vector);
    }

    /// Every cause masked and cleared, MSI-X mode off.
    pub fn quiesce(&self) {
        let regs = self.regs;
        map_field!(regs.eimc).write(u32::MAX);
        map_field!(regs.eicr).write(u32::MAX);
        let gpie = map_field!(regs.gpie);
        gpie.write(gpie.read() & !GPIE_MSIX_MODE);
    }
}
