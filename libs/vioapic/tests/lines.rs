//! Input lines: edge and level pins, remote IRR and EOI, masking, illegal vectors, delivery
//! modes (82093AA datasheet §3.2.4).

mod common;

use common::{LEVEL, MASK, REMOTE_IRR, program, reg, set_reg};
use conduit_vioapic::{Delivery, DeliveryMode, EOI, VirtualIoApic};

fn fixed(vector: u8, dest: u8, level: bool, pin: u8) -> Delivery {
    Delivery {
        vector,
        dest,
        logical: false,
        mode: DeliveryMode::Fixed,
        level,
        pin,
    }
}

#[test]
fn masked_pins_deliver_nothing() {
    let mut ioapic = VirtualIoApic::new();
    for pin in 0..24 {
        assert_eq!(ioapic.set_line(pin, true), Ok(None));
    }
    assert!(ioapic.eoi(0).is_empty());
}

#[test]
fn edge_pin_delivers_on_rising_edges_only() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 4, 0x24, 1);
    assert_eq!(ioapic.set_line(4, true), Ok(Some(fixed(0x24, 1, false, 4))));
    assert_eq!(ioapic.set_line(4, true), Ok(None), "no edge");
    assert_eq!(ioapic.set_line(4, false), Ok(None), "falling edge");
    assert_eq!(ioapic.set_line(4, true), Ok(Some(fixed(0x24, 1, false, 4))));
    // Edge entries keep remote IRR clear and ignore EOIs.
    assert_eq!(reg(&mut ioapic, 0x18) & REMOTE_IRR, 0);
    assert!(ioapic.eoi(0x24).is_empty());
}

#[test]
fn edge_while_masked_is_lost() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 1, MASK | 0x31, 0);
    assert_eq!(ioapic.set_line(1, true), Ok(None));
    // Unmasking an edge pin with the line high does not deliver the lost edge.
    assert!(set_reg(&mut ioapic, 0x12, 0x31).is_empty());
    assert_eq!(ioapic.set_line(1, false), Ok(None));
    assert_eq!(ioapic.set_line(1, true), Ok(Some(fixed(0x31, 0, false, 1))));
}

#[test]
fn level_pin_delivers_once_until_eoi() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 9, LEVEL | 0x41, 2);
    assert_eq!(ioapic.set_line(9, true), Ok(Some(fixed(0x41, 2, true, 9))));
    assert_eq!(reg(&mut ioapic, 0x22), LEVEL | REMOTE_IRR | 0x41);
    assert_eq!(ioapic.set_line(9, true), Ok(None), "remote IRR blocks");
    // The device drops its line before the EOI: the EOI clears remote IRR, nothing more.
    assert_eq!(ioapic.set_line(9, false), Ok(None));
    assert!(ioapic.eoi(0x41).is_empty());
    assert_eq!(reg(&mut ioapic, 0x22), LEVEL | 0x41);
    assert_eq!(ioapic.set_line(9, true), Ok(Some(fixed(0x41, 2, true, 9))));
}

#[test]
fn eoi_redelivers_while_line_is_asserted() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 9, LEVEL | 0x41, 2);
    let first = ioapic.set_line(9, true).unwrap().unwrap();
    assert_eq!(ioapic.eoi(0x41).as_slice(), &[first]);
    assert_ne!(reg(&mut ioapic, 0x22) & REMOTE_IRR, 0, "set again");
    // The same through the EOI register at 0x40.
    assert_eq!(ioapic.write(EOI, 0x41).as_slice(), &[first]);
}

#[test]
fn eoi_of_another_vector_changes_nothing() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 9, LEVEL | 0x41, 2);
    ioapic.set_line(9, true).unwrap();
    assert!(ioapic.eoi(0x42).is_empty());
    assert!(ioapic.write(EOI, 0x42).is_empty());
    assert_ne!(reg(&mut ioapic, 0x22) & REMOTE_IRR, 0);
}

