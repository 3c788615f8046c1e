//! `[test] scenario = "intx"`: legacy INTx of an assigned function reaches its guest's virtual
//! I/O APIC, level-triggered (`docs/interrupts.md`, "INTx of assigned functions"). QEMU has no
//! VMX, so the OS guest's vCPU never runs: the self-test plays its driver through the entry
//! points a running vCPU's exits reach (`guest_driver`: configuration-port I/O exits, MMIO to the
//! local APIC and I/O APIC as EPT violations) and does what a VM entry does with the platform's
//! interrupts (`Guest::inject_platform_vector`). Device registers are written through the
//! hypervisor's mapping of the BAR: a guest's store to its mapped BAR causes no exit, so the
//! device sees the same write.
//!
//! The guest has two edu devices: the first's INTx is routed to it (its MSI stays off, so edu
//! raises INTA#), the second interrupts by MSI. The script:
//! 1. The guest's configuration space shows the first edu with the physical Interrupt Pin and
//!    Interrupt Line = the virtual I/O APIC input its `_PRT` names.
//! 2. The guest's driver enables its local APIC and programs that I/O APIC input (level, active
//!    low, vector [`INTX_VECTOR`]).
//! 3. [`RAISES`] times: edu raises (register 0x60); the interrupt arrives on the line's host
//!    vector with the physical input masked and the line waiting for the guest's EOI; the next
//!    entry injects [`INTX_VECTOR`]; the handler acknowledges edu (0x64) and writes the local
//!    APIC's EOI register, which unmasks the physical input. Counts must agree.
//! 4. The second edu's MSI, programmed through its virtual MSI capability, reaches the guest.
//! 5. edu raises and is never acknowledged, the guest ending each interrupt with an EOI: the line
//!    fires again at each unmask until the flood guard cuts it off (masked for good, reported
//!    once with guest, function and GSI).
//! 6. The second edu's MSI still reaches the guest.

use super::edu::{self, Edu};
use super::guest_driver::{GuestView, virtual_bdf};
use super::intremap::{ONE_INTERRUPT, interrupts_on, wait_with_interrupts};
use crate::guest::Guest;
use crate::irq::{self, dispatch};
use crate::pci;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_irq::IntxState;
use conduit_pci::Bdf;
use log::info;

/// Interrupts raised in step 3.
const RAISES: u64 = 8;
/// The vector the guest's driver gives the INTx input, and the second edu's MSI.
const INTX_VECTOR: u8 = 0x61;
const MSI_VECTOR: u8 = 0x62;
/// The guest's local APIC and I/O APIC (its MADT) and their registers (Intel SDM Vol. 3A
/// §11.4.1, Table 11-1: spurious-interrupt vector 0xF0, EOI 0xB0; 82093AA §3.1: IOREGSEL, IOWIN).
const LAPIC: u64 = 0xfee0_0000;
const LAPIC_SVR: u64 = 0xf0;
const LAPIC_EOI: u64 = 0xb0;
const IOAPIC: u64 = 0xfec0_0000;
/// SVR: APIC software enable (bit 8), spurious vector 0xFF.
const SVR_ENABLED: u64 = 0x1ff;
/// A redirection entry's low half: level (bit 15), active low (bit 13), fixed, physical, unmasked.
const LEVEL_ACTIVE_LOW: u64 = (1 << 15) | (1 << 13);
/// edu's MSI capability (64-bit: address 0x04, upper 0x08, data 0x0c) and the compatibility-format
/// MSI address of local APIC 0 (SDM Vol. 3A §11.11.1).
const EDU_MSI_CAP: u16 = 0x40;
const MSI_ADDRESS: u32 = 0xfee0_0000;
/// Command: memory space, and bus master for the MSI's memory write (PCI Local Bus Spec 3.0
/// §6.2.2).
const MEMORY: u32 = 0x0002;
const MEMORY_AND_BUS_MASTER: u32 = 0x0006;
/// Where the guest places the second edu's BAR0.
const SECOND_BAR: u64 = crate::guest::devices::BAR_WINDOW.start + (1 << 20);
/// Rounds of "inject, EOI" the flood may take before it must have been cut off.
const FLOOD_ROUNDS: u32 = 20_000;

/// The OS guest given edu devices, and which edu has its INTx.
fn find(guests: &mut [Guest]) -> Result<(&mut Guest, Bdf, Bdf), String> {
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let is_edu = |b: &conduit_pci::PciAddress| {
        pci.function_at(*b)
            .is_some_and(|f| f.vendor_id() == edu::VENDOR && f.device_id() == edu::DEVICE)
    };
    let g = guests
        .iter_mut()
        .find(|g| g.has_platform() && g.devices.iter().any(is_edu))
        .ok_or("no OS guest was given an edu device")?;
    let edus: Vec<Bdf> = g
        .devices
        .iter()
        .copied()
        .filter(is_edu)
        .map(|a| a.bdf)
        .collect();
    let intx = edus
        .iter()
        .copied()
        .find(|b| irq::intx_status(conduit_pci::PciAddress::on_segment0(*b)).is_some())
        .ok_or_else(|| format!("guest \"{}\": no edu has its INTx routed", g.name))?;
    let msi = edus
        .iter()
        .copied()
        .find(|b| *b != intx)
        .ok_or_else(|| format!("guest \"{}\" has one edu, two are needed", g.name))?;
    Ok((g, intx, msi))
}

