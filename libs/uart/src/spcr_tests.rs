use super::*;

/// Sets the checksum byte so the table sums to 0.
fn fix_checksum(t: &mut [u8]) {
    t[9] = 0;
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
}

/// A revision 2 SPCR as a server's firmware publishes it for serial-over-LAN on COM2: a full
/// 16550 at I/O port 0x2f8, 8-bit registers, IRQ 3 (interrupt type 1: PC-AT PIC), 115200
/// baud, VT100, not a PCI device. Written field by field, independently of [`encode`].
fn server_com2() -> Vec<u8> {
    let mut t = vec![0u8; 80];
    t[0..4].copy_from_slice(b"SPCR");
    t[4] = 80;
    t[8] = 2;
    t[10..16].copy_from_slice(b"INTEL ");
    t[16..24].copy_from_slice(b"S2600WF ");
    t[36] = 0x00;
    t[40..44].copy_from_slice(&[0x01, 0x08, 0x00, 0x01]);
    t[44] = 0xf8;
    t[45] = 0x02;
    t[52] = 0x01;
    t[53] = 3;
    t[58] = 7;
    t[60] = 1;
    t[62] = 0; // VT100
    t[64..68].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    fix_checksum(&mut t);
    t
}

/// A desktop's LPSS UART as revision 4 describes it: 16550-compatible with GAS (0x12), 32-bit
/// MMIO registers at 0xfe03_2000 (bit width 32, access size 3 = dword), precise baud rate
/// 115200 with code 0, plus the namespace string that revision 4 appends.
fn desktop_lpss() -> Vec<u8> {
    let name = b"\\_SB.PC00.UA00\0";
    let mut t = vec![0u8; 88 + name.len()];
    t[0..4].copy_from_slice(b"SPCR");
    t[4] = t.len() as u8;
    t[8] = 4;
    t[36] = 0x12;
    t[40..44].copy_from_slice(&[0x00, 0x20, 0x00, 0x03]);
    t[44..52].copy_from_slice(&0xfe03_2000u64.to_le_bytes());
    t[58] = 0;
    t[64..68].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    t[76..80].copy_from_slice(&1_843_200u32.to_le_bytes());
    t[80..84].copy_from_slice(&115_200u32.to_le_bytes());
    t[84..86].copy_from_slice(&(name.len() as u16).to_le_bytes());
    t[86..88].copy_from_slice(&88u16.to_le_bytes());
    t[88..].copy_from_slice(name);
    fix_checksum(&mut t);
    t
}

#[test]
fn a_servers_com2_table() {
    let spcr = parse(&server_com2()).expect("valid");
    assert_eq!(
        spcr,
        Spcr {
            revision: 2,
            interface: TYPE_16550,
            registers: Some(Registers::Io { base: 0x2f8 }),
            baud: Some(115_200),
            pci: None,
        }
    );
    assert_eq!(
        spcr.registers.map(|r| r.to_string()).as_deref(),
        Some("port 0x2f8")
    );
}

#[test]
fn a_desktops_mmio_uart_with_a_precise_baud_rate() {
    let spcr = parse(&desktop_lpss()).expect("valid");
    assert_eq!(spcr.revision, 4);
    assert_eq!(spcr.interface, TYPE_16550_GAS);
    assert_eq!(
        spcr.registers,
        Some(Registers::Mmio {
            base: 0xfe03_2000,
            stride: 4
        })
    );
    assert_eq!(spcr.baud, Some(115_200));
    assert_eq!(
        spcr.registers.map(|r| r.to_string()).as_deref(),
        Some("MMIO 0xfe032000 (32-bit registers)")
    );
}

#[test]
fn baud_rate_codes() {
    for (code, baud) in [
        (0, None),
        (3, Some(9_600)),
        (4, Some(19_200)),
        (6, Some(57_600)),
    ] {
        let mut t = server_com2();
        t[58] = code;
        fix_checksum(&mut t);
        assert_eq!(parse(&t).map(|s| s.baud), Ok(baud), "code {code}");
    }
    for code in [1, 2, 5, 8, 0xff] {
        let mut t = server_com2();
        t[58] = code;
        fix_checksum(&mut t);
        assert_eq!(parse(&t), Err(SpcrError::BadBaudCode(code)));
    }
}

#[test]
fn a_pci_serial_card_with_and_without_an_address() {
    // QEMU's pci-serial (1b36:0002) at 00:05.0; the firmware may leave the address 0 (the BAR
    // says where it is) or fill in the I/O BAR it assigned.
    let mut t = server_com2();
    t[44..52].fill(0);
    t[64..66].copy_from_slice(&0x0002u16.to_le_bytes());
    t[66..68].copy_from_slice(&0x1b36u16.to_le_bytes());
    t[68] = 0;
    t[69] = 5;
    t[70] = 0;
    t[75] = 0;
    fix_checksum(&mut t);
    let card = PciUart {
        vendor: 0x1b36,
        device: 0x0002,
        segment: 0,
        bus: 0,
        dev: 5,
        func: 0,
    };
    let spcr = parse(&t).expect("valid");
    assert_eq!((spcr.registers, spcr.pci), (None, Some(card)));
    assert_eq!(card.to_string(), "PCI 0000:00:05.0 (1b36:0002)");
    t[44..46].copy_from_slice(&0xc000u16.to_le_bytes());
    fix_checksum(&mut t);
    let spcr = parse(&t).expect("valid");
    assert_eq!(spcr.registers, Some(Registers::Io { base: 0xc000 }));
    assert_eq!(spcr.pci, Some(card));
}

