use super::*;
use crate::fixtures::{BOCHS_TIGERLAKE, KNOWN_CPUS};

/// Every known CPU (one table entry each) runs Conduit's baseline, 64-bit and real-mode guests,
/// and the result respects the CPU's allowed settings.
#[test]
fn baseline_works_on_every_known_cpu() {
    for cpu in KNOWN_CPUS {
        let allowed = AllowedControls::from_msrs(&cpu.msrs);
        for long_mode in [true, false] {
            let req = ControlRequest::conduit(long_mode);
            let c = VmxControls::compute(&cpu.msrs, &req)
                .unwrap_or_else(|e| panic!("{}: {e}", cpu.name));
            assert_eq!(c.verify(&allowed), Ok(()), "{}", cpu.name);
            assert!(c.pin.contains(req.pin.required), "{}", cpu.name);
            assert!(c.primary.contains(req.primary.required), "{}", cpu.name);
            assert!(c.secondary.contains(req.secondary.required), "{}", cpu.name);
            assert!(c.exit.contains(req.exit.required), "{}", cpu.name);
            assert!(c.entry.contains(req.entry.required), "{}", cpu.name);
            assert_eq!(c.entry.contains(EntryControls::IA32E_MODE_GUEST), long_mode);
            // Default1 bits are on; nothing outside the allowed 1-settings is.
            assert_eq!(
                c.primary.bits() & allowed.primary.must_be_one,
                allowed.primary.must_be_one
            );
            assert_eq!(c.exit.bits() & !allowed.exit.may_be_one, 0);
        }
    }
}

/// Bochs tigerlake: values computed by hand from the MSRs (TRUE_* in use: VMX_BASIC bit 55).
#[test]
fn tigerlake_exact_values() {
    let c = VmxControls::compute(&BOCHS_TIGERLAKE, &ControlRequest::conduit(true)).unwrap();
    // 0x16 (default1) | ext-int 0x1 | NMI 0x8 | preemption timer 0x40 | virtual NMIs 0x20.
    assert_eq!(c.pin.bits(), 0x7f);
    // TRUE allowed0 0x04006172 | HLT 0x80 | MWAIT 1<<10 | I/O bitmaps 1<<25 | MSR bitmaps 1<<28 |
    // MONITOR 1<<29 | secondary 1<<31.
    assert_eq!(c.primary.bits(), 0xb600_65f2);
    assert!(!c.primary.contains(PrimaryControls::CR3_LOAD_EXITING));
    // EPT 0x2 | VPID 0x20 | UG 0x80 | RDTSCP 0x8 | INVPCID 0x1000 | XSAVES 0x10_0000.
    assert_eq!(c.secondary.bits(), 0x0010_10aa);
    // TRUE allowed0 0x36dfb | host AS 0x200 | ack 0x8000 | PAT 0xc_0000 | EFER 0x30_0000.
    assert_eq!(c.exit.bits(), 0x003f_effb);
    // TRUE allowed0 0x11fb | IA-32e 0x200 | PAT 0x4000 | EFER 0x8000.
    assert_eq!(c.entry.bits(), 0xd3fb);
    let real = VmxControls::compute(&BOCHS_TIGERLAKE, &ControlRequest::conduit(false)).unwrap();
    assert_eq!(real.entry.bits(), 0xd1fb);
}

#[test]
fn plain_msrs_used_without_true_controls_and_default1_forced_on() {
    let mut m = BOCHS_TIGERLAKE;
    m.basic &= !(1 << 55);
    let a = AllowedControls::from_msrs(&m);
    assert_eq!(a.primary.must_be_one, 0x0401_e172);
    let r = adjust(
        a.primary,
        PrimaryControls::HLT_EXITING,
        PrimaryControls::empty(),
    )
    .unwrap();
    assert_eq!(r.value.bits(), 0x0401_e1f2);
    assert!(
        r.value
            .contains(PrimaryControls::CR3_LOAD_EXITING | PrimaryControls::CR3_STORE_EXITING)
    );
    assert_eq!(r.forced_on, 0x0401_e172);
    let c = VmxControls::compute(&m, &ControlRequest::conduit(true)).unwrap();
    assert_eq!(c.primary.bits(), 0xb601_e5f2);
    assert_eq!(
        c.exit.bits(),
        0x003f_efff,
        "save debug controls is default1 in the plain MSR"
    );
}

#[test]
fn no_unrestricted_guest_is_a_named_error() {
    let mut m = BOCHS_TIGERLAKE;
    m.procbased2 &= !(1u64 << (32 + 7));
    assert_eq!(
        VmxControls::compute(&m, &ControlRequest::conduit(false)),
        Err(ControlError::Unsupported {
            group: "secondary processor-based",
            control: "unrestricted guest",
            bit: 7
        })
    );
}

#[test]
fn no_ept_is_a_named_error() {
    let mut m = BOCHS_TIGERLAKE;
    m.procbased2 &= !(1u64 << (32 + 1));
    let e = VmxControls::compute(&m, &ControlRequest::conduit(true)).unwrap_err();
    assert_eq!(
        e,
        ControlError::Unsupported {
            group: "secondary processor-based",
            control: "enable EPT",
            bit: 1
        }
    );
    assert_eq!(
        std::format!("{e}"),
        "secondary processor-based control \"enable EPT\" (bit 1) is required but this CPU cannot set it"
    );
}

#[test]
fn no_secondary_controls_at_all() {
    let mut m = BOCHS_TIGERLAKE;
    m.true_procbased &= !(1u64 << 63);
    let e = VmxControls::compute(&m, &ControlRequest::conduit(true)).unwrap_err();
    assert_eq!(
        e,
        ControlError::Unsupported {
            group: "secondary processor-based",
            control: "enable EPT",
            bit: 1
        }
    );
}

