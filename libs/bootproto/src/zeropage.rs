//! The zero page: `struct boot_params` (Linux `arch/x86/include/uapi/asm/bootparam.h`, and
//! `Documentation/arch/x86/zero-page.rst` for the offsets), 4 KiB, its address handed to the
//! kernel in RSI at the 64-bit entry.

use crate::bzimage::{CAN_USE_HEAP, LOADED_HIGH, SetupHeader, offset as hdr};
use crate::e820;
use crate::layout::LinuxLayout;

/// Size of `struct boot_params`.
pub const SIZE: usize = 4096;
/// `acpi_rsdp_addr` (u64).
pub const ACPI_RSDP_ADDR: usize = 0x070;
/// `ext_ramdisk_image`, `ext_ramdisk_size`, `ext_cmd_line_ptr` (u32 each): the high halves.
pub const EXT_RAMDISK_IMAGE: usize = 0x0C0;
pub const EXT_RAMDISK_SIZE: usize = 0x0C4;
pub const EXT_CMD_LINE_PTR: usize = 0x0C8;
/// `e820_entries` (u8).
pub const E820_ENTRIES: usize = 0x1E8;
/// `sentinel` (u8): a boot loader that zeroes the page leaves it 0.
pub const SENTINEL: usize = 0x1EF;
/// `hdr`: the setup header, at the same offset as in the image.
pub const SETUP_HEADER: usize = 0x1F1;
/// `e820_table`: [`E820_MAX`] entries of 20 bytes.
pub const E820_TABLE: usize = 0x2D0;
/// `E820_MAX_ENTRIES_ZEROPAGE`.
pub const E820_MAX: usize = 128;
/// The field after the e820 table (`_pad8`).
const E820_TABLE_END: usize = 0xCD0;
/// `heap_end_ptr` is an offset from the real-mode setup segment; no real-mode code runs on the
/// 64-bit path, so the protocol's customary value is given.
const HEAP_END: u16 = 0xFE00;
/// `type_of_loader` 0xFF: "undefined" boot loader (boot.rst, "type_of_loader").
const TYPE_OF_LOADER: u8 = 0xFF;

const _: () = assert!(E820_TABLE + E820_MAX * 20 == E820_TABLE_END);
const _: () = assert!(SENTINEL < SETUP_HEADER && E820_ENTRIES < SENTINEL);
const _: () = assert!(EXT_CMD_LINE_PTR + 4 <= 0x13C && ACPI_RSDP_ADDR + 8 <= EXT_RAMDISK_IMAGE);
const _: () = assert!(hdr::SETUP_SECTS == SETUP_HEADER && hdr::END_2_12 < E820_TABLE);

/// Why a zero page cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ZeroPageError {
    #[error("{0} e820 entries, the zero page holds {E820_MAX}")]
    TooManyE820(usize),
    #[error("the image is shorter than its setup header")]
    ImageTooShort,
    #[error("{what} at {addr:#x} is above 4 GiB")]
    Above4G { what: &'static str, addr: u64 },
}

fn put32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn low32(what: &'static str, addr: u64) -> Result<u32, ZeroPageError> {
    u32::try_from(addr).map_err(|_| ZeroPageError::Above4G { what, addr })
}

