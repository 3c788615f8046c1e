//! The boot scenarios, as data: the one place to add more.
//!
//! Each scenario boots one image on one machine and reads the serial log. Log lines look like
//! `[<tsc>] <LEVEL> <module>: <text>`; the patterns below match the text, never the prefix.
//! Expectations must match in order (a line may satisfy several in a row); any match of a forbidden
//! pattern fails the run; the run must end with the kernel's `CONDUIT EXIT: ...` marker for `end`
//! (under QEMU, also with the matching `isa-debug-exit` status: 33 success, 35 failure).

use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};

/// Where a scenario's `conduit.toml` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// A file, relative to the repository root.
    File(&'static str),
    /// The text itself.
    Inline(&'static str),
}

/// One boot test.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique; also the name of its build directory and log file.
    pub name: &'static str,
    pub machine: MachineSpec,
    pub config: Config,
    /// Guest images for the bundle: (name in the configuration, file relative to the repository root).
    pub images: &'static [(&'static str, &'static str)],
    /// Regular expressions that must match log lines, in this order.
    pub expect: &'static [&'static str],
    /// Regular expressions that must match no log line.
    pub forbid: &'static [&'static str],
    /// The end the kernel must report.
    pub end: End,
    /// Seconds from the emulator's start until the run is killed and failed.
    pub timeout_secs: u64,
}

/// Forbidden in every scenario: a Rust panic.
const PANIC: &str = "panicked";
/// Forbidden where no exception is expected.
const ANY_EXCEPTION: &str = r"EXCEPTION #";

/// The banner every boot starts with.
const BANNER: &str = r"Conduit v0\.1\.0 \(git [0-9a-f]{7,}";

