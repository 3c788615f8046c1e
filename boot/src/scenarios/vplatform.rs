//! Issue 13, the virtual platform of OS guests under test in Bochs (docs/testing.md): the
//! `vplat` Multiboot kernel (guest/src/bin/vplat) drives the local APIC, the I/O APIC, the UART's
//! interrupt, the MSR and XCR0 policy and x2APIC mode, then powers off through ACPI S5.

use super::guests::GUEST_FORBID;
use super::{BANNER, Config, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec};

pub(super) const BOCHS_VPLATFORM: Scenario = Scenario {
    name: "bochs-vplatform",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/vplatform.toml"),
    expect: &[BANNER, r"CONDUIT EXIT: success"],
    guests: &[],
    forbid: GUEST_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 400,
};