/// Builds the zero page for the kernel `image` (its header `h`) laid out as `layout`, with the
/// memory map `e820` and, if the guest has firmware tables, the RSDP at `rsdp`.
pub fn build(
    image: &[u8],
    h: &SetupHeader,
    layout: &LinuxLayout,
    e820: &[e820::Entry],
    rsdp: Option<u64>,
) -> Result<[u8; SIZE], ZeroPageError> {
    if e820.len() > E820_MAX {
        return Err(ZeroPageError::TooManyE820(e820.len()));
    }
    let header = image
        .get(SETUP_HEADER..h.header_end)
        .ok_or(ZeroPageError::ImageTooShort)?;
    let mut p = [0u8; SIZE];
    p[SETUP_HEADER..h.header_end].copy_from_slice(header);
    p[hdr::TYPE_OF_LOADER] = TYPE_OF_LOADER;
    p[hdr::LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
    p[hdr::HEAP_END_PTR..hdr::HEAP_END_PTR + 2].copy_from_slice(&HEAP_END.to_le_bytes());
    put32(
        &mut p,
        hdr::CMD_LINE_PTR,
        low32("command line", layout.cmdline)?,
    );
    if let Some((at, len)) = layout.initrd {
        put32(&mut p, hdr::RAMDISK_IMAGE, low32("initrd", at)?);
        put32(&mut p, hdr::RAMDISK_SIZE, low32("initrd size", len)?);
    }
    if let Some(rsdp) = rsdp {
        p[ACPI_RSDP_ADDR..ACPI_RSDP_ADDR + 8].copy_from_slice(&rsdp.to_le_bytes());
    }
    p[E820_ENTRIES] = e820.len() as u8;
    for (i, e) in e820.iter().enumerate() {
        let at = E820_TABLE + i * 20;
        p[at..at + 20].copy_from_slice(&e.to_bytes());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bzimage::fake::image;

    fn rd32(p: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(p[at..at + 4].try_into().unwrap())
    }

    fn setup() -> (alloc::vec::Vec<u8>, SetupHeader, LinuxLayout) {
        let img = image(0x1000);
        let h = SetupHeader::parse(&img).unwrap();
        let l =
            LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 << 20), &h, 20, 0x5000).unwrap();
        (img, h, l)
    }

    #[test]
    fn fields_read_back_at_their_offsets() {
        let (img, h, l) = setup();
        let map = e820::guest_map(
            &crate::ram::GuestRam::contiguous(256 << 20),
            (0xE_0000, 0x10_0000),
            &[(0xFEC0_0000, 0x1000)],
        )
        .unwrap();
        let p = build(&img, &h, &l, &map, Some(0xE_0000)).unwrap();
        // The header is copied from 0x1F1 to its end (0x26C here), then amended.
        assert_eq!(&p[0x202..0x206], b"HdrS");
        assert_eq!(u16::from_le_bytes([p[0x206], p[0x207]]), 0x020F);
        assert_eq!(rd32(&p, 0x260), 0x200_0000, "init_size copied");
        assert_eq!(p[0x210], 0xFF, "type_of_loader");
        assert_eq!(p[0x211], 0x81, "LOADED_HIGH | CAN_USE_HEAP");
        assert_eq!(u16::from_le_bytes([p[0x224], p[0x225]]), 0xFE00);
        assert_eq!(rd32(&p, 0x228), 0x2_0000, "cmd_line_ptr");
        let (initrd, len) = l.initrd.unwrap();
        assert_eq!(rd32(&p, 0x218), initrd as u32);
        assert_eq!(rd32(&p, 0x21C), 0x5000);
        assert_eq!(
            u64::from_le_bytes(p[0x70..0x78].try_into().unwrap()),
            0xE_0000
        );
        assert_eq!(len, 0x5000);
        assert_eq!(p[0x1E8] as usize, map.len());
        for (i, e) in map.iter().enumerate() {
            let at = 0x2D0 + 20 * i;
            assert_eq!(
                u64::from_le_bytes(p[at..at + 8].try_into().unwrap()),
                e.addr
            );
            assert_eq!(
                u64::from_le_bytes(p[at + 8..at + 16].try_into().unwrap()),
                e.size
            );
            assert_eq!(rd32(&p, at + 16), e.kind as u32);
        }
        assert_eq!(p[0x1EF], 0, "sentinel");
        // Nothing past the header's end was copied from the image's setup code.
        assert!(p[0x26C..0x2D0].iter().all(|&b| b == 0));
    }

    #[test]
    fn without_firmware_or_initrd_those_fields_stay_zero() {
        let img = image(0x1000);
        let h = SetupHeader::parse(&img).unwrap();
        let l = LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 << 20), &h, 0, 0).unwrap();
        let p = build(&img, &h, &l, &[], None).unwrap();
        assert_eq!(rd32(&p, 0x218), 0);
        assert_eq!(rd32(&p, 0x21C), 0);
        assert!(p[0x70..0x78].iter().all(|&b| b == 0));
        assert_eq!(p[0x1E8], 0);
    }

    #[test]
    fn more_than_128_e820_entries_are_refused() {
        let (img, h, l) = setup();
        let e = e820::Entry {
            addr: 0,
            size: 1,
            kind: e820::Kind::Ram,
        };
        let many = alloc::vec![e; 129];
        assert_eq!(
            build(&img, &h, &l, &many, None),
            Err(ZeroPageError::TooManyE820(129))
        );
    }

    #[test]
    fn an_image_shorter_than_its_header_is_refused() {
        let (img, mut h, l) = setup();
        h.header_end = img.len() + 1;
        assert_eq!(
            build(&img, &h, &l, &[], None),
            Err(ZeroPageError::ImageTooShort)
        );
    }
}
