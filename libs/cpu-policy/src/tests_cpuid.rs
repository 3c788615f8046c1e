use conduit_abi::{ABI_VERSION, CPUID_HV_SIGNATURE, signature_bytes};
use conduit_clock::Rate;

use crate::bits::*;
use crate::fixtures::{KVM_SKYLAKE, TIGERLAKE, TableHost};
use crate::xsave::*;
use crate::{GuestCpuConfig, GuestCpuid, HV_TIMING_LEAF, HostCpuid, MAX_BASIC_LEAF};

const X87_SSE: u64 = XCR0_X87 | XCR0_SSE;
const X87_SSE_AVX: u64 = X87_SSE | XCR0_AVX;
const ALL: u64 = X87_SSE_AVX | XCR0_AVX512 | XCR0_PKRU;

fn config() -> GuestCpuConfig {
    GuestCpuConfig {
        apic_id: 0,
        vcpus: 1,
        tsc: Rate::from_khz(50_000).expect("non-zero"),
        xcr0_supported: ALL,
        x2apic: true,
        tsc_deadline: true,
        rdtscp: true,
        invpcid: true,
    }
}

fn tiger(c: GuestCpuConfig) -> GuestCpuid<TableHost> {
    GuestCpuid::new(TIGERLAKE, c)
}

fn kvm(c: GuestCpuConfig) -> GuestCpuid<TableHost> {
    GuestCpuid::new(KVM_SKYLAKE, c)
}

#[test]
fn leaf0_vendor_and_maximum() {
    for g in [tiger(config()), kvm(config())] {
        let [max, b, c, d] = g.leaf(0, 0, 1, 0);
        assert_eq!(max, MAX_BASIC_LEAF);
        assert_eq!([b, d, c], [0x756e6547, 0x49656e69, 0x6c65746e]); // "GenuineIntel"
    }
}

#[test]
fn leaf1_ecx_hides_what_is_not_virtualized() {
    let hidden = L1_ECX_MONITOR | (1 << 4) | L1_ECX_VMX | (1 << 6) | (1 << 7) | (1 << 8);
    let hidden = hidden | (1 << 11) | L1_ECX_PDCM | (1 << 2) | (1 << 14);
    for g in [tiger(config()), kvm(config())] {
        let ecx = g.leaf(1, 0, 1, 0)[2];
        assert_eq!(ecx & hidden, 0, "{ecx:#x}");
        assert_ne!(ecx & L1_ECX_HYPERVISOR, 0);
    }
    // What Tiger Lake has and the guest keeps.
    let ecx = tiger(config()).leaf(1, 0, 1, 0)[2];
    let kept = L1_ECX_SSE3 | L1_ECX_SSSE3 | L1_ECX_SSE42 | L1_ECX_PCID | L1_ECX_XSAVE;
    assert_eq!(ecx & kept, kept);
    assert_eq!(ecx & L1_ECX_AVX_FAMILY, L1_ECX_AVX_FAMILY);
}

#[test]
fn leaf1_x2apic_and_tsc_deadline_follow_the_config() {
    for (x2apic, deadline) in [(false, false), (true, false), (false, true), (true, true)] {
        let c = GuestCpuConfig {
            x2apic,
            tsc_deadline: deadline,
            ..config()
        };
        for g in [tiger(c), kvm(c)] {
            let ecx = g.leaf(1, 0, 1, 0)[2];
            assert_eq!(ecx & L1_ECX_X2APIC != 0, x2apic);
            assert_eq!(ecx & L1_ECX_TSC_DEADLINE != 0, deadline);
        }
    }
}

#[test]
fn leaf1_edx_hides_machine_check_debug_store_and_thermal() {
    let hidden = L1_EDX_MCE | L1_EDX_MCA | L1_EDX_DS | L1_EDX_ACPI | L1_EDX_TM | L1_EDX_PBE;
    for g in [tiger(config()), kvm(config())] {
        let edx = g.leaf(1, 0, 1, 0)[3];
        assert_eq!(edx & hidden, 0, "{edx:#x}");
        // FPU, TSC, MSR, APIC, MTRR, PAT, FXSR, SSE, SSE2 stay.
        let kept = 1 | (1 << 4) | (1 << 5) | L1_EDX_APIC | (1 << 12) | (1 << 16) | (7 << 24);
        assert_eq!(edx & kept, kept, "{edx:#x}");
    }
}

