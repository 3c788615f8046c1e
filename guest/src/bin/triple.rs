//! `triple`: loads an IDT with limit 0 and executes UD2 at the fixed address 0x100000: #UD cannot
//! be delivered (#GP), neither can the #GP (#DF) nor the #DF: a triple fault, which the hypervisor
//! must report and survive.
#![no_std]
#![no_main]

use conduit_guest::{exit, println};

conduit_guest::entry!(main);

unsafe extern "C" {
    /// `lidt` of an empty table, then `ud2` (section `.text.probe`: the UD2 is at 0x100007).
    fn triple_fault();
}

core::arch::global_asm!(
    ".pushsection .text.probe, \"ax\"",
    ".global triple_fault",
    "triple_fault:",
    "lidt [rip + 2f]",
    "ud2",
    "ret",
    ".balign 8",
    "2:",
    ".word 0",
    ".quad 0",
    ".popsection",
);

fn main() -> ! {
    println!("hello from triple");
    // SAFETY: deliberately fatal: no exception can be delivered after this.
    unsafe { triple_fault() };
    println!("triple: still alive");
    exit(1)
}
