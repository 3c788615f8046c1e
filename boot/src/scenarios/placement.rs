//! Issue 15, placement: which CPU runs which guest. `bochs-smp-guests` (two CPUs under VMX: Linux
//! on CPU 0 and two test guests on CPU 1 at the same time, a triple fault on CPU 1 while CPU 0's
//! guest runs on, the shell on CPU 0 stopping and restarting a guest on CPU 1) and
//! `qemu-smp-placement` (four CPUs, no VMX: a guest's device interrupt routed to its CPU, a
//! spanning guest's to the CPU of the vCPU it is for, and a guest naming a CPU the machine lacks
//! refused).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};
use crate::script::{Input, Step};

/// `bochs-smp-guests`: what the harness types. `cpus` is read twice while both CPUs' guests run
/// (the guest exits handled by CPU 0, running `linux`, and by CPU 1, running `tick`, must rise
/// between the two: [`exits_rose`]), `vms` shows where each guest runs; then `tick` is stopped
/// and restarted from the shell on CPU 0.
pub const BOCHS_INPUT: &[Step] = &[
    Step::line(r"tick: round 2/60", "cpus"),
    Step::line(r"^ +1 +1 +online ", "vms"),
    Step {
        wait: r"^  triple: stopped",
        send: Input::Raw(b""),
    },
    Step::line(r"tick: round 4/60", "cpus"),
    Step::line(r"^ +1 +1 +online ", "stop tick"),
    Step::line(
        r"^  carried out by cpu 1: request round trip",
        "restart tick",
    ),
    Step::line(r"tick: round 1/60", "vms"),
    Step {
        wait: r"^  tick: (running|halted)",
        send: Input::Raw(b""),
    },
    // Linux has run on CPU 0 all along: its first console line (the kernel's banner, printed
    // once its serial console is up) ends the run.
    Step::line(r"linux: \[ *0\.000000\] Linux version", "quit"),
];

/// `bochs-smp-guests`: what the console must show, in order.
pub const BOCHS_EXPECT: &[&str] = &[
    BANNER,
    r"cpu 1 \(APIC ID 1\): online, tick every 10 ms \(initial count [0-9]+\); VMXON done",
    r"smp: 2 of 2 CPUs online$",
    r#"guest "linux": on cpu 0 \(APIC ID 0\), shared$"#,
    r#"guest "tick": on cpu 1 \(APIC ID 1\), shared$"#,
    r#"guest "triple": on cpu 1 \(APIC ID 1\), shared$"#,
    r"sched: running 3 guest\(s\) round-robin on 2 CPU\(s\): cpu 0: linux; cpu 1: tick, triple$",
    // CPU 1's triple fault stops that guest alone; CPU 0's Linux runs on (its exits rise between
    // the two reads of `vms` below, and its banner comes at the end).
    r#"guest "triple" stopped: triple fault RIP 0x100007"#,
    // The first read of `cpus`: both CPUs online, each with its guests.
    r"conduit> cpus$",
    r"^cpus: 2 numbered, 2 online$",
    r"^ +0 +0 +online +[0-9]+ .* [1-9][0-9]* +linux$",
    r"^ +1 +1 +online +[0-9]+ .* [1-9][0-9]* +tick, triple$",
    // `vms`: every guest with the CPU it runs on.
    r"conduit> vms$",
    r"^3 guest\(s\), 2 runnable, 0 not created",
    r"^  linux: running",
    r"^    vCPU 0 on cpu 0 \(APIC ID 0\)$",
    r"^  tick: (running|halted)",
    r"^    vCPU 0 on cpu 1 \(APIC ID 1\)$",
    r"^  triple: stopped \(triple fault RIP 0x100007",
    r"^    vCPU 0 on cpu 1 \(APIC ID 1\)$",
    r"conduit> cpus$",
    // `stop` and `restart` of a guest on CPU 1, typed on CPU 0: carried out by CPU 1.
    r"conduit> stop tick$",
    r"^stopped tick: it is not entered again",
    r"^  carried out by cpu 1: request round trip [0-9]+ TSC ticks, of which the command itself [0-9]+ and the cross-CPU request [0-9]+$",
    r"conduit> restart tick$",
    r"^restarted tick from its image",
    r"^  carried out by cpu 1: request round trip [0-9]+ TSC ticks, of which the command itself [0-9]+ and the cross-CPU request [0-9]+$",
    r"guest::vuart: linux: \[ *0\.000000\] Linux version",
    r"conduit> quit$",
    r"sched: quit: the operator ended the run with [12] guest\(s\) still running",
    r"CONDUIT EXIT: success",
];

