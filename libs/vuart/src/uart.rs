//! The UART's state and its register accesses.

use crate::fifo::{RX_FIFO_SIZE, RxFifo};
use crate::regs::{
    FCR_CLEAR_RX, FCR_ENABLE, IER, IER_EDSSI, IER_ELSI, IER_ERBFI, IER_ETBEI, IER_MASK, IIR_FCR,
    IIR_FIFO_ENABLED, IIR_LINE_STATUS, IIR_MODEM_STATUS, IIR_NO_INT, IIR_RX_DATA, IIR_THRE,
    IIR_TIMEOUT, LCR, LCR_DLAB, LSR, LSR_DR, LSR_OE, LSR_TEMT, LSR_THRE, MCR, MCR_DTR, MCR_LOOP,
    MCR_MASK, MCR_OUT1, MCR_OUT2, MCR_RTS, MSR, MSR_CTS, MSR_DCD, MSR_DCTS, MSR_DDCD, MSR_DDSR,
    MSR_DSR, MSR_RI, MSR_TERI, RBR_THR, SCR,
};

/// The modem inputs a console presents when not in loopback: clear to send, data set ready
/// and carrier detect, i.e. a terminal that is always connected and ready. Ring is never on.
const EXTERNAL_MODEM_INPUTS: u8 = MSR_CTS | MSR_DSR | MSR_DCD;

/// The divisor latch after reset. The data sheet leaves it undefined; the model starts at 12
/// (9600 baud from the PC's 1.8432 MHz clock), what PC firmware usually leaves behind.
const RESET_DIVISOR: u16 = 12;

/// The pending interrupt sources in the data sheet's priority order (PC16550D Table IV,
/// "Interrupt Control Functions").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InterruptSource {
    /// Priority 1: an overrun (the only line error the model produces); cleared by reading LSR.
    LineStatus,
    /// Priority 2: received data at or above the trigger level (any data in 16450 mode);
    /// cleared when the FIFO drops below it.
    ReceivedData,
    /// Priority 2: data below the trigger level (FIFO mode). Without a clock the model raises
    /// it as soon as such data waits, so no byte is ever stuck below the trigger level; it
    /// clears when the FIFO is empty.
    CharacterTimeout,
    /// Priority 3: the transmitter holding register is empty; cleared by reading IIR while it
    /// is the reported source, or by writing THR (which, the transmitter being instantaneous,
    /// raises it again at once).
    TransmitterEmpty,
    /// Priority 4: a change of a modem input (MSR bits 3:0); cleared by reading MSR.
    ModemStatus,
}

impl InterruptSource {
    /// The IIR identification bits 3:1 (with bit 0, "no interrupt pending", clear).
    #[must_use]
    pub const fn iir_id(self) -> u8 {
        match self {
            Self::LineStatus => IIR_LINE_STATUS,
            Self::ReceivedData => IIR_RX_DATA,
            Self::CharacterTimeout => IIR_TIMEOUT,
            Self::TransmitterEmpty => IIR_THRE,
            Self::ModemStatus => IIR_MODEM_STATUS,
        }
    }
}

/// An emulated 16550A. See the crate documentation for the model's choices.
#[derive(Clone, Debug)]
pub struct Uart16550 {
    rx: RxFifo,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    divisor: u16,
    fifo_enabled: bool,
    /// The receive trigger level in bytes: 1, 4, 8 or 14.
    trigger: usize,
    /// LSR.OE: set by an overrun, cleared by reading LSR.
    overrun: bool,
    /// The THRE interrupt condition (see [`InterruptSource::TransmitterEmpty`]).
    thre_pending: bool,
    /// MSR bits 3:0.
    msr_delta: u8,
}

