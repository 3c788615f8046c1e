//! The message interface between Conduit's core (ring 0) and its control task (ring 3).
//!
//! The control task owns physical PCI configuration space once boot is done and answers every
//! configuration access a guest makes, through [`conduit_vpci`]. The core reaches it only
//! through one synchronous call: it enters the task at its receive point with a [`Request`] in
//! three registers, the task serves it and leaves with `SYSCALL` carrying a [`Reply`] in
//! registers. Everything larger than a register (the function description of
//! [`Op::AddFunction`], the events of a write, a panic message) goes through one shared 4 KiB
//! page, [`shared::SharedPage`], whose contents are plain integers: the core copies and
//! validates them after the task has stopped running, so a compromised task can hand over
//! nonsense but never make the core act on unchecked data.
//!
//! - [`layout`]: where the task's image, stack, shared page and configuration window live.
//! - [`request`]: [`Op`], [`Request`] (encoded into RDI/RSI/RDX), [`Status`], [`Reply`],
//!   `FaultKind` (test-only deliberate faults, feature `selftest`) and the system-call numbers.
//! - [`journal`]: what the core keeps of each function's state, to rebuild it in a restarted task.
//! - [`shared`]: [`shared::SharedPage`] with [`shared::InitInfo`], [`shared::FunctionInfo`] and
//!   [`shared::WireEvent`], the wire form of [`conduit_vpci::Event`].
//! - [`windows`]: the ECAM windows of every PCI segment, checked, and where a segment-qualified
//!   physical access lands in them.
//!
//! Registers follow the SYSCALL/SYSRET convention of the Intel SDM Vol. 3A §5.8.8 ("Fast System
//! Calls in 64-Bit Mode"): on entry RCX and R11 are the task's RIP and RFLAGS, so requests and
//! replies use RDI, RSI and RDX only.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod journal;
pub mod layout;
pub mod request;
pub mod shared;
pub mod windows;

#[cfg(feature = "selftest")]
pub use request::FaultKind;
pub use request::{
    DecodeError, HYPERVISOR, Op, PHYSICAL_MSI_ENABLE, Reply, Request, SYS_PANIC, SYS_REPLY, Status,
};
pub use shared::{EcamWindow, FunctionInfo, InitInfo, SharedPage, WireBar, WireEvent};
pub use windows::{ConfigWindows, Target, WindowError, task_windows};
