//! Interruption information: the layout shared by the VM-exit interruption-information field, the
//! IDT-vectoring information field and the VM-entry interruption-information field (SDM Vol. 3C,
//! tables "Format of the VM-Exit Interruption-Information Field", "Format of the IDT-Vectoring
//! Information Field" and "Format of the VM-Entry Interruption-Information Field").
//!
//! Bits 7:0 vector, 10:8 type, 11 error code valid (deliver error code, on entry), 12 NMI
//! unblocking due to IRET (exit fields only), 30:13 reserved, 31 valid.

/// Exception vectors (SDM Vol. 3A, "Exception and Interrupt Reference").
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    pub const MC: u8 = 18;
    pub const XM: u8 = 19;
    pub const VE: u8 = 20;
    pub const CP: u8 = 21;
}

/// Whether a hardware exception pushes an error code in protected mode (#DF, #TS, #NP, #SS, #GP,
/// #PF, #AC, #CP): on injection, "deliver error code" must match this when CR0.PE = 1 (SDM
/// "Checks on VM-Entry Control Fields").
pub const fn exception_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// Interruption type (bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterruptionType {
    ExternalInterrupt = 0,
    /// Type 1 is reserved.
    Reserved = 1,
    Nmi = 2,
    HardwareException = 3,
    /// INT n.
    SoftwareInterrupt = 4,
    /// INT1 (ICEBP).
    PrivilegedSoftwareException = 5,
    /// INT3 or INTO.
    SoftwareException = 6,
    /// On injection: a pending MTF VM exit (vector 0).
    OtherEvent = 7,
}

impl InterruptionType {
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 7 {
            0 => Self::ExternalInterrupt,
            1 => Self::Reserved,
            2 => Self::Nmi,
            3 => Self::HardwareException,
            4 => Self::SoftwareInterrupt,
            5 => Self::PrivilegedSoftwareException,
            6 => Self::SoftwareException,
            _ => Self::OtherEvent,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::ExternalInterrupt => "external interrupt",
            Self::Reserved => "reserved",
            Self::Nmi => "non-maskable interrupt (NMI)",
            Self::HardwareException => "hardware exception",
            Self::SoftwareInterrupt => "software interrupt",
            Self::PrivilegedSoftwareException => "privileged software exception",
            Self::SoftwareException => "software exception",
            Self::OtherEvent => "other event",
        }
    }
    /// Types whose injection needs the VM-entry instruction length (SDM "VM-Entry Controls for
    /// Event Injection").
    pub const fn needs_instruction_length(self) -> bool {
        matches!(
            self,
            Self::SoftwareInterrupt | Self::PrivilegedSoftwareException | Self::SoftwareException
        )
    }
}

/// An interruption-information value (exit, IDT-vectoring or entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InterruptionInfo(pub u32);

impl InterruptionInfo {
    pub const VALID: u32 = 1 << 31;
    pub const ERROR_CODE_VALID: u32 = 1 << 11;
    pub const NMI_UNBLOCKING: u32 = 1 << 12;
    /// Bits 30:13 (reserved; must be 0 on injection).
    pub const RESERVED: u32 = 0x7fff_e000;
    /// No event (valid bit clear).
    pub const NONE: Self = Self(0);

    /// A valid event for the VM-entry interruption-information field.
    pub const fn new(vector: u8, kind: InterruptionType, deliver_error_code: bool) -> Self {
        let ec = if deliver_error_code {
            Self::ERROR_CODE_VALID
        } else {
            0
        };
        Self(Self::VALID | ec | ((kind as u32) << 8) | vector as u32)
    }
    pub const fn external_interrupt(vector: u8) -> Self {
        Self::new(vector, InterruptionType::ExternalInterrupt, false)
    }
    pub const fn nmi() -> Self {
        Self::new(vector::NMI, InterruptionType::Nmi, false)
    }
    /// A hardware exception, delivering an error code exactly for the vectors that push one.
    pub const fn hardware_exception(vector: u8) -> Self {
        Self::new(
            vector,
            InterruptionType::HardwareException,
            exception_has_error_code(vector),
        )
    }
    pub const fn software_interrupt(vector: u8) -> Self {
        Self::new(vector, InterruptionType::SoftwareInterrupt, false)
    }

