//! Fuzz target: the emulated 16550A (`conduit_vuart`) driven by a guest's register accesses
//! and bytes from the console, in any order.
//!
//! A reference model of the data path, written from the PC16550D data sheet, runs beside it:
//! the receive FIFO's contents (16 bytes with FIFOs on, one holding register without; the
//! newest byte replaced on an overrun without FIFOs), DLAB, loopback and the scratch register.
//! Invariants:
//! - every RBR read returns the model's oldest byte (0 when empty); LSR.DR says "not empty";
//! - `receive` accepts exactly when the model has room and the UART is not in loopback;
//! - a THR write goes to the console exactly outside loopback, with the byte written;
//! - LSR always shows THRE and TEMT and never bits 2-4 or 7; IIR bits 5:4 read 0, bits 7:6
//!   follow FCR bit 0; IER and MCR never show bits the chip lacks;
//! - the interrupt output is on only with OUT2, outside loopback, with something pending that
//!   IER enables; `rx_fifo_space` is the model's free room.
#![no_main]

use arbitrary::Arbitrary;
use conduit_vuart::{InterruptSource, RX_FIFO_SIZE, Uart16550, regs};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum Op {
    Read(u8),
    Write(u8, u8),
    Receive(u8),
}

#[derive(Default)]
struct Model {
    rx: VecDeque<u8>,
    fifo: bool,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
}

impl Model {
    fn loopback(&self) -> bool {
        self.mcr & regs::MCR_LOOP != 0
    }
    fn dlab(&self) -> bool {
        self.lcr & regs::LCR_DLAB != 0
    }
    fn capacity(&self) -> usize {
        if self.fifo { RX_FIFO_SIZE } else { 1 }
    }
    /// A byte reaching the receiver; whether it was stored.
    fn arrive(&mut self, byte: u8) -> bool {
        if self.rx.len() < self.capacity() {
            self.rx.push_back(byte);
            return true;
        }
        if !self.fifo
            && let Some(last) = self.rx.back_mut()
        {
            *last = byte;
        }
        false
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut uart = Uart16550::new();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Read(offset) => {
                let reg = offset & 7;
                let value = uart.read(offset);
                match reg {
                    regs::RBR_THR if !m.dlab() => {
                        assert_eq!(
                            value,
                            m.rx.pop_front().unwrap_or(0),
                            "RBR gives bytes in order"
                        );
                    }
                    regs::IER if !m.dlab() => assert_eq!(value, m.ier, "IER keeps bits 3:0"),
                    regs::IIR_FCR => {
                        assert_eq!(value & 0x30, 0, "IIR bits 5:4");
                        let fifo_bits = if m.fifo { regs::IIR_FIFO_ENABLED } else { 0 };
                        assert_eq!(value & 0xc0, fifo_bits, "IIR bits 7:6 follow FCR bit 0");
                    }
                    regs::LCR => assert_eq!(value, m.lcr),
                    regs::MCR => assert_eq!(value, m.mcr),
                    regs::LSR => {
                        let always = regs::LSR_THRE | regs::LSR_TEMT;
                        assert_eq!(value & always, always, "the transmitter is always empty");
                        assert_eq!(value & 0x9c, 0, "no parity, framing, break or FIFO errors");
                        assert_eq!(value & regs::LSR_DR != 0, !m.rx.is_empty(), "LSR.DR");
                    }
                    regs::SCR => assert_eq!(value, m.scr),
                    _ => {}
                }
            }
            Op::Write(offset, value) => {
                let reg = offset & 7;
                let sent = uart.write(offset, value);
                match reg {
                    regs::RBR_THR if !m.dlab() => {
                        if m.loopback() {
                            assert_eq!(sent, None, "loopback keeps the byte");
                            m.arrive(value);
                        } else {
                            assert_eq!(sent, Some(value), "THR goes to the console");
                        }
                    }
                    regs::IIR_FCR => {
                        let enable = value & regs::FCR_ENABLE != 0;
                        if enable != m.fifo {
                            m.rx.clear();
                            m.fifo = enable;
                        }
                        if enable && value & regs::FCR_CLEAR_RX != 0 {
                            m.rx.clear();
                        }
                    }
                    regs::IER if !m.dlab() => m.ier = value & regs::IER_MASK,
                    regs::LCR => m.lcr = value,
                    regs::MCR => m.mcr = value & regs::MCR_MASK,
                    regs::SCR => m.scr = value,
                    _ => {}
                }
                if reg != regs::RBR_THR || m.dlab() {
                    assert_eq!(sent, None, "only THR writes send");
                }
            }
            Op::Receive(byte) => {
                let room = !m.loopback() && m.rx.len() < m.capacity();
                let accepted = uart.receive(byte);
                assert_eq!(accepted, room, "receive accepts exactly when there is room");
                if !m.loopback() {
                    m.arrive(byte);
                }
            }
        }
        let space = if m.loopback() {
            0
        } else {
            m.capacity() - m.rx.len()
        };
        assert_eq!(uart.rx_fifo_space(), space);
        let pending = uart.pending();
        if uart.irq() {
            assert!(m.mcr & regs::MCR_OUT2 != 0 && !m.loopback() && pending.is_some());
        }
        if let Some(source) = pending {
            let enabled = match source {
                InterruptSource::LineStatus => regs::IER_ELSI,
                InterruptSource::ReceivedData | InterruptSource::CharacterTimeout => {
                    assert!(!m.rx.is_empty(), "data interrupts need data");
                    regs::IER_ERBFI
                }
                InterruptSource::TransmitterEmpty => regs::IER_ETBEI,
                InterruptSource::ModemStatus => regs::IER_EDSSI,
            };
            assert_ne!(
                m.ier & enabled,
                0,
                "{source:?} pending but not enabled in IER"
            );
        }
    }
});
