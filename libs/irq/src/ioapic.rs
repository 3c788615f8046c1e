//! I/O APIC redirection table entries in remappable format (VT-d §5.1.5.1, "I/OxAPIC
//! Programming"):
//!
//! | bits | field |
//! |---|---|
//! | 63:49 | interrupt_index[14:0] |
//! | 48 | interrupt format = 1 |
//! | 47:17 | reserved (0) |
//! | 16 | mask |
//! | 15 | trigger mode (1 = level) |
//! | 14 | remote IRR (read-only) |
//! | 13 | polarity (1 = active low) |
//! | 12 | delivery status (read-only) |
//! | 11 | interrupt_index[15] |
//! | 10:8 | 000b |
//! | 7:0 | vector |
//!
//! There is no subhandle: the index selects the IRTE directly. §5.1.5.1 ties two fields to that
//! IRTE: the RTE's trigger mode must equal the IRTE's, and on platforms that broadcast EOIs to
//! the I/O APICs a level-triggered RTE's vector must equal the IRTE's vector, since the I/O APIC
//! matches the broadcast EOI's vector against its RTEs to clear Remote IRR. With directed EOI
//! (the I/O APIC's EOI register, EOI broadcast suppressed in the local APIC) software may put
//! another value there — Linux, for one, stores the pin number and EOIs by pin.

use crate::error::FormatError;
use crate::irte::Irte;
use crate::types::TriggerMode;

const INDEX_LOW_SHIFT: u32 = 49;
const FORMAT: u64 = 1 << 48;
const RESERVED: u64 = 0x0000_ffff_fffe_0000;
const MASK: u64 = 1 << 16;
const TRIGGER: u64 = 1 << 15;
const REMOTE_IRR: u64 = 1 << 14;
const POLARITY: u64 = 1 << 13;
const DELIVERY_STATUS: u64 = 1 << 12;
const INDEX15: u64 = 1 << 11;
const ZERO_FIELD: u64 = 0x700;

/// Input pin polarity.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Polarity {
    /// 0.
    ActiveHigh,
    /// 1.
    ActiveLow,
}

/// How level-triggered interrupts are ended at the I/O APIC.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum EoiMode {
    /// The local APIC broadcasts EOIs with the vector: the RTE vector must match the IRTE's.
    Broadcast,
    /// Software writes the I/O APIC's EOI register itself: the RTE vector is free.
    Directed,
}

/// The programmable fields of a remappable-format RTE.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct RemappableRte {
    /// The IRTE index (16 bits, split over bits 63:49 and 11).
    pub index: u16,
    /// Vector field (see the module documentation for what it must hold).
    pub vector: u8,
    /// Trigger mode; must equal the IRTE's.
    pub trigger_mode: TriggerMode,
    /// Pin polarity.
    pub polarity: Polarity,
    /// Masked.
    pub masked: bool,
}

/// A decoded RTE with its read-only status bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct DecodedRte {
    /// The programmable fields.
    pub rte: RemappableRte,
    /// Remote IRR: a level-triggered interrupt was accepted and awaits its EOI.
    pub remote_irr: bool,
    /// Delivery status: an interrupt is pending delivery.
    pub delivery_pending: bool,
}

impl RemappableRte {
    /// The entry for IRTE `index`, copying the trigger mode and vector from `irte`: valid for
    /// either [`EoiMode`].
    pub const fn for_irte(index: u16, irte: &Irte, polarity: Polarity, masked: bool) -> Self {
        Self {
            index,
            vector: irte.vector(),
            trigger_mode: irte.trigger_mode(),
            polarity,
            masked,
        }
    }

    /// The 64-bit entry; the read-only bits are written as zero.
    pub const fn encode(&self) -> u64 {
        let index = self.index as u64;
        ((index & 0x7fff) << INDEX_LOW_SHIFT)
            | FORMAT
            | (self.masked as u64 * MASK)
            | (self.trigger_mode.bit() * TRIGGER)
            | (matches!(self.polarity, Polarity::ActiveLow) as u64 * POLARITY)
            | ((index >> 15) * INDEX15)
            | self.vector as u64
    }

    /// Decodes a remappable entry. Compatibility format (bit 48 clear), reserved bits 47:17 and
    /// a non-zero bits 10:8 are errors.
    pub const fn decode(raw: u64) -> Result<DecodedRte, FormatError> {
        if raw & FORMAT == 0 {
            return Err(FormatError::NotRemappable);
        }
        let reserved = raw & (RESERVED | ZERO_FIELD);
        if reserved != 0 {
            return Err(FormatError::ReservedBits {
                field: "remappable RTE",
                bits: reserved,
            });
        }
        let index = ((raw >> INDEX_LOW_SHIFT) & 0x7fff) | (((raw & INDEX15) != 0) as u64) << 15;
        Ok(DecodedRte {
            rte: Self {
                index: index as u16,
                vector: raw as u8,
                trigger_mode: TriggerMode::from_bit(raw & TRIGGER != 0),
                polarity: if raw & POLARITY != 0 {
                    Polarity::ActiveLow
                } else {
                    Polarity::ActiveHigh
                },
                masked: raw & MASK != 0,
            },
            remote_irr: raw & REMOTE_IRR != 0,
            delivery_pending: raw & DELIVERY_STATUS != 0,
        })
    }

    /// Checks the §5.1.5.1 rules against the IRTE this entry selects.
    pub const fn check_against(&self, irte: &Irte, eoi: EoiMode) -> Result<(), FormatError> {
        let (rte_tm, irte_tm) = (self.trigger_mode, irte.trigger_mode());
        if rte_tm.bit() != irte_tm.bit() {
            return Err(FormatError::TriggerMismatch {
                rte: rte_tm,
                irte: irte_tm,
            });
        }
        if matches!(eoi, EoiMode::Broadcast)
            && matches!(rte_tm, TriggerMode::Level)
            && self.vector != irte.vector()
        {
            return Err(FormatError::VectorMismatch {
                rte: self.vector,
                irte: irte.vector(),
            });
        }
        Ok(())
    }
}

/// Whether a raw RTE is in remappable format (bit 48).
pub const fn rte_is_remappable(raw: u64) -> bool {
    raw & FORMAT != 0
}
