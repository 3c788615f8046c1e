//! Starting the application processors (APs) and cross-CPU requests.
//!
//! Start-up ([`start_aps`], Intel SDM Vol. 3A §9.4 "Multiple-Processor (MP) Initialization",
//! the INIT-SIPI-SIPI sequence of §9.4.4.1): the trampoline ([`trampoline`]) is installed in four
//! pages of conventional memory below 1 MiB taken from the firmware's memory map; each AP gets a
//! start slot with a kernel stack and trap stacks; then, per CPU of the MADT (or, without a MADT,
//! for all at once by the all-excluding-self shorthand, MultiProcessor Specification 1.4
//! §B.4): INIT, 10 ms, STARTUP, 200 µs, a second STARTUP if the AP has not arrived, and a
//! deadline for it to check in. An AP that misses it is reported, marked failed and sent INIT
//! again (back to wait-for-SIPI); if it arrives later anyway it finds itself given up and halts.
//!
//! On the AP ([`ap_entry`]): the kernel's CR3 and PAT, its own GDT and TSS ([`gdt::init_cpu`]),
//! the shared IDT, its local APIC in the BSP's mode ([`apic::init_ap`]); then the kernel's
//! per-CPU set-up hook, the check-in, and the kernel's loop for this CPU (which never returns).
//!
//! Cross-CPU requests ([`call`]): a mailbox per CPU and the [`apic::vectors::CALL`] IPI.

pub mod call;
mod mtrrs;
mod stacks;
mod trampoline;

pub use call::{
    CallError, call_on, flush_tlb_everywhere, lock_serving, on_call_ipi, serve_own_mailbox, wake,
    with_interrupts,
};

use crate::apic::{self, Ipi, IpiError, IpiTarget};
use crate::gdt::{self, CpuStacks, MAX_CPUS};
use crate::memory::{ClaimError, Memory, PhysWindow, mmio};
use crate::percpu::{self, CpuState};
use crate::{idt, msr, time};
use alloc::vec::Vec;
use conduit_smp::mtrr::Mtrr;
use conduit_smp::trampoline::{self as layout, MAX_SLOTS, PAGE, PAGES, Params, TrampolineError};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use log::{info, warn};
use spin::Once;
use stacks::{BLOCK, free_blocks, map_block};
use x86_64::registers::control::{Cr0, Cr3, Cr4};

/// Each AP's kernel stack (the BSP's is the loader's, of the same size).
pub const AP_STACK: usize = 256 * 1024;
/// How long an AP of the MADT has to check in after its STARTUP IPIs.
pub const CHECK_IN_MS: u64 = 500;
/// Without a MADT: how long to wait for the next AP to arrive after the broadcast (and after
/// each arrival) before concluding that there are no more.
pub const BROADCAST_MS: u64 = 100;
const IA32_PAT: u32 = 0x277;
const IA32_EFER: u32 = 0xc000_0080;
/// EFER.LMA is set by the processor, not written (SDM Vol. 3A §2.2.1).
const EFER_LMA: u64 = 1 << 10;
/// CR4 bits the trampoline leaves clear: VMXE and OSXSAVE (set by `vmx` and `xsave` on each CPU
/// when needed) and PCIDE (only settable in IA-32e mode, SDM Vol. 3A §4.10.1).
const CR4_LATER: u64 = (1 << 13) | (1 << 17) | (1 << 18);

/// Which APs to start.
#[derive(Debug, Clone, Copy)]
pub enum Plan<'a> {
    /// The MADT's CPUs by APIC ID, in CPU number order (`[0]` is the BSP).
    Madt(&'a [u32]),
    /// No MADT: every CPU that answers a broadcast INIT-SIPI-SIPI, numbered in the order they
    /// check in (at most [`MAX_CPUS`] in all).
    Broadcast,
}

