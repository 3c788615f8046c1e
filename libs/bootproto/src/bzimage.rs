//! The bzImage setup header (Linux boot protocol, `Documentation/arch/x86/boot.rst`, "The
//! Real-Mode Kernel Header" and "Details of Header Fields"; the project's summary is in
//! `docs/linux-guests.md`).
//!
//! A bzImage is the real-mode setup code (`setup_sects + 1` sectors of 512 bytes, the first of
//! them the legacy boot sector whose tail holds the header at file offset 0x1F1) followed by the
//! protected-mode kernel. Conduit enters the kernel through its 64-bit entry point, at the load
//! address + 0x200, so only protocol 2.12 or later with `XLF_KERNEL_64` is accepted.

/// File offsets of the setup header fields (boot.rst, "The Real-Mode Kernel Header").
pub mod offset {
    pub const SETUP_SECTS: usize = 0x1F1;
    pub const SYSSIZE: usize = 0x1F4;
    pub const BOOT_FLAG: usize = 0x1FE;
    pub const JUMP: usize = 0x200;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21C;
    pub const HEAP_END_PTR: usize = 0x224;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22C;
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const PREF_ADDRESS: usize = 0x258;
    pub const INIT_SIZE: usize = 0x260;
    /// The first byte after the fields protocol 2.12 defines (`init_size` is the last one read).
    pub const END_2_12: usize = 0x268;
}

/// `"HdrS"` as the little-endian u32 at 0x202.
pub const MAGIC: u32 = u32::from_le_bytes(*b"HdrS");
/// The boot sector signature at 0x1FE.
pub const BOOT_FLAG: u16 = 0xAA55;
/// The oldest protocol Conduit loads: 2.12 (`xloadflags`, the 64-bit entry contract).
pub const MIN_VERSION: u16 = 0x020C;
/// `xloadflags` bit 0: the kernel has the 64-bit entry point at load address + 0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `loadflags` bit 0: the protected-mode code is loaded at 0x100000 (or relocated above it).
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit 7: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// Offset of the 64-bit entry point from the load address.
pub const ENTRY_64_OFFSET: u64 = 0x200;
/// Sector size of the setup code.
pub const SECTOR: usize = 512;

/// Why bytes are not a kernel Conduit can boot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BzImageError {
    #[error("{0} bytes is too short for a bzImage setup header (at least {end} bytes)", end = offset::END_2_12)]
    Truncated(usize),
    #[error("not a bzImage (no \"HdrS\" at 0x202)")]
    NoMagic,
    #[error("not a bzImage (boot flag {0:#06x} at 0x1FE, expected 0xaa55)")]
    BadBootFlag(u16),
    #[error("boot protocol {major}.{minor:02} is older than 2.12, the first with a 64-bit entry", major = .0 >> 8, minor = .0 & 0xff)]
    TooOld(u16),
    #[error("a 32-bit-only kernel (xloadflags {0:#x} lacks XLF_KERNEL_64)")]
    No64BitEntry(u16),
    #[error("setup code of {setup_len} bytes leaves no protected-mode kernel in a {len}-byte file")]
    NoKernel { setup_len: usize, len: usize },
    #[error(
        "truncated: syssize says {expected} bytes of protected-mode kernel, the file has {actual}"
    )]
    KernelTruncated { expected: u64, actual: u64 },
    #[error("kernel_alignment {0:#x} is not a power of two")]
    BadAlignment(u32),
    #[error("init_size is 0")]
    NoInitSize,
    #[error("header length byte at 0x201 ({0:#x}) puts the header end outside the setup sectors")]
    BadHeaderEnd(u8),
}

/// The setup header fields a loader needs, read from a bzImage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupHeader {
    /// Bytes of real-mode setup code, boot sector included: `(setup_sects or 4, if 0) + 1` sectors.
    pub setup_len: usize,
    /// Bytes of the protected-mode kernel in the file (everything after the setup code).
    pub kernel_len: u64,
    /// `version`, e.g. 0x020F for 2.15.
    pub version: u16,
    pub loadflags: u8,
    pub xloadflags: u16,
    pub relocatable: bool,
    /// A power of two; the load address must be a multiple of it if `relocatable`.
    pub kernel_alignment: u32,
    /// Where the kernel wants to be loaded (its link address for a non-relocatable kernel).
    pub pref_address: u64,
    /// Bytes from the load address the kernel needs during decompression and early boot.
    pub init_size: u32,
    /// Longest command line, without the terminating NUL.
    pub cmdline_size: u32,
    /// Highest address the initrd may occupy (its last byte).
    pub initrd_addr_max: u32,
    /// File offset one past the header's last byte (0x202 + the byte at 0x201): the part of
    /// the header the boot loader copies into the zero page starts at 0x1F1 and ends here.
    pub header_end: usize,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

