//! Issue 15, the processors: every CPU of the machine started, its tick, its interrupts, VMXON on
//! each, cross-CPU requests.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// QEMU TCG with four CPUs (q35's APIC IDs 0-3).
pub(super) const QEMU_SMP: Scenario = Scenario {
    name: "qemu-smp",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "4",
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/foundation.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"MADT: 4 CPU\(s\), local APIC ids \[0, 1, 2, 3\]",
        r"cpu 0 \(APIC ID 0\): online \(the BSP\)",
        r"cpu 1 \(APIC ID 1\): online, tick every 10 ms",
        r"cpu 2 \(APIC ID 2\): online, tick every 10 ms",
        r"cpu 3 \(APIC ID 3\): online, tick every 10 ms",
        r"smp: 4 of 4 CPUs online",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"did not start"],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};