#[test]
fn encode_round_trips_through_parse() {
    let tables = [
        Spcr {
            revision: 2,
            interface: TYPE_16550,
            registers: Some(Registers::Io { base: 0x2f8 }),
            baud: Some(115_200),
            pci: None,
        },
        Spcr {
            revision: 2,
            interface: TYPE_16550_GAS,
            registers: Some(Registers::Mmio {
                base: 0xfe03_2000,
                stride: 4,
            }),
            baud: None,
            pci: None,
        },
        Spcr {
            revision: 2,
            interface: TYPE_16550,
            registers: None,
            baud: Some(9_600),
            pci: Some(PciUart {
                vendor: 0x1b36,
                device: 0x0002,
                segment: 1,
                bus: 0x80,
                dev: 3,
                func: 1,
            }),
        },
    ];
    for spcr in tables {
        assert_eq!(parse(&encode(&spcr)), Ok(spcr));
    }
    // The encoder writes the same bytes as the hand-written server table for the same fields
    // (but its own OEM fields and interrupt type 0: polled).
    let mut server = server_com2();
    server[10..28].copy_from_slice(&encode(&tables[0])[10..28]);
    server[52..54].fill(0);
    fix_checksum(&mut server);
    assert_eq!(server, encode(&tables[0]));
}

#[test]
fn malformed_tables_are_refused_by_name() {
    let good = server_com2();
    assert_eq!(
        parse(&good[..79]),
        Err(SpcrError::TooShort {
            len: 79,
            needed: 80
        })
    );
    let mut t = good.clone();
    t[0..4].copy_from_slice(b"DBG2");
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::BadSignature(*b"DBG2")));
    let mut t = good.clone();
    t[4] = 120;
    fix_checksum(&mut t);
    assert_eq!(
        parse(&t),
        Err(SpcrError::TooShort {
            len: 80,
            needed: 120
        })
    );
    let mut t = good.clone();
    t[4] = 40;
    assert_eq!(
        parse(&t),
        Err(SpcrError::TooShort {
            len: 40,
            needed: 80
        })
    );
    let mut t = good.clone();
    t[70] ^= 1;
    assert_eq!(parse(&t), Err(SpcrError::BadChecksum(1)));
    let mut t = good.clone();
    t[8] = 1;
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::OldRevision(1)));
    let mut t = good.clone();
    t[36] = 0x03; // ARM PL011
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::UnsupportedInterface(0x03)));
    let mut t = good.clone();
    t[40] = 0x02; // PCI configuration space
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::UnsupportedAddressSpace(2)));
    let mut t = good.clone();
    t[46] = 0x01;
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::PortOutOfRange(0x1_02f8)));
    let mut t = good.clone();
    t[40..44].copy_from_slice(&[0x00, 0x10, 0x00, 0x02]);
    fix_checksum(&mut t);
    assert_eq!(
        parse(&t),
        Err(SpcrError::UnsupportedRegisterWidth {
            bit_width: 16,
            access_size: 2
        })
    );
    let mut t = good.clone();
    t[44..52].fill(0);
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(SpcrError::NoAddress));
}

#[test]
fn no_input_panics() {
    // Every prefix and every single-byte corruption of both tables decodes or is refused.
    for table in [server_com2(), desktop_lpss()] {
        for len in 0..=table.len() {
            let _ = parse(&table[..len]);
        }
        for at in 0..table.len() {
            for value in [0x00, 0x01, 0x7f, 0xff] {
                let mut t = table.clone();
                t[at] = value;
                let _ = parse(&t);
                fix_checksum(&mut t);
                let _ = parse(&t);
            }
        }
    }
}

/// A revision 2 SPCR naming a 16450 (interface type 0x01, "16550 subset" of DBGP revision 1) at
/// COM1, as older firmware publishes it: accepted and driven as a 16550; other types refused.
#[test]
fn a_16450_is_driven_as_a_16550_and_other_types_are_refused() {
    let mut t = server_com2();
    t[36] = TYPE_16450;
    t[44] = 0xf8;
    t[45] = 0x03;
    fix_checksum(&mut t);
    let spcr = parse(&t).expect("a 16450 is accepted");
    assert_eq!(
        (spcr.interface, spcr.registers),
        (TYPE_16450, Some(Registers::Io { base: 0x3f8 }))
    );
    for refused in [0x02u8, 0x03, 0x0e, 0x11, 0x13] {
        t[36] = refused;
        fix_checksum(&mut t);
        assert_eq!(
            parse(&t),
            Err(SpcrError::UnsupportedInterface(refused)),
            "{refused:#x}"
        );
    }
    assert!(
        SpcrError::UnsupportedInterface(0x03)
            .to_string()
            .contains("0x00, 0x01 and 0x12")
    );
    assert!(is_16550_type(0x01) && is_16550_type(0x12) && !is_16550_type(0x0e));
}
