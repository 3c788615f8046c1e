//! Interrupt Remapping Table Entries in remapped format (VT-d §9.10, "Interrupt Remapping Table
//! Entry (IRTE)", IM = 0): 128 bits, written as two little-endian `u64`s, low word first.
//!
//! | bits | field |
//! |---|---|
//! | 0 | P, present |
//! | 1 | FPD, fault processing disable |
//! | 2 | DM, destination mode (1 = logical) |
//! | 3 | RH, redirection hint |
//! | 4 | TM, trigger mode (1 = level) |
//! | 7:5 | DLM, delivery mode |
//! | 11:8 | AVAIL, free for software |
//! | 14:12 | reserved (0) |
//! | 15 | IM, IRTE mode (0 = remapped, 1 = posted) |
//! | 23:16 | V, vector |
//! | 31:24 | reserved (0) |
//! | 63:32 | DST: xAPIC, APIC ID in 47:40 with 39:32 and 63:48 reserved (0); x2APIC, all 32 bits |
//! | 79:64 | SID, source identifier (requester ID) |
//! | 81:80 | SQ, source-id qualifier |
//! | 83:82 | SVT, source validation type |
//! | 127:84 | reserved (0) |

use crate::error::FormatError;
use crate::types::{ApicMode, DeliveryMode, Destination, DestinationMode, TriggerMode};

const P: u64 = 1 << 0;
const FPD: u64 = 1 << 1;
const DM: u64 = 1 << 2;
const RH: u64 = 1 << 3;
const TM: u64 = 1 << 4;
const DLM_SHIFT: u32 = 5;
const AVAIL_SHIFT: u32 = 8;
const IM: u64 = 1 << 15;
const VECTOR_SHIFT: u32 = 16;
const DST_SHIFT: u32 = 32;
/// Bits 14:12 and 31:24 of the low word.
const LOW_RESERVED: u64 = 0x7000 | 0xff00_0000;
/// In xAPIC mode, DST bits 39:32 and 63:48 are reserved.
const XAPIC_DST_RESERVED: u64 = 0xffff_00ff_0000_0000;
const XAPIC_ID_SHIFT: u32 = 40;
const SQ_SHIFT: u32 = 16;
const SVT_SHIFT: u32 = 18;
/// Bits 127:84, i.e. bits 63:20 of the high word.
const HIGH_RESERVED: u64 = !0 << 20;

/// SQ (VT-d §9.10): which bits of the requester ID are compared with SID when SVT = 01b.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SourceQualifier {
    /// 00b: all 16 bits.
    All,
    /// 01b: all but bit 2 (function bit 2).
    IgnoreBit2,
    /// 10b: all but bits 2:1.
    IgnoreBits2To1,
    /// 11b: all but bits 2:0 (any function of the device).
    IgnoreBits2To0,
}

impl SourceQualifier {
    const fn bits(self) -> u64 {
        match self {
            Self::All => 0,
            Self::IgnoreBit2 => 1,
            Self::IgnoreBits2To1 => 2,
            Self::IgnoreBits2To0 => 3,
        }
    }

    const fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => Self::All,
            1 => Self::IgnoreBit2,
            2 => Self::IgnoreBits2To1,
            _ => Self::IgnoreBits2To0,
        }
    }

    /// The requester-ID bits that are compared.
    pub const fn compare_mask(self) -> u16 {
        match self {
            Self::All => 0xffff,
            Self::IgnoreBit2 => !0b100,
            Self::IgnoreBits2To1 => !0b110,
            Self::IgnoreBits2To0 => !0b111,
        }
    }
}

/// SVT (VT-d §9.10) with the SID/SQ fields interpreted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SourceValidation {
    /// 00b: no verification; any requester may raise the interrupt.
    None,
    /// 01b: the requester ID must equal `sid` in the bits `sq` selects.
    RequesterId {
        /// The expected requester ID (bus << 8 | device << 3 | function).
        sid: u16,
        /// Which bits are compared.
        sq: SourceQualifier,
    },
    /// 10b: the requester's bus must lie in `start..=end` (SID bits 15:8 and 7:0).
    BusRange {
        /// First bus.
        start: u8,
        /// Last bus.
        end: u8,
    },
}

