//! Human-readable views of guest-state values, for the debug shell's `vcpu` command: the names
//! of the set bits of CR0, CR4, RFLAGS and IA32_EFER, segment access rights, the
//! interruptibility state and an event queued for injection (SDM Vol. 3A "Control Registers",
//! "EFLAGS Register"; Vol. 3C "Guest Register State", "Guest Non-Register State", "VM-Entry
//! Controls for Event Injection").

use core::fmt;

use crate::exit::InterruptionInfo;
use crate::guest_state::{AccessRights, ActivityState, interruptibility};

/// One named bit.
pub type Bit = (u64, &'static str);

/// CR0 (SDM Vol. 3A, "CR0").
pub const CR0_BITS: &[Bit] = &[
    (1 << 0, "PE"),
    (1 << 1, "MP"),
    (1 << 2, "EM"),
    (1 << 3, "TS"),
    (1 << 4, "ET"),
    (1 << 5, "NE"),
    (1 << 16, "WP"),
    (1 << 18, "AM"),
    (1 << 29, "NW"),
    (1 << 30, "CD"),
    (1 << 31, "PG"),
];

/// CR4 (SDM Vol. 3A, "CR4").
pub const CR4_BITS: &[Bit] = &[
    (1 << 0, "VME"),
    (1 << 1, "PVI"),
    (1 << 2, "TSD"),
    (1 << 3, "DE"),
    (1 << 4, "PSE"),
    (1 << 5, "PAE"),
    (1 << 6, "MCE"),
    (1 << 7, "PGE"),
    (1 << 8, "PCE"),
    (1 << 9, "OSFXSR"),
    (1 << 10, "OSXMMEXCPT"),
    (1 << 11, "UMIP"),
    (1 << 12, "LA57"),
    (1 << 13, "VMXE"),
    (1 << 14, "SMXE"),
    (1 << 16, "FSGSBASE"),
    (1 << 17, "PCIDE"),
    (1 << 18, "OSXSAVE"),
    (1 << 20, "SMEP"),
    (1 << 21, "SMAP"),
    (1 << 22, "PKE"),
    (1 << 23, "CET"),
];

/// RFLAGS (SDM Vol. 1, "EFLAGS Register"); bit 1 is always 1 and not listed.
pub const RFLAGS_BITS: &[Bit] = &[
    (1 << 0, "CF"),
    (1 << 2, "PF"),
    (1 << 4, "AF"),
    (1 << 6, "ZF"),
    (1 << 7, "SF"),
    (1 << 8, "TF"),
    (1 << 9, "IF"),
    (1 << 10, "DF"),
    (1 << 11, "OF"),
    (1 << 14, "NT"),
    (1 << 16, "RF"),
    (1 << 17, "VM"),
    (1 << 18, "AC"),
    (1 << 19, "VIF"),
    (1 << 20, "VIP"),
    (1 << 21, "ID"),
];

/// IA32_EFER (SDM Vol. 3A, "IA32_EFER MSR").
pub const EFER_BITS: &[Bit] = &[
    (1 << 0, "SCE"),
    (1 << 8, "LME"),
    (1 << 10, "LMA"),
    (1 << 11, "NXE"),
];

/// The names of the bits of `value` set in `table`, space-separated; bits the table does not
/// name are shown as one hexadecimal remainder (`CR0 [PE PG +0x100]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagNames {
    /// The register value.
    pub value: u64,
    /// The named bits.
    pub table: &'static [Bit],
    /// Bits never to show (RFLAGS bit 1).
    pub ignore: u64,
}

impl FlagNames {
    pub const fn cr0(value: u64) -> Self {
        Self {
            value,
            table: CR0_BITS,
            ignore: 0,
        }
    }
    pub const fn cr4(value: u64) -> Self {
        Self {
            value,
            table: CR4_BITS,
            ignore: 0,
        }
    }
    pub const fn rflags(value: u64) -> Self {
        Self {
            value,
            table: RFLAGS_BITS,
            ignore: 1 << 1,
        }
    }
    pub const fn efer(value: u64) -> Self {
        Self {
            value,
            table: EFER_BITS,
            ignore: 0,
        }
    }
}

impl fmt::Display for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut known = 0;
        let mut first = true;
        f.write_str("[")?;
        for &(bit, name) in self.table {
            known |= bit;
            if self.value & bit != 0 {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let rest = self.value & !known & !self.ignore;
        if rest != 0 {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "+{rest:#x}")?;
        }
        f.write_str("]")
    }
}

/// A segment's access rights in words: `unusable`, or the descriptor type and the flags
/// (`code RX accessed, DPL 0, present, L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRightsText(pub AccessRights);

impl fmt::Display for AccessRightsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ar = self.0;
        if ar.unusable() {
            return f.write_str("unusable");
        }
        let t = ar.seg_type();
        if ar.code_or_data() {
            if t & 0b1000 != 0 {
                f.write_str(if t & 0b0010 != 0 { "code RX" } else { "code X" })?;
                if t & 0b0100 != 0 {
                    f.write_str(" conforming")?;
                }
            } else {
                f.write_str(if t & 0b0010 != 0 { "data RW" } else { "data R" })?;
                if t & 0b0100 != 0 {
                    f.write_str(" expand-down")?;
                }
            }
            if t & 1 != 0 {
                f.write_str(" accessed")?;
            }
        } else {
            f.write_str(match t {
                0x2 => "LDT",
                0x3 => "16-bit TSS (busy)",
                0x1 => "16-bit TSS (available)",
                0x9 => "64/32-bit TSS (available)",
                0xb => "64/32-bit TSS (busy)",
                _ => "system",
            })?;
        }
        write!(f, ", DPL {}", ar.dpl())?;
        if ar.present() {
            f.write_str(", present")?;
        }
        if ar.long() {
            f.write_str(", L")?;
        }
        if ar.default_big() {
            f.write_str(", D/B")?;
        }
        if ar.granularity() {
            f.write_str(", G")?;
        }
        Ok(())
    }
}

