//! Interrupt attributes shared by the IRTE, MSI and I/O APIC encodings, and resource owners.

use core::fmt;

/// How the interrupt is delivered to the local APIC(s). The 3-bit encoding is the same in the
/// IRTE DLM field (VT-d §9.10), the MSI data register (SDM Vol. 3A §11.11.2) and the I/O APIC
/// redirection entry; 011b and 110b are reserved.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DeliveryMode {
    /// 000b: the vector, to every destination.
    Fixed,
    /// 001b: the vector, to the lowest-priority destination.
    LowestPriority,
    /// 010b: SMI (vector ignored, must be zero).
    Smi,
    /// 100b: NMI (vector ignored).
    Nmi,
    /// 101b: INIT (vector ignored, must be zero).
    Init,
    /// 111b: ExtINT, vector from an 8259-compatible controller.
    ExtInt,
}

impl DeliveryMode {
    /// The 3-bit encoding.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Fixed => 0b000,
            Self::LowestPriority => 0b001,
            Self::Smi => 0b010,
            Self::Nmi => 0b100,
            Self::Init => 0b101,
            Self::ExtInt => 0b111,
        }
    }

    /// Decodes 3 bits; `None` for the reserved 011b and 110b (and anything wider).
    pub const fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0b000 => Self::Fixed,
            0b001 => Self::LowestPriority,
            0b010 => Self::Smi,
            0b100 => Self::Nmi,
            0b101 => Self::Init,
            0b111 => Self::ExtInt,
            _ => return None,
        })
    }

    /// Whether the vector field is delivered (Fixed and Lowest Priority). For these the vector
    /// must be 16..=255: vectors 0..=15 are illegal to the local APIC (SDM Vol. 3A §11.5.2,
    /// "Illegal Vector" in the ESR).
    pub const fn carries_vector(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// Edge or level (IRTE TM, MSI data bit 15, RTE bit 15).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum TriggerMode {
    /// 0.
    Edge,
    /// 1.
    Level,
}

impl TriggerMode {
    pub(crate) const fn from_bit(bit: bool) -> Self {
        if bit { Self::Level } else { Self::Edge }
    }

    pub(crate) const fn bit(self) -> u64 {
        matches!(self, Self::Level) as u64
    }
}

/// Physical or logical destination (IRTE DM, MSI address bit 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DestinationMode {
    /// 0: the destination is an APIC ID.
    Physical,
    /// 1: the destination is a logical ID (a set of processors).
    Logical,
}

impl DestinationMode {
    pub(crate) const fn from_bit(bit: bool) -> Self {
        if bit { Self::Logical } else { Self::Physical }
    }

    pub(crate) const fn bit(self) -> u64 {
        matches!(self, Self::Logical) as u64
    }
}

/// Which APIC ID width the interrupt-remapping hardware interprets: the EIME bit of IRTA_REG
/// (VT-d ch. 11, "Interrupt Remapping Table Address Register") clear is xAPIC (8-bit IDs), set is
/// x2APIC (32-bit IDs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ApicMode {
    /// 8-bit APIC IDs.
    XApic,
    /// 32-bit APIC IDs (Extended Interrupt Mode).
    X2Apic,
}

/// An interrupt destination ID.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Destination {
    /// An 8-bit xAPIC ID (IRTE bits 47:40).
    XApic(u8),
    /// A 32-bit x2APIC ID (IRTE bits 63:32).
    X2Apic(u32),
}

impl Destination {
    /// The APIC mode this ID belongs to.
    pub const fn mode(self) -> ApicMode {
        match self {
            Self::XApic(_) => ApicMode::XApic,
            Self::X2Apic(_) => ApicMode::X2Apic,
        }
    }

    /// The ID as a number.
    pub const fn id(self) -> u32 {
        match self {
            Self::XApic(id) => id as u32,
            Self::X2Apic(id) => id,
        }
    }
}

/// A guest, as the allocators know it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub struct GuestId(pub u16);

/// Who holds a vector or an IRT index.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Owner {
    /// The hypervisor itself.
    Hypervisor,
    /// A guest (for interrupts of devices assigned to it).
    Guest(GuestId),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hypervisor => f.write_str("hypervisor"),
            Self::Guest(GuestId(id)) => write!(f, "guest {id}"),
        }
    }
}
