//! Programs a guest's VMCS: controls adjusted to this CPU, host state, guest state for its entry
//! mode, EPT and VPID (SDM Vol. 3C, "VM-Execution Control Fields", "Guest-State Area").

use super::layout::{GDT_GPA, TSS_GPA, boot_selectors};
#[cfg(feature = "selftest")]
use super::spec::Break;
use super::spec::{Entry, GuestSpec};
use super::{CreateError, Guest, VmxHost};
use alloc::format;
use conduit_bootproto::multiboot;
use conduit_hw::vmx::{self, vmcs::Current};
use conduit_vmx::controls::{
    AllowedControls, ControlRequest, EntryControls, ExitControls, PrimaryControls,
    SecondaryControls, VmxControls,
};
use conduit_vmx::cr::FixedBits;
use conduit_vmx::fields::{Control16, Control32, Control64, ControlNatural, Guest32};
use conduit_vmx::guest_state::{AccessRights, CheckContext, DescriptorTable, GuestState, Segment};

const CR4_VMXE: u64 = 1 << 13;
const CR0_NE: u64 = 1 << 5;
/// RSI's index in `GuestRegs::gpr` (the SDM's register numbering).
const RSI: usize = 6;
const RAX: usize = 0;
const RBX: usize = 3;
const CR0_PE: u64 = 1;
/// The flat selectors a Multiboot kernel starts with (no GDT backs them: the specification
/// leaves GDTR undefined until the kernel loads its own).
const MULTIBOOT_CS: u16 = 0x08;
const MULTIBOOT_DS: u16 = 0x10;

