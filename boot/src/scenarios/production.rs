//! The scenarios of the production image (the kernel and control task built without their
//! `selftest` feature, as `scripts/run` and a machine get them): it boots a configuration without
//! test settings, and it refuses one with `[test]` or a guest's `test_apic` at boot rather than run part of it. Every
//! other scenario boots the test image.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// Forbidden in the production image's log: a self-test's line (`selftest: ...`) or module
/// (`selftest::...`).
const SELFTEST: &str = r"selftest:";

/// The scenarios that boot the production image, run after [`super::SCENARIOS`].
pub const PRODUCTION_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "qemu-production",
        machine: MachineSpec::Qemu(QemuSpec {
            intremap: true,
            caching_mode: true,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/foundation.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r"boot complete: [0-9]+ MiB usable .* 1 CPU\(s\), VMX not available, DMAR present, DMA remapping on, interrupt remapping on",
            r"CONDUIT EXIT: success",
        ],
        forbid: &[PANIC, ANY_EXCEPTION, SELFTEST],
        input: &[],
        end: End::Success,
        timeout_secs: 120,
    },
    Scenario {
        name: "qemu-production-refuses-test",
        machine: MachineSpec::Qemu(QemuSpec {
            intremap: true,
            caching_mode: true,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/page-fault.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r#"this is the production image: \[test\] scenario "page-fault" needs the test image"#,
            r"CONDUIT EXIT: failure \(code 0x101\)",
        ],
        forbid: &[PANIC, ANY_EXCEPTION, SELFTEST, r"boot complete"],
        input: &[],
        end: End::Failure,
        timeout_secs: 120,
    },
    // A guest's `test_apic` (bochs-vplatform's configuration) is a test setting too.
    Scenario {
        name: "qemu-production-refuses-test-apic",
        machine: MachineSpec::Qemu(QemuSpec {
            intremap: true,
            caching_mode: true,
            ..QemuSpec::TCG
        }),
        config: Config::File("boot/scenarios/vplatform.toml"),
        guests: &[],
        expect: &[
            BANNER,
            r#"this is the production image: guest "soft" test_apic = "software" needs the test image"#,
            r"CONDUIT EXIT: failure \(code 0x101\)",
        ],
        forbid: &[PANIC, ANY_EXCEPTION, SELFTEST, r"boot complete"],
        input: &[],
        end: End::Failure,
        timeout_secs: 120,
    },
];
