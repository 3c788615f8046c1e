//! Microsoft's Serial Port Console Redirection table ("SPCR", revision 2 and later; the table's
//! layout is Microsoft's SPCR specification, its Generic Address Structure ACPI 6.5 §5.2.3.2, the
//! interface type numbers those of the DBG2 specification's serial port subtypes).
//!
//! Layout after the 36-byte ACPI header: 36 interface type, 40 base address (GAS: 40 address
//! space, 41 register bit width, 42 bit offset, 43 access size, 44 address), 52 interrupt type,
//! 53 PC-AT IRQ, 54 global system interrupt, 58 configured baud rate code, 59 parity, 60 stop
//! bits, 61 flow control, 62 terminal type, 63 language, 64 PCI device ID, 66 PCI vendor ID,
//! 68 PCI bus, 69 PCI device, 70 PCI function, 71 PCI flags, 75 PCI segment, 76 UART clock
//! frequency (revision 3); revision 4 adds 80 precise baud rate. Revision 2's table is 80 bytes.
//!
//! Only 16550-type UARTs are accepted (interface type 0, a full 16550; 0x01, the "16550 subset"
//! of DBGP revision 1, i.e. a 16450: the 16550's registers without its FIFOs; and 0x12, a
//! 16550-compatible UART with its register width given by the GAS); anything else is refused by
//! name, and no input makes [`parse`] panic. The 16450 is driven as a 16550: Conduit's driver
//! sends one byte per LSR.THRE (`crate::uart::send`), so it never relies on a FIFO, and the
//! FIFO-control write of its initialisation lands on the 16450's read-only IIR, which ignores it.

use core::fmt;

/// Length of a revision 2 (and 3) table.
pub const LEN: usize = 80;
/// The revision [`encode`] writes.
pub const REVISION: u8 = 2;
/// The PCI device ID that means "not a PCI device".
pub const NOT_PCI: u16 = 0xffff;

/// The DBG2 serial subtype of a full 16550.
pub const TYPE_16550: u8 = 0x00;
/// The DBG2 serial subtype of the 16550 subset of DBGP revision 1 (a 16450: no FIFOs).
pub const TYPE_16450: u8 = 0x01;
/// The DBG2 serial subtype of a 16550-compatible UART described by the GAS.
pub const TYPE_16550_GAS: u8 = 0x12;

/// GAS address space IDs (ACPI 6.5 Table 5.25).
const SPACE_MEMORY: u8 = 0;
const SPACE_IO: u8 = 1;

/// Why a table is not a usable SPCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpcrError {
    /// Fewer bytes than a revision 2 table, or than the header's length.
    TooShort {
        /// The bytes there are.
        len: usize,
        /// The bytes needed.
        needed: usize,
    },
    /// The signature is not `SPCR`.
    BadSignature([u8; 4]),
    /// The bytes of the table do not sum to 0 (mod 256).
    BadChecksum(u8),
    /// Revisions before 2 have no PCI fields and a different interface type list.
    OldRevision(u8),
    /// Not a 16550-type UART (a PL011, an SBSA UART, ...).
    UnsupportedInterface(u8),
    /// The base address is neither in system memory nor in I/O space.
    UnsupportedAddressSpace(u8),
    /// An I/O port address above 0xffff.
    PortOutOfRange(u64),
    /// A register width other than 8 or 32 bits.
    UnsupportedRegisterWidth {
        /// GAS register bit width.
        bit_width: u8,
        /// GAS access size (1 byte, 2 word, 3 dword, 4 qword; 0 undefined).
        access_size: u8,
    },
    /// No base address and no PCI device to find one from.
    NoAddress,
    /// A configured baud rate code the specification does not define.
    BadBaudCode(u8),
}

impl fmt::Display for SpcrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len, needed } => {
                write!(f, "SPCR is {len} bytes, shorter than the {needed} it needs")
            }
            Self::BadSignature(s) => write!(f, "signature {s:02x?} is not \"SPCR\""),
            Self::BadChecksum(sum) => write!(f, "SPCR bytes sum to {sum:#04x}, not 0"),
            Self::OldRevision(r) => write!(f, "SPCR revision {r} (before 2) is not supported"),
            Self::UnsupportedInterface(t) => write!(
                f,
                "SPCR interface type {t:#04x} is not a 16550 (types 0x00, 0x01 and 0x12 are \
                 supported)"
            ),
            Self::UnsupportedAddressSpace(s) => write!(
                f,
                "SPCR base address in address space {s} (neither memory nor I/O)"
            ),
            Self::PortOutOfRange(a) => write!(f, "SPCR I/O port {a:#x} is above 0xffff"),
            Self::UnsupportedRegisterWidth {
                bit_width,
                access_size,
            } => write!(
                f,
                "SPCR register width {bit_width} bits (access size {access_size}) is not 8 or 32"
            ),
            Self::NoAddress => write!(f, "SPCR gives no base address and no PCI device"),
            Self::BadBaudCode(c) => write!(f, "SPCR baud rate code {c} is undefined"),
        }
    }
}