#[test]
fn leaf1_ebx_and_topology_describe_the_guest() {
    let one = tiger(GuestCpuConfig {
        apic_id: 0,
        ..config()
    });
    let [eax, ebx, _, edx] = one.leaf(1, 0, 1, 0);
    assert_eq!(eax, 0x806c1, "signature from the host");
    assert_eq!(
        ebx,
        0x0000_0800 | (1 << 16),
        "CLFLUSH 64 bytes, 1 logical, APIC ID 0"
    );
    assert_eq!(edx & L1_EDX_HTT, 0, "Bochs' HTT is hidden for one vCPU");
    // vCPU 2 of 3 on the KVM host (whose leaf 1 says APIC ID 2, 1 logical).
    let c = GuestCpuConfig {
        apic_id: 2,
        vcpus: 3,
        ..config()
    };
    let g = kvm(c);
    let [_, ebx, _, edx] = g.leaf(1, 0, 1, 0);
    assert_eq!(ebx >> 24, 2);
    assert_eq!(
        (ebx >> 16) & 0xff,
        4,
        "addressable IDs: 3 rounded to a power of two"
    );
    assert_ne!(edx & L1_EDX_HTT, 0);
    for leaf in [0xb, 0x1f] {
        assert_eq!(
            g.leaf(leaf, 0, 1, 0),
            [0, 1, 0x100, 2],
            "SMT level: one thread"
        );
        assert_eq!(
            g.leaf(leaf, 1, 1, 0),
            [2, 3, 0x201, 2],
            "core level: 3 cores, shift 2"
        );
        assert_eq!(g.leaf(leaf, 2, 1, 0), [0, 0, 2, 2], "then invalid");
    }
}

#[test]
fn leaf4_caches_are_shared_as_the_topology_says() {
    let g = tiger(GuestCpuConfig {
        vcpus: 4,
        ..config()
    });
    let l1d = g.leaf(4, 0, 1, 0);
    assert_eq!(l1d[0], 0x0c00_0121, "L1d: private, 4 cores");
    assert_eq!(l1d[1..], [0x02c0003f, 0x3f, 0]);
    assert_eq!(g.leaf(4, 3, 1, 0)[0], 0x0c00_c163, "L3: shared by 4");
    assert_eq!(g.leaf(4, 4, 1, 0), [0; 4], "no fifth cache");
    let one = tiger(config());
    assert_eq!(one.leaf(4, 3, 1, 0)[0], 0x0000_0163);
}

#[test]
fn monitor_thermal_and_pmu_leaves_are_empty() {
    for g in [tiger(config()), kvm(config())] {
        assert_eq!(g.leaf(5, 0, 1, 0), [0; 4]);
        assert_eq!(g.leaf(6, 0, 1, 0), [L6_EAX_ARAT, 0, 0, 0]);
        assert_eq!(g.leaf(0xa, 0, 1, 0), [0; 4]);
        for leaf in [3, 0xf, 0x10, 0x12, 0x14] {
            assert_eq!(g.leaf(leaf, 0, 1, 0), [0; 4], "leaf {leaf:#x}");
        }
    }
}

