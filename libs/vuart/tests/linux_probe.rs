//! Linux's 8250 driver's identification of the UART, replayed as register accesses: the
//! existence, loopback and FIFO tests of `autoconfig()`, the 16550A-variant probes (EFR with
//! LCR 0x80 and 0xBF, National Semiconductor EXCR1, TI16750 64-byte FIFO, XScale UUE bit, U6
//! FIFO size) and the THRE tests of the port's start-up. The probe below is written from the
//! driver's documented sequence; it names the verdict Linux prints.

use conduit_vuart::Uart16550;

const RX: u8 = 0;
const IER: u8 = 1;
const IIR: u8 = 2;
const FCR: u8 = 2;
const EFR: u8 = 2;
const LCR: u8 = 3;
const MCR: u8 = 4;
const LSR: u8 = 5;
const MSR: u8 = 6;

/// What the probe concluded, or which test rejected the port.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Absent(&'static str),
    Type(&'static str),
}

/// Reads the divisor latch with DLAB set (the caller set LCR).
fn dl_read(uart: &mut Uart16550) -> u16 {
    u16::from(uart.read(0)) | (u16::from(uart.read(1)) << 8)
}

fn dl_write(uart: &mut Uart16550, dl: u16) {
    uart.write(0, dl as u8);
    uart.write(1, (dl >> 8) as u8);
}

/// The FIFO depth as the driver measures it: 256 bytes sent in loopback, count what arrived.
fn size_fifo(uart: &mut Uart16550) -> usize {
    let old_lcr = uart.read(LCR);
    uart.write(LCR, 0);
    let old_fcr = uart.read(IIR);
    let old_mcr = uart.read(MCR);
    uart.write(FCR, 0x01 | 0x02 | 0x04);
    uart.write(MCR, 0x10);
    uart.write(LCR, 0x80);
    let old_dl = dl_read(uart);
    dl_write(uart, 1);
    uart.write(LCR, 0x03);
    for byte in 0..=255u8 {
        assert_eq!(uart.write(0, byte), None, "loopback sends nothing out");
    }
    let mut count = 0;
    while uart.read(LSR) & 0x01 != 0 && count < 256 {
        uart.read(RX);
        count += 1;
    }
    uart.write(FCR, old_fcr);
    uart.write(MCR, old_mcr);
    uart.write(LCR, 0x80);
    dl_write(uart, old_dl);
    uart.write(LCR, old_lcr);
    count
}

/// The 16550A branch with the variant probes enabled (CONFIG_SERIAL_8250_16550A_VARIANTS).
fn probe_16550a_variants(uart: &mut Uart16550) -> &'static str {
    // EFR visible with LCR = 0x80: ST16C650V1.
    uart.write(LCR, 0x80);
    if uart.read(EFR) == 0 {
        uart.write(EFR, 0xa8);
        return if uart.read(EFR) == 0 {
            "Motorola 8xxx DUART"
        } else {
            "ST16650"
        };
    }
    // EFR visible with LCR = 0xBF: ST16C650V2, TI16C752 and others.
    uart.write(LCR, 0xbf);
    if uart.read(EFR) == 0 {
        return "EFR UART";
    }
    // National Semiconductor SuperIO: EXCR1 (offset 2 with LCR 0xE0) mirrors MCR's loop bit?
    uart.write(LCR, 0);
    let status1 = uart.read(MCR);
    uart.write(LCR, 0xe0);
    let status2 = uart.read(2);
    if (status1 ^ status2) & 0x10 == 0 {
        uart.write(LCR, 0);
        uart.write(MCR, status1 ^ 0x10);
        uart.write(LCR, 0xe0);
        let status2 = uart.read(2);
        uart.write(LCR, 0);
        uart.write(MCR, status1);
        if (status1 ^ status2) & 0x10 != 0 {
            return "NS16550A";
        }
    }
    // TI16750: IIR bit 5 follows FCR bit 5 only with DLAB set.
    uart.write(LCR, 0);
    uart.write(FCR, 0x01 | 0x20);
    let status1 = uart.read(IIR) >> 5;
    uart.write(FCR, 0x01);
    uart.write(LCR, 0x80);
    uart.write(FCR, 0x01 | 0x20);
    let status2 = uart.read(IIR) >> 5;
    uart.write(FCR, 0x01);
    uart.write(LCR, 0);
    if status1 == 6 && status2 == 7 {
        return "TI16750";
    }
    // XScale: IER bit 6 (UUE) writable.
    uart.write(LCR, 0);
    let iersave = uart.read(IER);
    uart.write(IER, iersave & !0x40);
    if uart.read(IER) & 0x40 == 0 {
        uart.write(IER, iersave | 0x40);
        if uart.read(IER) & 0x40 != 0 {
            return "XScale";
        }
    }
    uart.write(IER, iersave);
    if size_fifo(uart) == 64 {
        return "U6_16550A";
    }
    "16550A"
}

