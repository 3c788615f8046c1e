//! The guest's console: a virtual 16550 UART at I/O ports 0x3f8-0x3ff (only what a polling
//! driver needs: THR, LSR always "transmitter empty", scratch and control registers stored).
//! Output is collected per line and logged with the guest's name in front.

use log::info;

/// The base port of the virtual COM1.
pub const BASE: u16 = 0x3f8;
const LINE_MAX: usize = 200;
/// LSR: transmitter holding register empty (bit 5) and transmitter empty (bit 6).
const LSR_IDLE: u8 = 0x60;

#[derive(Debug)]
pub struct VirtualUart {
    line: [u8; LINE_MAX],
    len: usize,
    /// IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR as last written (LSR and IIR reads are synthesised).
    regs: [u8; 8],
}

impl VirtualUart {
    pub const fn new() -> Self {
        Self {
            line: [0; LINE_MAX],
            len: 0,
            regs: [0; 8],
        }
    }

    /// Whether `port` belongs to this UART.
    pub fn claims(port: u16) -> bool {
        (BASE..BASE + 8).contains(&port)
    }

    /// A guest OUT to one of the UART's ports.
    pub fn write(&mut self, guest: &str, port: u16, value: u8) {
        let reg = usize::from(port - BASE);
        let dlab = self.regs[3] & 0x80 != 0;
        if reg == 0 && !dlab {
            self.put(guest, value);
        } else {
            self.regs[reg] = value;
        }
    }

    /// A guest IN from one of the UART's ports.
    pub fn read(&self, port: u16) -> u8 {
        match port - BASE {
            0 => 0,
            2 => 0x01, // IIR: no interrupt pending
            5 => LSR_IDLE,
            r => self.regs[usize::from(r)],
        }
    }

    /// Appends one byte of console output; a newline or a full line is logged.
    pub fn put(&mut self, guest: &str, byte: u8) {
        match byte {
            b'\n' => self.flush(guest),
            b'\r' => {}
            b => {
                // Non-printable bytes are shown as '.', so a guest cannot send control sequences
                // to the operator's terminal.
                self.line[self.len] = if b.is_ascii_graphic() || b == b' ' {
                    b
                } else {
                    b'.'
                };
                self.len += 1;
                if self.len == LINE_MAX {
                    self.flush(guest);
                }
            }
        }
    }

    /// Logs the pending partial line, if any.
    pub fn flush(&mut self, guest: &str) {
        if self.len > 0 {
            let text = core::str::from_utf8(&self.line[..self.len]).unwrap_or("<invalid>");
            info!("{guest}: {text}");
            self.len = 0;
        }
    }
}