/// The activity state by name (`active`, `HLT`, ...) or its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityText(pub u32);

impl fmt::Display for ActivityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ActivityState::from_raw(self.0) {
            Some(s) => write!(f, "{s}"),
            None => write!(f, "unknown ({:#x})", self.0),
        }
    }
}

/// The interruptibility state as the blockings in force (`none`, or `STI, NMI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptibilityText(pub u32);

impl fmt::Display for InterruptibilityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 5] = [
            (interruptibility::BLOCKING_BY_STI, "blocking by STI"),
            (interruptibility::BLOCKING_BY_MOV_SS, "blocking by MOV SS"),
            (interruptibility::BLOCKING_BY_SMI, "blocking by SMI"),
            (interruptibility::BLOCKING_BY_NMI, "blocking by NMI"),
            (
                interruptibility::ENCLAVE_INTERRUPTION,
                "enclave interruption",
            ),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        let mut known = 0;
        for (bit, name) in NAMES {
            known |= bit;
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if self.0 & !known != 0 {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "reserved bits {:#x}", self.0 & !known)?;
        }
        Ok(())
    }
}

/// An event queued for injection at the next VM entry (the VM-entry interruption-information
/// field): `none`, or its type, vector and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventText {
    pub info: InterruptionInfo,
    pub error_code: u32,
}

/// Exception mnemonics by vector (SDM Vol. 3A, "Exception and Interrupt Reference").
const EXCEPTIONS: [&str; 22] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
];

impl fmt::Display for EventText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(kind) = self.info.valid_kind() else {
            return f.write_str("none");
        };
        let v = self.info.vector();
        write!(f, "{} vector {v}", kind.name())?;
        if let Some(name) = EXCEPTIONS.get(usize::from(v))
            && matches!(
                kind,
                crate::exit::InterruptionType::HardwareException
                    | crate::exit::InterruptionType::SoftwareException
            )
        {
            write!(f, " ({name})")?;
        }
        if self.info.error_code_valid() {
            write!(f, ", error code {:#x}", self.error_code)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::InterruptionType;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn flags_of_a_long_mode_guest() {
        assert_eq!(FlagNames::cr0(0x8000_0031).to_string(), "[PE ET NE PG]");
        assert_eq!(FlagNames::cr4(0x2020).to_string(), "[PAE VMXE]");
        assert_eq!(FlagNames::efer(0x500).to_string(), "[LME LMA]");
        assert_eq!(FlagNames::rflags(0x202).to_string(), "[IF]");
        assert_eq!(
            FlagNames::rflags(0x2).to_string(),
            "[]",
            "bit 1 is not shown"
        );
        assert_eq!(FlagNames::cr0(0).to_string(), "[]");
    }

    #[test]
    fn unnamed_bits_are_shown_as_a_remainder() {
        assert_eq!(FlagNames::cr0(1 | (1 << 8)).to_string(), "[PE +0x100]");
        assert_eq!(
            FlagNames::efer(1 << 63).to_string(),
            "[+0x8000000000000000]"
        );
        assert_eq!(FlagNames::rflags(0x2 | (1 << 3)).to_string(), "[+0x8]");
    }

    #[test]
    fn access_rights() {
        let text = |ar| AccessRightsText(AccessRights(ar)).to_string();
        // The 64-bit code and data segments of `GuestState::long_mode_flat`.
        assert_eq!(text(0xa09b), "code RX accessed, DPL 0, present, L, G");
        assert_eq!(text(0xc093), "data RW accessed, DPL 0, present, D/B, G");
        // Real mode: accessed RW data with DPL 3.
        assert_eq!(text(0xf3), "data RW accessed, DPL 3, present");
        assert_eq!(text(0x8b), "64/32-bit TSS (busy), DPL 0, present");
        assert_eq!(text(0x82), "LDT, DPL 0, present");
        assert_eq!(text(1 << 16), "unusable");
        assert_eq!(text(0x9c), "code X conforming, DPL 0, present");
        assert_eq!(text(0x95), "data R expand-down accessed, DPL 0, present");
    }

    #[test]
    fn activity_and_interruptibility() {
        assert_eq!(ActivityText(0).to_string(), "active");
        assert_eq!(ActivityText(1).to_string(), "HLT");
        assert_eq!(ActivityText(9).to_string(), "unknown (0x9)");
        assert_eq!(InterruptibilityText(0).to_string(), "none");
        assert_eq!(
            InterruptibilityText(0b1001).to_string(),
            "blocking by STI, blocking by NMI"
        );
        assert_eq!(
            InterruptibilityText(1 << 7).to_string(),
            "reserved bits 0x80"
        );
    }

    #[test]
    fn queued_events() {
        let none = EventText {
            info: InterruptionInfo(0),
            error_code: 0,
        };
        assert_eq!(none.to_string(), "none");
        let gp = EventText {
            info: InterruptionInfo::hardware_exception(13),
            error_code: 0,
        };
        assert_eq!(
            gp.to_string(),
            "hardware exception vector 13 (#GP), error code 0x0"
        );
        let irq = EventText {
            info: InterruptionInfo::external_interrupt(0x30),
            error_code: 0,
        };
        assert_eq!(irq.to_string(), "external interrupt vector 48");
        let ud = EventText {
            info: InterruptionInfo::new(6, InterruptionType::HardwareException, false),
            error_code: 0,
        };
        assert_eq!(ud.to_string(), "hardware exception vector 6 (#UD)");
    }
}
