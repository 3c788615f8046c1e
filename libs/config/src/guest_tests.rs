//! Tests of [`super`]: every check, with the key it must name.

use super::*;
use crate::elf::build::{elf, load};
use alloc::string::ToString;
use alloc::vec;

fn raw(name: &str, memory_mib: i64) -> RawGuest {
    RawGuest {
        name: Some(name.to_string()),
        memory_mib: Some(memory_mib),
        image: Some("img/g.elf".to_string()),
        ..RawGuest::default()
    }
}

/// The key of the error, and its message.
fn err_key<T: core::fmt::Debug>(r: Result<T, ConfigError>) -> (String, String) {
    let e = r.expect_err("must be refused");
    (e.key().unwrap_or_default().to_string(), e.to_string())
}

#[test]
fn defaults_and_a_full_table() {
    let specs = check_all(&[raw("hello64", 4)]).unwrap();
    assert_eq!(
        specs,
        [GuestSpec {
            name: "hello64".into(),
            memory_mib: 4,
            vcpus: 1,
            image: "img/g.elf".into(),
            format: ImageFormat::Elf,
            entry: EntryMode::Long64,
            time_slice_us: 1000,
            test_break: None,
            test_apic: None,
            devices: Vec::new(),
            os: None,
            on_crash: OnCrash::Stop,
            on_control_crash: OnControlCrash::Quarantine,
            identity_ram_at: None,
            placement: crate::Placement::default(),
        }]
    );
    let full = RawGuest {
        format: Some("flat".into()),
        entry: Some("real16".into()),
        load_gpa: Some(0x7c00),
        entry_gpa: Some(0x7c10),
        time_slice_us: Some(100_000),
        test_break: Some("tr-unusable".into()),
        test_apic: Some("software".into()),
        ..raw("r-1_x", 2)
    };
    let s = &check_all(&[full]).unwrap()[0];
    assert_eq!(
        s.format,
        ImageFormat::Flat {
            load_gpa: 0x7c00,
            entry_gpa: 0x7c10
        }
    );
    assert_eq!(
        (s.entry, s.time_slice_us, s.test_break),
        (EntryMode::Real16, 100_000, Some(GuestBreak::TrUnusable))
    );
    assert_eq!(s.test_apic, Some(crate::model::ApicTest::Software));
    let flat = RawGuest {
        format: Some("flat".into()),
        load_gpa: Some(0x10_0000),
        ..raw("f", 2)
    };
    assert_eq!(
        check_all(&[flat]).unwrap()[0].format,
        ImageFormat::Flat {
            load_gpa: 0x10_0000,
            entry_gpa: 0x10_0000
        }
    );
    for b in GuestBreak::ALL {
        assert_eq!(GuestBreak::from_name(b.name()), Some(b));
    }
}

#[test]
fn names() {
    for bad in ["", "Hello", "a b", "x.y", "é", &"a".repeat(33)] {
        let (key, msg) = err_key(check_all(&[raw(bad, 4)]));
        assert_eq!(key, "guest[0].name", "{msg}");
    }
    assert!(check_all(&[raw(&"a".repeat(32), 4)]).is_ok());
    let nameless = RawGuest {
        name: None,
        ..raw("x", 4)
    };
    assert_eq!(err_key(check_all(&[nameless])).0, "guest[0].name");
    let (key, msg) = err_key(check_all(&[raw("a", 4), raw("b", 4), raw("a", 4)]));
    assert_eq!(key, "guest[2].name");
    assert!(msg.contains("already the name of guest[0]"), "{msg}");
}

#[test]
fn at_most_64_guests() {
    let names: Vec<String> = (0..65).map(|i| format!("g{i}")).collect();
    let guests: Vec<RawGuest> = names.iter().map(|n| raw(n, 2)).collect();
    let (key, msg) = err_key(check_all(&guests));
    assert_eq!(key, "guest[64]", "{msg}");
    assert!(msg.contains("65 guests; at most 64"), "{msg}");
    assert_eq!(check_all(&guests[..64]).map(|v| v.len()), Ok(64));
}

