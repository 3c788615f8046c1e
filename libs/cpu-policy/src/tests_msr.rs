use conduit_clock::Rate;

use crate::bits::*;
use crate::fixtures::{KVM_SKYLAKE, TIGERLAKE};
use crate::xsave::{XCR0_AVX, XCR0_SSE, XCR0_X87};
use crate::*;

/// Tiger Lake's IA32_ARCH_CAPABILITIES: RDCL_NO, IBRS_ALL, SKIP_L1DFL_VMENTRY, MDS_NO,
/// PSCHANGE_MC_NO, TSX_CTRL (bits 0, 1, 3, 5, 6, 7).
const TIGER_ARCH_CAPS: u64 = 0xeb;

fn host() -> HostMsrs {
    HostMsrs {
        arch_capabilities: TIGER_ARCH_CAPS,
        microcode_revision: 0x86,
        linear_bits: 48,
        physical_bits: 40,
    }
}

fn cpu_config(rdtscp: bool) -> GuestCpuConfig {
    GuestCpuConfig {
        apic_id: 0,
        vcpus: 1,
        tsc: Rate::from_khz(50_000).expect("non-zero"),
        xcr0_supported: XCR0_X87 | XCR0_SSE | XCR0_AVX,
        x2apic: true,
        tsc_deadline: true,
        rdtscp,
        invpcid: true,
    }
}

fn tiger() -> MsrState {
    MsrState::new(GuestCpuid::new(TIGERLAKE, cpu_config(true)).msr_policy(host()))
}

/// The KVM-like host has IBRS/IBPB, STIBP, ARCH_CAPABILITIES and SSBD; no RDTSCP offered.
fn kvm() -> MsrState {
    MsrState::new(GuestCpuid::new(KVM_SKYLAKE, cpu_config(false)).msr_policy(host()))
}

/// A host without any speculation-control feature.
fn plain() -> MsrState {
    MsrState::new(MsrPolicy::new(0, false, host()))
}

#[test]
fn classification() {
    let s = tiger();
    let p = s.policy();
    for msr in [
        IA32_STAR,
        IA32_LSTAR,
        IA32_CSTAR,
        IA32_FMASK,
        IA32_KERNEL_GS_BASE,
    ] {
        assert_eq!(p.classify(msr), MsrClass::PassThrough, "{msr:#x}");
    }
    assert_eq!(p.classify(IA32_TSC_AUX), MsrClass::PassThrough);
    assert_eq!(p.classify(IA32_SPEC_CTRL), MsrClass::PassThrough);
    assert_eq!(p.classify(IA32_PAT), MsrClass::Vmcs(VmcsMsr::Pat));
    assert_eq!(p.classify(IA32_EFER), MsrClass::Vmcs(VmcsMsr::Efer));
    assert_eq!(p.classify(IA32_DEBUGCTL), MsrClass::Vmcs(VmcsMsr::Debugctl));
    assert_eq!(
        p.classify(IA32_SYSENTER_EIP),
        MsrClass::Vmcs(VmcsMsr::SysenterEip)
    );
    assert_eq!(p.classify(IA32_FS_BASE), MsrClass::Vmcs(VmcsMsr::FsBase));
    for msr in [IA32_APIC_BASE, IA32_TSC_DEADLINE, 0x800, 0x830, 0x8ff] {
        assert_eq!(p.classify(msr), MsrClass::Apic, "{msr:#x}");
    }
    assert_eq!(p.classify(IA32_TSC), MsrClass::Tsc);
    assert_eq!(
        p.classify(0x20f),
        MsrClass::Emulated(EmulatedMsr::MtrrVariable {
            index: 7,
            mask: true
        })
    );
    // Not in the policy: #GP. PMU, machine check, thermal, PLATFORM_INFO, fixed MTRRs,
    // variable range 8, IA32_XSS, the end of the x2APIC range + 1.
    for msr in [
        0xc1, 0x186, 0x38f, 0x179, 0x17a, 0x19c, 0xce, 0x250, 0x210, 0xda0, 0x900,
    ] {
        assert_eq!(p.classify(msr), MsrClass::Gp, "{msr:#x}");
        assert_eq!(tiger().read(msr), Err(Gp));
        assert_eq!(tiger().write(msr, 0), Err(Gp));
    }
}

