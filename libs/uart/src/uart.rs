//! The 16550 register set and the driver logic, generic over how registers are reached.
//!
//! Registers (PC16550D data sheet, "Register Description"): index 0 RBR (read) / THR (write),
//! 1 IER, 2 IIR (read) / FCR (write), 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR; with LCR.DLAB (bit 7)
//! set, indexes 0 and 1 are the divisor latch DLL and DLM. The baud rate is the 1.8432 MHz
//! reference clock / 16 / divisor, so 115200 baud is divisor 1.

use core::fmt;

/// Receiver buffer (read) / transmitter holding register (write), DLAB = 0.
pub const RBR_THR: u8 = 0;
/// Interrupt enable register (DLAB = 0).
pub const IER: u8 = 1;
/// Divisor latch, low byte (DLAB = 1).
pub const DLL: u8 = 0;
/// Divisor latch, high byte (DLAB = 1).
pub const DLM: u8 = 1;
/// FIFO control register (write).
pub const FCR: u8 = 2;
/// Line control register.
pub const LCR: u8 = 3;
/// Modem control register.
pub const MCR: u8 = 4;
/// Line status register.
pub const LSR: u8 = 5;
/// Scratch register: holds whatever was written, nothing else.
pub const SCR: u8 = 7;

/// LCR bit 7: divisor latch access.
pub const LCR_DLAB: u8 = 1 << 7;
/// LSR bit 0: a received byte is waiting.
pub const LSR_DR: u8 = 1 << 0;
/// LSR bit 5: the transmitter holding register is empty.
pub const LSR_THRE: u8 = 1 << 5;
/// LSR bit 6: the transmitter is empty (holding and shift register).
pub const LSR_TEMT: u8 = 1 << 6;
/// FCR: FIFOs on, both cleared, receive trigger at 14 bytes.
pub const FCR_ENABLE_CLEAR: u8 = 0xc7;
/// MCR: DTR and RTS asserted; OUT2 clear (the UART raises no interrupt on the bus).
pub const MCR_DTR_RTS: u8 = 0x03;

/// The rate the divisor divides: the 1.8432 MHz reference clock / 16.
pub const BASE_BAUD: u32 = 115_200;
/// The baud rate Conduit uses unless `conduit.toml` says otherwise.
pub const DEFAULT_BAUD: u32 = 115_200;

/// How many line-status polls a transmit waits for the holding register at most (about a
/// millisecond of port reads: a byte at 9600 baud takes about 1 ms, so a working UART is never
/// abandoned, and a dead one costs one bounded wait per byte).
pub const SEND_POLLS: u32 = 20_000;
/// How many polls [`drain`] waits for the transmitter to empty at most (a full 16-byte FIFO).
pub const DRAIN_POLLS: u32 = 1_000_000;

/// Reads and writes the UART's registers by index (0-7); the implementation applies the
/// register stride and the access width.
pub trait RegisterAccess {
    /// Reads register `index`.
    fn read(&mut self, index: u8) -> u8;
    /// Writes `value` to register `index`.
    fn write(&mut self, index: u8, value: u8);
}

/// Why a UART could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartError {
    /// The baud rate is not 115200 divided by a whole number (1-65535).
    UnsupportedBaud(u32),
    /// Nothing answers: the scratch register does not keep what was written, or LSR reads all
    /// ones (a floating bus).
    Absent,
    /// The settings read back after programming are not the ones written.
    ReadBack {
        /// The divisor read back.
        divisor: u16,
        /// The LCR read back.
        lcr: u8,
    },
}

impl fmt::Display for UartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedBaud(b) => write!(
                f,
                "{b} baud is not {BASE_BAUD} divided by a whole number (e.g. 115200, 57600, 38400, \
                 19200, 9600)"
            ),
            Self::Absent => write!(
                f,
                "no UART answers there (the scratch register does not read back, or the line \
                 status reads 0xff)"
            ),
            Self::ReadBack { divisor, lcr } => write!(
                f,
                "the line settings did not read back (divisor {divisor}, LCR {lcr:#04x})"
            ),
        }
    }
}

/// The divisor for `baud`: `BASE_BAUD / baud`, which must be exact and fit the 16-bit latch.
pub fn divisor(baud: u32) -> Result<u16, UartError> {
    if baud == 0 || !BASE_BAUD.is_multiple_of(baud) {
        return Err(UartError::UnsupportedBaud(baud));
    }
    u16::try_from(BASE_BAUD / baud).map_err(|_| UartError::UnsupportedBaud(baud))
}

/// Parity, as LCR bits 5:3 encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
    /// Parity bit always 1.
    Mark,
    /// Parity bit always 0.
    Space,
}

/// Word length, parity and stop bits: the frame format LCR bits 5:0 encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// 5-8 data bits.
    pub data_bits: u8,
    /// The parity bit.
    pub parity: Parity,
    /// 1 or 2 stop bits (1.5 for 5-bit words, shown as 2).
    pub stop_bits: u8,
}

impl LineSettings {
    /// 8 data bits, no parity, 1 stop bit.
    pub const EIGHT_N_ONE: Self = Self {
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
    };

