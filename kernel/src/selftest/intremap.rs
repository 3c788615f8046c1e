//! `[test] scenario = "intremap"`: VT-d interrupt remapping proven with real interrupts.
//!
//! QEMU's edu device (00:04.0) is assigned to a test guest ("A", guest id 1, an IOMMU domain of
//! 2 MiB at GPA 0x4000000; its vCPU does not run) and its MSI is bound for that guest: a guest-owned
//! vector, a guest-owned IRTE that only 00:04.0 may use, and edu's MSI capability in remappable
//! format. The script:
//!
//! 1. interrupt remapping is on, in the mode the APIC runs in (x2APIC with ECAP.EIM = 1, else
//!    xAPIC);
//! 2. 16 raises through edu's raise register give exactly 16 interrupts on the IRTE's vector,
//!    counted for guest 1, with guest 1's own vector pending for injection;
//! 3. a DMA with "raise interrupt when done" gives its completion interrupt;
//! 4. edu's MSI aimed at an IRTE verifying another requester (00:03.0), at a not-present IRTE and
//!    beyond the table is not delivered, and the unit records faults 0x26, 0x22 and 0x21 with
//!    source 00:04.0 and the index; after each, the legitimate message is delivered again;
//! 5. the 8254's channel 0 (ISA IRQ 0, GSI 2) through the I/O APIC in remappable format, verified
//!    against the I/O APIC's source-id, is delivered and counted;
//! 6. IRTE requests by guest 1 for a vector it does not own, a destination it may not target,
//!    without source validation and at an index it does not own are refused, the entry untouched;
//! 7. edu raising in a tight loop trips the flood guard: its IRTE is masked, its MSI disabled,
//!    the flood reported, and the hypervisor's tick keeps running;
//! 8. an MSI-X entry in remappable format: the igb PF's vector 0 (01:00.0, behind a root port),
//!    raised through its EICS register, arrives through its own verified IRTE.

use super::edu::{self, Direction, Edu};
use crate::iommu::{self, DomainId, GuestMemory};
use crate::irq::{self, MsiKind, MsiRoute, dispatch};
use crate::pci::{self, DeviceRef, msi};
use alloc::string::String;
use conduit_hw::memory::{Memory, PhysAddr};
use conduit_hw::{apic, rdtsc};
use conduit_irq::{ApicMode, GuestId, Owner};
use conduit_pci::config::command;
use log::info;

/// The test guest.
pub(super) const GUEST: GuestId = GuestId(1);
/// The vector guest 1's driver asked for (its virtual vector).
pub(super) const GUEST_VECTOR: u8 = 0x41;
const RAISES: u64 = 16;
const GUEST_GPA: u64 = 0x0400_0000;
const GUEST_BYTES: u64 = 2 << 20;
const SRC: u64 = GUEST_GPA + 0x10_0000;
const PAGE: u64 = 4096;
/// A handle beyond the 256-entry table.
pub(super) const BEYOND: u16 = 300;
/// How long to wait for one interrupt (TSC ticks; well under a second on any host).
pub(super) const ONE_INTERRUPT: u64 = 1 << 30;

/// Runs `f` with interrupts enabled, restoring the interrupt flag after.
pub(super) fn interrupts_on<R>(f: impl FnOnce() -> R) -> R {
    conduit_hw::smp::with_interrupts(f)
}

/// Spins with interrupts enabled until `done` or `limit` TSC ticks passed; returns `done()`.
pub(super) fn wait_with_interrupts(limit: u64, mut done: impl FnMut() -> bool) -> bool {
    interrupts_on(|| {
        let start = rdtsc();
        while !done() && rdtsc().wrapping_sub(start) < limit {
            core::hint::spin_loop();
        }
        done()
    })
}

/// Waits `n` ticks of the hypervisor's timer with interrupts enabled (false if they do not come).
pub(super) fn wait_ticks(n: u64) -> bool {
    let t0 = dispatch::ticks();
    wait_with_interrupts(ONE_INTERRUPT * 8, || dispatch::ticks() >= t0 + n)
}

