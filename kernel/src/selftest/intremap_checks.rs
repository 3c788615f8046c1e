//! Steps 4-7 of the interrupt remapping self-test (see `intremap`): forged messages, the I/O
//! APIC-routed timer, refused IRTE requests and the flood guard.

use super::intremap::{BEYOND, Ctx, DECOY_SOURCE, GUEST, interrupts_on, wait_ticks};
use crate::iommu;
use crate::irq::{self, FLOOD_LIMIT, Flood, IrqError, MsiKind, dispatch};
use crate::pci::{self, msi};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_hw::{apic::vectors, pit};
use conduit_irq::{
    AllocError, Destination, Irte, IrteBuilder, Owner, RemappableMsi, Resource, SourceQualifier,
};
use conduit_pci::config::command;
use log::info;

/// Fault reasons (VT-d spec, Appendix A).
const INDEX_BEYOND: u8 = 0x21;
const NOT_PRESENT: u8 = 0x22;
const SID_FAILED: u8 = 0x26;
/// The 8254's rate for the I/O APIC step.
const PIT_HZ: u32 = 1000;
/// Ticks the I/O APIC step lets the timer run.
const PIT_TICKS: u64 = 10;
/// Upper bound on the flood loop.
const FLOOD_MAX_RAISES: u32 = 200_000;
/// Raises after the guard tripped (all must vanish).
const AFTER_TRIP: u32 = 1000;

fn describe(e: impl core::fmt::Display) -> String {
    alloc::format!("{e}")
}

/// Aims edu's MSI at `handle`, raises, and requires: nothing delivered anywhere, exactly one
/// fault with `reason`, source edu and index `handle`; then the legitimate message again, and it
/// is delivered.
fn forged(ctx: &Ctx<'_>, step: &str, handle: u16, what: &str, reason: u8) -> Result<(), String> {
    let bdf = ctx.edu.bdf;
    let before = dispatch::totals();
    msi::retarget_msi(
        conduit_pci::PciAddress::on_segment0(bdf),
        RemappableMsi::single(handle).encode(),
    )
    .map_err(describe)?;
    ctx.edu.raise(1);
    // Time for a wrong delivery and for the fault event interrupt.
    wait_ticks(2);
    let after = dispatch::totals();
    let faults = iommu::service_faults();
    msi::retarget_msi(conduit_pci::PciAddress::on_segment0(bdf), ctx.route.message)
        .map_err(describe)?;
    if after != before {
        return Err(alloc::format!(
            "edu's MSI aimed at {what} (handle {handle}) was delivered: (delivered, unbound) \
             {before:?} -> {after:?}"
        ));
    }
    match faults.as_slice() {
        [f] if f.source == bdf && f.interrupt_index == Some(handle) && f.reason == reason => {}
        other => {
            return Err(alloc::format!(
                "edu's MSI aimed at {what} (handle {handle}): expected one fault {reason:#04x} \
                 from {bdf} with index {handle}, found {other:?}"
            ));
        }
    }
    ctx.raise_delivered()?;
    info!(
        "selftest: intremap [{step}] edu's MSI aimed at {what} (handle {handle}): not delivered; \
         fault {reason:#04x} recorded (source {bdf}, index {handle}): {}; the next legitimate \
         interrupt was delivered on vector {:#x}",
        conduit_vtd::reason_text(reason),
        ctx.route.vector
    );
    Ok(())
}

/// Step 4: a source-id mismatch, a not-present entry, an index beyond the table.
pub(super) fn run(ctx: &Ctx<'_>, _mem: &Memory) -> Result<(), String> {
    let hv = Owner::Hypervisor;
    let dest = irq::this_cpu().ok_or("interrupts are not initialised")?;
    let decoy_vector = irq::reserve_vector(hv).map_err(describe)?;
    let decoy = irq::reserve_index(hv).map_err(describe)?;
    let irte = IrteBuilder::new(dest, decoy_vector)
        .verify_requester(DECOY_SOURCE, SourceQualifier::All)
        .build()
        .map_err(describe)?;
    irq::program_irte(hv, decoy, &irte).map_err(describe)?;
    forged(
        ctx,
        "4a",
        decoy,
        "an IRTE that only 00:03.0 may use (SVT=01, SQ=00)",
        SID_FAILED,
    )?;
    let absent = irq::reserve_index(hv).map_err(describe)?;
    forged(ctx, "4b", absent, "a not-present IRTE", NOT_PRESENT)?;
    forged(
        ctx,
        "4c",
        BEYOND,
        "an index beyond the 256-entry table",
        INDEX_BEYOND,
    )?;
    if dispatch::delivered(decoy_vector) != 0 {
        return Err(String::from("the decoy IRTE's vector received interrupts"));
    }
    live_update(ctx, decoy, decoy_vector, dest)?;
    irq::release(hv, decoy, Some(decoy_vector)).map_err(describe)?;
    irq::release(hv, absent, None).map_err(describe)?;
    Ok(())
}

