//! The two configuration-space access mechanisms, behind `conduit_pci::ConfigAccess`:
//!
//! - ECAM (PCIe Base Spec r6.0 §7.2.2 "PCI Express Enhanced Configuration Access Mechanism"):
//!   the 4 KiB configuration space of bus `b`, device `d`, function `f` is memory-mapped at
//!   `base + ((b - start_bus) << 20 | d << 15 | f << 12)`; the window comes from the MCFG and is
//!   mapped uncached through [`conduit_hw::memory::mmio`].
//! - Configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2): the address
//!   `0x8000_0000 | bus << 16 | devfn << 8 | offset` written to port 0xCF8, data at 0xCFC. Only the
//!   first 256 bytes are reachable; beyond them reads return all ones and writes are dropped.
//!   Used when the firmware publishes no MCFG (Bochs has no ACPI at all).

use crate::platform::acpi::Ecam as EcamRegion;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, Mmio, MmioError};
use conduit_pci::{Bdf, ConfigAccess};
use x86_64::instructions::port::Port;

/// Bytes of ECAM space per bus.
const BUS_BYTES: u64 = 1 << 20;
/// Size of one function's configuration space.
const FUNCTION_BYTES: u16 = 0x1000;
const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// One function's configuration space as a register block: 1024 dwords.
#[repr(C)]
struct ConfigSpace {
    dwords: [u32; 1024],
}

const _: () = assert!(core::mem::size_of::<ConfigSpace>() == FUNCTION_BYTES as usize);

/// ECAM over one MCFG region (segment 0).
#[derive(Debug)]
pub struct EcamAccess {
    window: Mmio,
    bus_start: u8,
    bus_end: u8,
}

impl EcamAccess {
    /// Maps the MCFG region's buses.
    pub fn new(mem: &Memory, region: &EcamRegion) -> Result<Self, MmioError> {
        let buses = u64::from(region.bus_end.saturating_sub(region.bus_start)) + 1;
        let window = mmio::map(
            mem,
            region.base + u64::from(region.bus_start) * BUS_BYTES,
            buses * BUS_BYTES,
        )?;
        Ok(Self {
            window,
            bus_start: region.bus_start,
            bus_end: region.bus_end,
        })
    }

    fn space(&self, bdf: Bdf) -> Option<volatile::VolatilePtr<'static, ConfigSpace>> {
        if !(self.bus_start..=self.bus_end).contains(&bdf.bus()) {
            return None;
        }
        let offset = u64::from(bdf.bus() - self.bus_start) * BUS_BYTES
            + u64::from(bdf.devfn()) * u64::from(FUNCTION_BYTES);
        self.window.block::<ConfigSpace>(offset).ok()
    }

    fn dword(&self, bdf: Bdf, offset: u16) -> Option<volatile::VolatilePtr<'static, u32>> {
        if offset >= FUNCTION_BYTES || !offset.is_multiple_of(4) {
            return None;
        }
        let space = self.space(bdf)?;
        let index = usize::from(offset / 4);
        // SAFETY: `index` < 1024 (offset < 0x1000), so the element lies inside the block, which
        // is a valid mapping of device registers.
        Some(unsafe {
            space.map(|p| {
                let base = p.as_ptr().cast::<u32>();
                core::ptr::NonNull::new_unchecked(base.add(index))
            })
        })
    }
}

impl ConfigAccess for EcamAccess {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.dword(bdf, offset).map_or(u32::MAX, |d| d.read())
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(d) = self.dword(bdf, offset) {
            d.write(value);
        }
    }
}

/// Configuration mechanism #1 through ports 0xCF8/0xCFC.
#[derive(Debug, Default)]
pub struct PortIoAccess;

impl PortIoAccess {
    fn address(bdf: Bdf, offset: u16) -> Option<u32> {
        (offset < 0x100 && offset.is_multiple_of(4)).then(|| {
            0x8000_0000
                | (u32::from(bdf.bus()) << 16)
                | (u32::from(bdf.devfn()) << 8)
                | u32::from(offset)
        })
    }
}

impl ConfigAccess for PortIoAccess {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        let Some(address) = Self::address(bdf, offset) else {
            return u32::MAX;
        };
        // SAFETY: 0xCF8/0xCFC (configuration mechanism #1) are used in the kernel only by this
        // accessor, serialised behind the PCI lock; the control task uses them only inside a
        // synchronous call (one CPU, never between these two accesses), alone after hand-over.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(address);
            Port::<u32>::new(CONFIG_DATA).read()
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        let Some(address) = Self::address(bdf, offset) else {
            return;
        };
        // SAFETY: as in `read32`.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(address);
            Port::<u32>::new(CONFIG_DATA).write(value);
        }
    }
}

/// Whichever mechanism the platform offers.
#[derive(Debug)]
pub enum Access {
    Ecam(EcamAccess),
    PortIo(PortIoAccess),
    /// Configuration space belongs to the control task now (`crate::control`): the kernel's
    /// reads are served by the task (`control::physical_read`: diagnostics only) and its writes
    /// are dropped.
    HandedOver,
}

impl EcamAccess {
    /// The mapping and the buses it covers (bus `bus_start` at the mapping's start).
    pub fn region(&self) -> (Mmio, u8, u8) {
        (self.window, self.bus_start, self.bus_end)
    }
}

impl Access {
    /// A short description for the log.
    pub fn describe(&self) -> alloc::string::String {
        match self {
            Self::Ecam(e) => alloc::format!(
                "ECAM at {:#x} (buses {}-{})",
                e.window.phys(),
                e.bus_start,
                e.bus_end
            ),
            Self::PortIo(_) => {
                alloc::string::String::from("port I/O 0xcf8/0xcfc (no MCFG: first 256 bytes only)")
            }
            Self::HandedOver => alloc::string::String::from("the control task"),
        }
    }
}

impl ConfigAccess for Access {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self {
            Self::Ecam(e) => e.read32(bdf, offset),
            Self::PortIo(p) => p.read32(bdf, offset),
            Self::HandedOver => crate::control::physical_read(bdf, offset, 4).unwrap_or(u32::MAX),
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        match self {
            Self::Ecam(e) => e.write32(bdf, offset, value),
            Self::PortIo(p) => p.write32(bdf, offset, value),
            Self::HandedOver => {}
        }
    }
}
