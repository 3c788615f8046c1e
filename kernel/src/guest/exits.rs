//! VM-exit handling policy (SDM Vol. 3C, "VM Exits", Appendix C): what Conduit does for each
//! basic exit reason. This is the hot path: it reads only the fields each reason needs.

use super::cpu::CpuState;
use super::devices;
use super::vuart::VirtualUart;
use super::{Guest, State};
use alloc::format;
use alloc::string::String;
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vmx::exit::{
    BasicExitReason, CrAccess, ExitReason, InterruptionInfo, IoDirection, IoQualification,
};
use conduit_vmx::fields::{
    Guest32, Guest64, GuestNatural, ReadOnly32, ReadOnly64, ReadOnlyNatural,
};

/// What the scheduler does after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Re-enter the same guest at once.
    Resume,
    /// Give the CPU to the next guest (time slice over, HLT, yield hypercall).
    Yield,
    /// The guest is finished (exited or stopped): never enter it again.
    Done,
}

use conduit_abi::{
    ABI_VERSION, CPUID_HV_LEAF, CPUID_HV_MAX_LEAF, CPUID_HV_SIGNATURE, CPUID_HV_VERSION_LEAF,
    HC_CONSOLE_WRITE, HC_CONSOLE_WRITE_MAX, HC_ERR_BAD_ADDRESS, HC_ERR_INVALID_ARGUMENT,
    HC_ERR_UNKNOWN_FUNCTION, HC_EXIT, HC_EXIT_COUNT, HC_EXIT_COUNT_ALL, HC_OK, HC_TIMER, HC_YIELD,
};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;

/// MSRs a guest may access (everything else injects #GP).
const MSR_TSC: u32 = 0x10;
const MSR_PAT: u32 = 0x277;
const MSR_EFER: u32 = 0xc000_0080;
const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
/// EFER bits a guest may set: SCE, LME, LMA, NXE.
const EFER_WRITABLE: u64 = 1 | (1 << 8) | (1 << 10) | (1 << 11);

/// Handles the exit that just happened on `g`'s current VMCS.
pub fn handle(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let reason = ExitReason(v.get(ReadOnly32::ExitReason)?);
    let raw = reason.basic_raw();
    if let Some(n) = g.stats.by_reason.get_mut(usize::from(raw)) {
        *n += 1;
    }
    if reason.entry_failure() {
        let qual = v.get(ReadOnlyNatural::ExitQualification)?;
        return stop(
            g,
            v,
            format!(
                "VM entry failed: {} (qualification {qual:#x})",
                reason.name()
            ),
        );
    }
    let Ok(basic) = reason.basic() else {
        return stop(g, v, format!("unknown exit reason {raw}"));
    };
    if basic.may_interrupt_event_delivery() {
        super::events::after_exit(g, v)?;
    }
    match basic {
        BasicExitReason::Cpuid => cpuid(g, v),
        BasicExitReason::IoInstruction => {
            let qualification = v.get(ReadOnlyNatural::ExitQualification)?;
            io_exit(g, v, qualification)
        }
        BasicExitReason::PreemptionTimer => Ok(Outcome::Yield),
        // HLT gives up the CPU, unless an interrupt the guest can take is pending: then it
        // would end the HLT at once.
        BasicExitReason::Hlt => {
            v.skip()?;
            // `sti; hlt`: the STI shadow covered the HLT and ends with it, so an interrupt can
            // come right after (before a `cli` that may follow).
            super::events::end_shadow(v)?;
            if super::events::wakes_at_once(g, v)? {
                return Ok(Outcome::Resume);
            }
            g.halted = true;
            Ok(Outcome::Yield)
        }
        // The guest can take the interrupt that waits: the next entry injects it.
        BasicExitReason::InterruptWindow => Ok(Outcome::Resume),
        BasicExitReason::Vmcall => vmcall(g, v),
        BasicExitReason::Rdmsr => rdmsr(g, v),
        BasicExitReason::Wrmsr => wrmsr(g, v),
        // With "acknowledge interrupt on exit" the interrupt was acknowledged and its vector is
        // in the exit interruption information: the hypervisor's dispatcher handles it (tick,
        // device interrupts counted per owner, EOI) as the IDT would have.
        BasicExitReason::ExternalInterrupt => {
            let info = InterruptionInfo(v.get(ReadOnly32::ExitInterruptionInfo)?);
            if info.valid() {
                crate::irq::on_interrupt(info.vector());
            }
            Ok(Outcome::Resume)
        }
        BasicExitReason::ExceptionOrNmi => {
            let info = InterruptionInfo(v.get(ReadOnly32::ExitInterruptionInfo)?);
            if info.valid() && info.vector() == 2 {
                Ok(Outcome::Resume)
            } else {
                stop(
                    g,
                    v,
                    format!("unexpected exception exit, vector {}", info.vector()),
                )
            }
        }
        BasicExitReason::ControlRegisterAccess => cr_access(g, v),
        BasicExitReason::EptViolation => {
            let gpa = v.get(ReadOnly64::GuestPhysicalAddress)?;
            let qualification = v.get(ReadOnlyNatural::ExitQualification)?;
            super::mmio::ept_violation(g, v, gpa, qualification)
        }
        BasicExitReason::EptMisconfiguration => {
            let gpa = v.get(ReadOnly64::GuestPhysicalAddress)?;
            stop(g, v, format!("EPT misconfiguration at GPA {gpa:#x}"))
        }
        BasicExitReason::Xsetbv => super::xstate::xsetbv(g, v),
        BasicExitReason::TripleFault => stop(g, v, String::from("triple fault")),
        other => {
            let qual = v.get(ReadOnlyNatural::ExitQualification)?;
            stop(
                g,
                v,
                format!(
                    "unhandled exit: {} (reason {raw}, qualification {qual:#x})",
                    other.name()
                ),
            )
        }
    }
}

