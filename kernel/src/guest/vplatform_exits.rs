//! The exits and entry-time work of an OS guest's virtual platform (`vplatform.rs`): APIC-access,
//! APIC-write and EOI-induced exits, the local APIC's MSRs, the VMX-preemption timer shared by
//! the time slice and the guest's own timer deadline, and what goes into the VMCS before each
//! entry (Intel SDM Vol. 3C ch. 30, §26.5.1 "VMX-Preemption Timer").

use super::Guest;
use super::cpu::CpuState;
use super::exits::{Outcome, stop};
use super::vplatform::{IOAPIC_GPA, IOAPIC_LEN, LAPIC_GPA};
use crate::irq::dispatch;
use alloc::format;
use conduit_hw::rdtsc;

/// The guest's TSC now: the host's plus the VMCS TSC offset (SDM Vol. 3C §26.6.5). The local
/// APIC's deadlines are in the guest's TSC.
fn guest_now(g: &Guest) -> u64 {
    rdtsc().wrapping_add(g.vcpu().tsc_offset)
}
use conduit_hw::vmx::vmcs::{Current, FieldError};
use conduit_vlapic::{ApicMode, offset};
use conduit_vmx::exit::{CrAccess, Gpr};
use conduit_vmx::fields::{Control64, Guest16, Guest32, GuestNatural, ReadOnlyNatural};
use conduit_vmx::inject::{Interruptibility, RFLAGS_IF};

/// IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC register range (SDM Vol. 4, Table 2-2;
/// Vol. 3A §11.12.1).
pub const MSR_APIC_BASE: u32 = 0x1b;
pub const MSR_TSC_DEADLINE: u32 = 0x6e0;
pub const MSR_X2APIC: core::ops::RangeInclusive<u32> = 0x800..=0x8ff;

/// Which emulated MMIO range of the platform `gpa` lies in, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Lapic(u64),
    Ioapic(u64),
}

/// `gpa` in the local APIC's page or the I/O APIC's window of a guest with a platform.
pub fn region(g: &Guest, gpa: u64) -> Option<Region> {
    g.platform.as_ref()?;
    if (LAPIC_GPA..LAPIC_GPA + 0x1000).contains(&gpa) {
        Some(Region::Lapic(gpa - LAPIC_GPA))
    } else if (IOAPIC_GPA..IOAPIC_GPA + IOAPIC_LEN).contains(&gpa) {
        Some(Region::Ioapic(gpa - IOAPIC_GPA))
    } else {
        None
    }
}

/// One decoded MMIO access to the platform; returns the value read.
pub fn access(g: &mut Guest, r: Region, size: u8, store: Option<u64>) -> u64 {
    let now = guest_now(g);
    let cpu = g.current;
    let Some(p) = g.platform.as_mut() else {
        return u64::MAX;
    };
    let value = match r {
        Region::Lapic(off) => p.lapic_access(cpu, off, size, store, now),
        Region::Ioapic(off) => p.ioapic_access(off, size, store),
    };
    settle_intx(g);
    value
}

/// Hands the assigned functions' INTx between the physical lines and the virtual I/O APIC:
/// the inputs whose lines fired since are asserted, and the inputs whose EOI arrived (an EOI to
/// the local APIC, by MMIO, MSR or an EOI-induced exit, or the I/O APIC's EOI register) have
/// their physical lines unmasked (`irq::intx`).
pub fn settle_intx(g: &mut Guest) {
    let id = g.id();
    let Some(p) = g.platform.as_mut() else {
        return;
    };
    let asserted = crate::irq::take_asserted(id);
    for input in 0..32u8 {
        if asserted & (1 << input) != 0 {
            p.assert_intx(input);
        }
    }
    crate::irq::guest_eoi(id, p.take_intx_eois());
}

