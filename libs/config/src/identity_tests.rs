//! Tests of `identity_ram_at` (identity-placed guest RAM): its checks, each error naming the key,
//! and where a Linux guest's kernel goes then.

use crate::guest::{RawGuest, check_all, place_with};
use crate::toml_front::parse;
use crate::{ConfigError, ExitMethod};
use alloc::string::{String, ToString};

const MIB: u64 = 1 << 20;

fn linux(memory_mib: i64, at: Option<i64>) -> RawGuest {
    RawGuest {
        name: Some("linux".to_string()),
        memory_mib: Some(memory_mib),
        kind: Some("linux".to_string()),
        kernel: Some("vmlinuz".to_string()),
        cmdline: Some("console=ttyS0".to_string()),
        identity_ram_at: at,
        ..RawGuest::default()
    }
}

fn err<T: core::fmt::Debug>(r: Result<T, ConfigError>) -> (String, String) {
    let e = r.expect_err("must be refused");
    (e.key().unwrap_or_default().to_string(), e.to_string())
}

/// A bzImage: protocol 2.15, 64-bit entry, relocatable, 2 MiB aligned, pref_address 16 MiB,
/// init_size 32 MiB.
fn bzimage() -> alloc::vec::Vec<u8> {
    let mut b = alloc::vec![0u8; 5 * 512 + 0x1000];
    let put =
        |b: &mut alloc::vec::Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    put(&mut b, 0x1F4, &(0x100u32).to_le_bytes());
    put(&mut b, 0x1FE, &0xAA55u16.to_le_bytes());
    put(&mut b, 0x200, &[0xEB, 0x6A]);
    put(&mut b, 0x202, b"HdrS");
    put(&mut b, 0x206, &0x020Fu16.to_le_bytes());
    put(&mut b, 0x22C, &0x7FFF_FFFFu32.to_le_bytes());
    put(&mut b, 0x230, &0x20_0000u32.to_le_bytes());
    put(&mut b, 0x234, &[1]);
    put(&mut b, 0x236, &3u16.to_le_bytes());
    put(&mut b, 0x238, &2047u32.to_le_bytes());
    put(&mut b, 0x258, &0x100_0000u64.to_le_bytes());
    put(&mut b, 0x260, &0x200_0000u32.to_le_bytes());
    b
}

#[test]
fn the_kernel_of_an_identity_placed_guest_goes_at_a_host_address() {
    let s = check_all(&[linux(192, Some(0x1000_0000))])
        .unwrap()
        .remove(0);
    assert_eq!(
        s.identity_range(),
        Some(0x1000_0000..0x1000_0000 + 192 * MIB)
    );
    let g = place_with(&s, &bzimage(), &[]).unwrap();
    assert_eq!(g.identity_ram_at, Some(0x1000_0000));
    // Above the block's first MiB (translated), at the kernel's 2 MiB alignment.
    assert_eq!(g.segments[0].gpa, 0x1020_0000);
    assert_eq!(g.entry_point, 0x1020_0200);
    assert!(g.ram().unwrap().is_identity());
}

#[test]
fn bad_placements_are_refused_naming_the_key() {
    for (at, memory, why) in [
        (0x1010_0000, 64, "multiple of 2 MiB"),
        (0, 64, "1 MiB"),
        (-2 * MIB as i64, 64, "negative"),
        (0xBFE0_0000, 64, "0xc0000000"),
    ] {
        let (key, msg) = err(check_all(&[linux(memory, Some(at))]));
        assert_eq!(key, "guest[0].identity_ram_at", "{msg}");
        assert!(msg.contains(why), "{at:#x}: {msg}");
    }
    let image = RawGuest {
        kind: None,
        kernel: None,
        cmdline: None,
        image: Some("g.elf".to_string()),
        ..linux(4, Some(0x1000_0000))
    };
    let (key, msg) = err(check_all(&[image]));
    assert_eq!(key, "guest[0].identity_ram_at", "{msg}");
    assert!(msg.contains("linux"), "{msg}");
}

#[test]
fn overlapping_identity_ranges_are_refused() {
    let b = RawGuest {
        name: Some("b".to_string()),
        ..linux(64, Some(0x1200_0000))
    };
    let (key, msg) = err(check_all(&[linux(64, Some(0x1000_0000)), b]));
    assert_eq!(key, "guest[1].identity_ram_at", "{msg}");
    assert!(msg.contains("guest[0]"), "{msg}");
    let c = RawGuest {
        name: Some("c".to_string()),
        ..linux(64, Some(0x1400_0000))
    };
    assert!(check_all(&[linux(64, Some(0x1000_0000)), c]).is_ok());
}

#[test]
fn identity_placement_needs_unsafe_no_iommu() {
    let guest = "[[guest]]\nname = \"l\"\nkind = \"linux\"\nmemory_mib = 64\nkernel = \"bz\"\n\
                 identity_ram_at = 0x10000000\n";
    let (key, msg) = err(parse(guest, ExitMethod::Halt));
    assert_eq!(key, "guest[0].identity_ram_at", "{msg}");
    assert!(msg.contains("unsafe_no_iommu"), "{msg}");
    let ok = alloc::format!("[hypervisor]\nunsafe_no_iommu = true\n{guest}");
    let d = parse(&ok, ExitMethod::Halt).unwrap();
    assert_eq!(d.guests[0].identity_ram_at, Some(0x1000_0000));
}
