//! Register offsets and bits of the 16550A (PC16550D data sheet: Table II, the register
//! summary, and section 8, "Registers").

/// Receiver buffer (read) / transmitter holding register (write); divisor latch LSB with DLAB.
pub const RBR_THR: u8 = 0;
/// Interrupt enable register; divisor latch MSB with DLAB.
pub const IER: u8 = 1;
/// Interrupt identification (read) / FIFO control (write).
pub const IIR_FCR: u8 = 2;
/// Line control register.
pub const LCR: u8 = 3;
/// Modem control register.
pub const MCR: u8 = 4;
/// Line status register.
pub const LSR: u8 = 5;
/// Modem status register.
pub const MSR: u8 = 6;
/// Scratch register.
pub const SCR: u8 = 7;

/// IER bit 0: received data available (and character timeout) interrupt.
pub const IER_ERBFI: u8 = 0x01;
/// IER bit 1: transmitter holding register empty interrupt.
pub const IER_ETBEI: u8 = 0x02;
/// IER bit 2: receiver line status interrupt.
pub const IER_ELSI: u8 = 0x04;
/// IER bit 3: modem status interrupt.
pub const IER_EDSSI: u8 = 0x08;
/// The IER bits that exist; bits 7:4 are always 0.
pub const IER_MASK: u8 = 0x0f;

/// IIR bit 0: 1 when no interrupt is pending.
pub const IIR_NO_INT: u8 = 0x01;
/// IIR identification: receiver line status (highest priority).
pub const IIR_LINE_STATUS: u8 = 0x06;
/// IIR identification: received data available.
pub const IIR_RX_DATA: u8 = 0x04;
/// IIR identification: character timeout (FIFO mode only).
pub const IIR_TIMEOUT: u8 = 0x0c;
/// IIR identification: transmitter holding register empty.
pub const IIR_THRE: u8 = 0x02;
/// IIR identification: modem status (lowest priority).
pub const IIR_MODEM_STATUS: u8 = 0x00;
/// IIR bits 7:6: both set while the FIFOs are enabled.
pub const IIR_FIFO_ENABLED: u8 = 0xc0;

/// FCR bit 0: enable both FIFOs.
pub const FCR_ENABLE: u8 = 0x01;
/// FCR bit 1: clear the receive FIFO (self-clearing).
pub const FCR_CLEAR_RX: u8 = 0x02;
/// FCR bit 2: clear the transmit FIFO (self-clearing).
pub const FCR_CLEAR_TX: u8 = 0x04;

/// LCR bit 6: set break.
pub const LCR_BREAK: u8 = 0x40;
/// LCR bit 7: divisor latch access bit.
pub const LCR_DLAB: u8 = 0x80;

/// MCR bit 0: data terminal ready.
pub const MCR_DTR: u8 = 0x01;
/// MCR bit 1: request to send.
pub const MCR_RTS: u8 = 0x02;
/// MCR bit 2: OUT1.
pub const MCR_OUT1: u8 = 0x04;
/// MCR bit 3: OUT2 (on a PC it enables the interrupt output onto the IRQ line).
pub const MCR_OUT2: u8 = 0x08;
/// MCR bit 4: loopback.
pub const MCR_LOOP: u8 = 0x10;
/// The MCR bits that exist on the 16550A; bits 7:5 are always 0.
pub const MCR_MASK: u8 = 0x1f;

/// LSR bit 0: data ready.
pub const LSR_DR: u8 = 0x01;
/// LSR bit 1: overrun error.
pub const LSR_OE: u8 = 0x02;
/// LSR bit 5: transmitter holding register empty.
pub const LSR_THRE: u8 = 0x20;
/// LSR bit 6: transmitter empty.
pub const LSR_TEMT: u8 = 0x40;

/// MSR bit 0: delta CTS.
pub const MSR_DCTS: u8 = 0x01;
/// MSR bit 1: delta DSR.
pub const MSR_DDSR: u8 = 0x02;
/// MSR bit 2: trailing edge of RI.
pub const MSR_TERI: u8 = 0x04;
/// MSR bit 3: delta DCD.
pub const MSR_DDCD: u8 = 0x08;
/// MSR bit 4: clear to send.
pub const MSR_CTS: u8 = 0x10;
/// MSR bit 5: data set ready.
pub const MSR_DSR: u8 = 0x20;
/// MSR bit 6: ring indicator.
pub const MSR_RI: u8 = 0x40;
/// MSR bit 7: data carrier detect.
pub const MSR_DCD: u8 = 0x80;
