//! `ticker64`: a long-running 64-bit guest for the debug-shell boot tests. It greets, then runs
//! [`ROUNDS`] rounds of a busy loop (preempted by the VMX-preemption timer), printing
//! `round N/ROUNDS` and halting (a yield) after each, and exits with code 0x7c. Several instances
//! run side by side while the harness types shell commands; under Bochs (~50 M instructions/s) a
//! round takes about 0.2 s of the CPU.
#![no_std]
#![no_main]

use conduit_guest::{exit, hlt, println};

conduit_guest::entry!(main);

/// Rounds before the exit.
const ROUNDS: u64 = 60;
/// Busy-loop iterations per round (two instructions each).
const SPIN: u64 = 5_000_000;
/// Exit code on completion.
const EXIT_OK: u64 = 0x7c;

/// `n` iterations of a two-instruction loop the compiler cannot remove.
fn spin(n: u64) {
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nomem, nostack));
    }
}

fn main() -> ! {
    println!("hello from ticker64");
    for round in 1..=ROUNDS {
        spin(SPIN);
        println!("round {round}/{ROUNDS}");
        hlt();
    }
    println!("done");
    exit(EXIT_OK)
}
