//! The two configuration-space access mechanisms, behind `conduit_pci::ConfigAccess`:
//!
//! - ECAM (PCIe Base Spec r6.0 §7.2.2 "PCI Express Enhanced Configuration Access Mechanism"):
//!   the 4 KiB configuration space of bus `b`, device `d`, function `f` is memory-mapped at
//!   `base + (b << 20 | d << 15 | f << 12)`; every MCFG allocation (of any PCI segment) is one
//!   window, mapped uncached through [`conduit_hw::memory::mmio`] (address arithmetic in
//!   `conduit_pci::ecam`).
//! - Configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2): the address
//!   `0x8000_0000 | bus << 16 | devfn << 8 | offset` written to port 0xCF8, data at 0xCFC. Only the
//!   first 256 bytes are reachable; beyond them reads return all ones and writes are dropped.
//!   Used when the firmware publishes no MCFG (Bochs has no ACPI at all).

use crate::platform::acpi::Ecam as EcamRegion;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, Mmio, MmioError};
use conduit_pci::{Bdf, ConfigAccess, PciAddress, SegmentAccess};
use x86_64::instructions::port::Port;

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

/// ECAM over one MCFG allocation (one bus range of one segment).
#[derive(Debug)]
pub struct EcamAccess {
    window: Mmio,
    region: EcamRegion,
}

impl EcamAccess {
    /// Maps the MCFG allocation's buses (it was checked: `conduit_pci::check_windows`).
    pub fn new(mem: &Memory, region: &EcamRegion) -> Result<Self, MmioError> {
        let window = mmio::map(mem, region.first_byte(), region.bytes())?;
        Ok(Self {
            window,
            region: *region,
        })
    }

    /// The MCFG allocation this window maps.
    pub fn region(&self) -> &EcamRegion {
        &self.region
    }

    /// The mapping (bus `region().bus_start` at its start).
    pub fn mapping(&self) -> Mmio {
        self.window
    }

    fn dword(&self, bdf: Bdf, offset: u16) -> Option<volatile::VolatilePtr<'static, u32>> {
        let at = self.region.offset_of(bdf, offset)?;
        let space = self
            .window
            .block::<ConfigSpace>(at & !u64::from(FUNCTION_BYTES - 1))
            .ok()?;
        let index = usize::from(offset / 4);
        // SAFETY: `offset_of` accepted `offset` (dword aligned, below 0x1000), so `index` < 1024
        // and the element lies inside the block, which is a valid mapping of device registers.
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
    /// One window per MCFG allocation, of every segment.
    Ecam(Vec<EcamAccess>),
    PortIo(PortIoAccess),
    /// Configuration space belongs to the control task now (`crate::control`): the kernel's
    /// reads are served by the task (`control::physical_read`: diagnostics only) and its writes
    /// are dropped.
    HandedOver,
}

impl Access {
    /// A short description for the log.
    pub fn describe(&self) -> alloc::string::String {
        match self {
            Self::Ecam(windows) => {
                let mut text = alloc::string::String::from("ECAM");
                for (i, e) in windows.iter().enumerate() {
                    let r = e.region;
                    let segment = if r.segment == 0 {
                        alloc::string::String::new()
                    } else {
                        alloc::format!("segment {:04x}, ", r.segment)
                    };
                    text.push_str(&alloc::format!(
                        "{} at {:#x} ({segment}buses {}-{})",
                        if i == 0 { "" } else { ";" },
                        e.window.phys(),
                        r.bus_start,
                        r.bus_end
                    ));
                }
                text
            }
            Self::PortIo(_) => {
                alloc::string::String::from("port I/O 0xcf8/0xcfc (no MCFG: first 256 bytes only)")
            }
            Self::HandedOver => alloc::string::String::from("the control task"),
        }
    }
}

impl Access {
    /// The window decoding `bus` of `segment`.
    fn window(windows: &[EcamAccess], segment: u16, bus: u8) -> Option<&EcamAccess> {
        windows.iter().find(|w| w.region.decodes(segment, bus))
    }
}

/// Configuration mechanism #1 reaches segment 0 only: other segments read all ones there. After
/// the hand-over, reads of every segment are served by the control task, which maps every
/// segment's windows.
impl SegmentAccess for Access {
    fn read32_on(&self, segment: u16, bdf: Bdf, offset: u16) -> u32 {
        match self {
            Self::Ecam(w) => {
                Self::window(w, segment, bdf.bus()).map_or(u32::MAX, |e| e.read32(bdf, offset))
            }
            Self::PortIo(p) if segment == 0 => p.read32(bdf, offset),
            Self::HandedOver => {
                crate::control::physical_read(PciAddress::new(segment, bdf), offset, 4)
                    .unwrap_or(u32::MAX)
            }
            Self::PortIo(_) => u32::MAX,
        }
    }

    fn write32_on(&mut self, segment: u16, bdf: Bdf, offset: u16, value: u32) {
        match self {
            Self::Ecam(w) => {
                if let Some(i) = w.iter().position(|e| e.region.decodes(segment, bdf.bus())) {
                    w[i].write32(bdf, offset, value);
                }
            }
            Self::PortIo(p) if segment == 0 => p.write32(bdf, offset, value),
            Self::PortIo(_) | Self::HandedOver => {}
        }
    }
}

/// Segment 0, the segment of every machine (the boot-time users that predate segments: SR-IOV,
/// bridge windows, MSI and reset work there).
impl ConfigAccess for Access {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.read32_on(0, bdf, offset)
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.write32_on(0, bdf, offset, value);
    }
}