/// Step 4d: the decoy entry, present, rewritten in place to verify edu's own source-id (one
/// 128-bit store: the unit never sees half an entry, VT-d spec §9.10): edu's message through it
/// is then delivered on the decoy's vector, without a fault.
fn live_update(ctx: &Ctx<'_>, decoy: u16, vector: u8, dest: Destination) -> Result<(), String> {
    let bdf = ctx.edu.bdf;
    let irte = IrteBuilder::new(dest, vector)
        .verify_requester(bdf.routing_id(), SourceQualifier::All)
        .build()
        .map_err(describe)?;
    let was_present = iommu::read_irte(decoy)
        .and_then(Result::ok)
        .is_some_and(|e| e.is_present());
    irq::program_irte(Owner::Hypervisor, decoy, &irte).map_err(describe)?;
    msi::retarget_msi(
        conduit_pci::PciAddress::on_segment0(bdf),
        RemappableMsi::single(decoy).encode(),
    )
    .map_err(describe)?;
    let before = dispatch::delivered(vector);
    ctx.edu.raise(1);
    let arrived =
        super::intremap::wait_with_interrupts(1 << 30, || dispatch::delivered(vector) > before);
    wait_ticks(1);
    let faults = iommu::service_faults();
    msi::retarget_msi(conduit_pci::PciAddress::on_segment0(bdf), ctx.route.message)
        .map_err(describe)?;
    let got = dispatch::delivered(vector) - before;
    if !was_present || !arrived || got != 1 || !faults.is_empty() {
        return Err(alloc::format!(
            "live update of IRTE {decoy}: present before {was_present}, delivered {got} on vector {vector:#x}, faults {faults:?}"
        ));
    }
    ctx.raise_delivered()?;
    info!(
        "selftest: intremap [4d] IRTE {decoy}, present, rewritten in place (one 128-bit store) to \
         verify {bdf}: edu's MSI through it delivered once on vector {vector:#x}, no fault; the \
         legitimate route delivered again"
    );
    Ok(())
}

/// Step 5: the 8254 through the I/O APIC in remappable format.
pub(super) fn ioapic_timer() -> Result<(), String> {
    let r = irq::route_isa(0).map_err(describe)?;
    let divisor = pit::start_channel0(PIT_HZ);
    irq::set_gsi_masked(&r, false).map_err(describe)?;
    let t0 = dispatch::ticks();
    let ticked = wait_ticks(PIT_TICKS);
    irq::set_gsi_masked(&r, true).map_err(describe)?;
    pit::stop_channel0();
    let t1 = dispatch::ticks();
    // Anything still in flight arrives now.
    wait_ticks(1);
    let n = dispatch::delivered(r.vector);
    let faults = iommu::service_faults();
    irq::release(Owner::Hypervisor, r.index, Some(r.vector)).map_err(describe)?;
    if !ticked || n == 0 || !faults.is_empty() {
        return Err(alloc::format!(
            "I/O APIC-routed timer: {n} interrupts in {} ticks, faults {faults:?}",
            t1 - t0
        ));
    }
    info!(
        "selftest: intremap [5] 8254 channel 0 at {PIT_HZ} Hz (divisor {divisor}) -> ISA IRQ 0 \
         -> GSI {} -> I/O APIC input {} (remappable RTE {:#018x}) -> IRTE {} -> vector {:#x}: \
         {n} interrupts delivered and counted in {} ticks ({} ms)",
        r.gsi,
        r.pin,
        r.rte,
        r.index,
        r.vector,
        t1 - t0,
        (t1 - t0) * u64::from(irq::TICK_MS)
    );
    Ok(())
}

type Check = fn(&IrqError) -> bool;