/// `bochs-smp-guests`: each guest's own lines, in order.
pub const BOCHS_GUESTS: &[(&str, &[&str])] = &[
    (
        "tick",
        &[
            r"tick: hello from ticker64",
            r"tick: round 4/60",
            r#"guest "tick" stopped: by operator"#,
            r#"guest "tick" restarted from its image \(restart 1\)"#,
            r"tick: hello from ticker64",
            r"tick: round 1/60",
        ],
    ),
    ("triple", &[r"triple: hello from triple"]),
    ("linux", &[r"linux: \[ *0\.000000\] Linux version"]),
];

pub const BOCHS_SMP_GUESTS: Scenario = Scenario {
    name: "bochs-smp-guests",
    machine: MachineSpec::Bochs(BochsSpec {
        cpus: 2,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/smp-guests.toml"),
    expect: BOCHS_EXPECT,
    guests: BOCHS_GUESTS,
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"did not take the request",
        r"^error: ",
    ],
    input: BOCHS_INPUT,
    end: End::Success,
    timeout_secs: 600,
};

/// The lines of a `qemu-smp-placement` boot whose IRTE destinations are written in `$width`
/// (`XApic` or `X2Apic`: the table's width). Guest `a` on CPU 2; guest `span`, vCPU 0 on CPU 1
/// and vCPU 1 on CPU 3, its MSI addressed to its local APIC 1, then 0.
macro_rules! placement_lines {
    ($width:literal) => {
        &[
            BANNER,
            r"smp: 4 of 4 CPUs online",
            r#"guest "a": on cpu 2 \(APIC ID 2\), shared$"#,
            r#"guest "far" refused: `guest "far"\.cpus`: CPU 7: this machine has 4 CPU\(s\) \(0 to 3\)$"#,
            r#"guest "b": on cpu 0 \(APIC ID 0\), shared \(default placement: round-robin over the online CPUs\)$"#,
            r#"guest "span": on cpu 1 \(APIC ID 1\), shared; its vCPUs span 2 CPUs: vCPU 0 on cpu 1, vCPU 1 on cpu 3$"#,
            r#"irq: guest 0: MSI of 00:04\.0 -> IRTE [0-9]+ -> vector 0x[0-9a-f]+ \(the guest's vector 0x53\) on APIC 2 "#,
            concat!(
                r#"placement-test: guest "a" on cpu 2 \(APIC ID 2\): 00:01\.0 \(00:04\.0\) MSI -> IRTE [0-9]+ destination "#,
                $width,
                r#"\(2\) -> host vector 0x[0-9a-f]+; 8 raises, 8 delivered to the guest with its vector 0x53 pending; taken by cpu 0: 0, cpu 1: 0, cpu 2: 8, cpu 3: 0$"#
            ),
            // The spanning guest's MSI, for its vCPU 1 (on CPU 3), then for its vCPU 0 (CPU 1).
            r#"irq: guest 3: MSI of 00:06\.0 -> IRTE [0-9]+ -> vector 0x[0-9a-f]+ \(the guest's vector 0x63 for its vCPU 1\) on APIC 3 \(fixed, edge, physical\)"#,
            r#"irq: guest 3: MSI of 00:06\.0 -> IRTE [0-9]+ -> vector 0x[0-9a-f]+ \(the guest's vector 0x64 for its vCPU 0\) on APIC 1 \(fixed, edge, physical\)"#,
            concat!(
                r#"placement-test: guest "span" spans cpu 1 and cpu 3: 00:01\.0 \(00:06\.0\) MSI to its local APIC 1 \(vector 0x63\) -> IRTE [0-9]+ destination "#,
                $width,
                r#"\(3\) \(cpu 3\); 8 raises, 8 delivered, taken by cpu 0: 0, cpu 1: 0, cpu 2: 0, cpu 3: 8; vCPU 0's IRR empty, vCPU 1's IRR 0x63$"#
            ),
            concat!(
                r#"placement-test: guest "span" spans cpu 1 and cpu 3: 00:01\.0 \(00:06\.0\) MSI to its local APIC 0 \(vector 0x64\) -> IRTE [0-9]+ destination "#,
                $width,
                r#"\(1\) \(cpu 1\); 8 raises, 8 delivered, taken by cpu 0: 0, cpu 1: 8, cpu 2: 0, cpu 3: 0; vCPU 0's IRR 0x64, vCPU 1's IRR 0x63$"#
            ),
            r"selftest: placement: PASS \(7 steps\)",
            r"CONDUIT EXIT: success",
        ]
    };
}

/// The second edu (00:06.0), for the spanning guest.
const SECOND_EDU: &[&str] = &["-device", "edu,addr=6.0"];

/// `qemu-smp-placement`: four CPUs (q35: APIC IDs 0-3), interrupt remapping with 8-bit xAPIC
/// destinations, no VMX, a second edu.
pub const QEMU_SMP_PLACEMENT: Scenario = Scenario {
    name: "qemu-smp-placement",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "4",
        extra_args: SECOND_EDU,
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/smp-placement.toml"),
    guests: &[],
    expect: placement_lines!("XApic"),
    forbid: &[PANIC, ANY_EXCEPTION, r"did not start", r"FAIL"],
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// [`QEMU_SMP_PLACEMENT`] with `eim=on`: x2APIC mode, 32-bit destinations.
pub const QEMU_SMP_PLACEMENT_EIM: Scenario = Scenario {
    name: "qemu-smp-placement-eim",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "4",
        eim: true,
        extra_args: SECOND_EDU,
        ..QemuSpec::TCG
    }),
    expect: placement_lines!("X2Apic"),
    ..QEMU_SMP_PLACEMENT
};

