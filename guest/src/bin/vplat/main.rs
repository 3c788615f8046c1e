//! `vplat`: a Multiboot kernel that drives the virtual platform of an OS guest the way an
//! operating system does, and prints what it found, one line per check (`guest/README.md` lists
//! the lines). A failed check prints `self-check failed: …` and exits with [`EXIT_FAIL`]; the run
//! ends with ACPI S5 through the sleep control register.
//!
//! It enters long mode itself (`boot.rs`), then checks, in order: the local APIC in xAPIC mode
//! (ID, version, SVR, reserved bits, the timer in one-shot, periodic and TSC-deadline modes, TPR,
//! self-IPIs, EOI, the error status register), the I/O APIC (version, the UART's interrupt on pin
//! 4 edge- and level-triggered, remote IRR), nonsense writes to the I/O APIC and the UART, MSRs
//! outside the policy and invalid XCR0 values (#GP), and x2APIC mode (`checks.rs`).
//!
//! With `cmdline` containing `reset-test` it checks the reset paths instead, with `bystander` it
//! sleeps across another guest's reset (`reset.rs`), with `hostile=<kind>` it is one kind of
//! hostile guest (`hostile.rs`).
#![no_std]
#![no_main]

mod apic;
mod boot;
mod checks;
mod devices;
mod hostile;
mod reset;

use conduit_clock::{Leaf15, Rate};
use conduit_guest::{exit, println};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Multiboot 0.6.96 §3.2: EAX at entry.
const BOOTLOADER_MAGIC: u64 = 0x2bad_b002;
const EXIT_FAIL: u64 = 0xe1;

/// Interrupts taken, per vector.
static COUNTS: [AtomicU32; 256] = [const { AtomicU32::new(0) }; 256];
/// The TSC at each of the first [`TIMER_TSC_LEN`] timer interrupts (vector 0x40); the timer
/// checks take at most a dozen.
static TIMER_TSC: [AtomicU64; TIMER_TSC_LEN] = [const { AtomicU64::new(0) }; TIMER_TSC_LEN];
const TIMER_TSC_LEN: usize = 64;

/// The TSC at the `n`-th timer interrupt (from 0); ends the guest if none was recorded.
fn timer_tsc(n: u32) -> u64 {
    TIMER_TSC
        .get(n as usize)
        .map(|t| t.load(Ordering::SeqCst))
        .unwrap_or_else(|| fail(format_args!("timer interrupt {n} was not recorded")))
}
/// The handler writes EOI itself (else the check does).
static AUTO_EOI: AtomicBool = AtomicBool::new(true);

/// Called by every interrupt entry point (`boot.rs`) with interrupts off.
extern "C" fn on_interrupt(vector: u64) {
    let v = (vector & 0xff) as usize;
    let n = COUNTS[v].fetch_add(1, Ordering::SeqCst);
    if v == 0x40
        && let Some(t) = TIMER_TSC.get(n as usize)
    {
        t.store(rdtsc(), Ordering::SeqCst);
    }
    // The spurious vector (0xff) has no in-service bit (SDM Vol. 3A §11.9).
    if v != 0xff && AUTO_EOI.load(Ordering::SeqCst) {
        apic::eoi();
    }
}

/// Interrupts taken on `vector` so far.
fn count(vector: u8) -> u32 {
    COUNTS[usize::from(vector)].load(Ordering::SeqCst)
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Opens the interrupt window for one instruction (`sti; nop; cli`): pending interrupts are
/// taken there.
fn window() {
    // SAFETY: the IDT handles every vector the platform may deliver; the handlers change only
    // statics (no `nomem`).
    unsafe { core::arch::asm!("sti", "nop", "cli", options(nostack)) };
}

/// `sti; hlt; cli`: waits for an interrupt (a timer must be armed).
fn halt() {
    // SAFETY: as in `window`.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nostack)) };
}

/// Spins, with interrupts off, for `ticks` TSC ticks.
fn spin(ticks: u64) {
    let end = rdtsc() + ticks;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Halts until `vector` was taken `n` times or `limit` halts passed; returns whether it was.
fn wait_for(vector: u8, n: u32, limit: u32) -> bool {
    for _ in 0..limit {
        if count(vector) >= n {
            return true;
        }
        halt();
    }
    count(vector) >= n
}

fn fail(what: core::fmt::Arguments<'_>) -> ! {
    println!("self-check failed: {what}");
    exit(EXIT_FAIL)
}

fn check(ok: bool, what: core::fmt::Arguments<'_>) {
    if !ok {
        fail(what);
    }
}

/// The TSC rate and the crystal clock (the local APIC timer's input) from CPUID leaf 0x15.
fn clocks() -> (Rate, u64) {
    let max = conduit_guest::cpuid(0, 0)[0];
    check(
        max >= 0x15,
        format_args!("no CPUID leaf 0x15 (maximum basic leaf {max:#x})"),
    );
    let [denominator, numerator, crystal_hz, _] = conduit_guest::cpuid(0x15, 0);
    let leaf = Leaf15 {
        denominator,
        numerator,
        crystal_hz,
    };
    let rate = leaf
        .rate()
        .unwrap_or_else(|e| fail(format_args!("CPUID {e}")));
    (rate, u64::from(crystal_hz))
}

/// The Multiboot command line (information structure flags bit 2, `cmdline` at offset 16).
fn cmdline(info: u64) -> &'static [u8] {
    let info = info as usize as *const u32;
    // SAFETY: the loader put the information structure and the string it names in guest memory
    // (identity-mapped); they are read, never written.
    unsafe {
        if info.read_volatile() & 4 == 0 {
            return &[];
        }
        let s = info.add(4).read_volatile() as usize as *const u8;
        let mut len = 0;
        while len < 256 && s.add(len).read_volatile() != 0 {
            len += 1;
        }
        core::slice::from_raw_parts(s, len)
    }
}

/// Entered from `boot.rs` in long mode with the loader's EAX and EBX.
extern "C" fn main(magic: u64, info: u64) -> ! {
    println!("hello from vplat");
    check(
        magic & 0xffff_ffff == BOOTLOADER_MAGIC,
        format_args!("EAX at entry was {magic:#x}, not 0x2badb002"),
    );
    boot::load_idt();
    println!("long mode: entered from Multiboot, IDT loaded");
    let cmdline = cmdline(info & 0xffff_ffff);
    if cmdline.windows(10).any(|w| w == b"reset-test") {
        reset::run()
    }
    if cmdline.windows(9).any(|w| w == b"bystander") {
        reset::bystander()
    }
    if let Some(at) = cmdline.windows(8).position(|w| w == b"hostile=") {
        let rest = &cmdline[at + 8..];
        let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        hostile::run(&rest[..end])
    }
    let (rate, crystal_hz) = clocks();
    checks::run(rate, crystal_hz)
}