fn open(mem: &Memory, bdf: Bdf) -> Result<Edu, String> {
    let f = pci::get()
        .and_then(|p| p.function(bdf))
        .ok_or_else(|| format!("{bdf} not enumerated"))?;
    Edu::open(mem, f)
}

/// The INTx line's state: (physical input masked, hand-off state).
fn line(bdf: Bdf) -> Result<(bool, IntxState), String> {
    irq::intx_status(conduit_pci::PciAddress::on_segment0(bdf))
        .map(|(_, masked, state)| (masked, state))
        .ok_or_else(|| format!("{bdf}: no INTx route"))
}

/// Programs input `input` of the guest's I/O APIC: destination APIC 0, `low`.
fn program_input(view: &mut GuestView<'_>, input: u8, low: u64) -> Result<(), String> {
    let index = 0x10 + 2 * u64::from(input);
    view.mmio_write(IOAPIC, 4, index + 1)?;
    view.mmio_write(IOAPIC + 0x10, 4, 0)?;
    view.mmio_write(IOAPIC, 4, index)?;
    view.mmio_write(IOAPIC + 0x10, 4, low)
}

pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    let (g, intx_bdf, msi_bdf) = find(guests)?;
    let id = g.id();
    let name = g.name.clone();
    let (route, _, _) = irq::intx_status(conduit_pci::PciAddress::on_segment0(intx_bdf))
        .ok_or("the route went away")?;
    let phys_pin = pci::get()
        .and_then(|p| p.function(intx_bdf))
        .map(|f| u32::from(f.intx.pin))
        .unwrap_or(0);
    let (edu_intx, edu_msi) = (open(mem, intx_bdf)?, open(mem, msi_bdf)?);
    let vbdf = virtual_bdf(id.0, intx_bdf).ok_or("the INTx edu is not in the topology")?;
    let vbdf_msi = virtual_bdf(id.0, msi_bdf).ok_or("the MSI edu is not in the topology")?;
    let mut view = GuestView::new(g, mem)?;
    let mut steps = 0;

    // [1] What the guest's configuration space shows.
    let (pin, line_reg) = (view.read(vbdf, 0x3d, 1)?, view.read(vbdf, 0x3c, 1)?);
    if pin != phys_pin || line_reg != u32::from(route.input) {
        return Err(format!(
            "{vbdf}: Interrupt Pin {pin} / Line {line_reg}, expected {phys_pin} / {}",
            route.input
        ));
    }
    info!(
        "selftest: intx [1] guest \"{name}\": edu {intx_bdf} at its {vbdf}: Interrupt Pin \
         {pin} (INTA#), Interrupt Line {line_reg} = its I/O APIC input 16 + (({} + {pin} - 1) \
         mod 8); the physical line: Interrupt Line {} -> GSI {} (I/O APIC input {}) -> host \
         vector {:#x} ({})",
        vbdf.device(),
        route.source.line,
        route.source.gsi,
        route.pin,
        route.vector,
        match route.index {
            Some(i) => format!("IRTE {i}"),
            None => String::from("direct"),
        }
    );
    steps += 1;

    // [2] The guest's driver: local APIC on, the input level / active low on INTX_VECTOR.
    view.mmio_write(LAPIC + LAPIC_SVR, 4, SVR_ENABLED)?;
    program_input(
        &mut view,
        route.input,
        LEVEL_ACTIVE_LOW | u64::from(INTX_VECTOR),
    )?;
    let bars: Vec<conduit_pci::Bar> = pci::get()
        .and_then(|p| p.function(intx_bdf))
        .map(|f| f.bars.iter().copied().collect())
        .unwrap_or_default();
    view.place_bars(vbdf, bars)?;
    view.write(vbdf, 0x04, 2, MEMORY)?;
    let entry = view.mmio_read(IOAPIC + 0x10, 4)?;
    info!(
        "selftest: intx [2] guest \"{name}\": local APIC enabled, I/O APIC input {} = \
         {entry:#010x} (vector {INTX_VECTOR:#x}, level, active low, unmasked); the physical \
         input {}",
        route.input,
        if line(intx_bdf)?.0 {
            "masked"
        } else {
            "unmasked"
        }
    );
    steps += 1;

    // [3] Raises, each ended by the guest.
    let before = dispatch::delivered(route.vector);
    let mut injected = 0u64;
    for i in 0..RAISES {
        let seen = dispatch::delivered(route.vector);
        edu_intx.raise(1);
        if !wait_with_interrupts(ONE_INTERRUPT, || dispatch::delivered(route.vector) > seen) {
            return Err(format!(
                "raise {i}: no interrupt on vector {:#x}",
                route.vector
            ));
        }
        let fired = line(intx_bdf)?;
        if fired != (true, IntxState::Asserted) {
            return Err(format!(
                "raise {i}: after the interrupt the line is {fired:?}, expected masked and asserted"
            ));
        }
        let v = view.guest_mut().inject_platform_vector();
        if v != Some(INTX_VECTOR) {
            return Err(format!("raise {i}: the entry injected {v:?}"));
        }
        injected += 1;
        edu_intx.ack(1);
        view.mmio_write(LAPIC + LAPIC_EOI, 4, 0)?;
        let ended = line(intx_bdf)?;
        if ended != (false, IntxState::Armed) {
            return Err(format!(
                "raise {i}: after the guest's EOI the line is {ended:?}, expected unmasked"
            ));
        }
    }
    let delivered = dispatch::delivered(route.vector) - before;
    if delivered != RAISES || injected != RAISES {
        return Err(format!(
            "{RAISES} raises: {delivered} interrupts on the host vector, {injected} injected"
        ));
    }
    info!(
        "selftest: intx [3] {RAISES} raises of edu {intx_bdf}: {delivered} interrupts on host \
         vector {:#x}, each with the physical input masked until the guest's EOI; {injected} \
         injected as vector {INTX_VECTOR:#x} through the guest's I/O APIC input {}; the input \
         unmasked after each EOI",
        route.vector, route.input
    );
    steps += 1;

    // [4] The other device: the second edu's MSI through its virtual capability.
    // BAR0 (32-bit, 1 MiB) right after the first edu's, which `place_bars` put at the start of
    // the window.
    view.write(vbdf_msi, 0x10, 4, SECOND_BAR as u32)?;
    view.write(vbdf_msi, 0x04, 2, MEMORY_AND_BUS_MASTER)?;
    view.write(vbdf_msi, EDU_MSI_CAP + 4, 4, MSI_ADDRESS)?;
    view.write(vbdf_msi, EDU_MSI_CAP + 8, 4, 0)?;
    view.write(vbdf_msi, EDU_MSI_CAP + 0xc, 2, u32::from(MSI_VECTOR))?;
    view.write(vbdf_msi, EDU_MSI_CAP + 2, 2, 1)?;
    let msi_arrives = |view: &mut GuestView<'_>, what: &str| -> Result<(), String> {
        let seen = dispatch::guest_delivered(id);
        edu_msi.raise(1);
        let arrived = wait_with_interrupts(ONE_INTERRUPT, || dispatch::guest_delivered(id) > seen);
        let v = view.guest_mut().inject_platform_vector();
        edu_msi.ack(1);
        view.mmio_write(LAPIC + LAPIC_EOI, 4, 0)?;
        if !arrived || v != Some(MSI_VECTOR) {
            return Err(format!(
                "{what}: the MSI of {msi_bdf} {} and the entry injected {v:?}",
                if arrived { "arrived" } else { "did not arrive" }
            ));
        }
        Ok(())
    };
    msi_arrives(&mut view, "before the flood")?;
    info!(
        "selftest: intx [4] edu {msi_bdf} at its {vbdf_msi}: MSI programmed by the guest \
         (vector {MSI_VECTOR:#x}) delivered and injected"
    );
    steps += 1;

    // [5] A flood: raised, never acknowledged; the guest ends every interrupt with an EOI.
    let seen = dispatch::delivered(route.vector);
    edu_intx.raise(1);
    let mut rounds = 0u32;
    let mut eois = 0u32;
    let cut = interrupts_on(|| -> Result<bool, String> {
        while rounds < FLOOD_ROUNDS {
            rounds += 1;
            if matches!(
                dispatch::flood(route.vector),
                dispatch::Flood::Tripped { .. }
            ) {
                return Ok(true);
            }
            if view.guest_mut().inject_platform_vector() == Some(INTX_VECTOR) {
                view.mmio_write(LAPIC + LAPIC_EOI, 4, 0)?;
                eois += 1;
            }
        }
        Ok(false)
    })?;
    if !cut {
        return Err(format!(
            "the never-acknowledged line was not cut off within {rounds} rounds ({eois} EOIs, \
             {} interrupts)",
            dispatch::delivered(route.vector) - seen
        ));
    }
    irq::service();
    let after = line(intx_bdf)?;
    if after != (true, IntxState::CutOff) {
        return Err(format!(
            "after the flood the line is {after:?}, expected cut off"
        ));
    }
    info!(
        "selftest: intx [5] edu {intx_bdf} raised and never acknowledged: {} interrupts \
         delivered, {eois} ended by the guest's EOI, then cut off by the flood guard (physical \
         input masked)",
        dispatch::delivered(route.vector) - seen
    );
    steps += 1;

    // [6] The guest's other device still interrupts.
    msi_arrives(&mut view, "after the flood")?;
    edu_intx.ack(1);
    info!(
        "selftest: intx [6] after the cut-off: edu {msi_bdf}'s MSI still reaches guest \"{name}\" \
         ({} interrupts counted for it in all)",
        dispatch::guest_delivered(id)
    );
    steps += 1;
    Ok(steps)
}