/// All scenarios, run in this order.
pub const SCENARIOS: &[Scenario] = &[
    // Issue "Foundation": bring-up on QEMU (no VMX, but VT-d and the PCIe device set).
    Scenario {
        name: "qemu-foundation",
        machine: MachineSpec::Qemu(QemuSpec {
            intremap: true,
            caching_mode: true,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/foundation.toml"),
        images: &[],
        expect: &[
            BANNER,
            r"usable memory: [0-9]+ MiB",
            // QEMU's `-cpu max` reports AMD under TCG.
            r"vendor (GenuineIntel|AuthenticAMD) family",
            r"VMX: not available",
            r"MADT: 1 CPU\(s\), local APIC ids \[0\]",
            r"MADT: IOAPIC id 0 at 0xfec00000, GSI base 0",
            // OVMF on q35 places ECAM at 0xb0000000 (measured).
            r"MCFG: ECAM base 0xb0000000, segment 0, buses 0-255",
            // QEMU's DMAR: 136 bytes, HAW byte 0x2f (48 bits), flags INTR_REMAP.
            r"DMAR: present at 0x[0-9a-f]+, 136 bytes, host address width 48, flags 0x1",
            r"boot complete: [0-9]+ MiB usable .* 1 CPU\(s\), VMX not available, DMAR present",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 120,
    },
    // Issue "Foundation": the VMX capability report on Bochs (Tiger Lake: EPT, VPID, unrestricted guest).
    Scenario {
        name: "bochs-foundation",
        machine: MachineSpec::Bochs(BochsSpec {
            cpu_model: "tigerlake",
            ..BochsSpec::DEFAULT
        }),
        config: Config::File("boot/scenarios/foundation.toml"),
        images: &[],
        expect: &[
            BANNER,
            r"vendor GenuineIntel family",
            // Values decoded from Bochs' tigerlake MSRs (shared/platform-notes.md).
            r"VMX: available, VMCS revision 4, region 4096 bytes, memory type WB, true controls: yes",
            r"EPT: 4-level walk, WB\+UC, 2M pages: yes, 1G pages: yes, INVEPT: yes \(single yes, all yes\), A/D: yes",
            r"VPID: yes, INVVPID: yes \(address yes, single yes, all yes",
            r"unrestricted guest: yes, preemption timer: yes \(rate: TSC >> 0\)",
            // The TRUE_* controls (proc, exit, entry) as Bochs 2.7 reports them.
            r"VMX MSRs: basic=0x1d8100000000004 pin=0x7f00000016 proc=0xfff9fffe04006172 proc2=0x2977fff00000000 exit=0x107fffff00036dfb entry=0x10ffff000011fb misc=0x600401e0",
            r"VMX MSRs: ept_vpid=0xf0106b34141 cr0_fixed0=0x80000021 cr0_fixed1=0xffffffff cr4_fixed0=0x2000 cr4_fixed1=0xf72fff",
            // OVMF under Bochs has no QEMU fw_cfg to take ACPI tables from: there are none.
            r"ACPI: no RSDP in the EBDA or BIOS area",
            r"boot complete: [0-9]+ MiB usable .*CPU count unknown \(no MADT\), VMX available, DMAR absent",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 240,
    },
    // Issue "Foundation": an unmapped read must be decoded as a #PF and end the run with failure.
    Scenario {
        name: "qemu-page-fault",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/page-fault.toml"),
        images: &[],
        expect: &[
            r"selftest: reading unmapped address 0x5a5a00000000",
            r"EXCEPTION #PF \(page fault\), error code 0x0000 \(not present, read, supervisor\)",
            // The faulting read is in the kernel, which the loader maps at 0x80_0000_0000.
            r"RIP +0x0000008000[0-9a-f]{6} +CS 0x0008",
            r"RSP +0x[0-9a-f]{16} +SS",
            r"CR2 +0x00005a5a00000000",
            r"CONDUIT EXIT: failure \(code 0xe\)",
        ],
        forbid: &[PANIC, r"#DF|double fault"],
        end: End::Failure,
        timeout_secs: 120,
    },
    Scenario {
        name: "qemu-vtd-edu-cm-off",
        machine: MachineSpec::Qemu(QemuSpec {
            caching_mode: false,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/vtd-edu.toml"),
        images: &[],
        expect: &[BANNER, r"CONDUIT EXIT: success"],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 120,
    },
    Scenario {
        name: "qemu-vtd-edu-reginv",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/vtd-edu-reginv.toml"),
        images: &[],
        expect: &[BANNER, r"CONDUIT EXIT: success"],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 120,
    },
    Scenario {
        name: "qemu-dmar-corrupt",
        machine: MachineSpec::Qemu(QemuSpec::TCG),
        config: Config::File("boot/scenarios/dmar-corrupt.toml"),
        images: &[],
        expect: &[BANNER, r"CONDUIT EXIT: success"],
        forbid: &[PANIC, ANY_EXCEPTION],
        end: End::Success,
        timeout_secs: 120,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Monitor;
    use conduit_config::ExitMethod;
    use std::path::Path;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
    }

    #[test]
    fn names_are_unique_and_usable_as_file_names() {
        for (i, s) in SCENARIOS.iter().enumerate() {
            assert!(
                !s.name.is_empty()
                    && s.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "bad name {:?}",
                s.name
            );
            assert!(
                SCENARIOS[..i].iter().all(|o| o.name != s.name),
                "duplicate {}",
                s.name
            );
        }
    }

    #[test]
    fn every_pattern_compiles_and_every_config_validates() {
        for s in SCENARIOS {
            Monitor::new(s.expect, s.forbid).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            let text = match s.config {
                Config::File(rel) => std::fs::read_to_string(root().join(rel))
                    .unwrap_or_else(|e| panic!("{}: {rel}: {e}", s.name)),
                Config::Inline(t) => t.to_string(),
            };
            conduit_config::toml_front::parse(&text, ExitMethod::Halt)
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            for (_, rel) in s.images {
                assert!(
                    root().join(rel).is_file(),
                    "{}: image {rel} missing",
                    s.name
                );
            }
            assert!(s.timeout_secs > 0, "{}: zero timeout", s.name);
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
            for e in s.expect {
                sample.feed(e.replace('\\', "").as_bytes());
                sample.feed(b"\n");
            }
            assert_eq!(sample.forbidden_problem(), None, "{}", s.name);
        }
    }
}
