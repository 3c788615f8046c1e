//! CPUID and MSR exits: the guest's CPUID and MSR policy (`conduit-cpu-policy`,
//! docs/cpu-policy.md) answers, and this module carries its answers out on the VMCS, the local
//! APIC and the guest's switched MSRs (Intel SDM Vol. 2A "CPUID", Vol. 4 "Model-Specific
//! Registers", Vol. 3C §26.1.3 "Instructions That Cause VM Exits Conditionally").

use super::cpu::CpuState;
use super::exits::Outcome;
use super::{Guest, vplatform_exits};
use conduit_cpu_policy::{GuestCpuConfig, GuestCpuid, HostCpuid};
use conduit_cpu_policy::{MsrState, Read, VmcsMsr, WriteEffect};
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vmx::controls::SecondaryControls;
use conduit_vmx::fields::{Control32, Control64, ControlNatural, Guest32, Guest64, GuestNatural};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;

/// The host's CPUID, as the policy reads it.
pub struct HostCpu;

impl HostCpuid for HostCpu {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
}

/// What the guest's CPUID policy depends on: its platform (x2APIC and the TSC-deadline timer
/// exist where it has a local APIC), the XCR0 components it may enable, the TSC rate and the
/// VMCS's RDTSCP / INVPCID controls.
pub fn cpu_config(g: &Guest, secondary: SecondaryControls) -> GuestCpuConfig {
    let apic = g.platform.is_some();
    GuestCpuConfig {
        apic_id: g.current as u32,
        vcpus: g.vcpus.len() as u32,
        tsc: g.vcpu().events.tsc(),
        xcr0_supported: super::xstate::xcr0_supported(g)
            .unwrap_or(conduit_cpu_policy::xsave::XCR0_X87),
        x2apic: apic,
        tsc_deadline: apic,
        rdtscp: secondary.contains(SecondaryControls::ENABLE_RDTSCP),
        invpcid: secondary.contains(SecondaryControls::ENABLE_INVPCID),
    }
}

/// The vCPU's MSR state at reset, following the CPUID the guest will see.
pub fn msr_state(g: &Guest, secondary: SecondaryControls) -> MsrState {
    let widths = super::vcpu::address_widths();
    let host = conduit_cpu_policy::HostMsrs {
        arch_capabilities: conduit_hw::msr::arch_capabilities(),
        microcode_revision: 0,
        linear_bits: widths.1,
        physical_bits: widths.0,
    };
    MsrState::new(GuestCpuid::new(HostCpu, cpu_config(g, secondary)).msr_policy(host))
}

fn secondary(v: &mut Current) -> Result<SecondaryControls, FieldError> {
    Ok(SecondaryControls::from_bits_truncate(
        v.get(Control32::SecondaryProcessorControls)?,
    ))
}

/// A CPUID exit: the policy answers for the guest's CR4 as it wrote it (the bits the guest/host
/// mask owns come from the read shadow, SDM Vol. 3C §26.3) and its XCR0. RIP is advanced.
pub fn cpuid(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let leaf = g.vcpu().regs.gpr[RAX] as u32;
    let sub = g.vcpu().regs.gpr[RCX] as u32;
    let mask = v.get(ControlNatural::Cr4GuestHostMask)?;
    let cr4 = (v.get(GuestNatural::Cr4)? & !mask) | (v.get(ControlNatural::Cr4ReadShadow)? & mask);
    let config = cpu_config(g, secondary(v)?);
    let xcr0 = super::xstate::guest_xcr0(g);
    let [a, b, c, d] = GuestCpuid::new(HostCpu, config).leaf(leaf, sub, xcr0, cr4);
    g.vcpu_mut().regs.gpr[RAX] = u64::from(a);
    g.vcpu_mut().regs.gpr[RBX] = u64::from(b);
    g.vcpu_mut().regs.gpr[RCX] = u64::from(c);
    g.vcpu_mut().regs.gpr[RDX] = u64::from(d);
    v.skip()?;
    Ok(Outcome::Resume)
}

/// The VMCS field of an MSR the VMCS holds.
fn vmcs_read(v: &mut Current, f: VmcsMsr) -> Result<u64, FieldError> {
    match f {
        VmcsMsr::Pat => v.get(Guest64::Pat),
        VmcsMsr::Efer => v.get(Guest64::Efer),
        VmcsMsr::Debugctl => v.get(Guest64::Debugctl),
        VmcsMsr::SysenterCs => v.get(Guest32::SysenterCs).map(u64::from),
        VmcsMsr::SysenterEsp => v.get(GuestNatural::SysenterEsp),
        VmcsMsr::SysenterEip => v.get(GuestNatural::SysenterEip),
        VmcsMsr::FsBase => v.get(GuestNatural::FsBase),
        VmcsMsr::GsBase => v.get(GuestNatural::GsBase),
    }
}

