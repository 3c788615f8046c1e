//! The `placement` self-test: a guest's device interrupts go to the CPU that runs the guest.
//! The first guest is placed on a CPU other than the bootstrap processor (`cpus = [N]`) and
//! given QEMU's edu device; no vCPU runs it (TCG has no VMX), so its driver is played through
//! the exit-path entry points (`guest_driver`): it programs the edu's virtual MSI capability
//! (PCIe Base Spec r6.0 §7.7.1), the exit path routes it through an IRTE of the guest's (VT-d
//! spec §9.10), whose destination must be the APIC ID of the guest's CPU (physical destination
//! mode, the table's width). Then the edu raises interrupts (its register 0x60): each must be
//! counted for the guest, with its vector pending, and taken by that CPU, none by the others.
//! Then a guest whose vCPUs span two CPUs (`placement_span`): each interrupt on the CPU of the
//! vCPU its message names.

use super::control::check;
use super::edu::Edu;
use super::guest_driver::{GuestView, irte_of, route_of};
use crate::control;
use crate::guest::Guest;
use crate::irq::dispatch;
use crate::sched::cpus;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_irq::GuestId;
use conduit_pci::Bdf;
use log::info;

/// The guest whose interrupts are followed (the first configured).
const GUEST: u16 = 0;
/// The vector the guest's driver programs.
const GUEST_VECTOR: u8 = 0x53;
/// Interrupts the device raises.
const RAISES: u64 = 8;
const EDU: (u16, u16) = (0x1234, 0x11e8);
/// TSC ticks to wait for one interrupt.
const ONE_INTERRUPT: u64 = 1 << 30;

pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    let placed = crate::guest::boot::placed()
        .into_iter()
        .find(|p| p.index == GUEST)
        .ok_or("the first guest was not placed")?;
    let cpu = placed
        .vcpu_cpus
        .first()
        .copied()
        .ok_or("the first guest has no vCPU")?;
    let apic = cpus::apic_id(cpu).ok_or_else(|| format!("cpu {cpu} has no APIC ID"))?;
    check(cpu != 0, || {
        format!(
            "guest \"{}\" is on cpu 0: place it on another CPU (`cpus = [N]`)",
            placed.name
        )
    })?;
    let g = guests
        .iter_mut()
        .find(|g| g.pci.index == GUEST)
        .ok_or("the first guest has no memory")?;
    let mut view = GuestView::new(g, mem)?;
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let (vbdf, f) = (1..32u8)
        .find_map(|dev| {
            let vbdf = Bdf::new(0, dev, 0)?;
            let f = pci.function(control::assignment(GUEST, vbdf)?)?;
            ((f.vendor_id(), f.device_id()) == EDU).then_some((vbdf, f))
        })
        .ok_or("the first guest has no edu")?;
    // The guest's driver: BAR, memory decode and bus mastering, MSI address, data and Enable.
    let msi = view.enable_msi(vbdf, f, GUEST_VECTOR)?;
    let (cap, ctl) = (msi.cap, msi.ctl);
    let address = control::physical_read(conduit_pci::PciAddress::on_segment0(f.bdf), cap + 4, 4)
        .ok_or("the control task did not read the physical MSI address")?;
    let route = route_of(address).map_err(|e| format!("the enabled MSI was not routed: {e}"))?;
    let index = irte_of(address).ok_or("the MSI address is not in remappable format")?;
    let irte = crate::iommu::read_irte(index)
        .ok_or_else(|| format!("IRTE {index} cannot be read"))?
        .map_err(|e| format!("IRTE {index}: {e}"))?;
    let dest = irte.destination();
    check(
        dest.id() == apic && route.guest_vector == GUEST_VECTOR,
        || {
            format!(
                "IRTE {index}: destination {dest:?}, guest vector {:#x}; want APIC ID {apic} (cpu {cpu}) and {GUEST_VECTOR:#x}",
                route.guest_vector
            )
        },
    )?;

    let online: Vec<usize> = cpus::online().collect();
    let taken_before: Vec<u64> = online
        .iter()
        .map(|&c| cpus::vector_count(c, route.vector))
        .collect();
    let edu = Edu::open(mem, f)?;
    let guest = GuestId(GUEST);
    let before = dispatch::guest_delivered(guest);
    edu.raise_for_guest(guest, RAISES, ONE_INTERRUPT);
    let delivered = dispatch::guest_delivered(guest) - before;
    let pending = dispatch::take_pending(guest);
    let taken: Vec<(usize, u64)> = online
        .iter()
        .zip(&taken_before)
        .map(|(&c, &b)| (c, cpus::vector_count(c, route.vector) - b))
        .collect();
    // The guest turns MSI off again and gives its BAR back.
    view.write(vbdf, cap + 2, 2, ctl & !1)?;
    view.write(vbdf, 0x04, 2, 0)?;
    view.clear_bars(vbdf, &msi.bars)?;
    let on_cpu = taken.iter().find(|(c, _)| *c == cpu).map_or(0, |t| t.1);
    let elsewhere: u64 = taken.iter().filter(|(c, _)| *c != cpu).map(|t| t.1).sum();
    check(
        delivered == RAISES && pending == Some(GUEST_VECTOR) && on_cpu == RAISES && elsewhere == 0,
        || {
            format!(
                "{RAISES} raises: {delivered} delivered to the guest, pending {pending:?}, taken per cpu {taken:?}"
            )
        },
    )?;
    let per_cpu: Vec<String> = taken.iter().map(|(c, n)| format!("cpu {c}: {n}")).collect();
    info!(
        "placement-test: guest \"{}\" on cpu {cpu} (APIC ID {apic}): {vbdf} ({}) MSI -> IRTE {index} destination {dest:?} -> host vector {:#x}; {RAISES} raises, {delivered} delivered to the guest with its vector {GUEST_VECTOR:#x} pending; taken by {}",
        placed.name,
        f.bdf,
        route.vector,
        per_cpu.join(", ")
    );
    Ok(4 + super::placement_span::run(mem, guests)?)
}