/// One IRTE in remapped format. Built by [`IrteBuilder`] (which validates) or [`Irte::decode`]
/// (which checks the encoding); [`Irte::encode`] never sets a reserved bit.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Irte {
    present: bool,
    fpd: bool,
    destination_mode: DestinationMode,
    redirection_hint: bool,
    trigger_mode: TriggerMode,
    delivery_mode: DeliveryMode,
    avail: u8,
    vector: u8,
    destination: Destination,
    sid: u16,
    sq: SourceQualifier,
    svt: u8,
}

impl Irte {
    /// An all-zero, not-present entry (what a freed index is cleared to).
    pub const NOT_PRESENT: Self = Self {
        present: false,
        fpd: false,
        destination_mode: DestinationMode::Physical,
        redirection_hint: false,
        trigger_mode: TriggerMode::Edge,
        delivery_mode: DeliveryMode::Fixed,
        avail: 0,
        vector: 0,
        destination: Destination::XApic(0),
        sid: 0,
        sq: SourceQualifier::All,
        svt: 0,
    };

    /// Present (P).
    pub const fn is_present(&self) -> bool {
        self.present
    }
    /// Fault processing disabled (FPD).
    pub const fn fault_processing_disabled(&self) -> bool {
        self.fpd
    }
    /// Destination mode (DM).
    pub const fn destination_mode(&self) -> DestinationMode {
        self.destination_mode
    }
    /// Redirection hint (RH).
    pub const fn redirection_hint(&self) -> bool {
        self.redirection_hint
    }
    /// Trigger mode (TM).
    pub const fn trigger_mode(&self) -> TriggerMode {
        self.trigger_mode
    }
    /// Delivery mode (DLM).
    pub const fn delivery_mode(&self) -> DeliveryMode {
        self.delivery_mode
    }
    /// The 4 software-available bits (AVAIL).
    pub const fn avail(&self) -> u8 {
        self.avail
    }
    /// Vector (V).
    pub const fn vector(&self) -> u8 {
        self.vector
    }
    /// Destination ID (DST), in the entry's APIC mode.
    pub const fn destination(&self) -> Destination {
        self.destination
    }
    /// Raw SID field.
    pub const fn sid(&self) -> u16 {
        self.sid
    }
    /// Raw SQ field.
    pub const fn source_qualifier(&self) -> SourceQualifier {
        self.sq
    }

    /// SVT with SID and SQ interpreted.
    pub const fn source_validation(&self) -> SourceValidation {
        match self.svt {
            1 => SourceValidation::RequesterId {
                sid: self.sid,
                sq: self.sq,
            },
            2 => SourceValidation::BusRange {
                start: (self.sid >> 8) as u8,
                end: self.sid as u8,
            },
            _ => SourceValidation::None,
        }
    }

    /// Whether a request from `requester_id` passes source validation (VT-d §9.10, SVT).
    pub const fn accepts_requester(&self, requester_id: u16) -> bool {
        match self.source_validation() {
            SourceValidation::None => true,
            SourceValidation::RequesterId { sid, sq } => {
                requester_id & sq.compare_mask() == sid & sq.compare_mask()
            }
            SourceValidation::BusRange { start, end } => {
                let bus = (requester_id >> 8) as u8;
                start <= bus && bus <= end
            }
        }
    }

