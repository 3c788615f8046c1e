//! Tests of the scenario table: names, patterns, configurations, images, input scripts.

use super::*;
use crate::expect::Monitor;
use conduit_config::ExitMethod;
use conduit_config::toml_front::{self, Document};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// The scenario's configuration, parsed (without reading images), and its directory.
fn document(s: &Scenario) -> (Document, PathBuf) {
    let (text, dir) = match s.config {
        Config::File(rel) => (
            std::fs::read_to_string(root().join(rel))
                .unwrap_or_else(|e| panic!("{}: {rel}: {e}", s.name)),
            root()
                .join(rel)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        ),
        Config::Inline(t) => (t.to_string(), root().to_path_buf()),
    };
    let doc =
        toml_front::parse(&text, ExitMethod::Halt).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    (doc, dir)
}

/// The `[[bin]]` names of guest/Cargo.toml.
fn guest_bins() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(root().join("guest/Cargo.toml")).expect("guest manifest");
    let mut bins = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(v) = line.strip_prefix("name = ") {
            bins.push(v.trim_matches('"').to_string());
        }
    }
    bins
}

/// What `scripts/linux-assets` builds in `build/linux/` (scripts/test runs it first).
const LINUX_ASSETS: &[&str] = &[
    "vmlinuz",
    "initramfs.cpio.gz",
    "initramfs-panic.cpio.gz",
    "initramfs-nvme.cpio.gz",
    "initramfs-igbvf.cpio.gz",
];

/// Every image a configuration names must be a test guest's build output, so that
/// `cargo build -p conduit-guest --release` is all a boot test needs, or one of the Linux guest
/// files `scripts/linux-assets` builds.
fn images_are_test_guests(what: &str, doc: &Document, dir: &Path) {
    let bins = guest_bins();
    let out = root().join("target/x86_64-unknown-none/release");
    let linux = root().join("build/linux");
    for key in doc.image_keys() {
        let path = dir.join(key);
        let normal: PathBuf = path.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                std::path::Component::CurDir => {}
                other => p.push(other),
            }
            p
        });
        if let Ok(asset) = normal.strip_prefix(&linux) {
            let asset = asset.to_string_lossy();
            assert!(
                LINUX_ASSETS.contains(&&*asset),
                "{what}: image {key}: scripts/linux-assets builds no {asset} ({LINUX_ASSETS:?})"
            );
            continue;
        }
        let bin = normal
            .strip_prefix(&out)
            .unwrap_or_else(|_| panic!("{what}: image {key} is not in {}", out.display()));
        let bin = bin.to_string_lossy().to_string();
        assert!(
            bins.contains(&bin),
            "{what}: image {key}: no [[bin]] {bin} in guest/Cargo.toml ({bins:?})"
        );
    }
}

#[test]
fn names_are_unique_and_usable_as_file_names() {
    let all: Vec<&Scenario> = super::all().map(|(s, _)| s).collect();
    for (i, s) in all.iter().enumerate() {
        assert!(
            !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "bad name {:?}",
            s.name
        );
        assert!(
            all[..i].iter().all(|o| o.name != s.name),
            "duplicate {}",
            s.name
        );
    }
}

#[test]
fn every_pattern_compiles_and_every_config_validates() {
    for (s, _) in super::all() {
        Monitor::with_sequences(s.expect, s.guests, s.forbid)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let (doc, dir) = document(s);
        images_are_test_guests(s.name, &doc, &dir);
        for (guest, _) in s.guests {
            assert!(
                doc.guests.iter().any(|g| g.name == *guest),
                "{}: expectations for guest {guest}, which the configuration does not have",
                s.name
            );
        }
        assert!(s.timeout_secs > 0, "{}: zero timeout", s.name);
    }
}

#[test]
fn every_input_script_compiles_and_a_run_left_at_the_shell_is_quit() {
    use crate::script::{Input, Script};
    for (s, _) in super::all() {
        Script::new(s.input).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let (doc, _) = document(s);
        if doc.config.on_idle == conduit_config::OnIdle::Shell {
            // Nothing else ends such a run: its last input must be `quit` (or `exit`).
            let last = s.input.last().map(|step| step.send);
            assert!(
                matches!(last, Some(Input::Line("quit" | "exit"))),
                "{}: on_idle = \"shell\" but the last input is {last:?}",
                s.name
            );
        }
    }
}

#[test]
fn the_shell_scenarios_are_listed_on_their_machines() {
    for (name, kind) in [
        ("qemu-shell", crate::machine::MachineKind::Qemu),
        ("bochs-shell", crate::machine::MachineKind::Bochs),
    ] {
        let s = SCENARIOS.iter().find(|s| s.name == name).expect(name);
        assert_eq!(s.machine.kind(), kind);
        assert!(!s.input.is_empty(), "{name} types nothing");
    }
}

#[test]
fn the_default_configuration_runs_test_guests() {
    let text = std::fs::read_to_string(root().join("conduit.toml")).expect("conduit.toml");
    let doc = toml_front::parse(&text, ExitMethod::Halt).expect("conduit.toml is valid");
    let names: Vec<&str> = doc.guests.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["hello64", "real16", "linux"]);
    images_are_test_guests("conduit.toml", &doc, root());
}

