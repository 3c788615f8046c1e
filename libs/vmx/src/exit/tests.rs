use super::*;
use std::format;

#[test]
fn basic_exit_reasons_round_trip_and_are_named() {
    assert_eq!(BasicExitReason::ALL.len(), 78);
    for &r in BasicExitReason::ALL {
        assert_eq!(BasicExitReason::from_raw(r.number()), Ok(r));
        assert!(!r.name().is_empty());
    }
    for unused in [35u16, 38, 42, 71, 82, 0xffff] {
        assert_eq!(
            BasicExitReason::from_raw(unused),
            Err(ExitDecodeError::UnknownExitReason(unused))
        );
    }
    use BasicExitReason as B;
    let expect = [
        (1, B::ExternalInterrupt, "external interrupt"),
        (2, B::TripleFault, "triple fault"),
        (10, B::Cpuid, "CPUID"),
        (12, B::Hlt, "HLT"),
        (18, B::Vmcall, "VMCALL"),
        (28, B::ControlRegisterAccess, "control-register accesses"),
        (30, B::IoInstruction, "I/O instruction"),
        (31, B::Rdmsr, "RDMSR"),
        (32, B::Wrmsr, "WRMSR"),
        (
            33,
            B::InvalidGuestState,
            "VM-entry failure due to invalid guest state",
        ),
        (34, B::MsrLoading, "VM-entry failure due to MSR loading"),
        (
            41,
            B::MachineCheckDuringEntry,
            "VM-entry failure due to machine-check event",
        ),
        (48, B::EptViolation, "EPT violation"),
        (49, B::EptMisconfiguration, "EPT misconfiguration"),
        (52, B::PreemptionTimer, "VMX-preemption timer expired"),
    ];
    for (n, r, name) in expect {
        assert_eq!(BasicExitReason::from_raw(n), Ok(r));
        assert_eq!(r.name(), name);
    }
}

#[test]
fn exit_reason_field() {
    let failed = ExitReason(0x8000_0021);
    assert!(failed.entry_failure());
    assert_eq!(failed.basic(), Ok(BasicExitReason::InvalidGuestState));
    assert!(failed.basic().unwrap().is_entry_failure_reason());
    assert_eq!(
        ExitReason(0x8000_0022).basic(),
        Ok(BasicExitReason::MsrLoading)
    );
    assert_eq!(
        ExitReason(0x8000_0029).basic(),
        Ok(BasicExitReason::MachineCheckDuringEntry)
    );
    let hlt = ExitReason(12);
    assert!(!hlt.entry_failure() && !hlt.pending_mtf() && !hlt.enclave_mode());
    assert_eq!(hlt.name(), "HLT");
    let mtf = ExitReason(ExitReason::PENDING_MTF | 0x30);
    assert!(mtf.pending_mtf());
    assert_eq!(mtf.basic(), Ok(BasicExitReason::EptViolation));
    assert_eq!(
        ExitReason(0x23).basic(),
        Err(ExitDecodeError::UnknownExitReason(35))
    );
    assert_eq!(ExitReason(0x23).name(), "unknown exit reason");
}

#[test]
fn instruction_errors_have_sdm_meanings() {
    assert_eq!(VmInstructionError::ALL.len(), 25);
    for &e in VmInstructionError::ALL {
        assert_eq!(VmInstructionError::from_raw(e.number()), Ok(e));
        assert_eq!(format!("{e}"), e.message());
    }
    assert_eq!(
        VmInstructionError::from_raw(7).map(VmInstructionError::message),
        Ok("VM entry with invalid control field(s)")
    );
    assert_eq!(
        VmInstructionError::from_raw(8),
        Ok(VmInstructionError::EntryInvalidHostStateFields)
    );
    assert_eq!(
        VmInstructionError::from_raw(4),
        Ok(VmInstructionError::VmlaunchNonClearVmcs)
    );
    assert_eq!(
        VmInstructionError::from_raw(12).map(VmInstructionError::message),
        Ok("VMREAD/VMWRITE from/to unsupported VMCS component")
    );
    assert_eq!(
        VmInstructionError::from_raw(26),
        Ok(VmInstructionError::EntryEventsBlockedByMovSs)
    );
    for unused in [0, 14, 21, 27, 29] {
        assert_eq!(
            VmInstructionError::from_raw(unused),
            Err(ExitDecodeError::UnknownInstructionError(unused))
        );
    }
}

