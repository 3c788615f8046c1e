//! Legacy INTx of a PCI function, as pure logic: which I/O APIC input its pin reaches, the
//! compatibility-format redirection entry that delivers it where there is no interrupt
//! remapping, the level-triggered hand-off between the physical line and a guest, and the rule
//! that a line is only given to a guest that owns every function on it.
//!
//! - **Where the pin arrives.** Interrupt Pin (configuration offset 0x3D) says which of INTA#..
//!   INTD# the function uses (0: none); Interrupt Line (0x3C) holds what the firmware routed it
//!   to, on a PC an ISA IRQ number (PCI Local Bus Spec 3.0 §6.2.4; 0xFF: unknown or not
//!   connected). The ISA IRQ reaches the GSI of the same number unless the MADT has an interrupt
//!   source override for it (ACPI 6.5 §5.2.12.5); polarity and trigger mode come from the
//!   override's MPS INTI flags where they do not say "conforms to the bus", else PCI's own
//!   signalling: level-triggered, active low (PCI Local Bus Spec 3.0 §2.2.6).
//! - **Direct entry.** Without interrupt remapping the I/O APIC entry is in compatibility format
//!   (82093AA datasheet §3.2.4): vector 7:0, delivery mode 10:8 (fixed), destination mode 11
//!   (physical), polarity 13, trigger mode 15, mask 16, destination APIC ID 63:56.
//! - **Level hand-off** ([`IntxState`]), as VFIO and ACRN do it: when the line fires, the physical
//!   input is masked and the guest's virtual input asserted; when the guest's EOI for it comes
//!   back (its virtual I/O APIC's remote IRR cleared), the virtual input is deasserted and the
//!   physical input unmasked, so a device that still asserts fires again. A line cut off by the
//!   flood guard stays masked.

use crate::ioapic::Polarity;
use crate::types::{Owner, TriggerMode};

/// Interrupt Line value meaning "unknown or not connected" on x86 (PCI Local Bus Spec 3.0
/// §6.2.4).
pub const LINE_UNKNOWN: u8 = 0xff;

/// An MADT interrupt source override (ACPI 6.5 §5.2.12.5): ISA IRQ `isa` reaches `gsi`;
/// `None` where the INTI flags say "conforms to the bus".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct LineOverride {
    /// The ISA IRQ.
    pub isa: u8,
    /// The GSI it reaches.
    pub gsi: u32,
    /// Polarity, if the override states one.
    pub polarity: Option<Polarity>,
    /// Trigger mode, if the override states one.
    pub trigger: Option<TriggerMode>,
}

/// Where a function's INTx pin arrives and how it signals.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct IntxSource {
    /// The pin, 1 = INTA# .. 4 = INTD#.
    pub pin: u8,
    /// The Interrupt Line the firmware left.
    pub line: u8,
    /// The GSI (I/O APIC input) it reaches.
    pub gsi: u32,
    /// Input polarity.
    pub polarity: Polarity,
    /// Trigger mode.
    pub trigger: TriggerMode,
}

/// Why a function's INTx cannot be located.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IntxError {
    /// Interrupt Pin is 0: the function uses no INTx.
    #[error("the function has no INTx pin (Interrupt Pin 0)")]
    NoPin,
    /// Interrupt Pin above 4 (reserved values).
    #[error("Interrupt Pin {0} is not INTA#..INTD#")]
    BadPin(u8),
    /// Interrupt Line 0xFF: the firmware did not route the pin.
    #[error("Interrupt Line {LINE_UNKNOWN:#x}: the firmware did not route the pin")]
    NotRouted,
}

/// Where pin `pin` with Interrupt Line `line` arrives, given the MADT's `overrides`.
///
/// # Errors
/// [`IntxError`] for no pin, a reserved pin value or an unrouted line.
pub fn locate(pin: u8, line: u8, overrides: &[LineOverride]) -> Result<IntxSource, IntxError> {
    match pin {
        0 => return Err(IntxError::NoPin),
        1..=4 => {}
        p => return Err(IntxError::BadPin(p)),
    }
    if line == LINE_UNKNOWN {
        return Err(IntxError::NotRouted);
    }
    let o = overrides.iter().find(|o| o.isa == line);
    Ok(IntxSource {
        pin,
        line,
        gsi: o.map_or(u32::from(line), |o| o.gsi),
        polarity: o.and_then(|o| o.polarity).unwrap_or(Polarity::ActiveLow),
        trigger: o.and_then(|o| o.trigger).unwrap_or(TriggerMode::Level),
    })
}

/// A compatibility-format I/O APIC redirection entry (82093AA §3.2.4): fixed delivery to one
/// local APIC in physical destination mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct DirectRte {
    /// Vector, 0x10..=0xFE.
    pub vector: u8,
    /// Destination APIC ID (bits 63:56).
    pub dest: u8,
    /// Trigger mode (bit 15).
    pub trigger: TriggerMode,
    /// Polarity (bit 13).
    pub polarity: Polarity,
    /// Mask (bit 16).
    pub masked: bool,
}