#[test]
fn leaf7_keeps_usable_features_and_hides_the_rest() {
    let [eax, ebx, ecx, edx] = tiger(config()).leaf(7, 0, 1, 0);
    assert_eq!(eax, 0);
    let kept = L7_EBX_FSGSBASE | L7_EBX_SMEP | L7_EBX_SMAP | L7_EBX_ERMS | L7_EBX_INVPCID;
    assert_eq!(ebx & kept, kept);
    assert_eq!(
        ebx & L7_EBX_AVX512,
        0xf1bf27eb & L7_EBX_AVX512,
        "AVX-512 with its XCR0 bits"
    );
    assert_eq!(ebx & L7_EBX_TSC_ADJUST, L7_EBX_TSC_ADJUST, "emulated");
    assert_eq!(ecx & (L7_ECX_CET_SS | L7_ECX_KEYLOCKER | L7_ECX_OSPKE), 0);
    assert_ne!(ecx & L7_ECX_PKU, 0);
    assert_ne!(ecx & L7_ECX_RDPID, 0);
    assert_eq!(
        edx & (L7_EDX_CET_IBT | L7_EDX_L1D_FLUSH | L7_EDX_CORE_CAPABILITIES),
        0
    );
    let spec = L7_EDX_IBRS_IBPB | L7_EDX_STIBP | L7_EDX_SSBD | L7_EDX_ARCH_CAPABILITIES;
    assert_eq!(edx & spec, spec);
    assert_ne!(edx & L7_EDX_MD_CLEAR, 0);
    // KVM host: TSX, MPX, TSC_ADJUST present there, hidden here.
    let ebx = kvm(config()).leaf(7, 0, 1, 0)[1];
    let hidden = L7_EBX_HLE | L7_EBX_RTM | L7_EBX_MPX | L7_EBX_SGX;
    assert_eq!(ebx & (hidden | L7_EBX_PT | L7_EBX_RDT_M | L7_EBX_RDT_A), 0);
    assert_ne!(ebx & L7_EBX_AVX2, 0);
    assert_eq!(tiger(config()).leaf(7, 1, 1, 0), [0; 4]);
}

#[test]
fn vmcs_controls_gate_invpcid_rdtscp_and_rdpid() {
    let c = GuestCpuConfig {
        rdtscp: false,
        invpcid: false,
        ..config()
    };
    let g = tiger(c);
    assert_eq!(g.leaf(7, 0, 1, 0)[1] & L7_EBX_INVPCID, 0);
    assert_eq!(g.leaf(7, 0, 1, 0)[2] & L7_ECX_RDPID, 0);
    assert_eq!(g.leaf(0x8000_0001, 0, 1, 0)[3] & E1_EDX_RDTSCP, 0);
    assert_ne!(
        tiger(config()).leaf(0x8000_0001, 0, 1, 0)[3] & E1_EDX_RDTSCP,
        0
    );
}

#[test]
fn osxsave_follows_cr4() {
    for g in [tiger(config()), kvm(config())] {
        for cr4 in [
            0,
            CR4_OSXSAVE,
            CR4_OSXSAVE | CR4_PKE,
            0x20,
            0x20 | CR4_OSXSAVE,
        ] {
            let ecx = g.leaf(1, 0, 1, cr4)[2];
            assert_eq!(
                ecx & L1_ECX_OSXSAVE != 0,
                cr4 & CR4_OSXSAVE != 0,
                "{cr4:#x}"
            );
        }
    }
}

#[test]
fn ospke_follows_cr4_where_pku_is_offered() {
    let g = tiger(config());
    for cr4 in [0, CR4_PKE, CR4_OSXSAVE, CR4_PKE | CR4_OSXSAVE] {
        let ecx = g.leaf(7, 0, 1, cr4)[2];
        assert_eq!(ecx & L7_ECX_OSPKE != 0, cr4 & CR4_PKE != 0, "{cr4:#x}");
    }
    // Without PKRU switching there is no PKU, and so never OSPKE.
    let g = tiger(GuestCpuConfig {
        xcr0_supported: X87_SSE_AVX,
        ..config()
    });
    assert_eq!(g.leaf(7, 0, 1, CR4_PKE)[2] & (L7_ECX_PKU | L7_ECX_OSPKE), 0);
    // The KVM host has no PKU.
    assert_eq!(kvm(config()).leaf(7, 0, 1, CR4_PKE)[2] & L7_ECX_OSPKE, 0);
}

#[test]
fn xsave_sizes_are_exact() {
    let g = tiger(config());
    assert_eq!(g.xcr0_supported(), ALL);
    let size = |xcr0: u64| g.leaf(0xd, 0, xcr0, CR4_OSXSAVE)[1];
    assert_eq!(size(XCR0_X87), 576);
    assert_eq!(size(X87_SSE), 576);
    assert_eq!(size(X87_SSE_AVX), 832);
    assert_eq!(size(X87_SSE_AVX | XCR0_AVX512), 2688);
    assert_eq!(size(ALL), 2696);
    let [eax, _, ecx, edx] = g.leaf(0xd, 0, XCR0_X87, 0);
    assert_eq!(u64::from(eax) | (u64::from(edx) << 32), ALL);
    assert_eq!(ecx, 2696, "computed, not Bochs' 2752");
    // KVM host: MPX (bits 3, 4) is never offered; AVX is.
    let g = kvm(config());
    assert_eq!(g.xcr0_supported(), X87_SSE_AVX);
    assert_eq!(g.leaf(0xd, 0, X87_SSE_AVX, 0), [0x7, 832, 832, 0]);
    assert_eq!(g.leaf(0xd, 0, X87_SSE, 0)[1], 576);
    assert_eq!(
        g.leaf(0xd, 3, X87_SSE_AVX, 0),
        [0; 4],
        "MPX bound registers hidden"
    );
}

