use super::*;

/// A model of a 16550's registers: the divisor latch behind DLAB, a scratch register, a line
/// status, what was transmitted. `absent` models an empty bus (every read 0xff).
#[derive(Default)]
struct Fake {
    lcr: u8,
    ier: u8,
    dll: u8,
    dlm: u8,
    mcr: u8,
    fcr: u8,
    scr: u8,
    lsr: u8,
    rx: Option<u8>,
    sent: Vec<u8>,
    absent: bool,
    /// Scratch writes are lost (a UART without SCR, or an emulation that ignores it).
    no_scratch: bool,
    /// The divisor latch ignores writes to DLM.
    stuck_dlm: bool,
}

impl Fake {
    fn idle() -> Self {
        Self {
            lsr: LSR_THRE | LSR_TEMT,
            ..Self::default()
        }
    }
}

impl RegisterAccess for Fake {
    fn read(&mut self, index: u8) -> u8 {
        if self.absent {
            return 0xff;
        }
        let dlab = self.lcr & LCR_DLAB != 0;
        match index {
            0 if dlab => self.dll,
            1 if dlab => self.dlm,
            0 => {
                self.lsr &= !LSR_DR;
                self.rx.take().unwrap_or(0)
            }
            1 => self.ier,
            3 => self.lcr,
            4 => self.mcr,
            5 => self.lsr | u8::from(self.rx.is_some()),
            7 => self.scr,
            _ => 0,
        }
    }

    fn write(&mut self, index: u8, value: u8) {
        if self.absent {
            return;
        }
        let dlab = self.lcr & LCR_DLAB != 0;
        match index {
            0 if dlab => self.dll = value,
            1 if dlab && !self.stuck_dlm => self.dlm = value,
            1 if dlab => {}
            0 => self.sent.push(value),
            1 => self.ier = value,
            2 => self.fcr = value,
            3 => self.lcr = value,
            4 => self.mcr = value,
            7 if !self.no_scratch => self.scr = value,
            _ => {}
        }
    }
}

#[test]
fn divisors_of_the_usual_rates() {
    assert_eq!(divisor(115_200), Ok(1));
    assert_eq!(divisor(57_600), Ok(2));
    assert_eq!(divisor(38_400), Ok(3));
    assert_eq!(divisor(9_600), Ok(12));
    assert_eq!(divisor(300), Ok(384));
    assert_eq!(divisor(0), Err(UartError::UnsupportedBaud(0)));
    assert_eq!(divisor(14_000), Err(UartError::UnsupportedBaud(14_000)));
    assert_eq!(divisor(230_400), Err(UartError::UnsupportedBaud(230_400)));
}

#[test]
fn lcr_encodes_and_decodes_every_frame_format() {
    assert_eq!(LineSettings::EIGHT_N_ONE.lcr(), 0x03);
    assert_eq!(LineSettings::EIGHT_N_ONE.to_string(), "8N1");
    let seven_e_two = LineSettings {
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 2,
    };
    assert_eq!(seven_e_two.lcr(), 0x1e);
    assert_eq!(seven_e_two.to_string(), "7E2");
    for lcr in 0..0x40u8 {
        // Bit 3 clear means no parity whatever bits 5:4 say; those LCRs decode to `None`.
        let decoded = LineSettings::from_lcr(lcr);
        if lcr & (1 << 3) != 0 {
            assert_eq!(decoded.lcr(), lcr, "{lcr:#x}");
        } else {
            assert_eq!(decoded.parity, Parity::None);
            assert_eq!(decoded.lcr(), lcr & 0x07);
        }
    }
    // DLAB and break do not change the frame format.
    assert_eq!(
        LineSettings::from_lcr(0x83 | 0x40),
        LineSettings::EIGHT_N_ONE
    );
}

#[test]
fn program_writes_the_latch_and_reads_it_back() {
    let mut uart = Fake::idle();
    // Firmware left 38400 7E1 and the receive interrupt on.
    uart.dll = 3;
    uart.lcr = 0x1a;
    uart.ier = 1;
    let back = program(&mut uart, 115_200, LineSettings::EIGHT_N_ONE).expect("programmed");
    assert_eq!(
        back,
        ReadBack {
            divisor: 1,
            settings: LineSettings::EIGHT_N_ONE
        }
    );
    assert_eq!(back.baud(), 115_200);
    assert_eq!(back.to_string(), "115200 8N1 (divisor 1, read back)");
    assert_eq!((uart.dll, uart.dlm, uart.lcr), (1, 0, 0x03));
    assert_eq!((uart.ier, uart.fcr, uart.mcr, uart.scr), (0, 0xc7, 0x03, 0));

    let back = program(&mut uart, 300, LineSettings::EIGHT_N_ONE).expect("programmed");
    assert_eq!((uart.dll, uart.dlm), (0x80, 0x01));
    assert_eq!(back.baud(), 300);
}

#[test]
fn program_refuses_a_missing_uart_a_bad_rate_and_a_latch_that_does_not_stick() {
    let mut gone = Fake {
        absent: true,
        ..Fake::idle()
    };
    assert_eq!(
        program(&mut gone, 115_200, LineSettings::EIGHT_N_ONE),
        Err(UartError::Absent)
    );
    let mut no_scratch = Fake {
        no_scratch: true,
        ..Fake::idle()
    };
    assert!(!present(&mut no_scratch));
    let mut ok = Fake::idle();
    assert_eq!(
        program(&mut ok, 12_345, LineSettings::EIGHT_N_ONE),
        Err(UartError::UnsupportedBaud(12_345))
    );
    let mut stuck = Fake {
        stuck_dlm: true,
        dlm: 0,
        ..Fake::idle()
    };
    assert_eq!(
        program(&mut stuck, 300, LineSettings::EIGHT_N_ONE),
        Err(UartError::ReadBack {
            divisor: 0x80,
            lcr: 0x03
        })
    );
}

#[test]
fn send_waits_for_the_holding_register_but_never_forever() {
    let mut uart = Fake::idle();
    assert!(send(&mut uart, b'A'));
    assert_eq!(uart.sent, b"A");
    let mut busy = Fake::default();
    assert!(!send(&mut busy, b'B'));
    assert!(busy.sent.is_empty());
    let mut gone = Fake {
        absent: true,
        ..Fake::default()
    };
    assert!(!send(&mut gone, b'C'));
    // `drain` returns for a busy transmitter after its bound, and at once on an empty bus.
    drain(&mut busy);
    drain(&mut gone);
}

#[test]
fn receive_takes_a_waiting_byte_only() {
    let mut uart = Fake::idle();
    assert_eq!(try_receive(&mut uart), None);
    uart.rx = Some(b'h');
    assert_eq!(try_receive(&mut uart), Some(b'h'));
    assert_eq!(try_receive(&mut uart), None);
    let mut gone = Fake {
        absent: true,
        ..Fake::default()
    };
    assert_eq!(try_receive(&mut gone), None);
}