/// A RDMSR of the local APIC's MSRs: `Some(Ok(value))`, `Some(Err(()))` for #GP, `None` if the
/// MSR is not the APIC's (or the guest has no platform).
pub fn rdmsr(g: &mut Guest, msr: u32) -> Option<Result<u64, ()>> {
    let now = guest_now(g);
    let cpu = g.current;
    let lapic = &mut g.platform.as_mut()?.lapics[cpu];
    Some(match msr {
        MSR_APIC_BASE => Ok(lapic.apic_base()),
        MSR_TSC_DEADLINE => Ok(lapic.tsc_deadline()),
        m if MSR_X2APIC.contains(&m) => lapic.msr_read(m, now).map_err(|_| ()),
        _ => return None,
    })
}

/// A WRMSR of the local APIC's MSRs, as [`rdmsr`].
pub fn wrmsr(g: &mut Guest, msr: u32, value: u64) -> Option<Result<(), ()>> {
    let now = guest_now(g);
    let cpu = g.current;
    let p = g.platform.as_mut()?;
    Some(match msr {
        MSR_APIC_BASE => match p.lapics[cpu].set_apic_base(value) {
            Ok(e) => {
                p.apply(cpu, e);
                Ok(())
            }
            Err(_) => Err(()),
        },
        MSR_TSC_DEADLINE => {
            let e = p.lapics[cpu].set_tsc_deadline(value, now);
            p.apply(cpu, e);
            Ok(())
        }
        m if MSR_X2APIC.contains(&m) => match p.lapics[cpu].msr_write(m, value, now) {
            Ok(e) => {
                p.apply(cpu, e);
                settle_intx(g);
                Ok(())
            }
            Err(_) => Err(()),
        },
        _ => return None,
    })
}

/// A MOV to or from CR8 of a guest with a platform: `None` for any other control-register
/// access. Software emulation sets CR8-load and CR8-store exiting (APIC virtualization lets the
/// CPU use the TPR shadow instead), so the guest's CR8 is its local APIC's TPR: CR8 bits 3:0 are
/// TPR bits 7:4 (SDM Vol. 3A §11.8.6.1 "Interaction of Task Priorities between CR8 and APIC");
/// writing a value with bits 63:4 set is #GP(0) (SDM Vol. 2B, "MOV—Move to/from Control
/// Registers"). While the APIC is globally disabled, writes are dropped and reads give its TPR.
pub fn cr8(g: &mut Guest, v: &mut Current, q: CrAccess) -> Option<Result<Outcome, FieldError>> {
    let (store, gpr) = match q {
        CrAccess::MovToCr { cr: 8, gpr } => (true, gpr),
        CrAccess::MovFromCr { cr: 8, gpr } => (false, gpr),
        _ => return None,
    };
    g.platform.as_ref()?;
    Some(cr8_access(g, v, store, gpr))
}

fn cr8_access(
    g: &mut Guest,
    v: &mut Current,
    store: bool,
    gpr: Gpr,
) -> Result<Outcome, FieldError> {
    let cpu = g.current;
    let Some(p) = g.platform.as_mut() else {
        return Ok(Outcome::Resume);
    };
    if store {
        let value = match gpr {
            Gpr::Rsp => v.get(GuestNatural::Rsp)?,
            r => g.vcpus[g.current].regs.gpr[r as usize],
        };
        if value >> 4 != 0 {
            g.vcpus[g.current].events.raise_gp();
            return Ok(Outcome::Resume);
        }
        let tpr = (value as u32) << 4;
        let now = rdtsc().wrapping_add(g.vcpus[g.current].tsc_offset);
        let lapic = &mut p.lapics[cpu];
        let effects = match lapic.mode() {
            ApicMode::XApic => Some(lapic.write(offset::TPR, tpr, now)),
            // TPR's x2APIC MSR (SDM Vol. 3A §11.12.1.2, Table 11-6); TPR writes never #GP.
            ApicMode::X2Apic => lapic.msr_write(MSR_X2APIC_TPR, u64::from(tpr), now).ok(),
            ApicMode::Disabled => None,
        };
        if let Some(e) = effects {
            p.apply(cpu, e);
        }
    } else {
        let value = u64::from(p.lapics[cpu].tpr() >> 4);
        match gpr {
            Gpr::Rsp => v.set(GuestNatural::Rsp, value)?,
            r => g.vcpu_mut().regs.gpr[r as usize] = value,
        }
    }
    v.skip()?;
    Ok(Outcome::Resume)
}

