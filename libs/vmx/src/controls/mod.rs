//! VMX control adjustment from the capability MSRs (SDM Vol. 3D, Appendix A.2 "Reserved Controls
//! and Default Settings", A.3 "VM-Execution Controls", A.4 "VM-Exit Controls", A.5 "VM-Entry
//! Controls") and the consistency checks among controls (Vol. 3C, "Checks on VMX Controls").
//!
//! Each control MSR reports, in bits 31:0, the *allowed 0-settings* (a 1 means the control must be
//! 1: a "default1" control this CPU cannot clear) and, in bits 63:32, the *allowed 1-settings* (a 0
//! means the control must be 0). When IA32_VMX_BASIC bit 55 is set, the TRUE_* MSRs give the exact
//! allowed 0-settings (some default1 controls may then be 0) and are the ones to use (A.2).
//!
//! [`adjust`] computes `allowed0 | required | (optional & allowed1)`; a required control the CPU
//! cannot set is [`ControlError::Unsupported`], naming the group and the control; a default1 control
//! forced on is accepted and reported in [`Adjusted::forced_on`].

mod flags;
#[cfg(test)]
mod tests;

pub use flags::{
    ControlGroup, EntryControls, ExitControls, PinBasedControls, PrimaryControls, SecondaryControls,
};

use crate::caps::{AllowedBits, VmxBasic, VmxMsrs};

/// Why a set of controls cannot be used on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The control's allowed 1-setting is 0 (SDM Appendix A.3-A.5).
    #[error("{group} control \"{control}\" (bit {bit}) is required but this CPU cannot set it")]
    Unsupported {
        group: &'static str,
        control: &'static str,
        bit: u8,
    },
    /// The control's allowed 0-setting is 1 but the value clears it (SDM Appendix A.3-A.5).
    #[error("{group} control \"{control}\" (bit {bit}) must be 1 on this CPU (default1)")]
    MustBeSet {
        group: &'static str,
        control: &'static str,
        bit: u8,
    },
    /// A capability MSR reports bits that must be 1 but may not be 1: no value can be valid.
    #[error("{group} capability MSR is inconsistent: bits {bits:#x} must be 1 and may not be 1")]
    InconsistentCapability { group: &'static str, bits: u32 },
    /// A control that needs another one (SDM "Checks on VMX Controls").
    #[error("control \"{control}\" requires \"{requires}\" (SDM \"Checks on VMX Controls\")")]
    Dependency {
        control: &'static str,
        requires: &'static str,
    },
    /// Two controls that cannot both be 1 (SDM "Checks on VM-Execution Control Fields").
    #[error("controls \"{a}\" and \"{b}\" cannot both be 1")]
    Conflict { a: &'static str, b: &'static str },
    /// A VM-entry control that must be 0 outside SMM (SDM "Checks on VM-Entry Control Fields").
    #[error("VM-entry control \"{control}\" must be 0 outside SMM")]
    SmmOnly { control: &'static str },
}

/// The result of [`adjust`]: the value to write and what the CPU changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjusted<C> {
    /// The value for the control field (reserved default1 bits retained).
    pub value: C,
    /// Bits set only because the CPU requires them (allowed 0-setting is 1).
    pub forced_on: u32,
    /// Optional controls this CPU cannot set, left at 0.
    pub dropped: C,
}

fn first_bit(bits: u32) -> u8 {
    bits.trailing_zeros() as u8
}

/// Computes the value of one control field: `allowed0 | required | (optional & allowed1)`.
pub fn adjust<C: ControlGroup>(
    allowed: AllowedBits,
    required: C,
    optional: C,
) -> Result<Adjusted<C>, ControlError> {
    let inconsistent = allowed.must_be_one & !allowed.may_be_one;
    if inconsistent != 0 {
        return Err(ControlError::InconsistentCapability {
            group: C::GROUP,
            bits: inconsistent,
        });
    }
    let required = required.bits();
    let optional = optional.bits() & !required;
    let missing = required & !allowed.may_be_one;
    if missing != 0 {
        let bit = first_bit(missing);
        return Err(ControlError::Unsupported {
            group: C::GROUP,
            control: C::control_name(bit.into()),
            bit,
        });
    }
    let granted = optional & allowed.may_be_one;
    Ok(Adjusted {
        value: C::from_bits_retain(allowed.must_be_one | required | granted),
        forced_on: allowed.must_be_one & !(required | optional),
        dropped: C::from_bits_retain(optional & !allowed.may_be_one),
    })
}

