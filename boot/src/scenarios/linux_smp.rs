//! Issue 15, Must-show 3: a Linux guest with 2 vCPUs on Bochs `tigerlake`
//! (`boot/scenarios/linux-smp.toml`, `docs/linux-guests.md`). Its own boot, not a guest of
//! `bochs-linux`: that scenario's checks read one-CPU `/proc/interrupts` lines.
//!
//! Linux starts its second CPU through its local APIC (INIT, start-up) and reports both; at its
//! `/init` the harness attaches the console and types `nproc`, then reads the rescheduling (RES)
//! and function-call (CAL) lines of `/proc/interrupts` around loading and unloading the e1000
//! module pinned to each CPU in turn (`taskset`): module loading and unloading change kernel page
//! permissions, whose TLB flush is a function call on every other CPU, and the pinned commands
//! wake the other CPU from its idle HLT with rescheduling IPIs. [`check`] then finds both counts
//! risen on both CPUs. `poweroff -f` ends the run.

use super::{BANNER, Config, Scenario};
use crate::expect::End;
use crate::linux_log::Checked;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};
use crate::script::{Input, Step};
use regex::Regex;
use std::sync::LazyLock;

/// What the harness types (each command ends with an `echo` whose output differs from the
/// echoed command line, so a step waits for the command's end).
const INPUT: &[Step] = &[
    Step::line(r"linux: conduit-initramfs: ready", "console linux"),
    Step::line(
        r"^console: attached to linux's serial port",
        "echo NPROC=$(nproc)",
    ),
    Step::line(
        r"^NPROC=",
        "grep -E 'RES|CAL' /proc/interrupts; for c in 1 2 1 2; do taskset $c insmod /lib/modules/e1000.ko; taskset $c busybox rmmod e1000; done; grep -E 'RES|CAL' /proc/interrupts; echo IPI-$((1+1))",
    ),
    Step::line(r"^IPI-2$", "poweroff -f"),
];

/// The hypervisor's account and Linux's shell while attached.
const EXPECT: &[&str] = &[
    BANNER,
    r"config: bundle of [0-9]+ bytes, 1 guest\(s\)",
    r#"guest "linux": 128 MiB at host 0x[0-9a-f]+, EPTP"#,
    r#"guest "linux": 2 vCPUs \(local APIC IDs 0-1, VPIDs \[[0-9]+, [0-9]+\]\); vCPUs 1-1 wait for a start-up IPI"#,
    r"sched: running 1 guest\(s\) round-robin",
    r#"guest "linux": first VM entry"#,
    // Linux's BSP starts vCPU 1: INIT, then a start-up IPI at its trampoline below 1 MiB.
    r#"guest "linux": vCPU 1: start-up IPI, starts at 0x[0-9a-f]{2}000"#,
    r#"guest "linux": vCPU 1: first VM entry"#,
    r"linux: \[ *[0-9]+\.[0-9]+\] smp: Brought up 1 node, 2 CPUs$",
    r"linux: conduit-initramfs: ready \(6\.1\.",
    r"conduit> console linux$",
    r"^console: attached to linux's serial port",
    r"^NPROC=2$",
    r"^ *RES: +[0-9]+ +[0-9]+ +Rescheduling interrupts$",
    r"^ *CAL: +[0-9]+ +[0-9]+ +Function call interrupts$",
    r"^ *RES: +[0-9]+ +[0-9]+ +Rescheduling interrupts$",
    r"^ *CAL: +[0-9]+ +[0-9]+ +Function call interrupts$",
    r"^IPI-2$",
    r#"guest "linux" powered off \(ACPI S5 through the sleep control register\)"#,
    r"sched: every guest has finished",
    r"CONDUIT EXIT: success",
];

