//! The guest's CPUID (SDM Vol. 2A, "CPUID—CPU Identification"): the host's leaves filtered to
//! what Conduit virtualizes, with the guest's own topology, TSC rate and XSAVE layout.

use conduit_abi::{ABI_VERSION, CPUID_HV_LEAF, CPUID_HV_VERSION_LEAF, signature_registers};
use conduit_clock::Rate;

use crate::bits::*;
use crate::msr::{HostMsrs, MsrPolicy};
use crate::xsave::{self, Component, XCR0_AVX, XCR0_AVX512, XCR0_PKRU, XCR0_X87};

/// The host CPU's CPUID instruction: the kernel's implementation executes it; tests replay
/// recorded leaves.
pub trait HostCpuid {
    /// EAX, EBX, ECX, EDX of CPUID with EAX = `leaf`, ECX = `subleaf`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
}

impl<H: HostCpuid> HostCpuid for &H {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        (**self).cpuid(leaf, subleaf)
    }
}

/// What the hypervisor gives one vCPU, and what its VMCS lets the guest execute without exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestCpuConfig {
    /// This vCPU's (x2)APIC ID, also its initial APIC ID (leaf 1 EBX 31:24, leaf 0xB/0x1F EDX).
    pub apic_id: u32,
    /// vCPUs of the guest (at least 1): one package, one core each, one thread per core.
    pub vcpus: u32,
    /// The TSC rate the guest is told (leaves 0x15, 0x16 and 0x40000010).
    pub tsc: Rate,
    /// The XCR0 components the hypervisor switches for guests; intersected with the host's
    /// leaf 0xD and [`xsave::XCR0_GUEST_MAX`] (the result is [`GuestCpuid::xcr0_supported`]).
    pub xcr0_supported: u64,
    /// The vLAPIC offers x2APIC mode (leaf 1 ECX bit 21).
    pub x2apic: bool,
    /// The vLAPIC timer offers TSC-deadline mode (leaf 1 ECX bit 24).
    pub tsc_deadline: bool,
    /// The VMCS sets "enable RDTSCP" (secondary processor-based control bit 3): without it RDTSCP
    /// and RDPID raise #UD in the guest, so both are hidden.
    pub rdtscp: bool,
    /// The VMCS sets "enable INVPCID" (secondary control bit 12): without it INVPCID raises #UD.
    pub invpcid: bool,
}

/// The highest basic leaf a guest sees: the policy answers every leaf up to the V2 extended
/// topology leaf itself.
pub const MAX_BASIC_LEAF: u32 = 0x1f;
/// The highest extended leaf a guest sees.
pub const MAX_EXTENDED_LEAF: u32 = 0x8000_0008;
/// The hypervisor timing leaf (the convention VMware introduced and KVM/QEMU offer): EAX the TSC
/// rate in kHz, EBX the local APIC timer's input clock in kHz.
pub const HV_TIMING_LEAF: u32 = 0x4000_0010;
/// The highest hypervisor leaf (EAX of [`CPUID_HV_LEAF`]); above the ABI's version leaf.
pub const MAX_HV_LEAF: u32 = HV_TIMING_LEAF;
/// The rate, in kHz, at which the virtual local APIC timer counts before its divider: the
/// 1 MHz crystal that [`conduit_clock::guest_leaf15`] states (Linux derives its APIC timer period
/// from that crystal) and EBX of [`HV_TIMING_LEAF`]. The vLAPIC must count at this rate.
pub const APIC_BUS_KHZ: u32 = conduit_clock::GUEST_CRYSTAL_HZ / 1000;

/// The guest's CPUID, for one vCPU: ask it with [`GuestCpuid::leaf`] on every CPUID exit.
#[derive(Debug, Clone)]
pub struct GuestCpuid<H> {
    host: H,
    config: GuestCpuConfig,
    /// Host CPUID.0:EAX.
    host_max_basic: u32,
    /// Host CPUID.0x80000000:EAX (0 if the extended range is absent).
    host_max_extended: u32,
    /// XCR0 components the guest may enable (0 without XSAVE).
    xcr0_supported: u64,
}

