//! CPUID feature bits the policy keeps, sets or hides (SDM Vol. 2A, CPUID, Tables 3-8 "Information
//! Returned by CPUID Instruction", 3-10 "Feature Information Returned in the ECX Register" and 3-11
//! "More on Feature Information Returned in the EDX Register"), and the CR4 bits it follows
//! (SDM Vol. 3A §2.5).
//!
//! Every `*_KEEP` mask is an allow-list: a host bit outside it never reaches a guest, so a CPU
//! feature unknown to this policy stays hidden.

/// CR4.OSXSAVE (bit 18).
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// CR4.PKE (bit 22).
pub const CR4_PKE: u64 = 1 << 22;

// Leaf 1 ECX.
pub const L1_ECX_SSE3: u32 = 1 << 0;
pub const L1_ECX_PCLMULQDQ: u32 = 1 << 1;
pub const L1_ECX_MONITOR: u32 = 1 << 3;
pub const L1_ECX_VMX: u32 = 1 << 5;
pub const L1_ECX_SSSE3: u32 = 1 << 9;
pub const L1_ECX_FMA: u32 = 1 << 12;
pub const L1_ECX_CMPXCHG16B: u32 = 1 << 13;
pub const L1_ECX_PDCM: u32 = 1 << 15;
pub const L1_ECX_PCID: u32 = 1 << 17;
pub const L1_ECX_SSE41: u32 = 1 << 19;
pub const L1_ECX_SSE42: u32 = 1 << 20;
pub const L1_ECX_X2APIC: u32 = 1 << 21;
pub const L1_ECX_MOVBE: u32 = 1 << 22;
pub const L1_ECX_POPCNT: u32 = 1 << 23;
pub const L1_ECX_TSC_DEADLINE: u32 = 1 << 24;
pub const L1_ECX_AES: u32 = 1 << 25;
pub const L1_ECX_XSAVE: u32 = 1 << 26;
pub const L1_ECX_OSXSAVE: u32 = 1 << 27;
pub const L1_ECX_AVX: u32 = 1 << 28;
pub const L1_ECX_F16C: u32 = 1 << 29;
pub const L1_ECX_RDRAND: u32 = 1 << 30;
pub const L1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Instructions that need AVX state (hidden without XCR0.AVX).
pub const L1_ECX_AVX_FAMILY: u32 = L1_ECX_AVX | L1_ECX_FMA | L1_ECX_F16C;
/// Leaf 1 ECX bits passed from the host: instruction-set extensions that run in VMX non-root
/// operation without exits and need no state the hypervisor does not switch. Hidden by omission:
/// DTES64 (2), MONITOR (3), DS-CPL (4), VMX (5), SMX (6), EST (7), TM2 (8), CNXT-ID (10), SDBG
/// (11), xTPR (14), PDCM (15), DCA (18); x2APIC (21), TSC-deadline (24), OSXSAVE (27) and
/// HYPERVISOR (31) are the policy's own.
pub const L1_ECX_KEEP: u32 = L1_ECX_SSE3
    | L1_ECX_PCLMULQDQ
    | L1_ECX_SSSE3
    | L1_ECX_FMA
    | L1_ECX_CMPXCHG16B
    | L1_ECX_PCID
    | L1_ECX_SSE41
    | L1_ECX_SSE42
    | L1_ECX_MOVBE
    | L1_ECX_POPCNT
    | L1_ECX_AES
    | L1_ECX_XSAVE
    | L1_ECX_AVX
    | L1_ECX_F16C
    | L1_ECX_RDRAND;

// Leaf 1 EDX.
pub const L1_EDX_MCE: u32 = 1 << 7;
pub const L1_EDX_APIC: u32 = 1 << 9;
pub const L1_EDX_MCA: u32 = 1 << 14;
pub const L1_EDX_DS: u32 = 1 << 21;
pub const L1_EDX_ACPI: u32 = 1 << 22;
pub const L1_EDX_HTT: u32 = 1 << 28;
pub const L1_EDX_TM: u32 = 1 << 29;
pub const L1_EDX_PBE: u32 = 1 << 31;
/// Leaf 1 EDX bits passed from the host: FPU, VME, DE, PSE, TSC, MSR, PAE, CX8, SEP, MTRR (the
/// MSR policy emulates MTRRcap and MTRRdefType), PGE, CMOV, PAT, PSE-36, CLFSH, MMX, FXSR, SSE,
/// SSE2, SS. Hidden: MCE (7) and MCA (14) (no machine-check MSRs are emulated), PSN (18), DS
/// (21), ACPI thermal (22), TM (29), PBE (31); APIC (9) and HTT (28) are the policy's own.
pub const L1_EDX_KEEP: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26)
    | (1 << 27);

