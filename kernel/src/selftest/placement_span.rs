//! The `placement` self-test, second part: a guest whose vCPUs span two CPUs gets each device
//! interrupt on the CPU of the vCPU it is for. The guest (an OS guest with a virtual platform,
//! `vcpus = 2`, `cpus = [a, b]`) is given an edu; no vCPU runs it (TCG has no VMX), so its
//! driver is played through the exit-path entry points (`guest_driver`). Its driver addresses
//! the MSI to its local APIC 1 (physical destination mode, Intel SDM Vol. 3A §11.11.1): the IRTE
//! (VT-d spec §9.10) must aim at the APIC ID of vCPU 1's CPU, every raise must be taken by that
//! CPU and by no other, and the vector must land in vCPU 1's local APIC (IRR) and not vCPU 0's.
//! Then the driver readdresses the message to its local APIC 0 with another vector: vCPU 0's
//! CPU, vCPU 0's IRR.

use super::control::check;
use super::edu::{DEVICE, Edu, VENDOR};
use super::guest_driver::{GuestView, irte_of, msi_address, route_of, virtual_bdf};
use crate::control;
use crate::guest::Guest;
use crate::guest::boot::Placed;
use crate::irq::dispatch;
use crate::sched::cpus;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_irq::GuestId;
use conduit_pci::{Bdf, PciAddress};
use log::info;

/// The vector the driver programs for vCPU 1, then for vCPU 0 (higher, so that vCPU 1's IRR
/// would show it above the first had it gone there too).
const VECTOR_1: u8 = 0x63;
const VECTOR_0: u8 = 0x64;
/// Interrupts the device raises per destination.
const RAISES: u64 = 8;
/// TSC ticks to wait for one interrupt.
const ONE_INTERRUPT: u64 = 1 << 30;
/// The guest's local APIC page (xAPIC default base) and its Spurious Interrupt Vector Register:
/// APIC software enable (bit 8), spurious vector 0xFF (SDM Vol. 3A §11.9).
const LAPIC: u64 = 0xfee0_0000;
const LAPIC_SVR: u64 = 0xf0;
const SVR_ENABLED: u64 = 0x1ff;

/// What one destination's raises did.
struct Raised {
    /// The IRTE and its destination.
    index: u16,
    dest: conduit_irq::Destination,
    /// Delivered to the guest, and taken per CPU (cpu, count).
    delivered: u64,
    taken: Vec<(usize, u64)>,
    /// The highest vector in each vCPU's IRR once the pending vectors were drained.
    irr: [Option<u8>; 2],
}

/// Runs the spanning guest's part; returns the steps done.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    let placed = crate::guest::boot::placed()
        .into_iter()
        .find(|p| p.vcpu_cpus.len() > 1)
        .ok_or("no guest was placed with more than one vCPU")?;
    let [cpu0, cpu1] = placed.vcpu_cpus[..] else {
        return Err(format!(
            "guest \"{}\" has {} vCPUs; the test wants 2",
            placed.name,
            placed.vcpu_cpus.len()
        ));
    };
    check(cpu0 != cpu1, || {
        format!(
            "guest \"{}\": both vCPUs on cpu {cpu0}: give them two CPUs (`cpus = [a, b]`)",
            placed.name
        )
    })?;
    let apic = |cpu: usize| cpus::apic_id(cpu).ok_or_else(|| format!("cpu {cpu} has no APIC ID"));
    let (apic0, apic1) = (apic(cpu0)?, apic(cpu1)?);
    let g = guests
        .iter_mut()
        .find(|g| g.pci.index == placed.index)
        .ok_or_else(|| format!("guest \"{}\" has no memory", placed.name))?;
    let homes: Vec<usize> = g.vcpus.iter().map(|v| v.home).collect();
    check(homes == placed.vcpu_cpus && g.has_platform(), || {
        format!(
            "guest \"{}\": vCPU homes {homes:?} (placed {:?}), platform {}",
            placed.name,
            placed.vcpu_cpus,
            g.has_platform()
        )
    })?;
    let (vbdf, f) = edu_of(&placed)?;
    let mut view = GuestView::new(g, mem)?;
    // The guest's OS enables each local APIC (each vCPU writes its own SVR).
    for k in 0..2 {
        view.guest_mut().current = k;
        view.mmio_write(LAPIC + LAPIC_SVR, 4, SVR_ENABLED)?;
    }
    view.guest_mut().current = 0;

    let msi = view.enable_msi_to(vbdf, f, VECTOR_1, 1)?;
    let to1 = raise(mem, &mut view, f, &placed)?;
    expect(&to1, apic1, cpu1, [None, Some(VECTOR_1)], "vCPU 1")?;
    // Readdressed to local APIC 0, with the other vector (MSI stays enabled: each write is
    // routed anew).
    view.write(vbdf, msi.cap + 4, 4, msi_address(0))?;
    view.write(
        vbdf,
        msi.cap + msi.info.data_offset(),
        2,
        u32::from(VECTOR_0),
    )?;
    let to0 = raise(mem, &mut view, f, &placed)?;
    expect(
        &to0,
        apic0,
        cpu0,
        [Some(VECTOR_0), Some(VECTOR_1)],
        "vCPU 0",
    )?;
    // The guest turns MSI off again and gives its BAR back.
    view.write(vbdf, msi.cap + 2, 2, msi.ctl & !1)?;
    view.write(vbdf, 0x04, 2, 0)?;
    view.clear_bars(vbdf, &msi.bars)?;
    for (k, r, vector) in [(1, &to1, VECTOR_1), (0, &to0, VECTOR_0)] {
        let per_cpu: Vec<String> = r
            .taken
            .iter()
            .map(|(c, n)| format!("cpu {c}: {n}"))
            .collect();
        info!(
            "placement-test: guest \"{}\" spans cpu {cpu0} and cpu {cpu1}: {vbdf} ({}) MSI to its \
             local APIC {k} (vector {vector:#x}) -> IRTE {} destination {:?} (cpu {}); {RAISES} \
             raises, {} delivered, taken by {}; vCPU 0's IRR {}, vCPU 1's IRR {}",
            placed.name,
            f.bdf,
            r.index,
            r.dest,
            if k == 1 { cpu1 } else { cpu0 },
            r.delivered,
            per_cpu.join(", "),
            irr_text(r.irr[0]),
            irr_text(r.irr[1]),
        );
    }
    Ok(3)
}

