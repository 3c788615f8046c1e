//! Expectations for the VMX test guests (guest/): per-guest output sequences and the kernel's side.

use super::{ANY_EXCEPTION, BANNER, PANIC};

/// Forbidden wherever guests run: a guest's failed self-check (guest/README.md), the lines the
/// hostile and triple guests print only if the hypervisor let them go on, and the greeting of
/// `badstate` (the hello64 image), whose entry must be refused.
pub(super) const GUEST_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"self-check failed",
    r"hostile: write went through",
    r"triple: still alive",
    r"badstate: hello from",
];

/// `hello64` (guest/src/bin/hello64.rs), in order. Its output reaches the log as `hello64: <line>`.
pub(super) const HELLO64: &[&str] = &[
    r"hello64: hello from hello64",
    r"hello64: cpuid: signature ConduitHyprV ok, VMX hidden",
    r"hello64: cpuid: abi version 1",
    r"hello64: hlt returned",
    // LME and LMA set (0x500); NXE and SCE are the kernel's choice.
    r"hello64: rdmsr IA32_EFER -> 0x[0-9a-f]*[5d][0-9a-f]{2}\b",
    r"hello64: rdmsr 0x1234 -> #GP",
    // The one line written through hypercall 1 (HC_CONSOLE_WRITE).
    r"hello64: hypercall console ok",
    r"hello64: progress 1/4",
    r"hello64: progress 2/4",
    r"hello64: progress 3/4",
    r"hello64: progress 4/4",
    r"hello64: done",
    r#"guest "hello64" exited with code 0x64\b"#,
];

/// `real16` (guest/src/bin/real16.rs), in order.
pub(super) const REAL16: &[&str] = &[
    r"real16: hello from real16",
    r"real16: cpuid: signature ConduitHyprV ok",
    r"real16: progress 1/2",
    r"real16: progress 2/2",
    r"real16: done",
    r#"guest "real16" exited with code 0x16\b"#,
];

/// `mboot32` (guest/src/bin/mboot32.rs) as boot/scenarios/multiboot.toml configures it, in
/// order: the command line and module the Multiboot information structure handed it.
pub(super) const MBOOT32: &[&str] = &[
    r"mboot32: hello from mboot32",
    r"mboot32: mboot32: cmdline: mboot32 console=com1 answer=42",
    r"mboot32: mboot32: modules: 1",
    r"mboot32: mboot32: module 0: first-module arg=1: first bytes 7f454c4602010100",
    r"mboot32: mboot32: done",
    r#"guest "mboot32" exited with code 0x32\b"#,
];

/// `hostile`: its write to 1 GiB is at the image's first byte (section `.text.probe`).
pub(super) const HOSTILE: &[&str] = &[
    r"hostile: hello from hostile",
    r#"guest "hostile" stopped: EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x100000\b"#,
];

/// `triple`: LIDT of an empty table at 0x100000, UD2 at 0x100007.
pub(super) const TRIPLE: &[&str] = &[
    r"triple: hello from triple",
    r#"guest "triple" stopped: triple fault RIP 0x100007\b"#,
];

/// `badstate`: the hello64 image with `test_break = "cr0-pg-without-pe"`: never entered.
pub(super) const BADSTATE: &[&str] = &[
    r#"guest "badstate" refused before entry: invalid guest state: CR0\.PG set but CR0\.PE clear"#,
];

/// `irq64` (guest/src/bin/irq64.rs), in order: virtual interrupts injected into its vCPU.
pub(super) const IRQ64: &[&str] = &[
    r"irq64: hello from irq64",
    r"irq64: timer: vector 0x10, delay 0 and a delay over one hour refused",
    r"irq64: one-shot: 8 timers, 8 interrupts on vector 0x30, each ending a HLT \([0-9]+ HLTs in all\); none more in 20 slices with IF=1",
    // The virtual timer counts at the rate the hypervisor measured and tells the guest (CPUID leaf
    // 0x15): Bochs' 50 MHz; the harness checks both figures against the logged rate (`tsc`).
    r"irq64: timer: TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz \(CPUID leaf 0x15\): no one-shot of 2000 us = (99[0-9]{3}|100[0-9]{3}|101000) TSC ticks fired early \(earliest after [0-9]+\)",
    r"irq64: IF=0: held across 1000 exits with no interrupt-window exit; delivered after STI through 1 interrupt-window exit",
    r"irq64: two pending: 0x31 delivered before 0x30, both once",
    r"irq64: disarmed and replaced timers did not fire: 10 on 0x30, 2 on 0x31",
    r#"guest "irq64" exited with code 0x1a\b"#,
];

/// `irqstack`: its interrupt's frame would go below GPA 0x40000000: the first push (SS, at RSP
/// 0x40000000 - 8) is an EPT violation during delivery of the injected external interrupt.
pub(super) const IRQSTACK: &[&str] = &[
    r"irqstack: hello from irqstack",
    r"irqstack: stack at 0x40000000, interrupts on",
    r#"guest "irqstack" stopped: EPT violation at GPA 0x3ffffff8 while delivering external interrupt vector 0x30 RIP 0x[0-9a-f]+"#,
];