#[test]
fn memory() {
    for bad in [0, 1, 513, -4, i64::MAX] {
        let (key, msg) = err_key(check_all(&[raw("g", bad)]));
        assert_eq!(key, "guest[0].memory_mib", "{msg}");
    }
    assert!(check_all(&[raw("a", 2), raw("b", 512)]).is_ok());
    let missing = RawGuest {
        memory_mib: None,
        ..raw("g", 4)
    };
    assert_eq!(err_key(check_all(&[missing])).0, "guest[0].memory_mib");
    // 512 + 256 = 768 is allowed; one more MiB... is at least 2 more, over the limit.
    assert!(check_all(&[raw("a", 512), raw("b", 256)]).is_ok());
    let (key, msg) = err_key(check_all(&[raw("a", 512), raw("b", 256), raw("c", 2)]));
    assert_eq!(key, "guest[2].memory_mib");
    assert!(msg.contains("770 MiB") && msg.contains("768"), "{msg}");
}

#[test]
fn values_of_the_other_keys() {
    let cases: Vec<(RawGuest, &str)> = vec![
        (
            RawGuest {
                image: None,
                ..raw("g", 4)
            },
            "guest[0].image",
        ),
        (
            RawGuest {
                image: Some(String::new()),
                ..raw("g", 4)
            },
            "guest[0].image",
        ),
        (
            RawGuest {
                format: Some("pe".into()),
                ..raw("g", 4)
            },
            "guest[0].format",
        ),
        (
            RawGuest {
                entry: Some("protected32".into()),
                ..raw("g", 4)
            },
            "guest[0].entry",
        ),
        (
            RawGuest {
                time_slice_us: Some(99),
                ..raw("g", 4)
            },
            "guest[0].time_slice_us",
        ),
        (
            RawGuest {
                time_slice_us: Some(100_001),
                ..raw("g", 4)
            },
            "guest[0].time_slice_us",
        ),
        (
            RawGuest {
                test_break: Some("cr4-vmxe".into()),
                ..raw("g", 4)
            },
            "guest[0].test_break",
        ),
        (
            RawGuest {
                load_gpa: Some(0x7c00),
                ..raw("g", 4)
            },
            "guest[0].load_gpa",
        ),
        (
            RawGuest {
                entry_gpa: Some(0x7c00),
                ..raw("g", 4)
            },
            "guest[0].entry_gpa",
        ),
        (
            RawGuest {
                format: Some("flat".into()),
                ..raw("g", 4)
            },
            "guest[0].load_gpa",
        ),
        (
            RawGuest {
                format: Some("flat".into()),
                load_gpa: Some(-1),
                ..raw("g", 4)
            },
            "guest[0].load_gpa",
        ),
        (
            RawGuest {
                format: Some("flat".into()),
                load_gpa: Some(0x10_0000),
                entry_gpa: Some(-2),
                ..raw("g", 4)
            },
            "guest[0].entry_gpa",
        ),
    ];
    for (r, want) in cases {
        let (key, msg) = err_key(check_all(&[raw("ok", 2), r]));
        assert_eq!(key, want.replace("guest[0]", "guest[1]"), "{msg}");
    }
    let (_, msg) = err_key(check_all(&[RawGuest {
        test_break: Some("x".into()),
        ..raw("g", 4)
    }]));
    assert!(msg.contains("cr0-pg-without-pe"), "{msg}");
    let (key, msg) = err_key(check_all(&[RawGuest {
        test_apic: Some("apicv".into()),
        ..raw("g", 4)
    }]));
    assert_eq!(key, "guest[0].test_apic", "{msg}");
    assert!(msg.contains("software"), "{msg}");
}

fn spec(name: &str, memory_mib: u32, entry: EntryMode, format: ImageFormat) -> GuestSpec {
    GuestSpec {
        name: name.into(),
        memory_mib,
        vcpus: 1,
        image: "img".into(),
        format,
        entry,
        time_slice_us: 1000,
        test_break: Some(GuestBreak::Cr0PgWithoutPe),
        test_apic: None,
        devices: Vec::new(),
        os: None,
        on_crash: OnCrash::Stop,
        on_control_crash: OnControlCrash::Quarantine,
        identity_ram_at: None,
        placement: crate::Placement::default(),
    }
}

