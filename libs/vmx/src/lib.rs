//! Pure VMX logic, host-tested: everything that can be computed from MSR values and VMCS field
//! values without executing a VMX instruction.
//!
//! The authority for every constant here is the Intel SDM, Vol. 3C/3D (chapter and section
//! numbers move between editions, so the doc comments cite sections by title).
//!
//! - [`caps`]: the capability MSRs (Appendix A).
//! - [`fields`]: VMCS field encodings as typed enums, typed VMREAD/VMWRITE traits (Appendix B).
//! - [`controls`]: control values from the capability MSRs, with named errors (Appendix A.2-A.5).
//! - [`cr`]: CR0/CR4 bits and VMX-fixed bits (Appendix A.7, A.8).
//! - [`exit`]: exit reasons (Appendix C), VM-instruction errors, exit qualifications, event
//!   injection.
//! - [`inject`]: which event the next VM entry injects, and when to ask for an interrupt window.
//! - [`guest_state`]: the guest-state checks VM entry performs, run in software before VMLAUNCH.
//! - [`describe`]: register values in words (flag names, access rights, queued events) for the
//!   debug shell.
//! - [`fixtures`]: capability MSRs of the CPUs Conduit is tested on.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod caps;
pub mod controls;
pub mod cr;
pub mod describe;
pub mod exit;
pub mod fields;
pub mod fixtures;
pub mod guest_state;
pub mod inject;

#[cfg(test)]
mod testutil;