/// Leaf 6 EAX bit 2: the APIC timer always runs (ARAT).
pub const L6_EAX_ARAT: u32 = 1 << 2;

// Leaf 7 subleaf 0 EBX.
pub const L7_EBX_FSGSBASE: u32 = 1 << 0;
pub const L7_EBX_TSC_ADJUST: u32 = 1 << 1;
pub const L7_EBX_SGX: u32 = 1 << 2;
pub const L7_EBX_HLE: u32 = 1 << 4;
pub const L7_EBX_AVX2: u32 = 1 << 5;
pub const L7_EBX_SMEP: u32 = 1 << 7;
pub const L7_EBX_ERMS: u32 = 1 << 9;
pub const L7_EBX_INVPCID: u32 = 1 << 10;
pub const L7_EBX_RTM: u32 = 1 << 11;
pub const L7_EBX_RDT_M: u32 = 1 << 12;
pub const L7_EBX_MPX: u32 = 1 << 14;
pub const L7_EBX_RDT_A: u32 = 1 << 15;
pub const L7_EBX_SMAP: u32 = 1 << 20;
pub const L7_EBX_PT: u32 = 1 << 25;
/// AVX512F, DQ, IFMA, PF, ER, CD, BW, VL.
pub const L7_EBX_AVX512: u32 =
    (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31);
/// Leaf 7 EBX bits passed from the host: FSGSBASE (0), BMI1 (3), AVX2 (5), FDP_EXCPTN_ONLY (6),
/// SMEP (7), BMI2 (8), ERMS (9), INVPCID (10, only with the VMCS control), FCS/FDS deprecation
/// (13), RDSEED (18), ADX (19), SMAP (20), CLFLUSHOPT (23), CLWB (24), SHA (29) and the AVX-512
/// group. Set whatever the host says: TSC_ADJUST (1, the MSR is emulated on the TSC offset; with an
/// invariant TSC it lets Linux trust the TSC without a clocksource watchdog). Hidden: SGX (2), HLE
/// (4) and RTM (11) (TSX),
/// RDT monitoring (12) and allocation (15), MPX (14), processor trace (25).
pub const L7_EBX_KEEP: u32 = L7_EBX_FSGSBASE
    | (1 << 3)
    | L7_EBX_AVX2
    | (1 << 6)
    | L7_EBX_SMEP
    | (1 << 8)
    | L7_EBX_ERMS
    | L7_EBX_INVPCID
    | (1 << 13)
    | (1 << 18)
    | (1 << 19)
    | L7_EBX_SMAP
    | (1 << 23)
    | (1 << 24)
    | (1 << 29)
    | L7_EBX_AVX512;

// Leaf 7 subleaf 0 ECX.
pub const L7_ECX_UMIP: u32 = 1 << 2;
pub const L7_ECX_PKU: u32 = 1 << 3;
pub const L7_ECX_OSPKE: u32 = 1 << 4;
pub const L7_ECX_WAITPKG: u32 = 1 << 5;
pub const L7_ECX_CET_SS: u32 = 1 << 7;
pub const L7_ECX_VAES: u32 = 1 << 9;
pub const L7_ECX_VPCLMULQDQ: u32 = 1 << 10;
pub const L7_ECX_LA57: u32 = 1 << 16;
pub const L7_ECX_RDPID: u32 = 1 << 22;
pub const L7_ECX_KEYLOCKER: u32 = 1 << 23;
/// AVX512_VBMI (1), VBMI2 (6), VNNI (11), BITALG (12), VPOPCNTDQ (14).
pub const L7_ECX_AVX512: u32 = (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14);
/// Leaf 7 ECX bits passed from the host: UMIP (2, a guest CR4 bit), PKU (3, with XCR0.PKRU),
/// GFNI (8), VAES (9), VPCLMULQDQ (10), RDPID (22, only with "enable RDTSCP"), CLDEMOTE (25),
/// MOVDIRI (27), MOVDIR64B (28) and the AVX-512 group. Hidden: PREFETCHWT1 (0), OSPKE (4, the
/// policy's own), WAITPKG (5, UMWAIT would need its MSR and VMCS control), CET shadow stacks (7,
/// supervisor XSAVE state), TME (13), LA57 (16, five-level paging is not offered), Key Locker
/// (23), ENQCMD (29), SGX launch control (30), PKS (31).
pub const L7_ECX_KEEP: u32 = L7_ECX_UMIP
    | L7_ECX_PKU
    | (1 << 8)
    | L7_ECX_VAES
    | L7_ECX_VPCLMULQDQ
    | L7_ECX_RDPID
    | (1 << 25)
    | (1 << 27)
    | (1 << 28)
    | L7_ECX_AVX512;

