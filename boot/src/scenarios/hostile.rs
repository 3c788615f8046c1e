//! Issue 16, Must-show 3: the hostile-guest catalogue in one Bochs boot
//! (`boot/scenarios/hostile.toml`). Sixteen kinds of hostile guest (`vplat hostile=<kind>`,
//! guest/src/bin/vplat/hostile.rs) and one whose VM entry the hypervisor refuses run next to a
//! well-behaved guest (`good`: every check of the virtual platform, then ACPI S5) and a Linux
//! guest. Each hostile guest is stopped with the reason, RIP and GPA, or contained (it sees #UD,
//! #GP or nothing, says what it saw and exits with 0); the well-behaved guest finishes its checks;
//! once Linux is at its shell the harness stops the guest halted for ever, prints the catalogue's
//! table (`vms`) and types into Linux's console, which answers after the last hostile guest ended.
//!
//! Covered elsewhere, on QEMU (VT-d and SR-IOV): DMA outside a guest's memory (`qemu-nvme-vf`,
//! `qemu-vtd-edu`), an interrupt flood (`qemu-intremap`), forged MSI and MSI-X messages and
//! forbidden delivery modes (`qemu-igb-vf`, `qemu-control`).

use super::{BANNER, Config, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec};
use crate::script::Step;

/// Bochs' e1000 in slot 2, for `h-config-fuzz`.
const MACHINE: BochsSpec = BochsSpec {
    extra_lines: super::control::BOCHS_E1000,
    ..BochsSpec::DEFAULT
};

/// What the harness types once Linux is at its shell.
const INPUT: &[Step] = &[
    Step::line(r"linux: conduit-initramfs: ready", "stop h-hlt-cli"),
    Step::line(r"^stopped h-hlt-cli: ", "vms"),
    Step::line(r"^  h-invalid-state: not created", "console linux"),
    Step::line(
        r"^console: attached to linux's serial port",
        "echo ALIVE-$((40+2)) after $(cat /proc/uptime)",
    ),
    Step::line(r"^ALIVE-42 after ", "poweroff -f"),
];

/// The run's order: Linux at its shell, the catalogue's table, Linux answering.
const EXPECT: &[&str] = &[
    BANNER,
    r"config: bundle of [0-9]+ bytes, 19 guest\(s\)",
    r#"guest "h-invalid-state" refused before entry: invalid guest state: TR: TR must be usable"#,
    r#"guest "h-config-fuzz": assigned 00:03\.0 \(8086:100e\) WITHOUT DMA remapping \(unsafe_no_iommu\)"#,
    r"linux: conduit-initramfs: ready \(6\.1\.",
    r"conduit> stop h-hlt-cli$",
    r#"guest "h-hlt-cli" stopped: by operator"#,
    r"conduit> vms$",
    // The catalogue's table: kind (the guest's name), outcome and reason.
    r"^18 guest\(s\), 1 runnable, 1 not created; TSC ",
    r"^  linux: [^;]+; 128 MiB at host",
    r"^  good: stopped \(powered off \(ACPI S5 through the sleep control register\)\); 4 MiB at host 0x[0-9a-f]+, VPID [0-9]+, [0-9.]+ ms in guest(, [0-9]+ interrupt message\(s\) to nobody)?$",
    r"^  h-write-outside: stopped \(EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x[0-9a-f]+\); ",
    r"^  h-exec-outside: stopped \(EPT violation at GPA 0x40000000 \(instruction fetch, outside the guest's memory\) RIP 0x40000000\); ",
    r"^  h-exec-mmio: stopped \(instruction fetch from emulated memory at 0xe0000000 RIP 0xe0000000\); ",
    r"^  h-exec-apic: stopped \(instruction fetch from emulated memory at 0xfee00000 RIP 0xfee00000\); ",
    r"^  h-triple-fault: stopped \(triple fault \(shutdown\): RIP 0x[0-9a-f]+ ",
    r"^  h-vmx: exited with code 0x0; ",
    r"^  h-xcr0: exited with code 0x0; ",
    r"^  h-syscall-msrs: exited with code 0x0; ",
    r"^  h-foreign-ipi: exited with code 0x0; .*, 262 interrupt message\(s\) to nobody$",
    r"^  h-ipi-storm: exited with code 0x0; ",
    // Its second vCPU took every NMI of the storm (issue 15, "Bad input").
    r"^  h-init-storm: exited with code 0x0; ",
    r"^    vCPU 1: started, VPID [0-9]+, [0-9]+\.[0-9]{3} ms in guest, [0-9]+ exits, 300 NMI\(s\) injected, 300 start-up IPI\(s\) taken$",
    r#"^  h-reset-cf9: stopped \(reset through the reset control register \(port 0xcf9 = 0x06\) \(on_crash = "stop"\)\); "#,
    r#"^  h-reset-kbd: stopped \(reset through the keyboard controller \(port 0x64 = 0xfe\) \(on_crash = "stop"\)\); "#,
    r"^  h-hlt-cli: stopped \(by operator\); ",
    r"^  h-rep-io: stopped \(string I/O to port 0x3f8 is not supported RIP 0x[0-9a-f]+\); ",
    r"^  h-config-fuzz: exited with code 0x0; ",
    r"^  h-invalid-state: not created \(refused before entry: invalid guest state: TR: TR must be usable\)$",
    // Linux answers after the last hostile guest ended.
    r"conduit> console linux$",
    r"^ALIVE-42 after [0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}$",
    r#"guest "linux" powered off \(ACPI S5 through the sleep control register\)"#,
    r"sched: every guest has finished",
    r"CONDUIT EXIT: success",
];

