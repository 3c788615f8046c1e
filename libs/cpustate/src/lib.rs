//! Each guest's own CPU state, the pure part: what the hypervisor decides about the state the
//! VMCS does not switch (docs/cpu-state.md).
//!
//! - [`xcr0`]: which XCR0 values a guest may set with XSETBV (Intel SDM Vol. 1 §13.3 "Enabling the
//!   XSAVE Feature Set and XSAVE-Enabled Features", Vol. 2C "XSETBV"), and which state components
//!   Conduit lets guests enable at all.
//! - [`xsave`]: the size of a standard-format XSAVE area for a set of state components (SDM Vol. 1
//!   §13.4 "XSAVE Area", CPUID leaf 0xD) and the image of the architectural initial state.
//! - [`msrs`]: the MSRs switched between each guest and the host through the VM-entry MSR-load,
//!   VM-exit MSR-store and VM-exit MSR-load areas (SDM Vol. 3C §25.7.2 "VM-Exit Controls for MSRs",
//!   §25.8.2 "VM-Entry Controls for MSRs"), the CPU's limit on their length (IA32_VMX_MISC bits
//!   27:25, SDM Vol. 3D §A.6) and the MSR-bitmap bits that let a guest access them without exits
//!   (SDM Vol. 3C §25.6.9 "MSR-Bitmap Address").
//!
//! ```
//! use conduit_cpustate::{msrs, xcr0, xsave};
//!
//! // The host supports x87, SSE, AVX and the three AVX-512 components.
//! let allowed = xcr0::allowed(0xe7);
//! assert_eq!(xcr0::check_xsetbv(0, 0x7, allowed, xcr0::CR4_OSXSAVE), Ok(()));
//! assert_eq!(
//!     xcr0::check_xsetbv(0, 0x5, allowed, xcr0::CR4_OSXSAVE),
//!     Err(xcr0::XsetbvError::AvxWithoutSse)
//! );
//!
//! // CPUID leaf 0xD, sub-leaf 2: the AVX component is 256 bytes at offset 576.
//! let cpuid = |leaf: u32, sub: u32| match (leaf, sub) {
//!     (0xd, 2) => [256, 576, 0, 0],
//!     _ => [0; 4],
//! };
//! assert_eq!(xsave::area_size(0x7, cpuid), 832);
//!
//! // Switch STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE and TSC_AUX; the CPU takes 512 entries.
//! let list = msrs::switched(true, false);
//! assert_eq!(msrs::check_count(list.len(), 0), Ok(()));
//! let mut bitmap = [0xffu8; 4096];
//! for &m in list {
//!     msrs::pass_through(&mut bitmap, m).unwrap();
//! }
//! assert!(!msrs::intercepts(&bitmap, msrs::IA32_LSTAR, true));
//! ```
#![cfg_attr(not(test), no_std)]

pub mod msrs;
pub mod xcr0;
pub mod xsave;