#[test]
fn msrs_follow_the_guest_cpuid() {
    let p = *kvm().policy();
    assert_eq!(
        p.classify(IA32_TSC_AUX),
        MsrClass::Gp,
        "no RDTSCP, no RDPID"
    );
    assert_eq!(p.classify(IA32_SPEC_CTRL), MsrClass::PassThrough);
    let p = *plain().policy();
    for msr in [
        IA32_SPEC_CTRL,
        IA32_PRED_CMD,
        IA32_ARCH_CAPABILITIES,
        IA32_TSC_AUX,
    ] {
        assert_eq!(p.classify(msr), MsrClass::Gp, "{msr:#x}");
    }
    // A guest's leaf 7 EDX without ARCH_CAPABILITIES: no MSR.
    let p = MsrPolicy::new(L7_EDX_IBRS_IBPB, true, host());
    assert_eq!(p.classify(IA32_ARCH_CAPABILITIES), MsrClass::Gp);
    assert_eq!(
        p.classify(IA32_PRED_CMD),
        MsrClass::Emulated(EmulatedMsr::PredCmd)
    );
}

#[test]
fn reads() {
    let s = tiger();
    assert_eq!(s.read(IA32_MTRRCAP), Ok(Read::Value(8)));
    assert_eq!(s.read(IA32_MTRR_DEF_TYPE), Ok(Read::Value(0x806)));
    assert_eq!(s.read(IA32_MISC_ENABLE), Ok(Read::Value(0x1801)));
    assert_eq!(s.read(IA32_FEATURE_CONTROL), Ok(Read::Value(1)));
    assert_eq!(s.read(IA32_BIOS_SIGN_ID), Ok(Read::Value(0x86 << 32)));
    // Only the "not affected" statements of the host's value.
    assert_eq!(s.read(IA32_ARCH_CAPABILITIES), Ok(Read::Value(0x63)));
    assert_eq!(s.read(IA32_PRED_CMD), Err(Gp), "write-only");
    assert_eq!(s.read(0x200), Ok(Read::Value(0)));
    assert_eq!(s.read(IA32_LSTAR), Ok(Read::Switched(IA32_LSTAR)));
    assert_eq!(s.read(IA32_EFER), Ok(Read::Vmcs(VmcsMsr::Efer)));
    assert_eq!(s.read(0x830), Ok(Read::Apic(0x830)));
    assert_eq!(s.read(IA32_TSC), Ok(Read::Tsc));
}

#[test]
fn read_only_msrs_refuse_writes() {
    let mut s = tiger();
    for msr in [IA32_MTRRCAP, IA32_FEATURE_CONTROL, IA32_ARCH_CAPABILITIES] {
        let Ok(Read::Value(v)) = s.read(msr) else {
            panic!("{msr:#x} readable")
        };
        assert_eq!(s.write(msr, v), Err(Gp), "{msr:#x}");
    }
}

#[test]
fn mtrr_def_type_writes() {
    let mut s = tiger();
    assert_eq!(
        s.write(IA32_MTRR_DEF_TYPE, 0x800),
        Ok(WriteEffect::Done),
        "UC default"
    );
    assert_eq!(s.read(IA32_MTRR_DEF_TYPE), Ok(Read::Value(0x800)));
    assert_eq!(
        s.write(IA32_MTRR_DEF_TYPE, 0x006),
        Ok(WriteEffect::Done),
        "disabled"
    );
    for bad in [0xc06, 0x807, 0x802, 0x801, 0x906, 0x1806, 1 << 63] {
        assert_eq!(s.write(IA32_MTRR_DEF_TYPE, bad), Err(Gp), "{bad:#x}");
    }
    assert_eq!(s.read(IA32_MTRR_DEF_TYPE), Ok(Read::Value(0x006)), "kept");
}

