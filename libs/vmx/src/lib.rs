//! Pure VMX logic, host-tested: everything that can be computed from MSR values and VMCS field
//! values without executing a VMX instruction.
#![cfg_attr(not(test), no_std)]

pub mod caps;
