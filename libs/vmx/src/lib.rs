//! Pure VMX logic, host-tested: everything that can be computed from MSR values and VMCS field
//! values without executing a VMX instruction.
//!
//! The authority for every constant here is the Intel SDM, Vol. 3C/3D (chapter and section
//! numbers move between editions, so the doc comments cite sections by title).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod caps;
pub mod controls;
pub mod cr;
pub mod exit;
pub mod fields;
pub mod fixtures;
pub mod guest_state;

#[cfg(test)]
mod testutil;