pub(super) fn setup(
    host: &mut VmxHost,
    guest: &mut Guest,
    spec: &GuestSpec,
) -> Result<(), CreateError> {
    let vmcs_err = |e: vmx::vmcs::FieldError| CreateError::Vmcs(format!("{e}"));
    let selectors = boot_selectors(spec.entry);
    let long = selectors.is_some();
    let mut request = ControlRequest::conduit(long);
    // Keep the rest of a time slice across exits that resume the same guest (SDM "VM-Exit
    // Controls", "save VMX-preemption timer value"); without it every exit restarts the slice.
    request.exit.optional |= ExitControls::SAVE_PREEMPTION_TIMER;
    // A guest's WRMSR to IA32_TSC moves its TSC by the offset (SDM Vol. 3C §26.6.5).
    request.primary.optional |= PrimaryControls::USE_TSC_OFFSETTING;
    // DR7 and IA32_DEBUGCTL are the guest's own: saved at exit, loaded at entry (docs/cpu-state.md).
    request.exit.required |= ExitControls::SAVE_DEBUG_CONTROLS;
    request.entry.required |= EntryControls::LOAD_DEBUG_CONTROLS;
    let os = spec.has_platform();
    let compute = |r: &ControlRequest| {
        VmxControls::compute(&host.vmx.msrs, r)
            .map_err(|e| CreateError::Vmcs(format!("VM-execution controls: {e}")))
    };
    // Test configurations may ask for software emulation where the CPU could do better.
    #[cfg(feature = "selftest")]
    let software_forced = spec.test_apic_software;
    #[cfg(not(feature = "selftest"))]
    let software_forced = false;
    let controls = if os {
        // APIC virtualization where the CPU has all of it; else software emulation, which
        // must keep the guest's CR8 away from the physical TPR.
        let mut apicv = request;
        apicv.primary.optional |= PrimaryControls::USE_TPR_SHADOW;
        apicv.secondary.optional |= SecondaryControls::VIRTUALIZE_APIC_ACCESSES
            | SecondaryControls::APIC_REGISTER_VIRTUALIZATION
            | SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY;
        let c = compute(&apicv)?;
        if !software_forced
            && c.primary.contains(PrimaryControls::USE_TPR_SHADOW)
            && c.secondary.contains(APICV_SECONDARY)
        {
            c
        } else {
            request.primary.required |=
                PrimaryControls::CR8_LOAD_EXITING | PrimaryControls::CR8_STORE_EXITING;
            compute(&request)?
        }
    } else {
        compute(&request)?
    };
    // The platform is the guest's: built with its BSP, vCPU 0, for all its vCPUs (a restart
    // resets it: `Guest::rebuild`).
    if os && guest.current == 0 && guest.platform.is_none() {
        let apicv = controls.secondary.contains(APICV_SECONDARY);
        let tsc_hz = host.tsc.khz() * 1000;
        let n = guest.vcpus.len();
        let p = super::vplatform::VirtualPlatform::new(guest.mem, n, apicv, tsc_hz)
            .map_err(|e| CreateError::Vmcs(format!("{e}")))?;
        guest.platform = Some(alloc::boxed::Box::new(p));
        log::info!(
            "guest \"{}\": local APIC: {}",
            guest.name,
            match (apicv, software_forced) {
                (true, _) => "APIC virtualization",
                (false, false) => "software emulation (the CPU lacks APIC virtualization)",
                (false, true) => "software emulation (test_apic = \"software\")",
            }
        );
    }
    let mut v = guest
        .load_vmcs()
        .map_err(|e| CreateError::Vmcs(format!("VMPTRLD: {e}")))?;
    write_controls(host, guest, &controls, &mut v).map_err(vmcs_err)?;
    guest.vcpu_mut().msr_state = Some(super::msr_exits::msr_state(guest, controls.secondary));
    if guest.platform.as_ref().is_some_and(|p| p.apicv) {
        map_apic_access(guest, host.apic_access)?;
    }
    super::vplatform_exits::setup_vmcs(guest, &mut v, host.apic_access.0).map_err(vmcs_err)?;
    super::msrs::write_vmcs(host, guest, &mut v).map_err(vmcs_err)?;
    // Interrupt-window exiting is turned on only while a virtual interrupt waits (events.rs).
    let window = AllowedControls::from_msrs(&host.vmx.msrs)
        .primary
        .may_be_one
        & PrimaryControls::INTERRUPT_WINDOW_EXITING.bits()
        != 0;
    guest.vcpu_mut().events = super::events::Events::new(controls.primary.bits(), window, host.tsc);
    vmx::write_host_state(&mut v).map_err(vmcs_err)?;

    let state = match (spec.entry, selectors) {
        (Entry::Long64 { rip } | Entry::Linux { rip, .. }, Some(sel)) => {
            // The boot page tables are the guest's: written once, with its BSP (the other vCPUs
            // start at a start-up IPI, not here).
            let cr3 = match (guest.current, guest.boot_cr3) {
                (1.., Some(cr3)) => cr3,
                _ => guest
                    .memory
                    .build_long_mode(sel)
                    .map_err(CreateError::Layout)?,
            };
            guest.boot_cr3 = Some(cr3);
            let mut s = GuestState::long_mode_flat(rip, guest.memory.size, cr3);
            s.gdtr = DescriptorTable {
                base: GDT_GPA,
                limit: u32::from(sel.gdt_limit()),
            };
            s.cs.selector = sel.cs;
            for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
                seg.selector = sel.ds;
            }
            s.tr.selector = sel.tr;
            s.tr.base = TSS_GPA;
            if let Entry::Linux { zero_page, .. } = spec.entry {
                // The 64-bit boot protocol: RSI holds the zero page's address.
                guest.vcpu_mut().regs.gpr[RSI] = zero_page;
            }
            s
        }
        (Entry::Real16 { cs, ip }, _) => {
            let mut s = GuestState::real_mode(cs, ip);
            s.rsp = 0x7000;
            s
        }
        (Entry::Multiboot { eip, info }, _) => {
            // Multiboot 0.6.96 §3.2: flat 4 GiB 32-bit segments, CR0.PE = 1, CR0.PG = 0, IF = 0;
            // GDTR and IDTR undefined for the kernel (it loads its own), ESP undefined.
            let flat = AccessRights::S | AccessRights::P | AccessRights::DB | AccessRights::G;
            let data = Segment::new(MULTIBOOT_DS, 0, 0xffff_ffff, 0x3 | flat);
            let mut s = GuestState::real_mode(0, 0);
            s.cr0 |= CR0_PE;
            s.cs = Segment::new(MULTIBOOT_CS, 0, 0xffff_ffff, 0xb | flat);
            (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
            s.rip = eip;
            guest.vcpu_mut().regs.gpr[RAX] = u64::from(multiboot::BOOTLOADER_MAGIC);
            guest.vcpu_mut().regs.gpr[RBX] = info;
            s
        }
        (entry, None) => {
            return Err(CreateError::Vmcs(format!("{entry:?} has no boot GDT")));
        }
    };
    #[cfg(feature = "selftest")]
    let state = match spec.test_break {
        Some(b) => broken(state, b),
        None => state,
    };
    state.write_to(&mut v).map_err(vmcs_err)?;

    // CR0/CR4: the bits VMX fixes are owned by the hypervisor (guest/host mask); the guest reads
    // its own view from the shadows, with CR4.VMXE (and, in real mode, CR0.NE) hidden.
    // A guest with a platform may leave paging and protected mode itself (Linux's real-mode
    // restart path), so PE and PG are its own there too (unrestricted guest).
    let unrestricted = !long || guest.platform.is_some();
    let cr0_fixed = FixedBits::guest_cr0(&host.vmx.msrs, unrestricted);
    let cr4_fixed = FixedBits::cr4(&host.vmx.msrs);
    guest.vcpu_mut().cr_fixed = (cr0_fixed, cr4_fixed);
    v.set(ControlNatural::Cr0GuestHostMask, cr0_fixed.fixed_mask())
        .map_err(vmcs_err)?;
    v.set(
        ControlNatural::Cr0ReadShadow,
        if long { state.cr0 } else { state.cr0 & !CR0_NE },
    )
    .map_err(vmcs_err)?;
    v.set(
        ControlNatural::Cr4GuestHostMask,
        cr4_fixed.fixed_mask() | conduit_vmx::cr::GUEST_CR4_REFUSED,
    )
    .map_err(vmcs_err)?;
    v.set(ControlNatural::Cr4ReadShadow, state.cr4 & !CR4_VMXE)
        .map_err(vmcs_err)?;

    // Check what the VMCS now holds, exactly as VM entry would, before ever entering.
    let written = GuestState::read_from(&mut v).map_err(vmcs_err)?;
    let (phys_bits, lin_bits) = address_widths();
    let ctx = CheckContext::new(&host.vmx.msrs, &controls).with_address_widths(phys_bits, lin_bits);
    written.check(&ctx).map_err(CreateError::GuestState)?;

    vmx::invvpid(&host.vmx.caps, guest.vcpu().vpid)
        .map_err(|e| CreateError::Vmcs(format!("INVVPID: {e}")))?;
    vmx::invept(&host.vmx.caps, guest.eptp)
        .map_err(|e| CreateError::Vmcs(format!("INVEPT: {e}")))?;
    Ok(())
}

