//! The flood guard's service path: what the interrupt path ([`dispatch`]) cut off is finished
//! here (the IRTE masked if the handler could not, the source masked at the device) and
//! reported once per flood.

use super::{FLOOD_LIMIT, Flood, Source, dispatch, intx, iommu, with_state};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use conduit_irq::{GuestId, Owner};
use conduit_pci::PciAddress;
use log::{error, warn};

/// One flood the guard cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodReport {
    pub vector: u8,
    pub index: u16,
    pub owner: Owner,
    /// Interrupts within the tick that tripped the guard.
    pub seen: u32,
    pub tick: u64,
    /// Masked at the device too (MSI disabled, by the kernel or the control task; the MSI-X
    /// entry masked; the I/O APIC input masked). False when it could not be: the log says why.
    pub device_masked: bool,
}

/// Runs [`service`] if the interrupt path cut a source off since the last call: the scheduler
/// calls it between time slices (one atomic swap when nothing happened). The reports are logged
/// by [`service`].
pub fn service_floods() {
    if dispatch::take_flood_notice() {
        service();
    }
}

/// Finishes what the interrupt path left: masks IRTEs it could not, masks the flooding sources at
/// the device, and logs one report per flood. Returns the new reports.
///
/// MSI Enable lives in configuration space: the kernel clears it while it owns that space, the
/// control task (`Op::PhysicalMsi`, for the guest owning the function) once it was handed over.
/// The task runs with interrupts enabled, so that happens after the state lock is released.
pub fn service() -> Vec<FloodReport> {
    let mut floods = Vec::new();
    let result = with_state(|s| {
        intx::report_floods(s);
        for &(index, vector, source) in &s.sources.clone() {
            let Flood::Tripped { masked, seen, tick } = dispatch::flood(vector) else {
                continue;
            };
            if s.reported.contains(&vector) {
                continue;
            }
            if !masked {
                iommu::mask_irte(index)?;
                dispatch::set_masked(vector);
            }
            let (what, device) = match source {
                Source::Msi(bdf) => (alloc::format!("{bdf} (MSI)"), AtDevice::MsiOff(bdf)),
                Source::Msix { bdf, entry } => (
                    alloc::format!("{bdf} (MSI-X entry {entry})"),
                    AtDevice::Done(
                        crate::pci::msi::set_msix_entry_masked(s.mem, bdf, entry, true)
                            .map(|()| ", MSI-X entry masked at the device")
                            .map_err(|e| e.to_string()),
                    ),
                ),
                #[cfg(feature = "selftest")]
                Source::IoApic { ioapic, pin } => match s.ioapics.get_mut(ioapic) {
                    Some(io) => {
                        io.dev.set_masked(pin, true);
                        (
                            alloc::format!("I/O APIC {} input {pin}", io.dev.id()),
                            AtDevice::Done(Ok(", I/O APIC input masked")),
                        )
                    }
                    None => (
                        String::from("an I/O APIC input"),
                        AtDevice::Done(Err(alloc::format!("no I/O APIC {ioapic}"))),
                    ),
                },
            };
            let owner = dispatch::binding(vector).map_or(Owner::Hypervisor, |b| b.owner);
            s.reported.push(vector);
            floods.push((index, vector, owner, seen, tick, what, device));
        }
        Ok(())
    });
    if let Err(e) = result {
        error!("irq: flood service: {e}");
    }
    let mut out = Vec::new();
    for (index, vector, owner, seen, tick, what, device) in floods {
        let device = match device {
            AtDevice::Done(r) => r,
            AtDevice::MsiOff(bdf) => msi_off(owner, bdf),
        };
        let at_device = match &device {
            Ok(done) => String::from(*done),
            Err(why) => alloc::format!(", not masked at the device: {why}"),
        };
        warn!(
            "irq: interrupt flood from {what} ({owner}, IRTE {index}, vector {vector:#x}): \
             {seen} interrupts within one tick (limit {FLOOD_LIMIT}) at tick {tick}: IRTE \
             masked (not present, fault processing disabled){at_device}; {} suppressed since",
            dispatch::suppressed(vector)
        );
        out.push(FloodReport {
            vector,
            index,
            owner,
            seen,
            tick,
            device_masked: device.is_ok(),
        });
    }
    out
}

/// A flooding source at the device: masked under the state lock (what the report says, or why
/// not), or its MSI still to be turned off once the lock is released ([`msi_off`]).
enum AtDevice {
    Done(Result<&'static str, String>),
    MsiOff(PciAddress),
}

/// Clears MSI Enable of `bdf` (owned by `owner`): the kernel's write while it owns configuration
/// space, else the control task's for the guest owning the function. What the report says.
fn msi_off(owner: Owner, bdf: PciAddress) -> Result<&'static str, String> {
    match crate::pci::msi::set_msi_enabled(bdf, false) {
        Ok(()) => Ok(", MSI disabled at the device"),
        Err(crate::pci::msi::MsiError::HandedOver(_)) => match owner {
            Owner::Guest(GuestId(g)) => crate::control::physical_msi_off(g, bdf)
                .map(|()| ", MSI disabled at the device by the control task"),
            Owner::Hypervisor => Err(String::from(
                "configuration space belongs to the control task, which serves guests' functions \
                 only",
            )),
        },
        Err(e) => Err(e.to_string()),
    }
}
