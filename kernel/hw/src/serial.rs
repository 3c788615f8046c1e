//! 16550 UARTs: at I/O ports (COM1, COM2, a PCI card's I/O BAR) or memory-mapped (byte or 32-bit
//! registers), driven by `conduit_uart::uart` (programming with read-back, bounded waits; see
//! `docs/console.md`). The console (`crate::console`) owns the one in use.

use crate::memory::Memory;
use crate::memory::mmio::{self, MmioError};
use alloc::borrow::Cow;
use conduit_uart::uart::{self, LineSettings, ReadBack, RegisterAccess, UartError};
use core::mem::{offset_of, size_of};
use core::ptr::NonNull;
use volatile::{VolatilePtr, map_field};
use x86_64::instructions::port::Port;

/// The base I/O port of COM1.
pub const COM1: u16 = 0x3f8;
/// The base I/O port of COM2.
pub const COM2: u16 = 0x2f8;

/// A memory-mapped 16550 with byte registers (register stride 1).
#[repr(C)]
pub struct Regs8 {
    data: u8,
    ier: u8,
    iir_fcr: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
}

/// A memory-mapped 16550 with 32-bit registers (register stride 4; the low byte holds the
/// register).
#[repr(C)]
pub struct Regs32 {
    data: u32,
    ier: u32,
    iir_fcr: u32,
    lcr: u32,
    mcr: u32,
    lsr: u32,
    msr: u32,
    scr: u32,
}

const _: () = {
    assert!(offset_of!(Regs8, ier) == uart::IER as usize);
    assert!(offset_of!(Regs8, iir_fcr) == uart::FCR as usize);
    assert!(offset_of!(Regs8, lcr) == uart::LCR as usize);
    assert!(offset_of!(Regs8, mcr) == uart::MCR as usize);
    assert!(offset_of!(Regs8, lsr) == uart::LSR as usize);
    assert!(offset_of!(Regs8, msr) == 6);
    assert!(offset_of!(Regs8, scr) == uart::SCR as usize);
    assert!(offset_of!(Regs32, ier) == 4 * uart::IER as usize);
    assert!(offset_of!(Regs32, iir_fcr) == 4 * uart::FCR as usize);
    assert!(offset_of!(Regs32, lcr) == 4 * uart::LCR as usize);
    assert!(offset_of!(Regs32, mcr) == 4 * uart::MCR as usize);
    assert!(offset_of!(Regs32, lsr) == 4 * uart::LSR as usize);
    assert!(offset_of!(Regs32, msr) == 4 * 6);
    assert!(offset_of!(Regs32, scr) == 4 * uart::SCR as usize);
    assert!(size_of::<Regs8>() == 8);
    assert!(size_of::<Regs32>() == 8 * 4);
};

/// Runs `$body` with `$r` the volatile pointer to register `$index` of the block `$block`.
macro_rules! with_reg {
    ($block:ident, $index:expr, |$r:ident| $body:expr) => {
        match $index & 7 {
            0 => {
                let $r = map_field!($block.data);
                $body
            }
            1 => {
                let $r = map_field!($block.ier);
                $body
            }
            2 => {
                let $r = map_field!($block.iir_fcr);
                $body
            }
            3 => {
                let $r = map_field!($block.lcr);
                $body
            }
            4 => {
                let $r = map_field!($block.mcr);
                $body
            }
            5 => {
                let $r = map_field!($block.lsr);
                $body
            }
            6 => {
                let $r = map_field!($block.msr);
                $body
            }
            _ => {
                let $r = map_field!($block.scr);
                $body
            }
        }
    };
}

