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
    BasicExitReason, ExitReason, InterruptionInfo, IoDirection, IoQualification,
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
    HC_CONSOLE_WRITE, HC_CONSOLE_WRITE_MAX, HC_ERR_BAD_ADDRESS, HC_ERR_INVALID_ARGUMENT,
    HC_ERR_UNKNOWN_FUNCTION, HC_EXIT, HC_EXIT_COUNT, HC_EXIT_COUNT_ALL, HC_OK, HC_TIMER, HC_YIELD,
};

const RAX: usize = 0;
const RCX: usize = 1;
const RBX: usize = 3;

/// Handles the exit that just happened on `g`'s current VMCS.
/// Right after a VM exit, before anything else (the guest's lock not yet taken): with
/// "acknowledge interrupt on exit" an external-interrupt exit has acknowledged the interrupt,
/// whose vector is in the exit interruption information (SDM Vol. 3C §28.2.2); the hypervisor's
/// dispatcher handles it (tick, device interrupts counted per owner, a cross-CPU request, EOI)
/// as the IDT would have. Done for every such exit, also one whose guest was stopped or
/// restarted meanwhile and whose handling is skipped: an interrupt left without its EOI would
/// block every interrupt of its priority class and below on this CPU.
/// Returns the exit reason, which [`handle`] takes.
pub fn host_interrupt(v: &mut Current) -> Result<ExitReason, FieldError> {
    let reason = ExitReason(v.get(ReadOnly32::ExitReason)?);
    if reason.entry_failure() || !matches!(reason.basic(), Ok(BasicExitReason::ExternalInterrupt)) {
        return Ok(reason);
    }
    let info = InterruptionInfo(v.get(ReadOnly32::ExitInterruptionInfo)?);
    if info.valid() {
        crate::irq::on_interrupt(info.vector());
    }
    Ok(reason)
}

