//! Configuration-space emulation of one PCI function assigned to a guest, as pure logic.
//!
//! The control task answers every configuration access a guest makes to its assigned
//! functions. This crate holds the answer: a [`VirtualFunction`] is a 4 KiB virtual
//! configuration image built once from the physical function (through a
//! [`ConfigAccess`](conduit_pci::ConfigAccess)), with per-bit write masks and a few emulated
//! registers. Guest writes change only the virtual image; whatever the core must do on the real
//! hardware or in the guest's EPT/IOMMU domain is returned as [`Event`]s. Nothing here ever
//! writes the physical function after the build.
//!
//! - [`access`]: access validation ([`AccessError`]), [`Event`] and the fixed-size [`Events`].
//! - [`function`]: [`VirtualFunction`]: build (plain function or SR-IOV VF), read, write, reset.
//! - [`header`]: the Type 0 header: identity pass-through, Command/Status filtering.
//! - [`bar`]: virtual BARs answered from the physical sizes; mapping changes as events.
//! - [`caps`]: allow-listed, relinked legacy and extended capability lists.
//! - [`msi`]: MSI capability emulation.
//! - [`msix`]: MSI-X capability emulation and [`MsixTable`], the trapped table page.
//! - [`topology`]: [`VirtualTopology`] (virtual BDF → function) and CF8/ECAM decoding.
//!
//! Specifications cited: PCI Local Bus Spec 3.0 (§3.2.2.3.2 configuration mechanism #1, §6.1
//! configuration space, §6.2 header, §6.7 capabilities, §6.8.1 MSI, §6.8.2 MSI-X) and PCI
//! Express Base Spec r6.0 (§7.2.2 ECAM, §7.5.1 header, §7.5.2 power management, §7.5.3 PCI
//! Express capability, §7.6.3 extended capabilities, §7.7.1 MSI, §7.7.2 MSI-X, §6.6.2 FLR,
//! §9.3.3 SR-IOV capability, §9.3.4 VF configuration header).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod access;
pub mod bar;
pub mod caps;
pub mod function;
pub mod header;
pub mod msi;
pub mod msix;
pub mod place;
pub mod topology;

mod image;

pub use access::{AccessError, Event, Events};
pub use caps::{ExtCapAllow, HiddenCap, HideReason, Policy};
pub use function::{BuildError, VfConfig, VirtualFunction};
pub use msi::MsiInfo;
pub use msix::{MsixEntry, MsixInfo, MsixTable};
pub use place::{BarPlacer, PlaceError};
pub use topology::{
    Cf8Address, Cf8Error, Cf8Mode, Ecam, EcamError, TopologyError, VirtualTopology,
};

/// Size of a PCIe function's configuration space (PCIe Base Spec r6.0 §7.2.2).
pub const CONFIG_SPACE_SIZE: u16 = 0x1000;
