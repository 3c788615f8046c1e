//! The receiver: FIFO and 16450 modes, trigger levels, the timeout indication, overrun, FIFO
//! resets and loopback (PC16550D: "Line Status Register", "FIFO Control Register", "FIFO
//! Interrupt Mode Operation", "Modem Control Register").

use conduit_vuart::{InterruptSource, RX_FIFO_SIZE, Uart16550, regs};

/// FIFOs on with the given trigger bits (FCR 7:6), receive interrupt on, OUT2 set.
fn fifo_uart(trigger_bits: u8) -> Uart16550 {
    let mut uart = Uart16550::new();
    uart.write(regs::IIR_FCR, (trigger_bits << 6) | 0x07);
    uart.write(regs::IER, regs::IER_ERBFI);
    uart.write(regs::MCR, regs::MCR_OUT2);
    uart
}

#[test]
fn trigger_levels_1_4_8_14() {
    for (bits, level) in [(0u8, 1usize), (1, 4), (2, 8), (3, 14)] {
        let mut uart = fifo_uart(bits);
        for n in 1..=RX_FIFO_SIZE {
            assert!(uart.receive(n as u8));
            let expected = if n >= level {
                InterruptSource::ReceivedData
            } else {
                InterruptSource::CharacterTimeout
            };
            assert_eq!(uart.pending(), Some(expected), "level {level}, {n} bytes");
        }
        // Reading down below the trigger level turns it into the timeout indication.
        for _ in 0..=(RX_FIFO_SIZE - level) {
            uart.read(regs::RBR_THR);
        }
        let left = level - 1;
        let expected = (left > 0).then_some(InterruptSource::CharacterTimeout);
        assert_eq!(uart.pending(), expected, "level {level}, {left} left");
    }
}

#[test]
fn timeout_indication_drains_every_byte() {
    let mut uart = fifo_uart(3);
    for byte in *b"ls\r" {
        assert!(uart.receive(byte));
    }
    let mut got = Vec::new();
    while uart.irq() {
        assert_eq!(uart.read(regs::IIR_FCR), 0xcc);
        while uart.read(regs::LSR) & regs::LSR_DR != 0 {
            got.push(uart.read(regs::RBR_THR));
        }
    }
    assert_eq!(got, b"ls\r");
    assert_eq!(uart.read(regs::IIR_FCR), 0xc1);
}

#[test]
fn fifo_keeps_order_and_reports_space() {
    let mut uart = fifo_uart(0);
    assert_eq!(uart.rx_fifo_space(), 16);
    for byte in 0..10u8 {
        assert!(uart.receive(byte));
    }
    assert_eq!(uart.rx_fifo_space(), 6);
    for byte in 0..10u8 {
        assert_eq!(uart.read(regs::RBR_THR), byte);
    }
    assert_eq!(uart.read(regs::LSR) & regs::LSR_DR, 0);
    assert_eq!(uart.rx_fifo_space(), 16);
}

#[test]
fn overrun_in_fifo_mode_loses_the_new_byte() {
    let mut uart = fifo_uart(0);
    for byte in 0..16u8 {
        assert!(uart.receive(byte));
    }
    assert_eq!(uart.rx_fifo_space(), 0);
    assert!(!uart.receive(0xee));
    assert_eq!(uart.read(regs::LSR), 0x63, "DR, OE, THRE, TEMT");
    assert_eq!(uart.read(regs::LSR), 0x61, "OE cleared by the read");
    for byte in 0..16u8 {
        assert_eq!(uart.read(regs::RBR_THR), byte);
    }
}

#[test]
fn overrun_in_16450_mode_replaces_the_unread_byte() {
    let mut uart = Uart16550::new();
    assert_eq!(uart.rx_fifo_space(), 1);
    assert!(uart.receive(b'a'));
    assert_eq!(uart.rx_fifo_space(), 0);
    assert!(!uart.receive(b'b'));
    assert_eq!(uart.read(regs::LSR), 0x63);
    assert_eq!(uart.read(regs::RBR_THR), b'b');
    assert_eq!(uart.read(regs::LSR), 0x60);
}

#[test]
fn received_data_in_16450_mode_has_no_timeout() {
    let mut uart = Uart16550::new();
    uart.write(regs::IER, regs::IER_ERBFI);
    assert!(uart.receive(b'q'));
    assert_eq!(uart.read(regs::IIR_FCR), 0x04);
    assert_eq!(uart.read(regs::RBR_THR), b'q');
    assert_eq!(uart.read(regs::IIR_FCR), 0x01);
}

#[test]
fn fcr_clears_the_receive_fifo() {
    let mut uart = fifo_uart(0);
    for byte in *b"abc" {
        uart.receive(byte);
    }
    // Bit 2 alone (transmit FIFO) keeps the received bytes.
    uart.write(regs::IIR_FCR, 0x05);
    assert_eq!(uart.rx_fifo_space(), 13);
    uart.write(regs::IIR_FCR, 0x03);
    assert_eq!(uart.rx_fifo_space(), 16);
    assert_eq!(uart.read(regs::LSR) & regs::LSR_DR, 0);
    // Bit 1 without bit 0 is not taken (and disabling clears the FIFO anyway).
    uart.write(regs::IIR_FCR, 0x01);
    uart.receive(b'x');
    uart.write(regs::IIR_FCR, 0x02);
    assert_eq!(
        uart.rx_fifo_space(),
        1,
        "16450 mode, FIFO cleared by the mode change"
    );
}

#[test]
fn trigger_bits_need_fifo_enable_in_the_same_write() {
    let mut uart = fifo_uart(3);
    uart.write(regs::IIR_FCR, 0x00);
    uart.write(regs::IIR_FCR, 0x40); // trigger 4 without FCR0: not programmed
    uart.write(regs::IIR_FCR, 0x01); // FIFOs on again, trigger bits 00: level 1
    uart.receive(b'1');
    assert_eq!(uart.pending(), Some(InterruptSource::ReceivedData));
}

#[test]
fn loopback_sends_thr_to_the_own_receiver() {
    let mut uart = fifo_uart(0);
    uart.write(regs::MCR, regs::MCR_LOOP | regs::MCR_OUT2);
    assert_eq!(uart.write(regs::RBR_THR, b'L'), None);
    assert_eq!(uart.read(regs::LSR) & regs::LSR_DR, regs::LSR_DR);
    // The console's bytes are dropped while the receiver is looped back.
    assert_eq!(uart.rx_fifo_space(), 0);
    assert!(!uart.receive(b'c'));
    assert_eq!(uart.read(regs::LSR) & regs::LSR_OE, 0, "not an overrun");
    assert_eq!(uart.read(regs::RBR_THR), b'L');
    assert_eq!(uart.read(regs::LSR) & regs::LSR_DR, 0);
    uart.write(regs::MCR, regs::MCR_OUT2);
    assert_eq!(uart.rx_fifo_space(), 16);
    assert_eq!(uart.write(regs::RBR_THR, b'L'), Some(b'L'));
}