/// Never seen: the hypervisor's own failure, a hostile guest that got past its act, a problem in
/// Linux's kernel log, Linux or the good guest stopped, a failed check of the good guest.
const FORBID: &[&str] = &[
    super::PANIC,
    super::ANY_EXCEPTION,
    r"went through",
    r"self-check failed",
    r"did not raise #UD",
    r"linux: .*(Kernel panic|BUG:|Oops|WARNING:|Call Trace)",
    r#"guest "linux" stopped"#,
    r#"guest "good" stopped"#,
    r#"guest "h-[a-z0-9-]+" exited with code 0x([1-9a-f]|0[0-9a-f])"#,
];

/// `bochs-hostile`.
pub(super) const BOCHS_HOSTILE: Scenario = Scenario {
    name: "bochs-hostile",
    machine: MachineSpec::Bochs(MACHINE),
    config: Config::File("boot/scenarios/hostile.toml"),
    expect: EXPECT,
    guests: &[
        (
            "h-write-outside",
            // Stopped in its first slices; the guests run interleaved, so each on its own.
            &[
                r#"guest "h-write-outside" stopped: EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x[0-9a-f]+$"#,
            ],
        ),
        (
            "h-exec-outside",
            &[
                r#"guest "h-exec-outside" stopped: EPT violation at GPA 0x40000000 \(instruction fetch, outside the guest's memory\) RIP 0x40000000$"#,
            ],
        ),
        (
            "h-exec-mmio",
            &[
                r#"guest "h-exec-mmio" stopped: instruction fetch from emulated memory at 0xe0000000 RIP 0xe0000000$"#,
            ],
        ),
        (
            "h-exec-apic",
            &[
                r#"guest "h-exec-apic" stopped: instruction fetch from emulated memory at 0xfee00000 RIP 0xfee00000$"#,
            ],
        ),
        (
            "h-triple-fault",
            &[
                r#"guest "h-triple-fault" stopped: triple fault \(shutdown\): RIP 0x[0-9a-f]+ RSP 0x[0-9a-f]+ .* IDTR 0x0\+0x0 IDT-vectoring info 0x0 \(on_crash = "stop"\)$"#,
            ],
        ),
        (
            "h-reset-cf9",
            &[
                r#"guest "h-reset-cf9" stopped: reset through the reset control register \(port 0xcf9 = 0x06\) \(on_crash = "stop"\)$"#,
            ],
        ),
        (
            "h-reset-kbd",
            &[
                r#"guest "h-reset-kbd" stopped: reset through the keyboard controller \(port 0x64 = 0xfe\) \(on_crash = "stop"\)$"#,
            ],
        ),
        (
            "h-rep-io",
            &[
                r#"guest "h-rep-io" stopped: string I/O to port 0x3f8 is not supported RIP 0x[0-9a-f]+$"#,
            ],
        ),
        (
            "h-vmx",
            &[
                r"h-vmx: hostile vmx: 12 VMX instructions, 12 raised #UD$",
                r#"guest "h-vmx" exited with code 0x0$"#,
            ],
        ),
        (
            "h-xcr0",
            &[
                r"h-xcr0: hostile xcr0: 6 invalid XCR0 values, 6 refused with #GP \(6 #GP taken\); 0x3 accepted: true$",
                r#"guest "h-xcr0" exited with code 0x0$"#,
            ],
        ),
        (
            "h-syscall-msrs",
            &[
                r"h-syscall-msrs: hostile syscall-msrs: LSTAR 0xffff800000100000, SYSENTER_EIP 0xffff800000400000, KERNEL_GS_BASE 0xffffffff80000000 written; after 200 yields 6 of 6 read back as written$",
                r#"guest "h-syscall-msrs" exited with code 0x0$"#,
                // Afterwards the hypervisor's own SYSCALL path still works: Linux's scan of its
                // PCI bus is served by the control task (entered with SYSRET, left with SYSCALL
                // through the hypervisor's LSTAR, not the guest's).
                r"linux: \[ *[0-9]+\.[0-9]+\] PCI host bridge to bus 0000:00$",
                r"linux: \[ *[0-9]+\.[0-9]+\] PCI: Using ACPI for IRQ routing$",
            ],
        ),
        (
            "h-foreign-ipi",
            &[
                r"h-foreign-ipi: hostile foreign-ipi: 262 IPIs to APIC IDs it does not own \(INIT, SIPI, NMI, fixed, logical, all-excluding-self\); 0 came back$",
                r#"guest "h-foreign-ipi" exited with code 0x0$"#,
            ],
        ),
        (
            "h-ipi-storm",
            &[
                r"h-ipi-storm: hostile ipi-storm: 20000 self-IPIs sent, 20000 taken$",
                r#"guest "h-ipi-storm" exited with code 0x0$"#,
            ],
        ),
        (
            "h-init-storm",
            &[
                r"h-init-storm: hostile init-storm: 300 INIT, 300 start-up and 300 NMI IPIs to its own vCPU 1$",
                r#"guest "h-init-storm" exited with code 0x0$"#,
            ],
        ),
        (
            "h-config-fuzz",
            &[
                r"h-config-fuzz: hostile config-fuzz: 20000 random configuration accesses; 00:01\.0 reads 0x100e8086 \(before 0x100e8086\), 00:1f\.0 reads 0xffffffff$",
                r#"guest "h-config-fuzz" exited with code 0x0$"#,
            ],
        ),
        (
            "good",
            &[
                r"good: x2apic: RDMSR 0x809 -> #GP",
                r"good: powering off: port 0x600 = 0x34$",
                r#"guest "good" powered off \(ACPI S5 through the sleep control register\)"#,
            ],
        ),
    ],
    forbid: FORBID,
    input: INPUT,
    end: End::Success,
    timeout_secs: 900,
};