#[test]
fn no_preemption_timer_and_no_load_efer() {
    let mut m = BOCHS_TIGERLAKE;
    m.true_pinbased &= !(1u64 << (32 + 6));
    assert_eq!(
        VmxControls::compute(&m, &ControlRequest::conduit(true)),
        Err(ControlError::Unsupported {
            group: "pin-based",
            control: "activate VMX-preemption timer",
            bit: 6
        })
    );
    let mut m = BOCHS_TIGERLAKE;
    m.true_entry &= !(1u64 << (32 + 15));
    assert_eq!(
        VmxControls::compute(&m, &ControlRequest::conduit(true)),
        Err(ControlError::Unsupported {
            group: "VM-entry",
            control: "load IA32_EFER",
            bit: 15
        })
    );
}

#[test]
fn optional_controls_are_dropped_silently() {
    let mut m = BOCHS_TIGERLAKE;
    m.procbased2 &= !(1u64 << (32 + 3)); // no RDTSCP
    m.true_pinbased &= !(1u64 << (32 + 5)); // no virtual NMIs
    let c = VmxControls::compute(&m, &ControlRequest::conduit(true)).unwrap();
    assert!(!c.secondary.contains(SecondaryControls::ENABLE_RDTSCP));
    assert!(!c.pin.contains(PinBasedControls::VIRTUAL_NMIS));
    let a = AllowedControls::from_msrs(&m);
    let r = adjust(
        a.secondary,
        SecondaryControls::ENABLE_EPT,
        SecondaryControls::ENABLE_RDTSCP,
    )
    .unwrap();
    assert_eq!(r.dropped, SecondaryControls::ENABLE_RDTSCP);
    assert_eq!(r.value, SecondaryControls::ENABLE_EPT);
}

#[test]
fn secondary_controls_activate_the_primary_bit() {
    let mut req = ControlRequest::conduit(true);
    req.primary
        .required
        .remove(PrimaryControls::ACTIVATE_SECONDARY_CONTROLS);
    let c = VmxControls::compute(&BOCHS_TIGERLAKE, &req).unwrap();
    assert!(
        c.primary
            .contains(PrimaryControls::ACTIVATE_SECONDARY_CONTROLS)
    );
}

#[test]
fn dependencies_are_named() {
    let mut req = ControlRequest::conduit(true);
    req.secondary.required.remove(SecondaryControls::ENABLE_EPT);
    assert_eq!(
        VmxControls::compute(&BOCHS_TIGERLAKE, &req),
        Err(ControlError::Dependency {
            control: "unrestricted guest",
            requires: "enable EPT"
        })
    );

    let mut req = ControlRequest::conduit(true);
    req.pin.required.remove(PinBasedControls::NMI_EXITING);
    assert_eq!(
        VmxControls::compute(&BOCHS_TIGERLAKE, &req),
        Err(ControlError::Dependency {
            control: "virtual NMIs",
            requires: "NMI exiting"
        })
    );

    let mut req = ControlRequest::conduit(true);
    req.exit
        .required
        .remove(ExitControls::HOST_ADDRESS_SPACE_SIZE);
    assert_eq!(
        VmxControls::compute(&BOCHS_TIGERLAKE, &req),
        Err(ControlError::Dependency {
            control: "IA-32e mode guest",
            requires: "host address-space size"
        })
    );

    let mut req = ControlRequest::conduit(true);
    req.exit.required |= ExitControls::SAVE_PREEMPTION_TIMER;
    req.pin.required.remove(PinBasedControls::PREEMPTION_TIMER);
    assert_eq!(
        VmxControls::compute(&BOCHS_TIGERLAKE, &req),
        Err(ControlError::Dependency {
            control: "save VMX-preemption timer value",
            requires: "activate VMX-preemption timer"
        })
    );

    let mut req = ControlRequest::conduit(true);
    req.entry.required |= EntryControls::ENTRY_TO_SMM;
    assert_eq!(
        VmxControls::compute(&BOCHS_TIGERLAKE, &req),
        Err(ControlError::SmmOnly {
            control: "entry to SMM"
        })
    );
}

#[test]
fn verify_names_cleared_default1_and_forbidden_bits() {
    let a = AllowedControls::from_msrs(&BOCHS_TIGERLAKE);
    assert_eq!(
        verify(a.pin, PinBasedControls::EXTERNAL_INTERRUPT_EXITING),
        Err(ControlError::MustBeSet {
            group: "pin-based",
            control: "reserved",
            bit: 1
        })
    );
    assert_eq!(
        verify(a.pin, PinBasedControls::from_bits_retain(0x16 | 0x80)),
        Err(ControlError::Unsupported {
            group: "pin-based",
            control: "process posted interrupts",
            bit: 7
        })
    );
    // A run-time change (interrupt-window exiting on) stays valid on tigerlake.
    let mut c = VmxControls::compute(&BOCHS_TIGERLAKE, &ControlRequest::conduit(true)).unwrap();
    c.primary |= PrimaryControls::INTERRUPT_WINDOW_EXITING;
    assert_eq!(c.verify(&a), Ok(()));
}

#[test]
fn inconsistent_capability_msr() {
    let a = AllowedBits {
        must_be_one: 0x3,
        may_be_one: 0x1,
    };
    assert_eq!(
        adjust(a, EntryControls::empty(), EntryControls::empty()),
        Err(ControlError::InconsistentCapability {
            group: "VM-entry",
            bits: 0x2
        })
    );
}