    /// Checks the semantic rules the builder enforces: vectors 16..=255 for Fixed and Lowest
    /// Priority, zero otherwise; AVAIL in 4 bits; a non-empty bus range.
    pub const fn validate(&self) -> Result<(), FormatError> {
        let (vector, delivery) = (self.vector, self.delivery_mode);
        if delivery.carries_vector() {
            if vector < 16 {
                return Err(FormatError::IllegalVector { vector, delivery });
            }
        } else if vector != 0 {
            return Err(FormatError::UnexpectedVector { vector, delivery });
        }
        if self.avail > 0xf {
            return Err(FormatError::AvailTooWide(self.avail));
        }
        if let SourceValidation::BusRange { start, end } = self.source_validation()
            && start > end
        {
            return Err(FormatError::EmptyBusRange { start, end });
        }
        Ok(())
    }

    /// The 128-bit entry, low word first.
    pub const fn encode(&self) -> [u64; 2] {
        let dst = match self.destination {
            Destination::XApic(id) => (id as u64) << XAPIC_ID_SHIFT,
            Destination::X2Apic(id) => (id as u64) << DST_SHIFT,
        };
        let low = (self.present as u64 * P)
            | (self.fpd as u64 * FPD)
            | (self.destination_mode.bit() * DM)
            | (self.redirection_hint as u64 * RH)
            | (self.trigger_mode.bit() * TM)
            | ((self.delivery_mode.bits() as u64) << DLM_SHIFT)
            | (((self.avail & 0xf) as u64) << AVAIL_SHIFT)
            | ((self.vector as u64) << VECTOR_SHIFT)
            | dst;
        let high = (self.sid as u64)
            | (self.sq.bits() << SQ_SHIFT)
            | (((self.svt & 3) as u64) << SVT_SHIFT);
        [low, high]
    }

    /// Decodes an entry of a table in `mode` (IRTA_REG.EIME). Reserved bits, reserved DLM and
    /// SVT encodings and the posted format are errors; vector rules are left to
    /// [`Irte::validate`], so whatever hardware holds can be shown.
    pub const fn decode(raw: [u64; 2], mode: ApicMode) -> Result<Self, FormatError> {
        let [low, high] = raw;
        if low & IM != 0 {
            return Err(FormatError::PostedFormat);
        }
        if low & LOW_RESERVED != 0 {
            return Err(FormatError::ReservedBits {
                field: "IRTE bits 63:0",
                bits: low & LOW_RESERVED,
            });
        }
        if high & HIGH_RESERVED != 0 {
            let bits = high & HIGH_RESERVED;
            return Err(FormatError::ReservedBits {
                field: "IRTE bits 127:64",
                bits,
            });
        }
        let destination = match mode {
            ApicMode::XApic => {
                if low & XAPIC_DST_RESERVED != 0 {
                    let bits = low & XAPIC_DST_RESERVED;
                    return Err(FormatError::ReservedBits {
                        field: "IRTE xAPIC DST",
                        bits,
                    });
                }
                Destination::XApic((low >> XAPIC_ID_SHIFT) as u8)
            }
            ApicMode::X2Apic => Destination::X2Apic((low >> DST_SHIFT) as u32),
        };
        let dlm = ((low >> DLM_SHIFT) & 0b111) as u8;
        let Some(delivery_mode) = DeliveryMode::from_bits(dlm) else {
            return Err(FormatError::ReservedDeliveryMode(dlm));
        };
        let svt = ((high >> SVT_SHIFT) & 3) as u8;
        if svt == 3 {
            return Err(FormatError::ReservedSourceValidation);
        }
        Ok(Self {
            present: low & P != 0,
            fpd: low & FPD != 0,
            destination_mode: DestinationMode::from_bit(low & DM != 0),
            redirection_hint: low & RH != 0,
            trigger_mode: TriggerMode::from_bit(low & TM != 0),
            delivery_mode,
            avail: ((low >> AVAIL_SHIFT) & 0xf) as u8,
            vector: (low >> VECTOR_SHIFT) as u8,
            destination,
            sid: high as u16,
            sq: SourceQualifier::from_bits(high >> SQ_SHIFT),
            svt,
        })
    }

    /// A builder starting from this entry.
    pub const fn to_builder(self) -> IrteBuilder {
        IrteBuilder { irte: self }
    }
}