#[test]
fn xsave_follows_what_the_hypervisor_switches() {
    let g = tiger(GuestCpuConfig {
        xcr0_supported: X87_SSE,
        ..config()
    });
    assert_eq!(g.leaf(0xd, 0, X87_SSE, 0), [0x3, 576, 576, 0]);
    assert_eq!(g.leaf(0xd, 2, X87_SSE, 0), [0; 4], "AVX not enumerated");
    assert_eq!(g.leaf(1, 0, 1, 0)[2] & L1_ECX_AVX_FAMILY, 0);
    assert_eq!(g.leaf(7, 0, 1, 0)[1] & (L7_EBX_AVX2 | L7_EBX_AVX512), 0);
    // An inconsistent request (AVX-512 without AVX) is trimmed to a consistent set.
    let g = tiger(GuestCpuConfig {
        xcr0_supported: X87_SSE | XCR0_AVX512,
        ..config()
    });
    assert_eq!(g.xcr0_supported(), X87_SSE);
    // No XSAVE at all: the leaf, the feature and AVX are gone.
    let g = tiger(GuestCpuConfig {
        xcr0_supported: 0,
        ..config()
    });
    assert_eq!(g.leaf(0xd, 0, 1, 0), [0; 4]);
    assert_eq!(
        g.leaf(1, 0, 1, CR4_OSXSAVE)[2] & (L1_ECX_XSAVE | L1_ECX_OSXSAVE),
        0
    );
}

#[test]
fn xsave_subleaves() {
    let g = tiger(config());
    let [eax, ebx, ecx, edx] = g.leaf(0xd, 1, X87_SSE_AVX, 0);
    assert_eq!(eax & LD1_EAX_XSAVES, 0, "no XSAVES");
    assert_eq!(eax, 0b111, "XSAVEOPT, XSAVEC, XGETBV(1)");
    assert_eq!(ebx, 832, "compacted size of x87|SSE|AVX");
    assert_eq!([ecx, edx], [0, 0], "no IA32_XSS bits");
    assert_eq!(g.leaf(0xd, 2, 1, 0), [256, 576, 0, 0]);
    assert_eq!(g.leaf(0xd, 9, 1, 0), [8, 2688, 0, 0]);
    for i in [3, 4, 8, 11, 12, 17, 18, 63, 64] {
        assert_eq!(g.leaf(0xd, i, ALL, 0), [0; 4], "subleaf {i}");
    }
    assert_eq!(kvm(config()).leaf(0xd, 1, X87_SSE_AVX, 0), [1, 0, 0, 0]);
}

#[test]
fn tsc_leaves_state_the_calibrated_rate() {
    for g in [tiger(config()), kvm(config())] {
        let [den, num, crystal, _] = g.leaf(0x15, 0, 1, 0);
        assert_eq!(
            u64::from(crystal) * u64::from(num) / u64::from(den),
            50_000_000
        );
        assert_eq!(
            crystal,
            crate::APIC_BUS_KHZ * 1000,
            "the APIC timer's crystal"
        );
        assert_eq!(g.leaf(0x16, 0, 1, 0), [50, 0, 0, 0]);
        assert_eq!(g.leaf(HV_TIMING_LEAF, 0, 1, 0), [50_000, 1000, 0, 0]);
    }
}

#[test]
fn hypervisor_leaves() {
    let g = kvm(config());
    let [max, b, c, d] = g.leaf(0x4000_0000, 0, 1, 0);
    assert_eq!(max, HV_TIMING_LEAF);
    assert_eq!(signature_bytes(b, c, d), CPUID_HV_SIGNATURE);
    assert_eq!(g.leaf(0x4000_0001, 0, 1, 0), [ABI_VERSION, 0, 0, 0]);
    for leaf in [0x4000_0002, 0x4000_000f, 0x4000_0011, 0x4fff_ffff] {
        assert_eq!(g.leaf(leaf, 0, 1, 0), [0; 4]);
    }
}

