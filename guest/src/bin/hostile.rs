//! `hostile`: writes beyond its memory. Its identity map covers GPA 0x4000_0000 (1 GiB) but EPT
//! does not: the write must stop the guest with an EPT violation (GPA 0x40000000, write) at the
//! probe's fixed address 0x100000, and nothing may be printed after it.
#![no_std]
#![no_main]

use conduit_guest::{exit, println};

conduit_guest::entry!(main);

/// 1 GiB: far beyond the guest's memory.
const TARGET_GPA: u64 = 0x4000_0000;

unsafe extern "C" {
    /// `mov [rdi], rsi` at 0x100000 (section `.text.probe`, first in the image).
    fn hostile_write(address: u64, value: u64);
}

core::arch::global_asm!(
    ".pushsection .text.probe, \"ax\"",
    ".global hostile_write",
    "hostile_write:",
    "mov qword ptr [rdi], rsi",
    "ret",
    ".popsection",
);

fn main() -> ! {
    println!("hello from hostile");
    // SAFETY: deliberately out of bounds: the hypervisor must stop the guest here. Should the
    // write go through, it lands outside anything this program uses.
    unsafe { hostile_write(TARGET_GPA, 0xdead_beef_0bad_f00d) };
    println!("hostile: write went through");
    exit(1)
}
