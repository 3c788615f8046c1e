//! Microsoft's Debug Port Table 2 ("DBG2"): the debug ports the firmware describes, of which
//! Conduit uses the first 16550-type serial port when there is no SPCR (`docs/console.md`).
//!
//! Layout after the 36-byte ACPI header: 36 offset of the first Debug Device Information
//! structure, 40 their number. Each structure: 0 revision, 1 length (u16), 3 number of Generic
//! Address Structures, 4 namespace string length, 6 its offset, 8 OEM data length, 10 its
//! offset, 12 port type (0x8000: serial), 14 port subtype (the same numbers as the SPCR's
//! interface type), 16 reserved, 18 offset of the GAS array, 20 offset of the address sizes
//! (u32 each); offsets are from the start of the structure. The UART's registers are the first
//! GAS. No input makes [`parse`] panic.

use crate::spcr::{Registers, gas_registers, is_16550_type};
use core::fmt;

/// The port type of serial ports.
pub const PORT_SERIAL: u16 = 0x8000;
/// Header and the two fields that locate the device structures.
const HEADER_LEN: usize = 44;
/// The fixed part of a Debug Device Information structure.
const DEVICE_LEN: usize = 22;
/// Length of a Generic Address Structure.
const GAS_LEN: usize = 12;

/// Why a DBG2 gives no usable UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dbg2Error {
    /// Fewer bytes than the header, or than the header's length.
    TooShort {
        /// The bytes there are.
        len: usize,
        /// The bytes needed.
        needed: usize,
    },
    /// The signature is not `DBG2`.
    BadSignature([u8; 4]),
    /// The bytes of the table do not sum to 0 (mod 256).
    BadChecksum(u8),
    /// Device structure `index` (from 0) does not fit the table, or its GAS does not fit it.
    BadDevice {
        /// Which structure.
        index: u32,
    },
    /// Device structure `index` is a 16550 whose address is unusable (see the SPCR's errors).
    BadAddress {
        /// Which structure.
        index: u32,
        /// Why.
        why: crate::spcr::SpcrError,
    },
    /// No device is a 16550-type serial port.
    NoSerial16550,
}

impl fmt::Display for Dbg2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len, needed } => {
                write!(f, "DBG2 is {len} bytes, shorter than the {needed} it needs")
            }
            Self::BadSignature(s) => write!(f, "signature {s:02x?} is not \"DBG2\""),
            Self::BadChecksum(sum) => write!(f, "DBG2 bytes sum to {sum:#04x}, not 0"),
            Self::BadDevice { index } => {
                write!(f, "DBG2 device {index} does not fit the table")
            }
            Self::BadAddress { index, why } => write!(f, "DBG2 device {index}: {why}"),
            Self::NoSerial16550 => write!(f, "DBG2 lists no 16550-type serial port"),
        }
    }
}

/// A 16550-type serial port from the DBG2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dbg2Uart {
    /// Its position among the table's devices (from 0).
    pub index: u32,
    /// The port subtype (0x00, 0x01 or 0x12).
    pub subtype: u16,
    /// Where its registers are.
    pub registers: Registers,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The first 16550-type serial port of a DBG2 (header included; `bytes` may run past the table).
pub fn parse(bytes: &[u8]) -> Result<Dbg2Uart, Dbg2Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Dbg2Error::TooShort {
            len: bytes.len(),
            needed: HEADER_LEN,
        });
    }
    let signature = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if &signature != b"DBG2" {
        return Err(Dbg2Error::BadSignature(signature));
    }
    let length = u32_at(bytes, 4).unwrap_or(0) as usize;
    if length < HEADER_LEN || length > bytes.len() {
        return Err(Dbg2Error::TooShort {
            len: bytes.len().min(length),
            needed: length.max(HEADER_LEN),
        });
    }
    let table = &bytes[..length];
    let sum = table.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        return Err(Dbg2Error::BadChecksum(sum));
    }
    let mut at = u32_at(table, 36).unwrap_or(0) as usize;
    let count = u32_at(table, 40).unwrap_or(0);
    for index in 0..count {
        let bad = Dbg2Error::BadDevice { index };
        let device = table
            .get(at..)
            .filter(|d| d.len() >= DEVICE_LEN)
            .ok_or(bad)?;
        let len = usize::from(u16_at(device, 1).ok_or(bad)?);
        let device = device.get(..len).filter(|_| len >= DEVICE_LEN).ok_or(bad)?;
        let port_type = u16_at(device, 12).ok_or(bad)?;
        let subtype = u16_at(device, 14).ok_or(bad)?;
        if port_type == PORT_SERIAL && is_16550_type(subtype) && device[3] >= 1 {
            let gas_at = usize::from(u16_at(device, 18).ok_or(bad)?);
            let gas = device.get(gas_at..gas_at + GAS_LEN).ok_or(bad)?;
            let registers =
                gas_registers(gas).map_err(|why| Dbg2Error::BadAddress { index, why })?;
            return Ok(Dbg2Uart {
                index,
                subtype,
                registers,
            });
        }
        at += len;
    }
    Err(Dbg2Error::NoSerial16550)
}

#[cfg(test)]
#[path = "dbg2_tests.rs"]
mod tests;