/// Checks one control value against its capability MSR (SDM "Checks on VM-Execution Control
/// Fields": "reserved bits ... must be set properly", Appendix A.3-A.5).
pub fn verify<C: ControlGroup>(allowed: AllowedBits, value: C) -> Result<(), ControlError> {
    let v = value.bits();
    let cleared = allowed.must_be_one & !v;
    if cleared != 0 {
        let bit = first_bit(cleared);
        return Err(ControlError::MustBeSet {
            group: C::GROUP,
            control: C::control_name(bit.into()),
            bit,
        });
    }
    let forbidden = v & !allowed.may_be_one;
    if forbidden != 0 {
        let bit = first_bit(forbidden);
        return Err(ControlError::Unsupported {
            group: C::GROUP,
            control: C::control_name(bit.into()),
            bit,
        });
    }
    Ok(())
}

/// The allowed settings of the five control fields, from the TRUE_* MSRs when IA32_VMX_BASIC
/// bit 55 is set (SDM Appendix A.2). The secondary controls allow nothing when "activate secondary
/// controls" cannot be set (IA32_VMX_PROCBASED_CTLS2 must not even be read then, A.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedControls {
    pub pin: AllowedBits,
    pub primary: AllowedBits,
    pub secondary: AllowedBits,
    pub exit: AllowedBits,
    pub entry: AllowedBits,
}

impl AllowedControls {
    pub fn from_msrs(m: &VmxMsrs) -> Self {
        let t = VmxBasic::decode(m.basic).true_controls;
        let pick = |plain: u64, tru: u64| AllowedBits::decode(if t { tru } else { plain });
        let primary = pick(m.procbased, m.true_procbased);
        let secondary =
            if primary.may_be_one & PrimaryControls::ACTIVATE_SECONDARY_CONTROLS.bits() != 0 {
                AllowedBits::decode(m.procbased2)
            } else {
                AllowedBits {
                    must_be_one: 0,
                    may_be_one: 0,
                }
            };
        Self {
            pin: pick(m.pinbased, m.true_pinbased),
            primary,
            secondary,
            exit: pick(m.exit, m.true_exit),
            entry: pick(m.entry, m.true_entry),
        }
    }
}

/// Controls that must be 1 and controls wanted if the CPU has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want<C> {
    pub required: C,
    pub optional: C,
}

impl<C: ControlGroup> Want<C> {
    pub fn required(required: C) -> Self {
        Self {
            required,
            optional: C::empty(),
        }
    }
    pub fn new(required: C, optional: C) -> Self {
        Self { required, optional }
    }
}

/// What the hypervisor asks of the five control fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlRequest {
    pub pin: Want<PinBasedControls>,
    pub primary: Want<PrimaryControls>,
    pub secondary: Want<SecondaryControls>,
    pub exit: Want<ExitControls>,
    pub entry: Want<EntryControls>,
}

impl ControlRequest {
    /// Conduit's baseline: exits on external interrupts, NMIs, HLT, I/O (bitmaps) and MSRs
    /// (bitmaps); the VMX-preemption timer; EPT + VPID + unrestricted guest; EFER and PAT switched
    /// on entry and exit; a 64-bit host. `long_mode` sets "IA-32e mode guest" (64-bit guests).
    /// Optional: virtual NMIs, RDTSCP, INVPCID, XSAVES/XRSTORS (exposed if the CPU has them).
    pub fn conduit(long_mode: bool) -> Self {
        let mut entry = EntryControls::LOAD_EFER | EntryControls::LOAD_PAT;
        entry.set(EntryControls::IA32E_MODE_GUEST, long_mode);
        Self {
            pin: Want::new(
                PinBasedControls::EXTERNAL_INTERRUPT_EXITING
                    | PinBasedControls::NMI_EXITING
                    | PinBasedControls::PREEMPTION_TIMER,
                PinBasedControls::VIRTUAL_NMIS,
            ),
            primary: Want::required(
                PrimaryControls::HLT_EXITING
                    | PrimaryControls::MWAIT_EXITING
                    | PrimaryControls::MONITOR_EXITING
                    | PrimaryControls::USE_IO_BITMAPS
                    | PrimaryControls::USE_MSR_BITMAPS
                    | PrimaryControls::ACTIVATE_SECONDARY_CONTROLS,
            ),
            secondary: Want::new(
                SecondaryControls::ENABLE_EPT
                    | SecondaryControls::ENABLE_VPID
                    | SecondaryControls::UNRESTRICTED_GUEST,
                SecondaryControls::ENABLE_RDTSCP
                    | SecondaryControls::ENABLE_INVPCID
                    | SecondaryControls::ENABLE_XSAVES_XRSTORS,
            ),
            exit: Want::required(
                ExitControls::HOST_ADDRESS_SPACE_SIZE
                    | ExitControls::ACKNOWLEDGE_INTERRUPT_ON_EXIT
                    | ExitControls::SAVE_PAT
                    | ExitControls::LOAD_PAT
                    | ExitControls::SAVE_EFER
                    | ExitControls::LOAD_EFER,
            ),
            entry: Want::required(entry),
        }
    }
}

