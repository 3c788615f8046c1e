//! Zero-copy parser of the ACPI DMAR table (Intel VT-d spec ch. 8, "BIOS Considerations") and
//! resolution of its device scopes to PCI functions.
//!
//! - [`Dmar::parse`] checks signature, Length, checksum and the structure/scope framing, then
//!   hands out iterators over [`RemappingStructure`]s (DRHD §8.3, RMRR §8.4, ATSR §8.5,
//!   RHSA §8.6, ANDD §8.7, SATC §8.8, SIDP §8.9, and unknown types skipped by Length) and their
//!   [`DeviceScope`]s (§8.3.1). Nothing is copied; nothing panics on any input; every failure is
//!   a [`DmarError`].
//! - [`resolve`]: walks scope paths through bridges ([`BridgeBus`], implemented over
//!   `conduit_pci::ConfigAccess` by [`PciBridges`]), expands bridge scopes to their bus ranges,
//!   and answers "which DRHD translates this function" ([`Dmar::drhd_for_device`]).
//! - [`rmrr`]: reserved memory regions per device and the identity-domain plan
//!   ([`identity_plan`]: kept devices get their RMRR ranges identity-mapped, assignments of
//!   such devices are refused).
//!
//! No `unsafe`, no allocation.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod bytes;
pub mod error;
pub mod resolve;
pub mod rmrr;
pub mod scope;
pub mod structures;
pub mod table;

pub use conduit_pci::Bdf;
pub use error::{DmarError, ResolveError};
pub use resolve::{BridgeBus, Coverage, PciBridges};
pub use rmrr::{Action, PlanEntry, Reserved, Use, identity_plan};
pub use scope::{DeviceScope, DeviceScopes, PathEntry, ScopeType};
pub use structures::{
    Andd, Atsr, Drhd, RemappingStructure, Rhsa, Rmrr, Satc, Sidp, structure_type,
};
pub use table::{AcpiHeader, Dmar, DmarFlags, ParseOptions, Structures};
