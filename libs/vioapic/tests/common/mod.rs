//! Helpers shared by the test files: register access through the MMIO window.

use conduit_vioapic::{Deliveries, IOREGSEL, IOWIN, VirtualIoApic};

/// Reads register `index` through IOREGSEL/IOWIN.
pub fn reg(ioapic: &mut VirtualIoApic, index: u8) -> u32 {
    let none = ioapic.write(IOREGSEL, u32::from(index));
    assert!(none.is_empty());
    ioapic.read(IOWIN)
}

/// Writes register `index` through IOREGSEL/IOWIN; returns what the IOWIN write delivered.
pub fn set_reg(ioapic: &mut VirtualIoApic, index: u8, value: u32) -> Deliveries {
    let none = ioapic.write(IOREGSEL, u32::from(index));
    assert!(none.is_empty());
    ioapic.write(IOWIN, value)
}

/// Programs `pin`: destination `dest` in the high half, then `low`.
pub fn program(ioapic: &mut VirtualIoApic, pin: u8, low: u32, dest: u8) -> Deliveries {
    assert!(set_reg(ioapic, 0x11 + 2 * pin, u32::from(dest) << 24).is_empty());
    set_reg(ioapic, 0x10 + 2 * pin, low)
}

/// Low-half bits.
pub const LEVEL: u32 = 1 << 15;
pub const MASK: u32 = 1 << 16;
pub const REMOTE_IRR: u32 = 1 << 14;