/// The values to write to the five control fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VmxControls {
    pub pin: PinBasedControls,
    pub primary: PrimaryControls,
    pub secondary: SecondaryControls,
    pub exit: ExitControls,
    pub entry: EntryControls,
}

impl VmxControls {
    /// Adjusts every group of `req` to this CPU, then checks the result (including the
    /// dependencies among controls). "activate secondary controls" is added to the required
    /// primary controls whenever a secondary control ends up set.
    pub fn compute(msrs: &VmxMsrs, req: &ControlRequest) -> Result<Self, ControlError> {
        let allowed = AllowedControls::from_msrs(msrs);
        let pin = adjust(allowed.pin, req.pin.required, req.pin.optional)?;
        let secondary = adjust(
            allowed.secondary,
            req.secondary.required,
            req.secondary.optional,
        )?;
        let mut primary_required = req.primary.required;
        if !secondary.value.is_empty() {
            primary_required |= PrimaryControls::ACTIVATE_SECONDARY_CONTROLS;
        }
        let primary = adjust(allowed.primary, primary_required, req.primary.optional)?;
        let exit = adjust(allowed.exit, req.exit.required, req.exit.optional)?;
        let entry = adjust(allowed.entry, req.entry.required, req.entry.optional)?;
        let controls = Self {
            pin: pin.value,
            primary: primary.value,
            secondary: secondary.value,
            exit: exit.value,
            entry: entry.value,
        };
        controls.verify(&allowed)?;
        Ok(controls)
    }

    /// Checks every field against the allowed settings, then the dependencies among controls
    /// (SDM "Checks on VM-Execution Control Fields", "Checks on VM-Exit Control Fields", "Checks on
    /// VM-Entry Control Fields", "Checks Related to Address-Space Size"), for a 64-bit host
    /// outside SMM. Use it after changing a control at run time.
    pub fn verify(&self, allowed: &AllowedControls) -> Result<(), ControlError> {
        verify(allowed.pin, self.pin)?;
        verify(allowed.primary, self.primary)?;
        verify(allowed.secondary, self.secondary)?;
        verify(allowed.exit, self.exit)?;
        verify(allowed.entry, self.entry)?;
        self.check_dependencies()
    }

    /// The secondary controls in effect (0 unless "activate secondary controls" is set).
    pub fn effective_secondary(&self) -> SecondaryControls {
        if self
            .primary
            .contains(PrimaryControls::ACTIVATE_SECONDARY_CONTROLS)
        {
            self.secondary
        } else {
            SecondaryControls::empty()
        }
    }