#[test]
fn eoi_serves_every_pin_sharing_the_vector() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 16, LEVEL | 0x50, 0);
    program(&mut ioapic, 19, LEVEL | 0x50, 0);
    program(&mut ioapic, 20, LEVEL | 0x51, 0);
    for pin in [16, 19, 20] {
        assert!(ioapic.set_line(pin, true).unwrap().is_some());
    }
    ioapic.set_line(19, false).unwrap();
    let again = ioapic.eoi(0x50);
    assert_eq!(again.as_slice(), &[fixed(0x50, 0, true, 16)]);
    // Pin 19 was cleared and is idle; pin 20 (another vector) still waits.
    assert_eq!(reg(&mut ioapic, 0x10 + 2 * 19) & REMOTE_IRR, 0);
    assert_ne!(reg(&mut ioapic, 0x10 + 2 * 20) & REMOTE_IRR, 0);
}

#[test]
fn unmasking_asserted_level_pin_delivers() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 5, MASK | LEVEL | 0x60, 3);
    assert_eq!(ioapic.set_line(5, true), Ok(None));
    let out = set_reg(&mut ioapic, 0x1a, LEVEL | 0x60);
    assert_eq!(out.as_slice(), &[fixed(0x60, 3, true, 5)]);
    // Masking and unmasking again while remote IRR is set delivers nothing.
    assert!(set_reg(&mut ioapic, 0x1a, MASK | LEVEL | 0x60).is_empty());
    assert!(set_reg(&mut ioapic, 0x1a, LEVEL | 0x60).is_empty());
    // EOI while masked clears remote IRR but does not deliver; unmasking then does.
    set_reg(&mut ioapic, 0x1a, MASK | LEVEL | 0x60);
    assert!(ioapic.eoi(0x60).is_empty());
    assert_eq!(reg(&mut ioapic, 0x1a), MASK | LEVEL | 0x60);
    assert_eq!(set_reg(&mut ioapic, 0x1a, LEVEL | 0x60).len(), 1);
}

#[test]
fn illegal_vector_delivers_nothing_until_fixed() {
    let mut ioapic = VirtualIoApic::new();
    program(&mut ioapic, 7, LEVEL | 0x0f, 0);
    assert_eq!(ioapic.set_line(7, true), Ok(None));
    assert_eq!(reg(&mut ioapic, 0x1e) & REMOTE_IRR, 0, "nothing accepted");
    // A legal vector written while the line is up delivers.
    let out = set_reg(&mut ioapic, 0x1e, LEVEL | 0x10);
    assert_eq!(out.as_slice(), &[fixed(0x10, 0, true, 7)]);
    // Edge pins with an illegal vector stay silent too.
    program(&mut ioapic, 8, 0x02, 0);
    assert_eq!(ioapic.set_line(8, true), Ok(None));
}

#[test]
fn reserved_delivery_modes_deliver_nothing() {
    let mut ioapic = VirtualIoApic::new();
    for (pin, mode) in [(2u8, 0b011u32), (3, 0b110)] {
        program(&mut ioapic, pin, (mode << 8) | 0x40, 0);
        assert_eq!(ioapic.set_line(pin, true), Ok(None), "mode {mode:03b}");
    }
}

#[test]
fn delivery_modes_and_destination_fields_are_reported() {
    let mut ioapic = VirtualIoApic::new();
    // Lowest priority, logical destination 0x0f.
    program(&mut ioapic, 10, (0b001 << 8) | (1 << 11) | 0x70, 0x0f);
    let d = ioapic.set_line(10, true).unwrap().unwrap();
    assert_eq!(
        (d.mode, d.logical, d.dest, d.vector, d.level),
        (DeliveryMode::LowestPriority, true, 0x0f, 0x70, false)
    );
    // NMI programmed level-triggered with vector 0: delivered, handled as edge (no remote IRR).
    program(&mut ioapic, 11, LEVEL | (0b100 << 8), 1);
    let d = ioapic.set_line(11, true).unwrap().unwrap();
    assert_eq!((d.mode, d.level, d.pin), (DeliveryMode::Nmi, false, 11));
    assert_eq!(reg(&mut ioapic, 0x26) & REMOTE_IRR, 0);
    assert_eq!(ioapic.set_line(11, true), Ok(None), "no second edge");
    for (pin, bits, mode) in [
        (12u8, 0b010u32, DeliveryMode::Smi),
        (13, 0b101, DeliveryMode::Init),
        (14, 0b111, DeliveryMode::ExtInt),
    ] {
        program(&mut ioapic, pin, bits << 8, 0);
        assert_eq!(
            ioapic.set_line(pin, true).unwrap().map(|d| d.mode),
            Some(mode)
        );
    }
}