// Leaf 7 subleaf 0 EDX.
pub const L7_EDX_MD_CLEAR: u32 = 1 << 10;
pub const L7_EDX_HYBRID: u32 = 1 << 15;
pub const L7_EDX_CET_IBT: u32 = 1 << 20;
/// IBRS and IBPB: IA32_SPEC_CTRL bit 0 and IA32_PRED_CMD.
pub const L7_EDX_IBRS_IBPB: u32 = 1 << 26;
/// STIBP: IA32_SPEC_CTRL bit 1.
pub const L7_EDX_STIBP: u32 = 1 << 27;
pub const L7_EDX_L1D_FLUSH: u32 = 1 << 28;
/// IA32_ARCH_CAPABILITIES exists.
pub const L7_EDX_ARCH_CAPABILITIES: u32 = 1 << 29;
pub const L7_EDX_CORE_CAPABILITIES: u32 = 1 << 30;
/// SSBD: IA32_SPEC_CTRL bit 2.
pub const L7_EDX_SSBD: u32 = 1 << 31;
/// AVX512_4VNNIW (2), 4FMAPS (3), VP2INTERSECT (8), FP16 (23).
pub const L7_EDX_AVX512: u32 = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23);
/// Leaf 7 EDX bits passed from the host: FSRM (4), MD_CLEAR (10), SERIALIZE (14), the
/// speculation controls the MSR policy offers (26, 27, 29, 31) and the AVX-512 group. Hidden:
/// UINTR (5), hybrid (15), TSXLDTRK (16), PCONFIG (18), CET IBT (20), AMX (22, 24, 25),
/// L1D_FLUSH (28, IA32_FLUSH_CMD is not emulated), CORE_CAPABILITIES (30, nor is that MSR).
pub const L7_EDX_KEEP: u32 = (1 << 4)
    | L7_EDX_MD_CLEAR
    | (1 << 14)
    | L7_EDX_IBRS_IBPB
    | L7_EDX_STIBP
    | L7_EDX_ARCH_CAPABILITIES
    | L7_EDX_SSBD
    | L7_EDX_AVX512;

/// Leaf 0xB/0x1F ECX 15:8 level types.
pub const TOPO_LEVEL_SMT: u32 = 1;
pub const TOPO_LEVEL_CORE: u32 = 2;

/// Leaf 0xD subleaf 1 EAX: XSAVEOPT (0), XSAVEC (1), XGETBV with ECX = 1 (2). Hidden: XSAVES
/// (3, needs IA32_XSS), XFD (4).
pub const LD1_EAX_KEEP: u32 = 0b111;
pub const LD1_EAX_XSAVEC: u32 = 1 << 1;
pub const LD1_EAX_XSAVES: u32 = 1 << 3;
/// Leaf 0xD subleaf i >= 2 ECX bit 1: 64-byte aligned in the compacted format.
pub const LDN_ECX_ALIGNED: u32 = 1 << 1;

/// Leaf 0x80000001 ECX kept: LAHF/SAHF in 64-bit mode (0), LZCNT (5), PREFETCHW (8). Hidden:
/// SVM (2), extended APIC space (3), SKINIT (12), WDT (13) and every other (AMD) bit.
pub const E1_ECX_KEEP: u32 = (1 << 0) | (1 << 5) | (1 << 8);
pub const E1_ECX_SVM: u32 = 1 << 2;
pub const E1_ECX_SKINIT: u32 = 1 << 12;
/// Leaf 0x80000001 EDX: RDTSCP (27).
pub const E1_EDX_RDTSCP: u32 = 1 << 27;
/// Leaf 0x80000001 EDX kept: SYSCALL (11), NX (20), 1-GByte pages (26), RDTSCP (27, only with
/// the VMCS control), long mode (29).
pub const E1_EDX_KEEP: u32 = (1 << 11) | (1 << 20) | (1 << 26) | E1_EDX_RDTSCP | (1 << 29);
/// Leaf 0x80000007 EDX bit 8: invariant TSC.
pub const E7_EDX_INVARIANT_TSC: u32 = 1 << 8;
