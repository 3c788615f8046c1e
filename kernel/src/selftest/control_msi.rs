//! Step 12 of the `control` self-test: a guest's MSI (not MSI-X) routed to it. The guest's driver
//! programs its *virtual* MSI capability (PCIe Base Spec r6.0 §7.7.1) of the edu device (QEMU's
//! 1234:11e8, MSI only, no MSI-X) through configuration mechanism #1 (port I/O exits, `guest_driver`);
//! the exit path hands the `MsiChanged` event to `guest::interrupts::on_msi`, which takes an IRTE of
//! the guest's verifying the edu's source-id (VT-d spec §9.10) and has the control task program
//! the physical capability with the remappable-format message (§5.1.2.2). The device then
//! raises N interrupts (its register 0x60), each of which must be the guest's, with its vector
//! pending; the guest disabling MSI turns the physical MSI off and the next raise reaches nobody.
//! Then the guest turns MSI on again and the edu raises without pause: the flood guard masks the
//! IRTE and, configuration space being the control task's, has the task turn the physical MSI
//! off for the guest (`irq::service` reports it masked at the device only when that was done).

use super::control::{GUEST, check};
use super::edu::Edu;
use super::guest_driver::{GuestView, irte_of, route_of};
use crate::control;
use crate::irq::{self, Flood, dispatch};
use alloc::format;
use alloc::string::String;
use conduit_hw::memory::Memory;
use conduit_irq::{GuestId, Owner};
use conduit_pci::Bdf;
use log::info;

/// The vector the guest's driver programs.
const GUEST_VECTOR: u8 = 0x52;
/// Interrupts the device raises.
const RAISES: u64 = 8;
const EDU: (u16, u16) = (0x1234, 0x11e8);
/// TSC ticks to wait for one interrupt.
const ONE_INTERRUPT: u64 = 1 << 30;
/// Raises before the flood step gives up on the guard tripping.
const FLOOD_MAX_RAISES: u32 = 200_000;

/// The physical configuration register (`size` bytes at `offset` of `bdf`), read by the task.
fn physical(bdf: Bdf, offset: u16, size: u8) -> Result<u32, String> {
    control::physical_read(conduit_pci::PciAddress::on_segment0(bdf), offset, size)
        .ok_or_else(|| format!("the control task did not read {offset:#x} of {bdf}"))
}