impl SetupHeader {
    /// Reads and validates the setup header of the bzImage `image`.
    pub fn parse(image: &[u8]) -> Result<Self, BzImageError> {
        if image.len() < offset::END_2_12 {
            return Err(BzImageError::Truncated(image.len()));
        }
        if le32(image, offset::HEADER) != MAGIC {
            return Err(BzImageError::NoMagic);
        }
        let flag = le16(image, offset::BOOT_FLAG);
        if flag != BOOT_FLAG {
            return Err(BzImageError::BadBootFlag(flag));
        }
        let version = le16(image, offset::VERSION);
        if version < MIN_VERSION {
            return Err(BzImageError::TooOld(version));
        }
        let xloadflags = le16(image, offset::XLOADFLAGS);
        if xloadflags & XLF_KERNEL_64 == 0 {
            return Err(BzImageError::No64BitEntry(xloadflags));
        }
        let sects = match image[offset::SETUP_SECTS] {
            0 => 4,
            n => usize::from(n),
        };
        let setup_len = (sects + 1) * SECTOR;
        let header_len = image[offset::JUMP + 1];
        let header_end = offset::HEADER + usize::from(header_len);
        if header_end < offset::END_2_12 || header_end > setup_len {
            return Err(BzImageError::BadHeaderEnd(header_len));
        }
        if image.len() <= setup_len {
            return Err(BzImageError::NoKernel {
                setup_len,
                len: image.len(),
            });
        }
        let kernel_len = (image.len() - setup_len) as u64;
        let syssize = u64::from(le32(image, offset::SYSSIZE)) * 16;
        if syssize > kernel_len {
            return Err(BzImageError::KernelTruncated {
                expected: syssize,
                actual: kernel_len,
            });
        }
        let kernel_alignment = le32(image, offset::KERNEL_ALIGNMENT);
        if !kernel_alignment.is_power_of_two() {
            return Err(BzImageError::BadAlignment(kernel_alignment));
        }
        let init_size = le32(image, offset::INIT_SIZE);
        if init_size == 0 {
            return Err(BzImageError::NoInitSize);
        }
        Ok(Self {
            setup_len,
            kernel_len,
            version,
            loadflags: image[offset::LOADFLAGS],
            xloadflags,
            relocatable: image[offset::RELOCATABLE_KERNEL] != 0,
            kernel_alignment,
            pref_address: le64(image, offset::PREF_ADDRESS),
            init_size,
            cmdline_size: le32(image, offset::CMDLINE_SIZE),
            initrd_addr_max: le32(image, offset::INITRD_ADDR_MAX),
            header_end,
        })
    }
}

/// Builders of synthetic bzImages for the tests of this crate and of its users.
#[cfg(test)]
pub(crate) mod fake {
    use super::offset;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A well-formed 2.15 bzImage: 4 setup sectors (setup_sects 0 → 4), a kernel of `kernel_len`
    /// bytes whose first byte is 0xCC, relocatable, 2 MiB aligned, preferring 16 MiB, init_size
    /// 32 MiB, command line up to 2047 bytes, initrd below 0x7FFFFFFF.
    pub fn image(kernel_len: usize) -> Vec<u8> {
        let setup = 5 * 512;
        let mut b = vec![0u8; setup + kernel_len];
        b[offset::SETUP_SECTS] = 0;
        b[offset::SYSSIZE..offset::SYSSIZE + 4]
            .copy_from_slice(&((kernel_len / 16) as u32).to_le_bytes());
        b[offset::BOOT_FLAG..offset::BOOT_FLAG + 2].copy_from_slice(&0xAA55u16.to_le_bytes());
        b[offset::JUMP] = 0xEB;
        b[offset::JUMP + 1] = 0x6A; // header ends at 0x26C (protocol 2.15)
        b[offset::HEADER..offset::HEADER + 4].copy_from_slice(b"HdrS");
        put16(&mut b, offset::VERSION, 0x020F);
        b[offset::LOADFLAGS] = 1;
        put32(&mut b, offset::INITRD_ADDR_MAX, 0x7FFF_FFFF);
        put32(&mut b, offset::KERNEL_ALIGNMENT, 0x20_0000);
        b[offset::RELOCATABLE_KERNEL] = 1;
        put16(&mut b, offset::XLOADFLAGS, 0x3);
        put32(&mut b, offset::CMDLINE_SIZE, 2047);
        b[offset::PREF_ADDRESS..offset::PREF_ADDRESS + 8]
            .copy_from_slice(&0x100_0000u64.to_le_bytes());
        put32(&mut b, offset::INIT_SIZE, 0x200_0000);
        if kernel_len > 0 {
            b[setup] = 0xCC;
        }
        b
    }

