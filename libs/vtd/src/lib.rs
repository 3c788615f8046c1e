//! Pure logic of Intel VT-d DMA remapping (Intel Virtualization Technology for Directed I/O
//! Architecture Specification; section numbers of revision 3.x, where chapter 10 holds the
//! register descriptions; revision 4 moved them to chapter 11 with the same sub-numbering):
//!
//! - [`caps`]: the Capability and Extended Capability registers decoded, and the table depth a
//!   unit supports;
//! - [`entries`]: root and context entries in legacy mode (§9.1, §9.3);
//! - [`invalidation`]: what can be invalidated, as queued-invalidation descriptors (§6.5.2) and
//!   as Context Command / IOTLB register commands (§6.5.1, §10.4.7, §10.4.8);
//! - [`fault`]: primary fault records decoded (§10.4.14) and fault reasons explained (Appendix A);
//! - [`interrupt`]: interrupt remapping's side of the unit: interrupt-entry-cache invalidation
//!   (§6.5.2.5), the IRE/SIRTP/CFI command bits, interrupt fault reasons;
//! - [`takeover`]: taking a unit over from firmware over a register-access trait (faults and
//!   error bits cleared, firmware's enables turned off one command at a time, PMRs disabled),
//!   and the fault event MSI for any APIC ID;
//! - [`limit`]: the per-source rate limit of fault reports, and the fault event interrupt's rate
//!   limit.
//!
//! No `unsafe`, no allocation: the hardware layer's driver (`conduit_hw::vtd`) does the register
//! and memory accesses; this crate says which bits go where, and is tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod caps;
pub mod entries;
pub mod fault;
pub mod interrupt;
pub mod invalidation;
pub mod limit;
pub mod takeover;

pub use caps::{Cap, Ecap, context_aw};
pub use entries::{ContextEntry, root_entry};
pub use fault::{FaultRecord, reason_text};
pub use interrupt::{IecInvalidation, is_interrupt_reason};
pub use invalidation::{Descriptor, Drain, Invalidation, RegisterCommand};