/// Where the UART's registers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registers {
    /// I/O ports `base..base + 8`, one port per register.
    Io {
        /// The first port.
        base: u16,
    },
    /// Memory-mapped, register `i` at `base + i * stride`, accessed `stride` bytes wide.
    Mmio {
        /// Physical address of register 0.
        base: u64,
        /// 1 (byte registers) or 4 (32-bit registers).
        stride: u8,
    },
}

impl fmt::Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { base } => write!(f, "port {base:#x}"),
            Self::Mmio { base, stride } => {
                write!(f, "MMIO {base:#x} ({}-bit registers)", stride * 8)
            }
        }
    }
}

/// A PCI serial card, by its place and identity (the SPCR's PCI fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciUart {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Segment (PCI segment group).
    pub segment: u8,
    /// Bus number.
    pub bus: u8,
    /// Device number.
    pub dev: u8,
    /// Function number.
    pub func: u8,
}

impl fmt::Display for PciUart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCI {:04x}:{:02x}:{:02x}.{:x} ({:04x}:{:04x})",
            self.segment, self.bus, self.dev, self.func, self.vendor, self.device
        )
    }
}

/// A decoded SPCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spcr {
    /// Table revision (2 or later).
    pub revision: u8,
    /// [`TYPE_16550`], [`TYPE_16450`] or [`TYPE_16550_GAS`].
    pub interface: u8,
    /// The registers as the GAS gives them; `None` for a PCI card whose address is left 0 (its
    /// BAR says where it is).
    pub registers: Option<Registers>,
    /// The configured baud rate; `None`: "as is" (the firmware's setting, code 0).
    pub baud: Option<u32>,
    /// The PCI serial card, when the PCI device ID is not 0xffff.
    pub pci: Option<PciUart>,
}

/// Whether a DBG2 serial subtype (the SPCR's interface type) is a UART with the 16550's
/// registers that Conduit's driver runs: [`TYPE_16550`], [`TYPE_16450`], [`TYPE_16550_GAS`].
#[must_use]
pub fn is_16550_type(subtype: u16) -> bool {
    [TYPE_16550, TYPE_16450, TYPE_16550_GAS]
        .iter()
        .any(|t| u16::from(*t) == subtype)
}

/// The configured baud rate codes of the table (3, 4, 6, 7); 0 is "as is".
fn baud_of(code: u8) -> Result<Option<u32>, SpcrError> {
    Ok(Some(match code {
        0 => return Ok(None),
        3 => 9_600,
        4 => 19_200,
        6 => 57_600,
        7 => 115_200,
        c => return Err(SpcrError::BadBaudCode(c)),
    }))
}

