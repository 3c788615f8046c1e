//! `irq64`: virtual interrupts injected into a running vCPU, through the guest's own IDT.
//!
//! The source is the one-shot virtual timer (`HC_TIMER`); device interrupts routed to a guest
//! take the same path in the hypervisor (a pending virtual vector, injected at VM entry). Checks,
//! each printed as one line, any failure ending the guest with [`EXIT_FAIL`]:
//! 1. bad requests refused: vector 0x10, delay 0, a delay over one hour;
//! 2. [`ROUNDS`] one-shot timers, each ending a `sti; hlt` wait with exactly one interrupt on
//!    [`VEC_A`], none earlier than its delay at the TSC rate CPUID leaf 0x15 states; afterwards
//!    nothing more arrives while the guest runs with IF = 1;
//! 3. a timer that expires while IF = 0 is held: nothing is delivered across [`IF0_EXITS`] exits,
//!    and no interrupt-window exit happens while IF = 0; `sti; nop` then delivers it through
//!    exactly one interrupt-window exit, after STI's one-instruction shadow;
//! 4. two vectors pending at once arrive highest first ([`VEC_B`] before [`VEC_A`]), both of them;
//! 5. arming again replaces the deadline, and vector 0 disarms: a disarmed or replaced timer never
//!    fires.
//!
//! Exits with [`EXIT_OK`].
#![no_std]
#![no_main]

use conduit_abi::{HC_ERR_INVALID_ARGUMENT, HC_OK, HC_TIMER, HC_TIMER_MAX_DELAY_US};
use conduit_clock::{Leaf15, Rate};
use conduit_guest::{Gate, Idt, exit, hc_exit_count, hc_yield, hypercall, println};
use core::sync::atomic::{AtomicU64, Ordering};

conduit_guest::entry!(main);

const VEC_A: u8 = 0x30;
const VEC_B: u8 = 0x31;
const ROUNDS: u64 = 8;
/// The one-shot timers' delay, in microseconds.
const ONE_SHOT_US: u64 = 2000;
/// VM exits (CPUID) made with IF = 0 while the timer is due.
const IF0_EXITS: u64 = 1000;
/// Basic exit reason 7: interrupt window.
const EXIT_INTERRUPT_WINDOW: u64 = 7;
const EXIT_OK: u64 = 0x1a;
const EXIT_FAIL: u64 = 0xe1;
/// `sti; hlt` waits before a round counts as lost.
const MAX_WAITS: u64 = 2_000_000;

static IDT: Idt<0x32> = Idt::new();
/// Interrupts taken on [`VEC_A`] and [`VEC_B`].
static COUNT_A: AtomicU64 = AtomicU64::new(0);
static COUNT_B: AtomicU64 = AtomicU64::new(0);
/// The vector of the first interrupt taken after [`ORDER`] was cleared (0: none yet).
static ORDER: AtomicU64 = AtomicU64::new(0);
// Every `asm!` that lets interrupts in may change the counters: none is `nomem`.

unsafe extern "C" {
    fn vec_a_handler();
    fn vec_b_handler();
}

// Interrupt gates (IF cleared on entry, restored by IRETQ); no error code; only memory and flags
// are touched, and IRETQ restores the flags.
core::arch::global_asm!(
    ".global vec_a_handler",
    "vec_a_handler:",
    "lock inc qword ptr [rip + {a}]",
    "cmp qword ptr [rip + {order}], 0",
    "jne 2f",
    "mov qword ptr [rip + {order}], 0x30",
    "2:",
    "iretq",
    ".global vec_b_handler",
    "vec_b_handler:",
    "lock inc qword ptr [rip + {b}]",
    "cmp qword ptr [rip + {order}], 0",
    "jne 3f",
    "mov qword ptr [rip + {order}], 0x31",
    "3:",
    "iretq",
    a = sym COUNT_A,
    b = sym COUNT_B,
    order = sym ORDER,
);

