//! Issue 12, "One clock": the bad-input scenario. The rate itself is asserted where each machine
//! boots anyway (`qemu-foundation`, `bochs-foundation`, the Bochs guest scenarios), and every
//! figure derived from it is checked against it in every log by the harness (`crate::tsc`).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// Bad input: no reference clock (QEMU without its 8254, and without ACPI tables, so no PM timer)
/// and no TSC frequency in CPUID (TCG). The calibration failure is reported with each reference's
/// reason, waits fall back to an assumed 10 GHz TSC, and the guest is reported as not created
/// because the rate is unknown: never a guessed rate. Without its 8254, QEMU's port 0x61 shows
/// channel 2's output high even right after a mode 0 control word (which sets it low): the
/// measurement refuses that rather than timing nothing.
pub const QEMU_NO_CLOCK: Scenario = Scenario {
    name: "qemu-no-clock",
    machine: MachineSpec::Qemu(QemuSpec {
        extra_args: &["-machine", "pit=off,acpi=off"],
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/no-clock.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"time: the TSC rate is unknown: it could not be calibrated \(no ACPI PM timer; the 8254's channel 2 output \(port 0x61 bit 5\) was high after programming\) and CPUID reports no TSC frequency: no guest will be started; waits assume a 10000\.000 MHz TSC",
        r"apic: timer not calibrated \(the TSC rate is unknown\): no hypervisor tick",
        r"guests: the TSC rate is unknown: it could not be calibrated",
        r#"guest "a": 16 MiB at HPA 0x[0-9a-f]+, 0 function\(s\) assigned; its vCPUs are not started because VMX is absent, and the TSC rate is unknown: "#,
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"time: TSC [0-9]"],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};