/// How the registers are reached.
#[derive(Clone, Copy)]
pub enum Access {
    /// I/O ports `base..base + 8`.
    Port(u16),
    /// A mapped block of byte registers.
    Mmio8(VolatilePtr<'static, Regs8>),
    /// A mapped block of 32-bit registers.
    Mmio32(VolatilePtr<'static, Regs32>),
}

// SAFETY: the pointers name device registers in a mapping that is never removed (console UARTs
// are mapped once and kept); every access is a volatile read or write of one register, and the
// console serialises its users through its lock, so moving an `Access` to another context is
// sound.
unsafe impl Send for Access {}

impl RegisterAccess for Access {
    fn read(&mut self, index: u8) -> u8 {
        match *self {
            // SAFETY: `Port` is only built for a UART's port range (COM1, COM2, the SPCR's port
            // or a serial card's I/O BAR); reading its registers changes nothing but the UART
            // (RBR hands out a received byte, which is the caller's intent).
            Access::Port(base) => unsafe { Port::<u8>::new(base + u16::from(index & 7)).read() },
            Access::Mmio8(block) => with_reg!(block, index, |r| r.read()),
            Access::Mmio32(block) => with_reg!(block, index, |r| r.read() as u8),
        }
    }

    fn write(&mut self, index: u8, value: u8) {
        match *self {
            // SAFETY: as in `read`: the port range is a UART's and only its registers change.
            Access::Port(base) => unsafe {
                Port::<u8>::new(base + u16::from(index & 7)).write(value)
            },
            Access::Mmio8(block) => with_reg!(block, index, |r| r.write(value)),
            Access::Mmio32(block) => with_reg!(block, index, |r| r.write(u32::from(value))),
        }
    }
}

/// A UART and its name for the log.
#[derive(Clone)]
pub struct Uart {
    pub access: Access,
    /// Short name (`COM1`, `COM2`, `the SPCR's UART`, `PCI serial card 00:05.0`).
    pub name: Cow<'static, str>,
}

impl Uart {
    /// COM1 at 0x3f8.
    pub const fn com1() -> Self {
        Self {
            access: Access::Port(COM1),
            name: Cow::Borrowed("COM1"),
        }
    }

    /// COM2 at 0x2f8.
    pub const fn com2() -> Self {
        Self {
            access: Access::Port(COM2),
            name: Cow::Borrowed("COM2"),
        }
    }

    /// A 16550 at I/O ports `base..base + 8`.
    pub fn port(base: u16, name: Cow<'static, str>) -> Self {
        Self {
            access: Access::Port(base),
            name,
        }
    }

    /// A memory-mapped 16550 at `phys` with register stride `stride` (1 or 4), mapped uncached.
    pub fn mmio(
        mem: &Memory,
        phys: u64,
        stride: u8,
        name: Cow<'static, str>,
    ) -> Result<Self, MmioError> {
        let map = mmio::map(mem, phys, 8 * u64::from(stride))?;
        let access = if stride == 4 {
            Access::Mmio32(map.block::<Regs32>(0)?)
        } else {
            Access::Mmio8(map.block::<Regs8>(0)?)
        };
        Ok(Self { access, name })
    }

    /// Where the registers are: `port 0x2f8`, `MMIO 0xfe032000 (32-bit registers)`. MMIO shows
    /// the kernel's mapping, not the physical address (the caller logs that).
    pub fn location(&self) -> alloc::string::String {
        match self.access {
            Access::Port(base) => alloc::format!("port {base:#x}"),
            Access::Mmio8(b) => alloc::format!("MMIO {:p} (8-bit registers)", b.as_raw_ptr()),
            Access::Mmio32(b) => alloc::format!("MMIO {:p} (32-bit registers)", b.as_raw_ptr()),
        }
    }

    /// Programs `baud` 8N1 (interrupts off, FIFOs on) and reads the settings back.
    pub fn program(&mut self, baud: u32) -> Result<ReadBack, UartError> {
        uart::program(&mut self.access, baud, LineSettings::EIGHT_N_ONE)
    }

    /// Sends a byte (bounded wait; false if the UART never took it).
    pub fn send(&mut self, byte: u8) -> bool {
        uart::send(&mut self.access, byte)
    }

    /// A received byte, if one waits.
    pub fn try_read(&mut self) -> Option<u8> {
        uart::try_receive(&mut self.access)
    }

    /// Waits (bounded) until every byte has left the transmitter.
    pub fn drain(&mut self) {
        uart::drain(&mut self.access);
    }

    /// The registers' identity, one word: the emergency path rebuilds the access from it.
    pub fn key(&self) -> u64 {
        match self.access {
            Access::Port(base) => u64::from(base),
            Access::Mmio8(b) => KEY_MMIO8 | b.as_raw_ptr().as_ptr() as u64,
            Access::Mmio32(b) => KEY_MMIO32 | b.as_raw_ptr().as_ptr() as u64,
        }
    }

    /// The access [`Uart::key`] names.
    ///
    /// # Safety
    /// `key` must come from [`Uart::key`] of a UART whose MMIO mapping is still live (console
    /// UART mappings are never removed).
    pub unsafe fn access_of(key: u64) -> Option<Access> {
        let addr = key & !(KEY_MMIO8 | KEY_MMIO32);
        Some(match key & (KEY_MMIO8 | KEY_MMIO32) {
            KEY_MMIO8 => {
                let ptr = NonNull::new(addr as *mut Regs8)?;
                // SAFETY: by the caller's promise, a live mapping of a `Regs8` block that was
                // built through `Mmio::block` (in bounds, aligned, device memory).
                Access::Mmio8(unsafe { VolatilePtr::new(ptr) })
            }
            KEY_MMIO32 => {
                let ptr = NonNull::new(addr as *mut Regs32)?;
                // SAFETY: as above, for a `Regs32` block.
                Access::Mmio32(unsafe { VolatilePtr::new(ptr) })
            }
            _ => Access::Port(u16::try_from(addr).ok()?),
        })
    }
}

/// Tags of [`Uart::key`] (kernel virtual addresses of the MMIO region are below 2^47).
const KEY_MMIO8: u64 = 1 << 62;
const KEY_MMIO32: u64 = 1 << 63;