#[test]
fn control_register_access() {
    // mov cr3, rax
    assert_eq!(
        CrAccess::decode(0x3),
        CrAccess::MovToCr {
            cr: 3,
            gpr: Gpr::Rax
        }
    );
    // mov rbx, cr3 (CR3-store exiting): type 1 (0x10), GPR 3 (0x300)
    assert_eq!(
        CrAccess::decode(0x313),
        CrAccess::MovFromCr {
            cr: 3,
            gpr: Gpr::Rbx
        }
    );
    // mov cr4, rcx / mov cr0, r15 / mov cr8, rdx
    assert_eq!(
        CrAccess::decode(0x104),
        CrAccess::MovToCr {
            cr: 4,
            gpr: Gpr::Rcx
        }
    );
    assert_eq!(
        CrAccess::decode(0xf00),
        CrAccess::MovToCr {
            cr: 0,
            gpr: Gpr::R15
        }
    );
    assert_eq!(
        CrAccess::decode(0x218),
        CrAccess::MovFromCr {
            cr: 8,
            gpr: Gpr::Rdx
        }
    );
    assert_eq!(CrAccess::decode(0x20), CrAccess::Clts);
    // lmsw ax with AX = 1: source in 31:16, type 3
    assert_eq!(
        CrAccess::decode(0x0001_0030),
        CrAccess::Lmsw {
            source: 1,
            memory_operand: false
        }
    );
    assert_eq!(
        CrAccess::decode(0x000f_0070),
        CrAccess::Lmsw {
            source: 0xf,
            memory_operand: true
        }
    );
}

#[test]
fn mov_dr() {
    // mov dr7, rax
    let q = MovDrQualification::decode(0x7);
    assert_eq!(
        (q.dr, q.direction, q.gpr),
        (7, MovDrDirection::ToDr, Gpr::Rax)
    );
    // mov rcx, dr6
    let q = MovDrQualification::decode(0x116);
    assert_eq!(
        (q.dr, q.direction, q.gpr),
        (6, MovDrDirection::FromDr, Gpr::Rcx)
    );
}

#[test]
fn io_instructions() {
    let io = |q| IoQualification::decode(q).unwrap();
    // out dx, al with DX = 0x3f8: size 0, OUT, DX operand
    let q = io(0x03f8_0000);
    assert_eq!(
        q,
        IoQualification {
            size: IoSize::Byte,
            direction: IoDirection::Out,
            string: false,
            rep: false,
            immediate: false,
            port: 0x3f8
        }
    );
    assert_eq!(q.encode(), 0x03f8_0000);
    // in al, dx from 0x3f8 (bit 3 = IN)
    let q = io(0x03f8_0008);
    assert_eq!(
        (q.direction, q.size, q.port),
        (IoDirection::In, IoSize::Byte, 0x3f8)
    );
    // out 0x80, al: immediate operand
    let q = io(0x0080_0040);
    assert!(q.immediate && q.direction == IoDirection::Out && q.port == 0x80);
    // rep outsb to DX = 0x3f8
    let q = io(0x03f8_0030);
    assert!(q.string && q.rep && q.direction == IoDirection::Out);
    // in eax, dx from 0xcfc
    let q = io(0x0cfc_000b);
    assert_eq!(
        (q.size, q.direction, q.port),
        (IoSize::Dword, IoDirection::In, 0xcfc)
    );
    assert_eq!(q.size.bytes(), 4);
    // out dx, ax to 0x1f0
    assert_eq!(io(0x01f0_0001).size, IoSize::Word);
    // rep insw from 0x1f0
    let q = io(0x01f0_0039);
    assert_eq!(q.encode(), 0x01f0_0039);
    assert!(q.string && q.rep && q.direction == IoDirection::In && q.size == IoSize::Word);
    assert_eq!(
        IoQualification::decode(0x2),
        Err(ExitDecodeError::InvalidIoSize(2))
    );
    assert_eq!(
        IoQualification::decode(0x3f8_0004),
        Err(ExitDecodeError::InvalidIoSize(4))
    );
}

