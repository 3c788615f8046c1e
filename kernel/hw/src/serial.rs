//! COM1 (a 16550 UART at I/O port 0x3f8): the hypervisor's console, output and (polled) input.

use uart_16550::SerialPort;
use x86_64::instructions::port::{Port, PortReadOnly};

/// The base I/O port of COM1.
pub const COM1: u16 = 0x3f8;
/// Receiver buffer register (read, DLAB=0), interrupt enable register (16550 data sheet).
const RBR: u16 = 0;
const IER: u16 = 1;
/// Line status register offset, its "data ready" bit (LSR bit 0) and its "transmitter empty" bit
/// (LSR bit 6).
const LSR: u16 = 5;
const LSR_DR: u8 = 1 << 0;
const LSR_TEMT: u8 = 1 << 6;

/// Creates and initialises the COM1 driver (8N1, FIFOs on), in polled mode: the UART raises no
/// interrupt (the debug shell polls [`try_read`] between time slices and when idle).
pub fn open_com1() -> SerialPort {
    // SAFETY: 0x3f8 is COM1 on every PC platform Conduit supports; this module is its only user.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    // The driver's `init` enables the receive interrupt; nothing handles IRQ 4 yet.
    // SAFETY: writing 0 to COM1's IER (DLAB is clear after `init`) only masks the UART's
    // interrupts; it changes nothing else in the device.
    unsafe { Port::<u8>::new(COM1 + IER).write(0) };
    port
}

/// One received byte, if the UART holds one (LSR.DR); never waits. The caller serialises access
/// to COM1 (the console lock).
pub fn try_read() -> Option<u8> {
    // SAFETY: reading COM1's line status register has no side effects.
    let lsr = unsafe { PortReadOnly::<u8>::new(COM1 + LSR).read() };
    // All ones: no UART at this port (a floating bus), not a byte waiting.
    if lsr & LSR_DR == 0 || lsr == 0xff {
        return None;
    }
    // SAFETY: LSR.DR says a byte is waiting; reading RBR (DLAB is never left set) takes it out
    // of the receive FIFO, which is the intended effect.
    Some(unsafe { PortReadOnly::<u8>::new(COM1 + RBR).read() })
}

/// A driver for COM1 that skips initialisation: for the fatal path, which must not wait on a lock
/// another context may hold. Writing bytes through a second handle is harmless for a 16550.
pub fn com1_unlocked() -> SerialPort {
    // SAFETY: as in `open_com1`; the port was already initialised during boot.
    unsafe { SerialPort::new(COM1) }
}

/// Waits until the UART has shifted out every byte (so an emulator exit does not lose the tail).
pub fn drain() {
    let mut lsr = PortReadOnly::<u8>::new(COM1 + LSR);
    for _ in 0..1_000_000 {
        // SAFETY: reading COM1's line status register has no side effects.
        if unsafe { lsr.read() } & LSR_TEMT != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}
