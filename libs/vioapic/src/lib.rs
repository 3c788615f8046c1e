//! A virtual I/O APIC, as pure logic.
//!
//! The model follows the Intel 82093AA I/O APIC datasheet (§3: the IOREGSEL/IOWIN window, the
//! ID, version and arbitration registers, and the redirection table) with the additions of the
//! I/O APIC inside Intel's ICH/PCH chipsets: version 0x20 and the EOI register at offset 0x40.
//! It has 24 pins ([`PINS`]). The guest sees it at [`DEFAULT_BASE`]; the kernel decodes the
//! 32-bit MMIO accesses and calls [`VirtualIoApic::read`] / [`VirtualIoApic::write`], drives
//! the input lines with [`VirtualIoApic::set_line`], forwards the EOIs of level-triggered
//! vectors with [`VirtualIoApic::eoi`], and routes every returned [`Delivery`] to the virtual
//! local APIC(s) it names.
//!
//! # Pins and what they deliver
//! - Edge-triggered pins deliver on a rising edge of their line while unmasked; an edge that
//!   arrives while the pin is masked is lost, as on the 82093AA.
//! - Level-triggered pins deliver while the line is asserted, the pin is unmasked and remote
//!   IRR is clear, and then set remote IRR. The EOI for the vector clears it, and the pin
//!   delivers again if its line is still asserted. Unmasking a level pin with an asserted line
//!   delivers.
//! - A fixed or lowest-priority entry with a vector below 0x10 ([`MIN_VECTOR`]) delivers
//!   nothing, and neither does a reserved delivery mode: a local APIC would only reject such a
//!   message with an "illegal vector" error. No remote IRR is set for it, so rewriting the
//!   entry with a legal vector delivers from an asserted level line.
//! - SMI, NMI, INIT and ExtINT entries are handled as edge-triggered whatever their trigger
//!   bit says (the datasheet requires edge for them and no EOI returns for these messages).
//! - Delivery status (bit 12) always reads 0: a message is handed to the kernel at once.
//!
//! # Polarity
//! The polarity bit (13, active low) describes how the line is wired to the pin, so the model
//! leaves it to the wiring: `set_line` takes the line's state *as asserted or not*, already
//! seen through the wiring's polarity, and the bit is stored and read back but not applied a
//! second time. ISA interrupts are active high and edge-triggered (the ACPI MADT's default
//! for the ISA bus where no interrupt source override says otherwise, and how Linux programs
//! them), so for them "asserted" is simply "the device requests an interrupt" (for the UART:
//! its interrupt output is on). A guest that programs the opposite polarity still sees the
//! device's requests, not an inverted line.
//!
//! # Example
//! ```
//! use conduit_vioapic::{DeliveryMode, IOREGSEL, IOWIN, VirtualIoApic};
//!
//! let mut ioapic = VirtualIoApic::new();
//! // The guest routes pin 4 to vector 0x24, level-triggered, physical APIC ID 1, unmasked.
//! ioapic.write(IOREGSEL, 0x10 + 2 * 4 + 1);
//! ioapic.write(IOWIN, 1 << 24);
//! ioapic.write(IOREGSEL, 0x10 + 2 * 4);
//! ioapic.write(IOWIN, 0x8024);
//!
//! // The device raises its line: one delivery, then nothing until the EOI.
//! let delivery = ioapic.set_line(4, true)?.expect("unmasked level pin delivers");
//! assert_eq!((delivery.vector, delivery.dest, delivery.mode), (0x24, 1, DeliveryMode::Fixed));
//! assert!(delivery.level);
//! assert_eq!(ioapic.set_line(4, true)?, None);
//! // The EOI arrives while the line is still asserted: delivered again.
//! assert_eq!(ioapic.eoi(0x24).as_slice(), &[delivery]);
//! # Ok::<(), conduit_vioapic::NoSuchPin>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod entry;
pub mod ioapic;

pub use entry::{Delivery, DeliveryMode, MIN_VECTOR, RedirectionEntry};
pub use ioapic::{EOI, IOREGSEL, IOWIN, NoSuchPin, VirtualIoApic};

/// The number of input pins (the ICH/PCH I/O APIC has 24; the version register reports 23 as
/// the maximum redirection entry).
pub const PINS: usize = 24;
/// The version the version register reports (bits 7:0): 0x20, an I/O APIC with the EOI
/// register.
pub const VERSION: u8 = 0x20;
/// The guest-physical address of the register window on a PC (the address the ACPI MADT's
/// I/O APIC entry names).
pub const DEFAULT_BASE: u64 = 0xfec0_0000;

/// The deliveries one call produced, at most one per pin; no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Deliveries {
    items: [Delivery; PINS],
    len: usize,
}

impl Default for Deliveries {
    fn default() -> Self {
        Self::new()
    }
}

impl Deliveries {
    /// No deliveries.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            items: [Delivery::UNUSED; PINS],
            len: 0,
        }
    }

    /// Appends one; every caller produces at most one per pin, so there is always room.
    pub(crate) fn push(&mut self, delivery: Delivery) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = delivery;
            self.len += 1;
        }
    }

    /// The number of deliveries.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The deliveries in pin order.
    pub fn iter(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.as_slice().iter().copied()
    }

    /// The deliveries as a slice, in pin order.
    #[must_use]
    pub fn as_slice(&self) -> &[Delivery] {
        &self.items[..self.len]
    }
}
