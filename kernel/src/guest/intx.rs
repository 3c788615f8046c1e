//! A guest's side of its assigned functions' legacy INTx (`docs/interrupts.md`, "INTx of
//! assigned functions"): each function with an Interrupt Pin appears at virtual device `d` with
//! that pin and with Interrupt Line = its virtual I/O APIC input `intx_gsi(d, pin)`
//! (`conduit_guest_acpi`), the input the guest's `_PRT` names for it; the physical line is
//! routed there (`irq::route_intx`) once every guest's functions are known, since a line
//! shared with a function the guest does not own is refused.

use super::Guest;
use alloc::vec::Vec;
use conduit_guest_acpi::{Pin, PrtEntry, intx_gsi};
use conduit_irq::{LineUser, Owner};
use conduit_pci::{Bdf, PciAddress};
use log::{info, warn};

/// The virtual Interrupt Line of a function with physical Interrupt Pin `pin` at virtual device
/// `device`: its virtual I/O APIC input, or 0xFF (unknown, PCI Local Bus Spec 3.0 §6.2.4) for a
/// function without INTx.
pub fn virtual_line(device: u8, pin: u8) -> u8 {
    Pin::from_register(pin).map_or(conduit_irq::intx::LINE_UNKNOWN, |p| {
        intx_gsi(device, p) as u8
    })
}

/// The guest's `_PRT`: every pin of every device number an assigned function can be given
/// (1..=31 on bus 0; device 0 is left to a host bridge), each on its [`intx_gsi`] input. The
/// table is the same for every guest, so it is right whichever functions the guest is given
/// and wherever they land.
pub fn prt() -> Vec<PrtEntry> {
    (1..32u8)
        .flat_map(|d| [Pin::IntA, Pin::IntB, Pin::IntC, Pin::IntD].map(|p| PrtEntry::routed(d, p)))
        .collect()
}

/// Every enumerated function whose INTx reaches a GSI, with its owner: the guest among `guests`
/// it was assigned to, else the hypervisor.
fn line_users(guests: &[&Guest]) -> Vec<LineUser<PciAddress>> {
    let Some(pci) = crate::pci::get() else {
        return Vec::new();
    };
    pci.functions()
        .iter()
        .filter_map(|f| {
            let source = crate::irq::locate_intx(f.intx.pin, f.intx.line)?.ok()?;
            let owner = guests
                .iter()
                .find(|g| g.devices.contains(&f.address()))
                .map_or(Owner::Hypervisor, |g| Owner::Guest(g.id()));
            Some(LineUser {
                function: f.address(),
                gsi: source.gsi,
                owner,
            })
        })
        .collect()
}

/// Routes the INTx of every assigned function of every guest in `guests` that has a virtual
/// platform (a virtual I/O APIC) to its input there. A function whose line cannot be given
/// (not routed by the firmware, shared with a function its guest does not own, no I/O APIC for
/// its GSI) is reported with the reason and keeps MSI and MSI-X only.
pub fn attach_all(guests: &mut [&mut Guest]) {
    let users = {
        let all: Vec<&Guest> = guests.iter().map(|g| &**g).collect();
        line_users(&all)
    };
    let Some(pci) = crate::pci::get() else {
        return;
    };
    for g in guests.iter_mut() {
        let id = g.id();
        let functions: Vec<(Bdf, PciAddress)> =
            g.pci.functions.iter().map(|a| (a.vbdf, a.bdf)).collect();
        for (vbdf, bdf) in functions {
            let Some(f) = pci.function_at(bdf) else {
                continue;
            };
            let Some(pin) = Pin::from_register(f.intx.pin) else {
                continue;
            };
            let input = intx_gsi(vbdf.device(), pin) as u8;
            if g.platform.is_none() {
                info!(
                    "guest \"{}\": INTx of {bdf} is not given: the guest has no virtual I/O \
                     APIC (MSI and MSI-X only)",
                    g.name
                );
                continue;
            }
            let routed = match crate::irq::locate_intx(f.intx.pin, f.intx.line) {
                None => Err(alloc::string::String::from(
                    "interrupts are not initialised",
                )),
                Some(Err(e)) => Err(alloc::format!("{e}")),
                Some(Ok(source)) => crate::irq::route_intx(id, bdf, source, input, &users)
                    .map_err(|e| alloc::format!("{e}")),
            };
            match routed {
                Ok(r) => {
                    if let Some(p) = g.platform.as_mut() {
                        p.wire_intx(input);
                    }
                    info!(
                        "guest \"{}\": {vbdf} INTx: pin INT{}#, Interrupt Line {input}: GSI {} \
                         -> its virtual I/O APIC input {input} (level; masked at the I/O APIC \
                         from each interrupt until the guest's EOI)",
                        g.name,
                        char::from(b'A' + pin.prt_index()),
                        r.source.gsi
                    );
                }
                Err(why) => warn!(
                    "guest \"{}\": INTx of {bdf} refused: {why}; {bdf} is assigned with MSI and \
                     MSI-X only",
                    g.name
                ),
            }
        }
    }
}