pub(super) struct Ctx<'a> {
    pub edu: &'a Edu,
    pub route: MsiRoute,
}

impl Ctx<'_> {
    /// One raise that must arrive on the route's vector, alone.
    pub fn raise_delivered(&self) -> Result<(), String> {
        let v = self.route.vector;
        let before = dispatch::delivered(v);
        self.edu.raise(1);
        if wait_with_interrupts(ONE_INTERRUPT, || dispatch::delivered(v) > before) {
            Ok(())
        } else {
            Err(alloc::format!(
                "a raise through IRTE {} was not delivered on vector {v:#x}",
                self.route.index
            ))
        }
    }
}

fn describe(e: impl core::fmt::Display) -> String {
    alloc::format!("{e}")
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory) -> Result<usize, String> {
    let ir = iommu::interrupt_remapping()
        .map_err(|why| alloc::format!("interrupt remapping is not enabled: {why}"))?;
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let edu_ref = DeviceRef::Id {
        vendor: edu::VENDOR,
        device: edu::DEVICE,
    };
    let f = pci
        .resolve(edu_ref)
        .ok_or_else(|| alloc::format!("no {edu_ref} (edu) device on this machine"))?;
    let edu = Edu::open(mem, f)?;
    pci::enable_command_bits(edu.bdf, command::MEMORY_SPACE | command::BUS_MASTER)
        .ok_or("cannot write edu's Command register")?;

    // [1] The mode the APIC runs in matches what the table delivers.
    let apic_mode = apic::current_mode().ok_or("the local APIC is not initialised")?;
    let consistent = matches!(
        (apic_mode, ir.mode),
        (apic::ApicMode::X2Apic, ApicMode::X2Apic) | (apic::ApicMode::XApic, ApicMode::XApic)
    );
    if !consistent {
        return Err(alloc::format!(
            "the local APIC runs in {apic_mode} mode but the table holds {:?} destinations",
            ir.mode
        ));
    }
    info!(
        "selftest: intremap [1] interrupt remapping on: table at {:#x}, {} entries (IRTA.S={}), \
         EIME={}: {apic_mode} mode, local APIC {} (tick {} so far)",
        ir.tables.first().map_or(0, |t| t.1),
        ir.size.entries(),
        ir.size.field(),
        u8::from(ir.mode == ApicMode::X2Apic),
        apic::id(),
        dispatch::ticks()
    );
    if !wait_ticks(2) {
        return Err(String::from("the hypervisor's tick does not run"));
    }

    let frames = (GUEST_BYTES / PAGE) as usize;
    let hpa = mem
        .frames
        .lock()
        .allocate_contiguous(frames, 512)
        .ok_or("no 2 MiB of memory for guest A")?
        .0;
    let memory = GuestMemory {
        gpa: GUEST_GPA,
        hpa,
        len: GUEST_BYTES,
    };
    let domain = iommu::create_domain("A", &[memory]).map_err(describe)?;
    let result = with_domain(mem, &edu, domain);
    // Whatever happened: guest 1's interrupts go, edu leaves the domain, the memory returns.
    if let Ok((entries, vectors)) = irq::release_guest(GUEST) {
        info!("selftest: intremap: guest 1 released {entries} IRTE(s) and {vectors} vector(s)");
    }
    let _ = iommu::unassign(edu.bdf);
    if iommu::destroy_domain(domain).is_ok() {
        let mut frames = mem.frames.lock();
        for i in 0..GUEST_BYTES / PAGE {
            frames.free(PhysAddr(hpa + i * PAGE));
        }
    }
    result
}