impl<H: HostCpuid> GuestCpuid<H> {
    /// The policy for one vCPU on `host`.
    pub fn new(host: H, config: GuestCpuConfig) -> Self {
        let host_max_basic = host.cpuid(0, 0)[0];
        let ext = host.cpuid(0x8000_0000, 0)[0];
        let host_max_extended = if ext & 0x8000_0000 != 0 { ext } else { 0 };
        let has_xsave = host.cpuid(1, 0)[2] & L1_ECX_XSAVE != 0 && host_max_basic >= 0xd;
        let xcr0_supported = if has_xsave {
            let [eax, _, _, edx] = host.cpuid(0xd, 0);
            let host_mask = u64::from(eax) | (u64::from(edx) << 32);
            consistent_xcr0(host_mask & config.xcr0_supported & xsave::XCR0_GUEST_MAX)
        } else {
            0
        };
        Self {
            host,
            config,
            host_max_basic,
            host_max_extended,
            xcr0_supported,
        }
    }

    /// The XCR0 components the guest may enable: what leaf 0xD enumerates (the kernel's XSETBV
    /// check, `conduit_cpustate::xcr0::check_xsetbv`, takes the same mask). 0 when XSAVE is
    /// hidden.
    pub fn xcr0_supported(&self) -> u64 {
        self.xcr0_supported
    }

    /// The MSR policy that agrees with this CPUID: IA32_SPEC_CTRL, IA32_PRED_CMD and
    /// IA32_ARCH_CAPABILITIES exist as leaf 7 EDX says, IA32_TSC_AUX if RDTSCP or RDPID is seen.
    pub fn msr_policy(&self, host: HostMsrs) -> MsrPolicy {
        let [_, _, ecx7, edx7] = self.leaf(7, 0, XCR0_X87, 0);
        let edx_e1 = self.leaf(0x8000_0001, 0, XCR0_X87, 0)[3];
        // Leaf 0x80000001 beyond the extended maximum answers another leaf: only trust it when
        // the guest's extended range reaches it.
        let ext_max = self.leaf(0x8000_0000, 0, XCR0_X87, 0)[0];
        let rdtscp = ext_max >= 0x8000_0001 && edx_e1 & E1_EDX_RDTSCP != 0;
        MsrPolicy::new(edx7, rdtscp || ecx7 & L7_ECX_RDPID != 0, host)
    }

    /// EAX, EBX, ECX, EDX of CPUID(`leaf`, `subleaf`) in the guest, whose XCR0 is `guest_xcr0`
    /// and CR4 `guest_cr4` (as the guest wrote it, not as the VMCS forces it).
    pub fn leaf(&self, leaf: u32, subleaf: u32, guest_xcr0: u64, guest_cr4: u64) -> [u32; 4] {
        match leaf {
            0..=MAX_BASIC_LEAF => self.basic(leaf, subleaf, guest_xcr0, guest_cr4),
            CPUID_HV_LEAF => {
                let [b, c, d] = signature_registers();
                [MAX_HV_LEAF, b, c, d]
            }
            CPUID_HV_VERSION_LEAF => [ABI_VERSION, 0, 0, 0],
            HV_TIMING_LEAF => [
                u32::try_from(self.config.tsc.khz()).unwrap_or(u32::MAX),
                APIC_BUS_KHZ,
                0,
                0,
            ],
            // Unused hypervisor leaves read as zero, as on other hypervisors.
            0x4000_0002..=0x4fff_ffff => [0; 4],
            0x8000_0000..=MAX_EXTENDED_LEAF if leaf <= self.host_max_extended => {
                self.extended(leaf, subleaf)
            }
            0x8000_0000 => [0; 4],
            // Any other leaf is beyond a maximum: the SDM's rule is the data of the highest
            // basic leaf.
            _ => self.basic(MAX_BASIC_LEAF, subleaf, guest_xcr0, guest_cr4),
        }
    }

    /// The host's leaf, or zeros if the host does not have it (its answer would be another
    /// leaf's data).
    fn host_basic(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        if leaf <= self.host_max_basic {
            self.host.cpuid(leaf, subleaf)
        } else {
            [0; 4]
        }
    }

