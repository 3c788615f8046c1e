//! MSI / MSI-X address and data, in both formats a VT-d platform accepts. Bit 4 of the address
//! (the "interrupt format" bit, VT-d §5.1.2) tells them apart.
//!
//! Remappable format (VT-d §5.1.2.2; programmed as §5.1.5.2 says):
//!
//! | address bits | field |
//! |---|---|
//! | 31:20 | 0xFEE |
//! | 19:5 | handle[14:0] |
//! | 4 | interrupt format = 1 |
//! | 3 | SHV, subhandle valid |
//! | 2 | handle[15] |
//! | 1:0 | don't care (written 0) |
//!
//! The data register holds the subhandle in bits 15:0 when SHV is set (bits 31:16 reserved). The
//! interrupt index is `handle`, or `handle + subhandle` with SHV — which is how a multi-message MSI
//! function, which writes its message number into the low data bits, reaches consecutive IRTEs.
//!
//! Compatibility format (SDM Vol. 3A §11.11.1 "Message Address Register Format", §11.11.2 "Message
//! Data Register Format"; VT-d §5.1.2.1):
//!
//! | address bits | field |
//! |---|---|
//! | 31:20 | 0xFEE |
//! | 19:12 | destination ID |
//! | 11:4 | reserved (bit 4 = interrupt format = 0) |
//! | 3 | RH, redirection hint |
//! | 2 | DM, destination mode |
//! | 1:0 | don't care |
//!
//! | data bits | field |
//! |---|---|
//! | 7:0 | vector |
//! | 10:8 | delivery mode |
//! | 13:11 | reserved |
//! | 14 | level (1 assert, 0 deassert; ignored for edge) |
//! | 15 | trigger mode |
//! | 31:16 | reserved |
//!
//! The message upper address (64-bit MSI) is zero for every interrupt message.

use crate::error::FormatError;
use crate::types::{DeliveryMode, DestinationMode, TriggerMode};

/// Bits 31:20 of every interrupt message address.
pub const MSI_ADDRESS_BASE: u32 = 0xfee0_0000;
const WINDOW_MASK: u32 = 0xfff0_0000;
const FORMAT: u32 = 1 << 4;
const SHV: u32 = 1 << 3;
const HANDLE15: u32 = 1 << 2;
const HANDLE_LOW_SHIFT: u32 = 5;
const COMPAT_DEST_SHIFT: u32 = 12;
/// Compatibility address bits 11:5 (bit 4 is the format bit).
const COMPAT_ADDR_RESERVED: u32 = 0xfe0;
const RH: u32 = 1 << 3;
const DM: u32 = 1 << 2;
const DATA_HIGH_RESERVED: u32 = 0xffff_0000;
const COMPAT_DATA_RESERVED: u32 = DATA_HIGH_RESERVED | 0x3800;
const LEVEL_ASSERT: u32 = 1 << 14;
const TRIGGER: u32 = 1 << 15;

/// The two registers a device writes to signal an interrupt.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct MsiMessage {
    /// Message address (low 32 bits; the upper address is zero).
    pub address: u32,
    /// Message data.
    pub data: u32,
}

/// A remappable-format message: which IRTE it selects.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct RemappableMsi {
    /// The 16-bit handle (address bits 19:5 and 2).
    pub handle: u16,
    /// The subhandle when SHV is set.
    pub subhandle: Option<u16>,
}

impl RemappableMsi {
    /// A message selecting IRTE `index` directly (SHV clear): one MSI-X vector.
    pub const fn single(index: u16) -> Self {
        Self {
            handle: index,
            subhandle: None,
        }
    }

    /// The message to program into a multi-message MSI capability whose IRTEs start at `base`:
    /// SHV set, subhandle 0, so message `n` (written by the function into the low data bits)
    /// selects `base + n`.
    pub const fn block(base: u16) -> Self {
        Self {
            handle: base,
            subhandle: Some(0),
        }
    }

    /// The IRTE index it selects: `handle (+ subhandle)`. It can exceed 0xFFFF, in which case
    /// it lies outside every table and hardware faults.
    pub const fn interrupt_index(self) -> u32 {
        match self.subhandle {
            Some(sub) => self.handle as u32 + sub as u32,
            None => self.handle as u32,
        }
    }