#[test]
fn extended_leaves() {
    let g = tiger(config());
    assert_eq!(g.leaf(0x8000_0000, 0, 1, 0)[0], 0x8000_0008);
    let brand: Vec<u8> = (0x8000_0002..=0x8000_0004)
        .flat_map(|l| g.leaf(l, 0, 1, 0))
        .flat_map(u32::to_le_bytes)
        .collect();
    assert!(brand.starts_with(b"11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz"));
    assert_eq!(g.leaf(0x8000_0001, 0, 1, 0), [0, 0, 0x121, 0x2c10_0000]);
    assert_eq!(
        g.leaf(0x8000_0007, 0, 1, 0),
        [0, 0, 0, E7_EDX_INVARIANT_TSC]
    );
    assert_eq!(g.leaf(0x8000_0008, 0, 1, 0), [0x3028, 0, 0, 0]);
    // KVM host: SVM and SKINIT hidden; invariant TSC stated although the host hides it.
    let g = kvm(config());
    let ecx = g.leaf(0x8000_0001, 0, 1, 0)[2];
    assert_eq!(ecx & (E1_ECX_SVM | E1_ECX_SKINIT), 0);
    assert_eq!(ecx, 0x121);
    assert_eq!(g.leaf(0x8000_0007, 0, 1, 0)[3], E7_EDX_INVARIANT_TSC);
}

#[test]
fn leaves_beyond_the_maxima_answer_the_highest_basic_leaf() {
    let g = kvm(GuestCpuConfig {
        apic_id: 5,
        ..config()
    });
    for sub in [0, 1, 2] {
        let highest = g.leaf(MAX_BASIC_LEAF, sub, 1, 0);
        for leaf in [0x20, 0x3fff_ffff, 0x8000_0009, 0xffff_ffff] {
            assert_eq!(g.leaf(leaf, sub, 1, 0), highest, "{leaf:#x}.{sub}");
        }
    }
    // Leaves the KVM host lacks (beyond its 0xD) are the policy's own or empty, not the host's
    // highest leaf.
    assert_eq!(g.leaf(0x18, 0, 1, 0), [0; 4]);
    assert_eq!(KVM_SKYLAKE.cpuid(0x18, 0), KVM_SKYLAKE.cpuid(0xd, 0));
}

#[test]
fn a_host_without_extended_leaves() {
    static BASIC_ONLY: TableHost = TableHost {
        leaves: &[(0, None, [1, 0, 0, 0]), (1, None, [0x806c1, 0, 0, 0x10])],
    };
    let g = GuestCpuid::new(&BASIC_ONLY, config());
    assert_eq!(g.leaf(0x8000_0000, 0, 1, 0), [0; 4]);
    assert_eq!(
        g.leaf(0x8000_0001, 0, 1, 0),
        g.leaf(MAX_BASIC_LEAF, 0, 1, 0)
    );
    assert_eq!(g.xcr0_supported(), 0);
}

#[test]
fn compacted_size_aligns_where_the_component_says() {
    // AVX (256 bytes) then PKRU (8), then a 64-byte-aligned component 10 of 100 bytes.
    let layout = |i: u32| match i {
        2 => Component::from_leaf([256, 576, 0, 0]),
        9 => Component::from_leaf([8, 2688, 0, 0]),
        10 => Component::from_leaf([100, 2752, LDN_ECX_ALIGNED, 0]),
        _ => Component::from_leaf([0; 4]),
    };
    assert_eq!(compacted_size(X87_SSE, layout), 576);
    assert_eq!(compacted_size(X87_SSE_AVX | XCR0_PKRU, layout), 840);
    // 840 rounds up to 896 before component 10.
    assert_eq!(
        compacted_size(X87_SSE_AVX | XCR0_PKRU | (1 << 10), layout),
        996
    );
    assert_eq!(
        standard_size(X87_SSE_AVX | XCR0_PKRU | (1 << 10), layout),
        2852
    );
}
