//! `cpustate_b`: one of the two guests whose CPU state must stay their own (pattern seed 2):
//! see `cpustate/check.rs`. Exits with code 0x42.
#![no_std]
#![no_main]

#[path = "cpustate/check.rs"]
mod check;

conduit_guest::entry!(main);

fn main() -> ! {
    check::run("cpustate_b", 2)
}
