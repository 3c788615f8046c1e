//! Tests of [`super`]: the TOML front end, from text (and images) to a bundle.

use super::*;
use crate::elf::build::{elf, load as ph_load};
use crate::model::{EntryMode, GuestBreak};
use std::path::PathBuf;

const EXIT: ExitMethod = ExitMethod::Halt;

#[test]
fn defaults() {
    let d = parse("", EXIT).unwrap();
    let c = d.config;
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.test, None);
    assert_eq!(c.name, "default");
    assert!(c.guests.is_empty() && d.guests.is_empty());
}

#[test]
fn full() {
    let c = parse(
        "[hypervisor]\nname = \"ci\"\nlog_level = \"debug\"\n[test]\nscenario = \"page-fault\"\n",
        EXIT,
    )
    .unwrap()
    .config;
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.test, Some(TestCase::PageFault));
    assert_eq!(c.name, "ci");
}

#[test]
fn on_idle_defaults_to_the_shell_and_takes_exit() {
    assert_eq!(parse("", EXIT).unwrap().config.on_idle, OnIdle::Shell);
    for (text, want) in [("exit", OnIdle::Exit), ("shell", OnIdle::Shell)] {
        let doc = format!("[hypervisor]\non_idle = \"{text}\"\n");
        assert_eq!(parse(&doc, EXIT).unwrap().config.on_idle, want);
        assert_eq!(OnIdle::from_name(want.name()), Some(want));
    }
    let e = parse("[hypervisor]\non_idle = \"halt\"\n", EXIT).unwrap_err();
    assert_eq!(e.key(), Some("hypervisor.on_idle"));
    assert!(e.to_string().contains("\"halt\""), "{e}");
    let e = parse("[hypervisor]\non_idle = 1\n", EXIT).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax(_)), "{e}");
}

#[test]
fn interrupt_remapping_scenario() {
    let c = parse("[test]\nscenario = \"intremap\"\n", EXIT)
        .unwrap()
        .config;
    assert_eq!(c.test, Some(TestCase::Intremap));
}

#[test]
fn igb_vf_scenario() {
    let c = parse("[test]\nscenario = \"igb-vf\"\n", EXIT)
        .unwrap()
        .config;
    assert_eq!(c.test, Some(TestCase::IgbVf));
    let e = parse("[test]\nscenario = \"igb_vf\"\n", EXIT).unwrap_err();
    assert_eq!(e.key(), Some("test.scenario"));
}

#[test]
fn errors_name_the_key() {
    let e = parse("[hypervisor]\nlog_level = \"loud\"\n", EXIT).unwrap_err();
    assert!(e.to_string().starts_with("`hypervisor.log_level`"), "{e}");
    let e = parse("[test]\nscenario = \"melt\"\n", EXIT).unwrap_err();
    assert!(e.to_string().starts_with("`test.scenario`"), "{e}");
    let e = parse("[hypervisor]\nname = \"a b\"\n", EXIT).unwrap_err();
    assert!(e.to_string().starts_with("`hypervisor.name`"), "{e}");
    let e = parse("[hypervisor]\ncolour = 1\n", EXIT).unwrap_err();
    assert!(
        matches!(e, ConfigError::Syntax(ref m) if m.contains("colour")),
        "{e}"
    );
}

/// Three guests: an ELF long64 guest, a second guest sharing its image, a flat real16 guest.
const GUESTS: &str = r#"
[hypervisor]
name = "guests"

[[guest]]
name = "hello64"
memory_mib = 4
image = "bin/hello64"
format = "elf"
entry = "long64"

[[guest]]
name = "badstate"
memory_mib = 4
image = "bin/hello64"
time_slice_us = 500
test_break = "cr0-pg-without-pe"

[[guest]]
name = "boot"
memory_mib = 2
image = "bin/boot.bin"
format = "flat"
entry = "real16"
load_gpa = 0x7c00
entry_gpa = 0x7c00
"#;

fn hello_elf() -> Vec<u8> {
    elf(
        0x10_0000,
        &[
            ph_load(0x1000, 0x10_0000, 0x80, 0x80),
            ph_load(0x1080, 0x10_1000, 0x10, 0x2000),
        ],
        0x1090,
    )
}

fn images(key: &str) -> Result<Vec<u8>, String> {
    match key {
        "bin/hello64" => Ok(hello_elf()),
        "bin/boot.bin" => Ok(vec![0xf4; 512]),
        _ => Err(format!("cannot read {key}: no such file")),
    }
}