#[test]
fn polarity_bit_is_stored_but_not_applied() {
    let mut ioapic = VirtualIoApic::new();
    // Active low, edge: the line as the wiring presents it still rises on a request.
    program(&mut ioapic, 4, (1 << 13) | 0x24, 0);
    assert_eq!(reg(&mut ioapic, 0x18), (1 << 13) | 0x24);
    assert_eq!(ioapic.set_line(4, true), Ok(Some(fixed(0x24, 0, false, 4))));
    assert_eq!(ioapic.set_line(4, false), Ok(None));
}

#[test]
fn forwarded_level_pin_is_released_by_its_eoi() {
    let mut ioapic = VirtualIoApic::new();
    ioapic.forward(17).unwrap();
    program(&mut ioapic, 17, LEVEL | 0x61, 0);
    let first = ioapic.set_line(17, true).unwrap().unwrap();
    assert_eq!(first, fixed(0x61, 0, true, 17));
    assert_eq!(ioapic.take_released(), 0, "nothing released before the EOI");
    // The EOI clears remote IRR and deasserts the line: no second delivery, the pin released.
    assert!(ioapic.eoi(0x61).is_empty());
    assert_eq!(ioapic.line(17), Ok(false));
    assert_eq!(reg(&mut ioapic, 0x10 + 2 * 17) & REMOTE_IRR, 0);
    assert_eq!(ioapic.take_released(), 1 << 17);
    assert_eq!(ioapic.take_released(), 0, "taken once");
    // The source still requests: asserted again, delivered again.
    assert_eq!(ioapic.set_line(17, true), Ok(Some(first)));
    // The same through the EOI register.
    assert!(ioapic.write(EOI, 0x61).is_empty());
    assert_eq!(ioapic.take_released(), 1 << 17);
}

#[test]
fn forwarded_pin_waits_while_masked_and_edge_entries_release_at_once() {
    let mut ioapic = VirtualIoApic::new();
    ioapic.forward(18).unwrap();
    // Reset state: masked. Asserted, nothing delivered, nothing released.
    assert_eq!(ioapic.set_line(18, true), Ok(None));
    assert_eq!(ioapic.take_released(), 0);
    // Unmasked level: delivered.
    let d = program(&mut ioapic, 18, LEVEL | 0x62, 0);
    assert_eq!(d.as_slice(), &[fixed(0x62, 0, true, 18)]);
    assert!(ioapic.eoi(0x62).is_empty());
    assert_eq!(ioapic.take_released(), 1 << 18);
    // An edge entry: delivered on the edge, released right away (no EOI will come).
    program(&mut ioapic, 18, 0x63, 0);
    assert_eq!(
        ioapic.set_line(18, true),
        Ok(Some(fixed(0x63, 0, false, 18)))
    );
    assert_eq!(ioapic.take_released(), 1 << 18);
    assert_eq!(ioapic.line(18), Ok(false));
    // Pins not forwarded behave as before, and a pin beyond 23 is refused.
    program(&mut ioapic, 19, LEVEL | 0x64, 0);
    let d = ioapic.set_line(19, true).unwrap().unwrap();
    assert_eq!(ioapic.eoi(0x64).as_slice(), &[d]);
    assert_eq!(ioapic.take_released(), 0);
    assert!(ioapic.forward(24).is_err());
}