const MASK: u64 = 1 << 16;
const TRIGGER: u64 = 1 << 15;
const POLARITY: u64 = 1 << 13;
const DEST_SHIFT: u32 = 56;
/// Bits a compatibility-format entry of this kind never sets: delivery mode 10:8, destination
/// mode 11, the read-only 12 and 14, reserved 55:17, and the remappable-format bit 48.
const NEVER: u64 = 0x00ff_ffff_fffe_0f00;

impl DirectRte {
    /// The 64-bit entry.
    #[must_use]
    pub const fn encode(&self) -> u64 {
        ((self.dest as u64) << DEST_SHIFT)
            | (self.masked as u64 * MASK)
            | (self.trigger.bit() * TRIGGER)
            | (matches!(self.polarity, Polarity::ActiveLow) as u64 * POLARITY)
            | self.vector as u64
    }

    /// Decodes an entry written by [`DirectRte::encode`]; `None` for anything else (another
    /// delivery or destination mode, remappable format, reserved bits). The read-only delivery
    /// status (12) and remote IRR (14) are ignored.
    #[must_use]
    pub const fn decode(raw: u64) -> Option<Self> {
        let raw = raw & !((1 << 12) | (1 << 14));
        if raw & NEVER != 0 {
            return None;
        }
        Some(Self {
            vector: raw as u8,
            dest: (raw >> DEST_SHIFT) as u8,
            trigger: TriggerMode::from_bit(raw & TRIGGER != 0),
            polarity: if raw & POLARITY != 0 {
                Polarity::ActiveLow
            } else {
                Polarity::ActiveHigh
            },
            masked: raw & MASK != 0,
        })
    }
}

/// One function's use of a GSI, for the shared-line rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct LineUser<K> {
    /// The function (its BDF, or any key the caller uses).
    pub function: K,
    /// The GSI its pin reaches.
    pub gsi: u32,
    /// Who owns the function: the hypervisor (kept) or a guest.
    pub owner: Owner,
}

/// The first function other than `function` on `gsi` that `owner` does not own: a line shared
/// with it cannot be given to `owner` (its interrupts would be taken from the function's real
/// owner, or handed to the wrong guest).
pub fn foreign_user<K: PartialEq + Copy>(
    users: &[LineUser<K>],
    function: K,
    gsi: u32,
    owner: Owner,
) -> Option<LineUser<K>> {
    users
        .iter()
        .find(|u| u.gsi == gsi && u.function != function && u.owner != owner)
        .copied()
}

/// Where a guest's INTx line is in the level hand-off.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum IntxState {
    /// Physical input unmasked, virtual input deasserted: waiting for the device.
    Armed,
    /// The line fired: physical input masked, virtual input asserted, waiting for the guest's EOI.
    Asserted,
    /// Cut off by the flood guard: physical input masked for good.
    CutOff,
}

/// What the interrupt path does when the line fires.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OnFire {
    /// Mask the physical input, assert the guest's virtual input.
    MaskAndAssert,
    /// Nothing more (already asserted, or cut off; the input is masked again to be sure).
    Remask,
}

/// What the EOI path does when the guest's EOI for the line arrives.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OnEoi {
    /// Deassert the virtual input, unmask the physical input.
    DeassertAndUnmask,
    /// Deassert the virtual input only (cut off: the physical input stays masked).
    Deassert,
    /// Nothing was asserted.
    Nothing,
}

impl IntxState {
    /// The line fired: the next state and what to do.
    #[must_use]
    pub const fn fire(self) -> (Self, OnFire) {
        match self {
            Self::Armed => (Self::Asserted, OnFire::MaskAndAssert),
            Self::Asserted => (Self::Asserted, OnFire::Remask),
            Self::CutOff => (Self::CutOff, OnFire::Remask),
        }
    }

    /// The guest's EOI for the line arrived: the next state and what to do.
    #[must_use]
    pub const fn eoi(self) -> (Self, OnEoi) {
        match self {
            Self::Armed => (Self::Armed, OnEoi::Nothing),
            Self::Asserted => (Self::Armed, OnEoi::DeassertAndUnmask),
            Self::CutOff => (Self::CutOff, OnEoi::Deassert),
        }
    }

    /// The encoding for an atomic byte.
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Armed => 0,
            Self::Asserted => 1,
            Self::CutOff => 2,
        }
    }

    /// Decodes [`IntxState::to_u8`]; unknown values read as [`IntxState::CutOff`] (the safe
    /// side: the input stays masked).
    #[must_use]
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Armed,
            1 => Self::Asserted,
            _ => Self::CutOff,
        }
    }
}