#[test]
fn the_guest_scenarios_are_listed() {
    for name in [
        "bochs-vmx-guests",
        "bochs-vmx-guests-skylake",
        "bochs-bench",
    ] {
        let s = SCENARIOS.iter().find(|s| s.name == name).expect(name);
        assert_eq!(s.machine.kind(), crate::machine::MachineKind::Bochs);
    }
}

#[test]
fn expectations_reach_the_end_marker_and_no_expectation_is_forbidden() {
    for s in SCENARIOS {
        let last = s.expect.last().copied().unwrap_or_default();
        assert!(
            last.starts_with("CONDUIT EXIT"),
            "{}: last expectation {last:?}",
            s.name
        );
        let mut sample = Monitor::new(&[], s.forbid).expect("valid");
        // The expectation patterns themselves, read as text, must not trip the forbidden ones.
        let guest_patterns = s.guests.iter().flat_map(|(_, p)| p.iter());
        for e in s.expect.iter().chain(guest_patterns) {
            sample.feed(e.replace('\\', "").as_bytes());
            sample.feed(b"\n");
        }
        assert_eq!(sample.forbidden_problem(), None, "{}", s.name);
    }
}

#[test]
fn the_igb_vf_scenario_runs_on_qemu_with_two_vfs_of_one_pf() {
    use conduit_config::{DeviceSel, TestCase};
    let s = SCENARIOS
        .iter()
        .find(|s| s.name == "qemu-igb-vf")
        .expect("qemu-igb-vf");
    assert_eq!(s.machine.kind(), crate::machine::MachineKind::Qemu);
    let (doc, _) = document(s);
    assert_eq!(doc.config.test, Some(TestCase::IgbVf));
    assert_eq!(doc.config.on_idle, conduit_config::OnIdle::Exit);
    let vfs: Vec<(&str, Option<u16>)> = doc
        .guests
        .iter()
        .flat_map(|g| g.devices.iter().map(move |d| (g.name.as_str(), d)))
        .filter(|(_, d)| {
            matches!(
                d.function,
                DeviceSel::Bdf {
                    segment: 0,
                    bus: 1,
                    dev: 0,
                    func: 0
                } | DeviceSel::Id {
                    vendor: 0x8086,
                    device: 0x10c9
                }
            )
        })
        .map(|(g, d)| (g, d.vf))
        .collect();
    assert_eq!(vfs, [("a", Some(0)), ("b", Some(1))]);
    // The figures the self-test and the log must agree on.
    let text = s.expect.join("\n");
    for needle in [
        "raised 16 times via EICS",
        r#"guest "a" received 16"#,
        "reason 0x26",
        r#"guest "a": interrupts 17"#,
    ] {
        assert!(
            text.contains(needle),
            "qemu-igb-vf does not expect {needle:?}"
        );
    }
}

#[test]
fn the_igb_mailbox_scenario_expects_the_configured_mac() {
    use conduit_config::{MacText, TestCase};
    let s = SCENARIOS
        .iter()
        .find(|s| s.name == "qemu-igb-mailbox")
        .expect("qemu-igb-mailbox");
    assert_eq!(s.machine.kind(), crate::machine::MachineKind::Qemu);
    let (doc, _) = document(s);
    assert_eq!(doc.config.test, Some(TestCase::IgbMailbox));
    let a = &doc.guests[0].devices[0];
    let b = &doc.guests[1].devices[0];
    assert_eq!((a.vf, b.vf, b.mac), (Some(0), Some(1), None));
    assert_eq!(a.vlans, [100]);
    // The reply's bytes in the log are those of guest A's `mac`.
    let mac = a.mac.expect("guest A's VF has a configured MAC");
    let bytes: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    let text = s.expect.join("\n");
    for needle in [
        format!("bytes {}, the configured address", bytes.join(" ")),
        format!("MAC {} configured", MacText(mac)),
    ] {
        assert!(
            text.contains(&needle),
            "qemu-igb-mailbox does not expect {needle:?}"
        );
    }
}

#[test]
fn the_production_image_gets_only_configurations_it_can_refuse_or_run() {
    use crate::paths::KernelImage;
    let production: Vec<_> = super::all()
        .filter(|(_, image)| *image == KernelImage::Production)
        .map(|(s, _)| s)
        .collect();
    assert!(!production.is_empty());
    for s in production {
        let (doc, _) = document(s);
        // A test-only setting must be refused (failure), anything else must boot. The guests'
        // settings are in `doc.guests` (`doc.config.guests` is filled when images are read).
        let refused = doc.config.test_only().is_some()
            || doc
                .guests
                .iter()
                .any(|g| g.test_break.is_some() || g.test_apic.is_some());
        assert_eq!(s.end == End::Failure, refused, "{}", s.name);
        assert!(
            !refused
                || s.expect
                    .iter()
                    .any(|p| p.contains("this is the production image")),
            "{}: the refusal must be expected",
            s.name
        );
    }
}
