//! `irqstack`: a guest whose interrupt cannot be delivered. It installs a gate for vector 0x30,
//! arms a 1 µs virtual timer, moves its stack pointer to GPA 0x4000_0000 (outside its memory)
//! and enables interrupts. Delivering the injected interrupt pushes the frame below that address:
//! an EPT violation during event delivery, after which the hypervisor must stop this guest alone
//! (reported with the GPA and the event being delivered) and run the others on.
#![no_std]
#![no_main]

use conduit_abi::{HC_OK, HC_TIMER};
use conduit_guest::{Gate, Idt, hypercall, println};

conduit_guest::entry!(main);

const VECTOR: usize = 0x30;
/// Where the stack goes: 1 GiB, beyond any test guest's memory.
const BAD_STACK: u64 = 0x4000_0000;

static IDT: Idt<0x31> = Idt::new();

unsafe extern "C" {
    fn never_reached();
}

core::arch::global_asm!(".global never_reached", "never_reached:", "iretq",);

fn main() -> ! {
    println!("hello from irqstack");
    // SAFETY: interrupts are off while the table is written; the gate's handler returns with
    // IRETQ (it is never reached: the frame cannot be pushed).
    unsafe {
        IDT.set(
            VECTOR,
            Gate::interrupt(never_reached as *const () as u64, conduit_guest::cs()),
        );
        IDT.load();
    }
    if hypercall(HC_TIMER, VECTOR as u64, 1) != HC_OK {
        println!("self-check failed: the timer was refused");
        conduit_guest::exit(0xe1);
    }
    println!("stack at {BAD_STACK:#x}, interrupts on");
    // SAFETY: deliberately broken: the stack points outside the guest's memory, so delivering
    // the interrupt faults in the hypervisor's EPT. That is the test; nothing after runs.
    unsafe {
        core::arch::asm!(
            "mov rsp, {stack}",
            "sti",
            "2:",
            "pause",
            "jmp 2b",
            stack = in(reg) BAD_STACK,
            options(noreturn),
        );
    }
}
