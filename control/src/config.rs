//! Physical configuration space as the task reaches it: the ECAM window mapped at
//! [`layout::CONFIG_VA`] (PCIe Base Spec r6.0 §7.2.2) or configuration mechanism #1 through
//! ports 0xCF8/0xCFC (PCI Local Bus Spec 3.0 §3.2.2.3.2), which the kernel's TSS I/O permission
//! bitmap opens to ring 3 and nothing else.

use conduit_control_abi::layout;
use conduit_pci::{Bdf, ConfigAccess};
use core::arch::asm;

/// The task's accessor.
#[derive(Clone, Copy, Debug)]
pub enum Physical {
    /// ECAM for buses `start..=end`, bus `start` at [`layout::CONFIG_VA`].
    Ecam { start: u8, end: u8 },
    /// Ports 0xCF8/0xCFC: the first 256 bytes of each function.
    Ports,
}

impl Physical {
    fn ecam_addr(start: u8, end: u8, bdf: Bdf, offset: u16) -> Option<*mut u32> {
        if !(start..=end).contains(&bdf.bus()) || offset >= 0x1000 || !offset.is_multiple_of(4) {
            return None;
        }
        let off = (u64::from(bdf.bus() - start) << 20)
            | (u64::from(bdf.devfn()) << 12)
            | u64::from(offset);
        (off < layout::CONFIG_MAX).then_some((layout::CONFIG_VA + off) as *mut u32)
    }

    fn port_address(bdf: Bdf, offset: u16) -> Option<u32> {
        (offset < 0x100 && offset.is_multiple_of(4))
            .then(|| 0x8000_0000 | (u32::from(bdf.routing_id()) << 8) | u32::from(offset))
    }
}

impl ConfigAccess for Physical {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match *self {
            Self::Ecam { start, end } => match Self::ecam_addr(start, end, bdf, offset) {
                // SAFETY: the address lies in the ECAM window the kernel mapped for this task
                // (uncached, user read-write) for the buses of the MCFG region.
                Some(p) => unsafe { p.read_volatile() },
                None => u32::MAX,
            },
            Self::Ports => match Self::port_address(bdf, offset) {
                Some(address) => {
                    let value: u32;
                    // SAFETY: ports 0xCF8-0xCFF are open to this task (TSS I/O bitmap); the
                    // task is the only user of the mechanism after boot.
                    unsafe {
                        asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") address, options(nomem, nostack, preserves_flags));
                        asm!("in eax, dx", in("dx") 0xcfcu16, out("eax") value, options(nomem, nostack, preserves_flags));
                    }
                    value
                }
                None => u32::MAX,
            },
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        match *self {
            Self::Ecam { start, end } => {
                if let Some(p) = Self::ecam_addr(start, end, bdf, offset) {
                    // SAFETY: as in `read32`.
                    unsafe { p.write_volatile(value) };
                }
            }
            Self::Ports => {
                if let Some(address) = Self::port_address(bdf, offset) {
                    // SAFETY: as in `read32`.
                    unsafe {
                        asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") address, options(nomem, nostack, preserves_flags));
                        asm!("out dx, eax", in("dx") 0xcfcu16, in("eax") value, options(nomem, nostack, preserves_flags));
                    }
                }
            }
        }
    }
}