/// Runs step 12 when the first guest has an edu device; `Ok(false)` when it has none.
pub(super) fn run(view: &mut GuestView, mem: &'static Memory) -> Result<bool, String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let found = (1..32u8).find_map(|dev| {
        let vbdf = Bdf::new(0, dev, 0)?;
        let f = pci.function(control::assignment(GUEST, vbdf)?)?;
        ((f.vendor_id(), f.device_id()) == EDU).then_some((vbdf, f))
    });
    let Some((vbdf, f)) = found else {
        return Ok(false);
    };
    // The guest's driver: BAR placed, memory decode and bus mastering, then address, data and
    // Enable.
    let msi = view.enable_msi(vbdf, f, GUEST_VECTOR)?;
    let (cap, info, ctl) = (msi.cap, msi.info, msi.ctl);
    let phys_ctl = physical(f.bdf, cap + 2, 2)?;
    let phys_addr = physical(f.bdf, cap + 4, 4)?;
    let phys_data = physical(f.bdf, cap + info.data_offset(), 2)?;
    let owner = Owner::Guest(GuestId(GUEST));
    let route = route_of(phys_addr).map_err(|e| format!("the enabled MSI was not routed: {e}"))?;
    let held = irq::irte_owner(route.index);
    check(
        phys_ctl & 1 == 1
            && phys_addr & 0xfff0_0010 == 0xfee0_0010
            && irte_of(phys_addr) == Some(route.index)
            && held == Some(owner)
            && route.guest_vector == GUEST_VECTOR
            && phys_data == 0,
        || {
            format!(
                "physical MSI control {phys_ctl:#x} address {phys_addr:#x} data {phys_data:#x}, IRTE {} held by {held:?} for guest vector {:#x}",
                route.index, route.guest_vector
            )
        },
    )?;

    let edu = Edu::open(mem, f)?;
    let guest = GuestId(GUEST);
    let before = dispatch::guest_delivered(guest);
    let delivered = edu.raise_for_guest(guest, RAISES, ONE_INTERRUPT);
    let pending = dispatch::take_pending(guest);
    let got = dispatch::guest_delivered(guest) - before;
    check(
        delivered == RAISES && got == RAISES && pending == Some(GUEST_VECTOR),
        || format!("{RAISES} raises: {got} delivered to the guest, pending {pending:?}"),
    )?;

    // The guest turns MSI off: the physical MSI goes off, the next raise is nobody's.
    view.write(vbdf, cap + 2, 2, ctl & !1)?;
    let off = irq::irte_owner(route.index).filter(|o| *o == owner);
    let phys_off = physical(f.bdf, cap + 2, 2)?;
    edu.raise(1);
    let late = super::intremap::wait_with_interrupts(ONE_INTERRUPT / 4, || {
        dispatch::guest_delivered(guest) > before + RAISES
    });
    edu.ack(1);
    let flood = flood(view, &edu, vbdf, cap, ctl, f.bdf);
    view.write(vbdf, 0x04, 2, 0)?;
    view.clear_bars(vbdf, &msi.bars)?;
    check(off.is_none() && phys_off & 1 == 0 && !late, || {
        format!(
            "after MSI off: IRTE {} held by {off:?}, physical control {phys_off:#x}, delivered {late}",
            route.index
        )
    })?;
    info!(
        "control-test [12] {vbdf} ({}) MSI written by the guest (vector {GUEST_VECTOR:#x}): IRTE {} -> host vector {:#x}; physical MSI programmed by the control task: control {phys_ctl:#06x}, address {phys_addr:#010x}, data {phys_data:#06x}; {RAISES} raises, {got} delivered to guest 0 with its vector {GUEST_VECTOR:#x} pending; MSI off: physical control {phys_off:#06x}, the next raise delivered to nobody",
        f.bdf, route.index, route.vector
    );
    info!("control-test [12] {}", flood?);
    Ok(true)
}

/// The flood part of step 12 (MSI off at the start and at the end); what it saw, for the log.
fn flood(
    view: &mut GuestView,
    edu: &Edu,
    vbdf: Bdf,
    cap: u16,
    ctl: u32,
    bdf: Bdf,
) -> Result<String, String> {
    view.write(vbdf, cap + 2, 2, ctl | 1)?;
    let address = physical(bdf, cap + 4, 4)?;
    let route = route_of(address).map_err(|e| format!("MSI on again was not routed: {e}"))?;
    let v = route.vector;
    let mut raises = 0u32;
    super::intremap::interrupts_on(|| {
        while raises < FLOOD_MAX_RAISES && dispatch::flood(v) == Flood::None {
            edu.raise(1);
            raises += 1;
        }
    });
    let tripped = dispatch::flood(v) != Flood::None;
    let reports = if tripped {
        irq::service()
    } else {
        alloc::vec::Vec::new()
    };
    let phys_ctl = physical(bdf, cap + 2, 2)?;
    edu.ack(1);
    view.write(vbdf, cap + 2, 2, ctl & !1)?;
    // What arrived before the guard tripped was the guest's.
    let pending = dispatch::take_pending(GuestId(GUEST));
    let report = reports.iter().find(|r| r.vector == v);
    check(
        report.is_some_and(|r| r.device_masked && r.owner == Owner::Guest(GuestId(GUEST)))
            && phys_ctl & 1 == 0
            && pending == Some(GUEST_VECTOR),
        || {
            format!(
                "flood on vector {v:#x} after {raises} raises (tripped {tripped}): report \
                 {report:?}, physical control {phys_ctl:#x}, pending {pending:?}"
            )
        },
    )?;
    Ok(format!(
        "flood: MSI on again (IRTE {} -> host vector {v:#x}), {raises} raises tripped the guard: \
         IRTE masked; the control task turned the physical MSI off for guest 0 (control \
         {phys_ctl:#06x}), reported masked at the device",
        route.index
    ))
}
