//! An emulated 16550A UART, as pure logic (National Semiconductor PC16550D data sheet).
//!
//! The kernel decodes a guest's port accesses to the eight registers (COM1: 0x3F8-0x3FF) and
//! calls [`Uart16550::read`] / [`Uart16550::write`]; a write that returns a byte has sent it
//! to the outside world (the console). Bytes typed at the console go in through
//! [`Uart16550::receive`] while [`Uart16550::rx_fifo_space`] allows. After every call the
//! kernel drives the I/O APIC line of the UART (pin 4 for COM1) from [`Uart16550::irq`].
//!
//! Linux's 8250 driver identifies the model as a 16550A: IER keeps bits 3:0, loopback feeds
//! MCR bits 3:0 into MSR bits 7:4, enabling the FIFOs sets IIR bits 7:6, IIR bits 5:4 stay 0
//! (no 64-byte FIFO, no EFR), and a loopback fill of the receive FIFO holds 16 bytes.
//!
//! # The model's choices
//! - **Instantaneous transmitter.** A THR write leaves at once: LSR.THRE and LSR.TEMT always
//!   read 1, and the THRE interrupt is raised after every THR write (and when IER.ETBEI goes
//!   from 0 to 1, since the THR is empty). It is cleared by an IIR read that reports it.
//! - **Character timeout without a clock.** In FIFO mode, data below the trigger level raises
//!   the timeout indication (IIR 0xC) at once rather than after four character times, so no
//!   byte is ever stuck below the trigger level; at or above it IIR reports received data
//!   (0x4). In 16450 mode (FIFOs disabled) one byte raises received data.
//! - **No line errors but overrun.** The virtual line carries no parity, framing or break
//!   conditions, so LSR bits 2-4 and 7 (error in the receive FIFO) read 0; LCR's break bit
//!   is kept but sends nothing. An overrun sets LSR.OE and raises the line status interrupt.
//! - **Modem inputs.** Outside loopback, MSR reports CTS, DSR and DCD asserted (a terminal that
//!   is always connected) and RI off. In loopback they follow MCR (RTS, DTR, OUT1, OUT2) and
//!   changes set MSR bits 3:0.
//! - **Interrupt output.** On a PC, MCR.OUT2 gates the UART's interrupt onto the IRQ line;
//!   [`Uart16550::irq`] is "an interrupt is pending" and OUT2, and off in loopback, where the
//!   data sheet forces the modem outputs inactive.
//! - **Loopback** sends THR bytes to the own receiver; bytes from the console are dropped
//!   ([`Uart16550::rx_fifo_space`] is 0, so a caller holds them back).
//! - The divisor latch is stored (reset value 12) and has no effect on timing.
//!
//! # Example
//! ```
//! use conduit_vuart::{Uart16550, regs};
//!
//! let mut uart = Uart16550::new();
//! // The guest enables the FIFOs (trigger level 1), the receive interrupt and OUT2.
//! uart.write(regs::IIR_FCR, 0x07);
//! uart.write(regs::IER, regs::IER_ERBFI);
//! uart.write(regs::MCR, regs::MCR_OUT2);
//! assert_eq!(uart.write(regs::RBR_THR, b'A'), Some(b'A')); // sent to the console
//!
//! assert!(uart.rx_fifo_space() > 0);
//! assert!(uart.receive(b'x'));
//! assert!(uart.irq()); // the kernel raises I/O APIC pin 4
//! assert_eq!(uart.read(regs::IIR_FCR), 0xc4); // FIFOs on, received data available
//! assert_eq!(uart.read(regs::RBR_THR), b'x');
//! assert!(!uart.irq()); // and lowers it again
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod fifo;
pub mod regs;
pub mod uart;

pub use fifo::RX_FIFO_SIZE;
pub use uart::{InterruptSource, Uart16550};