/// `linux`'s boot, logged line by line under its name, in order: the MADT's two local APICs, the
/// second CPU started.
const LINUX_BOOT: &[&str] = &[
    r"linux: \[ *[0-9]+\.[0-9]+\] Linux version 6\.1\.",
    r"linux: \[ *[0-9]+\.[0-9]+\] ACPI: Using ACPI \(MADT\) for SMP configuration information$",
    r"linux: \[ *[0-9]+\.[0-9]+\] smpboot: Allowing 2 CPUs, 0 hotplug CPUs$",
    r"linux: \[ *[0-9]+\.[0-9]+\] smp: Bringing up secondary CPUs \.\.\.$",
    r"linux: \[ *[0-9]+\.[0-9]+\] smp: Brought up 1 node, 2 CPUs$",
    r"linux: \[ *[0-9]+\.[0-9]+\] Run /init as init process$",
];

const FORBID: &[&str] = &[
    super::PANIC,
    super::ANY_EXCEPTION,
    r"linux: .*(Kernel panic|BUG:|Oops|WARNING:|Call Trace)",
    r"linux: .*(CPU1 failed to report alive|do_boot_cpu failed|not responding)",
    r#"guest "linux" stopped: (?:[^p]|p[^o])"#,
];

/// `bochs-linux-smp`.
pub(super) const BOCHS_LINUX_SMP: Scenario = Scenario {
    name: "bochs-linux-smp",
    machine: MachineSpec::Bochs(BochsSpec::DEFAULT),
    config: Config::File("boot/scenarios/linux-smp.toml"),
    expect: EXPECT,
    guests: &[("linux", LINUX_BOOT)],
    forbid: FORBID,
    input: INPUT,
    end: End::Success,
    timeout_secs: 1200,
};

/// `kvm-linux-smp`: the same guest and checks on QEMU with KVM (nested VMX) and two physical
/// CPUs (the guest is placed on CPU 0 by the default placement; its IPIs go through the x2APIC
/// ICR when Linux picks x2APIC mode, as it does under KVM). Needs VMX: runs only where
/// `/dev/kvm` and VMX are present (elsewhere listed as not run); not run on a KVM host yet.
pub(super) const KVM_LINUX_SMP: Scenario = Scenario {
    name: "kvm-linux-smp",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "2",
        ..QemuSpec::KVM
    }),
    timeout_secs: 600,
    ..BOCHS_LINUX_SMP
};

/// Ctrl-]: detaches the console from the guest.
const DETACH: &[u8] = &[0x1d];

/// `bochs-linux-span`: what the harness types. The hypervisor's `cpus` and `vms` at Linux's
/// `/init`, Linux's shell as in `bochs-linux-smp`, then (detached) `cpus` again: the guest
/// exits handled by CPU 0 and by CPU 1 must both rise between the two reads. Then `restart
/// linux` while its vCPUs run, and `quit` once the second boot has both CPUs up.
const SPAN_INPUT: &[Step] = &[
    Step::line(r"linux: conduit-initramfs: ready", "cpus"),
    Step::line(r"^ +1 +1 +online ", "vms"),
    Step::line(
        r"^    vCPU 0 on cpu 0 \(APIC ID 0\), vCPU 1 on cpu 1",
        "console linux",
    ),
    Step::line(
        r"^console: attached to linux's serial port",
        "echo NPROC=$(nproc)",
    ),
    INPUT[2],
    // A loop that keeps vCPU 1 in the guest for the restart below.
    Step::line(
        r"^IPI-2$",
        "taskset 2 sh -c 'while :; do :; done' & echo SPIN-$((2+1))",
    ),
    Step {
        wait: r"^SPIN-3$",
        send: Input::Raw(DETACH),
    },
    Step::line(r"^console: detached from linux", "cpus"),
    // A restart from the shell while both vCPUs run: vCPU 1 leaves CPU 1, whose VMCS CPU 1
    // programs again before Linux's second boot starts it.
    Step::line(r"^ +1 +1 +online ", "restart linux"),
    Step::line(
        r"linux: \[ *[0-9]+\.[0-9]+\] smp: Brought up 1 node, 2 CPUs$",
        "quit",
    ),
];