/// What the kernel runs on each AP: `init` (per-CPU set-up: MSRs, VMXON, the tick) before the
/// check-in, then `run`, the CPU's loop.
#[derive(Debug, Clone, Copy)]
pub struct ApHooks {
    pub init: fn(cpu: usize),
    pub run: fn(cpu: usize) -> !,
}

/// Why no AP was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpError {
    /// No four free pages of conventional memory below 1 MiB were reserved at boot
    /// ([`reserve_low_pages`]).
    NoLowMemory,
    Trampoline(TrampolineError),
    /// No frames for the APs' stacks.
    OutOfMemory,
    /// The APs' stacks could not be mapped.
    Stacks(mmio::MmioError),
    /// The local APIC is not set up.
    NoApic,
}

impl core::fmt::Display for SmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoLowMemory => f.write_str(
                "the memory map has no four free pages of conventional memory below 1 MiB for \
                 the start code",
            ),
            Self::Trampoline(e) => write!(f, "start code: {e}"),
            Self::OutOfMemory => f.write_str("no memory for the APs' stacks"),
            Self::Stacks(e) => write!(f, "mapping the APs' stacks: {e}"),
            Self::NoApic => f.write_str("the local APIC is not set up"),
        }
    }
}

/// What the APs read when they arrive.
struct Start {
    pat: u64,
    hooks: ApHooks,
    broadcast: bool,
    /// Start slot -> virtual base of its block's stacks ([`map_block`]).
    blocks: [AtomicU64; MAX_SLOTS],
    /// Broadcast: the next CPU number to hand out.
    next_index: AtomicUsize,
    /// The BSP's IA32_MTRRCAP and MTRR values, which every AP takes where its own differ (none when
    /// CPUID reports no MTRRs).
    mtrrs: Option<(u64, Vec<(Mtrr, u64)>)>,
}

static START: Once<Start> = Once::new();

/// The trampoline in place: its base and the physical window to reach it.
struct Installed {
    base: u64,
    window: PhysWindow,
}

impl Installed {
    fn data(&self, at: usize) -> *mut u8 {
        self.window.virt(self.base + (layout::DATA + at) as u64)
    }

    /// Slots the APs took so far.
    fn slots_taken(&self) -> u32 {
        // SAFETY: the trampoline page is ours (claimed) and mapped; the counter is aligned.
        unsafe { core::ptr::read_volatile(self.data(layout::off::NEXT_SLOT).cast::<u32>()) }
    }

    /// Closes the slot counter: an AP that runs the start code from now on finds no slot and
    /// halts in it. Returns how many slots were taken before (atomically: none can be taken
    /// between the read and the close).
    fn close_slots(&self) -> usize {
        let counter = self.data(layout::off::NEXT_SLOT).cast::<u32>();
        // SAFETY: the counter is an aligned u32 in the claimed, mapped trampoline page; the APs
        // only ever change it with `lock xadd`, so atomic access from here is sound.
        let counter = unsafe { AtomicU32::from_ptr(counter) };
        counter.swap(MAX_SLOTS as u32, Ordering::AcqRel) as usize
    }

    /// The APs that halted in the start code, as far as it recorded them.
    fn parked(&self) -> layout::Parked {
        let word = |at: usize| {
            // SAFETY: as above; `at` is an aligned u32 inside the data block (PARK_NEXT, or one
            // of the MAX_PARKED records after PARKED).
            unsafe { core::ptr::read_volatile(self.data(at).cast::<u32>()) }
        };
        let records: [u32; layout::MAX_PARKED] =
            core::array::from_fn(|i| word(layout::off::PARKED + 4 * i));
        layout::parked(word(layout::off::PARK_NEXT), &records)
    }

    fn set_stack(&self, slot: usize, top: u64) {
        // SAFETY: as above; slot < MAX_SLOTS, so the entry is inside the data block.
        unsafe {
            core::ptr::write_volatile(self.data(layout::off::STACKS + 8 * slot).cast::<u64>(), top)
        }
    }
}

/// The trampoline's pages, once reserved.
static LOW_PAGES: Once<Option<u64>> = Once::new();

