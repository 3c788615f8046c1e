//! Issue 15, the processors: every CPU of the machine started, its tick, its interrupts, VMXON on
//! each, cross-CPU requests.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};
use crate::script::Step;

/// An AP's MTRRs that still differ from the BSP's, or its IA32_MTRRCAP that does.
const MTRR_WARNING: &str = r"the BSP's 0x";

/// The first lines of a QEMU boot with `-smp 4` (q35's APIC IDs 0-3), after `mode` names the
/// local APIC's mode. QEMU leaves an AP's MTRRs 0 after INIT-SIPI-SIPI while OVMF set the BSP's:
/// each AP takes the BSP's.
macro_rules! four_cpus {
    ($mode:literal, $edu:literal) => {
        &[
            BANNER,
            r"smp: start code pages below 1 MiB: 0x[0-9a-f]+",
            r"MADT: 4 CPU\(s\), local APIC ids \[0, 1, 2, 3\]",
            $mode,
            r"cpu 0 \(APIC ID 0\): online \(the BSP\)",
            r"smp: start code at 0x[0-9a-f]+ \(STARTUP vector 0x[0-9a-f]{2}\), 336 KiB of stacks per AP, each stack above a guard page",
            r"cpu 1: MTRRs set from the BSP's \([1-9][0-9]* MSRs differed\)",
            r"cpu 1 \(APIC ID 1\): online, tick every 10 ms",
            r"cpu 2: MTRRs set from the BSP's \([1-9][0-9]* MSRs differed\)",
            r"cpu 2 \(APIC ID 2\): online, tick every 10 ms",
            r"cpu 3: MTRRs set from the BSP's \([1-9][0-9]* MSRs differed\)",
            r"cpu 3 \(APIC ID 3\): online, tick every 10 ms",
            r"smp: 4 of 4 CPUs online",
            r"selftest: smp \[1\] ticks rose on every online CPU: cpu 0 \(APIC ID 0\) [0-9]+ -> [0-9]+, cpu 1 \(APIC ID 1\) [0-9]+ -> [0-9]+, cpu 2 \(APIC ID 2\) [0-9]+ -> [0-9]+, cpu 3 \(APIC ID 3\) [0-9]+ -> [0-9]+",
            r"selftest: smp \[2\] cross-CPU call cpu 0 -> cpu 1 \(APIC ID 1\): ran there 9 times, round trip median [0-9]+ TSC ticks \(min [0-9]+, max [0-9]+\)",
            r"selftest: smp \[2\] cross-CPU call cpu 0 -> cpu 3 \(APIC ID 3\): ran there",
            r"selftest: smp \[3\] TLB shootdown: a page remapped with a local INVLPG only reads the new frame on 3 AP\(s\) after the shootdown",
            $edu,
            r"selftest: smp \[8\] the guard page below each AP's kernel stack is not mapped: slot 0 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+, slot 1 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+, slot 2 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+$",
            r"selftest: smp: PASS \(5 steps\)",
            r"boot complete: .* 4 CPU\(s\)",
            r"CONDUIT EXIT: success",
        ]
    };
}

/// QEMU TCG with four CPUs, interrupt remapping in xAPIC mode (`eim=off`: 8-bit destinations).
pub(super) const QEMU_SMP: Scenario = Scenario {
    name: "qemu-smp",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "4",
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/smp.toml"),
    guests: &[],
    expect: four_cpus!(
        r"apic: local APIC 0 in xAPIC at 0xfee00000 mode",
        r"selftest: smp \[4\] edu's MSI through IRTE [0-9]+ -> vector 0x[0-9a-f]+ on cpu 2 \(APIC ID 2, 8-bit xAPIC destination\): 8 raised, 8 counted on cpu 2, 0 on other CPUs"
    ),
    forbid: &[PANIC, ANY_EXCEPTION, r"did not start", MTRR_WARNING],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};

/// [`QEMU_SMP`] with `eim=on`: x2APIC mode on every CPU, 32-bit destinations.
pub(super) const QEMU_SMP_EIM: Scenario = Scenario {
    name: "qemu-smp-eim",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "4",
        eim: true,
        ..QemuSpec::TCG
    }),
    expect: four_cpus!(
        r"apic: local APIC 0 in x2APIC mode",
        r"selftest: smp \[4\] edu's MSI through IRTE [0-9]+ -> vector 0x[0-9a-f]+ on cpu 2 \(APIC ID 2, 32-bit x2APIC destination\): 8 raised, 8 counted on cpu 2, 0 on other CPUs"
    ),
    ..QEMU_SMP
};