/// `qemu-smp-placement-ghost`: a guest placed on a CPU that did not start is refused naming the
/// key; the other guest is placed.
pub const QEMU_SMP_PLACEMENT_GHOST: Scenario = Scenario {
    name: "qemu-smp-placement-ghost",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "2,maxcpus=4",
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/smp-placement-ghost.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"cpu 2 \(APIC ID 62\): did not start: no response to INIT-SIPI-SIPI within 500 ms; marked offline",
        r"smp: 2 of 3 CPUs online",
        r#"guest "lost" refused: `guest "lost"\.cpus`: CPU 2 is not online \(APIC ID 62: did not start: no response to INIT-SIPI-SIPI within 500 ms\)$"#,
        r#"guest "ok": on cpu 1 \(APIC ID 1\), shared$"#,
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r#"guest "lost": on cpu"#],
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};

/// CPU `cpu`'s guest exits in each answer to `cpus` (the `guest exits` column of its row: index,
/// APIC ID, state, ticks, idle share, interrupts, guest exits, guests), in log order.
fn exits_of(lines: &[&str], cpu: usize) -> Vec<u64> {
    let index = cpu.to_string();
    lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|t| t.len() > 7 && t[0] == index && t[2] == "online")
        .filter_map(|t| t[6].parse().ok())
        .collect()
}

