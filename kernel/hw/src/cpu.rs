//! CPU identification (CPUID) and the VMX capability report (Intel SDM Vol. 3D, Appendix A).

use super::msr;
use alloc::string::String;
use conduit_vmx::caps::{VmxCapabilities, VmxMsrs, msr as vmx_msr};
use log::{info, warn};
use raw_cpuid::CpuId;

/// What the boot CPU is and what it can do for virtualisation.
#[derive(Debug, Clone)]
pub struct CpuInfo {
    pub vendor: String,
    pub family: u8,
    pub model: u8,
    pub stepping: u8,
    pub brand: String,
    /// The hypervisor we run under, if CPUID says there is one (nested runs, emulators).
    pub hypervisor: Option<String>,
    pub x2apic: bool,
    /// IA32_FEATURE_CONTROL and the VMX capability MSRs, when CPUID reports VMX.
    pub vmx: Option<VmxInfo>,
}

/// The raw and decoded VMX capability MSRs.
#[derive(Debug, Clone, Copy)]
pub struct VmxInfo {
    pub feature_control: u64,
    pub msrs: VmxMsrs,
    pub caps: VmxCapabilities,
}

/// Identifies the boot CPU. Reads the VMX MSRs only when CPUID.1:ECX.VMX[bit 5] is set: they raise
/// #GP otherwise.
pub fn identify() -> CpuInfo {
    let cpuid = CpuId::new();
    let vendor = cpuid
        .get_vendor_info()
        .map_or_else(|| String::from("unknown"), |v| v.as_str().into());
    let features = cpuid.get_feature_info();
    let (family, model, stepping) = features.as_ref().map_or((0, 0, 0), |f| {
        (f.family_id(), f.model_id(), f.stepping_id())
    });
    let brand = cpuid
        .get_processor_brand_string()
        .map_or_else(String::new, |b| String::from(b.as_str().trim()));
    let hypervisor = cpuid
        .get_hypervisor_info()
        .map(|h| alloc::format!("{:?}", h.identify()));
    let has_vmx = features.as_ref().is_some_and(|f| f.has_vmx());
    let x2apic = features.as_ref().is_some_and(|f| f.has_x2apic());
    let vmx = has_vmx.then(read_vmx);
    CpuInfo {
        vendor,
        family,
        model,
        stepping,
        brand,
        hypervisor,
        x2apic,
        vmx,
    }
}