#[test]
fn ept_violations() {
    // 0x181: data read, guest-linear address valid, access to the translation; not mapped.
    let v = EptViolation::decode(0x181);
    assert!(v.read && !v.write && !v.fetch);
    assert_eq!(v.linear, Some(EptViolationCause::Translation));
    assert!(v.not_present());
    // 0x182: data write.
    let v = EptViolation::decode(0x182);
    assert!(!v.read && v.write && !v.fetch && v.not_present());
    // 0x184: instruction fetch.
    let v = EptViolation::decode(0x184);
    assert!(!v.read && !v.write && v.fetch);
    // 0x18a: write to a page mapped read-only (bit 3 readable).
    let v = EptViolation::decode(0x18a);
    assert!(v.write && v.readable && !v.writable && !v.executable && !v.not_present());
    // 0x1bc: user-mode fetch from a page that is R/W/X for supervisor mode only (mode-based
    // execute control: bit 6, user-executable, clear).
    let v = EptViolation::decode(0x1bc);
    assert!(!v.user_executable);
    assert!(v.fetch && v.readable && v.writable && v.executable);
    // 0x81: read during a guest page walk (bit 7 set, bit 8 clear).
    assert_eq!(
        EptViolation::decode(0x81).linear,
        Some(EptViolationCause::PagingStructure)
    );
    // 0x2: write with no linear address (e.g. a PAE PDPTE load).
    assert_eq!(EptViolation::decode(0x2).linear, None);
    // NMI unblocking due to IRET.
    assert!(EptViolation::decode(0x1181).nmi_unblocking);
    assert!(!EptViolation::decode(0x181).nmi_unblocking);
    let m = EptMisconfiguration::from_guest_physical_address(0xfee0_0000);
    assert_eq!(m.guest_physical_address, 0xfee0_0000);
}

#[test]
fn interruption_information() {
    let ext = InterruptionInfo(0x8000_0020);
    assert!(ext.valid() && !ext.error_code_valid());
    assert_eq!(
        (ext.vector(), ext.kind()),
        (0x20, InterruptionType::ExternalInterrupt)
    );
    assert_eq!(InterruptionInfo::external_interrupt(0x20), ext);
    // #GP with error code: vector 13, type 3, bit 11.
    let gp = InterruptionInfo(0x8000_0b0d);
    assert_eq!(
        (gp.vector(), gp.kind()),
        (vector::GP, InterruptionType::HardwareException)
    );
    assert!(gp.error_code_valid());
    assert_eq!(InterruptionInfo::hardware_exception(vector::GP), gp);
    assert_eq!(
        InterruptionInfo::hardware_exception(vector::PF).0,
        0x8000_0b0e
    );
    assert_eq!(
        InterruptionInfo::hardware_exception(vector::UD).0,
        0x8000_0306
    );
    assert_eq!(InterruptionInfo::nmi().0, 0x8000_0202);
    let int80 = InterruptionInfo::software_interrupt(0x80);
    assert_eq!(int80.0, 0x8000_0480);
    assert!(int80.kind().needs_instruction_length());
    let bp = InterruptionInfo(0x8000_0603);
    assert_eq!(bp.kind(), InterruptionType::SoftwareException);
    assert!(InterruptionInfo(0x8000_1202).nmi_unblocking());
    assert_eq!(InterruptionInfo(0x0000_0b0d).valid_kind(), None);
    assert_eq!(
        InterruptionInfo(0x8000_0100).kind(),
        InterruptionType::Reserved
    );
    assert!(exception_has_error_code(vector::DF) && exception_has_error_code(vector::CP));
    assert!(!exception_has_error_code(vector::DB) && !exception_has_error_code(vector::MC));
}

#[test]
fn task_switch() {
    let t = TaskSwitchQualification::decode(0x4000_0028);
    assert_eq!((t.selector, t.source), (0x28, TaskSwitchSource::Iret));
    let t = TaskSwitchQualification::decode(0xc000_0030);
    assert_eq!(
        (t.selector, t.source),
        (0x30, TaskSwitchSource::IdtTaskGate)
    );
    assert_eq!(
        TaskSwitchQualification::decode(0x18).source,
        TaskSwitchSource::Call
    );
    assert_eq!(
        TaskSwitchQualification::decode(0x8000_0018).source,
        TaskSwitchSource::Jmp
    );
}

