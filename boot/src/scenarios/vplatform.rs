//! Issue 13, the virtual platform of OS guests under test in Bochs (docs/testing.md): the
//! `vplat` Multiboot kernel (guest/src/bin/vplat) drives the local APIC, the I/O APIC, the UART's
//! interrupt, the MSR and XCR0 policy and x2APIC mode, then powers off through ACPI S5. It runs
//! twice in one boot, under APIC virtualization and forced into software emulation
//! (`test_apic = "software"`), and both runs must print the same lines. A third guest, `vplat
//! reset-test`, resets through port 0xCF9 on its first run and triple-faults on its second; a
//! fourth, `vplat bystander`, sleeps across that and wakes on time.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec};

/// What `vplat` prints, in order, as guest `$name` (the same for both APIC modes).
macro_rules! vplat_lines {
    ($name:literal) => {
        &[
            concat!($name, r": hello from vplat"),
            concat!($name, r": long mode: entered from Multiboot, IDT loaded"),
            // BSP (bit 8), xAPIC enabled (bit 11), base 0xfee00000.
            concat!($name, r": apic base: 0xfee00900"),
            // Version 0x14, max LVT entry 6 (SDM Vol. 3A §11.4.8).
            concat!($name, r": xapic: ID 0x00000000, version 0x00060014"),
            concat!($name, r": svr: 0x1ff after enabling with spurious vector 0xff"),
            concat!(
                $name,
                r": reserved bits: TPR 0xffffff20 -> 0x20, LINT0 0xffffffff -> 0x1a7ff, DCR 0xffffffff -> 0xb; ID and version read-only: 0x0, 0x60014"
            ),
            // Bytes of the register, as APIC virtualization reads them (SDM Vol. 3C §30.4.2).
            concat!(
                $name,
                r": sub-dword reads of the version: byte 0 0x14, byte 2 0x6, word 0 0x14"
            ),
            concat!(
                $name,
                r": one-shot: initial count 1000, divide by 2: 1 interrupt on 0x40, not before 2000 us; current count 0 after it"
            ),
            concat!(
                $name,
                r": periodic: initial count 500, divide by 1: 5 interrupts on 0x40, the k-th not before k x 500 us; initial count 0 stops it"
            ),
            concat!(
                $name,
                r": tsc-deadline: 1 interrupt on 0x40, not before its deadline; IA32_TSC_DEADLINE reads 0x0 after it; armed for 1 ms then written 0: reads 0x0, no interrupt in 3 ms"
            ),
            concat!(
                $name,
                r": tpr: 0x41 held with TPR 0x50 \(IRR bit set, PPR 0x50\), delivered once TPR is 0"
            ),
            // CR8 is TPR bits 7:4 (SDM Vol. 3A §11.8.6.1): the TPR shadow under APIC
            // virtualization, CR8 exits carried out on the model in software emulation.
            concat!(
                $name,
                r": cr8: 5 -> TPR 0x50, reads 0x5, holds 0x41 until CR8 is 0; 0x10 -> #GP"
            ),
            concat!(
                $name,
                r": eoi: 0x41 in service \(ISR bit set, PPR 0x40\) holds a second 0x41 in IRR; EOI delivers it; EOI again leaves ISR and IRR clear"
            ),
            // Shorthand "self" (bits 19:18 = 01) and the vector; delivery status idle.
            concat!(
                $name,
                r": self IPI: ICR shorthand self with vector 0x42 taken once; ICR reads 0x40042"
            ),
            // Receive illegal vector (bit 6), send illegal vector (bit 5), illegal register
            // address (bit 7): SDM Vol. 3A §11.5.3, Figure 11-9.
            concat!(
                $name,
                r": esr: 0x40 after the LVT timer fired with vector 0x05, 0x20 after an ICR with vector 0x03, 0x80 after a write to offset 0x90; no interrupt taken"
            ),
            concat!(
                $name,
                r": esr: LVT error on 0x42: an ICR with vector 0x03 raised it once, ESR 0x20"
            ),
            concat!(
                $name,
                r": ipi destinations: to APIC ID 5 and all-excluding-self: nothing; all-including-self: taken once; logical flat \(LDR 0x1000000\) to 0x01: taken once, to 0x02: nothing"
            ),
            // SDM Vol. 3A §11.4.7.2: the mask bits stay set until software clears them.
            concat!(
                $name,
                r": software disable: SVR 0xff masks the LVT timer \(0x10040\) and keeps it masked on a write \(0x10040\); a self IPI is not accepted; after SVR 0x1ff it stays masked \(0x10040\)"
            ),
            // 24 pins (max redirection entry 0x17), version 0x20.
            concat!(
                $name,
                r": ioapic: ID 0x0, version 0x00170020; pin 4 edge on 0x50: the UART's THRE interrupt \(IER 0x02, MCR OUT2\) taken once, IIR 0x02"
            ),
            // Remote IRR is bit 14 of the redirection entry (82093AA §3.2.4).
            concat!(
                $name,
                r": ioapic: pin 4 level on 0x51: taken once, IIR 0x02, remote IRR set in service \(0xc051\), clear after EOI \(0x8051\)"
            ),
            concat!(
                $name,
                r": ioapic nonsense: index 0xff reads 0x0; version after a write 0x00170020; pin 5 written all ones reads 0x0001afff:0xff000000; byte, unaligned and stray writes changed nothing"
            ),
            concat!(
                $name,
                r": ioapic: pin 4 as SMI, NMI, INIT and ExtINT, then fixed to APIC ID 5: nothing delivered"
            ),
            concat!(
                $name,
                r": uart nonsense: 0xff written to every register and the divisor latch; after reinitialisation LCR 0x03 LSR 0x60 IIR 0x01 SCR 0xff, 0 byte\(s\) drained"
            ),
            concat!(
                $name,
                r": msr: RDMSR 0x1234 -> #GP, WRMSR 0x1234 -> #GP, RDMSR 0x802 in xAPIC mode -> #GP, IA32_APIC_BASE moved to 0xfed00000 -> #GP"
            ),
            concat!(
                $name,
                r": xcr0: 0x0 -> #GP, 0x4 \(AVX without SSE\) -> #GP, 0x3 -> no #GP"
            ),
            // The logical x2APIC ID of APIC ID 0 is 1 (SDM Vol. 3A §11.12.10.2); the ICR reads
            // back as written (destination 0 in bits 63:32).
            concat!(
                $name,
                r": x2apic: IA32_APIC_BASE 0xfee00d00; ID 0x0, version 0x60014, LDR 0x1; SELF IPI \(0x83f\) 0x41 and ICR \(0x830\) 0x42 taken once each; ICR reads 0x42"
            ),
            // No xAPIC page in x2APIC mode (SDM Vol. 3A §11.12.1.2), in either APIC mode.
            concat!(
                $name,
                r": x2apic: the xAPIC page reads 0x0 at the version's offset; TPR 0x0 after a write of 0x70 to its offset"
            ),
            concat!(
                $name,
                r": x2apic: one-shot timer through MSRs 0x832, 0x83e and 0x838: 1 interrupt on 0x40"
            ),
            concat!(
                $name,
                r": x2apic: RDMSR 0x809 -> #GP, WRMSR 0x802 -> #GP, EOI of 1 -> #GP, TPR bit 32 -> #GP, back to xAPIC without disabling -> #GP"
            ),
            concat!($name, r": powering off: port 0x600 = 0x34"),
            concat!(
                r#"guest ""#,
                $name,
                r#"" powered off \(ACPI S5 through the sleep control register\)"#
            ),
        ]
    };
}

