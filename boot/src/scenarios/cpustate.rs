//! Issue 13, Must-show 4: each guest's CPU state is its own (docs/cpu-state.md).

use super::control::BOCHS_E1000;
use super::guests::GUEST_FORBID;
use super::{BANNER, Config, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec};

/// One guest of `cpustate_guest!`: its lines in order. `$ids`: what the configuration reads of
/// 00:01.0 return through the control task (the e1000, or all ones for an empty bus).
macro_rules! cpustate_guest {
    ($name:literal, $lstar:literal, $ids:literal, $code:literal) => {
        &[
            concat!($name, r": hello from ", $name),
            concat!(
                $name,
                r": xsetbv: 4 invalid values refused with #GP \(XCR0 stays 0x1\); XCR0 = 0x7"
            ),
            concat!(
                $name,
                r": msrs: 6 written \(LSTAR ",
                $lstar,
                r"\); SWAPGS exchanged GS\.base and KERNEL_GS_BASE"
            ),
            concat!(
                $name,
                r": intact after 40 rounds \(20 yields, 20 preemptions\): x87 ST0-7, XMM0-15, YMM0-15, DR0-3, CR2, XCR0 0x7, 6 MSRs"
            ),
            concat!(
                $name,
                r": control task answered 40 configuration reads of 00:01\.0 with LSTAR ",
                $lstar,
                r" loaded: ",
                $ids
            ),
            concat!(r#"guest ""#, $name, r#"" exited with code "#, $code, r"\b"),
        ]
    };
}

/// Two guests load their own pattern into x87 ST0-7, XMM0-15 and YMM0-15 (XRSTOR), DR0-DR3 and
/// CR2, after XSETBV to x87|SSE|AVX (four invalid XCR0 values refused with #GP first), and their
/// own STAR/LSTAR/CSTAR/FMASK/KERNEL_GS_BASE/TSC_AUX (LSTAR a bogus entry point); then 40 rounds
/// each of giving the CPU away (yield or preemption) and checking everything. Every round's
/// configuration read goes through the control task, whose SYSCALL needs the host's LSTAR back.
/// Only GS.base's RDMSR and WRMSR exit: the switched MSRs are passed through.
pub(super) const BOCHS_CPU_STATE: Scenario = Scenario {
    name: "bochs-cpu-state",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        extra_lines: BOCHS_E1000,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/cpustate.toml"),
    expect: &[
        BANNER,
        r"config: bundle of [0-9]+ bytes, 2 guest\(s\), 2 image\(s\)",
        r"VMX: available",
        r"xsave: XCR0 allowed for guests 0x[0-9a-f]*[7f], area [0-9]+ bytes by the components' CPUID leaves \([0-9]+ reported for all\); MSR bitmap and VM-entry/exit MSR areas switch STAR LSTAR CSTAR FMASK KERNEL_GS_BASE TSC_AUX",
        r#"guest "cpustate_a": 00:03\.0 appears at 00:01\.0"#,
        r"sched: running 2 guest\(s\) round-robin",
        r"sched: every guest has finished",
        r#"guest "cpustate_a": exited with code 0x41; [0-9]+ exits, .*I/O instruction: [0-9]+, RDMSR: 1, WRMSR: 1, VMX-preemption timer expired: [1-9][0-9]*, XSETBV: 5;"#,
        r#"guest "cpustate_b": exited with code 0x42; [0-9]+ exits, .*I/O instruction: [0-9]+, RDMSR: 1, WRMSR: 1, VMX-preemption timer expired: [1-9][0-9]*, XSETBV: 5;"#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[
        (
            "cpustate_a",
            cpustate_guest!("cpustate_a", "0xffffffffdead0010", "8086:100e", "0x41"),
        ),
        (
            "cpustate_b",
            cpustate_guest!("cpustate_b", "0xffffffffdead0020", "ffff:ffff", "0x42"),
        ),
    ],
    forbid: GUEST_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 400,
};
