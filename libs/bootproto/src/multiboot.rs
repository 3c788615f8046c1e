//! Multiboot (Specification version 0.6.96): the header a kernel carries (§3.1 "OS image
//! format"), where its code goes (§3.1.3 address fields, or its ELF program headers), and the
//! information structure the boot loader hands it (§3.3 "Boot information format"). The
//! machine state at entry (§3.2) is the kernel's business: 32-bit protected mode, paging off,
//! flat CS and DS, EAX = [`BOOTLOADER_MAGIC`], EBX = the information structure.

use crate::e820;
use alloc::vec::Vec;

/// The header's `magic` field.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// EAX at entry.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header lies within the first 8192 bytes of the image, 4-byte aligned.
pub const SEARCH_LEN: usize = 8192;
/// Header flag bits (§3.1.2).
pub const PAGE_ALIGN: u32 = 1 << 0;
pub const MEMORY_INFO: u32 = 1 << 1;
pub const VIDEO_MODE: u32 = 1 << 2;
pub const ADDRESS_FIELDS: u32 = 1 << 16;
/// Bits 0-15 are requirements: a loader must refuse a kernel with one it does not know.
const REQUIRED_MASK: u32 = 0xFFFF;
const KNOWN_REQUIRED: u32 = PAGE_ALIGN | MEMORY_INFO;
/// Information flag bits (§3.3).
pub const INFO_MEMORY: u32 = 1 << 0;
pub const INFO_CMDLINE: u32 = 1 << 2;
pub const INFO_MODS: u32 = 1 << 3;
pub const INFO_MMAP: u32 = 1 << 6;
pub const INFO_LOADER_NAME: u32 = 1 << 9;
/// The information Conduit always gives.
const FLAGS: u32 = INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME;
/// Where Conduit puts the information structure (with its strings, module list and map).
pub const INFO_GPA: u64 = 0x1_0000;
/// The information blob must end below the EBDA-sized hole.
pub const INFO_LIMIT: u64 = 0x9_F000;
/// A Multiboot kernel loads at or above 1 MiB (below are the information structure and the
/// firmware tables).
pub const KERNEL_MIN: u64 = 0x10_0000;
/// Size of the information structure up to and including the VBE fields.
pub const INFO_LEN: usize = 88;
const PAGE: u64 = 0x1000;

/// Why an image is not a Multiboot kernel Conduit can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MultibootError {
    #[error("no Multiboot header (magic 0x1badb002 with a valid checksum) in the first 8192 bytes")]
    NoHeader,
    #[error("the kernel asks for a video mode (flags bit 2), which Conduit does not provide")]
    VideoMode,
    #[error("the kernel requires features Conduit does not know (flags {0:#x}, bits 0-15)")]
    UnknownRequirement(u32),
    #[error("the address fields end beyond the file")]
    TruncatedHeader,
    #[error(
        "address fields are inconsistent: header_addr {header_addr:#x}, load_addr {load_addr:#x}, load_end_addr {load_end_addr:#x}, bss_end_addr {bss_end_addr:#x}"
    )]
    BadAddresses {
        header_addr: u32,
        load_addr: u32,
        load_end_addr: u32,
        bss_end_addr: u32,
    },
    #[error("the load range [{start:#x}, {end:#x}) reads beyond the {len}-byte file")]
    LoadBeyondFile { start: u64, end: u64, len: usize },
    #[error("the entry point {0:#x} is outside the loaded range")]
    EntryOutside(u32),
    #[error("{what} do not fit in guest memory")]
    DoesNotFit { what: &'static str },
}

/// The header's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// File offset of the header.
    pub offset: usize,
    pub flags: u32,
}

/// Where the kernel's bytes go when the header has address fields (flag bit 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLoad {
    /// The file range `[file_offset, file_offset + file_len)` goes to `load_addr`, then zeros
    /// up to `mem_len`.
    pub load_addr: u64,
    pub file_offset: u64,
    pub file_len: u64,
    pub mem_len: u64,
    pub entry: u64,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Finds and checks the header in the first [`SEARCH_LEN`] bytes of `image`.
    pub fn find(image: &[u8]) -> Result<Self, MultibootError> {
        let window = &image[..image.len().min(SEARCH_LEN)];
        let offset = (0..window.len().saturating_sub(11))
            .step_by(4)
            .find(|&at| {
                let (magic, flags, sum) =
                    (le32(window, at), le32(window, at + 4), le32(window, at + 8));
                magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(sum) == 0
            })
            .ok_or(MultibootError::NoHeader)?;
        let flags = le32(window, offset + 4);
        if flags & VIDEO_MODE != 0 {
            return Err(MultibootError::VideoMode);
        }
        if flags & REQUIRED_MASK & !KNOWN_REQUIRED != 0 {
            return Err(MultibootError::UnknownRequirement(flags));
        }
        Ok(Self { offset, flags })
    }

    /// The load described by the address fields (§3.1.3), if the header has them (bit 16);
    /// `None` means the image is an ELF whose program headers say where it goes.
    pub fn address_load(&self, image: &[u8]) -> Result<Option<AddressLoad>, MultibootError> {
        if self.flags & ADDRESS_FIELDS == 0 {
            return Ok(None);
        }
        let at = self.offset;
        if image.len() < at + 32 {
            return Err(MultibootError::TruncatedHeader);
        }
        let field = |i: usize| le32(image, at + 12 + 4 * i);
        let (header_addr, load_addr, load_end_addr, bss_end_addr, entry) =
            (field(0), field(1), field(2), field(3), field(4));
        let bad = MultibootError::BadAddresses {
            header_addr,
            load_addr,
            load_end_addr,
            bss_end_addr,
        };
        // The file offset that goes to load_addr: the header's own offset, minus how far the
        // header lies after load_addr.
        let before = header_addr.checked_sub(load_addr).ok_or(bad)?;
        let file_offset = (at as u64).checked_sub(u64::from(before)).ok_or(bad)?;
        let file_len = match load_end_addr {
            0 => image.len() as u64 - file_offset,
            end => u64::from(end.checked_sub(load_addr).ok_or(bad)?),
        };
        if file_offset + file_len > image.len() as u64 {
            return Err(MultibootError::LoadBeyondFile {
                start: file_offset,
                end: file_offset + file_len,
                len: image.len(),
            });
        }
        let load_end = u64::from(load_addr) + file_len;
        let mem_len = match bss_end_addr {
            0 => file_len,
            end if u64::from(end) >= load_end => u64::from(end) - u64::from(load_addr),
            _ => return Err(bad),
        };
        if !(u64::from(load_addr)..u64::from(load_addr) + mem_len).contains(&u64::from(entry)) {
            return Err(MultibootError::EntryOutside(entry));
        }
        Ok(Some(AddressLoad {
            load_addr: u64::from(load_addr),
            file_offset,
            file_len,
            mem_len,
            entry: u64::from(entry),
        }))
    }
}

