//! Issue 14, "Legacy INTx": edu's INTx (q35 + OVMF: 00:04.0 INTA#, Interrupt Line 10, the MADT
//! override for IRQ 10: GSI 10, level, active high) routed to the OS guest's virtual I/O APIC,
//! masked at the I/O APIC from each interrupt until the guest's EOI; a never-acknowledged line
//! cut off by the flood guard while the guest's second edu keeps interrupting by MSI; and the
//! same line refused to a guest that does not own every function on it.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

/// The second edu, at 00:06.0.
const SECOND_EDU: &[&str] = &["-device", "edu,addr=6.0"];

/// In order.
const EXPECT: &[&str] = &[BANNER, r"selftest: intx: PASS", r"CONDUIT EXIT: success"];

const FORBID: &[&str] = &[PANIC, ANY_EXCEPTION, r"FAIL"];

/// `qemu-intx` (boot/scenarios/intx.toml).
pub const QEMU_INTX: Scenario = Scenario {
    name: "qemu-intx",
    machine: MachineSpec::Qemu(QemuSpec {
        extra_args: SECOND_EDU,
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/intx.toml"),
    guests: &[],
    expect: EXPECT,
    forbid: FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

const SHARED_EXPECT: &[&str] = &[BANNER, r"CONDUIT EXIT: success"];

/// `qemu-intx-shared` (boot/scenarios/intx-shared.toml).
pub const QEMU_INTX_SHARED: Scenario = Scenario {
    name: "qemu-intx-shared",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/intx-shared.toml"),
    guests: &[],
    expect: SHARED_EXPECT,
    forbid: FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};
