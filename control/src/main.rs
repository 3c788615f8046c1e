//! Conduit's control task: the deprivileged owner of physical PCI configuration space.
//!
//! # Why a separate binary in ring 3
//!
//! Configuration-space emulation parses what guests write and what devices return; a bug there
//! must not become a bug of the hypervisor. So it runs here, at CPL 3 in its own address space
//! (Intel SDM Vol. 3A §5.5 "Privilege Levels", §4.6 "Access Rights"): the kernel half of that
//! address space is supervisor-only, and the only physical resources the task can touch are its
//! own pages, the ECAM window (or, without one, ports 0xCF8-0xCFF through the TSS I/O
//! permission bitmap, §20.5.2 of Vol. 1) and the shared page. It is a separate `no_std` binary,
//! statically linked at a fixed address (`link.ld`), which the image builder packs into the boot
//! bundle next to the guest images; the kernel loads it at boot and reloads it from the same
//! bytes whenever it has to restart it. Sharing the kernel's binary would have meant mapping
//! kernel code user-accessible; a separate image keeps the boundary simple to state and check.
//!
//! # How it runs
//!
//! The task has no thread of its own. For every request the kernel enters it at `_start` with
//! the request in RDI/RSI/RDX and RSP at the top of its stack (`SYSRET`, SDM Vol. 2B), the task
//! serves it with `conduit-vpci` and leaves with `SYSCALL` carrying the reply; that `SYSCALL`
//! never returns. State lives in statics between calls. A fault, an endless loop (the kernel's
//! watchdog) or a panic ends the call with an error and the kernel restarts the task from its
//! image: every static back to its initial value, then `Init` and the assignment list again.
//!
//! The message interface is `conduit-control-abi`.
#![no_std]
#![no_main]

extern crate alloc;

mod config;
mod heap;
mod serve;

use conduit_control_abi::{Reply, Request, SYS_PANIC, SYS_REPLY, Status};
use core::arch::{asm, global_asm};

global_asm!(
    ".pushsection .text.start, \"ax\"",
    ".global _start",
    "_start:",
    // The kernel set RSP to the top of the stack; keep the ABI's alignment anyway.
    "and rsp, -16",
    "call {main}",
    "ud2",
    ".popsection",
    main = sym task_main,
);

/// The receive point: one request in, one reply out.
extern "C" fn task_main(rdi: u64, rsi: u64, rdx: u64) -> ! {
    let reply = match Request::decode([rdi, rsi, rdx]) {
        Ok(request) => serve::serve(&request),
        Err(_) => Reply::error(Status::BadRequest),
    };
    let [status, value] = reply.encode();
    syscall(SYS_REPLY, status, value)
}

/// Leaves through `SYSCALL`; the kernel never returns here.
fn syscall(number: u64, a: u64, b: u64) -> ! {
    // SAFETY: SYSCALL transfers to the kernel's entry point (IA32_LSTAR), which ends the call
    // and never resumes this code; nothing here is left in an inconsistent state.
    unsafe {
        asm!("syscall", in("rdi") number, in("rsi") a, in("rdx") b, options(noreturn, nostack))
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    serve::with_shared(|page| {
        let mut w = serve::MessageWriter::new(page);
        // One line: the message, then where.
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!("{}", info.message()));
        if let Some(l) = info.location() {
            let _ =
                core::fmt::Write::write_fmt(&mut w, format_args!(" ({}:{})", l.file(), l.line()));
        }
    });
    syscall(SYS_PANIC, 0, 0)
}