/// `bochs-smp-guests`: between the first two reads of `cpus` the guest exits handled by CPU 0
/// (running `linux`) and by CPU 1 (running `tick`) both rose: both CPUs ran guests at once.
pub fn exits_rose(log: &str) -> crate::linux_log::Checked {
    let lines: Vec<&str> = log.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut figures = Vec::new();
    let mut problem = None;
    for cpu in [0, 1] {
        match exits_of(&lines, cpu).as_slice() {
            [first, second, ..] => {
                figures.push(format!("cpu{cpu}_guest_exits={first}->{second}"));
                if second <= first && problem.is_none() {
                    problem = Some(format!(
                        "cpu {cpu}: guest exits did not rise between two reads of `cpus` ({first} -> {second})"
                    ));
                }
            }
            _ => {
                problem.get_or_insert_with(|| {
                    format!("cpu {cpu}: fewer than two `cpus` answers with its exits")
                });
            }
        }
    }
    crate::linux_log::Checked { figures, problem }
}

/// `bochs-smp-dedicated`: a dedicated CPU runs its guest without time slices; the shell on CPU 0
/// stops and restarts it there.
pub const BOCHS_SMP_DEDICATED: Scenario = Scenario {
    name: "bochs-smp-dedicated",
    machine: MachineSpec::Bochs(BochsSpec {
        cpus: 2,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/smp-dedicated.toml"),
    expect: &[
        BANNER,
        r"smp: 2 of 2 CPUs online$",
        r#"guest "hello64": on cpu 0 \(APIC ID 0\), shared \(default placement: round-robin over the online CPUs\)$"#,
        r#"guest "tick": on cpu 1 \(APIC ID 1\), dedicated$"#,
        r"sched: running 2 guest\(s\) round-robin on 2 CPU\(s\): cpu 0: hello64; cpu 1: tick$",
        // A request to the dedicated CPU (the shell's `stop` and `restart` typed on CPU 0).
        r"conduit> stop tick$",
        r"^  carried out by cpu 1: request round trip [0-9]+ TSC ticks, of which the command itself [0-9]+ and the cross-CPU request [0-9]+$",
        r"conduit> restart tick$",
        r"^  carried out by cpu 1: request round trip [0-9]+ TSC ticks, of which the command itself [0-9]+ and the cross-CPU request [0-9]+$",
        r"sched: every guest has finished",
        // 60 rounds of 10 M instructions each: a shared CPU would have preempted it hundreds of
        // times (1 ms slices).
        r"preemption-timer exits per guest: hello64=[0-9]+ tick=0$",
        r#"guest "tick": exited with code 0x7c; [0-9]+ exits, (external interrupt: [0-9]+, )?HLT: 60, VMCALL: 1, I/O instruction: [0-9]+; "#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[
        (
            "tick",
            &[
                r"tick: hello from ticker64",
                r#"guest "tick" stopped: by operator"#,
                r"tick: hello from ticker64",
                r"tick: round 60/60",
            ],
        ),
        ("hello64", &[r"hello64: cpuid: signature ConduitHyprV ok"]),
    ],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"did not take the request",
        r"^error: ",
    ],
    input: &[
        Step::line(r"tick: round 3/60", "stop tick"),
        Step::line(
            r"^  carried out by cpu 1: request round trip",
            "restart tick",
        ),
    ],
    end: End::Success,
    timeout_secs: 600,
};

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_READS: &str = "conduit> cpus\ncpus: 2 numbered, 2 online\n  cpu  apic id  state    ticks       idle  interrupts  guest exits  guests\n    0        0  online          40   10.0%          50           10  linux\n    1        1  online          41   20.0%          60            5  tick, triple\nconduit> vms\n  tick: running; 4 MiB\nconduit> cpus\n    0        0  online          80   10.0%          90           30  linux\n    1        1  online          81   20.0%         100            9  tick, triple\n";

    #[test]
    fn rising_exits_pass_and_flat_ones_fail() {
        let c = exits_rose(TWO_READS);
        assert_eq!(c.problem, None);
        assert_eq!(
            c.figures,
            ["cpu0_guest_exits=10->30", "cpu1_guest_exits=5->9"]
        );
        let flat = TWO_READS.replace("100            9", "100            5");
        let c = exits_rose(&flat);
        assert!(c.problem.is_some_and(|p| p.contains("cpu 1:")));
        let once = TWO_READS.split("conduit> vms").next().unwrap_or("");
        assert!(exits_rose(once).problem.is_some());
    }
}
