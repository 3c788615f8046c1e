//! Multiprocessor start-up and cross-CPU requests for Conduit, the pure parts (host-tested):
//!
//! - [`numbering`]: which processors of the MADT are started and what each is called: CPU 0 is
//!   the bootstrap processor (BSP), the others follow in MADT order (ACPI 6.5 §5.2.12.2 and
//!   §5.2.12.12, Local APIC and Local x2APIC structures; entries without the Enabled flag are
//!   skipped, not waited for).
//! - [`trampoline`]: the real-mode page an application processor (AP) starts in after
//!   INIT-SIPI-SIPI (Intel SDM Vol. 3A §9.4.4 "MP Initialization Example"): where it may go below
//!   1 MiB, the data block the start code reads, the STARTUP IPI vector, and the temporary page
//!   tables that map the page at its own address while paging is turned on.
//! - [`mailbox`]: the protocol of a per-CPU request slot: a sender claims it, posts a request,
//!   signals the target (an IPI), waits with a deadline and collects the result or gives up
//!   without leaving the slot stuck.
//! - [`mtrr`]: the memory type range registers each AP compares with the BSP's, and the writes
//!   that give it the BSP's values.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod mailbox;
pub mod mtrr;
pub mod numbering;
pub mod trampoline;