/// A module as the information structure describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModulePlace {
    pub start: u64,
    pub len: u64,
}

/// Places modules of `lens` bytes one after another from `kernel_end`, each page-aligned (the
/// loader may always align; bit 0 requires it), all below `memory`.
pub fn place_modules(
    kernel_end: u64,
    lens: &[u64],
    memory: u64,
) -> Result<Vec<ModulePlace>, MultibootError> {
    let mut next = kernel_end;
    let mut out = Vec::with_capacity(lens.len());
    for &len in lens {
        let start = next.checked_add(PAGE - 1).map(|a| a & !(PAGE - 1)).ok_or(
            MultibootError::DoesNotFit {
                what: "the modules",
            },
        )?;
        let end =
            start
                .checked_add(len)
                .filter(|&e| e <= memory)
                .ok_or(MultibootError::DoesNotFit {
                    what: "the modules",
                })?;
        out.push(ModulePlace { start, len });
        next = end;
    }
    Ok(out)
}

/// One module for [`build_info`]: where it is and its command line.
#[derive(Debug, Clone, Copy)]
pub struct InfoModule<'a> {
    pub place: ModulePlace,
    pub cmdline: &'a str,
}

/// Builds the information structure to be written at `base` (GPA, below 4 GiB), with its
/// strings, module list and memory map after it in the same blob: memory (mem_lower/mem_upper
/// from `map`), the command line, the modules, the map and the boot loader's name.
pub fn build_info(
    base: u32,
    cmdline: &str,
    modules: &[InfoModule<'_>],
    map: &[e820::Entry],
) -> Result<Vec<u8>, MultibootError> {
    let mut blob = alloc::vec![0u8; INFO_LEN];
    let too_big = MultibootError::DoesNotFit {
        what: "the information structure",
    };
    let gpa = |blob: &Vec<u8>| -> Result<u32, MultibootError> {
        u32::try_from(blob.len())
            .ok()
            .and_then(|l| base.checked_add(l))
            .ok_or(too_big)
    };
    let push_str = |blob: &mut Vec<u8>, s: &str| -> Result<u32, MultibootError> {
        let at = gpa(blob)?;
        blob.extend_from_slice(s.as_bytes());
        blob.push(0);
        Ok(at)
    };
    let put =
        |blob: &mut Vec<u8>, at: usize, v: u32| blob[at..at + 4].copy_from_slice(&v.to_le_bytes());

    // mem_lower: KiB from 0; mem_upper: KiB from 1 MiB up to the first hole (§3.3).
    let kib_at = |start: u64| {
        map.iter()
            .find(|e| e.kind == e820::Kind::Ram && e.addr == start)
            .map_or(0, |e| (e.size / 1024).min(u64::from(u32::MAX)) as u32)
    };
    put(&mut blob, 4, kib_at(0));
    put(&mut blob, 8, kib_at(e820::HIGH_RAM_START));
    let c = push_str(&mut blob, cmdline)?;
    put(&mut blob, 16, c);
    let name = push_str(&mut blob, "Conduit")?;
    put(&mut blob, 64, name);
    let strings: Vec<u32> = modules
        .iter()
        .map(|m| push_str(&mut blob, m.cmdline))
        .collect::<Result<_, _>>()?;
    while !blob.len().is_multiple_of(4) {
        blob.push(0);
    }
    let mods = gpa(&blob)?;
    for (m, s) in modules.iter().zip(&strings) {
        let start = u32::try_from(m.place.start).map_err(|_| too_big)?;
        let end = u32::try_from(m.place.start + m.place.len).map_err(|_| too_big)?;
        for v in [start, end, *s, 0] {
            blob.extend_from_slice(&v.to_le_bytes());
        }
    }
    put(&mut blob, 20, modules.len() as u32);
    put(&mut blob, 24, mods);
    let mmap = gpa(&blob)?;
    for e in map {
        // `size` counts the bytes after itself: base, length, type.
        blob.extend_from_slice(&20u32.to_le_bytes());
        blob.extend_from_slice(&e.to_bytes());
    }
    put(&mut blob, 44, (map.len() * 24) as u32);
    put(&mut blob, 48, mmap);
    put(&mut blob, 0, FLAGS);
    gpa(&blob)?;
    Ok(blob)
}

#[cfg(test)]
#[path = "multiboot_tests.rs"]
mod tests;
