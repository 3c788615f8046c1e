//! Tests of [`super`]: headers built byte by byte, the load they describe, the information
//! structure read back field by field.

use super::*;
use alloc::vec;

fn put(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn rd(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// An image of `len` bytes with a header at `at` with `flags` and, for bit 16, the addresses
/// of a kernel linked at 1 MiB whose header is 0x40 bytes into it.
fn image(len: usize, at: usize, flags: u32) -> Vec<u8> {
    let mut b = vec![0u8; len];
    put(&mut b, at, HEADER_MAGIC);
    put(&mut b, at + 4, flags);
    put(
        &mut b,
        at + 8,
        0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
    );
    if flags & ADDRESS_FIELDS != 0 {
        let load = 0x10_0000u32;
        let header = load + 0x40;
        put(&mut b, at + 12, header);
        put(&mut b, at + 16, load);
        put(&mut b, at + 20, 0);
        put(&mut b, at + 24, load + 0x8000);
        put(&mut b, at + 28, load + 0x80);
    }
    b
}

#[test]
fn the_header_is_found_on_a_4_byte_boundary_in_the_first_8_kib() {
    let h = Header::find(&image(0x3000, 0x1000, MEMORY_INFO)).unwrap();
    assert_eq!((h.offset, h.flags), (0x1000, MEMORY_INFO));
    // The last possible position.
    assert_eq!(
        Header::find(&image(0x3000, 8192 - 12, 0)).unwrap().offset,
        8180
    );
    // Beyond 8 KiB, or misaligned: not found.
    assert_eq!(
        Header::find(&image(0x3000, 8192, 0)),
        Err(MultibootError::NoHeader)
    );
    assert_eq!(
        Header::find(&image(0x3000, 0x102, 0)),
        Err(MultibootError::NoHeader)
    );
}

#[test]
fn a_bad_checksum_is_no_header() {
    let mut b = image(0x2000, 0x100, 0);
    put(&mut b, 0x108, 0);
    assert_eq!(Header::find(&b), Err(MultibootError::NoHeader));
    assert_eq!(Header::find(&[0u8; 4]), Err(MultibootError::NoHeader));
}

#[test]
fn video_mode_and_unknown_requirements_are_refused() {
    assert_eq!(
        Header::find(&image(0x2000, 0, VIDEO_MODE)),
        Err(MultibootError::VideoMode)
    );
    assert_eq!(
        Header::find(&image(0x2000, 0, 1 << 5)),
        Err(MultibootError::UnknownRequirement(1 << 5))
    );
    // Unknown optional bits (16-31) are ignored.
    assert!(Header::find(&image(0x2000, 0, 1 << 20)).is_ok());
}

#[test]
fn address_fields_give_the_load() {
    let b = image(0x4000, 0x40, ADDRESS_FIELDS | PAGE_ALIGN);
    let h = Header::find(&b).unwrap();
    let l = h.address_load(&b).unwrap().unwrap();
    assert_eq!(
        l,
        AddressLoad {
            load_addr: 0x10_0000,
            file_offset: 0,
            file_len: 0x4000,
            mem_len: 0x8000,
            entry: 0x10_0080
        }
    );
    // Without bit 16 the image is loaded as ELF.
    let e = image(0x4000, 0x40, 0);
    assert_eq!(Header::find(&e).unwrap().address_load(&e), Ok(None));
}

#[test]
fn inconsistent_address_fields_are_refused() {
    let mut b = image(0x4000, 0x40, ADDRESS_FIELDS);
    put(&mut b, 0x40 + 12, 0x10_2000); // header_addr 8 KiB after load: before the file start
    let h = Header::find(&b).unwrap();
    assert!(matches!(
        h.address_load(&b),
        Err(MultibootError::BadAddresses { .. })
    ));
    let mut b = image(0x4000, 0x40, ADDRESS_FIELDS);
    put(&mut b, 0x40 + 20, 0x10_8000); // load_end beyond the file
    assert!(matches!(
        Header::find(&b).unwrap().address_load(&b),
        Err(MultibootError::LoadBeyondFile { .. })
    ));
    let mut b = image(0x4000, 0x40, ADDRESS_FIELDS);
    put(&mut b, 0x40 + 24, 0x10_1000); // bss_end before load_end
    assert!(matches!(
        Header::find(&b).unwrap().address_load(&b),
        Err(MultibootError::BadAddresses { .. })
    ));
    let mut b = image(0x4000, 0x40, ADDRESS_FIELDS);
    put(&mut b, 0x40 + 28, 0x20_0000);
    assert_eq!(
        Header::find(&b).unwrap().address_load(&b),
        Err(MultibootError::EntryOutside(0x20_0000))
    );
    let mut b = image(0x100, 0x40, ADDRESS_FIELDS);
    b.truncate(0x40 + 20);
    assert_eq!(
        Header::find(&b).unwrap().address_load(&b),
        Err(MultibootError::TruncatedHeader)
    );
}

#[test]
fn modules_are_page_aligned_after_the_kernel_and_inside_memory() {
    let m = place_modules(0x10_8123, &[0x10, 0x2001], 0x20_0000).unwrap();
    assert_eq!(
        m,
        [
            ModulePlace {
                start: 0x10_9000,
                len: 0x10
            },
            ModulePlace {
                start: 0x10_a000,
                len: 0x2001
            }
        ]
    );
    assert!(place_modules(0x10_0000, &[0x10_0001], 0x20_0000).is_err());
}

#[test]
fn the_information_structure_reads_back() {
    let map = e820::guest_map(
        &crate::ram::GuestRam::contiguous(64 << 20),
        (0xE_0000, 0x10_0000),
        &[],
    )
    .unwrap();
    let mods = [
        InfoModule {
            place: ModulePlace {
                start: 0x20_0000,
                len: 5,
            },
            cmdline: "mod0 a",
        },
        InfoModule {
            place: ModulePlace {
                start: 0x20_1000,
                len: 9,
            },
            cmdline: "m1",
        },
    ];
    let base = 0x1_0000u32;
    let b = build_info(base, "kernel args", &mods, &map).unwrap();
    let at = |gpa: u32| (gpa - base) as usize;
    let cstr = |gpa: u32| {
        let s = &b[at(gpa)..];
        core::str::from_utf8(&s[..s.iter().position(|&c| c == 0).unwrap()]).unwrap()
    };
    assert_eq!(rd(&b, 0), 0x24D, "memory, cmdline, mods, mmap, loader name");
    assert_eq!(rd(&b, 4), 639, "mem_lower KiB");
    assert_eq!(rd(&b, 8), 63 * 1024, "mem_upper KiB");
    assert_eq!(cstr(rd(&b, 16)), "kernel args");
    assert_eq!(cstr(rd(&b, 64)), "Conduit");
    assert_eq!(rd(&b, 20), 2);
    let mods_at = at(rd(&b, 24));
    assert_eq!(mods_at % 4, 0);
    assert_eq!(rd(&b, mods_at), 0x20_0000);
    assert_eq!(rd(&b, mods_at + 4), 0x20_0005);
    assert_eq!(cstr(rd(&b, mods_at + 8)), "mod0 a");
    assert_eq!(rd(&b, mods_at + 16), 0x20_1000);
    assert_eq!(rd(&b, mods_at + 20), 0x20_1009);
    assert_eq!(cstr(rd(&b, mods_at + 24)), "m1");
    assert_eq!(rd(&b, 44) as usize, map.len() * 24);
    let mmap = at(rd(&b, 48));
    for (i, e) in map.iter().enumerate() {
        let p = mmap + 24 * i;
        assert_eq!(rd(&b, p), 20);
        assert_eq!(&b[p + 4..p + 24], &e.to_bytes());
    }
    assert_eq!(b.len(), mmap + map.len() * 24);
}

#[test]
fn an_information_structure_that_would_cross_4_gib_is_refused() {
    assert!(build_info(u32::MAX - 8, "", &[], &[]).is_err());
}