/// The edu the placed guest was given, where its topology shows it.
fn edu_of(placed: &Placed) -> Result<(Bdf, &'static crate::pci::Function), String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    placed
        .devices
        .iter()
        .filter_map(|a| pci.function_at(*a))
        .filter(|f| (f.vendor_id(), f.device_id()) == (VENDOR, DEVICE))
        .find_map(|f| Some((virtual_bdf(placed.index, f.bdf)?, f)))
        .ok_or_else(|| format!("guest \"{}\" has no edu", placed.name))
}

/// The edu raises [`RAISES`] interrupts with the message the guest programmed; then the vectors
/// pending for the guest are drained as its next entry would.
fn raise(
    mem: &'static Memory,
    view: &mut GuestView<'_>,
    f: &crate::pci::Function,
    placed: &Placed,
) -> Result<Raised, String> {
    let address = control::physical_read(PciAddress::on_segment0(f.bdf), msi_cap(f)? + 4, 4)
        .ok_or("the control task did not read the physical MSI address")?;
    let route = route_of(address).map_err(|e| format!("the MSI was not routed: {e}"))?;
    let index = irte_of(address).ok_or("the MSI address is not in remappable format")?;
    let irte = crate::iommu::read_irte(index)
        .ok_or_else(|| format!("IRTE {index} cannot be read"))?
        .map_err(|e| format!("IRTE {index}: {e}"))?;
    let online: Vec<usize> = cpus::online().collect();
    let before: Vec<u64> = online
        .iter()
        .map(|&c| cpus::vector_count(c, route.vector))
        .collect();
    let edu = Edu::open(mem, f)?;
    let guest = GuestId(placed.index);
    let start = dispatch::guest_delivered(guest);
    edu.raise_for_guest(guest, RAISES, ONE_INTERRUPT);
    let taken = online
        .iter()
        .zip(&before)
        .map(|(&c, &b)| (c, cpus::vector_count(c, route.vector) - b))
        .collect();
    let g = view.guest_mut();
    Ok(Raised {
        index,
        dest: irte.destination(),
        delivered: dispatch::guest_delivered(guest) - start,
        taken,
        irr: [g.drained_irr(0), g.drained_irr(1)],
    })
}

/// The physical MSI capability's offset.
fn msi_cap(f: &crate::pci::Function) -> Result<u16, String> {
    f.caps
        .iter()
        .find(|c| c.id == conduit_pci::cap_id::MSI)
        .map(|c| c.offset)
        .ok_or_else(|| format!("{} has no MSI capability", f.bdf))
}

/// `r` went to `apic` (cpu `cpu`) only, each raise delivered, and the IRRs are `irr`.
fn expect(
    r: &Raised,
    apic: u32,
    cpu: usize,
    irr: [Option<u8>; 2],
    what: &str,
) -> Result<(), String> {
    let on_cpu = r.taken.iter().find(|(c, _)| *c == cpu).map_or(0, |t| t.1);
    let elsewhere: u64 = r.taken.iter().filter(|(c, _)| *c != cpu).map(|t| t.1).sum();
    check(
        r.dest.id() == apic
            && r.delivered == RAISES
            && on_cpu == RAISES
            && elsewhere == 0
            && r.irr == irr,
        || {
            format!(
                "MSI for {what}: IRTE {} destination {:?} (want APIC ID {apic}, cpu {cpu}); \
                 {RAISES} raises, {} delivered, taken per cpu {:?}; IRRs {:?} (want {irr:?})",
                r.index, r.dest, r.delivered, r.taken, r.irr
            )
        },
    )
}

/// An IRR's highest vector for the log, `empty` when none is requested.
fn irr_text(v: Option<u8>) -> String {
    v.map_or_else(|| String::from("empty"), |v| format!("{v:#x}"))
}
