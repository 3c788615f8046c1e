//! Places an operating-system guest's boot inputs in its memory (the Linux x86 boot protocol,
//! Linux `Documentation/arch/x86/boot.rst`; the guest-physical map is in `docs/linux-guests.md`):
//! after the kernel segment is loaded, the initrd, the command line, the firmware tables and
//! the zero page with the e820 map; for Multiboot 0.6.96 the modules and the information
//! structure. All values come from `conduit-bootproto`; this module only
//! writes them. A restart calls it again on zeroed memory.

use super::layout::GuestMemory;
use super::mmio::{ECAM_GPA, ECAM_LEN};
use super::spec::{GuestSpec, LinuxImage, MultibootImage};
use alloc::vec::Vec;
use conduit_bootproto::e820::{self, E820Error};
use conduit_bootproto::layout::{FIRMWARE_END, FIRMWARE_GPA};
use conduit_bootproto::multiboot::{self, InfoModule, MultibootError};
use conduit_bootproto::zeropage::{self, ZeroPageError};

// The map reserves the ECAM window the guest's virtual bus decodes.
const _: () = assert!(e820::GUEST_MMIO[0].0 == ECAM_GPA && e820::GUEST_MMIO[0].1 == ECAM_LEN);

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
    Multiboot(MultibootError),
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
            Self::Multiboot(e) => write!(f, "Multiboot information: {e}"),
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
/// The kernel segments themselves are loaded by [`GuestMemory::load`] beforehand.
pub fn load(mem: &mut GuestMemory, spec: &GuestSpec) -> Result<(), OsBootError> {
    if let Some(linux) = &spec.linux {
        load_linux(mem, linux, &spec.firmware)?;
    }
    if let Some(mb) = &spec.multiboot {
        load_multiboot(mem, mb, &spec.firmware)?;
    }
    Ok(())
}

fn load_firmware(mem: &mut GuestMemory, firmware: &[u8]) -> Result<(), OsBootError> {
    if firmware.len() as u64 > FIRMWARE_END - FIRMWARE_GPA {
        return Err(OsBootError::FirmwareTooLarge(firmware.len()));
    }
    write(mem, "firmware tables", FIRMWARE_GPA, firmware)
}

/// The modules after the kernel, then the information structure with its strings, module list
/// and memory map at `multiboot::INFO_GPA`.
fn load_multiboot(
    mem: &mut GuestMemory,
    mb: &MultibootImage,
    firmware: &[u8],
) -> Result<(), OsBootError> {
    for (bytes, _, place) in &mb.modules {
        write(mem, "module", place.start, bytes)?;
    }
    load_firmware(mem, firmware)?;
    let map = e820::conduit_guest_map(&mem.ram).map_err(OsBootError::E820)?;
    let modules: Vec<InfoModule<'_>> = mb
        .modules
        .iter()
        .map(|(_, cmdline, place)| InfoModule {
            place: *place,
            cmdline,
        })
        .collect();
    let info = multiboot::build_info(multiboot::INFO_GPA as u32, &mb.cmdline, &modules, &map)
        .map_err(OsBootError::Multiboot)?;
    if multiboot::INFO_GPA + info.len() as u64 > multiboot::INFO_LIMIT {
        return Err(OsBootError::Outside {
            what: "Multiboot information",
            gpa: multiboot::INFO_GPA,
            len: info.len() as u64,
        });
    }
    write(mem, "Multiboot information", multiboot::INFO_GPA, &info)
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
    load_firmware(mem, firmware)?;
    let map = e820::conduit_guest_map(&mem.ram).map_err(OsBootError::E820)?;
    let rsdp = (!firmware.is_empty()).then_some(l.layout.rsdp);
    let page = zeropage::build(l.bzimage, &l.header, &l.layout, &map, rsdp)
        .map_err(OsBootError::ZeroPage)?;
    write(mem, "zero page", l.layout.zero_page, &page)
}
