//! The guest's console: a 16550A at I/O ports 0x3f8-0x3ff (`conduit-vuart`'s model, which Linux's
//! 8250 driver detects as such). Its output is collected per line and logged with the guest's
//! name in front; while the operator has the console attached (`console <guest>` on the debug
//! shell) the bytes go to the console as they are, and what the operator types goes into the
//! UART's receive FIFO. Its interrupt output drives the guest's I/O APIC pin 4 (`vplatform.rs`).

use alloc::collections::VecDeque;
use conduit_vuart::Uart16550;
use log::info;

/// The base port of the virtual COM1.
pub const BASE: u16 = 0x3f8;
const LINE_MAX: usize = 200;
/// Typed bytes held while the receive FIFO is full (beyond that, input is dropped and counted).
const INPUT_MAX: usize = 4096;

#[derive(Debug)]
pub struct VirtualUart {
    model: Uart16550,
    line: [u8; LINE_MAX],
    len: usize,
    /// The operator's console is attached: output goes out raw, not per line.
    pub attached: bool,
    /// Bytes typed at the console that did not fit in the receive FIFO yet.
    input: VecDeque<u8>,
    /// Typed bytes dropped because `input` was full.
    pub input_dropped: u64,
}

impl VirtualUart {
    pub fn new() -> Self {
        Self {
            model: Uart16550::new(),
            line: [0; LINE_MAX],
            len: 0,
            attached: false,
            input: VecDeque::new(),
            input_dropped: 0,
        }
    }

    /// Whether `port` belongs to this UART.
    pub fn claims(port: u16) -> bool {
        (BASE..BASE + 8).contains(&port)
    }

    /// A guest OUT to one of the UART's ports.
    pub fn write(&mut self, guest: &str, port: u16, value: u8) {
        if let Some(sent) = self.model.write((port - BASE) as u8, value) {
            self.put(guest, sent);
        }
    }

    /// A guest IN from one of the UART's ports; a read that made room in the receive FIFO lets
    /// held input in.
    pub fn read(&mut self, port: u16) -> u8 {
        let value = self.model.read((port - BASE) as u8);
        self.refill();
        value
    }

    /// The UART's interrupt output (pending interrupt gated by MCR.OUT2).
    pub fn irq(&self) -> bool {
        self.model.irq()
    }

    /// A byte the operator typed while attached.
    pub fn type_byte(&mut self, byte: u8) {
        if self.input.len() >= INPUT_MAX {
            self.input_dropped += 1;
            return;
        }
        self.input.push_back(byte);
        self.refill();
    }

    fn refill(&mut self) {
        while self.model.rx_fifo_space() > 0 {
            let Some(b) = self.input.pop_front() else {
                break;
            };
            self.model.receive(b);
        }
    }

    /// One byte of console output: raw to the operator while attached, else collected into
    /// lines; a newline or a full line is logged.
    pub fn put(&mut self, guest: &str, byte: u8) {
        if self.attached {
            conduit_hw::console::shell::raw(&[byte]);
            return;
        }
        match byte {
            b'\n' => self.flush(guest),
            b'\r' => {}
            b => {
                // Non-printable bytes are shown as '.', so a guest cannot send control sequences
                // to the operator's terminal through the log.
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
