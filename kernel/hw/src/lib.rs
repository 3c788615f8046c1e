//! x86-64: descriptor tables, exceptions, CPU identification, MSRs, the serial port and the ways
//! out of the machine; `percpu` holds each CPU's record and `smp` starts the other CPUs and
//! carries requests between them. Each privileged-instruction class has one owning module: `msr` (RDMSR/WRMSR),
//! `serial`, `pit` (the 8254), `pm_timer` (the ACPI PM timer) and `power` (port I/O to their
//! devices), `gdt`/`idt` (LGDT/LTR/LIDT); the interrupt controllers are `apic` (local APIC and its
//! timer) and `ioapic`; `time` owns the TSC's rate, measured once at boot.
#![no_std]
#![feature(abi_x86_interrupt)]

extern crate alloc;

pub mod apic;
pub mod console;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod memory;
pub mod msr;
pub mod percpu;
pub mod pit;
pub mod pm_timer;
pub mod power;
pub mod serial;
pub mod smp;
pub mod time;
pub mod vmx;
pub mod vtd;
pub mod xsave;

/// Loads Conduit's own GDT (with a TSS: the loader's has none, and VM entry needs a host TR) and
/// its IDT on the BSP (CPU 0), so that from here on every exception is reported. The APs load
/// their own GDT and the same IDT when they start (`smp`).
pub fn init_cpu_tables() {
    gdt::init();
    idt::init();
}

/// Reads the time-stamp counter. Under Bochs it counts emulated instructions.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear in ring 0 anyway.
    unsafe { core::arch::x86_64::_rdtsc() }
}