/// The TSC's rate as CPUID leaf 0x15 states it (SDM Vol. 2A, CPUID: crystal × EBX / EAX): the
/// hypervisor answers with the rate it measured, the one its virtual timer counts with.
fn tsc_rate() -> Rate {
    let max = conduit_guest::cpuid(0, 0)[0];
    if max < 0x15 {
        fail(format_args!(
            "timer: no CPUID leaf 0x15 (maximum basic leaf {max:#x})"
        ));
    }
    let [denominator, numerator, crystal_hz, _] = conduit_guest::cpuid(0x15, 0);
    let leaf = Leaf15 {
        denominator,
        numerator,
        crystal_hz,
    };
    leaf.rate()
        .unwrap_or_else(|e| fail(format_args!("timer: CPUID {e}")))
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects (CR4.TSD is clear in the guest).
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn timer(vector: u8, delay_us: u64) -> u64 {
    hypercall(HC_TIMER, u64::from(vector), delay_us)
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

fn a() -> u64 {
    COUNT_A.load(Ordering::SeqCst)
}

fn b() -> u64 {
    COUNT_B.load(Ordering::SeqCst)
}

/// `sti; hlt; cli` until `done`; returns the waits it took.
fn wait_for(done: impl Fn() -> bool, what: &str) -> u64 {
    for waits in 1..=MAX_WAITS {
        // SAFETY: the IDT has gates for the only vectors armed; STI's shadow covers HLT, so an
        // interrupt cannot slip in between STI and HLT and be missed.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nostack)) };
        if done() {
            return waits;
        }
    }
    fail(format_args!("{what}: nothing after {MAX_WAITS} waits"))
}

/// `n` VM exits (CPUID) with whatever IF is.
fn exits(n: u64) {
    for _ in 0..n {
        core::hint::black_box(conduit_guest::cpuid(0, 0));
    }
}

fn main() -> ! {
    println!("hello from irq64");
    // SAFETY: the gates point to handlers that take an interrupt without an error code and
    // return with IRETQ; interrupts are off (RFLAGS = 0x2 at entry) while the table is written.
    unsafe {
        let cs = conduit_guest::cs();
        IDT.set(
            usize::from(VEC_A),
            Gate::interrupt(vec_a_handler as *const () as u64, cs),
        );
        IDT.set(
            usize::from(VEC_B),
            Gate::interrupt(vec_b_handler as *const () as u64, cs),
        );
        IDT.load();
    }

    // 1. Bad requests.
    let refused = [
        timer(0x10, 100),
        timer(VEC_A, 0),
        hypercall(HC_TIMER, u64::from(VEC_A), HC_TIMER_MAX_DELAY_US + 1),
    ];
    check(
        refused.iter().all(|&r| r == HC_ERR_INVALID_ARGUMENT),
        format_args!("bad timer requests answered {refused:#x?}"),
    );
    println!("timer: vector 0x10, delay 0 and a delay over one hour refused");

    // 2. One-shot timers ending HLT, none before its time at the rate CPUID states.
    let rate = tsc_rate();
    let min_ticks = rate.ticks_in_us(ONE_SHOT_US);
    let mut earliest = u64::MAX;
    let mut waits = 0;
    for round in 1..=ROUNDS {
        let start = rdtsc();
        check(
            timer(VEC_A, ONE_SHOT_US) == HC_OK,
            format_args!("arming round {round}"),
        );
        waits += wait_for(|| a() >= round, "one-shot");
        let took = rdtsc().wrapping_sub(start);
        check(
            a() == round,
            format_args!("round {round}: {} interrupts", a()),
        );
        check(
            took >= min_ticks,
            format_args!(
                "round {round}: fired after {took} TSC ticks, before {ONE_SHOT_US} us ({min_ticks})"
            ),
        );
        earliest = earliest.min(took);
    }
    // SAFETY: interrupts on with gates for every vector that could come.
    unsafe { core::arch::asm!("sti", options(nostack)) };
    for _ in 0..20 {
        hc_yield();
    }
    // SAFETY: interrupts off again.
    unsafe { core::arch::asm!("cli", options(nostack)) };
    check(
        a() == ROUNDS && b() == 0,
        format_args!(
            "after the rounds: {} on {VEC_A:#x}, {} on {VEC_B:#x}",
            a(),
            b()
        ),
    );
    println!(
        "one-shot: {ROUNDS} timers, {} interrupts on vector {VEC_A:#x}, each ending a HLT ({waits} HLTs in all); none more in 20 slices with IF=1",
        a()
    );
    println!(
        "timer: TSC {rate} (CPUID leaf 0x15): no one-shot of {ONE_SHOT_US} us = {min_ticks} TSC ticks fired early (earliest after {earliest})"
    );

    // 3. Held while IF = 0, delivered right after STI's shadow.
    let windows_before = hc_exit_count(EXIT_INTERRUPT_WINDOW);
    check(
        timer(VEC_A, 1) == HC_OK,
        format_args!("arming the IF=0 timer"),
    );
    exits(IF0_EXITS);
    let held = a();
    let windows_held = hc_exit_count(EXIT_INTERRUPT_WINDOW);
    // SAFETY: the gate for VEC_A is present. The interrupt must arrive after the NOP (STI's
    // shadow) and before CLI.
    unsafe { core::arch::asm!("sti", "nop", "cli", options(nostack)) };
    let after = a();
    let windows_after = hc_exit_count(EXIT_INTERRUPT_WINDOW);
    check(
        held == ROUNDS && after == ROUNDS + 1,
        format_args!("IF=0: {held} before STI, {after} after (want {ROUNDS}, then one more)"),
    );
    check(
        windows_held == windows_before && windows_after == windows_before + 1,
        format_args!(
            "interrupt-window exits: {windows_before} before, {windows_held} while IF=0, {windows_after} after STI"
        ),
    );
    println!(
        "IF=0: held across {IF0_EXITS} exits with no interrupt-window exit; delivered after STI through {} interrupt-window exit",
        windows_after - windows_before
    );

    // 4. Two pending at once: the higher vector first.
    check(timer(VEC_A, 1) == HC_OK, format_args!("arming {VEC_A:#x}"));
    exits(IF0_EXITS);
    check(timer(VEC_B, 1) == HC_OK, format_args!("arming {VEC_B:#x}"));
    exits(IF0_EXITS);
    ORDER.store(0, Ordering::SeqCst);
    // SAFETY: both gates are present; the two interrupts arrive between NOP and CLI.
    unsafe { core::arch::asm!("sti", "nop", "nop", "cli", options(nostack)) };
    let first = ORDER.load(Ordering::SeqCst);
    check(
        first == u64::from(VEC_B) && a() == ROUNDS + 2 && b() == 1,
        format_args!(
            "two pending: first {first:#x}, {} on {VEC_A:#x}, {} on {VEC_B:#x}",
            a(),
            b()
        ),
    );
    println!("two pending: {VEC_B:#x} delivered before {VEC_A:#x}, both once");

    // 5. Replaced and disarmed timers never fire.
    check(
        timer(VEC_A, 1000) == HC_OK,
        format_args!("arming to disarm"),
    );
    check(timer(0, 0) == HC_OK, format_args!("disarming"));
    check(
        timer(VEC_A, 1000) == HC_OK,
        format_args!("arming to replace"),
    );
    check(timer(VEC_B, 50_000) == HC_OK, format_args!("replacing"));
    wait_for(|| b() == 2, "the replacing timer");
    check(
        a() == ROUNDS + 2 && b() == 2,
        format_args!(
            "replace/disarm: {} on {VEC_A:#x}, {} on {VEC_B:#x}",
            a(),
            b()
        ),
    );
    println!(
        "disarmed and replaced timers did not fire: {} on {VEC_A:#x}, {} on {VEC_B:#x}",
        a(),
        b()
    );
    exit(EXIT_OK)
}