/// The x2APIC MSR of the TPR.
const MSR_X2APIC_TPR: u32 = 0x808;

/// An APIC-write exit (trap-like, SDM Vol. 3C §30.4.3.3): the guest's value is already in the
/// virtual-APIC page at the offset the qualification names; the model carries the write out.
pub fn apic_write(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let offset = (v.get(ReadOnlyNatural::ExitQualification)? & 0xff0) as u32;
    let now = guest_now(g);
    let cpu = g.current;
    let Some(p) = g.platform.as_mut() else {
        return stop(
            g,
            v,
            format!("APIC write at offset {offset:#x} without a local APIC"),
        );
    };
    let e = p.lapics[cpu].apic_write(offset, now);
    p.apply(cpu, e);
    settle_intx(g);
    Ok(Outcome::Resume)
}

/// An EOI-induced exit (SDM Vol. 3C §30.1.4): the CPU completed the virtual EOI of a vector in
/// the EOI-exit bitmap. A level-triggered one goes on to the I/O APIC; for any vector the next
/// entry decides whether a vector that waited behind it is delivered or held back
/// (`Vlapic::vmcs_eoi_exit_bitmap`).
pub fn eoi_exit(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let vector = (v.get(ReadOnlyNatural::ExitQualification)? & 0xff) as u8;
    let cpu = g.current;
    if let Some(p) = g.platform.as_mut()
        && let Some(level) = p.lapics[cpu].eoi_exit(vector)
    {
        p.broadcast_eoi(level);
    }
    settle_intx(g);
    Ok(Outcome::Resume)
}

/// An APIC-access exit (fault-like, SDM Vol. 3C §30.4, Table 28-6): a guest access to the local
/// APIC's page the CPU does not virtualize (e.g. the timer's current count). Linear reads and
/// writes are carried out through the MMIO decoder; anything else (an access during event
/// delivery, an instruction fetch) stops the guest.
pub fn apic_access(g: &mut Guest, v: &mut Current) -> Result<Outcome, FieldError> {
    let q = v.get(ReadOnlyNatural::ExitQualification)?;
    let offset = q & 0xfff;
    let kind = (q >> 12) & 0xf;
    match kind {
        0 | 1 => super::mmio::emulate_platform(g, v, Region::Lapic(offset), kind == 1),
        _ => stop(
            g,
            v,
            format!("APIC access of type {kind} at offset {offset:#x}"),
        ),
    }
}

/// Drains the vectors the hypervisor marked pending for the guest (its devices' MSIs) into the
/// IRR of the local APIC the guest addressed each to (`VirtualPlatform::msi_vcpu`;
/// edge-triggered, as message-signalled interrupts are).
fn drain_pending(g: &mut Guest) {
    settle_intx(g);
    let id = g.id();
    let Some(p) = g.platform.as_mut() else {
        return;
    };
    while let Some(vector) = dispatch::take_pending(id) {
        let cpu = p.msi_vcpu(vector);
        p.accept(cpu, vector, conduit_vlapic::Trigger::Edge);
    }
}

/// Whether the current vCPU has an interrupt it could take now (ignoring RFLAGS.IF): after a
/// HLT, and for the scheduler's idle decision.
pub fn interrupt_ready(g: &mut Guest) -> bool {
    drain_pending(g);
    let now = guest_now(g);
    let cpu = g.current;
    g.platform.as_mut().is_some_and(|p| {
        let e = p.lapics[cpu].expire(now);
        p.apply(cpu, e);
        p.lapics[cpu].deliverable().is_some()
    })
}

