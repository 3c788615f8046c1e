//! Pure PCI / PCI Express logic for Conduit, host-tested against fake configuration spaces.
//!
//! Everything here is generic over [`ConfigAccess`], a dword configuration-space accessor
//! (`read32`/`write32`, with derived byte and word helpers). The kernel implements it over ECAM;
//! the tests implement it over modelled devices. No `unsafe`, no allocation, no panics on what
//! hardware returns: absent functions, all-ones reads, looping or out-of-range capability lists
//! and malformed BARs all end in typed errors.
//!
//! - [`bdf`]: [`Bdf`] addresses and 16-bit routing IDs (ARI-aware).
//! - [`address`]: [`PciAddress`], a [`Bdf`] qualified by its PCI segment group.
//! - [`ecam`]: MCFG allocations of every segment, access on a chosen segment ([`OnSegment`]).
//! - [`enumerate`]: walking a segment's buses from its first bus, behind bridges, and its
//!   further root buses.
//! - [`config`]: the accessor trait, header fields, Command register.
//! - [`bar`]: BAR decoding, sizing (decode off while sizing), programming.
//! - [`caps`]: legacy and extended capability walks with loop protection.
//! - [`pcie`]: PCI Express capability, port type, ARI forwarding, ARI capability.
//! - [`bridge`]: bridge bus numbers.
//! - [`sriov`]: the SR-IOV capability, VF routing IDs, VF BAR sizing/programming.
//! - [`plan`]: placing VF BAR windows into an MMIO window below 4 GiB.
//! - [`window`]: bridge memory windows (Type 1 Memory / Prefetchable Base and Limit).
//! - [`space`]: free MMIO ranges behind a bridge, and how far its window may grow.
//! - [`freemap`]: firmware claims (memory map, ACPI) and whether firmware VF BARs are forwarded.
//! - [`decoders`]: what decodes which range relative to a bridge; VF BAR space through every
//!   bridge above a PF.
//!
//! Specifications cited: PCI Local Bus Spec 3.0, PCI-to-PCI Bridge Architecture Spec 1.2, PCI
//! Express Base Spec r6.0.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod address;
pub mod bar;
pub mod bdf;
pub mod bridge;
pub mod caps;
pub mod config;
pub mod decoders;
pub mod ecam;
pub mod enumerate;
pub mod error;
pub mod freemap;
pub mod pcie;
pub mod plan;
pub mod space;
pub mod sriov;
pub mod window;

pub use address::PciAddress;
pub use bar::{Bar, BarKind, Bars, size_bars, write_bar};
pub use bdf::{Bdf, BdfParseError};
pub use bridge::{BridgeBuses, bridge_buses, set_bridge_buses};
pub use caps::{
    Capability, ExtCapability, cap_id, capabilities, ext_cap_id, ext_capabilities, find_capability,
    find_ext_capability,
};
pub use config::{ClassCode, ConfigAccess, Header, HeaderLayout, is_present, read_header};
pub use decoders::{
    BridgeWindow, Decoded, Decoder, VfSpace, VfSpaceError, WindowChange, place_vf_space,
};
pub use ecam::{EcamError, EcamWindow, OnSegment, SegmentAccess, check_windows};
pub use error::{CapError, PciError};
pub use freemap::{Claim, claims, first_not_forwarding};
pub use plan::{MmioWindow, PlanError, VfBarPlacement, VfBarRequest, plan_span, plan_vf_bars};
pub use space::{
    Placement, SpaceError, cover, find_free, find_free_highest, place_behind_bridge, room_around,
};
pub use sriov::{
    SriovCap, SriovError, VfConfig, vf_bar_address, vf_bar_window, vf_bdf, vf_function_bars,
};
pub use window::{BridgeWindows, WindowError, read_bridge_windows, write_memory_window};
