//! The register window: reset state, masks, read-only bits, unknown indices and offsets
//! (82093AA datasheet §3).

mod common;

use common::{LEVEL, MASK, program, reg, set_reg};
use conduit_vioapic::{EOI, IOREGSEL, IOWIN, NoSuchPin, PINS, VirtualIoApic};

#[test]
fn reset_state_masks_every_entry() {
    let mut ioapic = VirtualIoApic::new();
    assert_eq!(reg(&mut ioapic, 0x00), 0, "ID");
    for pin in 0..PINS as u8 {
        assert_eq!(reg(&mut ioapic, 0x10 + 2 * pin), MASK, "pin {pin} low");
        assert_eq!(reg(&mut ioapic, 0x11 + 2 * pin), 0, "pin {pin} high");
        assert_eq!(ioapic.line(pin), Ok(false));
    }
}

#[test]
fn version_reports_0x20_and_23_as_max_entry() {
    let mut ioapic = VirtualIoApic::new();
    assert_eq!(reg(&mut ioapic, 0x01), 0x0017_0020);
    // Read-only.
    assert!(set_reg(&mut ioapic, 0x01, 0xffff_ffff).is_empty());
    assert_eq!(reg(&mut ioapic, 0x01), 0x0017_0020);
}

#[test]
fn id_keeps_bits_27_24_and_arbitration_follows() {
    let mut ioapic = VirtualIoApic::new();
    set_reg(&mut ioapic, 0x00, 0xffff_ffff);
    assert_eq!(reg(&mut ioapic, 0x00), 0x0f00_0000);
    assert_eq!(reg(&mut ioapic, 0x02), 0x0f00_0000);
    set_reg(&mut ioapic, 0x00, 0x0200_0000);
    assert_eq!(reg(&mut ioapic, 0x00), 0x0200_0000);
    assert_eq!(reg(&mut ioapic, 0x02), 0x0200_0000);
    // The arbitration ID itself is read-only.
    set_reg(&mut ioapic, 0x02, 0x0500_0000);
    assert_eq!(reg(&mut ioapic, 0x02), 0x0200_0000);
}

#[test]
fn ioregsel_reads_back_its_low_byte() {
    let mut ioapic = VirtualIoApic::new();
    ioapic.write(IOREGSEL, 0x1234_5617);
    assert_eq!(ioapic.read(IOREGSEL), 0x17);
}

#[test]
fn redirection_low_half_keeps_only_writable_bits() {
    let mut ioapic = VirtualIoApic::new();
    // All ones: reserved 31:17, delivery status 12 and remote IRR 14 must not stick (the
    // entry becomes a masked ExtINT one, so nothing is delivered either).
    set_reg(&mut ioapic, 0x10, 0xffff_ffff);
    assert_eq!(reg(&mut ioapic, 0x10), 0x0001_afff);
    set_reg(&mut ioapic, 0x10, 0);
    assert_eq!(reg(&mut ioapic, 0x10), 0);
}

#[test]
fn redirection_high_half_keeps_only_destination() {
    let mut ioapic = VirtualIoApic::new();
    set_reg(&mut ioapic, 0x11 + 2 * 23, 0xffff_ffff);
    assert_eq!(reg(&mut ioapic, 0x11 + 2 * 23), 0xff00_0000);
    // The low half of the same pin is untouched.
    assert_eq!(reg(&mut ioapic, 0x10 + 2 * 23), MASK);
    assert_eq!(ioapic.entry(23).map(|e| e.high()), Ok(0xff00_0000));
}

#[test]
fn unknown_indices_read_zero_and_ignore_writes() {
    let mut ioapic = VirtualIoApic::new();
    for index in [0x03u8, 0x0f, 0x40, 0x41, 0x80, 0xff] {
        assert!(set_reg(&mut ioapic, index, 0xffff_ffff).is_empty());
        assert_eq!(reg(&mut ioapic, index), 0, "index {index:#x}");
    }
    // Nothing else changed.
    assert_eq!(reg(&mut ioapic, 0x00), 0);
    assert_eq!(reg(&mut ioapic, 0x3f), 0);
    assert_eq!(reg(&mut ioapic, 0x3e), MASK);
}

#[test]
fn other_offsets_read_zero_and_ignore_writes() {
    let mut ioapic = VirtualIoApic::new();
    ioapic.write(IOREGSEL, 0x10);
    for offset in [0x04u32, 0x08, 0x14, 0x20, 0x30, 0x44, 0xffc] {
        assert!(ioapic.write(offset, 0).is_empty());
        assert_eq!(ioapic.read(offset), 0, "offset {offset:#x}");
    }
    // The EOI register is write-only.
    assert_eq!(ioapic.read(EOI), 0);
    // IOREGSEL and the entry survived.
    assert_eq!(ioapic.read(IOREGSEL), 0x10);
    assert_eq!(ioapic.read(IOWIN), MASK);
}

#[test]
fn pins_beyond_23_are_refused() {
    let mut ioapic = VirtualIoApic::new();
    assert_eq!(ioapic.set_line(24, true), Err(NoSuchPin(24)));
    assert_eq!(ioapic.set_line(255, true), Err(NoSuchPin(255)));
    assert_eq!(ioapic.entry(24), Err(NoSuchPin(24)));
    assert_eq!(ioapic.line(24), Err(NoSuchPin(24)));
    assert_eq!(ioapic.set_line(23, true), Ok(None));
}

#[test]
fn switching_to_edge_clears_remote_irr() {
    let mut ioapic = VirtualIoApic::new();
    assert!(program(&mut ioapic, 3, LEVEL | 0x33, 0).is_empty());
    assert!(ioapic.set_line(3, true).unwrap().is_some());
    assert_ne!(reg(&mut ioapic, 0x16) & common::REMOTE_IRR, 0);
    // Guest rewrites as edge: remote IRR cleared; an edge entry does not deliver on a write.
    assert!(set_reg(&mut ioapic, 0x16, 0x33).is_empty());
    assert_eq!(reg(&mut ioapic, 0x16), 0x33);
}
