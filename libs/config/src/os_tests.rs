//! Tests of [`super`]: the keys of operating-system guests and the bzImage checks, each error
//! naming its key.

use super::*;
use crate::guest::{check_all, place_with};
use alloc::string::ToString;
use alloc::vec;

/// A bzImage built byte by byte: protocol 2.15, 64-bit entry, setup_sects 4, relocatable,
/// 2 MiB aligned, pref_address 16 MiB, init_size 32 MiB, cmdline_size 2047.
fn bzimage() -> Vec<u8> {
    let mut b = vec![0u8; 5 * 512 + 0x1000];
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
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

fn linux(memory_mib: i64) -> RawGuest {
    RawGuest {
        name: Some("linux".to_string()),
        memory_mib: Some(memory_mib),
        kind: Some("linux".to_string()),
        kernel: Some("vmlinuz".to_string()),
        initrd: Some("initrd.img".to_string()),
        cmdline: Some("console=ttyS0".to_string()),
        ..RawGuest::default()
    }
}

fn err<T: core::fmt::Debug>(r: Result<T, ConfigError>) -> (String, String) {
    let e = r.expect_err("must be refused");
    (e.key().unwrap_or_default().to_string(), e.to_string())
}

fn spec(raw: RawGuest) -> GuestSpec {
    check_all(&[raw]).unwrap().remove(0)
}

#[test]
fn a_linux_guest_is_placed_at_its_preferred_address() {
    let s = spec(linux(256));
    assert_eq!(s.format, ImageFormat::BzImage);
    assert_eq!(s.entry, EntryMode::Linux64);
    assert_eq!(s.extra_files(), ["initrd.img"]);
    let g = place_with(&s, &bzimage(), &[&[7u8; 0x3000]]).unwrap();
    assert_eq!(g.entry, EntryMode::Linux64);
    assert_eq!(g.entry_point, 0x100_0200);
    assert_eq!(
        g.segments,
        [Segment {
            gpa: 0x100_0000,
            file_offset: 0xA00,
            file_len: 0x1000,
            mem_len: 0x200_0000
        }]
    );
    assert_eq!(
        g.os,
        Some(OsBoot::Linux {
            cmdline: "console=ttyS0".into(),
            initrd: Some("initrd.img".into())
        })
    );
    assert_eq!(g.on_crash, OnCrash::Stop);
}

#[test]
fn a_file_that_is_not_a_bzimage_is_refused_naming_kernel() {
    let s = spec(linux(256));
    let mut b = bzimage();
    b[0x202] = b'X';
    let (key, msg) = err(place_with(&s, &b, &[&[1]]));
    assert_eq!(key, "guest \"linux\".kernel");
    assert_eq!(
        msg,
        "`guest \"linux\".kernel`: \"vmlinuz\": not a bzImage (no \"HdrS\" at 0x202)"
    );
}

#[test]
fn old_protocols_and_32_bit_kernels_are_refused_naming_kernel() {
    let s = spec(linux(256));
    let mut old = bzimage();
    old[0x206] = 0x0B;
    let (key, msg) = err(place_with(&s, &old, &[&[1]]));
    assert_eq!(key, "guest \"linux\".kernel");
    assert!(msg.contains("2.11 is older than 2.12"), "{msg}");
    let mut k32 = bzimage();
    k32[0x236] = 0;
    let (key, msg) = err(place_with(&s, &k32, &[&[1]]));
    assert_eq!(key, "guest \"linux\".kernel");
    assert!(msg.contains("32-bit-only"), "{msg}");
}

#[test]
fn a_long_command_line_is_refused_naming_cmdline() {
    let s = spec(RawGuest {
        cmdline: Some("x".repeat(3000)),
        ..linux(256)
    });
    let (key, msg) = err(place_with(&s, &bzimage(), &[&[1]]));
    assert_eq!(key, "guest \"linux\".cmdline");
    assert!(
        msg.contains("command line is 3000 bytes, the kernel accepts 2047"),
        "{msg}"
    );
}

#[test]
fn a_kernel_or_initrd_too_large_for_memory_is_refused() {
    let (key, msg) = err(place_with(&spec(linux(32)), &bzimage(), &[&[1]]));
    assert_eq!(key, "guest \"linux\".kernel");
    assert!(msg.contains("memory_mib = 32"), "{msg}");
    let big = vec![0u8; 40 << 20];
    let (key, msg) = err(place_with(&spec(linux(64)), &bzimage(), &[&big]));
    assert_eq!(key, "guest \"linux\".initrd");
    assert!(
        msg.contains("initrd of 41943040 bytes does not fit"),
        "{msg}"
    );
    let (key, _) = err(place_with(&spec(linux(64)), &bzimage(), &[&[]]));
    assert_eq!(key, "guest \"linux\".initrd");
}

#[test]
fn without_initrd_nothing_extra_is_read() {
    let s = spec(RawGuest {
        initrd: None,
        cmdline: None,
        ..linux(64)
    });
    assert!(s.extra_files().is_empty());
    let g = place_with(&s, &bzimage(), &[]).unwrap();
    assert_eq!(
        g.os,
        Some(OsBoot::Linux {
            cmdline: String::new(),
            initrd: None
        })
    );
}

#[test]
fn keys_of_the_wrong_kind_are_refused() {
    let cases: Vec<(RawGuest, &str)> = vec![
        (
            RawGuest {
                image: Some("x".into()),
                ..linux(64)
            },
            "guest[0].image",
        ),
        (
            RawGuest {
                entry: Some("long64".into()),
                ..linux(64)
            },
            "guest[0].entry",
        ),
        (
            RawGuest {
                kernel: None,
                ..linux(64)
            },
            "guest[0].kernel",
        ),
        (
            RawGuest {
                cmdline: Some("a\0b".into()),
                ..linux(64)
            },
            "guest[0].cmdline",
        ),
        (
            RawGuest {
                initrd: Some(String::new()),
                ..linux(64)
            },
            "guest[0].initrd",
        ),
        (
            RawGuest {
                kind: Some("windows".into()),
                ..linux(64)
            },
            "guest[0].kind",
        ),
        (
            RawGuest {
                kind: None,
                image: Some("x".into()),
                initrd: None,
                cmdline: None,
                ..linux(64)
            },
            "guest[0].kernel",
        ),
        (
            RawGuest {
                vcpus: Some(9),
                ..linux(64)
            },
            "guest[0].vcpus",
        ),
        (
            RawGuest {
                vcpus: Some(0),
                ..linux(64)
            },
            "guest[0].vcpus",
        ),
    ];
    for (raw, want) in cases {
        let (key, msg) = err(check_all(&[raw]));
        assert_eq!(key, want, "{msg}");
    }
    assert!(
        check_all(&[RawGuest {
            vcpus: Some(1),
            ..linux(64)
        }])
        .is_ok()
    );
}

#[test]
fn vcpus_default_to_one_and_go_up_to_the_bound_for_an_os_only() {
    assert_eq!(spec(linux(64)).vcpus, 1);
    for n in [2, 8] {
        let s = spec(RawGuest {
            vcpus: Some(n),
            ..linux(64)
        });
        assert_eq!(i64::from(s.vcpus), n);
    }
    let image = RawGuest {
        name: Some("img".into()),
        memory_mib: Some(4),
        image: Some("g.elf".into()),
        vcpus: Some(2),
        ..RawGuest::default()
    };
    let (key, msg) = err(check_all(&[image]));
    assert_eq!(key, "guest[0].vcpus");
    assert!(msg.contains("kind = \"image\""), "{msg}");
}

#[test]
fn on_crash_and_max_restarts() {
    assert_eq!(spec(linux(64)).on_crash, OnCrash::Stop);
    let restart = |m: Option<i64>| RawGuest {
        on_crash: Some("restart".into()),
        max_restarts: m,
        ..linux(64)
    };
    assert_eq!(
        spec(restart(None)).on_crash,
        OnCrash::Restart {
            max_restarts: DEFAULT_MAX_RESTARTS
        }
    );
    assert_eq!(
        spec(restart(Some(7))).on_crash,
        OnCrash::Restart { max_restarts: 7 }
    );
    for bad in [0, -1, 1001] {
        assert_eq!(
            err(check_all(&[restart(Some(bad))])).0,
            "guest[0].max_restarts"
        );
    }
    let stop_with_max = RawGuest {
        max_restarts: Some(2),
        ..linux(64)
    };
    assert_eq!(err(check_all(&[stop_with_max])).0, "guest[0].max_restarts");
    let unknown = RawGuest {
        on_crash: Some("reboot".into()),
        ..linux(64)
    };
    assert_eq!(err(check_all(&[unknown])).0, "guest[0].on_crash");
}

/// A Multiboot kernel with address fields: loaded at 1 MiB from file offset 0, header at 0x40,
/// entry 0x100080, BSS to 0x108000; `flags` added to bit 16.
fn mboot(flags: u32) -> Vec<u8> {
    let mut b = vec![0u8; 0x4000];
    let flags = flags | (1 << 16);
    let fields = [
        0x1BAD_B002u32,
        flags,
        0u32.wrapping_sub(0x1BAD_B002).wrapping_sub(flags),
        0x10_0040,
        0x10_0000,
        0,
        0x10_8000,
        0x10_0080,
    ];
    for (i, v) in fields.iter().enumerate() {
        b[0x40 + 4 * i..0x44 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    b
}

fn multiboot_guest(modules: usize) -> RawGuest {
    RawGuest {
        name: Some("mb".to_string()),
        memory_mib: Some(4),
        kind: Some("multiboot".to_string()),
        kernel: Some("mb.bin".to_string()),
        cmdline: Some("hello there".to_string()),
        modules: Some(
            (0..modules)
                .map(|j| RawModule {
                    path: Some(format!("m{j}")),
                    cmdline: Some(format!("module {j}")),
                })
                .collect(),
        ),
        ..RawGuest::default()
    }
}

#[test]
fn a_multiboot_guest_is_placed_by_its_address_fields() {
    let s = spec(multiboot_guest(2));
    assert_eq!(
        (s.format, s.entry),
        (ImageFormat::Multiboot, EntryMode::Multiboot32)
    );
    assert_eq!(s.extra_files(), ["m0", "m1"]);
    let g = place_with(&s, &mboot(3), &[b"abc", b"defg"]).unwrap();
    assert_eq!(g.entry_point, 0x10_0080);
    assert_eq!(
        g.segments,
        [Segment {
            gpa: 0x10_0000,
            file_offset: 0,
            file_len: 0x4000,
            mem_len: 0x8000
        }]
    );
    assert!(matches!(&g.os, Some(OsBoot::Multiboot { cmdline, modules })
        if cmdline == "hello there" && modules.len() == 2 && modules[1].cmdline == "module 1"));
}

#[test]
fn multiboot_mistakes_name_their_key() {
    let s = spec(multiboot_guest(1));
    let (key, msg) = err(place_with(&s, &[0u8; 0x3000], &[b"x"]));
    assert_eq!(key, "guest \"mb\".kernel");
    assert!(msg.contains("no Multiboot header"), "{msg}");
    let (key, msg) = err(place_with(&s, &mboot(1 << 2), &[b"x"]));
    assert_eq!(key, "guest \"mb\".kernel");
    assert!(msg.contains("video mode"), "{msg}");
    let big = vec![0u8; 4 << 20];
    let (key, _) = err(place_with(&s, &mboot(0), &[&big]));
    assert_eq!(key, "guest \"mb\".modules");
    // A kernel loaded below 1 MiB.
    let mut low = mboot(0);
    for (at, v) in [
        (0x4c, 0x8_0040u32),
        (0x50, 0x8_0000),
        (0x58, 0x8_8000),
        (0x5c, 0x8_0080),
    ] {
        low[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let (key, msg) = err(place_with(&s, &low, &[b"x"]));
    assert_eq!(key, "guest \"mb\".kernel");
    assert!(msg.contains("outside [1 MiB"), "{msg}");
    // Neither address fields nor an ELF.
    let mut no_fields = mboot(0);
    no_fields[0x44..0x48].copy_from_slice(&0u32.to_le_bytes());
    no_fields[0x48..0x4c].copy_from_slice(&0u32.wrapping_sub(0x1BAD_B002).to_le_bytes());
    let (key, msg) = err(place_with(&s, &no_fields, &[b"x"]));
    assert_eq!(key, "guest \"mb\".kernel");
    assert!(msg.contains("not a loadable ELF"), "{msg}");
    // Command lines that overflow the information area.
    let long = spec(RawGuest {
        cmdline: Some("x".repeat(0x9_0000)),
        ..multiboot_guest(0)
    });
    assert_eq!(
        err(place_with(&long, &mboot(0), &[])).0,
        "guest \"mb\".cmdline"
    );
}

#[test]
fn multiboot_keys_of_other_kinds_are_refused() {
    let (key, _) = err(check_all(&[RawGuest {
        initrd: Some("rd".into()),
        ..multiboot_guest(0)
    }]));
    assert_eq!(key, "guest[0].initrd");
    let (key, _) = err(check_all(&[RawGuest {
        modules: Some(Vec::new()),
        ..linux(64)
    }]));
    assert_eq!(key, "guest[0].modules");
    let (key, _) = err(check_all(&[RawGuest {
        modules: Some(vec![RawModule::default()]),
        ..multiboot_guest(0)
    }]));
    assert_eq!(key, "guest[0].modules[0].path");
}

#[test]
fn a_multiboot_elf32_kernel_is_loaded_by_its_program_headers() {
    use crate::elf::build::{elf32, load};
    let mut b = elf32(0x10_0010, &[load(0x1000, 0x10_0000, 0x100, 0x2000)], 0x1100);
    let flags = 0x3u32;
    for (i, v) in [
        0x1BAD_B002u32,
        flags,
        0u32.wrapping_sub(0x1BAD_B002 + flags),
    ]
    .iter()
    .enumerate()
    {
        b[0x1000 + 4 * i..0x1004 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let g = place_with(&spec(multiboot_guest(0)), &b, &[]).unwrap();
    assert_eq!(g.entry_point, 0x10_0010);
    assert_eq!(
        g.segments,
        [Segment {
            gpa: 0x10_0000,
            file_offset: 0x1000,
            file_len: 0x100,
            mem_len: 0x2000
        }]
    );
}