    fn basic(&self, leaf: u32, subleaf: u32, xcr0: u64, cr4: u64) -> [u32; 4] {
        match leaf {
            0 => {
                let [_, b, c, d] = self.host.cpuid(0, 0);
                [MAX_BASIC_LEAF, b, c, d]
            }
            1 => self.leaf1(cr4),
            // Cache and TLB descriptors, deterministic address translation: descriptive only.
            2 | 0x18 => self.host_basic(leaf, subleaf),
            4 => self.leaf4(subleaf),
            // ARAT: the virtual APIC timer runs in every state the guest can enter.
            6 => [L6_EAX_ARAT, 0, 0, 0],
            7 => self.leaf7(subleaf, cr4),
            0xb | 0x1f => self.topology(subleaf),
            0xd => self.leaf_d(subleaf, xcr0),
            0x15 => {
                let l = conduit_clock::guest_leaf15(self.config.tsc);
                [l.denominator, l.numerator, l.crystal_hz, 0]
            }
            0x16 => {
                let [a, b, c] = conduit_clock::guest_leaf16(self.config.tsc);
                [a, b, c, 0]
            }
            // 3 (serial number), 5 (MONITOR/MWAIT), 8-9, 0xA (performance monitoring), 0xC,
            // 0xE, 0xF-0x10 (RDT), 0x11, 0x12 (SGX), 0x13, 0x14 (processor trace), 0x17 (SoC
            // vendor), 0x19 (Key Locker), 0x1A (hybrid), 0x1B (PCONFIG), 0x1C (LBR), 0x1D-0x1E
            // (AMX): nothing of these is virtualized.
            _ => [0; 4],
        }
    }

    fn leaf1(&self, cr4: u64) -> [u32; 4] {
        let [eax, ebx, ecx, edx] = self.host.cpuid(1, 0);
        let c = &self.config;
        let mut ecx = ecx & L1_ECX_KEEP | L1_ECX_HYPERVISOR;
        if self.xcr0_supported == 0 {
            ecx &= !(L1_ECX_XSAVE | L1_ECX_AVX_FAMILY);
        } else {
            ecx |= L1_ECX_XSAVE;
            if cr4 & CR4_OSXSAVE != 0 {
                ecx |= L1_ECX_OSXSAVE;
            }
        }
        if self.xcr0_supported & XCR0_AVX == 0 {
            ecx &= !L1_ECX_AVX_FAMILY;
        }
        if c.x2apic {
            ecx |= L1_ECX_X2APIC;
        }
        if c.tsc_deadline {
            ecx |= L1_ECX_TSC_DEADLINE;
        }
        let mut edx = edx & L1_EDX_KEEP | L1_EDX_APIC;
        let logical = if c.vcpus > 1 {
            edx |= L1_EDX_HTT;
            c.vcpus.next_power_of_two().min(0x80)
        } else {
            1
        };
        // Brand index (7:0) and CLFLUSH line size (15:8) from the host.
        let ebx = (ebx & 0xffff) | (logical << 16) | ((c.apic_id & 0xff) << 24);
        [eax, ebx, ecx, edx]
    }

    /// Deterministic cache parameters: the host's caches, shared as this guest's topology says
    /// (EAX 25:14 logical processors sharing the cache - 1, 31:26 cores per package - 1).
    fn leaf4(&self, subleaf: u32) -> [u32; 4] {
        let [eax, ebx, ecx, edx] = self.host_basic(4, subleaf);
        if eax & 0x1f == 0 {
            return [0; 4];
        }
        let span = self.config.vcpus.max(1).next_power_of_two() - 1;
        let level = (eax >> 5) & 0x7;
        let sharing = if level >= 3 { span } else { 0 };
        let eax = (eax & 0x3fff) | (sharing.min(0xfff) << 14) | (span.min(0x3f) << 26);
        [eax, ebx, ecx, edx]
    }

    fn leaf7(&self, subleaf: u32, cr4: u64) -> [u32; 4] {
        if subleaf != 0 {
            // Subleaf 0 EAX (the highest subleaf) is 0: nothing beyond it is enumerated.
            return [0; 4];
        }
        let [_, ebx, ecx, edx] = self.host_basic(7, 0);
        let c = &self.config;
        let mut ebx = (ebx & L7_EBX_KEEP) | L7_EBX_TSC_ADJUST;
        let mut ecx = ecx & L7_ECX_KEEP;
        let mut edx = edx & L7_EDX_KEEP;
        if !c.invpcid {
            ebx &= !L7_EBX_INVPCID;
        }
        if !c.rdtscp {
            ecx &= !L7_ECX_RDPID;
        }
        if self.xcr0_supported & XCR0_AVX == 0 {
            ebx &= !L7_EBX_AVX2;
            ecx &= !(L7_ECX_VAES | L7_ECX_VPCLMULQDQ);
        }
        if self.xcr0_supported & XCR0_AVX512 == 0 {
            ebx &= !L7_EBX_AVX512;
            ecx &= !L7_ECX_AVX512;
            edx &= !L7_EDX_AVX512;
        }
        if self.xcr0_supported & XCR0_PKRU == 0 {
            ecx &= !L7_ECX_PKU;
        } else if ecx & L7_ECX_PKU != 0 && cr4 & CR4_PKE != 0 {
            ecx |= L7_ECX_OSPKE;
        }
        [0, ebx, ecx, edx]
    }