    /// Address and data.
    pub const fn encode(self) -> MsiMessage {
        let handle = self.handle as u32;
        let mut address = MSI_ADDRESS_BASE
            | ((handle & 0x7fff) << HANDLE_LOW_SHIFT)
            | FORMAT
            | ((handle >> 15) * HANDLE15);
        let data = match self.subhandle {
            Some(sub) => {
                address |= SHV;
                sub as u32
            }
            None => 0,
        };
        MsiMessage { address, data }
    }
}

/// A compatibility-format message: delivered as is, no remapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct CompatMsi {
    /// 8-bit destination ID.
    pub destination: u8,
    /// DM.
    pub destination_mode: DestinationMode,
    /// RH.
    pub redirection_hint: bool,
    /// Vector.
    pub vector: u8,
    /// Delivery mode.
    pub delivery_mode: DeliveryMode,
    /// Trigger mode.
    pub trigger_mode: TriggerMode,
    /// The level bit: assert (true) or deassert; meaningful for level-triggered messages.
    pub level_assert: bool,
}

impl CompatMsi {
    /// Address and data.
    pub const fn encode(self) -> MsiMessage {
        let address = MSI_ADDRESS_BASE
            | ((self.destination as u32) << COMPAT_DEST_SHIFT)
            | (self.redirection_hint as u32 * RH)
            | (self.destination_mode.bit() as u32 * DM);
        let data = self.vector as u32
            | ((self.delivery_mode.bits() as u32) << 8)
            | (self.level_assert as u32 * LEVEL_ASSERT)
            | (self.trigger_mode.bit() as u32 * TRIGGER);
        MsiMessage { address, data }
    }
}

/// A decoded message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DecodedMsi {
    /// Interrupt format bit set: goes through the IRTE it selects.
    Remappable(RemappableMsi),
    /// Interrupt format bit clear: carries its own destination and vector.
    Compatibility(CompatMsi),
}

impl MsiMessage {
    /// Decodes either format. An address outside 0xFEEx_xxxx, reserved address or data bits, and
    /// a reserved delivery mode are errors; the don't-care address bits 1:0 are ignored.
    pub const fn decode(self) -> Result<DecodedMsi, FormatError> {
        let (address, data) = (self.address, self.data);
        if address & WINDOW_MASK != MSI_ADDRESS_BASE {
            return Err(FormatError::NotInterruptAddress(address));
        }
        if address & FORMAT != 0 {
            if data & DATA_HIGH_RESERVED != 0 {
                let bits = (data & DATA_HIGH_RESERVED) as u64;
                return Err(FormatError::ReservedBits {
                    field: "remappable MSI data",
                    bits,
                });
            }
            let handle = ((address >> HANDLE_LOW_SHIFT) & 0x7fff)
                | (((address & HANDLE15) != 0) as u32) << 15;
            let subhandle = if address & SHV != 0 {
                Some(data as u16)
            } else {
                None
            };
            return Ok(DecodedMsi::Remappable(RemappableMsi {
                handle: handle as u16,
                subhandle,
            }));
        }
        if address & COMPAT_ADDR_RESERVED != 0 {
            let bits = (address & COMPAT_ADDR_RESERVED) as u64;
            return Err(FormatError::ReservedBits {
                field: "compatibility MSI address",
                bits,
            });
        }
        if data & COMPAT_DATA_RESERVED != 0 {
            let bits = (data & COMPAT_DATA_RESERVED) as u64;
            return Err(FormatError::ReservedBits {
                field: "compatibility MSI data",
                bits,
            });
        }
        let dlm = ((data >> 8) & 0b111) as u8;
        let Some(delivery_mode) = DeliveryMode::from_bits(dlm) else {
            return Err(FormatError::ReservedDeliveryMode(dlm));
        };
        Ok(DecodedMsi::Compatibility(CompatMsi {
            destination: (address >> COMPAT_DEST_SHIFT) as u8,
            destination_mode: DestinationMode::from_bit(address & DM != 0),
            redirection_hint: address & RH != 0,
            vector: data as u8,
            delivery_mode,
            trigger_mode: TriggerMode::from_bit(data & TRIGGER != 0),
            level_assert: data & LEVEL_ASSERT != 0,
        }))
    }

    /// Whether the address has the remappable-format bit set.
    pub const fn is_remappable(self) -> bool {
        self.address & FORMAT != 0
    }
}
