//! COM1 (a 16550 UART at I/O port 0x3f8): the hypervisor's console.

use uart_16550::SerialPort;

/// The base I/O port of COM1.
pub const COM1: u16 = 0x3f8;
/// Line status register offset and its "transmitter empty" bit (16550 data sheet, LSR bit 6).
const LSR: u16 = 5;
const LSR_TEMT: u8 = 1 << 6;

/// Creates and initialises the COM1 driver (115200 8N1, FIFOs on).
pub fn open_com1() -> SerialPort {
    // SAFETY: 0x3f8 is COM1 on every PC platform Conduit supports; this module is its only user.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    port
}

/// A driver for COM1 that skips initialisation: for the fatal path, which must not wait on a lock
/// another context may hold. Writing bytes through a second handle is harmless for a 16550.
pub fn com1_unlocked() -> SerialPort {
    // SAFETY: as in `open_com1`; the port was already initialised during boot.
    unsafe { SerialPort::new(COM1) }
}

/// Waits until the UART has shifted out every byte (so an emulator exit does not lose the tail).
pub fn drain() {
    let mut lsr = x86_64::instructions::port::PortReadOnly::<u8>::new(COM1 + LSR);
    for _ in 0..1_000_000 {
        // SAFETY: reading COM1's line status register has no side effects.
        if unsafe { lsr.read() } & LSR_TEMT != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}