/// Step 6: requests guest 1 may not make.
pub(super) fn refusals(ctx: &Ctx<'_>) -> Result<(), String> {
    let guest = Owner::Guest(GUEST);
    let own = irq::reserve_index(guest).map_err(describe)?;
    let theirs = irq::reserve_index(Owner::Hypervisor).map_err(describe)?;
    let dest = irq::this_cpu().ok_or("interrupts are not initialised")?;
    let elsewhere = match dest {
        Destination::X2Apic(_) => Destination::X2Apic(7),
        Destination::XApic(_) => Destination::XApic(7),
    };
    let sid = ctx.edu.bdf.routing_id();
    let vector = ctx.route.vector;
    let verified = |d: Destination, v: u8| {
        IrteBuilder::new(d, v)
            .verify_requester(sid, SourceQualifier::All)
            .build()
    };
    let not_our_vector: Check = |e| {
        matches!(
            e,
            IrqError::Alloc(AllocError::NotOwner {
                resource: Resource::Vector,
                owner: Owner::Hypervisor,
                ..
            })
        )
    };
    let cases: [(&str, u16, Result<Irte, conduit_irq::FormatError>, Check); 5] = [
        (
            "vector 0x30 (the hypervisor's VT-d fault vector)",
            own,
            verified(dest, vectors::VTD_FAULT),
            not_our_vector,
        ),
        (
            "vector 0xf0 (the hypervisor's tick)",
            own,
            verified(dest, vectors::TICK),
            not_our_vector,
        ),
        (
            "destination APIC 7 (no CPU of guest 1)",
            own,
            verified(elsewhere, vector),
            |e| matches!(e, IrqError::Alloc(AllocError::DestinationNotOwned { .. })),
        ),
        (
            "no source-id verification (SVT=00)",
            own,
            IrteBuilder::new(dest, vector).build(),
            |e| matches!(e, IrqError::Alloc(AllocError::SourceNotVerified(_))),
        ),
        (
            "the hypervisor's IRTE",
            theirs,
            verified(dest, vector),
            |e| {
                matches!(
                    e,
                    IrqError::Alloc(AllocError::NotOwner {
                        resource: Resource::IrtIndex,
                        ..
                    })
                )
            },
        ),
    ];
    let mut refused = Vec::new();
    let guest_cases = cases.len();
    for (what, index, irte, expected) in cases {
        let irte = irte.map_err(describe)?;
        match irq::program_irte(guest, index, &irte) {
            Err(e) if expected(&e) => refused.push(alloc::format!("{what}: {e}")),
            Err(e) => return Err(alloc::format!("{what}: refused for the wrong reason: {e}")),
            Ok(()) => return Err(alloc::format!("guest 1's IRTE with {what} was accepted")),
        }
    }
    // The hypervisor is held to the same rules: a guest's vector, a destination that is no CPU.
    let hv = Owner::Hypervisor;
    let hv_vector = irq::reserve_vector(hv).map_err(describe)?;
    let hv_cases: [(&str, Result<Irte, conduit_irq::FormatError>, Check); 2] = [
        ("guest 1's vector", verified(dest, vector), |e| {
            matches!(
                e,
                IrqError::Alloc(AllocError::NotOwner {
                    resource: Resource::Vector,
                    owner: Owner::Guest(_),
                    ..
                })
            )
        }),
        (
            "destination APIC 7 (no CPU of this machine)",
            verified(elsewhere, hv_vector),
            |e| matches!(e, IrqError::Alloc(AllocError::DestinationNotOwned { .. })),
        ),
    ];
    let mut hv_refused = Vec::new();
    for (what, irte, expected) in hv_cases {
        let irte = irte.map_err(describe)?;
        match irq::program_irte(hv, theirs, &irte) {
            Err(e) if expected(&e) => hv_refused.push(alloc::format!("{what}: {e}")),
            Err(e) => return Err(alloc::format!("{what}: refused for the wrong reason: {e}")),
            Ok(()) => {
                return Err(alloc::format!(
                    "the hypervisor's IRTE with {what} was accepted"
                ));
            }
        }
    }
    for index in [own, theirs] {
        match iommu::read_irte(index) {
            Some(Ok(e)) if !e.is_present() => {}
            other => return Err(alloc::format!("IRTE {index} changed: {other:?}")),
        }
    }
    irq::release(hv, theirs, None).map_err(describe)?;
    irq::release_vector(hv, hv_vector).map_err(describe)?;
    info!(
        "selftest: intremap [6] guest 1's IRTE requests refused: {} of {guest_cases} ({}); the \
         hypervisor's refused: {} of {} ({}); IRTEs {own} and {theirs} unchanged (not present)",
        refused.len(),
        refused.join("; "),
        hv_refused.len(),
        hv_cases.len(),
        hv_refused.join("; ")
    );
    Ok(())
}