/// Stops the guest with `why`, adding its RIP.
pub(super) fn stop<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    why: String,
) -> Result<Outcome, C::Error> {
    let rip = cpu.rip()?;
    g.stop(format!("{why} RIP {rip:#x}"));
    Ok(Outcome::Done)
}

fn cpuid(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let leaf = g.regs.gpr[RAX] as u32;
    let sub = g.regs.gpr[RCX] as u32;
    let (a, b, c, d) = match leaf {
        CPUID_HV_LEAF => {
            let w = |i: usize| {
                u32::from_le_bytes([
                    CPUID_HV_SIGNATURE[i],
                    CPUID_HV_SIGNATURE[i + 1],
                    CPUID_HV_SIGNATURE[i + 2],
                    CPUID_HV_SIGNATURE[i + 3],
                ])
            };
            (CPUID_HV_MAX_LEAF, w(0), w(4), w(8))
        }
        CPUID_HV_VERSION_LEAF => (ABI_VERSION, 0, 0, 0),
        0x4000_0002..=0x4fff_ffff => (0, 0, 0, 0),
        _ => {
            let r = core::arch::x86_64::__cpuid_count(leaf, sub);
            // Leaves beyond the maximum basic leaf return the highest basic leaf's data (SDM
            // Vol. 2A, CPUID): they pass through as they are. Asked only for 0x15 and 0x16 (a
            // match guard runs only when its pattern matched), not on every CPUID exit.
            let basic = || leaf <= core::arch::x86_64::__cpuid(0).eax;
            match leaf {
                // Hide VMX (ECX bit 5), announce a hypervisor (ECX bit 31).
                1 => (r.eax, r.ebx, (r.ecx & !(1 << 5)) | (1 << 31), r.edx),
                // The TSC's rate as the hypervisor measured it (`conduit_hw::time`), not the
                // CPU model's claim (wrong by 48x under Bochs).
                0x15 if basic() => {
                    let l = conduit_clock::guest_leaf15(g.events.tsc());
                    (l.denominator, l.numerator, l.crystal_hz, 0)
                }
                0x16 if basic() => {
                    let [a, b, c] = conduit_clock::guest_leaf16(g.events.tsc());
                    (a, b, c, 0)
                }
                _ => (r.eax, r.ebx, r.ecx, r.edx),
            }
        }
    };
    g.regs.gpr[RAX] = u64::from(a);
    g.regs.gpr[RBX] = u64::from(b);
    g.regs.gpr[RCX] = u64::from(c);
    g.regs.gpr[RDX] = u64::from(d);
    v.skip()?;
    Ok(Outcome::Resume)
}

/// An I/O-instruction exit (SDM Vol. 3C §28.2.1, Table 28-5) with its exit qualification as the
/// VMCS reports it: the virtual console, the configuration ports and forwarded I/O BARs
/// (`devices.rs`); other ports read all ones and drop writes. RAX carries the value; RIP is
/// advanced past the instruction.
pub fn io_exit<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    qualification: u64,
) -> Result<Outcome, C::Error> {
    let Ok(q) = IoQualification::decode(qualification) else {
        return stop(
            g,
            cpu,
            format!("undecodable I/O qualification {qualification:#x}"),
        );
    };
    if q.string {
        return stop(
            g,
            cpu,
            format!("string I/O to port {:#x} is not supported", q.port),
        );
    }
    let size = q.size.bytes();
    match q.direction {
        IoDirection::Out => {
            let value = g.regs.gpr[RAX];
            if VirtualUart::claims(q.port) {
                g.uart.write(&g.name, q.port, value as u8);
            } else if devices::claims(g, q.port) {
                devices::port_out(g, q.port, size as u8, value);
            }
        }
        IoDirection::In => {
            let value: u64 = if VirtualUart::claims(q.port) {
                u64::from(g.uart.read(q.port))
            } else if devices::claims(g, q.port) {
                devices::port_in(g, q.port, size as u8)
            } else {
                u64::MAX
            };
            let mask = if size == 4 {
                0xffff_ffff
            } else {
                (1u64 << (size * 8)) - 1
            };
            let rax = &mut g.regs.gpr[RAX];
            // A 32-bit IN zero-extends into RAX; 8/16-bit INs keep the upper bits.
            *rax = if size == 4 {
                value & mask
            } else {
                (*rax & !mask) | (value & mask)
            };
        }
    }
    cpu.skip()?;
    Ok(Outcome::Resume)
}