#[test]
fn mtrr_variable_range_writes() {
    let mut s = tiger();
    // A 256 MiB UC range at 3.5 GiB, as firmware writes for MMIO.
    assert_eq!(s.write(0x202, 0xe000_0000), Ok(WriteEffect::Done));
    assert_eq!(s.write(0x203, 0xff_f000_0800), Ok(WriteEffect::Done));
    assert_eq!(s.read(0x203), Ok(Read::Value(0xff_f000_0800)));
    assert_eq!(s.write(0x202, 0xe000_0006), Ok(WriteEffect::Done));
    let bad = [
        (0x202, 0xe000_0002),     // reserved type
        (0x202, 0xe000_0001),     // WC: MTRRcap offers none
        (0x202, 0xe000_0100),     // reserved bits 11:8
        (0x202, 1 << 40),         // above MAXPHYADDR (40)
        (0x203, 0xff_f000_0400),  // mask reserved bits 10:0
        (0x203, 0x1ff_f000_0800), // above MAXPHYADDR
    ];
    for (msr, v) in bad {
        assert_eq!(s.write(msr, v), Err(Gp), "{msr:#x} {v:#x}");
    }
    assert_eq!(s.read(0x202), Ok(Read::Value(0xe000_0006)));
}

#[test]
fn misc_enable_writes() {
    let mut s = tiger();
    assert_eq!(
        s.write(IA32_MISC_ENABLE, 0x1801),
        Ok(WriteEffect::Done),
        "unchanged"
    );
    assert_eq!(
        s.write(IA32_MISC_ENABLE, 0x1800),
        Ok(WriteEffect::Done),
        "fast strings off"
    );
    assert_eq!(s.read(IA32_MISC_ENABLE), Ok(Read::Value(0x1800)));
    // MONITOR enable, EIST, limit CPUID, XD disable, clearing BTS-unavailable.
    for bad in [0x41800, 0x11800, 0x401800, 0x4_0000_1800, 0x1000] {
        assert_eq!(s.write(IA32_MISC_ENABLE, bad), Err(Gp), "{bad:#x}");
    }
}

#[test]
fn bios_sign_id_and_pred_cmd() {
    let mut s = tiger();
    assert_eq!(s.write(IA32_BIOS_SIGN_ID, 0), Ok(WriteEffect::Done));
    assert_eq!(s.read(IA32_BIOS_SIGN_ID), Ok(Read::Value(0x86 << 32)));
    assert_eq!(s.write(IA32_PRED_CMD, 1), Ok(WriteEffect::Ibpb));
    assert_eq!(s.write(IA32_PRED_CMD, 0), Ok(WriteEffect::Done));
    assert_eq!(s.write(IA32_PRED_CMD, 2), Err(Gp));
}

#[test]
fn spec_ctrl_accepts_only_offered_bits() {
    let mut s = tiger();
    for v in [0, 1, 2, 4, 7] {
        assert_eq!(
            s.write(IA32_SPEC_CTRL, v),
            Ok(WriteEffect::Switched(IA32_SPEC_CTRL, v))
        );
    }
    assert_eq!(s.write(IA32_SPEC_CTRL, 8), Err(Gp));
    // IBRS only.
    let mut s = MsrState::new(MsrPolicy::new(L7_EDX_IBRS_IBPB, false, host()));
    assert!(s.write(IA32_SPEC_CTRL, 1).is_ok());
    assert_eq!(s.write(IA32_SPEC_CTRL, 2), Err(Gp));
}

#[test]
fn switched_msrs_check_canonical_addresses() {
    let mut s = tiger();
    let canonical = [0, 0xffff_ffff_8100_0000, 0x0000_7fff_ffff_f000];
    let non_canonical = [0x0000_8000_0000_0000, 0xfff0_0000_0000_0000];
    for msr in [IA32_LSTAR, IA32_CSTAR, IA32_KERNEL_GS_BASE] {
        for v in canonical {
            assert_eq!(s.write(msr, v), Ok(WriteEffect::Switched(msr, v)));
        }
        for v in non_canonical {
            assert_eq!(s.write(msr, v), Err(Gp), "{msr:#x} {v:#x}");
        }
    }
    for (msr, f) in [
        (IA32_SYSENTER_ESP, VmcsMsr::SysenterEsp),
        (IA32_SYSENTER_EIP, VmcsMsr::SysenterEip),
        (IA32_FS_BASE, VmcsMsr::FsBase),
        (IA32_GS_BASE, VmcsMsr::GsBase),
    ] {
        assert_eq!(
            s.write(msr, canonical[1]),
            Ok(WriteEffect::Vmcs(f, canonical[1]))
        );
        assert_eq!(s.write(msr, non_canonical[0]), Err(Gp));
    }
    let star = 0x0023_0010_0000_0000;
    assert_eq!(
        s.write(IA32_STAR, star),
        Ok(WriteEffect::Switched(IA32_STAR, star))
    );
    assert_eq!(
        s.write(IA32_TSC_AUX, 3),
        Ok(WriteEffect::Switched(IA32_TSC_AUX, 3))
    );
    assert_eq!(s.write(IA32_TSC_AUX, 1 << 32), Err(Gp));
}