#[test]
fn guests_are_resolved_against_their_images() {
    let doc = parse(GUESTS, EXIT).unwrap();
    assert_eq!(doc.image_keys(), ["bin/hello64", "bin/boot.bin"]);
    let mut reads = Vec::new();
    let loaded = doc
        .resolve(|k| {
            reads.push(k.to_string());
            images(k)
        })
        .unwrap();
    // A shared image is read once and carried once.
    assert_eq!(reads, ["bin/hello64", "bin/boot.bin"]);
    assert_eq!(loaded.images.len(), 2);
    let g = &loaded.config.guests;
    assert_eq!(
        g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["hello64", "badstate", "boot"]
    );
    assert_eq!(
        (g[0].entry, g[0].entry_point, g[0].segments.len()),
        (EntryMode::Long64, 0x10_0000, 2)
    );
    assert_eq!(g[0].segments[1].mem_len, 0x2000);
    assert_eq!(
        (g[1].image.as_str(), g[1].time_slice_us, g[1].test_break),
        ("bin/hello64", 500, Some(GuestBreak::Cr0PgWithoutPe))
    );
    assert_eq!(
        (g[2].entry, g[2].entry_point, g[2].real_mode_cs_ip()),
        (EntryMode::Real16, 0x7c00, Some((0, 0x7c00)))
    );
    // Into a bundle and back.
    let bytes = loaded.bundle().encode().unwrap();
    let back = Bundle::decode(&bytes).unwrap();
    assert_eq!(back.config, loaded.config);
    assert_eq!(back.image("bin/hello64"), Some(&hello_elf()[..]));
    for guest in &back.config.guests {
        let img = back
            .image(&guest.image)
            .expect("every guest's image is there");
        for s in &guest.segments {
            assert!(s.file_offset + s.file_len <= img.len() as u64);
        }
    }
}

#[test]
fn guest_errors_name_the_key() {
    let with = |extra: &str| format!("{GUESTS}{extra}");
    let key_of = |text: &str| {
        parse(text, EXIT)
            .and_then(|d| d.resolve(images))
            .expect_err("refused")
            .key()
            .map(str::to_string)
    };
    let g = |body: &str| with(&format!("\n[[guest]]\n{body}\n"));
    assert_eq!(
        key_of(&g("name = \"x\"\nmemory_mib = 0\nimage = \"bin/hello64\"")).as_deref(),
        Some("guest[3].memory_mib")
    );
    assert_eq!(
        key_of(&g(
            "name = \"hello64\"\nmemory_mib = 2\nimage = \"bin/hello64\""
        ))
        .as_deref(),
        Some("guest[3].name")
    );
    assert_eq!(
        key_of(&g(
            "name = \"x\"\nmemory_mib = 2\nimage = \"bin/hello64\"\nentry = \"v86\""
        ))
        .as_deref(),
        Some("guest[3].entry")
    );
    assert_eq!(
        key_of(&g(
            "name = \"hostile\"\nmemory_mib = 2\nimage = \"bin/missing\""
        ))
        .as_deref(),
        Some("guest \"hostile\".image")
    );
    // The hello64 image loads at 1 MiB..1 MiB+8 KiB: fine in 2 MiB, but not as real16.
    assert_eq!(
        key_of(&g(
            "name = \"r\"\nmemory_mib = 2\nimage = \"bin/hello64\"\nentry = \"real16\""
        ))
        .as_deref(),
        Some("guest \"r\".image")
    );
    // A flat image read as an ELF.
    assert_eq!(
        key_of(&g("name = \"e\"\nmemory_mib = 2\nimage = \"bin/boot.bin\"")).as_deref(),
        Some("guest \"e\".image")
    );
    // Unknown keys in a guest table are syntax errors that name the key.
    let e = parse(
        &g("name = \"x\"\nmemory_mib = 2\nimage = \"i\"\ncpus = 2"),
        EXIT,
    )
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::Syntax(ref m) if m.contains("cpus")),
        "{e}"
    );
    let e = parse(
        "[[guest]]\nname = \"x\"\nmemory_mib = \"4\"\nimage = \"i\"\n",
        EXIT,
    )
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::Syntax(ref m) if m.contains("memory_mib")),
        "{e}"
    );
    let e = parse(
        &g("name = \"x\"\nmemory_mib = 2\nimage = \"i\"\ntest_break = \"boom\""),
        EXIT,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("`guest[3].test_break`: unknown value \"boom\""),
        "{e}"
    );
}