/// Reserves the trampoline's four pages below 1 MiB from the memory map's free conventional
/// memory; must run right after the frame allocator is built, before anything else allocates
/// (it hands out low frames first). A usable range the allocator does not track (its table of
/// regions is full) is never handed out by it, so it is taken as it is. Returns the base.
pub fn reserve_low_pages(mem: &Memory) -> Option<u64> {
    *LOW_PAGES.call_once(|| {
        let usable = mem.map().iter().filter(|e| {
            e.kind == bootloader_api::info::MemoryRegionKind::Usable && e.start < 0x10_0000
        });
        for e in usable {
            let Some(base) = layout::choose([(e.start, e.end.min(0x10_0000))]) else {
                continue;
            };
            match mem.frames.lock().claim(base, base + PAGES * PAGE) {
                Ok(()) | Err(ClaimError::NotUsable) => return Some(base),
                Err(_) => continue,
            }
        }
        None
    })
}

/// Installs the start code with `published` stacks in its slots; `tops` (every AP stack, the
/// ones published later included) are checked to lie where the temporary tables reach them.
fn install(mem: &Memory, tops: &[u64], published: &[u64]) -> Result<Installed, SmpError> {
    let base = LOW_PAGES
        .get()
        .copied()
        .flatten()
        .ok_or(SmpError::NoLowMemory)?;
    let window = PhysWindow::new(mem, true);
    let (kernel_pml4, flags) = Cr3::read_raw();
    let kernel_cr3 = kernel_pml4.start_address().as_u64() | u64::from(flags);
    // SAFETY: EFER exists on every x86-64 CPU.
    let efer = unsafe { msr::read(IA32_EFER) } & !EFER_LMA;
    let params = Params {
        base,
        cr0: Cr0::read_raw(),
        cr4: Cr4::read_raw() & !CR4_LATER,
        efer,
        entry: ap_entry as *const () as u64,
        kernel_cr3,
        stacks: published,
    };
    let mut used = alloc::vec![params.entry];
    used.extend_from_slice(tops);
    layout::check_kernel_addresses(&used).map_err(SmpError::Trampoline)?;
    let page = |n: u64| window.virt(base + n * PAGE);
    // `reserve_low_pages` claimed the four pages from the frame allocator before anything else
    // allocated, or found them usable but outside the allocator's table (which then never hands
    // them out).
    // SAFETY: so the pages are the trampoline's alone; each is 4 KiB, mapped through the window.
    let (code_page, pml4, pdpt, pd) = unsafe {
        (
            &mut *page(0).cast::<[u8; PAGE as usize]>(),
            &mut *page(1).cast::<[u64; 512]>(),
            &mut *page(2).cast::<[u64; 512]>(),
            &mut *page(3).cast::<[u64; 512]>(),
        )
    };
    layout::patch(code_page, trampoline::code(), &params).map_err(SmpError::Trampoline)?;
    // SAFETY: the kernel's PML4, mapped through the window, is read (copied) only.
    let kernel_top = unsafe {
        &*window
            .virt(kernel_pml4.start_address().as_u64())
            .cast::<[u64; 512]>()
    };
    pml4.copy_from_slice(kernel_top);
    layout::identity_tables(base, pml4, pdpt, pd).map_err(SmpError::Trampoline)?;
    Ok(Installed { base, window })
}

/// The guard page below each start slot's kernel stack (slot, virtual address), for the slots
/// whose stacks are in use.
#[cfg(feature = "selftest")]
pub fn kernel_stack_guards() -> Vec<(usize, u64)> {
    let Some(start) = START.get() else {
        return Vec::new();
    };
    start
        .blocks
        .iter()
        .enumerate()
        .filter_map(|(slot, b)| match b.load(Ordering::Acquire) {
            0 => None,
            // The trap stacks and their guard pages come first.
            base => Some((slot, base + mmio::stacks_span(&stacks::BLOCK_STACKS[..4]))),
        })
        .collect()
}

