//! Physical configuration space as the task reaches it: the ECAM windows of every PCI segment,
//! window `i` mapped at [`conduit_control_abi::layout::config_va`]`(i)` (PCIe Base Spec r6.0
//! §7.2.2), or configuration mechanism #1 through ports 0xCF8/0xCFC (PCI Local Bus Spec 3.0
//! §3.2.2.3.2, segment 0 only), which the kernel's TSS I/O permission bitmap opens to ring 3 and
//! nothing else. Which window an access lands in is `ConfigWindows::locate` (host-tested in
//! `conduit-control-abi`).

use conduit_control_abi::{ConfigWindows, Target};
use conduit_pci::{Bdf, ConfigAccess, PciAddress};
use core::arch::asm;

/// The task's accessor for the functions of one PCI segment.
#[derive(Clone, Copy, Debug)]
pub struct Physical {
    windows: ConfigWindows,
    segment: u16,
}

impl Physical {
    /// Accesses to functions of `segment` through `windows`.
    pub const fn new(windows: ConfigWindows, segment: u16) -> Self {
        Self { windows, segment }
    }

    fn target(&self, bdf: Bdf, offset: u16) -> Option<Target> {
        self.windows
            .locate(PciAddress::new(self.segment, bdf), offset)
    }
}

impl ConfigAccess for Physical {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.target(bdf, offset) {
            // SAFETY: `locate` returns only addresses inside a window the kernel mapped for this
            // task (uncached, user read-write) over the buses of that MCFG allocation.
            Some(Target::Ecam(va)) => unsafe { (va as *const u32).read_volatile() },
            Some(Target::Port(address)) => {
                let value: u32;
                // SAFETY: ports 0xCF8-0xCFF are open to this task (TSS I/O bitmap); the task is
                // the only user of the mechanism after boot.
                unsafe {
                    asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") address, options(nomem, nostack, preserves_flags));
                    asm!("in eax, dx", in("dx") 0xcfcu16, out("eax") value, options(nomem, nostack, preserves_flags));
                }
                value
            }
            None => u32::MAX,
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        match self.target(bdf, offset) {
            // SAFETY: as in `read32`.
            Some(Target::Ecam(va)) => unsafe { (va as *mut u32).write_volatile(value) },
            Some(Target::Port(address)) => {
                // SAFETY: as in `read32`.
                unsafe {
                    asm!("out dx, eax", in("dx") 0xcf8u16, in("eax") address, options(nomem, nostack, preserves_flags));
                    asm!("out dx, eax", in("dx") 0xcfcu16, in("eax") value, options(nomem, nostack, preserves_flags));
                }
            }
            None => {}
        }
    }
}