/// A scratch directory for file tests, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("conduit-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn images_are_read_relative_to_the_configuration_directory() {
    let dir = Scratch::new("files");
    std::fs::write(dir.0.join("bin/hello64"), hello_elf()).unwrap();
    let e = load(GUESTS, EXIT, &dir.0).unwrap_err();
    assert_eq!(e.key(), Some("guest \"boot\".image"));
    let msg = e.to_string();
    assert!(
        msg.contains("cannot read") && msg.contains("boot.bin"),
        "{msg}"
    );
    std::fs::write(dir.0.join("bin/boot.bin"), [0xf4u8; 16]).unwrap();
    let loaded = load(GUESTS, EXIT, &dir.0).unwrap();
    assert_eq!(loaded.config.guests.len(), 3);
    assert_eq!(
        loaded.images[1],
        ("bin/boot.bin".to_string(), vec![0xf4; 16])
    );
    // An absolute image path is used as it is.
    let abs = dir.0.join("bin/hello64");
    let text = format!(
        "[[guest]]\nname = \"a\"\nmemory_mib = 2\nimage = \"{}\"\n",
        abs.display()
    );
    assert!(load(&text, EXIT, Path::new("/nonexistent")).is_ok());
}

#[test]
fn devices_and_unsafe_no_iommu() {
    let text = "[hypervisor]\nunsafe_no_iommu = true\n[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"a.elf\"\n\
                [[guest.device]]\nfunction = \"00:04.0\"\n[[guest.device]]\nfunction = \"8086:10c9\"\nvf = 2\n";
    let doc = parse(text, ExitMethod::Halt).unwrap();
    assert!(doc.config.unsafe_no_iommu);
    let d = &doc.guests[0].devices;
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].to_string(), "00:04.0");
    assert_eq!(d[1].to_string(), "8086:10c9 VF 2");
    let shared = "[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"00:04.0\"\n\
                  [[guest]]\nname = \"b\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"00:04.0\"\n";
    let e = parse(shared, ExitMethod::Halt).unwrap_err();
    assert!(
        e.to_string().starts_with("`guest[1].device[0].function`"),
        "{e}"
    );
    let bad = "[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"4:0\"\n";
    let e = parse(bad, ExitMethod::Halt).unwrap_err();
    assert!(
        e.to_string().starts_with("`guest[0].device[0].function`"),
        "{e}"
    );
    assert!(!parse("", ExitMethod::Halt).unwrap().config.unsafe_no_iommu);
}

/// A function off segment 0 is a guest device like any other: `0001:02:00.0` and `02:00.0`
/// (segment 0) are two functions, given to two guests; the same segment-qualified function
/// given twice is refused.
#[test]
fn devices_on_another_segment() {
    let text = "[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"0001:02:00.0\"\n\
                [[guest]]\nname = \"b\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"02:00.0\"\n";
    let doc = parse(text, ExitMethod::Halt).unwrap();
    let a = &doc.guests[0].devices[0];
    assert_eq!(
        a.function,
        crate::DeviceSel::Bdf {
            segment: 1,
            bus: 2,
            dev: 0,
            func: 0
        }
    );
    assert_eq!(a.to_string(), "0001:02:00.0");
    assert_eq!(doc.guests[1].devices[0].to_string(), "02:00.0");
    let twice = text.replace("\"02:00.0\"", "\"0001:02:00.0\"");
    let e = parse(&twice, ExitMethod::Halt).unwrap_err().to_string();
    assert!(e.starts_with("`guest[1].device[0].function`"), "{e}");
}

#[test]
fn vf_mac_and_vlans_from_toml() {
    let text = "[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"01:00.0\"\n\
                vf = 0\nmac = \"02:c0:ff:ee:00:0a\"\nvlans = [100, 200]\n\
                [[guest]]\nname = \"b\"\nmemory_mib = 4\nimage = \"a.elf\"\n[[guest.device]]\nfunction = \"01:00.0\"\nvf = 1\n";
    let doc = parse(text, ExitMethod::Halt).unwrap();
    let a = &doc.guests[0].devices[0];
    assert_eq!(a.mac, Some([0x02, 0xc0, 0xff, 0xee, 0x00, 0x0a]));
    assert_eq!(a.vlans, [100, 200]);
    assert_eq!(doc.guests[1].devices[0].mac, None);
    let twice = text.replace("vf = 1\n", "vf = 1\nmac = \"02:C0:FF:EE:00:0A\"\n");
    let e = parse(&twice, ExitMethod::Halt).unwrap_err().to_string();
    assert!(e.starts_with("`guest[1].device[0].mac`"), "{e}");
    let multicast = text.replace("02:c0:ff", "01:00:5e");
    let e = parse(&multicast, ExitMethod::Halt).unwrap_err().to_string();
    assert!(
        e.starts_with("`guest[0].device[0].mac`") && e.contains("multicast"),
        "{e}"
    );
}

