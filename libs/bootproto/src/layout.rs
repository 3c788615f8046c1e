//! Where a Linux guest's pieces go in guest-physical memory (the map is in
//! `docs/linux-guests.md`; the rules are the Linux boot protocol's, `Documentation/arch/x86/
//! boot.rst`, "Loading The Rest of The Kernel" and "The 64-bit Boot Protocol").
//!
//! Below 1 MiB: `[0x800, 0x8000)` holds the hypervisor's boot GDT, TSS and identity page
//! tables, the zero page is at [`ZERO_PAGE_GPA`], the command line at [`CMDLINE_GPA`], and the
//! firmware tables fill [`FIRMWARE_GPA`]`..`[`FIRMWARE_END`] with the RSDP at its start. The
//! protected-mode kernel goes at its `pref_address` when that fits, the initrd at the top of
//! what both RAM and `initrd_addr_max` allow.

use crate::bzimage::{ENTRY_64_OFFSET, SetupHeader};
use crate::ram::GuestRam;

/// The zero page (`struct boot_params`), 4 KiB.
pub const ZERO_PAGE_GPA: u64 = 0x1_0000;
/// The NUL-terminated command line.
pub const CMDLINE_GPA: u64 = 0x2_0000;
/// The command line must end below the EBDA-sized hole at the top of conventional memory.
pub const CMDLINE_LIMIT: u64 = 0x9_F000;
/// The firmware (ACPI) tables: the BIOS read-only area the OS scans for the RSDP.
pub const FIRMWARE_GPA: u64 = 0xE_0000;
pub const FIRMWARE_END: u64 = 0x10_0000;
/// The RSDP, first in the firmware area.
pub const RSDP_GPA: u64 = FIRMWARE_GPA;
/// The protected-mode kernel never goes below 1 MiB.
pub const KERNEL_MIN: u64 = 0x10_0000;
const PAGE: u64 = 0x1000;

const _: () = assert!(ZERO_PAGE_GPA >= 0x8000 && ZERO_PAGE_GPA + PAGE <= CMDLINE_GPA);
const _: () = assert!(CMDLINE_LIMIT <= crate::e820::LOW_RAM_END);

/// Why a kernel, command line or initrd does not fit a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "the kernel needs {need:#x} bytes (init_size) from {at:#x}, beyond the end of the guest's RAM at {memory:#x}"
    )]
    KernelDoesNotFit { at: u64, need: u64, memory: u64 },
    #[error(
        "the kernel is not relocatable and wants {pref:#x}, where its {need:#x} bytes do not fit below the end of the guest's RAM at {memory:#x}"
    )]
    NotRelocatable { pref: u64, need: u64, memory: u64 },
    #[error("command line is {len} bytes, the kernel accepts {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error(
        "initrd of {len} bytes does not fit between the kernel's end {kernel_end:#x} and {limit:#x} (the lower of the end of memory and initrd_addr_max)"
    )]
    InitrdDoesNotFit {
        len: u64,
        kernel_end: u64,
        limit: u64,
    },
}

/// The guest-physical addresses of everything a Linux guest is loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxLayout {
    /// Load address of the protected-mode kernel.
    pub kernel: u64,
    /// One past the `init_size` bytes the kernel may use from `kernel`.
    pub kernel_end: u64,
    /// The 64-bit entry point: `kernel` + 0x200.
    pub entry: u64,
    pub zero_page: u64,
    pub cmdline: u64,
    /// `(address, length)` of the initrd, page-aligned.
    pub initrd: Option<(u64, u64)>,
    pub rsdp: u64,
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