/// Builds a validated [`Irte`]. Starts present, Fixed, edge, physical, no source validation.
///
/// ```
/// use conduit_irq::{Destination, IrteBuilder, SourceQualifier, TriggerMode};
///
/// let irte = IrteBuilder::new(Destination::X2Apic(3), 0x41)
///     .trigger_mode(TriggerMode::Level)
///     .verify_requester(0x0310, SourceQualifier::All)
///     .build()
///     .unwrap();
/// assert_eq!(irte.encode(), [0x0000_0003_0041_0011, 0x0000_0000_0004_0310]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IrteBuilder {
    irte: Irte,
}

impl IrteBuilder {
    /// A present, Fixed, edge-triggered, physical-destination entry.
    pub const fn new(destination: Destination, vector: u8) -> Self {
        let mut irte = Irte::NOT_PRESENT;
        irte.present = true;
        irte.destination = destination;
        irte.vector = vector;
        Self { irte }
    }

    /// Sets P (a not-present entry is still checked, then ignored by hardware).
    pub const fn present(mut self, present: bool) -> Self {
        self.irte.present = present;
        self
    }
    /// Sets FPD: faults on this entry are not recorded or reported.
    pub const fn fault_processing_disable(mut self, fpd: bool) -> Self {
        self.irte.fpd = fpd;
        self
    }
    /// Sets DM.
    pub const fn destination_mode(mut self, mode: DestinationMode) -> Self {
        self.irte.destination_mode = mode;
        self
    }
    /// Sets RH.
    pub const fn redirection_hint(mut self, rh: bool) -> Self {
        self.irte.redirection_hint = rh;
        self
    }
    /// Sets TM.
    pub const fn trigger_mode(mut self, tm: TriggerMode) -> Self {
        self.irte.trigger_mode = tm;
        self
    }
    /// Sets DLM.
    pub const fn delivery_mode(mut self, dlm: DeliveryMode) -> Self {
        self.irte.delivery_mode = dlm;
        self
    }
    /// Sets V.
    pub const fn vector(mut self, vector: u8) -> Self {
        self.irte.vector = vector;
        self
    }
    /// Sets DST.
    pub const fn destination(mut self, destination: Destination) -> Self {
        self.irte.destination = destination;
        self
    }
    /// Sets AVAIL (4 bits).
    pub const fn avail(mut self, avail: u8) -> Self {
        self.irte.avail = avail;
        self
    }
    /// No source validation (SVT 00b, SID and SQ zero).
    pub const fn no_source_validation(mut self) -> Self {
        self.irte.svt = 0;
        self.irte.sid = 0;
        self.irte.sq = SourceQualifier::All;
        self
    }
    /// SVT 01b: only `sid` (in the bits `sq` selects) may raise this interrupt.
    pub const fn verify_requester(mut self, sid: u16, sq: SourceQualifier) -> Self {
        self.irte.svt = 1;
        self.irte.sid = sid;
        self.irte.sq = sq;
        self
    }
    /// SVT 10b: only requesters on buses `start..=end` may raise it (devices behind a
    /// PCIe-to-PCI bridge, whose requests carry the bridge's bus numbers). SQ is zero.
    pub const fn verify_bus_range(mut self, start: u8, end: u8) -> Self {
        self.irte.svt = 2;
        self.irte.sid = ((start as u16) << 8) | end as u16;
        self.irte.sq = SourceQualifier::All;
        self
    }

    /// The entry, if [`Irte::validate`] accepts it.
    pub const fn build(self) -> Result<Irte, FormatError> {
        match self.irte.validate() {
            Ok(()) => Ok(self.irte),
            Err(e) => Err(e),
        }
    }
}

/// Whether a raw entry has P set, without decoding the rest (hardware ignores every other field of
/// a not-present entry).
pub const fn raw_present(raw: [u64; 2]) -> bool {
    raw[0] & P != 0
}
