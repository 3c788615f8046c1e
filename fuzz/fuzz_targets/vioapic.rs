//! Fuzz target: the virtual I/O APIC (`conduit_vioapic`) driven by a guest's MMIO accesses,
//! device lines and EOIs, in any order.
//!
//! Invariants (82093AA datasheet §3 and the crate's documented choices):
//! - it never delivers from a masked pin, nor a vector below 0x10 in fixed or lowest-priority
//!   mode; every delivery is exactly the message of its pin's entry after the operation;
//! - a level-triggered delivery leaves remote IRR set, and needs the line asserted;
//! - an edge-triggered pin delivers only on a rising edge of its line;
//! - the version register never changes; entries never show delivery status or reserved bits,
//!   and remote IRR only on level-triggered entries.
#![no_main]

use arbitrary::Arbitrary;
use conduit_vioapic::entry::{
    DELIVERY_STATUS, HIGH_WRITABLE, LOW_WRITABLE, MIN_VECTOR, REMOTE_IRR,
};
use conduit_vioapic::{Delivery, IOREGSEL, IOWIN, PINS, VERSION, VirtualIoApic};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A 32-bit MMIO read at offset `0x10 * (n & 7)`.
    Read(u8),
    /// A 32-bit MMIO write at offset `0x10 * (n & 7)`.
    Write(u8, u32),
    /// Select register `index` and write it (the common IOREGSEL, IOWIN pair).
    Register(u8, u32),
    Line(u8, bool),
    Eoi(u8),
}

fn check_delivery(ioapic: &VirtualIoApic, d: &Delivery) {
    let entry = ioapic.entry(d.pin).expect("deliveries name existing pins");
    assert!(!entry.masked(), "pin {} delivered while masked", d.pin);
    assert_eq!(
        entry.message(d.pin),
        Some(*d),
        "the delivery is its entry's message"
    );
    if d.mode.uses_vector() {
        assert!(
            d.vector >= MIN_VECTOR,
            "illegal vector {:#x} delivered",
            d.vector
        );
    }
    if d.level {
        assert!(entry.remote_irr(), "a level delivery sets remote IRR");
        assert!(
            ioapic.line(d.pin).expect("pin exists"),
            "a level delivery needs the line"
        );
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut ioapic = VirtualIoApic::new();
    let version = (((PINS - 1) as u32) << 16) | u32::from(VERSION);
    for op in ops {
        let mut delivered: Vec<Delivery> = Vec::new();
        match op {
            Op::Read(n) => {
                let _ = ioapic.read(u32::from(n & 7) * 0x10);
            }
            Op::Write(n, value) => {
                delivered.extend(ioapic.write(u32::from(n & 7) * 0x10, value).iter());
            }
            Op::Register(index, value) => {
                delivered.extend(ioapic.write(IOREGSEL, u32::from(index)).iter());
                delivered.extend(ioapic.write(IOWIN, value).iter());
            }
            Op::Line(pin, asserted) => {
                let pin = pin % (PINS as u8 + 2);
                let before = ioapic.line(pin);
                let entry = ioapic.entry(pin);
                match ioapic.set_line(pin, asserted) {
                    Ok(Some(d)) => {
                        assert_eq!(d.pin, pin);
                        if !d.level {
                            let entry = entry.expect("pin exists");
                            assert!(!entry.level(), "edge delivery from an edge entry");
                            assert!(
                                asserted && before == Ok(false),
                                "edge pins fire on a rising edge"
                            );
                        }
                        delivered.push(d);
                    }
                    Ok(None) => {}
                    Err(_) => assert!(usize::from(pin) >= PINS && before.is_err()),
                }
            }
            Op::Eoi(vector) => {
                let out = ioapic.eoi(vector);
                for d in out.iter() {
                    assert_eq!(d.vector, vector, "an EOI re-delivers only its own vector");
                    assert!(d.level);
                }
                delivered.extend(out.iter());
            }
        }
        for d in &delivered {
            check_delivery(&ioapic, d);
        }
        assert_eq!(
            ioapic.read_register(1),
            version,
            "the version register is read-only"
        );
        for pin in 0..PINS as u8 {
            let e = ioapic.entry(pin).expect("pin exists");
            assert_eq!(e.low() & DELIVERY_STATUS, 0, "delivery status reads 0");
            assert_eq!(
                e.low() & !(LOW_WRITABLE | REMOTE_IRR),
                0,
                "reserved low bits"
            );
            assert_eq!(e.high() & !HIGH_WRITABLE, 0, "reserved high bits");
            if e.remote_irr() {
                assert!(e.level(), "remote IRR only on level-triggered entries");
            }
        }
    }
});
