//! What a Conduit guest sees of the CPU, pure and host-tested: its CPUID leaves and its MSRs.
//!
//! - [`GuestCpuid`] answers CPUID for one vCPU (SDM Vol. 2A, "CPUID—CPU Identification"): the
//!   host's leaves, read through [`HostCpuid`], filtered to what Conduit virtualizes (allow-lists
//!   in [`bits`]: VMX, MONITOR/MWAIT, performance monitoring, thermal and power management, machine
//!   checks, SGX, TSX, processor trace, XSAVES hidden); the guest's own APIC ID and topology
//!   (leaves 1, 4, 0xB, 0x1F); the one calibrated TSC rate in leaves 0x15, 0x16 and the
//!   hypervisor timing leaf [`HV_TIMING_LEAF`]; leaf 0xD computed for the guest's XCR0 from the
//!   component layout ([`xsave`]); OSXSAVE and OSPKE following the guest's CR4.
//! - [`MsrPolicy`] says where each MSR lives ([`MsrClass`]), and [`MsrState`] holds one vCPU's
//!   emulated MSRs and checks every write (SDM Vol. 4, "Model-Specific Registers (MSRs)").
//!
//! The decisions, and what the kernel must do so that they hold, are in `docs/cpu-policy.md`.
//!
//! ```
//! use conduit_cpu_policy::{
//!     GuestCpuConfig, GuestCpuid, HostCpuid, HostMsrs, MsrClass, Read, WriteEffect,
//!     MsrState, xsave,
//! };
//!
//! /// A host with leaves 0 and 1 only.
//! struct Host;
//! impl HostCpuid for Host {
//!     fn cpuid(&self, leaf: u32, _subleaf: u32) -> [u32; 4] {
//!         match leaf {
//!             0 => [1, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
//!             1 => [0x806c1, 0x800, 1 << 5 /* VMX */, 1 << 4 /* TSC */],
//!             _ => [0; 4],
//!         }
//!     }
//! }
//!
//! let config = GuestCpuConfig {
//!     apic_id: 0,
//!     vcpus: 1,
//!     tsc: conduit_clock::Rate::from_khz(50_000).unwrap(),
//!     xcr0_supported: xsave::XCR0_X87 | xsave::XCR0_SSE | xsave::XCR0_AVX,
//!     x2apic: true,
//!     tsc_deadline: true,
//!     rdtscp: false,
//!     invpcid: false,
//! };
//! let cpuid = GuestCpuid::new(Host, config);
//! // On a CPUID exit: RAX and RCX in, RAX..RDX out.
//! let [_, _, ecx, _] = cpuid.leaf(1, 0, xsave::XCR0_X87, 0);
//! assert_eq!(ecx & (1 << 5), 0); // no VMX
//! assert_ne!(ecx & (1 << 31), 0); // a hypervisor
//! // The guest's TSC rate, as leaf 0x15 states it: 50 MHz.
//! let [den, num, crystal, _] = cpuid.leaf(0x15, 0, 1, 0);
//! assert_eq!(u64::from(crystal) * u64::from(num) / u64::from(den), 50_000_000);
//!
//! // On a RDMSR/WRMSR exit.
//! let mut msrs = MsrState::new(cpuid.msr_policy(HostMsrs::default()));
//! assert_eq!(msrs.policy().classify(0xc000_0082), MsrClass::PassThrough); // LSTAR
//! assert_eq!(msrs.read(0xfe), Ok(Read::Value(8))); // MTRRcap: 8 variable ranges
//! assert_eq!(msrs.write(0x2ff, 0x806), Ok(WriteEffect::Done)); // MTRRdefType: enabled, WB
//! assert!(msrs.write(0x3a, 0).is_err()); // FEATURE_CONTROL is locked: #GP
//! ```
#![cfg_attr(not(test), no_std)]

pub mod bits;
mod cpuid;
mod msr;
pub mod xsave;

pub use cpuid::{
    APIC_BUS_KHZ, GuestCpuConfig, GuestCpuid, HV_TIMING_LEAF, HostCpuid, MAX_BASIC_LEAF,
    MAX_EXTENDED_LEAF, MAX_HV_LEAF,
};
pub use msr::*;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests_cpuid;
#[cfg(test)]
mod tests_msr;