    pub const fn vector(self) -> u8 {
        self.0 as u8
    }
    pub const fn kind(self) -> InterruptionType {
        InterruptionType::from_bits((self.0 >> 8) as u8)
    }
    pub const fn error_code_valid(self) -> bool {
        self.0 & Self::ERROR_CODE_VALID != 0
    }
    /// Exit fields: the event was an NMI whose blocking was lifted by an IRET that faulted.
    pub const fn nmi_unblocking(self) -> bool {
        self.0 & Self::NMI_UNBLOCKING != 0
    }
    pub const fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }
    /// `Some(kind)` when the valid bit is set.
    pub const fn valid_kind(self) -> Option<InterruptionType> {
        if self.valid() {
            Some(self.kind())
        } else {
            None
        }
    }
}

/// Why an event cannot be injected (SDM Vol. 3C, "Checks on VM-Entry Control Fields", the
/// checks on the VM-entry interruption-information field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InjectionError {
    #[error("interruption type 1 is reserved")]
    ReservedType,
    #[error("an NMI must have vector 2, not {0}")]
    NmiVector(u8),
    #[error("a hardware exception must have a vector 0-31, not {0}")]
    ExceptionVector(u8),
    #[error("\"other event\" (pending MTF VM exit) must have vector 0, not {0}")]
    OtherEventVector(u8),
    #[error(
        "deliver-error-code must be {} for this event (1 exactly for hardware exceptions 8, 10-14, 17, 21 unless an unrestricted guest has CR0.PE = 0)",
        u8::from(*expected)
    )]
    DeliverErrorCode { expected: bool },
    #[error("interruption-information bits 30:12 must be 0")]
    ReservedBits,
    #[error("VM-entry exception error code {0:#x}: bits 31:16 must be 0")]
    ErrorCodeHighBits(u32),
    #[error("VM-entry instruction length {0} must be 1-15 for software interrupts and exceptions")]
    InstructionLength(u32),
}

impl InterruptionInfo {
    /// Checks an event for the VM-entry interruption-information field together with the
    /// VM-entry exception error code and instruction length fields. `cr0_pe` is the guest CR0.PE
    /// being entered with; `zero_length_allowed` is IA32_VMX_MISC bit 30.
    pub fn validate_injection(
        self,
        error_code: u32,
        instruction_length: u32,
        cr0_pe: bool,
        unrestricted_guest: bool,
        zero_length_allowed: bool,
    ) -> Result<(), InjectionError> {
        let Some(kind) = self.valid_kind() else {
            return Ok(());
        };
        let v = self.vector();
        match kind {
            InterruptionType::Reserved => return Err(InjectionError::ReservedType),
            InterruptionType::Nmi if v != vector::NMI => return Err(InjectionError::NmiVector(v)),
            InterruptionType::HardwareException if v > 31 => {
                return Err(InjectionError::ExceptionVector(v));
            }
            InterruptionType::OtherEvent if v != 0 => {
                return Err(InjectionError::OtherEventVector(v));
            }
            _ => {}
        }
        let expected = (!unrestricted_guest || cr0_pe)
            && kind == InterruptionType::HardwareException
            && exception_has_error_code(v);
        if self.error_code_valid() != expected {
            return Err(InjectionError::DeliverErrorCode { expected });
        }
        if self.0 & (Self::RESERVED | Self::NMI_UNBLOCKING) != 0 {
            return Err(InjectionError::ReservedBits);
        }
        if self.error_code_valid() && error_code >> 16 != 0 {
            return Err(InjectionError::ErrorCodeHighBits(error_code));
        }
        if kind.needs_instruction_length()
            && (instruction_length > 15 || (instruction_length == 0 && !zero_length_allowed))
        {
            return Err(InjectionError::InstructionLength(instruction_length));
        }
        Ok(())
    }
}