/// Bad input: `-smp 2,maxcpus=4` lists two absent processors (not enabled: skipped, not waited
/// for), and the test image adds one nobody has (reported, marked offline; the others run).
pub(super) const QEMU_SMP_GHOST: Scenario = Scenario {
    name: "qemu-smp-ghost",
    machine: MachineSpec::Qemu(QemuSpec {
        smp: "2,maxcpus=4",
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/smp-ghost.toml"),
    expect: &[
        BANNER,
        r"MADT: 4 CPU\(s\), local APIC ids \[0, 1, 2, 3\]",
        r"smp: test: a MADT entry for APIC ID 62 added",
        r"smp: MADT processor with APIC ID 2 not started: not enabled in the MADT",
        r"smp: MADT processor with APIC ID 3 not started: not enabled in the MADT",
        r"cpu 0 \(APIC ID 0\): online \(the BSP\)",
        r"cpu 1: MTRRs set from the BSP's \([1-9][0-9]* MSRs differed\)",
        r"cpu 1 \(APIC ID 1\): online, tick every 10 ms",
        r"cpu 2 \(APIC ID 62\): did not start: no response to INIT-SIPI-SIPI within 500 ms; marked offline",
        r"smp: 2 of 3 CPUs online",
        r"selftest: smp \[1\] ticks rose on every online CPU: cpu 0 \(APIC ID 0\) [0-9]+ -> [0-9]+, cpu 1 \(APIC ID 1\) [0-9]+ -> [0-9]+$",
        r"selftest: smp \[3\] TLB shootdown: a page remapped with a local INVLPG only reads the new frame on 1 AP\(s\) after the shootdown",
        // The ghost's start slot keeps its stacks (a late arrival may still take it).
        r"selftest: smp \[8\] the guard page below each AP's kernel stack is not mapped: slot 0 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+, slot 1 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+$",
        r"selftest: smp: PASS \(4 steps\)",
        r"conduit> cpus$",
        r"^cpus: 3 numbered, 2 online$",
        // The last two columns are the per-CPU schedulers' (no guest is configured here).
        r"^  cpu  apic id  state    ticks       idle  interrupts  guest exits  guests$",
        r"^    0        0  online   +[1-9][0-9]*  +[0-9]+\.[0-9]%  +[1-9][0-9]*  +0  -$",
        r"^    1        1  online   +[1-9][0-9]*  +[0-9]+\.[0-9]%  +[1-9][0-9]*  +0  -$",
        r"^    2       62  failed: no response to INIT-SIPI-SIPI within 500 ms$",
        r"conduit> quit$",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"cpu [0-9]+ \(APIC ID [23]\)",
        MTRR_WARNING,
    ],
    input: &[
        Step::line(r"shell: ready on COM1", "cpus"),
        Step::line(r"^    2       62  failed", "quit"),
    ],
    ..QEMU_SMP
};

/// Bochs Tiger Lake with two CPUs (OVMF publishes no MADT there: the broadcast start-up): VMXON
/// on both, each CPU's tick, a cross-CPU call timed in emulated instructions, INVEPT on both,
/// then a guest runs.
pub(super) const BOCHS_SMP: Scenario = Scenario {
    name: "bochs-smp",
    machine: MachineSpec::Bochs(BochsSpec {
        cpus: 2,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/smp-bochs.toml"),
    guests: &[("hello64", &[r"hello64: cpuid: signature ConduitHyprV ok"])],
    expect: &[
        BANNER,
        r"smp: no MADT: the APs are found by a broadcast INIT-SIPI-SIPI",
        r"cpu 0 \(APIC ID 0\): online \(the BSP\)$",
        r"VMXON done \(region at 0x[0-9a-f]+\), CR0 0x[0-9a-f]+, CR4 0x[0-9a-f]+: cpu 1 \(APIC ID 1\)$",
        r"cpu 1 \(APIC ID 1\): online, tick every 10 ms \(initial count [0-9]+\); VMXON done",
        // Broadcast: a start slot for each possible AP (63); the one taken keeps its stacks.
        r"smp: the stacks of 62 unused start slot\(s\) unmapped and given back$",
        r"smp: 2 of 2 CPUs online$",
        r"selftest: smp \[1\] ticks rose on every online CPU: cpu 0 \(APIC ID 0\) [0-9]+ -> [0-9]+, cpu 1 \(APIC ID 1\) [0-9]+ -> [0-9]+",
        r"selftest: smp \[2\] cross-CPU call cpu 0 -> cpu 1 \(APIC ID 1\): ran there 9 times, round trip median [0-9]+ TSC ticks \(min [0-9]+, max [0-9]+\)",
        r"selftest: smp \[3\] TLB shootdown: a page remapped with a local INVLPG only reads the new frame on 1 AP\(s\) after the shootdown",
        r"selftest: smp \[8\] the guard page below each AP's kernel stack is not mapped: slot 0 guard 0x[0-9a-f]+ not mapped, stack bottom -> 0x[0-9a-f]+$",
        r"selftest: smp: PASS \(4 steps\)",
        r"VMXON done \(region at 0x[0-9a-f]+\), CR0 0x[0-9a-f]+, CR4 0x[0-9a-f]+: cpu 0 \(APIC ID 0\)$",
        r"selftest: smp \[5\] INVEPT single-context on 2 CPU\(s\) in VMX operation",
        r"selftest: smp \[6\] INVVPID single-context on 2 CPU\(s\) in VMX operation",
        r"selftest: smp \[7\] a VMCS written on another CPU, VMCLEARed there by request, reads the same on cpu 0: cpu 1 \(0xc0de0001\)$",
        r"selftest: smp-vmx: PASS \(3 steps\)",
        r"CONDUIT EXIT: success",
    ],
    // Bochs' APs start with the BSP's MTRRs: nothing to copy.
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"did not start",
        MTRR_WARNING,
        r"MTRRs set from the BSP's",
    ],
    input: &[],
    end: End::Success,
    timeout_secs: 600,
};
