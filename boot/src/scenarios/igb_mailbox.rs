//! Issue 14, the igb PF mailbox service: placeholder expectations, refined below.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};

const EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "igb-mailbox""#,
    r"selftest: igb-mailbox: PASS \(5 steps\)",
    r"CONDUIT EXIT: success",
];

const FORBID: &[&str] = &[PANIC, ANY_EXCEPTION, r"FAIL"];

/// `qemu-igb-mailbox` (boot/scenarios/igb-mailbox.toml).
pub const QEMU_IGB_MAILBOX: Scenario = Scenario {
    name: "qemu-igb-mailbox",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/igb-mailbox.toml"),
    guests: &[],
    expect: EXPECT,
    forbid: FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};
