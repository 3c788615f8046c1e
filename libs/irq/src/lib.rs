//! Interrupt encodings and interrupt-resource allocation for Conduit, pure and host-tested.
//!
//! Encodings (every one decodes back, and decoding rejects reserved bits):
//! - [`Irte`] / [`IrteBuilder`]: remapped-format Interrupt Remapping Table Entries (VT-d §9.10),
//!   with source-id validation ([`SourceValidation`]); [`Irta`]: IRTA_REG and the table size
//!   ([`IrtSize`], 2^(S+1) entries).
//! - [`MsiMessage`]: MSI/MSI-X address and data in remappable format ([`RemappableMsi`], VT-d
//!   §5.1.2.2 and §5.1.5.2) and compatibility format ([`CompatMsi`], SDM Vol. 3A §11.11.1 and
//!   §11.11.2), decoded into a [`DecodedMsi`].
//! - [`RemappableRte`]: I/O APIC redirection entries in remappable format (VT-d §5.1.5.1) and the
//!   rules tying them to their IRTE ([`RemappableRte::check_against`]).
//! - [`intx`]: a PCI function's INTx: the GSI its pin reaches ([`intx::locate`]), the
//!   compatibility-format entry without remapping ([`DirectRte`]), the level hand-off with a
//!   guest ([`IntxState`]) and the shared-line rule ([`intx::foreign_user`]).
//!
//! Allocation, every resource tagged with an [`Owner`]:
//! - [`VectorAllocator`]: local-APIC vectors 0x20..=0xFE, with hypervisor-reserved vectors.
//! - [`IrtAllocator`]: IRT indices, single or aligned power-of-two blocks for multi-message MSI.
//! - [`authorize_irte`]: refuses an IRTE whose index, vector or destination the requester does not
//!   own, with a typed [`AllocError`].
//! - [`SegmentTables`]: one interrupt remapping table per PCI segment, as many as there are
//!   segments (an IRTE's source-id has no segment), the table of a function's segment being the
//!   one its entries go to; clearing an index acts on its holder first, then on every table.
//! - [`Placements`]: the CPUs interrupts may be aimed at and, per guest, the CPU (APIC ID) of
//!   each vCPU: a guest's interrupt for vCPU k goes to vCPU k's CPU, and the guest may target
//!   the CPU of any of its vCPUs, no other (the [`DestinationPolicy`] the kernel authorizes with).
//! - [`Binding`]: what a vector delivers to (owner, IRTE index, the guest's virtual vector and
//!   the vCPU it is for), packed into 64 bits for lock-free reads in interrupt handlers.
//!
//! No `unsafe`, no panics on any input; only [`SegmentTables`] and [`Placements`] allocate
//! (`alloc`).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod authorize;
pub mod binding;
pub mod error;
pub mod intx;
pub mod ioapic;
pub mod irt;
pub mod irta;
pub mod irte;
pub mod msi;
pub mod placement;
pub mod segments;
pub mod types;
pub mod vector;

pub use authorize::{DestinationPolicy, authorize_irte};
pub use binding::Binding;
pub use error::{AllocError, FormatError, Resource};
pub use intx::{
    DirectRte, IntxError, IntxSource, IntxState, LineOverride, LineUser, OnEoi, OnFire,
};
pub use ioapic::{DecodedRte, EoiMode, Polarity, RemappableRte, rte_is_remappable};
pub use irt::{IrtAllocator, MAX_BLOCK};
pub use irta::{IRTE_BYTES, IrtSize, Irta};
pub use irte::{Irte, IrteBuilder, SourceQualifier, SourceValidation, raw_present};
pub use msi::{CompatMsi, DecodedMsi, MSI_ADDRESS_BASE, MsiMessage, RemappableMsi};
pub use placement::{PlacementError, Placements};
pub use segments::SegmentTables;
pub use types::{
    ApicMode, DeliveryMode, Destination, DestinationMode, GuestId, Owner, TriggerMode,
};
pub use vector::{FIRST_VECTOR, LAST_VECTOR, VectorAllocator};
