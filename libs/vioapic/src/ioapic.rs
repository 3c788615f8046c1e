//! The I/O APIC: its register window, the pin states and the delivery rules.

use crate::entry::{
    Delivery, HIGH_WRITABLE, LOW_WRITABLE, REDIRECTION_BASE, REMOTE_IRR, RedirectionEntry,
};
use crate::{Deliveries, PINS, VERSION};

/// Offset of IOREGSEL, the index register (82093AA §3.1).
pub const IOREGSEL: u32 = 0x00;
/// Offset of IOWIN, the data window onto the register IOREGSEL selects (82093AA §3.1).
pub const IOWIN: u32 = 0x10;
/// Offset of the EOI register of the ICH/PCH I/O APIC (version 0x20): writing a vector there
/// has the effect of a directed EOI for that vector.
pub const EOI: u32 = 0x40;

/// Index of the I/O APIC ID register (82093AA §3.2.1).
pub const INDEX_ID: u8 = 0x00;
/// Index of the version register (82093AA §3.2.2).
pub const INDEX_VERSION: u8 = 0x01;
/// Index of the arbitration ID register (82093AA §3.2.3).
pub const INDEX_ARBITRATION: u8 = 0x02;

/// The writable ID bits 27:24 of the ID register.
const ID_MASK: u32 = 0x0f00_0000;

/// A pin number that the I/O APIC does not have.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("I/O APIC pin {0} does not exist (the I/O APIC has 24 pins)")]
pub struct NoSuchPin(pub u8);

/// A virtual I/O APIC with [`PINS`] input pins.
///
/// It holds the registers a guest programs through the MMIO window and the electrical state of
/// every input line the kernel drives. It never delivers anything by itself: each call that can
/// raise an interrupt returns the [`Delivery`]s for the kernel to route.
#[derive(Clone, Debug)]
pub struct VirtualIoApic {
    /// The ID register's bits 27:24, in bits 3:0.
    id: u8,
    /// IOREGSEL.
    index: u8,
    entries: [RedirectionEntry; PINS],
    /// Bit `n` set: the line into pin `n` is asserted.
    lines: u32,
    /// Bit `n` set: pin `n` is a forwarded level line (see [`VirtualIoApic::forward`]).
    forwarded: u32,
    /// Forwarded pins released since [`VirtualIoApic::take_released`] last ran.
    released: u32,
}