    fn check_dependencies(&self) -> Result<(), ControlError> {
        use ControlError::{Conflict, Dependency, SmmOnly};
        let (pin, pri, exit, entry) = (self.pin, self.primary, self.exit, self.entry);
        let sec = self.effective_secondary();
        let n_pin = |f: PinBasedControls| PinBasedControls::control_name(f.bits().trailing_zeros());
        let n_pri = |f: PrimaryControls| PrimaryControls::control_name(f.bits().trailing_zeros());
        let n_sec =
            |f: SecondaryControls| SecondaryControls::control_name(f.bits().trailing_zeros());
        let n_exit = |f: ExitControls| ExitControls::control_name(f.bits().trailing_zeros());
        let n_entry = |f: EntryControls| EntryControls::control_name(f.bits().trailing_zeros());

        if !self.secondary.is_empty() && !pri.contains(PrimaryControls::ACTIVATE_SECONDARY_CONTROLS)
        {
            let first =
                SecondaryControls::from_bits_retain(1 << self.secondary.bits().trailing_zeros());
            return Err(Dependency {
                control: n_sec(first),
                requires: n_pri(PrimaryControls::ACTIVATE_SECONDARY_CONTROLS),
            });
        }
        if pin.contains(PinBasedControls::VIRTUAL_NMIS)
            && !pin.contains(PinBasedControls::NMI_EXITING)
        {
            return Err(Dependency {
                control: n_pin(PinBasedControls::VIRTUAL_NMIS),
                requires: n_pin(PinBasedControls::NMI_EXITING),
            });
        }
        if pri.contains(PrimaryControls::NMI_WINDOW_EXITING)
            && !pin.contains(PinBasedControls::VIRTUAL_NMIS)
        {
            return Err(Dependency {
                control: n_pri(PrimaryControls::NMI_WINDOW_EXITING),
                requires: n_pin(PinBasedControls::VIRTUAL_NMIS),
            });
        }
        for f in [
            SecondaryControls::VIRTUALIZE_X2APIC_MODE,
            SecondaryControls::APIC_REGISTER_VIRTUALIZATION,
            SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY,
        ] {
            if sec.contains(f) && !pri.contains(PrimaryControls::USE_TPR_SHADOW) {
                return Err(Dependency {
                    control: n_sec(f),
                    requires: n_pri(PrimaryControls::USE_TPR_SHADOW),
                });
            }
        }
        if sec.contains(SecondaryControls::VIRTUALIZE_X2APIC_MODE)
            && sec.contains(SecondaryControls::VIRTUALIZE_APIC_ACCESSES)
        {
            return Err(Conflict {
                a: n_sec(SecondaryControls::VIRTUALIZE_X2APIC_MODE),
                b: n_sec(SecondaryControls::VIRTUALIZE_APIC_ACCESSES),
            });
        }
        if sec.contains(SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY)
            && !pin.contains(PinBasedControls::EXTERNAL_INTERRUPT_EXITING)
        {
            return Err(Dependency {
                control: n_sec(SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY),
                requires: n_pin(PinBasedControls::EXTERNAL_INTERRUPT_EXITING),
            });
        }
        if pin.contains(PinBasedControls::POSTED_INTERRUPTS) {
            if !sec.contains(SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY) {
                return Err(Dependency {
                    control: n_pin(PinBasedControls::POSTED_INTERRUPTS),
                    requires: n_sec(SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY),
                });
            }
            if !exit.contains(ExitControls::ACKNOWLEDGE_INTERRUPT_ON_EXIT) {
                return Err(Dependency {
                    control: n_pin(PinBasedControls::POSTED_INTERRUPTS),
                    requires: n_exit(ExitControls::ACKNOWLEDGE_INTERRUPT_ON_EXIT),
                });
            }
        }
        for f in [
            SecondaryControls::UNRESTRICTED_GUEST,
            SecondaryControls::ENABLE_PML,
            SecondaryControls::MODE_BASED_EPT_EXECUTE,
            SecondaryControls::SUB_PAGE_WRITE_PERMISSIONS,
        ] {
            if sec.contains(f) && !sec.contains(SecondaryControls::ENABLE_EPT) {
                return Err(Dependency {
                    control: n_sec(f),
                    requires: n_sec(SecondaryControls::ENABLE_EPT),
                });
            }
        }
        if exit.contains(ExitControls::SAVE_PREEMPTION_TIMER)
            && !pin.contains(PinBasedControls::PREEMPTION_TIMER)
        {
            return Err(Dependency {
                control: n_exit(ExitControls::SAVE_PREEMPTION_TIMER),
                requires: n_pin(PinBasedControls::PREEMPTION_TIMER),
            });
        }
        if !exit.contains(ExitControls::HOST_ADDRESS_SPACE_SIZE) {
            // Conduit's host is in IA-32e mode: the exit must return to 64-bit mode, and an
            // IA-32e mode guest needs a 64-bit host anyway.
            return Err(Dependency {
                control: if entry.contains(EntryControls::IA32E_MODE_GUEST) {
                    n_entry(EntryControls::IA32E_MODE_GUEST)
                } else {
                    "VM entry from a 64-bit host"
                },
                requires: n_exit(ExitControls::HOST_ADDRESS_SPACE_SIZE),
            });
        }
        for f in [
            EntryControls::ENTRY_TO_SMM,
            EntryControls::DEACTIVATE_DUAL_MONITOR,
        ] {
            if entry.contains(f) {
                return Err(SmmOnly {
                    control: n_entry(f),
                });
            }
        }
        Ok(())
    }
}