/// The outcome of [`start_aps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// CPUs online, the BSP included.
    pub online: usize,
    /// CPUs numbered (online or failed).
    pub numbered: usize,
    /// Physical address of the start code.
    pub trampoline: u64,
}

/// Starts the APs of `plan` and waits for each to check in (or miss its deadline). The BSP must
/// have loaded its tables, set its local APIC up and measured the TSC.
pub fn start_aps(
    mem: &'static Memory,
    plan: Plan<'_>,
    hooks: ApHooks,
) -> Result<Started, SmpError> {
    if !apic::ready() {
        return Err(SmpError::NoApic);
    }
    let aps = match plan {
        Plan::Madt(ids) => ids.len().saturating_sub(1).min(MAX_CPUS - 1),
        Plan::Broadcast => MAX_CPUS - 1,
    };
    let mut tops = alloc::vec::Vec::with_capacity(aps);
    let start = START.call_once(|| Start {
        // SAFETY: IA32_PAT exists on every x86-64 CPU.
        pat: unsafe { msr::read(IA32_PAT) },
        hooks,
        broadcast: matches!(plan, Plan::Broadcast),
        blocks: [const { AtomicU64::new(0) }; MAX_SLOTS],
        next_index: AtomicUsize::new(1),
        mtrrs: mtrrs::read(),
    });
    let mut blocks = Vec::with_capacity(aps);
    for slot in start.blocks.iter().take(aps) {
        let block = map_block(mem)?;
        slot.store(block.virt, Ordering::Release);
        tops.push(block.top());
        blocks.push(block);
    }
    // Madt: slots are handed out one AP at a time; their stacks are published one by one below.
    let published: &[u64] = match plan {
        Plan::Madt(_) => &[],
        Plan::Broadcast => &tops,
    };
    let tramp = install(mem, &tops, published)?;
    let vector = layout::sipi_vector(tramp.base).map_err(SmpError::Trampoline)?;
    info!(
        "smp: start code at {:#x} (STARTUP vector {vector:#04x}), {} KiB of stacks per AP, \
         each stack above a guard page",
        tramp.base,
        BLOCK / 1024
    );
    match plan {
        Plan::Madt(ids) => {
            for (i, &apic_id) in ids.iter().enumerate().skip(1).take(aps) {
                let slot = tramp.slots_taken() as usize;
                if slot >= aps {
                    warn!("smp: no start slot left for cpu {i} (APIC ID {apic_id})");
                    break;
                }
                tramp.set_stack(slot, tops[slot]);
                let cpu = percpu::add(i, apic_id);
                if let Err(why) = start_one(&tramp, IpiTarget::Apic(apic_id), vector, cpu) {
                    give_up(cpu, why);
                }
            }
        }
        Plan::Broadcast => {
            if let Err(e) = init_sipi_sipi(&tramp, IpiTarget::AllButSelf, vector, 0) {
                warn!("smp: broadcast INIT-SIPI-SIPI: {e}");
            }
            // Every AP that took a slot gets its deadline; stop when none arrives any more.
            let mut seen = 0;
            loop {
                let arrived =
                    wait_serving(BROADCAST_MS, || tramp.slots_taken() > seen && all_settled());
                let now = tramp.slots_taken();
                if !arrived || now == seen {
                    break;
                }
                seen = now;
            }
            for cpu in percpu::all().filter(|c| c.state() == CpuState::Starting) {
                give_up(cpu, StartError::Silent);
            }
            // The blocks of the slots nobody took go back (their stacks withdrawn first); the
            // counter is closed first, so that an AP arriving late cannot take one of them.
            let taken = tramp.close_slots().min(aps);
            for (slot, block) in start.blocks.iter().enumerate().take(aps).skip(taken) {
                tramp.set_stack(slot, 0);
                block.store(0, Ordering::Release);
            }
            if taken < aps {
                free_blocks(mem, &blocks[taken..]);
            }
        }
    }
    park_halted(&tramp);
    let numbered = percpu::count();
    let online = percpu::all()
        .filter(|c| c.state() == CpuState::Online)
        .count();
    Ok(Started {
        online,
        numbered,
        trampoline: tramp.base,
    })
}