fn with_domain(mem: &Memory, edu: &Edu, domain: DomainId) -> Result<usize, String> {
    iommu::assign(edu.bdf, domain).map_err(describe)?;
    info!(
        "selftest: intremap: edu {} assigned to guest A (guest id {}, IOMMU domain {domain}); \
         its vCPU does not run here: its interrupts are counted per guest",
        edu.bdf, GUEST.0
    );

    // [2] The guest's MSI through its own verified IRTE: N raises, N interrupts.
    let route = irq::bind_msi(
        Owner::Guest(GUEST),
        0,
        conduit_pci::PciAddress::on_segment0(edu.bdf),
        MsiKind::Msi,
        Some(GUEST_VECTOR),
    )
    .map_err(describe)?;
    let (enabled, address, data) =
        msi::read_msi(conduit_pci::PciAddress::on_segment0(edu.bdf)).map_err(describe)?;
    let raw = iommu::read_irte(route.index)
        .and_then(Result::ok)
        .map(|e| e.encode())
        .ok_or("the IRTE does not read back")?;
    info!(
        "selftest: intremap: edu MSI capability: enabled {enabled}, address {address:#x}, data \
         {data:#06x}; IRTE {} = {:#018x}_{:#018x}",
        route.index, raw[1], raw[0]
    );
    let ctx = Ctx { edu, route };
    let v = route.vector;
    let guest_before = irq::guest_interrupts(GUEST);
    for _ in 0..RAISES {
        ctx.raise_delivered()?;
    }
    // Anything extra would arrive now.
    wait_ticks(2);
    let delivered = dispatch::delivered(v);
    let counted = irq::guest_interrupts(GUEST) - guest_before;
    if delivered != RAISES || counted != RAISES {
        return Err(alloc::format!(
            "{RAISES} raised, {delivered} delivered on vector {v:#x}, {counted} counted for guest 1"
        ));
    }
    let pending = dispatch::take_pending(GUEST);
    if pending != Some(GUEST_VECTOR) {
        return Err(alloc::format!("guest 1's pending vector is {pending:?}"));
    }
    edu.ack(1);
    info!(
        "selftest: intremap [2] edu MSI through IRTE {} (handle {}): {RAISES} raised, {delivered} \
         delivered on vector {v:#x}; guest 1 counted {counted}, its vector {GUEST_VECTOR:#x} \
         pending for injection",
        route.index, route.index
    );

    // [3] The DMA-completion interrupt.
    let before = dispatch::delivered(v);
    edu.dma_with_interrupt(Direction::FromRam, SRC, PAGE)
        .map_err(|e| alloc::format!("edu DMA from IOVA {SRC:#x}: {e}"))?;
    let arrived = wait_with_interrupts(ONE_INTERRUPT, || dispatch::delivered(v) > before);
    let status = edu.irq_status();
    let faults = iommu::service_faults();
    if !arrived || status & edu::DMA_IRQ == 0 || !faults.is_empty() {
        return Err(alloc::format!(
            "DMA completion: interrupt {}, status {status:#x}, faults {faults:?}",
            if arrived { "delivered" } else { "missing" }
        ));
    }
    edu.ack(edu::DMA_IRQ);
    info!(
        "selftest: intremap [3] edu DMA of 4 KiB from IOVA {SRC:#x} completed: status {status:#x}, \
         1 delivered on vector {v:#x}; guest 1 now {}",
        irq::guest_interrupts(GUEST)
    );

    // [4] Forged messages.
    super::intremap_checks::run(&ctx, mem)?;

    // [5] The I/O APIC in remappable format.
    super::intremap_checks::ioapic_timer()?;

    // [6] Refused requests.
    super::intremap_checks::refusals(&ctx)?;

    // [7] The flood.
    super::intremap_checks::flood(&ctx)?;

    // [8] MSI-X in remappable format.
    super::intremap_checks::msix(mem)?;
    Ok(8)
}

/// The source-id a decoy IRTE verifies instead of edu's: the second root port, 00:03.0.
pub(super) const DECOY_SOURCE: u16 = 0x0018;
