//! Places an operating-system guest's boot inputs in its memory (the Linux x86 boot protocol,
//! Linux `Documentation/arch/x86/boot.rst`; the guest-physical map is in `docs/linux-guests.md`):
//! after the kernel segment is loaded, the initrd, the command line, the firmware tables and
//! the zero page with the e820 map. All values come from `conduit-bootproto`; this module only
//! writes them. A restart calls it again on zeroed memory.

use super::layout::GuestMemory;
use super::mmio::{ECAM_GPA, ECAM_LEN};
use super::spec::{GuestSpec, LinuxImage};
use conduit_bootproto::e820::{self, E820Error};
use conduit_bootproto::layout::{FIRMWARE_END, FIRMWARE_GPA};
use conduit_bootproto::zeropage::{self, ZeroPageError};

/// The I/O APIC's and the local APIC's register windows (Intel 82093AA datasheet §3.0; SDM
/// Vol. 3A §11.4.1 "The Local APIC Block Diagram", default APIC_BASE): reserved in the map.
const IOAPIC_GPA: u64 = 0xFEC0_0000;
const LAPIC_GPA: u64 = 0xFEE0_0000;
const APIC_WINDOW: u64 = 0x1000;

/// Why a guest's boot inputs could not be placed.
#[derive(Debug, Clone)]
pub enum OsBootError {
    /// A piece does not lie inside guest memory.
    Outside {
        what: &'static str,
        gpa: u64,
        len: u64,
    },
    /// The firmware tables are larger than their window.
    FirmwareTooLarge(usize),
    E820(E820Error),
    ZeroPage(ZeroPageError),
}

impl core::fmt::Display for OsBootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Outside { what, gpa, len } => {
                write!(
                    f,
                    "{what} at GPA {gpa:#x} (+{len:#x}) lies outside guest memory"
                )
            }
            Self::FirmwareTooLarge(n) => write!(
                f,
                "firmware tables of {n} bytes exceed their window [{FIRMWARE_GPA:#x}, {FIRMWARE_END:#x})"
            ),
            Self::E820(e) => write!(f, "e820 map: {e}"),
            Self::ZeroPage(e) => write!(f, "zero page: {e}"),
        }
    }
}

fn write(
    mem: &mut GuestMemory,
    what: &'static str,
    gpa: u64,
    bytes: &[u8],
) -> Result<(), OsBootError> {
    let len = bytes.len() as u64;
    mem.bytes_mut(gpa, len)
        .ok_or(OsBootError::Outside { what, gpa, len })?
        .copy_from_slice(bytes);
    Ok(())
}

/// Writes the boot inputs of `spec`'s operating system (nothing for a purpose-built image).
/// The kernel segment itself is loaded by [`GuestMemory::load`] beforehand.
pub fn load(mem: &mut GuestMemory, spec: &GuestSpec) -> Result<(), OsBootError> {
    match &spec.linux {
        Some(linux) => load_linux(mem, linux, &spec.firmware),
        None => Ok(()),
    }
}

fn load_linux(mem: &mut GuestMemory, l: &LinuxImage, firmware: &[u8]) -> Result<(), OsBootError> {
    if let (Some((gpa, _)), Some(initrd)) = (l.layout.initrd, l.initrd) {
        write(mem, "initrd", gpa, initrd)?;
    }
    write(mem, "command line", l.layout.cmdline, l.cmdline.as_bytes())?;
    // The NUL after it: memory is zero, but say so rather than rely on it.
    write(
        mem,
        "command line",
        l.layout.cmdline + l.cmdline.len() as u64,
        &[0],
    )?;
    if firmware.len() as u64 > FIRMWARE_END - FIRMWARE_GPA {
        return Err(OsBootError::FirmwareTooLarge(firmware.len()));
    }
    write(mem, "firmware tables", FIRMWARE_GPA, firmware)?;
    let map = e820::guest_map(
        mem.size,
        (FIRMWARE_GPA, FIRMWARE_END),
        &[
            (ECAM_GPA, ECAM_LEN),
            (IOAPIC_GPA, APIC_WINDOW),
            (LAPIC_GPA, APIC_WINDOW),
        ],
    )
    .map_err(OsBootError::E820)?;
    let rsdp = (!firmware.is_empty()).then_some(l.layout.rsdp);
    let page = zeropage::build(l.bzimage, &l.header, &l.layout, &map, rsdp)
        .map_err(OsBootError::ZeroPage)?;
    write(mem, "zero page", l.layout.zero_page, &page)
}
