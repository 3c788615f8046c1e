//! Interrupt identification: priorities, clearing conditions, THRE behaviour, modem status
//! and the OUT2-gated output (PC16550D Table IV).

use conduit_vuart::{InterruptSource, Uart16550, regs};

fn iir(uart: &mut Uart16550) -> u8 {
    uart.read(regs::IIR_FCR)
}

#[test]
fn priorities_line_status_then_data_then_thre_then_modem() {
    let mut uart = Uart16550::new();
    uart.write(regs::MCR, regs::MCR_OUT2);
    uart.write(regs::IER, 0x0f);
    // Enabling ETBEI raised THRE; a modem change comes from entering loopback.
    uart.write(regs::MCR, regs::MCR_OUT2 | regs::MCR_LOOP);
    uart.write(regs::MCR, regs::MCR_OUT2);
    uart.receive(b'a');
    uart.receive(b'b'); // overrun in 16450 mode
    assert_eq!(uart.pending(), Some(InterruptSource::LineStatus));
    assert_eq!(iir(&mut uart), 0x06);
    uart.read(regs::LSR);
    assert_eq!(iir(&mut uart), 0x04);
    uart.read(regs::RBR_THR);
    assert_eq!(iir(&mut uart), 0x02, "THRE, cleared by this read");
    assert_eq!(iir(&mut uart), 0x00, "modem status");
    assert_ne!(uart.read(regs::MSR) & 0x0f, 0);
    assert_eq!(iir(&mut uart), 0x01);
    assert!(!uart.irq());
}

#[test]
fn iir_read_clears_thre_only_when_it_is_reported() {
    let mut uart = Uart16550::new();
    uart.write(regs::IER, regs::IER_ERBFI | regs::IER_ETBEI);
    uart.receive(b'x');
    assert_eq!(iir(&mut uart), 0x04, "data hides THRE");
    assert_eq!(iir(&mut uart), 0x04);
    uart.read(regs::RBR_THR);
    assert_eq!(iir(&mut uart), 0x02, "THRE still pending");
    assert_eq!(iir(&mut uart), 0x01);
}

#[test]
fn thre_raised_by_enabling_and_by_every_write() {
    let mut uart = Uart16550::new();
    uart.write(regs::MCR, regs::MCR_OUT2);
    uart.write(regs::IER, regs::IER_ETBEI);
    assert!(uart.irq());
    assert_eq!(iir(&mut uart), 0x02);
    assert!(!uart.irq());
    // Writing IER again without a 0→1 change of ETBEI raises nothing.
    uart.write(regs::IER, regs::IER_ETBEI);
    assert!(!uart.irq());
    assert_eq!(uart.write(regs::RBR_THR, b'k'), Some(b'k'));
    assert!(uart.irq());
    assert_eq!(iir(&mut uart), 0x02);
    // Disabling ETBEI removes the interrupt; enabling it again raises it.
    uart.write(regs::RBR_THR, b'k');
    uart.write(regs::IER, 0);
    assert!(!uart.irq());
    uart.write(regs::IER, regs::IER_ETBEI);
    assert!(uart.irq());
}

#[test]
fn out2_gates_the_output() {
    let mut uart = Uart16550::new();
    uart.write(regs::IER, regs::IER_ERBFI);
    uart.receive(b'x');
    assert_eq!(uart.pending(), Some(InterruptSource::ReceivedData));
    assert!(!uart.irq(), "OUT2 clear");
    uart.write(regs::MCR, regs::MCR_DTR | regs::MCR_RTS | regs::MCR_OUT1);
    assert!(!uart.irq(), "OUT1 is not the gate");
    uart.write(regs::MCR, regs::MCR_OUT2);
    assert!(uart.irq());
    // Interrupt enable bits mask sources.
    uart.write(regs::IER, 0);
    assert!(!uart.irq());
    assert_eq!(iir(&mut uart), 0x01);
}

#[test]
fn loopback_turns_the_output_off() {
    let mut uart = Uart16550::new();
    uart.write(regs::IIR_FCR, 0x01);
    uart.write(regs::IER, regs::IER_ERBFI);
    uart.write(regs::MCR, regs::MCR_OUT2 | regs::MCR_LOOP);
    uart.write(regs::RBR_THR, b'!');
    // The interrupt is pending inside the chip (IIR shows it), but the OUT2 pin is inactive.
    assert_eq!(iir(&mut uart), 0xc4, "trigger level 1 reached");
    assert!(!uart.irq());
    uart.write(regs::MCR, regs::MCR_OUT2);
    assert!(uart.irq());
}

#[test]
fn loopback_msr_follows_mcr_and_sets_change_bits() {
    let mut uart = Uart16550::new();
    uart.write(regs::MCR, regs::MCR_LOOP | regs::MCR_OUT2 | regs::MCR_RTS);
    // Outside loopback CTS, DSR, DCD were on; now DSR went off: DDSR.
    assert_eq!(uart.read(regs::MSR), 0x90 | regs::MSR_DDSR);
    assert_eq!(
        uart.read(regs::MSR),
        0x90,
        "change bits cleared by the read"
    );
    uart.write(regs::MCR, regs::MCR_LOOP | regs::MCR_OUT1 | regs::MCR_DTR);
    assert_eq!(
        uart.read(regs::MSR),
        0x60 | regs::MSR_DCTS | regs::MSR_DDSR | regs::MSR_DDCD
    );
    // RI falling (OUT1 off) is a trailing edge.
    uart.write(regs::MCR, regs::MCR_LOOP | regs::MCR_DTR);
    assert_eq!(uart.read(regs::MSR), 0x20 | regs::MSR_TERI);
    // RI rising is not.
    uart.write(regs::MCR, regs::MCR_LOOP | regs::MCR_DTR | regs::MCR_OUT1);
    assert_eq!(uart.read(regs::MSR), 0x60);
}

#[test]
fn modem_status_interrupt_needs_edssi() {
    let mut uart = Uart16550::new();
    uart.write(regs::MCR, regs::MCR_LOOP);
    assert_eq!(iir(&mut uart), 0x01, "EDSSI off");
    uart.write(regs::IER, regs::IER_EDSSI);
    assert_eq!(uart.pending(), Some(InterruptSource::ModemStatus));
    uart.read(regs::MSR);
    assert_eq!(uart.pending(), None);
}

#[test]
fn line_status_interrupt_needs_elsi_and_clears_on_lsr_read() {
    let mut uart = Uart16550::new();
    uart.write(regs::MCR, regs::MCR_OUT2);
    uart.receive(b'1');
    uart.receive(b'2');
    assert!(!uart.irq(), "nothing enabled");
    uart.write(regs::IER, regs::IER_ELSI);
    assert!(uart.irq());
    assert_eq!(iir(&mut uart), 0x06);
    assert_eq!(iir(&mut uart), 0x06, "IIR read does not clear it");
    assert_eq!(uart.read(regs::LSR) & regs::LSR_OE, regs::LSR_OE);
    assert!(!uart.irq());
}