fn vmcs_write(v: &mut Current, f: VmcsMsr, value: u64) -> Result<(), FieldError> {
    match f {
        VmcsMsr::Pat => v.set(Guest64::Pat, value),
        VmcsMsr::Efer => v.set(Guest64::Efer, value),
        VmcsMsr::Debugctl => v.set(Guest64::Debugctl, value),
        VmcsMsr::SysenterCs => v.set(Guest32::SysenterCs, value as u32),
        VmcsMsr::SysenterEsp => v.set(GuestNatural::SysenterEsp, value),
        VmcsMsr::SysenterEip => v.set(GuestNatural::SysenterEip, value),
        VmcsMsr::FsBase => v.set(GuestNatural::FsBase, value),
        VmcsMsr::GsBase => v.set(GuestNatural::GsBase, value),
    }
}

/// A RDMSR exit: the value the policy names, or #GP(0) (RIP stays on the instruction).
pub fn rdmsr(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let msr = g.vcpu().regs.gpr[RCX] as u32;
    let read = match g.vcpu().msr_state.as_ref() {
        Some(s) => s.read(msr),
        None => Err(conduit_cpu_policy::Gp),
    };
    let value = match read {
        Ok(Read::Value(x)) => x,
        Ok(Read::Vmcs(f)) => vmcs_read(v, f)?,
        Ok(Read::Tsc) => conduit_hw::rdtsc().wrapping_add(v.get(Control64::TscOffset)?),
        Ok(Read::Apic(m)) => match vplatform_exits::rdmsr(g, m) {
            Some(Ok(x)) => x,
            _ => return gp(g),
        },
        // A switched MSR reaches the guest without an exit (the MSR bitmap passes it); one that
        // exits is not switched on this CPU.
        Ok(Read::Switched(_)) | Err(_) => return gp(g),
    };
    g.vcpu_mut().regs.gpr[RAX] = value & 0xffff_ffff;
    g.vcpu_mut().regs.gpr[RDX] = value >> 32;
    v.skip()?;
    Ok(Outcome::Resume)
}

/// A WRMSR exit: carried out as the policy says, or #GP(0).
pub fn wrmsr(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let msr = g.vcpu().regs.gpr[RCX] as u32;
    let value = (g.vcpu().regs.gpr[RDX] << 32) | (g.vcpu().regs.gpr[RAX] & 0xffff_ffff);
    let effect = match g.vcpu_mut().msr_state.as_mut() {
        Some(s) => s.write(msr, value),
        None => Err(conduit_cpu_policy::Gp),
    };
    match effect {
        Ok(WriteEffect::Done) => {}
        // EFER: LMA is the processor's (a write cannot change it), and LME cannot change while
        // paging is on (#GP) (SDM Vol. 3A §9.8.5, Vol. 4 "IA32_EFER").
        Ok(WriteEffect::Vmcs(VmcsMsr::Efer, x)) => {
            const LME: u64 = 1 << 8;
            const LMA: u64 = 1 << 10;
            let cur = v.get(Guest64::Efer)?;
            let paging = v.get(GuestNatural::Cr0)? & (1 << 31) != 0;
            if (x ^ cur) & LME != 0 && paging {
                return gp(g);
            }
            v.set(Guest64::Efer, (x & !LMA) | (cur & LMA))?;
        }
        Ok(WriteEffect::Vmcs(f, x)) => vmcs_write(v, f, x)?,
        // The guest's TSC is the host's plus the offset (SDM Vol. 3C §26.6.5); IA32_TSC_ADJUST
        // moves with every change (SDM Vol. 3B §18.17.3).
        Ok(WriteEffect::Tsc(x)) => {
            let offset = v.get(Control64::TscOffset)?;
            let delta = x.wrapping_sub(conduit_hw::rdtsc().wrapping_add(offset));
            v.set(Control64::TscOffset, offset.wrapping_add(delta))?;
            g.vcpu_mut().tsc_offset = offset.wrapping_add(delta);
            if let Some(s) = g.vcpu_mut().msr_state.as_mut() {
                s.tsc_written(delta);
            }
        }
        Ok(WriteEffect::TscDelta(delta)) => {
            let offset = v.get(Control64::TscOffset)?;
            v.set(Control64::TscOffset, offset.wrapping_add(delta))?;
            g.vcpu_mut().tsc_offset = offset.wrapping_add(delta);
        }
        Ok(WriteEffect::Apic(m, x)) => match vplatform_exits::wrmsr(g, m, x) {
            Some(Ok(())) => {}
            _ => return gp(g),
        },
        Ok(WriteEffect::Ibpb) => conduit_hw::msr::ibpb(),
        Ok(WriteEffect::Switched(..)) | Err(_) => return gp(g),
    }
    v.skip()?;
    Ok(Outcome::Resume)
}

/// Queues a #GP(0) for the next entry; RIP stays on the faulting instruction (SDM "Event
/// Injection").
fn gp(g: &mut Guest) -> Result<Outcome, FieldError> {
    g.vcpu_mut().events.raise_gp();
    Ok(Outcome::Resume)
}