fn long(memory_mib: u32) -> GuestSpec {
    spec("g", memory_mib, EntryMode::Long64, ImageFormat::Elf)
}

fn flat(entry: EntryMode, load_gpa: u64, entry_gpa: u64) -> GuestSpec {
    spec(
        "f",
        2,
        entry,
        ImageFormat::Flat {
            load_gpa,
            entry_gpa,
        },
    )
}

#[test]
fn a_good_elf_guest_is_placed_with_sorted_segments() {
    let image = elf(
        0x10_0010,
        &[
            load(0x2000, 0x20_0000, 0x10, 0x1000),
            load(0x1000, 0x10_0000, 0x100, 0x100),
        ],
        0x2010,
    );
    let g = place(&long(4), &image).unwrap();
    assert_eq!(g.entry_point, 0x10_0010);
    assert_eq!(
        g.segments.iter().map(|s| s.gpa).collect::<Vec<_>>(),
        [0x10_0000, 0x20_0000]
    );
    assert_eq!(g.image, "img");
    assert_eq!(g.test_break, Some(GuestBreak::Cr0PgWithoutPe));
    assert_eq!(g.memory_bytes(), 4 << 20);
    assert_eq!(g.real_mode_cs_ip(), None);
}

#[test]
fn a_good_flat_real_mode_guest() {
    let g = place(&flat(EntryMode::Real16, 0x7c00, 0x7c00), &[0xf4; 512]).unwrap();
    assert_eq!(
        g.segments,
        [Segment {
            gpa: 0x7c00,
            file_offset: 0,
            file_len: 512,
            mem_len: 512
        }]
    );
    assert_eq!(g.real_mode_cs_ip(), Some((0, 0x7c00)));
}

#[test]
fn image_not_of_its_format() {
    let (key, msg) = err_key(place(&long(4), &[b'M'; 64]));
    assert_eq!(key, "guest \"g\".image");
    assert!(
        msg.contains("not a loadable ELF64") && msg.contains("magic"),
        "{msg}"
    );
    let (key, msg) = err_key(place(&long(4), &[0x7f, b'E', b'L', b'F']));
    assert_eq!(key, "guest \"g\".image");
    assert!(msg.contains("too short"), "{msg}");
    let elf_as_flat = elf(0x10_0000, &[load(0, 0x10_0000, 0x40, 0x40)], 0x40);
    let (key, _) = err_key(place(
        &flat(EntryMode::Long64, 0x10_0000, 0x10_0000),
        &elf_as_flat,
    ));
    assert_eq!(key, "guest \"f\".format");
    let (key, _) = err_key(place(&flat(EntryMode::Long64, 0x10_0000, 0x10_0000), &[]));
    assert_eq!(key, "guest \"f\".image");
    let big = vec![0u8; (2 << 20) + 1];
    let (key, msg) = err_key(place(&flat(EntryMode::Long64, 0x10_0000, 0x10_0000), &big));
    assert_eq!(key, "guest \"f\".image");
    assert!(msg.contains("larger than the guest's 2 MiB"), "{msg}");
}

#[test]
fn segments_outside_memory_or_overlapping() {
    // Ends one byte beyond 4 MiB.
    let image = elf(
        0x10_0000,
        &[load(0x1000, 0x10_0000, 0x10, 0x30_0001)],
        0x1010,
    );
    let (key, msg) = err_key(place(&long(4), &image));
    assert_eq!(key, "guest \"g\".image");
    assert!(msg.contains("outside the guest's memory"), "{msg}");
    assert!(place(&long(5), &image).is_ok());
    let overlapping = elf(
        0x10_0000,
        &[
            load(0x1000, 0x10_0000, 0x10, 0x2000),
            load(0x1000, 0x10_1000, 0x10, 0x10),
        ],
        0x1010,
    );
    let (key, msg) = err_key(place(&long(4), &overlapping));
    assert_eq!(key, "guest \"g\".image");
    assert!(msg.contains("overlap"), "{msg}");
    // Flat: the load address is at fault; its end overflowing u64 is an error, not a panic.
    let (key, _) = err_key(place(
        &flat(EntryMode::Long64, 0x1f_ff00, 0x1f_ff00),
        &[1; 0x200],
    ));
    assert_eq!(key, "guest \"f\".load_gpa");
    let (key, _) = err_key(place(
        &flat(EntryMode::Long64, u64::MAX, 0x10_0000),
        &[1; 2],
    ));
    assert_eq!(key, "guest \"f\".load_gpa");
}