/// The vector software emulation injects at this entry, if any (the highest deliverable one).
pub fn software_vector(g: &mut Guest) -> Option<u8> {
    let cpu = g.current;
    let p = g.platform.as_mut()?;
    if p.apicv {
        return None;
    }
    p.lapics[cpu].deliverable()
}

/// With APIC virtualization: whether this entry holds virtual-interrupt delivery back with
/// interrupt-window exiting, because a vector waits while the guest cannot take an interrupt
/// (RFLAGS.IF = 0, or an STI / MOV SS shadow: [`conduit_vlapic::Vlapic::hold_virtual_delivery`]).
/// RFLAGS and the interruptibility state are read only when a vector waits.
pub fn hold_virtual_delivery(g: &Guest, v: &mut Current) -> Result<bool, FieldError> {
    let Some(p) = g.platform.as_ref().filter(|p| p.apicv) else {
        return Ok(false);
    };
    if !p.lapics[g.current].hold_virtual_delivery(false) {
        return Ok(false);
    }
    let if_set = v.get(GuestNatural::Rflags)? & RFLAGS_IF != 0;
    let state = Interruptibility(v.get(Guest32::InterruptibilityState)?);
    Ok(p.lapics[g.current].hold_virtual_delivery(if_set && !state.in_shadow()))
}

/// Software emulation injected `vector`: it moves from IRR to ISR.
pub fn acknowledged(g: &mut Guest, vector: u8) {
    let cpu = g.current;
    let taken = g
        .platform
        .as_mut()
        .is_none_or(|p| p.lapics[cpu].acknowledge(vector));
    if !taken {
        log::warn!(
            "guest \"{}\": injected vector {vector:#x} was not pending in its local APIC",
            g.name
        );
    }
}

/// Before every entry of a guest with a platform: pending device vectors go into the local APIC,
/// a due timer fires, the VMCS gets the APIC virtualization state, and the VMX-preemption timer
/// is set to the earlier of the slice's end and the guest's next timer deadline, so a guest timer
/// is on time without waiting for the slice to end.
pub fn before_entry(g: &mut Guest, v: &mut Current) -> Result<(), FieldError> {
    drain_pending(g);
    sync_apic_page(g, v)?;
    let now = guest_now(g);
    let offset = g.vcpu().tsc_offset;
    let shift = g.timer_shift;
    let slice_end = g.vcpu().slice_end;
    let cpu = g.current;
    // Another vCPU's timer due before the slice ends ends it (in host TSC, each vCPU's guest
    // TSC less its offset), so that vCPU is not late by a slice.
    let others = g.other_deadline();
    let Some(p) = g.platform.as_mut() else {
        return Ok(());
    };
    if let Some((bitmap, status)) = p.before_entry(cpu, now) {
        if let Some(bitmap) = bitmap {
            for (field, word) in [
                Control64::EoiExitBitmap0,
                Control64::EoiExitBitmap1,
                Control64::EoiExitBitmap2,
                Control64::EoiExitBitmap3,
            ]
            .into_iter()
            .zip(bitmap)
            {
                v.set(field, word)?;
            }
        }
        v.set(Guest16::InterruptStatus, status)?;
    }
    // The slice ends in host TSC, the guest's deadline is in guest TSC: compare in the guest's.
    let slice_end = others.map_or(slice_end, |o| o.min(slice_end));
    let slice_end = slice_end.wrapping_add(offset);
    let until = p.next_deadline(cpu).map_or(slice_end, |d| d.min(slice_end));
    let ticks = until.saturating_sub(now) >> shift;
    v.set(
        Guest32::PreemptionTimerValue,
        ticks.min(u64::from(u32::MAX)) as u32,
    )?;
    Ok(())
}