/// Starts the current vCPU at a start-up IPI with `vector`: the state of a processor after INIT
/// (SDM Vol. 3A §9.1.1, Table 9-1: real mode, CR0 with only ET among the bits the guest sees,
/// EFER 0) at CS:IP = (`vector` << 8):0000, that is, at physical address `vector` × 4096 (SDM
/// Vol. 3A §11.6.1 "Start-Up", §9.4.4.1). The VM-entry control "IA-32e mode guest" is cleared
/// (the guest may enter long mode again itself: `cr_exits.rs`). Needs unrestricted guest, which
/// every guest with a platform has.
pub(super) fn start_up(
    guest: &mut Guest,
    v: &mut Current,
    vector: u8,
) -> Result<(), vmx::vmcs::FieldError> {
    let s = GuestState::real_mode(u16::from(vector) << 8, 0);
    s.write_to(v)?;
    let entry = EntryControls::from_bits_retain(v.get(Control32::EntryControls)?);
    v.set(
        Control32::EntryControls,
        (entry - EntryControls::IA32E_MODE_GUEST).bits(),
    )?;
    v.set(ControlNatural::Cr0ReadShadow, s.cr0 & !CR0_NE)?;
    v.set(ControlNatural::Cr4ReadShadow, s.cr4 & !CR4_VMXE)?;
    v.set(Control32::EntryInterruptionInfo, 0)?;
    guest.vcpu_mut().regs = vmx::run::GuestRegs::default();
    Ok(())
}