    /// Extended topology (leaf 0xB, and the same in V2 leaf 0x1F): one thread per core (SMT
    /// level, subleaf 0), `vcpus` cores in the package (core level, subleaf 1), then the
    /// invalid level.
    fn topology(&self, subleaf: u32) -> [u32; 4] {
        let vcpus = self.config.vcpus.max(1);
        let x2apic_id = self.config.apic_id;
        match subleaf {
            0 => [0, 1, TOPO_LEVEL_SMT << 8, x2apic_id],
            1 => {
                let shift = vcpus.next_power_of_two().trailing_zeros();
                [shift, vcpus, 1 | (TOPO_LEVEL_CORE << 8), x2apic_id]
            }
            n => [0, 0, n & 0xff, x2apic_id],
        }
    }

    fn component(&self, i: u32) -> Component {
        Component::from_leaf(self.host.cpuid(0xd, i))
    }

    fn leaf_d(&self, subleaf: u32, xcr0: u64) -> [u32; 4] {
        let supported = self.xcr0_supported;
        if supported == 0 {
            return [0; 4];
        }
        match subleaf {
            0 => {
                // EBX: for the XCR0 the guest has now; ECX: for everything it may enable.
                let current = xsave::standard_size(xcr0 & supported, |i| self.component(i));
                let all = xsave::standard_size(supported, |i| self.component(i));
                [supported as u32, current, all, (supported >> 32) as u32]
            }
            1 => {
                let eax = self.host.cpuid(0xd, 1)[0] & LD1_EAX_KEEP;
                // No XSAVES, so IA32_XSS is 0: EBX is the compacted size of XCR0 alone.
                let ebx = if eax & LD1_EAX_XSAVEC != 0 {
                    xsave::compacted_size(xcr0 & supported, |i| self.component(i))
                } else {
                    0
                };
                [eax, ebx, 0, 0]
            }
            i @ 2..=63 if supported & (1 << i) != 0 => {
                let [eax, ebx, ecx, _] = self.host.cpuid(0xd, i);
                // ECX bit 0 (supervisor state) cannot be set for an XCR0 component; bit 2 (XFD)
                // is not offered.
                [eax, ebx, ecx & LDN_ECX_ALIGNED, 0]
            }
            _ => [0; 4],
        }
    }

    fn extended(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let [eax, ebx, ecx, edx] = self.host.cpuid(leaf, subleaf);
        match leaf {
            0x8000_0000 => [eax.min(MAX_EXTENDED_LEAF), ebx, ecx, edx],
            0x8000_0001 => {
                let mut edx = edx & E1_EDX_KEEP;
                if !self.config.rdtscp {
                    edx &= !E1_EDX_RDTSCP;
                }
                [eax, ebx, ecx & E1_ECX_KEEP, edx]
            }
            // Brand string, L1 (reserved on Intel), L2 cache: descriptive only.
            0x8000_0002..=0x8000_0006 => [eax, ebx, ecx, edx],
            // Invariant TSC only: Conduit runs on one calibrated, constant TSC rate and tells
            // the guest that rate; no power-management features are virtualized.
            0x8000_0007 => [0, 0, 0, E7_EDX_INVARIANT_TSC],
            // Physical and linear address widths; no feature bits.
            0x8000_0008 => [eax & 0xffff, 0, 0, 0],
            _ => [0; 4],
        }
    }
}

/// `mask` without the components whose prerequisites it lacks (SDM Vol. 1 §13.3): the guest can
/// only enable a consistent set, so leaf 0xD must not enumerate the rest.
fn consistent_xcr0(mask: u64) -> u64 {
    use xsave::{XCR0_SSE, XCR0_X87};
    if mask & XCR0_X87 == 0 {
        return 0;
    }
    let mut m = mask;
    if m & XCR0_SSE == 0 {
        m &= !XCR0_AVX;
    }
    if m & XCR0_AVX == 0 || m & XCR0_AVX512 != XCR0_AVX512 {
        m &= !XCR0_AVX512;
    }
    m
}