/// The guests of boot/scenarios/vmx-guests.toml.
pub(super) const VMX_GUESTS: &[(&str, &[&str])] = &[
    ("hello64", HELLO64),
    ("real16", REAL16),
    ("hostile", HOSTILE),
    ("triple", TRIPLE),
    ("badstate", BADSTATE),
    ("irq64", IRQ64),
    ("irqstack", IRQSTACK),
];

/// The kernel's side of a guest run on Bochs: VMX is there, and every guest ends one way or
/// another, after which the hypervisor ends the run.
pub(super) const VMX_GUESTS_EXPECT: &[&str] = &[
    BANNER,
    r"config: bundle of [0-9]+ bytes, 7 guest\(s\), 6 image\(s\)",
    r"VMX: available",
    // The one TSC rate, measured (Bochs' TSC counts 50 M instructions a second; CPUID 0x15 of the
    // Tiger Lake model claims 2419.2 MHz, Skylake-X's none or another figure): within 1 % of 50 MHz.
    r"time: TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz \(measured against the 8254's channel 2, median of 3 windows of 10 ms; ",
    r"apic: timer: [1-9][0-9]* counts/ms \(divide by 16, measured over 10 ms = (49[5-9][0-9]{3}|50[0-4][0-9]{3}|505000) TSC ticks at (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz\)",
    r"VMXON done",
    // Slice and virtual timer derived from it.
    r#"guest "hello64": 4 MiB at host 0x[0-9a-f]+, EPTP 0x[0-9a-f]+, VPID 1, slice 1000 us = (49[5-9][0-9]{2}|50[0-4][0-9]{2}|50500) TSC ticks \([0-9]+ preemption-timer ticks\), virtual timer (49[5-9][0-9]{2}|50[0-4][0-9]{2}|50500) TSC ticks per ms \(TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz\)"#,
    r#"guest "real16": 2 MiB at host 0x[0-9a-f]+, EPTP 0x[0-9a-f]+, VPID 2, .*entry Real16 \{ cs: 0, ip: 31744 \}"#,
    r"sched: running 6 guest\(s\) round-robin",
    r"sched: every guest has finished",
    // Both long-running guests were preempted by the VMX-preemption timer: they interleaved.
    r"preemption-timer exits per guest: hello64=[1-9][0-9]* real16=[1-9][0-9]* hostile=0 triple=0 irq64=[0-9]+ irqstack=[0-9]+",
    // The hypervisor's tick (local APIC timer) may interrupt a guest: "external interrupt: N".
    r#"guest "hello64": exited with code 0x64; [0-9]+ exits, (external interrupt: [0-9]+, )?CPUID: 3, HLT: 1, VMCALL: 2, I/O instruction: [0-9]+, RDMSR: 2, VMX-preemption timer expired: [1-9][0-9]*"#,
    r#"guest "real16": exited with code 0x16; [0-9]+ exits, (external interrupt: [0-9]+, )?CPUID: 1, VMCALL: 1, I/O instruction: [0-9]+, VMX-preemption timer expired: [1-9][0-9]*"#,
    r#"guest "hostile": stopped \(EPT violation at GPA 0x40000000 \(write, outside the guest's memory\) RIP 0x100000\); [0-9]+ exits, (external interrupt: [0-9]+, )?I/O instruction: [0-9]+, EPT violation: 1"#,
    r#"guest "triple": stopped \(triple fault RIP 0x100007\); [0-9]+ exits, (external interrupt: [0-9]+, )?triple fault: 1"#,
    // irq64: 12 timer interrupts injected (8 + 1 + 2 + 1), 3 of them through interrupt-window
    // exits (after STI's shadow; after STI's shadow and after the first handler's IRET); the refused RDMSR's #GP of hello64 goes through the same injection path.
    r#"guest "irq64": exited with code 0x1a; [0-9]+ exits, (external interrupt: [0-9]+, )?interrupt window: 3, CPUID: [0-9]+, HLT: [0-9]+, VMCALL: [0-9]+, I/O instruction: [0-9]+"#,
    r#"guest "irq64": 12 virtual interrupt\(s\) injected \(last vector 0x31\), 0 event\(s\) re-injected after an exit during delivery, 0 device interrupt\(s\) routed to it"#,
    r#"guest "irqstack": stopped \(EPT violation at GPA 0x3ffffff8 while delivering external interrupt vector 0x30 RIP 0x[0-9a-f]+\); [0-9]+ exits, (external interrupt: [0-9]+, )?(interrupt window: 1, )?VMCALL: 1, I/O instruction: [0-9]+, EPT violation: 1\b"#,
    r"CONDUIT EXIT: success",
];

// Issue "VT-d DMA remapping": values measured on QEMU 10 q35 + OVMF with the harness' device set.
