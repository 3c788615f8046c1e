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
const EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "intx""#,
    r"MADT: ISA IRQ 10 -> GSI 10 \(level, active high\)",
    r"pci: 00:04\.0 1234:11e8 class 00:ff:00",
    r"pci:     INTx: pin INTA#, Interrupt Line 10$",
    // The route: GSI from the Line and the override; an IRTE verifying the I/O APIC's source-id.
    r"irq: guest 0: INTx of 00:04\.0 \(pin INTA#, Interrupt Line 10\) -> GSI 10 \(I/O APIC 0 input 10, level, active high\) -> IRTE 0 \(remappable format, source-id ff:00\.0 verified\) -> vector 0x20; the guest's virtual I/O APIC input 17; redirection entry 0x0001000000008020$",
    r#"guest "os": 00:01\.0 INTx: pin INTA#, Interrupt Line 17: GSI 10 -> its virtual I/O APIC input 17 \(level; masked at the I/O APIC from each interrupt until the guest's EOI\)$"#,
    // The second edu shares IRQ 11 with the root ports the hypervisor keeps: MSI only.
    r#"guest "os": INTx of 00:06\.0 refused: its line \(GSI 11\) is shared with 00:02\.0 \(kept by the hypervisor\), which the guest does not own; 00:06\.0 is assigned with MSI and MSI-X only$"#,
    // One virtual input per physical input: the other functions on GSI 10 keep MSI.
    r#"guest "os": INTx of 00:1f\.2 refused: GSI 10 already carries the INTx of 00:04\.0 for guest 0; "#,
    r#"guest "os": INTx of 00:1f\.3 refused: GSI 10 already carries the INTx of 00:04\.0 for guest 0; "#,
    r#"selftest: intx \[1\] guest "os": edu 00:04\.0 at its 00:01\.0: Interrupt Pin 1 \(INTA#\), Interrupt Line 17 = its I/O APIC input 16 \+ \(\(1 \+ 1 - 1\) mod 8\); the physical line: Interrupt Line 10 -> GSI 10 \(I/O APIC input 10\) -> host vector 0x20 \(IRTE 0\)$"#,
    r#"selftest: intx \[2\] guest "os": local APIC enabled, I/O APIC input 17 = 0x0000a061 \(vector 0x61, level, active low, unmasked\); the physical input unmasked$"#,
    r"selftest: intx \[3\] 8 raises of edu 00:04\.0: 8 interrupts on host vector 0x20, each with the physical input masked until the guest's EOI; 8 injected as vector 0x61 through the guest's I/O APIC input 17; the input unmasked after each EOI$",
    r#"guest "os": MSI of 00:06\.0 \(its vector 0x62\) routed: IRTE 1 -> vector 0x21"#,
    r"selftest: intx \[4\] edu 00:06\.0 at its 00:02\.0: MSI programmed by the guest \(vector 0x62\) delivered and injected$",
    r"irq: interrupt flood from the INTx of 00:04\.0 \(guest 0, GSI 10, vector 0x20\): 65 interrupts within one tick \(limit 64\) at tick [0-9]+: the line is left masked at the I/O APIC; [0-9]+ suppressed since; the guest's other interrupts are not affected$",
    r"selftest: intx \[5\] edu 00:04\.0 raised and never acknowledged: [1-9][0-9]* interrupts delivered, [1-9][0-9]* ended by the guest's EOI, then cut off by the flood guard \(physical input masked\)$",
    r#"selftest: intx \[6\] after the cut-off: edu 00:06\.0's MSI still reaches guest "os" \([0-9]+ interrupts counted for it in all\)$"#,
    r"selftest: intx: PASS \(6 steps\)",
    r#"guest "os": interrupts [0-9]+, DMA faults 0, interrupt-remapping faults 0 \(functions 00:04\.0, 00:06\.0, 00:1f\.2, 00:1f\.3\)$"#,
    r"boot complete: .*DMAR present, DMA remapping on, interrupt remapping on",
    r"CONDUIT EXIT: success",
];

/// Nothing fails, no fault, no BAR left unmapped, the flood reported once.
const FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"FAIL",
    r"vtd: DMA fault",
    r"interrupt remapping fault",
    r"not mapped",
    r"not routed",
    r"interrupt flood from (?:[^t]|t[^h])",
];

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

/// The refusal names both functions and the GSI; edu is still assigned.
const SHARED_EXPECT: &[&str] = &[
    BANNER,
    r#"configuration "intx-shared""#,
    r#"guest "os": assigned 00:04\.0 \(00:04\.0\) in IOMMU domain 1$"#,
    r#"guest "os": 00:04\.0 appears at 00:01\.0 "#,
    r#"guest "os": INTx of 00:04\.0 refused: its line \(GSI 10\) is shared with 00:1f\.2 \(kept by the hypervisor\), which the guest does not own; 00:04\.0 is assigned with MSI and MSI-X only$"#,
    r"boot complete: .*DMAR present, DMA remapping on, interrupt remapping on",
    r"CONDUIT EXIT: success",
];

/// No INTx route is made.
const SHARED_FORBID: &[&str] = &[PANIC, ANY_EXCEPTION, r"FAIL", r"irq: guest [0-9]+: INTx of"];

/// `qemu-intx-shared` (boot/scenarios/intx-shared.toml).
pub const QEMU_INTX_SHARED: Scenario = Scenario {
    name: "qemu-intx-shared",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/intx-shared.toml"),
    guests: &[],
    expect: SHARED_EXPECT,
    forbid: SHARED_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 180,
};
