//! `cpustate_a`: one of the two guests whose CPU state must stay their own (pattern seed 1):
//! see `cpustate/check.rs`. Exits with code 0x41.
#![no_std]
#![no_main]

#[path = "cpustate/check.rs"]
mod check;

conduit_guest::entry!(main);

fn main() -> ! {
    check::run("cpustate_a", 1)
}