fn vmcall(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let (mut func, mut a1, mut a2) = (g.regs.gpr[RAX], g.regs.gpr[RBX], g.regs.gpr[RCX]);
    // Outside 64-bit mode (CS.L = 0) only the low 32 bits of the registers are defined.
    if v.get(Guest32::CsAccessRights)? & (1 << 13) == 0 {
        (func, a1, a2) = (func & 0xffff_ffff, a1 & 0xffff_ffff, a2 & 0xffff_ffff);
    }
    v.skip()?;
    match func {
        HC_CONSOLE_WRITE => {
            g.regs.gpr[RAX] = if a2 > HC_CONSOLE_WRITE_MAX {
                HC_ERR_INVALID_ARGUMENT
            } else if let Some(bytes) = g.memory.bytes(a1, a2) {
                for &b in bytes {
                    g.uart.put(&g.name, b);
                }
                HC_OK
            } else {
                HC_ERR_BAD_ADDRESS
            };
            Ok(Outcome::Resume)
        }
        HC_YIELD => {
            g.regs.gpr[RAX] = HC_OK;
            Ok(Outcome::Yield)
        }
        HC_EXIT_COUNT => {
            g.regs.gpr[RAX] = if a1 == HC_EXIT_COUNT_ALL {
                g.stats.by_reason.iter().sum()
            } else {
                usize::try_from(a1)
                    .ok()
                    .and_then(|r| g.stats.by_reason.get(r))
                    .copied()
                    .unwrap_or(HC_ERR_INVALID_ARGUMENT)
            };
            Ok(Outcome::Resume)
        }
        HC_TIMER => {
            g.regs.gpr[RAX] = match g.events.arm_timer(a1, a2) {
                Ok(()) => HC_OK,
                Err(_) => HC_ERR_INVALID_ARGUMENT,
            };
            Ok(Outcome::Resume)
        }
        HC_EXIT => {
            g.uart.flush(&g.name);
            log::info!("guest \"{}\" exited with code {a1:#x}", g.name);
            g.state = State::Exited(a1);
            Ok(Outcome::Done)
        }
        _ => {
            g.regs.gpr[RAX] = HC_ERR_UNKNOWN_FUNCTION;
            Ok(Outcome::Resume)
        }
    }
}

fn rdmsr(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let msr = g.regs.gpr[RCX] as u32;
    let value = match msr {
        MSR_TSC => conduit_hw::rdtsc(),
        MSR_PAT => v.get(Guest64::Pat)?,
        MSR_EFER => v.get(Guest64::Efer)?,
        MSR_FS_BASE => v.get(GuestNatural::FsBase)?,
        MSR_GS_BASE => v.get(GuestNatural::GsBase)?,
        _ => return inject_gp(g),
    };
    g.regs.gpr[RAX] = value & 0xffff_ffff;
    g.regs.gpr[RDX] = value >> 32;
    v.skip()?;
    Ok(Outcome::Resume)
}

fn wrmsr(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let msr = g.regs.gpr[RCX] as u32;
    let value = (g.regs.gpr[RDX] << 32) | (g.regs.gpr[RAX] & 0xffff_ffff);
    match msr {
        MSR_PAT => v.set(Guest64::Pat, value)?,
        MSR_EFER if value & !EFER_WRITABLE == 0 => v.set(Guest64::Efer, value)?,
        MSR_FS_BASE => v.set(GuestNatural::FsBase, value)?,
        MSR_GS_BASE => v.set(GuestNatural::GsBase, value)?,
        _ => return inject_gp(g),
    }
    v.skip()?;
    Ok(Outcome::Resume)
}

/// Queues a #GP(0) for the next entry; RIP stays on the faulting instruction (SDM "Event
/// Injection").
fn inject_gp(g: &mut Guest) -> Result<Outcome, FieldError> {
    g.events.raise_gp();
    Ok(Outcome::Resume)
}

fn cr_access(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let q = CrAccess::decode(v.get(ReadOnlyNatural::ExitQualification)?);
    stop(
        g,
        v,
        format!("control-register access not permitted: {q:?}"),
    )
}