impl LinuxLayout {
    /// Places a kernel with header `h` in the guest's RAM above 1 MiB (`ram.high()`), with a
    /// command line of `cmdline_len` bytes (without its NUL) and an initrd of `initrd_len` bytes
    /// (0: none). The `memory` of the errors is the end of that RAM.
    pub fn new(
        ram: &GuestRam,
        h: &SetupHeader,
        cmdline_len: usize,
        initrd_len: u64,
    ) -> Result<Self, LayoutError> {
        let max = h.cmdline_size as usize;
        let room = (CMDLINE_LIMIT - CMDLINE_GPA - 1) as usize;
        if cmdline_len > max.min(room) {
            return Err(LayoutError::CmdlineTooLong {
                len: cmdline_len,
                max: max.min(room),
            });
        }
        let need = u64::from(h.init_size).max(h.kernel_len);
        let high = ram.high();
        let memory = high.end;
        let lowest = high.start.max(KERNEL_MIN);
        let fits = |at: u64| at >= lowest && at.checked_add(need).is_some_and(|end| end <= memory);
        let kernel = if fits(h.pref_address) {
            h.pref_address
        } else if !h.relocatable {
            return Err(LayoutError::NotRelocatable {
                pref: h.pref_address,
                need,
                memory,
            });
        } else {
            let at = align_up(lowest, u64::from(h.kernel_alignment)).unwrap_or(u64::MAX);
            if !fits(at) {
                return Err(LayoutError::KernelDoesNotFit { at, need, memory });
            }
            at
        };
        let kernel_end = kernel + need;
        let initrd = match initrd_len {
            0 => None,
            len => {
                let limit = memory.min(u64::from(h.initrd_addr_max) + 1);
                let err = LayoutError::InitrdDoesNotFit {
                    len,
                    kernel_end,
                    limit,
                };
                let at = limit.checked_sub(len).ok_or(err)? & !(PAGE - 1);
                if at < kernel_end {
                    return Err(err);
                }
                Some((at, len))
            }
        };
        Ok(Self {
            kernel,
            kernel_end,
            entry: kernel + ENTRY_64_OFFSET,
            zero_page: ZERO_PAGE_GPA,
            cmdline: CMDLINE_GPA,
            initrd,
            rsdp: RSDP_GPA,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bzimage::fake::{image, put32};
    use crate::bzimage::offset;

    const MIB: u64 = 1 << 20;

    fn header(b: &[u8]) -> SetupHeader {
        SetupHeader::parse(b).unwrap()
    }

    #[test]
    fn the_kernel_goes_at_pref_address_when_it_fits() {
        let h = header(&image(0x1000));
        let l = LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 * MIB), &h, 100, 0).unwrap();
        assert_eq!(l.kernel, 0x100_0000);
        assert_eq!(l.entry, 0x100_0200);
        assert_eq!(l.kernel_end, 0x100_0000 + 0x200_0000);
        assert_eq!(
            (l.zero_page, l.cmdline, l.rsdp),
            (0x1_0000, 0x2_0000, 0xE_0000)
        );
        assert_eq!(l.initrd, None);
    }

    #[test]
    fn identity_placed_ram_gets_the_kernel_and_initrd_at_host_addresses() {
        let h = header(&image(0x1000));
        let ram = crate::ram::GuestRam::identity(256 * MIB, 192 * MIB).unwrap();
        let l = LinuxLayout::new(&ram, &h, 10, 0x12345).unwrap();
        // pref_address (16 MiB) is not RAM here: the first 2 MiB multiple above the low MiB of
        // the block.
        assert_eq!(l.kernel, 258 * MIB);
        assert_eq!(l.initrd, Some(((448 * MIB - 0x12345) & !0xfff, 0x12345)));
        // The boot structures stay in the translated low MiB.
        assert_eq!(
            (l.zero_page, l.cmdline, l.rsdp),
            (0x1_0000, 0x2_0000, 0xE_0000)
        );
    }

    #[test]
    fn a_relocatable_kernel_moves_to_the_first_aligned_address_when_pref_does_not_fit() {
        let h = header(&image(0x1000));
        // 40 MiB: 16 MiB + 32 MiB does not fit, 2 MiB + 32 MiB does.
        let l = LinuxLayout::new(&crate::ram::GuestRam::contiguous(40 * MIB), &h, 0, 0).unwrap();
        assert_eq!(l.kernel, 2 * MIB);
        let mut b = image(0x1000);
        put32(&mut b, offset::KERNEL_ALIGNMENT, 0x100_0000);
        b[offset::PREF_ADDRESS..offset::PREF_ADDRESS + 8]
            .copy_from_slice(&0x3000_0000u64.to_le_bytes());
        let l = LinuxLayout::new(
            &crate::ram::GuestRam::contiguous(64 * MIB),
            &header(&b),
            0,
            0,
        )
        .unwrap();
        assert_eq!(l.kernel, 16 * MIB);
    }

    #[test]
    fn init_size_beyond_memory_is_refused() {
        let h = header(&image(0x1000));
        assert_eq!(
            LinuxLayout::new(&crate::ram::GuestRam::contiguous(32 * MIB), &h, 0, 0),
            Err(LayoutError::KernelDoesNotFit {
                at: 2 * MIB,
                need: 0x200_0000,
                memory: 32 * MIB
            })
        );
    }

    #[test]
    fn a_non_relocatable_kernel_must_fit_at_pref_address() {
        let mut b = image(0x1000);
        b[offset::RELOCATABLE_KERNEL] = 0;
        assert!(matches!(
            LinuxLayout::new(
                &crate::ram::GuestRam::contiguous(40 * MIB),
                &header(&b),
                0,
                0
            ),
            Err(LayoutError::NotRelocatable {
                pref: 0x100_0000,
                ..
            })
        ));
        assert_eq!(
            LinuxLayout::new(
                &crate::ram::GuestRam::contiguous(48 * MIB),
                &header(&b),
                0,
                0
            )
            .unwrap()
            .kernel,
            0x100_0000
        );
    }

    #[test]
    fn the_command_line_is_limited_by_cmdline_size() {
        let h = header(&image(0x1000));
        assert!(
            LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 * MIB), &h, 2047, 0).is_ok()
        );
        let e = LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 * MIB), &h, 3000, 0)
            .unwrap_err();
        assert_eq!(
            e,
            LayoutError::CmdlineTooLong {
                len: 3000,
                max: 2047
            }
        );
        assert_eq!(
            alloc::format!("{e}"),
            "command line is 3000 bytes, the kernel accepts 2047"
        );
    }

    #[test]
    fn the_initrd_goes_page_aligned_at_the_top_of_memory() {
        let h = header(&image(0x1000));
        let l =
            LinuxLayout::new(&crate::ram::GuestRam::contiguous(256 * MIB), &h, 0, 0x12345).unwrap();
        let (at, len) = l.initrd.unwrap();
        assert_eq!(len, 0x12345);
        assert_eq!(at % 0x1000, 0);
        assert!(at + len <= 256 * MIB && at + len > 256 * MIB - 0x1000);
        assert!(at >= l.kernel_end);
    }

    #[test]
    fn the_initrd_stays_below_initrd_addr_max() {
        let mut b = image(0x1000);
        put32(&mut b, offset::INITRD_ADDR_MAX, 0x7FF_FFFF);
        let l = LinuxLayout::new(
            &crate::ram::GuestRam::contiguous(256 * MIB),
            &header(&b),
            0,
            0x10_0000,
        )
        .unwrap();
        assert_eq!(l.initrd, Some((0x800_0000 - 0x10_0000, 0x10_0000)));
    }

    #[test]
    fn an_initrd_that_would_overlap_the_kernel_is_refused() {
        let h = header(&image(0x1000));
        let e = LinuxLayout::new(&crate::ram::GuestRam::contiguous(64 * MIB), &h, 0, 20 * MIB)
            .unwrap_err();
        assert!(matches!(e, LayoutError::InitrdDoesNotFit { .. }));
        assert!(
            LinuxLayout::new(&crate::ram::GuestRam::contiguous(64 * MIB), &h, 0, u64::MAX).is_err()
        );
    }

    #[test]
    fn everything_lies_inside_memory() {
        let h = header(&image(0x1000));
        for mib in [40, 64, 128, 256, 512] {
            let mem = mib * MIB;
            let l =
                LinuxLayout::new(&crate::ram::GuestRam::contiguous(mem), &h, 10, 4 * MIB).unwrap();
            assert!(l.kernel >= KERNEL_MIN && l.kernel_end <= mem);
            let (at, len) = l.initrd.unwrap();
            assert!(at >= l.kernel_end && at + len <= mem);
        }
    }
}
