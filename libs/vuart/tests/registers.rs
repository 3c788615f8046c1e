//! Register read/write behaviour: reset values, masks, DLAB, scratch, ignored writes and
//! address decoding (PC16550D section 8, "Registers").

use conduit_vuart::{Uart16550, regs};

#[test]
fn reset_values() {
    let mut uart = Uart16550::new();
    assert_eq!(uart.read(regs::IER), 0);
    assert_eq!(uart.read(regs::IIR_FCR), 0x01);
    assert_eq!(uart.read(regs::LCR), 0);
    assert_eq!(uart.read(regs::MCR), 0);
    assert_eq!(uart.read(regs::LSR), 0x60);
    assert_eq!(
        uart.read(regs::MSR),
        0xb0,
        "CTS, DSR, DCD of a connected console"
    );
    assert_eq!(uart.rx_fifo_space(), 1, "16450 mode after reset");
    assert!(!uart.irq());
    assert_eq!(uart.pending(), None);
}

#[test]
fn ier_and_mcr_keep_only_their_bits() {
    let mut uart = Uart16550::new();
    uart.write(regs::IER, 0xff);
    assert_eq!(uart.read(regs::IER), 0x0f);
    uart.write(regs::MCR, 0xff);
    assert_eq!(uart.read(regs::MCR), 0x1f);
    uart.write(regs::LCR, 0x7f);
    assert_eq!(uart.read(regs::LCR), 0x7f, "LCR is fully read/write");
}

#[test]
fn dlab_switches_offsets_0_and_1_to_the_divisor() {
    let mut uart = Uart16550::new();
    uart.write(regs::IER, 0x05);
    uart.write(regs::LCR, regs::LCR_DLAB | 0x03);
    assert_eq!(
        uart.write(regs::RBR_THR, 0x01),
        None,
        "DLL write sends nothing"
    );
    uart.write(regs::IER, 0x02);
    assert_eq!(uart.read(regs::RBR_THR), 0x01);
    assert_eq!(uart.read(regs::IER), 0x02);
    assert_eq!(uart.divisor(), 0x0201);
    uart.write(regs::LCR, 0x03);
    assert_eq!(uart.read(regs::IER), 0x05, "IER untouched by DLM writes");
    assert_eq!(uart.write(regs::RBR_THR, b'z'), Some(b'z'));
    assert_eq!(uart.divisor(), 0x0201);
}

#[test]
fn reset_divisor_is_9600_baud() {
    let mut uart = Uart16550::new();
    uart.write(regs::LCR, regs::LCR_DLAB);
    assert_eq!((uart.read(0), uart.read(1)), (12, 0));
}

#[test]
fn scratch_register_holds_any_byte() {
    let mut uart = Uart16550::new();
    for value in [0x00u8, 0x55, 0xaa, 0xff] {
        uart.write(regs::SCR, value);
        assert_eq!(uart.read(regs::SCR), value);
    }
}

#[test]
fn lsr_and_msr_writes_are_ignored() {
    let mut uart = Uart16550::new();
    assert_eq!(uart.write(regs::LSR, 0xff), None);
    assert_eq!(uart.write(regs::MSR, 0xff), None);
    assert_eq!(uart.read(regs::LSR), 0x60);
    assert_eq!(uart.read(regs::MSR), 0xb0);
}

#[test]
fn only_address_bits_2_0_decode() {
    let mut uart = Uart16550::new();
    uart.write(8 + regs::SCR, 0x42);
    assert_eq!(uart.read(regs::SCR), 0x42);
    assert_eq!(uart.read(0xf8 | regs::SCR), 0x42);
}

#[test]
fn fifo_enable_shows_in_iir_bits_7_6() {
    let mut uart = Uart16550::new();
    uart.write(regs::IIR_FCR, 0x01);
    assert_eq!(uart.read(regs::IIR_FCR), 0xc1);
    // FCR bit 5 (64-byte FIFO on a 16750) changes nothing, with or without DLAB.
    uart.write(regs::IIR_FCR, 0x21);
    assert_eq!(uart.read(regs::IIR_FCR), 0xc1);
    uart.write(regs::LCR, regs::LCR_DLAB);
    uart.write(regs::IIR_FCR, 0x21);
    assert_eq!(uart.read(regs::IIR_FCR), 0xc1);
    uart.write(regs::IIR_FCR, 0x00);
    assert_eq!(uart.read(regs::IIR_FCR), 0x01);
}

#[test]
fn transmit_leaves_at_once() {
    let mut uart = Uart16550::new();
    for byte in *b"hello\n" {
        assert_eq!(uart.write(regs::RBR_THR, byte), Some(byte));
        assert_eq!(uart.read(regs::LSR) & 0x60, 0x60, "THRE and TEMT");
    }
}