/// Step 7: edu raising in a tight loop.
pub(super) fn flood(ctx: &Ctx<'_>) -> Result<(), String> {
    let v = ctx.route.vector;
    let index = ctx.route.index;
    let bdf = ctx.edu.bdf;
    let d0 = dispatch::delivered(v);
    let t0 = dispatch::ticks();
    let mut raises = 0u32;
    let mut after_trip = 0u32;
    interrupts_on(|| {
        while raises < FLOOD_MAX_RAISES && after_trip < AFTER_TRIP {
            ctx.edu.raise(1);
            raises += 1;
            if dispatch::flood(v) != Flood::None {
                after_trip += 1;
            }
        }
    });
    let Flood::Tripped { masked, seen, tick } = dispatch::flood(v) else {
        return Err(alloc::format!(
            "{raises} raises in {} ticks did not trip the flood guard ({} delivered)",
            dispatch::ticks() - t0,
            dispatch::delivered(v) - d0
        ));
    };
    // The hypervisor is not starved: its tick goes on.
    if !wait_ticks(3) {
        return Err(String::from("the tick stopped after the flood"));
    }
    let t1 = dispatch::ticks();
    let reports = irq::service();
    let report = reports
        .iter()
        .find(|r| r.vector == v)
        .ok_or("the flood was not reported")?;
    match iommu::read_irte(index) {
        Some(Ok(e)) if !e.is_present() && e.fault_processing_disabled() => {}
        other => return Err(alloc::format!("IRTE {index} is not masked: {other:?}")),
    }
    let (msi_on, ..) =
        msi::read_msi(conduit_pci::PciAddress::on_segment0(bdf)).map_err(describe)?;
    if msi_on || !report.device_masked {
        return Err(String::from("edu's MSI is still enabled after the flood"));
    }
    // Raising now reaches nothing and leaves no fault record.
    let before = dispatch::totals();
    ctx.edu.raise(1);
    wait_ticks(2);
    let after = dispatch::totals();
    let faults = iommu::service_faults();
    ctx.edu.ack(1);
    if after != before || !faults.is_empty() {
        return Err(alloc::format!(
            "after masking: (delivered, unbound) {before:?} -> {after:?}, faults {faults:?}"
        ));
    }
    info!(
        "selftest: intremap [7] flood: edu raised {raises} times in a tight loop; {} delivered, \
         then {seen} within one tick (limit {FLOOD_LIMIT}) at tick {tick} tripped the guard: \
         IRTE {index} masked {}(not present, fault processing disabled), MSI disabled, {} \
         suppressed, no fault recorded; the tick ran on ({t0} -> {t1})",
        dispatch::delivered(v) - d0,
        if masked {
            "in the interrupt handler "
        } else {
            "by the service path "
        },
        dispatch::suppressed(v)
    );
    Ok(())
}

/// MSI-X raises of step 8.
const MSIX_RAISES: u64 = 4;

/// Step 8: an MSI-X entry in remappable format (the igb PF's vector 0, raised through EICS).
pub(super) fn msix(mem: &Memory) -> Result<(), String> {
    let f = pci::get()
        .and_then(|p| p.functions().iter().find(|f| crate::igb::is_pf(f)))
        .ok_or("no igb PF (82576 with SR-IOV) on this machine")?;
    let nic = crate::igb::Nic::open(mem, f).map_err(describe)?;
    let bdf = nic.bdf;
    pci::enable_command_bits(bdf, command::MEMORY_SPACE | command::BUS_MASTER)
        .ok_or("cannot write igb's Command register")?;
    let info = msi::msix_info(conduit_pci::PciAddress::on_segment0(bdf)).map_err(describe)?;
    let route = irq::bind_msi(
        Owner::Hypervisor,
        0,
        conduit_pci::PciAddress::on_segment0(bdf),
        MsiKind::Msix(0),
        None,
    )
    .map_err(describe)?;
    msi::set_msix_enabled(conduit_pci::PciAddress::on_segment0(bdf), true).map_err(describe)?;
    let (address, data, masked) =
        msi::read_msix_entry(mem, conduit_pci::PciAddress::on_segment0(bdf), 0)
            .map_err(describe)?;
    nic.enable(0);
    let v = route.vector;
    let mut delivered = 0;
    for _ in 0..MSIX_RAISES {
        let before = dispatch::delivered(v);
        nic.raise(0);
        if super::intremap::wait_with_interrupts(1 << 30, || dispatch::delivered(v) > before) {
            delivered += 1;
        }
    }
    wait_ticks(2);
    let total = dispatch::delivered(v);
    let faults = iommu::service_faults();
    nic.quiesce();
    msi::set_msix_enabled(conduit_pci::PciAddress::on_segment0(bdf), false).map_err(describe)?;
    irq::release(Owner::Hypervisor, route.index, Some(v)).map_err(describe)?;
    if delivered != MSIX_RAISES || total != MSIX_RAISES || masked || !faults.is_empty() {
        return Err(alloc::format!(
            "igb MSI-X: {MSIX_RAISES} raised, {total} delivered on vector {v:#x} (entry masked \
             {masked}), faults {faults:?}"
        ));
    }
    info!(
        "selftest: intremap [8] igb {bdf} MSI-X ({} entries, table in BAR{} at offset {:#x}): \
         entry 0 = address {address:#010x} data {data:#06x}, unmasked -> IRTE {} -> vector \
         {v:#x}: {MSIX_RAISES} raised (EICS), {total} delivered",
        info.table_size, info.table_bir, info.table_offset, route.index
    );
    Ok(())
}