/// Handles the exit of the current vCPU, whose `reason` [`host_interrupt`] read.
pub fn handle(g: &mut Guest, v: &mut Current, reason: ExitReason) -> Result<Outcome, FieldError> {
    let raw = reason.basic_raw();
    if let Some(n) = g.vcpu_mut().stats.by_reason.get_mut(usize::from(raw)) {
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
        BasicExitReason::Cpuid => super::msr_exits::cpuid(g, v),
        BasicExitReason::IoInstruction => {
            let qualification = v.get(ReadOnlyNatural::ExitQualification)?;
            io_exit(g, v, qualification)
        }
        BasicExitReason::PreemptionTimer => Ok(super::vplatform_exits::preempted(g)),
        BasicExitReason::ApicAccess => super::vplatform_exits::apic_access(g, v),
        BasicExitReason::ApicWrite => super::vplatform_exits::apic_write(g, v),
        BasicExitReason::VirtualizedEoi => super::vplatform_exits::eoi_exit(g, v),
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
            g.vcpu_mut().halted = true;
            // A HLT with interrupts off ends only with an NMI, SMI or INIT (SDM Vol. 3A §9.10),
            // none of which this platform delivers: an OS guest there stays halted.
            g.vcpu_mut().halted_without_if =
                v.get(GuestNatural::Rflags)? & conduit_vmx::inject::RFLAGS_IF == 0;
            Ok(Outcome::Yield)
        }
        // The guest can take the interrupt that waits: the next entry injects it.
        BasicExitReason::InterruptWindow => Ok(Outcome::Resume),
        // Hypercalls are for a guest's kernel: VMCALL exits at any privilege level (SDM Vol. 2C
        // "VMCALL"), so from CPL > 0 (SS.DPL, SDM Vol. 3C §25.4.1) it is #UD, as outside VMX, and
        // no process inside an OS guest reaches the hypervisor through it.
        BasicExitReason::Vmcall if (v.get(Guest32::SsAccessRights)? >> 5) & 3 != 0 => {
            g.vcpu_mut().events.raise_ud();
            Ok(Outcome::Resume)
        }
        BasicExitReason::Vmcall => vmcall(g, v),
        // MONITOR/MWAIT exit (their CPUID bit is clear): #UD, so a guest cannot park the CPU in a
        // deep C-state where the VMX-preemption timer stops (SDM Vol. 3C §26.5.1).
        BasicExitReason::Monitor | BasicExitReason::Mwait => {
            g.vcpu_mut().events.raise_ud();
            Ok(Outcome::Resume)
        }
        // VMX instructions exit unconditionally in VMX non-root operation (SDM Vol. 3C §26.1.2);
        // the guest's CPUID has no VMX, so it sees what such a CPU shows: #UD.
        BasicExitReason::Vmclear
        | BasicExitReason::Vmlaunch
        | BasicExitReason::Vmptrld
        | BasicExitReason::Vmptrst
        | BasicExitReason::Vmread
        | BasicExitReason::Vmresume
        | BasicExitReason::Vmwrite
        | BasicExitReason::Vmxoff
        | BasicExitReason::Vmxon
        | BasicExitReason::Invept
        | BasicExitReason::Invvpid
        | BasicExitReason::Vmfunc => {
            g.vcpu_mut().events.raise_ud();
            Ok(Outcome::Resume)
        }
        BasicExitReason::Rdmsr => super::msr_exits::rdmsr(g, v),
        BasicExitReason::Wrmsr => super::msr_exits::wrmsr(g, v),
        // The interrupt was dispatched right after the exit (`host_interrupt`).
        BasicExitReason::ExternalInterrupt => Ok(Outcome::Resume),
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
        BasicExitReason::ControlRegisterAccess => super::cr_exits::cr_access(g, v),
        BasicExitReason::EptViolation => {
            let gpa = v.get(ReadOnly64::GuestPhysicalAddress)?;
            let qualification = v.get(ReadOnlyNatural::ExitQualification)?;
            super::mmio::ept_violation(g, v, gpa, qualification)
        }
        BasicExitReason::EptMisconfiguration => {
            let gpa = v.get(ReadOnly64::GuestPhysicalAddress)?;
            stop(g, v, format!("EPT misconfiguration at GPA {gpa:#x}"))
        }
        BasicExitReason::TripleFault if g.platform.is_some() => {
            let state = crash_state(v)?;
            let vcpu = g.which_vcpu();
            g.request_reset(format!("triple fault (shutdown){vcpu}: {state}"));
            Ok(Outcome::Done)
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

/// The guest's state at a crash, for the report: RIP, RSP, control registers, EFER, CS, the
/// descriptor tables, and the event whose delivery failed (SDM Vol. 3C §28.2.4).
fn crash_state(v: &mut Current) -> Result<String, FieldError> {
    Ok(format!(
        "RIP {:#x} RSP {:#x} CR0 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x} CS {:#x} GDTR {:#x}+{:#x} \
         IDTR {:#x}+{:#x} IDT-vectoring info {:#x}",
        v.get(GuestNatural::Rip)?,
        v.get(GuestNatural::Rsp)?,
        v.get(GuestNatural::Cr0)?,
        v.get(GuestNatural::Cr3)?,
        v.get(GuestNatural::Cr4)?,
        v.get(Guest64::Efer)?,
        v.get(conduit_vmx::fields::Guest16::CsSelector)?,
        v.get(GuestNatural::GdtrBase)?,
        v.get(Guest32::GdtrLimit)?,
        v.get(GuestNatural::IdtrBase)?,
        v.get(Guest32::IdtrLimit)?,
        v.get(ReadOnly32::IdtVectoringInfo)?,
    ))
}

/// Stops the guest with `why`, adding its RIP.
pub(super) fn stop<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    why: String,
) -> Result<Outcome, C::Error> {
    let rip = cpu.rip()?;
    let vcpu = g.which_vcpu();
    g.stop(format!("{why} RIP {rip:#x}{vcpu}"));
    Ok(Outcome::Done)
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
            let value = g.vcpu().regs.gpr[RAX];
            if VirtualUart::claims(q.port) {
                g.uart.write(&g.name, q.port, value as u8);
                g.sync_uart_line();
            } else if super::power::claims(g, q.port) {
                super::power::port_out(g, q.port, value as u8);
                if g.state != State::Runnable || g.reset_request.is_some() {
                    return Ok(Outcome::Done);
                }
            } else if devices::claims(g, q.port) {
                devices::port_out(g, q.port, size as u8, value);
            }
        }
        IoDirection::In => {
            let value: u64 = if VirtualUart::claims(q.port) {
                let v = g.uart.read(q.port);
                g.sync_uart_line();
                u64::from(v)
            } else if super::power::claims(g, q.port) {
                u64::from(super::power::port_in(q.port))
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
            let rax = &mut g.vcpu_mut().regs.gpr[RAX];
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
    let (mut func, mut a1, mut a2) = (
        g.vcpu().regs.gpr[RAX],
        g.vcpu().regs.gpr[RBX],
        g.vcpu().regs.gpr[RCX],
    );
    // Outside 64-bit mode (CS.L = 0) only the low 32 bits of the registers are defined.
    if v.get(Guest32::CsAccessRights)? & (1 << 13) == 0 {
        (func, a1, a2) = (func & 0xffff_ffff, a1 & 0xffff_ffff, a2 & 0xffff_ffff);
    }
    v.skip()?;
    match func {
        HC_CONSOLE_WRITE => {
            g.vcpu_mut().regs.gpr[RAX] = if a2 > HC_CONSOLE_WRITE_MAX {
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
            g.vcpu_mut().regs.gpr[RAX] = HC_OK;
            Ok(Outcome::Yield)
        }
        HC_EXIT_COUNT => {
            g.vcpu_mut().regs.gpr[RAX] = if a1 == HC_EXIT_COUNT_ALL {
                g.vcpu().stats.by_reason.iter().sum()
            } else {
                usize::try_from(a1)
                    .ok()
                    .and_then(|r| g.vcpu().stats.by_reason.get(r))
                    .copied()
                    .unwrap_or(HC_ERR_INVALID_ARGUMENT)
            };
            Ok(Outcome::Resume)
        }
        HC_TIMER => {
            g.vcpu_mut().regs.gpr[RAX] = match g.vcpu_mut().events.arm_timer(a1, a2) {
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
            g.vcpu_mut().regs.gpr[RAX] = HC_ERR_UNKNOWN_FUNCTION;
            Ok(Outcome::Resume)
        }
    }
}