/// `bochs-linux-span`: the placement, both vCPUs started on their own CPUs, two reads of
/// `cpus` with `linux` on both CPUs, and Linux's own view.
const SPAN_EXPECT: &[&str] = &[
    BANNER,
    r"smp: 2 of 2 CPUs online$",
    r#"guest "linux": on cpu 0 \(APIC ID 0\), shared; its vCPUs span 2 CPUs: vCPU 0 on cpu 0, vCPU 1 on cpu 1$"#,
    r#"guest "linux": 2 vCPUs \(local APIC IDs 0-1, VPIDs \[[0-9]+, [0-9]+\]\); vCPUs 1-1 wait for a start-up IPI"#,
    r"sched: running 1 guest\(s\) round-robin on 2 CPU\(s\): cpu 0: linux; cpu 1: linux$",
    r#"guest "linux": first VM entry"#,
    r#"guest "linux": vCPU 1: start-up IPI, starts at 0x[0-9a-f]{2}000"#,
    r#"guest "linux": vCPU 1: first VM entry"#,
    r"linux: \[ *[0-9]+\.[0-9]+\] smp: Brought up 1 node, 2 CPUs$",
    r"linux: conduit-initramfs: ready \(6\.1\.",
    r"conduit> cpus$",
    r"^ +0 +0 +online +[0-9]+ .* [1-9][0-9]* +linux$",
    r"^ +1 +1 +online +[0-9]+ .* [1-9][0-9]* +linux$",
    r"conduit> vms$",
    r"^  linux: (running|halted)",
    r"^    vCPU 0: started, VPID [0-9]+, .* in guest, [1-9][0-9]* exits",
    r"^    vCPU 1: started, VPID [0-9]+, .* in guest, [1-9][0-9]* exits",
    r"^    vCPU 0 on cpu 0 \(APIC ID 0\), vCPU 1 on cpu 1 \(APIC ID 1\)$",
    r"conduit> console linux$",
    r"^NPROC=2$",
    r"^ *RES: +[0-9]+ +[0-9]+ +Rescheduling interrupts$",
    r"^ *CAL: +[0-9]+ +[0-9]+ +Function call interrupts$",
    r"^ *RES: +[0-9]+ +[0-9]+ +Rescheduling interrupts$",
    r"^ *CAL: +[0-9]+ +[0-9]+ +Function call interrupts$",
    r"^IPI-2$",
    r"^SPIN-3$",
    r"^console: detached from linux",
    r"conduit> cpus$",
    r"^ +0 +0 +online +[0-9]+ .* [1-9][0-9]* +linux$",
    r"^ +1 +1 +online +[0-9]+ .* [1-9][0-9]* +linux$",
    r"conduit> restart linux$",
    // vCPU 1 spins in a loop pinned to it, so it is almost always in the guest and is made to
    // leave (1 of 1); 0 of 1 if the restart found it handling an exit.
    r#"guest "linux": restart: [01] of its 1 vCPU\(s\) on other CPUs were in the guest and left it \([0-9]+ TSC ticks\)$"#,
    r#"guest "linux" restarted from its image \(restart 1\)$"#,
    r"^restarted linux from its image",
    r#"guest "linux": first VM entry"#,
    r#"guest "linux": vCPU 1: start-up IPI, starts at 0x[0-9a-f]{2}000"#,
    r#"guest "linux": vCPU 1: first VM entry"#,
    r"linux: \[ *[0-9]+\.[0-9]+\] smp: Brought up 1 node, 2 CPUs$",
    r"conduit> quit$",
    r"sched: quit: the operator ended the run with 1 guest\(s\) still running",
    r"CONDUIT EXIT: success",
];

/// `bochs-linux-span`: Linux's two vCPUs on Bochs' two CPUs, one each, at the same time
/// (`boot/scenarios/linux-span.toml`, `docs/vcpus.md`).
pub(super) const BOCHS_LINUX_SPAN: Scenario = Scenario {
    name: "bochs-linux-span",
    machine: MachineSpec::Bochs(BochsSpec {
        cpus: 2,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/linux-span.toml"),
    expect: SPAN_EXPECT,
    input: SPAN_INPUT,
    ..BOCHS_LINUX_SMP
};

/// `kvm-linux-span`: the same on QEMU with KVM (nested VMX) and two physical CPUs. Needs VMX:
/// runs only where `/dev/kvm` and VMX are present (elsewhere listed as not run); not run on a
/// KVM host yet.
pub(super) const KVM_LINUX_SPAN: Scenario = Scenario {
    name: "kvm-linux-span",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "2",
        ..QemuSpec::KVM
    }),
    timeout_secs: 600,
    ..BOCHS_LINUX_SPAN
};