#[test]
fn debug_exceptions() {
    let d = DebugExceptionQualification::decode(0x4001);
    assert_eq!(d.breakpoints, 1);
    assert!(d.single_step && !d.debug_register_access && !d.rtm);
    let d = DebugExceptionQualification::decode(0x2000);
    assert!(d.debug_register_access && d.breakpoints == 0);
    let d = DebugExceptionQualification::decode(0x1_080c);
    assert!(d.rtm && d.bus_lock && d.breakpoints == 0xc);
}

#[test]
fn injection_checks() {
    let ok = |i: InterruptionInfo, ec, len, pe, ug| i.validate_injection(ec, len, pe, ug, false);
    assert_eq!(ok(InterruptionInfo::NONE, 0, 0, true, false), Ok(()));
    assert_eq!(
        ok(
            InterruptionInfo::external_interrupt(0x20),
            0,
            0,
            true,
            false
        ),
        Ok(())
    );
    assert_eq!(
        ok(
            InterruptionInfo::hardware_exception(vector::GP),
            0,
            0,
            true,
            false
        ),
        Ok(())
    );
    assert_eq!(
        ok(
            InterruptionInfo::software_interrupt(0x80),
            0,
            2,
            true,
            false
        ),
        Ok(())
    );
    // A real-mode (unrestricted) guest gets no error code, even for #GP.
    let gp_no_ec = InterruptionInfo::new(vector::GP, InterruptionType::HardwareException, false);
    assert_eq!(ok(gp_no_ec, 0, 0, false, true), Ok(()));
    assert_eq!(
        ok(
            InterruptionInfo::hardware_exception(vector::GP),
            0,
            0,
            false,
            true
        ),
        Err(InjectionError::DeliverErrorCode { expected: false })
    );
    assert_eq!(
        ok(gp_no_ec, 0, 0, true, true),
        Err(InjectionError::DeliverErrorCode { expected: true })
    );
    assert_eq!(
        ok(
            InterruptionInfo::new(3, InterruptionType::Nmi, false),
            0,
            0,
            true,
            false
        ),
        Err(InjectionError::NmiVector(3))
    );
    assert_eq!(
        ok(
            InterruptionInfo::new(32, InterruptionType::HardwareException, false),
            0,
            0,
            true,
            false
        ),
        Err(InjectionError::ExceptionVector(32))
    );
    assert_eq!(
        ok(InterruptionInfo(0x8000_0100), 0, 0, true, false),
        Err(InjectionError::ReservedType)
    );
    assert_eq!(
        ok(
            InterruptionInfo::hardware_exception(vector::PF),
            0x1_0000,
            0,
            true,
            false
        ),
        Err(InjectionError::ErrorCodeHighBits(0x1_0000))
    );
    assert_eq!(
        ok(
            InterruptionInfo::software_interrupt(0x80),
            0,
            0,
            true,
            false
        ),
        Err(InjectionError::InstructionLength(0))
    );
    assert_eq!(
        InterruptionInfo::software_interrupt(0x80).validate_injection(0, 0, true, false, true),
        Ok(())
    );
    assert_eq!(
        ok(InterruptionInfo(0x8000_1020), 0, 0, true, false),
        Err(InjectionError::ReservedBits)
    );
}

#[test]
fn only_some_exits_can_interrupt_event_delivery() {
    let during: Vec<u16> = BasicExitReason::ALL
        .iter()
        .filter(|r| r.may_interrupt_event_delivery())
        .map(|r| r.number())
        .collect();
    assert_eq!(during, [0, 9, 44, 48, 49, 62, 66]);
    for r in [
        BasicExitReason::Cpuid,
        BasicExitReason::Hlt,
        BasicExitReason::Vmcall,
        BasicExitReason::IoInstruction,
        BasicExitReason::ExternalInterrupt,
        BasicExitReason::InterruptWindow,
        BasicExitReason::PreemptionTimer,
        BasicExitReason::TripleFault,
    ] {
        assert!(!r.may_interrupt_event_delivery(), "{r:?}");
    }
}
