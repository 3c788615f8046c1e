//! The 82576's interrupt registers as typed volatile blocks (Intel 82576 GbE Controller
//! Datasheet §7.3 "Interrupts", and the register descriptions of GPIE 0x01514, EICS 0x01520,
//! EIMS 0x01524, EIMC 0x01528, EIAC 0x0152C, EIAM 0x01530, EICR 0x01580).
//!
//! The extended interrupt block sits at the same BAR0 offsets in the PF and in every VF (a VF's
//! EICS/EIMS/EIMC/EIAC/EIAM/EICR are its VTEICS/VTEIMS/... registers: its own three MSI-X
//! causes in bits 2:0, datasheet §7.8 "Virtualization"). GPIE exists only in the PF: its
//! Multiple_MSIX bit (bit 4, `MSIX_MODE`) puts the whole device, VFs included, in MSI-X mode, one
//! vector per EICR bit; without it EICS writes of a VF raise nothing (QEMU 10's
//! `hw/net/igb_core.c` masks the causes with the legacy mask then).

use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, MmioError};
use core::mem::offset_of;
use volatile::{VolatilePtr, map_field};

/// GPIE.Multiple_MSIX: MSI-X mode, one vector per EICR cause.
pub const GPIE_MSIX_MODE: u32 = 1 << 4;
/// Offset of GPIE in the PF's BAR0.
pub const GPIE: u64 = 0x1514;
/// Offset of [`ExtInterrupts`] in BAR0 (PF and VF).
pub const EXT_INTERRUPTS: u64 = 0x1520;
/// The smallest BAR0 that holds both blocks (a VF's BAR0 is 16 KiB, the PF's 128 KiB).
pub const MIN_BAR0: u64 = 0x2000;

/// EICS (cause set), EIMS (mask set), EIMC (mask clear), EIAC (auto clear), EIAM (auto mask),
/// EICR (cause read, write 1 to clear). A cause set in EICS that is enabled in EIMS and newly
/// raised in EICR sends its MSI-X vector; clearing EICR first makes every EICS write one
/// message.
#[repr(C)]
pub struct ExtInterrupts {
    pub eics: u32,
    pub eims: u32,
    pub eimc: u32,
    pub eiac: u32,
    pub eiam: u32,
    _r1534: [u32; 19],
    pub eicr: u32,
}

const _: () = {
    let base = EXT_INTERRUPTS as usize;
    assert!(offset_of!(ExtInterrupts, eics) == 0x1520 - base);
    assert!(offset_of!(ExtInterrupts, eims) == 0x1524 - base);
    assert!(offset_of!(ExtInterrupts, eimc) == 0x1528 - base);
    assert!(offset_of!(ExtInterrupts, eiac) == 0x152c - base);
    assert!(offset_of!(ExtInterrupts, eiam) == 0x1530 - base);
    assert!(offset_of!(ExtInterrupts, eicr) == 0x1580 - base);
    assert!(EXT_INTERRUPTS + core::mem::size_of::<ExtInterrupts>() as u64 <= MIN_BAR0);
};

/// General Purpose Interrupt Enable (PF only).
#[repr(C)]
pub struct Gpie {
    pub gpie: u32,
}

const _: () = assert!(GPIE + core::mem::size_of::<Gpie>() as u64 <= EXT_INTERRUPTS);

/// One function's extended interrupt registers, mapped.
#[cfg(feature = "selftest")]
#[derive(Clone, Copy)]
pub struct Interrupts {
    regs: VolatilePtr<'static, ExtInterrupts>,
}

#[cfg(feature = "selftest")]
impl Interrupts {
    /// Maps the block of the BAR0 at `bar0` (`len` bytes).
    pub fn map(mem: &Memory, bar0: u64, len: u64) -> Result<Self, MmioError> {
        let map = mmio::map(mem, bar0, len.min(MIN_BAR0))?;
        Ok(Self {
            regs: map.block::<ExtInterrupts>(EXT_INTERRUPTS)?,
        })
    }

    /// Enables cause `bit` (EIMS) with its EICR bit cleared.
    pub fn unmask(&self, bit: u32) {
        let regs = self.regs;
        map_field!(regs.eicr).write(1 << bit);
        map_field!(regs.eims).write(1 << bit);
    }

    /// One message on cause `bit`: EICR cleared (write 1), then EICS.
    pub fn raise(&self, bit: u32) {
        let regs = self.regs;
        map_field!(regs.eicr).write(1 << bit);
        map_field!(regs.eics).write(1 << bit);
    }

    /// Every cause masked (EIMC) and cleared (EICR).
    pub fn mask_all(&self) {
        let regs = self.regs;
        map_field!(regs.eimc).write(u32::MAX);
        map_field!(regs.eicr).write(u32::MAX);
    }

    /// EIMS as read now.
    pub fn enabled(&self) -> u32 {
        let regs = self.regs;
        map_field!(regs.eims).read()
    }
}

/// The PF's GPIE, mapped.
#[derive(Clone, Copy)]
pub struct PfGpie {
    reg: VolatilePtr<'static, Gpie>,
}

impl PfGpie {
    /// Maps GPIE of the PF's BAR0 at `bar0` (`len` bytes).
    pub fn map(mem: &Memory, bar0: u64, len: u64) -> Result<Self, MmioError> {
        let map = mmio::map(mem, bar0, len.min(MIN_BAR0))?;
        Ok(Self {
            reg: map.block::<Gpie>(GPIE)?,
        })
    }

    #[cfg(feature = "selftest")]
    pub fn read(&self) -> u32 {
        let reg = self.reg;
        map_field!(reg.gpie).read()
    }

    /// Sets or clears Multiple_MSIX; returns GPIE read back.
    pub fn set_msix_mode(&self, on: bool) -> u32 {
        let reg = self.reg;
        let gpie = map_field!(reg.gpie);
        let old = gpie.read();
        gpie.write(if on {
            old | GPIE_MSIX_MODE
        } else {
            old & !GPIE_MSIX_MODE
        });
        gpie.read()
    }
}