    pub fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{image, put16, put32};
    use super::*;

    #[test]
    fn a_good_image_parses_with_its_fields() {
        let h = SetupHeader::parse(&image(0x1000)).unwrap();
        assert_eq!(h.setup_len, 5 * 512);
        assert_eq!(h.kernel_len, 0x1000);
        assert_eq!(h.version, 0x020F);
        assert!(h.relocatable);
        assert_eq!(h.kernel_alignment, 0x20_0000);
        assert_eq!(h.pref_address, 0x100_0000);
        assert_eq!(h.init_size, 0x200_0000);
        assert_eq!(h.cmdline_size, 2047);
        assert_eq!(h.initrd_addr_max, 0x7FFF_FFFF);
        assert_eq!(h.header_end, 0x26C);
    }

    #[test]
    fn explicit_setup_sects_are_used() {
        let mut b = image(0x1000);
        b[offset::SETUP_SECTS] = 2;
        let h = SetupHeader::parse(&b).unwrap();
        assert_eq!(h.setup_len, 3 * 512);
        assert_eq!(h.kernel_len, 0x1000 + 2 * 512);
    }

    #[test]
    fn short_files_are_truncated() {
        let b = image(0x1000);
        assert_eq!(
            SetupHeader::parse(&b[..0x260]),
            Err(BzImageError::Truncated(0x260))
        );
    }

    #[test]
    fn missing_magic_is_not_a_bzimage() {
        let mut b = image(0x1000);
        b[offset::HEADER] = b'X';
        let e = SetupHeader::parse(&b).unwrap_err();
        assert_eq!(e, BzImageError::NoMagic);
        assert_eq!(
            alloc::format!("{e}"),
            "not a bzImage (no \"HdrS\" at 0x202)"
        );
    }

    #[test]
    fn bad_boot_flag_is_refused() {
        let mut b = image(0x1000);
        put16(&mut b, offset::BOOT_FLAG, 0x1234);
        assert_eq!(
            SetupHeader::parse(&b),
            Err(BzImageError::BadBootFlag(0x1234))
        );
    }

    #[test]
    fn protocols_before_2_12_are_refused() {
        let mut b = image(0x1000);
        put16(&mut b, offset::VERSION, 0x020B);
        let e = SetupHeader::parse(&b).unwrap_err();
        assert_eq!(e, BzImageError::TooOld(0x020B));
        assert!(alloc::format!("{e}").contains("2.11 is older than 2.12"));
        put16(&mut b, offset::VERSION, 0x020C);
        assert!(SetupHeader::parse(&b).is_ok());
    }

    #[test]
    fn a_32_bit_only_kernel_is_refused() {
        let mut b = image(0x1000);
        put16(&mut b, offset::XLOADFLAGS, 0x2);
        assert_eq!(SetupHeader::parse(&b), Err(BzImageError::No64BitEntry(0x2)));
    }

    #[test]
    fn a_file_of_only_setup_code_has_no_kernel() {
        let b = image(0);
        assert_eq!(
            SetupHeader::parse(&b),
            Err(BzImageError::NoKernel {
                setup_len: 2560,
                len: 2560
            })
        );
    }

    #[test]
    fn syssize_beyond_the_file_is_truncation() {
        let mut b = image(0x1000);
        put32(&mut b, offset::SYSSIZE, 0x101);
        assert_eq!(
            SetupHeader::parse(&b),
            Err(BzImageError::KernelTruncated {
                expected: 0x1010,
                actual: 0x1000
            })
        );
    }

    #[test]
    fn alignment_must_be_a_power_of_two() {
        let mut b = image(0x1000);
        put32(&mut b, offset::KERNEL_ALIGNMENT, 0x30_0000);
        assert_eq!(
            SetupHeader::parse(&b),
            Err(BzImageError::BadAlignment(0x30_0000))
        );
    }

    #[test]
    fn zero_init_size_is_refused() {
        let mut b = image(0x1000);
        put32(&mut b, offset::INIT_SIZE, 0);
        assert_eq!(SetupHeader::parse(&b), Err(BzImageError::NoInitSize));
    }

    #[test]
    fn header_end_must_lie_in_the_setup_code() {
        let mut b = image(0x1000);
        b[offset::JUMP + 1] = 0x20;
        assert_eq!(
            SetupHeader::parse(&b),
            Err(BzImageError::BadHeaderEnd(0x20))
        );
    }
}