/// Under APIC virtualization the CPU virtualizes every access to the page the APIC-access page
/// is mapped at, whatever the guest's APIC mode; but in x2APIC mode, or with the APIC disabled,
/// the xAPIC page is not there (SDM Vol. 3A §11.12.1.2, §11.4.3). So the APIC-access page is in
/// the guest's EPT only while its APIC is in xAPIC mode; otherwise its accesses are EPT
/// violations that the model answers as software emulation does (reads 0, writes dropped).
/// Virtual-interrupt delivery and the TPR shadow do not depend on the mapping.
fn sync_apic_page(g: &mut Guest, v: &mut Current) -> Result<(), FieldError> {
    let Some(p) = g.platform.as_ref() else {
        return Ok(());
    };
    let want = p.apicv && p.lapics[g.current].mode() == ApicMode::XApic;
    if want == p.apic_page_mapped {
        return Ok(());
    }
    let mut frames = conduit_hw::memory::Frames::new(g.mem);
    let changed = if want {
        let page = v.get(Control64::ApicAccessAddress)?;
        let attrs = conduit_paging::Attributes::new(
            conduit_paging::Access::RW,
            conduit_paging::MemoryType::WriteBack,
        );
        g.ept
            .map(&mut frames, LAPIC_GPA, page, 0x1000, attrs)
            .map(|_| ())
    } else {
        g.ept.unmap(&mut frames, LAPIC_GPA, 0x1000).map(|_| ())
    };
    // A mapping the guest's APIC mode no longer allows, or a stale translation of it, would
    // keep the xAPIC page virtualized where it must not be: the guest does not run on.
    let what = if want { "mapping" } else { "unmapping" };
    let result = changed.map_err(|e| format!("EPT {what} of the APIC-access page: {e}"));
    let result = result.and_then(|()| {
        g.invept()
            .map_err(|e| format!("{e} after {what} the APIC-access page"))
    });
    match result {
        Ok(()) => {
            if let Some(p) = g.platform.as_mut() {
                p.apic_page_mapped = want;
            }
        }
        Err(why) => g.stop(why),
    }
    Ok(())
}

/// The VMX-preemption timer expired: the slice is over (or another vCPU's timer is due, which
/// ends it early), or only this vCPU's timer is due (the next entry fires it).
pub fn preempted(g: &Guest) -> Outcome {
    let now = rdtsc();
    let other_due = g.other_deadline().is_some_and(|d| d <= now);
    if g.platform.is_some() && now < g.vcpu().slice_end && !other_due {
        Outcome::Resume
    } else {
        Outcome::Yield
    }
}

/// Writes the VMCS fields of APIC virtualization (SDM Vol. 3C §25.6.8): the virtual-APIC page,
/// the APIC-access page, TPR threshold 0.
pub fn setup_vmcs(g: &Guest, v: &mut Current, apic_access: u64) -> Result<(), FieldError> {
    let Some(p) = g.platform.as_ref() else {
        return Ok(());
    };
    if !p.apicv {
        return Ok(());
    }
    v.set(Control64::VirtualApicAddress, p.apic_page(g.current))?;
    v.set(Control64::ApicAccessAddress, apic_access)?;
    v.set(conduit_vmx::fields::Control32::TprThreshold, 0)?;
    for field in [
        Control64::EoiExitBitmap0,
        Control64::EoiExitBitmap1,
        Control64::EoiExitBitmap2,
        Control64::EoiExitBitmap3,
    ] {
        v.set(field, 0)?;
    }
    v.set(Guest16::InterruptStatus, 0)?;
    Ok(())
}

#[cfg(feature = "selftest")]
impl Guest {
    /// What a VM entry under software emulation does with the platform's interrupts, for the
    /// self-tests' scripted drivers (no vCPU runs): the pending device vectors and the INTx
    /// lines that fired go into the virtual I/O APIC and local APIC, and the highest
    /// deliverable vector is injected (moved from IRR to ISR). Returns it.
    pub fn inject_platform_vector(&mut self) -> Option<u8> {
        drain_pending(self);
        let vector = software_vector(self)?;
        acknowledged(self, vector);
        Some(vector)
    }