/// The secondary controls of APIC virtualization (SDM Vol. 3C §25.6.2, ch. 30).
const APICV_SECONDARY: SecondaryControls = SecondaryControls::VIRTUALIZE_APIC_ACCESSES
    .union(SecondaryControls::APIC_REGISTER_VIRTUALIZATION)
    .union(SecondaryControls::VIRTUAL_INTERRUPT_DELIVERY);

/// Maps the guest's local APIC page to the APIC-access page, so the CPU virtualizes accesses to
/// it (SDM Vol. 3C §30.4: an access is an APIC access when its guest-physical address translates
/// to the APIC-access address). Kept across restarts.
fn map_apic_access(
    guest: &mut Guest,
    page: conduit_hw::memory::PhysAddr,
) -> Result<(), CreateError> {
    use super::vplatform::LAPIC_GPA;
    if guest.ept.translate(LAPIC_GPA).is_ok() {
        return Ok(());
    }
    let attrs = conduit_paging::Attributes::new(
        conduit_paging::Access::RW,
        conduit_paging::MemoryType::WriteBack,
    );
    let mut frames = conduit_hw::memory::Frames::new(guest.mem);
    guest
        .ept
        .map(&mut frames, LAPIC_GPA, page.0, 0x1000, attrs)
        .map(|_| ())
        .map_err(|e| CreateError::Vmcs(format!("EPT mapping of the APIC-access page: {e}")))
}

fn write_controls(
    host: &VmxHost,
    guest: &Guest,
    c: &VmxControls,
    v: &mut Current,
) -> Result<(), vmx::vmcs::FieldError> {
    v.set(Control32::PinBasedControls, c.pin.bits())?;
    v.set(Control32::PrimaryProcessorControls, c.primary.bits())?;
    v.set(Control32::SecondaryProcessorControls, c.secondary.bits())?;
    v.set(Control32::ExitControls, c.exit.bits())?;
    v.set(Control32::EntryControls, c.entry.bits())?;
    v.set(Control32::ExceptionBitmap, 0)?;
    v.set(Control32::PageFaultErrorCodeMask, 0)?;
    v.set(Control32::PageFaultErrorCodeMatch, 0)?;
    v.set(Control32::Cr3TargetCount, 0)?;
    v.set(Control32::EntryInterruptionInfo, 0)?;
    v.set(Control64::IoBitmapA, host.io_bitmap_a.0)?;
    v.set(Control64::IoBitmapB, host.io_bitmap_b.0)?;
    v.set(Control64::MsrBitmap, host.msr_bitmap.0)?;
    v.set(Control64::EptPointer, guest.eptp)?;
    v.set(Control64::TscOffset, 0)?;
    v.set(Control16::VirtualProcessorId, guest.vcpu().vpid)?;
    v.set(Guest32::PreemptionTimerValue, guest.slice_ticks)?;
    Ok(())
}

/// Deliberately corrupts the initial state (test configurations, feature `selftest` only).
#[cfg(feature = "selftest")]
fn broken(mut s: GuestState, b: Break) -> GuestState {
    match b {
        Break::Cr0PgWithoutPe => s.cr0 = (s.cr0 | (1 << 31)) & !1,
        Break::RflagsReservedBitClear => s.rflags &= !2,
        Break::TrUnusable => s.tr.access_rights |= 1 << 16,
    }
    s
}

/// MAXPHYADDR and the linear-address width (CPUID.80000008H:EAX).
pub(super) fn address_widths() -> (u8, u8) {
    raw_cpuid::CpuId::new()
        .get_processor_capacity_feature_info()
        .map_or((36, 48), |c| {
            (c.physical_address_bits(), c.linear_address_bits())
        })
}