    /// The LCR value (DLAB and break clear). Data bits outside 5-8 are clamped.
    pub fn lcr(&self) -> u8 {
        let wls = self.data_bits.clamp(5, 8) - 5;
        let stb = if self.stop_bits >= 2 { 1 << 2 } else { 0 };
        let parity = match self.parity {
            Parity::None => 0,
            Parity::Odd => 0b001,
            Parity::Even => 0b011,
            Parity::Mark => 0b101,
            Parity::Space => 0b111,
        };
        wls | stb | (parity << 3)
    }

    /// Decodes LCR bits 5:0 (DLAB and break are ignored).
    pub fn from_lcr(lcr: u8) -> Self {
        let parity = match (lcr >> 3) & 0b111 {
            0b001 => Parity::Odd,
            0b011 => Parity::Even,
            0b101 => Parity::Mark,
            0b111 => Parity::Space,
            _ => Parity::None,
        };
        Self {
            data_bits: (lcr & 0b11) + 5,
            parity,
            stop_bits: if lcr & (1 << 2) != 0 { 2 } else { 1 },
        }
    }
}

impl fmt::Display for LineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
            Parity::Mark => 'M',
            Parity::Space => 'S',
        };
        write!(f, "{}{p}{}", self.data_bits, self.stop_bits)
    }
}

/// What a programmed UART reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBack {
    /// The divisor latch (DLM:DLL).
    pub divisor: u16,
    /// The frame format from LCR.
    pub settings: LineSettings,
}

impl ReadBack {
    /// The baud rate the divisor gives (0 for a zero divisor).
    pub fn baud(&self) -> u32 {
        BASE_BAUD.checked_div(u32::from(self.divisor)).unwrap_or(0)
    }
}

impl fmt::Display for ReadBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (divisor {}, read back)",
            self.baud(),
            self.settings,
            self.divisor
        )
    }
}

/// Whether a UART answers: LSR is not all ones and the scratch register keeps two patterns.
/// Leaves the scratch register 0.
pub fn present<A: RegisterAccess>(regs: &mut A) -> bool {
    if regs.read(LSR) == 0xff {
        return false;
    }
    let answers = [0x5a, 0xa5].iter().all(|&pattern| {
        regs.write(SCR, pattern);
        regs.read(SCR) == pattern
    });
    regs.write(SCR, 0);
    answers
}

/// Programs the UART for polled use: interrupts off, `baud` and `settings` through the divisor
/// latch, FIFOs on and cleared, DTR and RTS; then reads the divisor and LCR back.
pub fn program<A: RegisterAccess>(
    regs: &mut A,
    baud: u32,
    settings: LineSettings,
) -> Result<ReadBack, UartError> {
    let div = divisor(baud)?;
    if !present(regs) {
        return Err(UartError::Absent);
    }
    let lcr = settings.lcr();
    regs.write(LCR, 0);
    regs.write(IER, 0);
    regs.write(LCR, LCR_DLAB);
    regs.write(DLL, div as u8);
    regs.write(DLM, (div >> 8) as u8);
    regs.write(LCR, lcr);
    regs.write(FCR, FCR_ENABLE_CLEAR);
    regs.write(MCR, MCR_DTR_RTS);
    let back = read_back(regs);
    if back.divisor != div || back.settings.lcr() != lcr {
        return Err(UartError::ReadBack {
            divisor: back.divisor,
            lcr: back.settings.lcr(),
        });
    }
    Ok(back)
}

/// Reads the divisor latch and LCR (setting DLAB for the latch, then restoring LCR).
pub fn read_back<A: RegisterAccess>(regs: &mut A) -> ReadBack {
    let lcr = regs.read(LCR);
    regs.write(LCR, lcr | LCR_DLAB);
    let divisor = u16::from_le_bytes([regs.read(DLL), regs.read(DLM)]);
    regs.write(LCR, lcr & !LCR_DLAB);
    ReadBack {
        divisor,
        settings: LineSettings::from_lcr(lcr),
    }
}

/// Sends one byte once the holding register is empty, waiting at most [`SEND_POLLS`] polls.
/// Returns whether the byte was written (a dead UART never holds the caller up for long).
pub fn send<A: RegisterAccess>(regs: &mut A, byte: u8) -> bool {
    for _ in 0..SEND_POLLS {
        let lsr = regs.read(LSR);
        if lsr == 0xff {
            return false;
        }
        if lsr & LSR_THRE != 0 {
            regs.write(RBR_THR, byte);
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// One received byte, if one is waiting; never waits.
pub fn try_receive<A: RegisterAccess>(regs: &mut A) -> Option<u8> {
    let lsr = regs.read(LSR);
    if lsr == 0xff || lsr & LSR_DR == 0 {
        return None;
    }
    Some(regs.read(RBR_THR))
}

/// Waits (at most [`DRAIN_POLLS`] polls) until every byte has left the transmitter.
pub fn drain<A: RegisterAccess>(regs: &mut A) {
    for _ in 0..DRAIN_POLLS {
        let lsr = regs.read(LSR);
        if lsr == 0xff || lsr & LSR_TEMT != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

#[cfg(test)]
#[path = "uart_tests.rs"]
mod tests;
