//! Typed errors: [`FormatError`] for encodings, [`AllocError`] for allocation and ownership.

use crate::types::{ApicMode, DeliveryMode, Destination, Owner, TriggerMode};

/// An encoding that cannot be built, or raw bits that are not a valid encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum FormatError {
    /// Fixed and Lowest Priority delivery need a vector in 16..=255.
    #[error("vector {vector:#04x} is illegal for {delivery:?} delivery (16..=255)")]
    IllegalVector {
        /// The vector.
        vector: u8,
        /// The delivery mode.
        delivery: DeliveryMode,
    },
    /// SMI, NMI, INIT and ExtINT carry no vector; it must be programmed as zero.
    #[error("{delivery:?} delivery carries no vector, but {vector:#04x} was given")]
    UnexpectedVector {
        /// The vector.
        vector: u8,
        /// The delivery mode.
        delivery: DeliveryMode,
    },
    /// The IRTE AVAIL field is 4 bits.
    #[error("AVAIL {0:#x} does not fit in 4 bits")]
    AvailTooWide(u8),
    /// A bus-range source validation with the start bus after the end bus.
    #[error("bus range {start:#04x}..={end:#04x} is empty")]
    EmptyBusRange {
        /// Start bus.
        start: u8,
        /// End bus.
        end: u8,
    },
    /// Bits that must be zero are not.
    #[error("reserved bits set in {field}: {bits:#x}")]
    ReservedBits {
        /// Which word or field.
        field: &'static str,
        /// The offending bits, in place.
        bits: u64,
    },
    /// A delivery-mode encoding of 011b or 110b.
    #[error("reserved delivery mode {0:#05b}")]
    ReservedDeliveryMode(u8),
    /// An IRTE SVT of 11b.
    #[error("reserved source-validation type 11b")]
    ReservedSourceValidation,
    /// An IRTE with IM = 1 (posted format), which this crate does not model.
    #[error("IRTE is in posted format (IM = 1)")]
    PostedFormat,
    /// An interrupt remapping table base that is not 4-KiB aligned.
    #[error("table address {addr:#x} is not aligned to {align:#x}")]
    MisalignedTable {
        /// The address.
        addr: u64,
        /// The alignment needed.
        align: u64,
    },
    /// An MSI address outside the 0xFEEx_xxxx interrupt window.
    #[error("MSI address {0:#010x} is not in the 0xFEEx_xxxx interrupt range")]
    NotInterruptAddress(u32),
    /// An MSI or I/O APIC entry in compatibility format where the remappable format was expected.
    #[error("not in remappable format (interrupt format bit clear)")]
    NotRemappable,
    /// An I/O APIC entry whose trigger mode differs from its IRTE's (VT-d §5.1.5.1).
    #[error("RTE trigger mode {rte:?} differs from IRTE trigger mode {irte:?}")]
    TriggerMismatch {
        /// In the RTE.
        rte: TriggerMode,
        /// In the IRTE.
        irte: TriggerMode,
    },
    /// A level-triggered I/O APIC entry whose vector differs from its IRTE's, on a platform that
    /// broadcasts EOIs (VT-d §5.1.5.1).
    #[error("RTE vector {rte:#04x} differs from IRTE vector {irte:#04x} (EOI broadcast)")]
    VectorMismatch {
        /// In the RTE.
        rte: u8,
        /// In the IRTE.
        irte: u8,
    },
}

/// The kind of resource an [`AllocError`] is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resource {
    /// A local-APIC vector.
    Vector,
    /// An interrupt-remapping-table index.
    IrtIndex,
}

/// An allocation or ownership failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AllocError {
    /// Nothing (or no aligned block of the size asked) is free.
    #[error("no free {resource:?} left (asked for {count})")]
    Exhausted {
        /// What ran out.
        resource: Resource,
        /// How many were asked for at once.
        count: usize,
    },
    /// The value is outside what the allocator manages.
    #[error("{resource:?} {value:#x} is out of range")]
    OutOfRange {
        /// The resource.
        resource: Resource,
        /// The value.
        value: u32,
    },
    /// A vector reserved for the hypervisor at construction: never allocated or freed.
    #[error("vector {0:#04x} is reserved for the hypervisor")]
    Reserved(u8),
    /// Freeing or checking something that is not allocated (includes double frees).
    #[error("{resource:?} {value:#x} is not allocated")]
    NotAllocated {
        /// The resource.
        resource: Resource,
        /// The value.
        value: u32,
    },
    /// Asking for a specific value that someone holds.
    #[error("{resource:?} {value:#x} is already held by {owner}")]
    AlreadyAllocated {
        /// The resource.
        resource: Resource,
        /// The value.
        value: u32,
        /// Who holds it.
        owner: Owner,
    },
    /// A requester acting on something it does not hold.
    #[error("{requester} does not own {resource:?} {value:#x} (held by {owner})")]
    NotOwner {
        /// The resource.
        resource: Resource,
        /// The value.
        value: u32,
        /// Who holds it.
        owner: Owner,
        /// Who asked.
        requester: Owner,
    },
    /// A multi-message block size that is not a power of two in 1..=32 (PCI MSI Multiple
    /// Message Enable), or a block base not aligned to its size.
    #[error("invalid block: base {base:#x}, {count} entries")]
    InvalidBlock {
        /// Base index (0 when allocating).
        base: u32,
        /// Entries.
        count: usize,
    },
    /// The table size does not fit the allocator's storage.
    #[error("a table of {entries} entries does not fit storage for {capacity}")]
    TableTooLarge {
        /// Entries asked for.
        entries: usize,
        /// Storage.
        capacity: usize,
    },
    /// Resizing a table while indices are allocated.
    #[error("{0} indices are still allocated")]
    InUse(usize),
    /// An interrupt aimed at a destination the requester may not target.
    #[error("{requester} may not target APIC ID {destination:?}")]
    DestinationNotOwned {
        /// The destination.
        destination: Destination,
        /// Who asked.
        requester: Owner,
    },
    /// A guest asking for a non-vectored delivery mode (SMI, NMI, INIT, ExtINT).
    #[error("{requester} may not use {delivery:?} delivery")]
    DeliveryNotPermitted {
        /// The delivery mode.
        delivery: DeliveryMode,
        /// Who asked.
        requester: Owner,
    },
    /// A guest IRTE without source-id verification: any device could raise it.
    #[error("{0}'s IRTE must verify the source id (SVT 01b or 10b)")]
    SourceNotVerified(Owner),
    /// An IRTE whose destination width does not match the table's mode (IRTA_REG.EIME).
    #[error("IRTE destination is {entry:?}, table is in {table:?} mode")]
    ApicModeMismatch {
        /// The entry's.
        entry: ApicMode,
        /// The table's.
        table: ApicMode,
    },
}