/// Sends INIT to the APs that halted in the start code (no slot or no stack: beyond the CPUs
/// started): halted there, they have the real-mode interrupt table, and an NMI would shut them
/// down (a triple fault resets the machine); in wait-for-SIPI they ignore it.
fn park_halted(tramp: &Installed) {
    let parked = tramp.parked();
    for &apic_id in &parked.apic_ids {
        match apic::send_ipi(IpiTarget::Apic(apic_id), Ipi::Init) {
            Ok(()) => info!("smp: APIC ID {apic_id}: no start slot; parked by INIT"),
            Err(e) => warn!("smp: APIC ID {apic_id}: no start slot; INIT to park it: {e}"),
        }
    }
    if parked.unrecorded > 0 {
        warn!(
            "smp: {} AP(s) halted in the start code without a record of their APIC ID (not \
             parked by INIT)",
            parked.unrecorded
        );
    }
}

/// Whether every numbered AP finished starting (online or failed).
fn all_settled() -> bool {
    percpu::all().all(|c| c.state() != CpuState::Starting)
}

fn give_up(cpu: &percpu::PerCpu, why: StartError) {
    let apic_id = cpu.apic_id();
    if cpu.set_failed(alloc::format!("{why}")) {
        warn!(
            "cpu {} (APIC ID {apic_id}): did not start: {why}; marked offline",
            cpu.index()
        );
        // Back to wait-for-SIPI, so that it does not run the start code later.
        if let Err(e) = apic::send_ipi(IpiTarget::Apic(apic_id), Ipi::Init) {
            warn!(
                "cpu {} (APIC ID {apic_id}): INIT to park it: {e}",
                cpu.index()
            );
        }
    }
}

/// Why an INIT-SIPI-SIPI sequence was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SequenceError {
    Ipi(IpiError),
    /// A delay between the IPIs never ended.
    Clock(time::ClockStopped),
}

impl core::fmt::Display for SequenceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ipi(e) => write!(f, "IPI: {e}"),
            Self::Clock(e) => write!(f, "between the IPIs: {e}"),
        }
    }
}

/// INIT, 10 ms, STARTUP, 200 µs, and a second STARTUP unless an AP took a slot beyond `slots`
/// meanwhile (SDM Vol. 3A §9.4.4.1).
fn init_sipi_sipi(
    tramp: &Installed,
    target: IpiTarget,
    vector: u8,
    slots: u32,
) -> Result<(), SequenceError> {
    let ipi = |i| apic::send_ipi(target, i).map_err(SequenceError::Ipi);
    ipi(Ipi::Init)?;
    time::delay_ms(10).map_err(SequenceError::Clock)?;
    ipi(Ipi::Startup(vector))?;
    time::delay_us(200).map_err(SequenceError::Clock)?;
    if tramp.slots_taken() == slots || matches!(target, IpiTarget::AllButSelf) {
        ipi(Ipi::Startup(vector))?;
    }
    Ok(())
}

/// Why an AP did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartError {
    /// The INIT-SIPI-SIPI sequence was cut short.
    Sequence(SequenceError),
    /// It never ran the start code (took no slot) within [`CHECK_IN_MS`].
    NoResponse,
    /// It ran the start code but did not check in within [`CHECK_IN_MS`].
    NoCheckIn,
    /// Broadcast: it took a start slot but did not check in before the APs stopped arriving.
    Silent,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Sequence(e) => write!(f, "{e}"),
            Self::NoResponse => {
                write!(f, "no response to INIT-SIPI-SIPI within {CHECK_IN_MS} ms")
            }
            Self::NoCheckIn => write!(
                f,
                "it ran the start code but did not check in within {CHECK_IN_MS} ms"
            ),
            Self::Silent => f.write_str("it took a start slot but did not check in"),
        }
    }
}