fn code_of(baud: Option<u32>) -> u8 {
    match baud {
        Some(9_600) => 3,
        Some(19_200) => 4,
        Some(57_600) => 6,
        Some(115_200) => 7,
        _ => 0,
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Decodes an SPCR (header included). `bytes` may run past the table: the header's length
/// bounds what is read.
pub fn parse(bytes: &[u8]) -> Result<Spcr, SpcrError> {
    if bytes.len() < LEN {
        return Err(SpcrError::TooShort {
            len: bytes.len(),
            needed: LEN,
        });
    }
    let signature = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if &signature != b"SPCR" {
        return Err(SpcrError::BadSignature(signature));
    }
    let length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if length < LEN || length > bytes.len() {
        return Err(SpcrError::TooShort {
            len: bytes.len().min(length),
            needed: length.max(LEN),
        });
    }
    let table = &bytes[..length];
    let sum = table.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        return Err(SpcrError::BadChecksum(sum));
    }
    let revision = table[8];
    if revision < 2 {
        return Err(SpcrError::OldRevision(revision));
    }
    let interface = table[36];
    if !is_16550_type(u16::from(interface)) {
        return Err(SpcrError::UnsupportedInterface(interface));
    }
    let pci = match u16_at(table, 64) {
        NOT_PCI => None,
        device => Some(PciUart {
            device,
            vendor: u16_at(table, 66),
            bus: table[68],
            dev: table[69],
            func: table[70],
            segment: table[75],
        }),
    };
    let registers = match gas_registers(&table[40..52]) {
        Ok(r) => Some(r),
        Err(SpcrError::NoAddress) if pci.is_some() => None,
        Err(e) => return Err(e),
    };
    let mut baud = baud_of(table[58])?;
    // Revision 4: a precise baud rate overrides the code when it is not 0.
    if revision >= 4 && length >= 84 {
        let precise = u32::from_le_bytes([table[80], table[81], table[82], table[83]]);
        if precise != 0 {
            baud = Some(precise);
        }
    }
    Ok(Spcr {
        revision,
        interface,
        registers,
        baud,
        pci,
    })
}

/// The registers a 12-byte Generic Address Structure (ACPI 6.5 §5.2.3.2) names for a 16550:
/// I/O space (one port per register) or system memory (stride from the width).
/// [`SpcrError::NoAddress`] for address 0.
pub fn gas_registers(gas: &[u8]) -> Result<Registers, SpcrError> {
    let mut addr = [0u8; 8];
    addr.copy_from_slice(gas.get(4..12).ok_or(SpcrError::NoAddress)?);
    let address = u64::from_le_bytes(addr);
    if address == 0 {
        return Err(SpcrError::NoAddress);
    }
    let (space, bit_width, access_size) = (gas[0], gas[1], gas[3]);
    match space {
        SPACE_IO => Ok(Registers::Io {
            base: u16::try_from(address).map_err(|_| SpcrError::PortOutOfRange(address))?,
        }),
        SPACE_MEMORY => Ok(Registers::Mmio {
            base: address,
            stride: stride(bit_width, access_size)?,
        }),
        s => Err(SpcrError::UnsupportedAddressSpace(s)),
    }
}

/// The register stride of an MMIO 16550: the access size when given, else the bit width.
fn stride(bit_width: u8, access_size: u8) -> Result<u8, SpcrError> {
    match (access_size, bit_width) {
        (1, _) | (0, 8) => Ok(1),
        (3, _) | (0, 32) => Ok(4),
        _ => Err(SpcrError::UnsupportedRegisterWidth {
            bit_width,
            access_size,
        }),
    }
}

/// Encodes a revision 2 table (OEM fields "CONDUI"/"CONDUIT ", interrupt type 0: the console is
/// polled) with a valid checksum. A PCI card without `registers` gets address 0 in I/O space.
pub fn encode(spcr: &Spcr) -> [u8; LEN] {
    let mut t = [0u8; LEN];
    t[0..4].copy_from_slice(b"SPCR");
    t[4..8].copy_from_slice(&(LEN as u32).to_le_bytes());
    t[8] = REVISION;
    t[10..16].copy_from_slice(b"CONDUI");
    t[16..24].copy_from_slice(b"CONDUIT ");
    t[24..28].copy_from_slice(&1u32.to_le_bytes());
    t[36] = spcr.interface;
    let (space, width, access, address) = match spcr.registers {
        Some(Registers::Io { base }) => (SPACE_IO, 8, 1, u64::from(base)),
        Some(Registers::Mmio { base, stride }) => (
            SPACE_MEMORY,
            stride * 8,
            if stride == 4 { 3 } else { 1 },
            base,
        ),
        None => (SPACE_IO, 8, 1, 0),
    };
    t[40] = space;
    t[41] = width;
    t[43] = access;
    t[44..52].copy_from_slice(&address.to_le_bytes());
    t[58] = code_of(spcr.baud);
    t[60] = 1;
    match spcr.pci {
        Some(p) => {
            t[64..66].copy_from_slice(&p.device.to_le_bytes());
            t[66..68].copy_from_slice(&p.vendor.to_le_bytes());
            t[68] = p.bus;
            t[69] = p.dev;
            t[70] = p.func;
            t[75] = p.segment;
        }
        None => {
            t[64..66].copy_from_slice(&NOT_PCI.to_le_bytes());
            t[66..68].copy_from_slice(&NOT_PCI.to_le_bytes());
        }
    }
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

#[cfg(test)]
#[path = "spcr_tests.rs"]
mod tests;
