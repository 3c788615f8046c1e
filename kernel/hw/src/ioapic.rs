//! An I/O APIC (Intel 82093AA data sheet; ICH9 / PCH data sheets, "Advanced Programmable
//! Interrupt Controller"): indirect registers through IOREGSEL (0x00) and IOWIN (0x10), the EOI
//! register at 0x40 (version 0x20 and later).
//!
//! Registers: 0x00 ID (bits 27:24), 0x01 version (bits 7:0 version, 23:16 highest redirection
//! entry), 0x10 + 2n / 0x11 + 2n redirection entry n (low / high dword). Under interrupt
//! remapping every entry is written in remappable format (VT-d §5.1.5.1, encoded by
//! `conduit_irq::RemappableRte`); the entry's fields become an interrupt request whose address
//! carries the IRTE index, from the I/O APIC's own source-id (the DMAR's I/OxAPIC scope).
//!
//! The register pair is not reentrant: an [`IoApic`] is used by one owner at a time (the
//! interrupt policy keeps it under its lock, taken with interrupts disabled).

use crate::memory::Memory;
use crate::memory::mmio::{self, MmioError};
use core::mem::offset_of;
use volatile::{VolatilePtr, map_field};

/// The memory-mapped window.
#[repr(C)]
struct Window {
    ioregsel: u32,
    _r04: [u32; 3],
    iowin: u32,
    _r14: [u32; 11],
    eoi: u32,
}

const _: () = {
    assert!(offset_of!(Window, iowin) == 0x10);
    assert!(offset_of!(Window, eoi) == 0x40);
};

const REG_ID: u32 = 0x00;
const REG_VERSION: u32 = 0x01;
const REG_REDTBL: u32 = 0x10;
/// The mask bit of a redirection entry (bit 16, same position in both formats).
pub const RTE_MASKED: u64 = 1 << 16;

/// One I/O APIC.
pub struct IoApic {
    phys: u64,
    regs: VolatilePtr<'static, Window>,
    gsi_base: u32,
    id: u8,
    version: u8,
    pins: u8,
}

// SAFETY: the only non-`Send` field is the volatile pointer to the I/O APIC's registers, device
// memory mapped for the life of the hypervisor; an `IoApic` is only used by its one owner.
unsafe impl Send for IoApic {}

impl IoApic {
    /// Maps the I/O APIC at `phys` whose first input is `gsi_base`, and reads its identity.
    pub fn open(mem: &Memory, phys: u64, gsi_base: u32) -> Result<Self, MmioError> {
        let map = mmio::map(mem, phys, 0x100)?;
        let regs = map.block::<Window>(0)?;
        let mut this = Self {
            phys,
            regs,
            gsi_base,
            id: 0,
            version: 0,
            pins: 0,
        };
        this.id = ((this.read(REG_ID) >> 24) & 0xf) as u8;
        let v = this.read(REG_VERSION);
        this.version = v as u8;
        this.pins = ((v >> 16) as u8).saturating_add(1);
        Ok(this)
    }

    fn read(&self, reg: u32) -> u32 {
        let regs = self.regs;
        map_field!(regs.ioregsel).write(reg);
        map_field!(regs.iowin).read()
    }

    fn write(&mut self, reg: u32, value: u32) {
        let regs = self.regs;
        map_field!(regs.ioregsel).write(reg);
        map_field!(regs.iowin).write(value);
    }

    /// Register base.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The APIC ID in the ID register.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The version register's version field (0x11 or 0x20 in practice).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Number of redirection entries (inputs).
    pub fn pins(&self) -> u8 {
        self.pins
    }

    /// First GSI.
    pub fn gsi_base(&self) -> u32 {
        self.gsi_base
    }

    /// The input a GSI arrives on, if it is this I/O APIC's.
    pub fn pin_of(&self, gsi: u32) -> Option<u8> {
        let pin = gsi.checked_sub(self.gsi_base)?;
        (pin < u32::from(self.pins)).then_some(pin as u8)
    }

    /// Reads redirection entry `pin`.
    pub fn read_rte(&self, pin: u8) -> u64 {
        let reg = REG_REDTBL + 2 * u32::from(pin);
        let lo = u64::from(self.read(reg));
        let hi = u64::from(self.read(reg + 1));
        (hi << 32) | lo
    }

    /// Writes redirection entry `pin`: masked first (low dword), then the high dword, then the
    /// low dword with the entry's own mask bit, so no half-written entry is ever live.
    pub fn write_rte(&mut self, pin: u8, value: u64) {
        if pin >= self.pins {
            return;
        }
        let reg = REG_REDTBL + 2 * u32::from(pin);
        let old = u64::from(self.read(reg));
        self.write(reg, (old | RTE_MASKED) as u32);
        self.write(reg + 1, (value >> 32) as u32);
        self.write(reg, value as u32);
    }

    /// Sets or clears the mask bit of entry `pin`, leaving the rest.
    pub fn set_masked(&mut self, pin: u8, masked: bool) {
        if pin >= self.pins {
            return;
        }
        let reg = REG_REDTBL + 2 * u32::from(pin);
        let lo = u64::from(self.read(reg));
        let lo = if masked {
            lo | RTE_MASKED
        } else {
            lo & !RTE_MASKED
        };
        self.write(reg, lo as u32);
    }

    /// Masks every entry (what firmware left is not trusted). Returns how many were unmasked.
    pub fn mask_all(&mut self) -> u8 {
        let mut live = 0;
        for pin in 0..self.pins {
            let reg = REG_REDTBL + 2 * u32::from(pin);
            let lo = self.read(reg);
            if u64::from(lo) & RTE_MASKED == 0 {
                live += 1;
                self.write(reg, lo | RTE_MASKED as u32);
            }
        }
        live
    }
}