#[test]
fn vmcs_msrs_check_their_values() {
    let mut s = tiger();
    let linux_pat = 0x0007_0406_0007_0406;
    assert_eq!(
        s.write(IA32_PAT, linux_pat),
        Ok(WriteEffect::Vmcs(VmcsMsr::Pat, linux_pat))
    );
    assert_eq!(
        s.write(IA32_PAT, 0x0007_0406_0007_0402),
        Err(Gp),
        "type 2 reserved"
    );
    assert_eq!(
        s.write(IA32_PAT, 0x0807_0406_0007_0406),
        Err(Gp),
        "type 8 reserved"
    );
    let efer = 0xd01; // SCE, LME, LMA, NXE
    assert_eq!(
        s.write(IA32_EFER, efer),
        Ok(WriteEffect::Vmcs(VmcsMsr::Efer, efer))
    );
    assert_eq!(s.write(IA32_EFER, efer | (1 << 12)), Err(Gp), "SVME");
    assert_eq!(
        s.write(IA32_DEBUGCTL, 0),
        Ok(WriteEffect::Vmcs(VmcsMsr::Debugctl, 0))
    );
    assert_eq!(
        s.write(IA32_DEBUGCTL, 2),
        Ok(WriteEffect::Vmcs(VmcsMsr::Debugctl, 2))
    );
    assert_eq!(s.write(IA32_DEBUGCTL, 1), Err(Gp), "LBR");
    assert_eq!(
        s.write(IA32_SYSENTER_CS, 0x10),
        Ok(WriteEffect::Vmcs(VmcsMsr::SysenterCs, 0x10))
    );
}

#[test]
fn apic_and_tsc_writes_go_to_their_owners() {
    let mut s = kvm();
    assert_eq!(
        s.write(IA32_APIC_BASE, 0xfee0_0d00),
        Ok(WriteEffect::Apic(IA32_APIC_BASE, 0xfee0_0d00))
    );
    assert_eq!(s.write(0x80b, 0), Ok(WriteEffect::Apic(0x80b, 0)));
    assert_eq!(s.write(IA32_TSC, 12345), Ok(WriteEffect::Tsc(12345)));
}

#[test]
fn tsc_adjust_follows_writes_to_itself_and_to_the_tsc() {
    let mut s = tiger();
    assert_eq!(s.read(IA32_TSC_ADJUST), Ok(Read::Value(0)));
    // Writing 1000 adds 1000 to the TSC.
    assert_eq!(
        s.write(IA32_TSC_ADJUST, 1000),
        Ok(WriteEffect::TscDelta(1000))
    );
    assert_eq!(s.read(IA32_TSC_ADJUST), Ok(Read::Value(1000)));
    // Writing 400 subtracts 600 (two's complement).
    assert_eq!(
        s.write(IA32_TSC_ADJUST, 400),
        Ok(WriteEffect::TscDelta(600u64.wrapping_neg()))
    );
    // A TSC write that moved the TSC by -500 moves TSC_ADJUST by -500 too.
    assert_eq!(s.write(IA32_TSC, 77), Ok(WriteEffect::Tsc(77)));
    s.tsc_written(500u64.wrapping_neg());
    assert_eq!(
        s.read(IA32_TSC_ADJUST),
        Ok(Read::Value(400u64.wrapping_sub(500)))
    );
}