/// `bochs-linux-span`'s log: the IPI counts of `bochs-linux-smp` ([`check`]) and the guest exits
/// of both CPUs rising between the two reads of `cpus` (`placement::exits_rose`).
pub fn check_span(log: &str) -> Checked {
    let mut checked = check(log);
    let exits = super::placement::exits_rose(log);
    checked.figures.extend(exits.figures);
    checked.problem = checked.problem.or(exits.problem);
    // How the restart found vCPU 1: in the guest (made to leave, and how long that took) or not.
    if let Some(c) = RESTART.captures(log) {
        checked.figures.push(format!(
            "span_restart_left={} span_restart_tsc={}",
            &c[1], &c[2]
        ));
    }
    checked
}

/// The restart's line about the vCPUs on other CPUs.
static RESTART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"restart: ([0-9]+) of its [0-9]+ vCPU\(s\) on other CPUs were in the guest and left it \(([0-9]+) TSC ticks\)")
        .expect("valid pattern")
});

/// A per-CPU line of `/proc/interrupts` with two CPU columns: its name, then the counts.
static TWO_CPUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ *(RES|CAL): +([0-9]+) +([0-9]+) +[A-Z]").expect("valid pattern")
});

/// The figures of `bochs-linux-smp`: the RES and CAL counts of both CPUs rose between the two
/// reads (the first and the last of each line), and the instructions from the guest's first VM
/// entry to its `/init` (`linux_smp_guest_to_init_instr`, as `bochs-linux`'s
/// `linux_guest_to_init_instr`).
pub fn check(log: &str) -> Checked {
    let mut figures = Vec::new();
    if let Some(n) = crate::linux_bare::conduit_figure(log, "linux") {
        figures.push(format!("linux_smp_guest_to_init_instr={n}"));
    }
    let problem = rose(log, &mut figures).err();
    Checked { figures, problem }
}

fn rose(log: &str, figures: &mut Vec<String>) -> Result<(), String> {
    for name in ["RES", "CAL"] {
        let reads: Vec<(u64, u64)> = log
            .lines()
            .filter_map(|l| TWO_CPUS.captures(l.trim_end_matches('\r')))
            .filter(|c| &c[1] == name)
            .filter_map(|c| Some((c[2].parse().ok()?, c[3].parse().ok()?)))
            .collect();
        let (Some(first), Some(last)) = (reads.first(), reads.last()) else {
            return Err(format!("no {name} line of /proc/interrupts with two CPUs"));
        };
        figures.push(format!(
            "linux_smp_{}_per_cpu={}->{} {}->{}",
            name.to_lowercase(),
            first.0,
            last.0,
            first.1,
            last.1
        ));
        if reads.len() < 2 || last.0 <= first.0 || last.1 <= first.1 {
            return Err(format!(
                "{name} did not rise on both CPUs: CPU0 {} -> {}, CPU1 {} -> {}",
                first.0, last.0, first.1, last.1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn both_counts_must_rise_on_both_cpus() {
        let read = |res: (u64, u64), cal: (u64, u64)| {
            format!(
                "  RES:  {}  {}   Rescheduling interrupts\n  CAL:  {}  {}   Function call interrupts\n",
                res.0, res.1, cal.0, cal.1
            )
        };
        let good = read((5, 7), (1, 2)) + &read((9, 8), (4, 3));
        assert_eq!(check(&good).problem, None);
        let flat = read((5, 7), (1, 2)) + &read((9, 7), (4, 3));
        assert!(check(&flat).problem.is_some_and(|p| p.contains("RES")));
        let cal_flat = read((5, 7), (1, 2)) + &read((9, 8), (1, 3));
        assert!(check(&cal_flat).problem.is_some_and(|p| p.contains("CAL")));
        assert!(check(&read((5, 7), (1, 2))).problem.is_some());
    }
}