#[test]
fn long64_guests_keep_out_of_the_hypervisor_low_area() {
    for gpa in [0u64, 0x800, 0x7fff] {
        let image = elf(gpa, &[load(0x1000, gpa, 0x10, 0x10)], 0x1010);
        let (key, msg) = err_key(place(&long(4), &image));
        assert_eq!(key, "guest \"g\".image");
        assert!(msg.contains("GDT and identity page tables"), "{msg}");
    }
    assert!(place(&flat(EntryMode::Long64, 0x8000, 0x8000), &[1; 16]).is_ok());
    let (key, _) = err_key(place(&flat(EntryMode::Long64, 0x7c00, 0x7c00), &[1; 16]));
    assert_eq!(key, "guest \"f\".load_gpa");
    // The low area is a long64 rule only.
    assert!(place(&flat(EntryMode::Real16, 0x600, 0x600), &[1; 16]).is_ok());
}

#[test]
fn real16_guests_stay_below_one_mib() {
    let (key, msg) = err_key(place(
        &flat(EntryMode::Real16, 0xf_ff00, 0xf_ff00),
        &[1; 0x101],
    ));
    assert_eq!(key, "guest \"f\".load_gpa");
    assert!(msg.contains("1 MiB"), "{msg}");
    assert!(place(&flat(EntryMode::Real16, 0xf_ff00, 0xf_ff00), &[1; 0x100]).is_ok());
    let image = elf(
        0x10_0000,
        &[load(0x1000, 0xf_0000, 0x10, 0x10_0000)],
        0x1010,
    );
    let real = spec("r", 4, EntryMode::Real16, ImageFormat::Elf);
    assert_eq!(err_key(place(&real, &image)).0, "guest \"r\".image");
}

#[test]
fn entry_points() {
    let image = elf(0x10_0200, &[load(0x1000, 0x10_0000, 0x100, 0x100)], 0x1100);
    let (key, msg) = err_key(place(&long(4), &image));
    assert_eq!(key, "guest \"g\".image");
    assert!(msg.contains("outside every loaded segment"), "{msg}");
    let far = elf(
        0x4000_0000,
        &[load(0x1000, 0x10_0000, 0x100, 0x100)],
        0x1100,
    );
    let (_, msg) = err_key(place(&long(4), &far));
    assert!(msg.contains("outside the guest's memory"), "{msg}");
    let (key, _) = err_key(place(
        &flat(EntryMode::Long64, 0x10_0000, 0x10_0010),
        &[1; 16],
    ));
    assert_eq!(key, "guest \"f\".entry_gpa");
    // A real16 entry at or above 1 MiB, in a segment that is itself fine.
    let real = spec(
        "r",
        4,
        EntryMode::Real16,
        ImageFormat::Flat {
            load_gpa: 0x7c00,
            entry_gpa: 0x10_0000,
        },
    );
    let (key, msg) = err_key(place(&real, &[1; 16]));
    assert_eq!(key, "guest \"r\".entry_gpa");
    assert!(msg.contains("1 MiB"), "{msg}");
}

#[test]
fn on_control_crash_quarantines_by_default_and_can_stop() {
    let stop = RawGuest {
        on_control_crash: Some("stop".into()),
        ..raw("a", 4)
    };
    assert_eq!(
        check_all(&[stop]).unwrap()[0].on_control_crash,
        OnControlCrash::Stop
    );
    let quarantine = RawGuest {
        on_control_crash: Some("quarantine".into()),
        ..raw("a", 4)
    };
    assert_eq!(
        check_all(&[quarantine]).unwrap()[0].on_control_crash,
        OnControlCrash::Quarantine
    );
    let bad = RawGuest {
        on_control_crash: Some("ignore".into()),
        ..raw("a", 4)
    };
    let (key, msg) = err_key(check_all(&[bad]));
    assert_eq!(key, "guest[0].on_control_crash");
    assert!(msg.contains("\"ignore\""), "{msg}");
}