/// The reset guest: its first run resets through 0xCF9, the restart triple-faults and, with
/// `max_restarts = 1` spent, stops with its state.
const RESET: &[&str] = &[
    r"reset: hello from vplat",
    r"reset: reset test: first run \(TSC below 2\^31\): waiting for 2\^31, then port 0xcf9 = 0x06",
    r#"guest "reset": reset through the reset control register \(port 0xcf9 = 0x06\)"#,
    r#"guest "reset" restarted from its image \(restart 1\)"#,
    r"reset: hello from vplat",
    r"reset: reset test: a later run \(TSC at or above 2\^31\): triple fault",
    r#"guest "reset" stopped: triple fault \(shutdown\): RIP 0x[0-9a-f]+ RSP 0x[0-9a-f]+ CR0 0x80000031 CR3 0x[0-9a-f]+ CR4 0x[0-9a-f]+ EFER 0x500 CS 0x8 GDTR 0x[0-9a-f]+\+0x17 IDTR 0x0\+0x0 .*; not restarted: 1 restart\(s\) already \(on_crash = "restart", max_restarts = 1\)"#,
];

/// The bystander: asleep across the reset guest's reset, restart and triple fault.
const BYSTANDER: &[&str] = &[
    r"bystander: hello from vplat",
    r"bystander: bystander: sleeping on a TSC-deadline timer until 2\^31 \+ 2\^28",
    r"bystander: bystander: the timer fired once, not before its deadline",
    r#"guest "bystander" powered off \(ACPI S5 through the sleep control register\)"#,
];

pub(super) const BOCHS_VPLATFORM: Scenario = Scenario {
    name: "bochs-vplatform",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/vplatform.toml"),
    expect: &[
        BANNER,
        r"config: bundle of [0-9]+ bytes, 4 guest\(s\), 1 image\(s\)",
        r#"guest "apicv": local APIC: APIC virtualization"#,
        r#"guest "reset": local APIC: APIC virtualization"#,
        r#"guest "soft": local APIC: software emulation \(test_apic = "software"\)"#,
        r#"guest "bystander": local APIC: APIC virtualization"#,
        r"sched: running 4 guest\(s\) round-robin",
        // The reset guest's end, then the bystander wakes, after both.
        r#"guest "reset" stopped: triple fault"#,
        r#"guest "bystander" powered off"#,
        r"sched: every guest has finished",
        // Software emulation reaches the local APIC through EPT violations only; APIC
        // virtualization through APIC-access, APIC-write and EOI-induced exits.
        r#"guest "apicv": stopped \(powered off \(ACPI S5 through the sleep control register\)\); [0-9]+ exits, .*APIC access: [0-9]+, virtualized EOI: [0-9]+, EPT violation: [0-9]+, .*APIC write: [0-9]+"#,
        r#"guest "reset": stopped \(triple fault"#,
        // The four MOV CR8 of the check exit (the one with bit 4 set included, #GP).
        r#"guest "soft": stopped \(powered off \(ACPI S5 through the sleep control register\)\); [0-9]+ exits, .*control-register accesses: 4, .*EPT violation: [0-9]+"#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[
        ("apicv", vplat_lines!("apicv")),
        ("soft", vplat_lines!("soft")),
        ("reset", RESET),
        ("bystander", BYSTANDER),
    ],
    forbid: VPLATFORM_FORBID,
    input: &[],
    end: End::Success,
    timeout_secs: 400,
};

/// What every guest scenario forbids (a panic, an exception, a failed self-check), no APIC exit in
/// the guest forced into software emulation and no CR8 exit in the other (TPR shadow).
const VPLATFORM_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"self-check failed",
    r#"guest "soft": stopped .*(APIC access|APIC write|virtualized EOI)"#,
    r#"guest "apicv": stopped .*control-register accesses"#,
    r"guest .* not pending in its local APIC",
];