#[test]
fn console_and_baud() {
    let doc = parse("", ExitMethod::Halt).unwrap();
    assert_eq!(
        (doc.config.console, doc.config.baud),
        (ConsoleChoice::Auto, 115_200)
    );
    for (name, choice) in [
        ("auto", ConsoleChoice::Auto),
        ("com1", ConsoleChoice::Com1),
        ("com2", ConsoleChoice::Com2),
        ("spcr", ConsoleChoice::Spcr),
    ] {
        let text = format!("[hypervisor]\nconsole = \"{name}\"\nbaud = 9600\n");
        let doc = parse(&text, ExitMethod::Halt).unwrap();
        assert_eq!((doc.config.console, doc.config.baud), (choice, 9_600));
    }
    let e = parse("[hypervisor]\nconsole = \"com3\"\n", ExitMethod::Halt).unwrap_err();
    assert!(
        e.to_string().starts_with("`hypervisor.console`") && e.to_string().contains("com3"),
        "{e}"
    );
    for bad in ["0", "14000", "230400"] {
        let text = format!("[hypervisor]\nbaud = {bad}\n");
        let e = parse(&text, ExitMethod::Halt).unwrap_err();
        assert!(e.to_string().starts_with("`hypervisor.baud`"), "{e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
}

#[test]
fn a_linux_guest_brings_its_initrd_into_the_bundle_once() {
    let mut bz = vec![0u8; 5 * 512 + 0x1000];
    bz[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
    bz[0x200..0x202].copy_from_slice(&[0xEB, 0x6A]);
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    bz[0x206..0x208].copy_from_slice(&0x020Fu16.to_le_bytes());
    bz[0x22C..0x230].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    bz[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    bz[0x234] = 1;
    bz[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
    bz[0x238..0x23C].copy_from_slice(&255u32.to_le_bytes());
    bz[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    bz[0x260..0x264].copy_from_slice(&0x100_0000u32.to_le_bytes());
    let text = "[[guest]]\nname = \"a\"\nkind = \"linux\"\nmemory_mib = 64\nkernel = \"bz\"\n\
                initrd = \"rd\"\ncmdline = \"quiet\"\non_crash = \"restart\"\n\
                [[guest]]\nname = \"b\"\nkind = \"linux\"\nmemory_mib = 64\nkernel = \"bz\"\n\
                initrd = \"rd\"\n";
    let doc = parse(text, EXIT).unwrap();
    assert_eq!(doc.image_keys(), ["bz", "rd"]);
    let mut reads = Vec::new();
    let loaded = doc
        .resolve(|k| {
            reads.push(k.to_string());
            Ok(if k == "bz" { bz.clone() } else { vec![9; 100] })
        })
        .unwrap();
    assert_eq!(reads, ["bz", "rd"]);
    assert_eq!(loaded.images.len(), 2);
    let g = &loaded.config.guests[0];
    assert_eq!(g.entry, EntryMode::Linux64);
    assert_eq!(
        g.on_crash,
        crate::model::OnCrash::Restart { max_restarts: 3 }
    );
    // A missing initrd names its key.
    let doc = parse(text, EXIT).unwrap();
    let e = doc
        .resolve(|k| {
            if k == "bz" {
                Ok(bz.clone())
            } else {
                Err("cannot read rd".into())
            }
        })
        .unwrap_err();
    assert_eq!(e.key(), Some("guest \"a\".initrd"));
}

#[test]
fn placement_keys_reach_the_bundle_and_bad_ones_name_the_key() {
    let two = |a: &str, b: &str| {
        format!(
            "[[guest]]\nname = \"a\"\nmemory_mib = 4\nimage = \"bin/hello64\"\n{a}\n\
             [[guest]]\nname = \"b\"\nmemory_mib = 4\nimage = \"bin/hello64\"\n{b}\n"
        )
    };
    let d = parse(&two("cpus = [1]\ndedicated = true", "cpus = [2]"), EXIT)
        .unwrap()
        .resolve(images)
        .unwrap();
    let p: Vec<_> = d
        .config
        .guests
        .iter()
        .map(|g| g.placement.clone())
        .collect();
    assert_eq!(
        p,
        [
            crate::Placement {
                cpus: vec![1],
                dedicated: true
            },
            crate::Placement {
                cpus: vec![2],
                dedicated: false
            }
        ]
    );
    let key_of = |a: &str, b: &str| {
        parse(&two(a, b), EXIT)
            .and_then(|d| d.resolve(images))
            .expect_err("refused")
            .key()
            .map(str::to_string)
    };
    assert_eq!(
        key_of("cpus = [1]\ndedicated = true", "cpus = [1]").as_deref(),
        Some("guest[1].cpus")
    );
    assert_eq!(
        key_of("cpus = [1]", "cpus = [1]\ndedicated = true").as_deref(),
        Some("guest[1].dedicated")
    );
    assert_eq!(
        key_of("", "cpus = [3, 3]").as_deref(),
        Some("guest[1].cpus")
    );
    assert_eq!(
        key_of("dedicated = true", "").as_deref(),
        Some("guest[0].dedicated")
    );
    let e = parse(&two("cpus = \"1\"", ""), EXIT).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax(_)), "{e}");
}
