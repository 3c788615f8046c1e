//! One redirection table entry and the interrupt message it produces.
//!
//! Layout (82093AA datasheet §3.2.4, "I/O Redirection Table Registers"): vector 7:0, delivery
//! mode 10:8, destination mode 11, delivery status 12 (read-only), pin polarity 13, remote IRR
//! 14 (read-only), trigger mode 15, mask 16, reserved 55:17, destination 63:56.

/// Bits of the low half a guest can write: vector, delivery mode, destination mode, polarity,
/// trigger mode, mask. Delivery status (12), remote IRR (14) and the reserved bits 31:17 are not
/// writable; reserved bits read 0.
pub const LOW_WRITABLE: u32 = 0x0001_afff;
/// Bits of the high half a guest can write: the destination field, 63:56.
pub const HIGH_WRITABLE: u32 = 0xff00_0000;

/// Delivery status, bit 12: set while a message waits to be accepted. The model delivers at
/// once, so it always reads 0.
pub const DELIVERY_STATUS: u32 = 1 << 12;
/// Interrupt input pin polarity, bit 13 (1 = active low).
pub const POLARITY_LOW: u32 = 1 << 13;
/// Remote IRR, bit 14: a level interrupt was accepted and its EOI has not arrived yet.
pub const REMOTE_IRR: u32 = 1 << 14;
/// Trigger mode, bit 15 (1 = level).
pub const TRIGGER_LEVEL: u32 = 1 << 15;
/// Interrupt mask, bit 16 (1 = masked).
pub const MASKED: u32 = 1 << 16;
/// Destination mode, bit 11 (1 = logical).
pub const DEST_LOGICAL: u32 = 1 << 11;

/// The lowest vector a fixed or lowest-priority interrupt may carry: vectors 0x00-0x0F are
/// invalid for a local APIC, which refuses them with an "illegal vector" error (Intel SDM
/// Vol. 3A §11.5.2 "Valid Interrupt Vectors", §11.5.3 "Error Handling"). The model sends
/// nothing for such an entry.
pub const MIN_VECTOR: u8 = 0x10;

/// The delivery mode field, bits 10:8 (82093AA §3.2.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeliveryMode {
    /// 000: deliver the vector to every destination processor.
    Fixed,
    /// 001: deliver the vector to the lowest-priority processor of the destination.
    LowestPriority,
    /// 010: system management interrupt (vector ignored).
    Smi,
    /// 100: non-maskable interrupt (vector ignored).
    Nmi,
    /// 101: INIT (vector ignored).
    Init,
    /// 111: external interrupt; the vector comes from an 8259A-compatible controller.
    ExtInt,
}

impl DeliveryMode {
    /// Decodes bits 10:8 of a low half; `None` for the reserved encodings 011 and 110.
    #[must_use]
    pub const fn decode(low: u32) -> Option<Self> {
        match (low >> 8) & 0x7 {
            0b000 => Some(Self::Fixed),
            0b001 => Some(Self::LowestPriority),
            0b010 => Some(Self::Smi),
            0b100 => Some(Self::Nmi),
            0b101 => Some(Self::Init),
            0b111 => Some(Self::ExtInt),
            _ => None,
        }
    }

    /// Whether the message carries the entry's vector (fixed and lowest priority only).
    #[must_use]
    pub const fn uses_vector(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// An interrupt message for the kernel to route to the virtual local APIC(s).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Delivery {
    /// The vector (meaningful for [`DeliveryMode::Fixed`] and [`DeliveryMode::LowestPriority`]).
    pub vector: u8,
    /// The destination field, bits 63:56: an APIC ID (physical) or a logical destination.
    pub dest: u8,
    /// Destination mode: `true` for logical, `false` for physical.
    pub logical: bool,
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// `true` for a level-triggered interrupt: the local APIC sets the vector's TMR bit and its
    /// EOI must come back to [`VirtualIoApic::eoi`](crate::VirtualIoApic::eoi).
    pub level: bool,
    /// The input pin that raised it.
    pub pin: u8,
}

impl Delivery {
    /// Filler for the unused slots of [`Deliveries`](crate::Deliveries); never handed out.
    pub(crate) const UNUSED: Self = Self {
        vector: 0,
        dest: 0,
        logical: false,
        mode: DeliveryMode::Fixed,
        level: false,
        pin: 0,
    };
}

/// One redirection entry as the guest programmed it (both halves, read-only bits included).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RedirectionEntry {
    pub(crate) low: u32,
    pub(crate) high: u32,
}

impl RedirectionEntry {
    /// The reset value: masked, everything else 0 (82093AA §3.2.4: the mask bit is set after
    /// reset).
    pub(crate) const RESET: Self = Self {
        low: MASKED,
        high: 0,
    };

    /// The low half, bits 31:0, as a guest reads it.
    #[must_use]
    pub const fn low(self) -> u32 {
        self.low
    }

    /// The high half, bits 63:32, as a guest reads it.
    #[must_use]
    pub const fn high(self) -> u32 {
        self.high
    }

    /// Whether the mask bit is set.
    #[must_use]
    pub const fn masked(self) -> bool {
        self.low & MASKED != 0
    }

    /// Whether remote IRR is set.
    #[must_use]
    pub const fn remote_irr(self) -> bool {
        self.low & REMOTE_IRR != 0
    }

    /// The vector field.
    #[must_use]
    pub const fn vector(self) -> u8 {
        self.low as u8
    }

    /// Whether the entry is handled as level-triggered: the trigger mode bit says level and the
    /// delivery mode is fixed or lowest priority. SMI, NMI, INIT and ExtINT are always treated as
    /// edge-triggered (82093AA §3.2.4 requires edge for these modes; no EOI ever returns for
    /// them, so a level entry would stay blocked by its remote IRR forever).
    #[must_use]
    pub const fn level(self) -> bool {
        if self.low & TRIGGER_LEVEL == 0 {
            return false;
        }
        match DeliveryMode::decode(self.low) {
            Some(mode) => mode.uses_vector(),
            None => false,
        }
    }

    /// The message this entry sends for `pin`, or `None` when it sends nothing: a reserved
    /// delivery mode, or a fixed / lowest-priority entry with an illegal vector (below
    /// [`MIN_VECTOR`]).
    #[must_use]
    pub const fn message(self, pin: u8) -> Option<Delivery> {
        let Some(mode) = DeliveryMode::decode(self.low) else {
            return None;
        };
        if mode.uses_vector() && self.vector() < MIN_VECTOR {
            return None;
        }
        Some(Delivery {
            vector: self.vector(),
            dest: (self.high >> 24) as u8,
            logical: self.low & DEST_LOGICAL != 0,
            mode,
            level: self.level(),
            pin,
        })
    }
}

/// The register index of pin 0's low half; pin `n` has `0x10 + 2n` (low) and `0x11 + 2n` (high).
pub const REDIRECTION_BASE: u8 = 0x10;
