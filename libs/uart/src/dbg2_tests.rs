use super::*;

fn fix_checksum(t: &mut [u8]) {
    t[9] = 0;
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
}

/// One Debug Device Information structure: `port_type`/`subtype`, one GAS (`space`, bit width,
/// access size, address), its address size, and a namespace string, laid out as firmware does
/// (GAS right after the fixed part, then the size, then the string).
fn device(port_type: u16, subtype: u16, gas: [u8; 4], address: u64, name: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; DEVICE_LEN];
    d[0] = 0; // revision
    d[3] = 1; // one GAS
    d[4..6].copy_from_slice(&(name.len() as u16).to_le_bytes());
    d[6..8].copy_from_slice(&((DEVICE_LEN + GAS_LEN + 4) as u16).to_le_bytes());
    d[12..14].copy_from_slice(&port_type.to_le_bytes());
    d[14..16].copy_from_slice(&subtype.to_le_bytes());
    d[18..20].copy_from_slice(&(DEVICE_LEN as u16).to_le_bytes());
    d[20..22].copy_from_slice(&((DEVICE_LEN + GAS_LEN) as u16).to_le_bytes());
    d.extend_from_slice(&gas);
    d.extend_from_slice(&address.to_le_bytes());
    d.extend_from_slice(&8u32.to_le_bytes());
    d.extend_from_slice(name);
    let len = d.len() as u16;
    d[1..3].copy_from_slice(&len.to_le_bytes());
    d
}

fn table(devices: &[Vec<u8>]) -> Vec<u8> {
    let mut t = vec![0u8; HEADER_LEN];
    t[0..4].copy_from_slice(b"DBG2");
    t[8] = 0;
    t[36..40].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    t[40..44].copy_from_slice(&(devices.len() as u32).to_le_bytes());
    for d in devices {
        t.extend_from_slice(d);
    }
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    t
}

/// A desktop's DBG2: the LPSS UART (16550-compatible with GAS, 32-bit MMIO registers).
fn desktop() -> Vec<u8> {
    table(&[device(
        PORT_SERIAL,
        0x12,
        [0x00, 0x20, 0x00, 0x03],
        0xfe03_2000,
        b"\\_SB.PC00.UA00\0",
    )])
}

#[test]
fn a_desktops_lpss_uart() {
    assert_eq!(
        parse(&desktop()),
        Ok(Dbg2Uart {
            index: 0,
            subtype: 0x12,
            registers: Registers::Mmio {
                base: 0xfe03_2000,
                stride: 4
            },
        })
    );
}

#[test]
fn the_first_16550_after_other_debug_ports() {
    let t = table(&[
        // A USB debug port (type 0x8002), then a PL011 serial port (subtype 0x03), then COM1.
        device(
            0x8002,
            0x0000,
            [0x00, 0x20, 0x00, 0x03],
            0xfe00_0000,
            b"\\_SB.XHCI\0",
        ),
        device(
            PORT_SERIAL,
            0x0003,
            [0x00, 0x20, 0x00, 0x03],
            0x0900_0000,
            b"\\_SB.COM0\0",
        ),
        device(
            PORT_SERIAL,
            0x0000,
            [0x01, 0x08, 0x00, 0x01],
            0x3f8,
            b"\\_SB.PCI0.LPCB.UAR1\0",
        ),
    ]);
    assert_eq!(
        parse(&t),
        Ok(Dbg2Uart {
            index: 2,
            subtype: 0,
            registers: Registers::Io { base: 0x3f8 },
        })
    );
    let none = table(&[device(
        0x8002,
        0,
        [0x00, 0x20, 0x00, 0x03],
        0xfe00_0000,
        b".\0",
    )]);
    assert_eq!(parse(&none), Err(Dbg2Error::NoSerial16550));
}

#[test]
fn malformed_tables_are_refused_by_name() {
    let good = desktop();
    assert_eq!(
        parse(&good[..40]),
        Err(Dbg2Error::TooShort {
            len: 40,
            needed: 44
        })
    );
    let mut t = good.clone();
    t[0..4].copy_from_slice(b"SPCR");
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(Dbg2Error::BadSignature(*b"SPCR")));
    let mut t = good.clone();
    t[50] ^= 0x10;
    assert_eq!(parse(&t), Err(Dbg2Error::BadChecksum(0x10)));
    // A device claiming to run past the table.
    let mut t = good.clone();
    t[HEADER_LEN + 1] = 0xff;
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(Dbg2Error::BadDevice { index: 0 }));
    // A GAS offset past the device.
    let mut t = good.clone();
    t[HEADER_LEN + 18] = 0xf0;
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(Dbg2Error::BadDevice { index: 0 }));
    // A 16550 without an address.
    let t = table(&[device(PORT_SERIAL, 0, [0x01, 0x08, 0x00, 0x01], 0, b".\0")]);
    assert_eq!(
        parse(&t),
        Err(Dbg2Error::BadAddress {
            index: 0,
            why: crate::spcr::SpcrError::NoAddress
        })
    );
    // More devices announced than there are.
    let mut t = good.clone();
    t[40] = 2;
    fix_checksum(&mut t);
    assert_eq!(parse(&t).map(|u| u.index), Ok(0));
    let mut t = table(&[device(0x8002, 0, [0; 4], 1, b".\0")]);
    t[40] = 2;
    fix_checksum(&mut t);
    assert_eq!(parse(&t), Err(Dbg2Error::BadDevice { index: 1 }));
}

#[test]
fn no_input_panics() {
    let t = desktop();
    for len in 0..=t.len() {
        let _ = parse(&t[..len]);
    }
    for at in 0..t.len() {
        for value in [0x00, 0x01, 0x7f, 0xff] {
            let mut c = t.clone();
            c[at] = value;
            let _ = parse(&c);
            fix_checksum(&mut c);
            let _ = parse(&c);
        }
    }
}