fn read_vmx() -> VmxInfo {
    // SAFETY (all reads below): CPUID reports VMX, so IA32_FEATURE_CONTROL and the basic VMX
    // capability MSRs 0x480-0x48a exist (SDM Vol. 3D, A.1); the optional ones are read only when
    // the bits that announce them are set.
    let read = |m: u32| {
        // SAFETY: see above; every caller checks the MSR exists.
        unsafe { msr::read(m) }
    };
    let mut m = VmxMsrs {
        basic: read(vmx_msr::IA32_VMX_BASIC),
        pinbased: read(vmx_msr::IA32_VMX_PINBASED_CTLS),
        procbased: read(vmx_msr::IA32_VMX_PROCBASED_CTLS),
        exit: read(vmx_msr::IA32_VMX_EXIT_CTLS),
        entry: read(vmx_msr::IA32_VMX_ENTRY_CTLS),
        misc: read(vmx_msr::IA32_VMX_MISC),
        cr0_fixed0: read(vmx_msr::IA32_VMX_CR0_FIXED0),
        cr0_fixed1: read(vmx_msr::IA32_VMX_CR0_FIXED1),
        cr4_fixed0: read(vmx_msr::IA32_VMX_CR4_FIXED0),
        cr4_fixed1: read(vmx_msr::IA32_VMX_CR4_FIXED1),
        ..VmxMsrs::default()
    };
    // Bit 55 of IA32_VMX_BASIC announces the TRUE_* MSRs (A.1).
    if m.basic & (1 << 55) != 0 {
        m.true_pinbased = read(vmx_msr::IA32_VMX_TRUE_PINBASED_CTLS);
        m.true_procbased = read(vmx_msr::IA32_VMX_TRUE_PROCBASED_CTLS);
        m.true_exit = read(vmx_msr::IA32_VMX_TRUE_EXIT_CTLS);
        m.true_entry = read(vmx_msr::IA32_VMX_TRUE_ENTRY_CTLS);
    } else {
        (m.true_pinbased, m.true_procbased, m.true_exit, m.true_entry) =
            (m.pinbased, m.procbased, m.exit, m.entry);
    }
    // "Activate secondary controls" allowed-1 announces IA32_VMX_PROCBASED_CTLS2 (A.3.3).
    if m.procbased & (1 << 63) != 0 {
        m.procbased2 = read(vmx_msr::IA32_VMX_PROCBASED_CTLS2);
        // EPT (bit 1) or VPID (bit 5) allowed-1 announces IA32_VMX_EPT_VPID_CAP (A.10).
        if m.procbased2 & ((1 << 33) | (1 << 37)) != 0 {
            m.ept_vpid_cap = read(vmx_msr::IA32_VMX_EPT_VPID_CAP);
        }
    }
    VmxInfo {
        feature_control: read(vmx_msr::IA32_FEATURE_CONTROL),
        caps: VmxCapabilities::decode(&m),
        msrs: m,
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl CpuInfo {
    /// Logs the identification and, when present, the decoded VMX capabilities.
    pub fn report(&self) {
        info!(
            "vendor {} family {:#x} model {:#x} stepping {} \"{}\"",
            self.vendor, self.family, self.model, self.stepping, self.brand
        );
        if let Some(h) = &self.hypervisor {
            info!("running under a hypervisor: {h}");
        }
        info!("x2APIC: {}", yes(self.x2apic));
        let Some(vmx) = &self.vmx else {
            info!("VMX: not available (CPUID.1:ECX.VMX = 0): guests cannot run on this machine");
            return;
        };
        let c = &vmx.caps;
        let b = &c.basic;
        info!(
            "VMX: available, VMCS revision {}, region {} bytes, memory type {}, true controls: {}",
            b.revision,
            b.region_size,
            b.memory_type.name(),
            yes(b.true_controls)
        );
        let fc = vmx.feature_control;
        info!(
            "IA32_FEATURE_CONTROL {:#x}: locked {}, VMXON outside SMX {}",
            fc,
            yes(fc & 1 != 0),
            yes(fc & 4 != 0)
        );
        if fc & 1 != 0 && fc & 4 == 0 {
            warn!("firmware locked IA32_FEATURE_CONTROL with VMX disabled: VMXON will fail");
        }
        let e = &c.ept_vpid;
        if c.ept {
            let walk = match (e.walk_4_level, e.walk_5_level) {
                (true, true) => "4/5-level walk",
                (true, false) => "4-level walk",
                (false, true) => "5-level walk",
                (false, false) => "no supported walk",
            };
            info!(
                "EPT: {walk}, {}{}, 2M pages: {}, 1G pages: {}, INVEPT: {} (single {}, all {}), A/D: {}, execute-only: {}",
                if e.memtype_wb { "WB" } else { "" },
                if e.memtype_uc { "+UC" } else { "" },
                yes(e.pages_2m),
                yes(e.pages_1g),
                yes(e.invept),
                yes(e.invept_single_context),
                yes(e.invept_all_context),
                yes(e.accessed_dirty),
                yes(e.execute_only)
            );
        } else {
            info!("EPT: no");
        }
        info!(
            "VPID: {}, INVVPID: {} (address {}, single {}, all {}, single-globals {})",
            yes(c.vpid),
            yes(e.invvpid),
            yes(e.invvpid_individual_address),
            yes(e.invvpid_single_context),
            yes(e.invvpid_all_context),
            yes(e.invvpid_single_context_retaining_globals)
        );
        info!(
            "unrestricted guest: {}, preemption timer: {} (rate: TSC >> {}), CR3 targets {}, MSR list max {}",
            yes(c.unrestricted_guest),
            yes(c.preemption_timer),
            c.misc.preemption_timer_rate,
            c.misc.cr3_targets,
            c.misc.max_msr_list
        );
        let m = &vmx.msrs;
        info!(
            "VMX MSRs: basic={:#x} pin={:#x} proc={:#x} proc2={:#x} exit={:#x} entry={:#x} misc={:#x}",
            m.basic,
            m.true_pinbased,
            m.true_procbased,
            m.procbased2,
            m.true_exit,
            m.true_entry,
            m.misc
        );
        info!(
            "VMX MSRs: ept_vpid={:#x} cr0_fixed0={:#x} cr0_fixed1={:#x} cr4_fixed0={:#x} cr4_fixed1={:#x} legacy pin={:#x} proc={:#x} exit={:#x} entry={:#x}",
            m.ept_vpid_cap,
            m.cr0_fixed0,
            m.cr0_fixed1,
            m.cr4_fixed0,
            m.cr4_fixed1,
            m.pinbased,
            m.procbased,
            m.exit,
            m.entry
        );
    }
}
