//! Every CPU: which processors run Conduit and what each does once started (the policy around
//! `conduit_hw::smp`).
//!
//! Numbering: CPU 0 is the BSP, the others follow in MADT order ([`conduit_smp::numbering`]);
//! without a MADT (Bochs with OVMF publishes no ACPI tables), every processor answering a
//! broadcast INIT-SIPI-SIPI is started and numbered in the order it checks in.
//!
//! On each AP, before its check-in ([`ap_init`]): the control task's SYSCALL MSRs (the task may be
//! entered from any CPU), CR4.OSXSAVE and VMXON with its own VMXON region when guests will run,
//! and the hypervisor tick with the BSP's calibration. Then [`ap_run`]: the CPU sleeps (HLT with
//! interrupts on; the time is counted as idle) and runs what it is given: cross-CPU requests in
//! its interrupt handler, and the loop [`run_on_aps`] installs.

use crate::platform::Platform;
use alloc::format;
use alloc::string::String;
use conduit_hw::cpu::VmxInfo;
use conduit_hw::memory::Memory;
use conduit_hw::percpu::{self, CpuState};
use conduit_hw::smp::{self, ApHooks, Plan};
use conduit_smp::numbering;
use core::sync::atomic::{AtomicUsize, Ordering};
use log::{error, info, warn};
use spin::Once;

/// What the APs need from boot: whether and how to turn VMX on.
static VMX: Once<Option<VmxInfo>> = Once::new();
/// The memory manager (each AP's VMXON region comes from it).
static MEM: Once<&'static Memory> = Once::new();
/// The loop every AP runs once installed ([`run_on_aps`]), as a function address (0: none).
static RUN: AtomicUsize = AtomicUsize::new(0);

/// Starts every other CPU: the MADT's, and `extra` entries after them (the test image's
/// processors that do not exist). `vmx`: the BSP's VMX capabilities when guests will run (each AP
/// then turns VMX on too). Logs one line per CPU and the summary `smp: N of M CPUs online`.
pub fn start(
    platform: &Platform,
    extra: &[numbering::MadtCpu],
    mem: &'static Memory,
    vmx: Option<&VmxInfo>,
) {
    VMX.call_once(|| vmx.copied());
    MEM.call_once(|| mem);
    let bsp = percpu::current();
    let bsp_apic = bsp.apic_id();
    let mut madt = platform.cpus.clone();
    madt.extend_from_slice(extra);
    for e in extra {
        info!("smp: test: a MADT entry for APIC ID {} added", e.apic_id);
    }
    let numbering = numbering::number(&madt, bsp_apic, conduit_hw::gdt::MAX_CPUS);
    for (apic_id, why) in &numbering.skipped {
        info!("smp: MADT processor with APIC ID {apic_id} not started: {why}");
    }
    if !madt.is_empty() && !numbering.bsp_listed {
        warn!("smp: the MADT does not list the BSP (APIC ID {bsp_apic}); it is cpu 0 anyway");
    }
    let plan = if madt.is_empty() {
        info!("smp: no MADT: the APs are found by a broadcast INIT-SIPI-SIPI");
        Plan::Broadcast
    } else {
        Plan::Madt(&numbering.apic_ids)
    };
    info!(
        "cpu 0 (APIC ID {bsp_apic}): online (the BSP){}",
        describe_vmx(vmx.is_some())
    );
    let hooks = ApHooks {
        init: ap_init,
        run: ap_run,
    };
    match smp::start_aps(mem, plan, hooks) {
        Ok(s) => info!(
            "smp: {} of {} CPUs online{}",
            s.online,
            match plan {
                Plan::Madt(ids) => ids.len(),
                Plan::Broadcast => s.numbered,
            },
            describe_vmx(vmx.is_some())
        ),
        Err(e) => error!(
            "smp: {e}: only the BSP runs; smp: 1 of {} CPUs online",
            numbering.apic_ids.len()
        ),
    }
}

fn describe_vmx(on: bool) -> &'static str {
    if on {
        ""
    } else {
        " (VMX not needed: no guest)"
    }
}

/// Per-AP set-up, on the AP, before it checks in.
fn ap_init(cpu: usize) {
    let me = percpu::current();
    crate::control::init_syscall();
    let tick = match crate::irq::start_ap_tick() {
        Some(count) => format!(
            "tick every {} ms (initial count {count})",
            crate::irq::TICK_MS
        ),
        None => String::from("no tick (the BSP's timer is not calibrated)"),
    };
    let vmx = match VMX.get().copied().flatten() {
        None => String::new(),
        Some(info) => format!("; {}", vmx_on(&info)),
    };
    info!("cpu {cpu} (APIC ID {}): online, {tick}{vmx}", me.apic_id());
}

/// CR4.OSXSAVE and VMXON on this AP, in words for its log line.
fn vmx_on(bsp: &VmxInfo) -> String {
    if let Err(e) = conduit_hw::xsave::enable() {
        return format!("VMX not turned on: XSAVE: {e}");
    }
    // CPUID.01H:ECX.VMX (bit 5), on this CPU: a machine may mix kinds of processors.
    if core::arch::x86_64::__cpuid(1).ecx & (1 << 5) == 0 {
        return String::from("VMX not turned on: CPUID reports no VMX on this CPU");
    }
    let mut info = *bsp;
    // This CPU's own IA32_FEATURE_CONTROL (the firmware sets each CPU's).
    // SAFETY: CPUID reports VMX on this CPU (checked above), so IA32_FEATURE_CONTROL exists
    // (SDM Vol. 4, Table 2-2).
    info.feature_control = unsafe { conduit_hw::msr::read(0x3a) };
    let Some(mem) = MEM.get() else {
        return String::from("VMX not turned on: no memory manager");
    };
    match conduit_hw::vmx::enable(&info, mem) {
        Ok(_) => String::from("VMXON done"),
        Err(e) => format!("VMX not turned on: {e}"),
    }
}

/// An AP's life after its check-in: sleep until an interrupt, count the sleep as idle, and run
/// the loop [`run_on_aps`] installs once there is one.
fn ap_run(cpu: usize) -> ! {
    let me = percpu::current();
    loop {
        let run = RUN.load(Ordering::Acquire);
        if run != 0 {
            // SAFETY: only `run_on_aps` stores a non-zero value, the address of a
            // `fn(usize) -> !`.
            let f: fn(usize) -> ! = unsafe { core::mem::transmute(run) };
            f(cpu);
        }
        // A request whose IPI was lost is served here, at the latest one tick late.
        smp::serve_own_mailbox();
        let t0 = conduit_hw::rdtsc();
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
        me.add_idle(conduit_hw::rdtsc().wrapping_sub(t0));
    }
}

/// Makes every AP (now and later) leave its idle loop for `f(cpu)`, which never returns: the
/// per-CPU scheduler's entry. Idle APs are woken by IPI; returns how many were.
pub fn run_on_aps(f: fn(usize) -> !) -> usize {
    RUN.store(f as usize, Ordering::Release);
    let mut woken = 0;
    let me = percpu::current().index();
    for c in percpu::all().filter(|c| c.index() != me && c.state() == CpuState::Online) {
        match smp::wake(c.index()) {
            Ok(()) => woken += 1,
            Err(e) => warn!("cpu {}: wake-up: {e}", c.index()),
        }
    }
    woken
}