impl Default for Uart16550 {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart16550 {
    /// The UART after a master reset (PC16550D Table III): IER, LCR, MCR 0, FIFOs disabled and
    /// empty, no interrupt pending, LSR 0x60 (transmitter empty), no modem status change.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            rx: RxFifo::new(),
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            divisor: RESET_DIVISOR,
            fifo_enabled: false,
            trigger: 1,
            overrun: false,
            thre_pending: false,
            msr_delta: 0,
        }
    }

    /// A read of register `offset` (0-7 from the base port; only bits 2:0 are decoded, like
    /// the chip's A2-A0 inputs). Reads have the data sheet's side effects: RBR takes a byte out
    /// of the FIFO, IIR clears a THRE interrupt it reports, LSR clears the overrun bit, MSR
    /// clears the change bits.
    pub fn read(&mut self, offset: u8) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset & 7 {
            RBR_THR if dlab => self.divisor as u8,
            RBR_THR => self.rx.pop().unwrap_or(0),
            IER if dlab => (self.divisor >> 8) as u8,
            IER => self.ier,
            IIR_FCR => {
                let source = self.pending();
                if source == Some(InterruptSource::TransmitterEmpty) {
                    self.thre_pending = false;
                }
                let id = source.map_or(IIR_NO_INT, InterruptSource::iir_id);
                id | if self.fifo_enabled {
                    IIR_FIFO_ENABLED
                } else {
                    0
                }
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => {
                let lsr = self.lsr();
                self.overrun = false;
                lsr
            }
            MSR => {
                let msr = self.modem_inputs() | self.msr_delta;
                self.msr_delta = 0;
                msr
            }
            _ => self.scr,
        }
    }

    /// A write of `value` to register `offset` (bits 2:0 decoded). Returns the byte the
    /// transmitter sends to the outside world: a THR write outside loopback. In loopback the
    /// byte goes to the UART's own receiver instead. Writes to LSR and MSR are ignored (the
    /// data sheet reserves them for factory testing).
    pub fn write(&mut self, offset: u8, value: u8) -> Option<u8> {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset & 7 {
            RBR_THR if dlab => self.divisor = (self.divisor & 0xff00) | u16::from(value),
            RBR_THR => return self.transmit(value),
            IER if dlab => self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8),
            IER => {
                let enabling = value & IER_ETBEI != 0 && self.ier & IER_ETBEI == 0;
                self.ier = value & IER_MASK;
                // The THR is always empty, so enabling its interrupt raises it.
                if enabling {
                    self.thre_pending = true;
                }
            }
            IIR_FCR => self.write_fcr(value),
            LCR => self.lcr = value,
            MCR => self.write_mcr(value),
            SCR => self.scr = value,
            _ => {}
        }
        None
    }

    /// A byte from the console for the receiver. Returns `false` when it was not received
    /// cleanly: the receive FIFO was full (overrun: LSR.OE is set; in FIFO mode the new byte is
    /// lost, in 16450 mode it replaces the unread one, as the data sheet describes), or the UART
    /// is in loopback, where the receiver is disconnected from the line and the byte is dropped.
    pub fn receive(&mut self, byte: u8) -> bool {
        if self.loopback() {
            return false;
        }
        self.receive_internal(byte)
    }

    /// How many bytes [`receive`](Self::receive) can take without an overrun: the free room in
    /// the FIFO (16 bytes in FIFO mode, 1 in 16450 mode), 0 in loopback.
    #[must_use]
    pub fn rx_fifo_space(&self) -> usize {
        if self.loopback() {
            0
        } else {
            self.rx_capacity() - self.rx.len()
        }
    }

    /// The interrupt output as wired on a PC: an interrupt is pending and MCR.OUT2 is set (OUT2
    /// enables the IRQ driver). In loopback the OUT2 pin is forced inactive (the data sheet
    /// forces all modem outputs inactive), so the output is off.
    #[must_use]
    pub fn irq(&self) -> bool {
        self.mcr & MCR_OUT2 != 0 && !self.loopback() && self.pending().is_some()
    }

    /// The highest-priority pending interrupt, what IIR would report (without a read's side
    /// effect).
    #[must_use]
    pub fn pending(&self) -> Option<InterruptSource> {
        if self.ier & IER_ELSI != 0 && self.overrun {
            return Some(InterruptSource::LineStatus);
        }
        if self.ier & IER_ERBFI != 0 && self.rx.len() > 0 {
            if !self.fifo_enabled || self.rx.len() >= self.trigger {
                return Some(InterruptSource::ReceivedData);
            }
            return Some(InterruptSource::CharacterTimeout);
        }
        if self.ier & IER_ETBEI != 0 && self.thre_pending {
            return Some(InterruptSource::TransmitterEmpty);
        }
        if self.ier & IER_EDSSI != 0 && self.msr_delta != 0 {
            return Some(InterruptSource::ModemStatus);
        }
        None
    }

    /// The divisor latch (DLM:DLL).
    #[must_use]
    pub const fn divisor(&self) -> u16 {
        self.divisor
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled { RX_FIFO_SIZE } else { 1 }
    }

    fn lsr(&self) -> u8 {
        let mut lsr = LSR_THRE | LSR_TEMT;
        if self.rx.len() > 0 {
            lsr |= LSR_DR;
        }
        if self.overrun {
            lsr |= LSR_OE;
        }
        lsr
    }

    /// The transmitter is instantaneous: the byte leaves at once and THR is empty again.
    fn transmit(&mut self, byte: u8) -> Option<u8> {
        self.thre_pending = true;
        if self.loopback() {
            // An overrun in loopback is recorded in LSR like any other.
            self.receive_internal(byte);
            return None;
        }
        Some(byte)
    }

    fn receive_internal(&mut self, byte: u8) -> bool {
        if self.rx.push(byte, self.rx_capacity()) {
            return true;
        }
        self.overrun = true;
        if !self.fifo_enabled {
            self.rx.replace_newest(byte);
        }
        false
    }

    /// FCR (PC16550D, "FIFO Control Register"): changing bit 0 clears both FIFOs; the other bits are taken only
    /// while bit 0 is written as 1. Bit 1 clears the receive FIFO; bit 2 the transmit FIFO
    /// (always empty here); bits 7:6 select the trigger level; bit 3 (DMA mode) and bits 5:4
    /// have no effect.
    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled {
            self.rx.clear();
            self.fifo_enabled = enable;
        }
        if !enable {
            return;
        }
        if value & FCR_CLEAR_RX != 0 {
            self.rx.clear();
        }
        self.trigger = match value >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        };
    }

    /// MCR: bits 4:0 are kept. A change of the modem inputs it causes (in or out of loopback,
    /// or of the looped-back outputs) sets the MSR change bits.
    fn write_mcr(&mut self, value: u8) {
        let before = self.modem_inputs();
        self.mcr = value & MCR_MASK;
        let after = self.modem_inputs();
        let changed = before ^ after;
        if changed & MSR_CTS != 0 {
            self.msr_delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_delta |= MSR_DDSR;
        }
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_delta |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            self.msr_delta |= MSR_DDCD;
        }
    }

    /// MSR bits 7:4. In loopback the outputs feed the inputs (PC16550D, "Modem Control
    /// Register": RTS → CTS, DTR → DSR, OUT1 → RI, OUT2 → DCD); otherwise the console's fixed
    /// inputs.
    fn modem_inputs(&self) -> u8 {
        if !self.loopback() {
            return EXTERNAL_MODEM_INPUTS;
        }
        let mut inputs = 0;
        if self.mcr & MCR_RTS != 0 {
            inputs |= MSR_CTS;
        }
        if self.mcr & MCR_DTR != 0 {
            inputs |= MSR_DSR;
        }
        if self.mcr & MCR_OUT1 != 0 {
            inputs |= MSR_RI;
        }
        if self.mcr & MCR_OUT2 != 0 {
            inputs |= MSR_DCD;
        }
        inputs
    }
}