    /// What the next entry of any vCPU does with the device vectors marked pending for the
    /// guest (each into the IRR of the local APIC its message names), for the self-tests'
    /// scripted drivers; returns the highest vector in vCPU `vcpu`'s IRR (`None` without a
    /// platform or such a vCPU).
    pub fn drained_irr(&mut self, vcpu: usize) -> Option<u8> {
        drain_pending(self);
        self.platform.as_ref()?.lapics.get(vcpu)?.highest_irr()
    }
}

impl Guest {
    /// Interrupt messages of the guest's platform that reached nobody (IPIs to APIC IDs it does
    /// not own, I/O APIC messages of a mode the platform does not deliver); 0 without a platform.
    pub fn messages_to_nobody(&self) -> u64 {
        self.platform.as_ref().map_or(0, |p| p.dropped)
    }

    /// Whether the guest has a virtual platform (an OS guest).
    pub fn has_platform(&self) -> bool {
        self.platform.is_some()
    }

    /// Before every entry: the platform's interrupt and timer state into the VMCS.
    pub fn before_entry(&mut self, v: &mut Current) -> Result<(), FieldError> {
        if self.platform.is_some() {
            before_entry(self, v)?;
        }
        super::events::before_entry(self, v)
    }

    /// Whether the current vCPU is in HLT with nothing to wake it yet (no interrupt it could
    /// take, no NMI, no timer due), or waits for a start-up IPI.
    pub(super) fn current_waiting(&mut self) -> bool {
        if !self.vcpu().started() {
            return true;
        }
        if !self.vcpu().halted || self.vcpu().events.nmi_pending() {
            return false;
        }
        if self.platform.is_some() {
            return self.vcpu().halted_without_if || !interrupt_ready(self);
        }
        !crate::irq::dispatch::has_pending(self.id())
            && self
                .vcpu()
                .events
                .timer()
                .is_none_or(|(_, left_us)| left_us > 0)
    }

    /// The I/O APIC pin of the UART follows the UART's interrupt output (guests with a platform).
    pub fn sync_uart_line(&mut self) {
        if let Some(p) = self.platform.as_mut() {
            p.set_uart_line(self.uart.irq());
        }
    }

    /// A byte the operator typed at the attached console: into the guest's UART.
    pub fn console_input(&mut self, byte: u8) {
        self.uart.type_byte(byte);
        self.sync_uart_line();
    }

    /// Attaches or detaches the operator's console to the guest's UART; detaching logs what
    /// the guest printed since as lines again.
    pub fn set_console_attached(&mut self, attached: bool) {
        self.uart.attached = attached;
    }

    /// The host TSC value of the next timer deadline of the guest's vCPUs on this CPU, if any:
    /// the earliest of theirs (each local APIC counts in its vCPU's guest TSC, the host's plus
    /// its TSC offset).
    pub fn next_deadline(&self) -> Option<u64> {
        (0..self.vcpus.len())
            .filter(|&i| self.here(i))
            .filter_map(|i| self.vcpu_deadline(i))
            .min()
    }

    /// The host TSC value of vCPU `i`'s next timer deadline, if armed and able to wake it: a vCPU
    /// in HLT with interrupts off ignores its timer (only an NMI or INIT ends that HLT), so its
    /// deadline, never expired, must not end the other vCPUs' slices or the CPU's idle wait.
    fn vcpu_deadline(&self, i: usize) -> Option<u64> {
        let v = &self.vcpus[i];
        if v.halted && v.halted_without_if {
            return None;
        }
        self.platform
            .as_ref()
            .and_then(|p| p.next_deadline(i))
            .map(|d| d.wrapping_sub(self.vcpus[i].tsc_offset))
    }

    /// The earliest timer deadline (host TSC) of the vCPUs other than the current one that take
    /// turns with it on this CPU and could run (not waiting for a start-up IPI).
    fn other_deadline(&self) -> Option<u64> {
        (0..self.vcpus.len())
            .filter(|&i| i != self.current && self.here(i) && self.vcpus[i].started())
            .filter_map(|i| self.vcpu_deadline(i))
            .min()
    }
}