/// Starts one AP and waits for its check-in.
fn start_one(
    tramp: &Installed,
    target: IpiTarget,
    vector: u8,
    cpu: &percpu::PerCpu,
) -> Result<(), StartError> {
    let slots = tramp.slots_taken();
    init_sipi_sipi(tramp, target, vector, slots).map_err(StartError::Sequence)?;
    if wait_serving(CHECK_IN_MS, || cpu.state() != CpuState::Starting) {
        return Ok(());
    }
    Err(if tramp.slots_taken() == slots {
        StartError::NoResponse
    } else {
        StartError::NoCheckIn
    })
}

/// Polls `done` for up to `ms`, serving this CPU's own mailbox meanwhile (so that two CPUs
/// waiting on each other, or a request whose IPI was lost, still progress). The interrupt flag
/// is left as the caller has it: a cross-CPU call requires it set ([`call_on`]). `true` if
/// `done` held.
pub(crate) fn wait_serving(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let result = time::wait_ms(ms, || {
        call::serve_own_mailbox();
        done()
    });
    match result {
        Ok(r) => r,
        Err(_) => done(),
    }
}

/// This CPU's initial APIC ID from CPUID (leaf 0xB's x2APIC ID where the leaf exists, else
/// leaf 1's 8-bit ID; SDM Vol. 3A §11.4.6 and §11.12.8): available before the local APIC is
/// set up.
fn initial_apic_id() -> u32 {
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max >= 0xb {
        let b = core::arch::x86_64::__cpuid_count(0xb, 0);
        if b.ebx != 0 {
            return b.edx;
        }
    }
    core::arch::x86_64::__cpuid(1).ebx >> 24
}

/// Where the start code lands on each AP, on its slot's stack, still on the temporary page
/// tables.
extern "C" fn ap_entry(slot: u64, kernel_cr3: u64) -> ! {
    // SAFETY: the kernel's page tables map everything the temporary ones map above 512 GiB
    // (they were copied from them), including this code and this stack; the low identity map is
    // no longer needed.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) kernel_cr3, options(nostack)) };
    // The kernel's IDT before anything else: the real-mode table the AP still has would turn an
    // NMI into a shutdown.
    idt::load();
    let Some(start) = START.get() else { halt() };
    // SAFETY: PAT exists on every x86-64 CPU; the BSP's value makes page attributes mean the
    // same on every CPU.
    unsafe { msr::write(IA32_PAT, start.pat) };
    let slot = slot as usize;
    let apic_id = initial_apic_id();
    let index = if start.broadcast {
        let i = start.next_index.fetch_add(1, Ordering::AcqRel);
        if i >= MAX_CPUS {
            halt();
        }
        percpu::add(i, apic_id);
        i
    } else {
        match percpu::all().position(|c| c.apic_id() == apic_id) {
            Some(i) if i > 0 => i,
            _ => halt(),
        }
    };
    // 0: the slot's block was given back (the start-up closed without this AP).
    let block = match start.blocks.get(slot).map(|b| b.load(Ordering::Acquire)) {
        Some(0) | None => halt(),
        Some(b) => b,
    };
    gdt::init_cpu(index, &CpuStacks::carve(block));
    let Some(cpu) = percpu::get(index) else {
        halt()
    };
    match apic::init_ap() {
        Ok(id) if id == apic_id => {}
        Ok(id) => {
            cpu.set_failed(alloc::format!(
                "its local APIC reads ID {id}, CPUID says {apic_id}"
            ));
            halt();
        }
        Err(e) => {
            cpu.set_failed(alloc::format!("{e}"));
            halt();
        }
    }
    mtrrs::sync(index, apic_id, &start.mtrrs);
    (start.hooks.init)(index);
    if !cpu.set_online() {
        halt();
    }
    (start.hooks.run)(index)
}

/// Stops this AP for good (interrupts off, HLT).
fn halt() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