impl Default for VirtualIoApic {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualIoApic {
    /// An I/O APIC in its reset state: ID 0, IOREGSEL 0, every redirection entry masked and
    /// otherwise zero, every line deasserted.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            id: 0,
            index: 0,
            entries: [RedirectionEntry::RESET; PINS],
            lines: 0,
            forwarded: 0,
            released: 0,
        }
    }

    /// A 32-bit read at `offset` in the MMIO window. IOREGSEL reads back its last value, IOWIN
    /// the selected register; every other offset (the EOI register included, which is
    /// write-only) reads 0.
    #[must_use]
    pub fn read(&self, offset: u32) -> u32 {
        match offset {
            IOREGSEL => u32::from(self.index),
            IOWIN => self.read_register(self.index),
            _ => 0,
        }
    }

    /// A 32-bit write of `value` at `offset` in the MMIO window; returns the interrupts it
    /// raises (a level pin unmasked while its line is asserted, or an EOI that finds the line
    /// still asserted). Writes to other offsets are ignored.
    pub fn write(&mut self, offset: u32, value: u32) -> Deliveries {
        match offset {
            IOREGSEL => {
                self.index = value as u8;
                Deliveries::new()
            }
            IOWIN => self.write_register(self.index, value),
            EOI => self.eoi(value as u8),
            _ => Deliveries::new(),
        }
    }

    /// Reads the register with index `index` (what IOWIN shows when IOREGSEL holds it).
    ///
    /// The datasheet defines indices 0x00-0x02 and 0x10-0x3F and calls the rest reserved; the
    /// model reads them as 0 and ignores writes to them.
    #[must_use]
    pub fn read_register(&self, index: u8) -> u32 {
        match index {
            INDEX_ID | INDEX_ARBITRATION => u32::from(self.id) << 24,
            INDEX_VERSION => (((PINS - 1) as u32) << 16) | u32::from(VERSION),
            _ => match Self::entry_index(index) {
                Some((pin, false)) => self.entries[pin].low,
                Some((pin, true)) => self.entries[pin].high,
                None => 0,
            },
        }
    }

    /// Writes the register with index `index`; returns the interrupts the write raises.
    ///
    /// - ID: only bits 27:24 are kept; the arbitration ID follows it (82093AA §3.2.3: the
    ///   arbitration ID is loaded from the ID register).
    /// - Version and arbitration ID: read-only.
    /// - Redirection entries: only the writable bits are taken ([`LOW_WRITABLE`],
    ///   [`HIGH_WRITABLE`]); delivery status and remote IRR keep their value, reserved bits stay
    ///   0. Making an entry edge-triggered clears its remote IRR (no EOI will come for it). A
    ///   write to a low half re-evaluates a level pin, so unmasking one whose line is asserted
    ///   (and whose remote IRR is clear) delivers at once.
    pub fn write_register(&mut self, index: u8, value: u32) -> Deliveries {
        let mut out = Deliveries::new();
        match index {
            INDEX_ID => self.id = ((value & ID_MASK) >> 24) as u8,
            _ => match Self::entry_index(index) {
                Some((pin, true)) => {
                    let entry = &mut self.entries[pin];
                    entry.high = value & HIGH_WRITABLE;
                }
                Some((pin, false)) => {
                    let entry = &mut self.entries[pin];
                    entry.low = (entry.low & REMOTE_IRR) | (value & LOW_WRITABLE);
                    if !entry.level() {
                        entry.low &= !REMOTE_IRR;
                    }
                    if let Some(delivery) = self.try_level(pin) {
                        out.push(delivery);
                    }
                }
                None => {}
            },
        }
        out
    }

    /// Drives the line into `pin`: `asserted` is the line's state as the wiring presents it to
    /// the pin (see the crate documentation on polarity).
    ///
    /// - Edge-triggered pin: a rising edge (deasserted → asserted) on an unmasked pin delivers;
    ///   an edge while the pin is masked is lost (82093AA §3.2.4, mask bit).
    /// - Level-triggered pin: delivers when the line is asserted, the pin unmasked and its
    ///   remote IRR clear, and then sets remote IRR; nothing more until the EOI.
    ///
    /// # Errors
    /// [`NoSuchPin`] for `pin >= 24`; nothing changes then.
    pub fn set_line(&mut self, pin: u8, asserted: bool) -> Result<Option<Delivery>, NoSuchPin> {
        let index = Self::pin_index(pin)?;
        let bit = 1u32 << index;
        let was = self.lines & bit != 0;
        if asserted {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        let entry = self.entries[index];
        if entry.level() {
            return Ok(self.try_level(index));
        }
        if asserted && !was && !entry.masked() {
            return Ok(entry.message(pin));
        }
        Ok(None)
    }

    /// An EOI for `vector`, from a local APIC's EOI broadcast or the EOI register: clears remote
    /// IRR of every level-triggered entry with that vector, and delivers again from each of
    /// those pins whose line is still asserted and which is unmasked. A forwarded pin's line is
    /// deasserted instead and the pin recorded as released ([`VirtualIoApic::forward`]).
    pub fn eoi(&mut self, vector: u8) -> Deliveries {
        let mut out = Deliveries::new();
        for pin in 0..PINS {
            let entry = &mut self.entries[pin];
            if entry.level() && entry.remote_irr() && entry.vector() == vector {
                entry.low &= !REMOTE_IRR;
                if self.forwarded & (1 << pin) != 0 {
                    self.release(pin);
                } else if let Some(delivery) = self.try_level(pin) {
                    out.push(delivery);
                }
            }
        }
        out
    }

    /// Makes `pin` a forwarded level line: one whose source (a physical line) is masked from
    /// the moment it asserts the pin until the guest's EOI for it. Such a pin is deasserted by
    /// the EOI that clears its remote IRR (rather than delivering again while asserted) and
    /// recorded as released, for the owner to unmask the source, which asserts the pin again if
    /// it still requests an interrupt; the way VFIO and ACRN forward level INTx. Since an
    /// unmasked edge-triggered entry gets no EOI, an asserted forwarded pin with such an entry
    /// is released right away ([`VirtualIoApic::take_released`]). A masked entry keeps the pin
    /// asserted until the guest unmasks it. [`VirtualIoApic::new`] forwards no pin.
    ///
    /// # Errors
    /// [`NoSuchPin`] for `pin >= 24`.
    pub fn forward(&mut self, pin: u8) -> Result<(), NoSuchPin> {
        self.forwarded |= 1 << Self::pin_index(pin)?;
        Ok(())
    }

    /// The forwarded pins released since the last call (bit `n`: pin `n`), after releasing the
    /// asserted ones whose entry is now unmasked and edge-triggered.
    pub fn take_released(&mut self) -> u32 {
        for pin in 0..PINS {
            let entry = self.entries[pin];
            if self.forwarded & self.lines & (1 << pin) != 0 && !entry.level() && !entry.masked() {
                self.release(pin);
            }
        }
        core::mem::take(&mut self.released)
    }

    /// Deasserts forwarded `pin` and records it as released.
    fn release(&mut self, pin: usize) {
        self.lines &= !(1 << pin);
        self.released |= 1 << pin;
    }

    /// The redirection entry of `pin`, as the guest would read it.
    ///
    /// # Errors
    /// [`NoSuchPin`] for `pin >= 24`.
    pub fn entry(&self, pin: u8) -> Result<RedirectionEntry, NoSuchPin> {
        Ok(self.entries[Self::pin_index(pin)?])
    }

    /// Whether the line into `pin` is asserted.
    ///
    /// # Errors
    /// [`NoSuchPin`] for `pin >= 24`.
    pub fn line(&self, pin: u8) -> Result<bool, NoSuchPin> {
        Ok(self.lines & (1 << Self::pin_index(pin)?) != 0)
    }

    /// A level pin's delivery if it is due (line asserted, unmasked, remote IRR clear, a legal
    /// message); sets remote IRR when it delivers.
    fn try_level(&mut self, pin: usize) -> Option<Delivery> {
        let entry = &mut self.entries[pin];
        if !entry.level() || entry.masked() || entry.remote_irr() || self.lines & (1 << pin) == 0 {
            return None;
        }
        let delivery = entry.message(pin as u8)?;
        entry.low |= REMOTE_IRR;
        Some(delivery)
    }

    fn pin_index(pin: u8) -> Result<usize, NoSuchPin> {
        let index = usize::from(pin);
        if index < PINS {
            Ok(index)
        } else {
            Err(NoSuchPin(pin))
        }
    }

    /// Pin and half (`true` = high) of a redirection-table index.
    fn entry_index(index: u8) -> Option<(usize, bool)> {
        let offset = usize::from(index.checked_sub(REDIRECTION_BASE)?);
        (offset < 2 * PINS).then_some((offset / 2, offset % 2 == 1))
    }
}