/// `autoconfig()`: existence, loopback, IIR FIFO bits, then the 16550A variants.
fn autoconfig(uart: &mut Uart16550, skip_loop_test: bool) -> Verdict {
    let scratch = uart.read(IER);
    uart.write(IER, 0);
    let scratch2 = uart.read(IER) & 0x0f;
    uart.write(IER, 0x0f);
    let scratch3 = uart.read(IER) & 0x0f;
    uart.write(IER, scratch);
    if scratch2 != 0 || scratch3 != 0x0f {
        return Verdict::Absent("IER test");
    }
    let save_mcr = uart.read(MCR);
    let save_lcr = uart.read(LCR);
    if !skip_loop_test {
        uart.write(MCR, 0x10 | 0x0a);
        let status1 = uart.read(MSR) & 0xf0;
        uart.write(MCR, save_mcr);
        if status1 != 0x90 {
            return Verdict::Absent("LOOP test");
        }
    }
    uart.write(LCR, 0xbf);
    uart.write(EFR, 0);
    uart.write(LCR, 0);
    uart.write(FCR, 0x01);
    let name = match uart.read(IIR) >> 6 {
        0 => "8250/16450",
        1 => "unknown",
        2 => "16550",
        _ => probe_16550a_variants(uart),
    };
    uart.write(LCR, save_lcr);
    // Reset: MCR back, FIFOs cleared and disabled, RX drained, IER 0.
    uart.write(MCR, save_mcr);
    uart.write(FCR, 0x01);
    uart.write(FCR, 0x01 | 0x02 | 0x04);
    uart.write(FCR, 0);
    uart.read(RX);
    uart.write(IER, 0);
    Verdict::Type(name)
}

#[test]
fn autoconfig_with_loopback_test_finds_a_16550a() {
    let mut uart = Uart16550::new();
    assert_eq!(autoconfig(&mut uart, false), Verdict::Type("16550A"));
}

#[test]
fn autoconfig_as_for_com1_finds_a_16550a() {
    // COM1-4 skip the loopback test (UPF_SKIP_TEST).
    let mut uart = Uart16550::new();
    assert_eq!(autoconfig(&mut uart, true), Verdict::Type("16550A"));
}

#[test]
fn probe_leaves_the_uart_quiet_and_settled() {
    let mut uart = Uart16550::new();
    uart.write(MCR, 0x0b);
    uart.write(LCR, 0x03);
    assert_eq!(autoconfig(&mut uart, false), Verdict::Type("16550A"));
    assert_eq!(uart.read(LCR), 0x03);
    assert_eq!(uart.read(MCR), 0x0b);
    assert_eq!(uart.read(IER), 0);
    assert_eq!(
        uart.read(LSR),
        0x60,
        "empty receiver, idle transmitter, no overrun left"
    );
    assert_eq!(uart.read(IIR), 0x01);
    assert_eq!(uart.rx_fifo_space(), 1, "FIFOs disabled again");
    assert!(!uart.irq());
}

#[test]
fn loopback_fill_measures_16_bytes() {
    let mut uart = Uart16550::new();
    uart.write(LCR, 0x80);
    dl_write(&mut uart, 0x0001);
    uart.write(LCR, 0x03);
    assert_eq!(size_fifo(&mut uart), 16);
    // The divisor and LCR were restored through DLAB.
    assert_eq!(uart.divisor(), 1);
    assert_eq!(uart.read(LCR), 0x03);
}

/// The start-up of the port (`serial8250_do_startup`): clear and check LSR, then the two THRE
/// tests with the interrupt line enabled (MCR OUT2).
#[test]
fn startup_thre_tests_find_no_bugs() {
    let mut uart = Uart16550::new();
    assert_eq!(autoconfig(&mut uart, true), Verdict::Type("16550A"));
    uart.write(FCR, 0x01);
    uart.write(FCR, 0x07);
    uart.write(FCR, 0);
    uart.read(LSR);
    uart.read(RX);
    uart.read(IIR);
    uart.read(MSR);
    assert_ne!(uart.read(LSR), 0xff, "the port answers");
    uart.write(LCR, 0x03);
    uart.write(MCR, 0x0b);
    // UART_BUG_THRE: THRE must be re-raised by enabling ETBEI again after it was cleared.
    assert_ne!(uart.read(LSR) & 0x20, 0);
    uart.write(IER, 0x02);
    let iir1 = uart.read(IIR);
    uart.write(IER, 0);
    uart.write(IER, 0x02);
    let iir = uart.read(IIR);
    uart.write(IER, 0);
    assert_eq!(iir1 & 0x01, 0, "first THRE interrupt");
    assert_eq!(iir & 0x01, 0, "THRE re-asserted");
    // UART_BUG_TXEN: enabling the THRE interrupt with TEMT set must raise it.
    uart.write(IER, 0x02);
    let lsr = uart.read(LSR);
    assert!(uart.irq());
    let iir = uart.read(IIR);
    uart.write(IER, 0);
    assert_ne!(lsr & 0x40, 0);
    assert_eq!(iir, 0x02, "FIFOs off, THRE pending");
}
