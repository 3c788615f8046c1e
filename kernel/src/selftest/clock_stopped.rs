//! `clock-stopped`: a hardware wait whose clock never advances ends with the named error
//! ([`conduit_hw::time::ClockStopped`]) instead of hanging the boot.
//!
//! PCI enumeration runs with the time reference every wait reads frozen
//! ([`conduit_hw::time::freeze_for_test`]). The configuration names a VF, so [`crate::pci::sriov`]
//! enables it and must then wait 100 ms (PCIe Base Spec r6.0 §9.3.3.3.1) on the stopped clock:
//! that wait must give up with the named error, the PF must be refused with it (VFs disabled
//! again) and boot must go on with the clock thawed.

use crate::pci::sriov::{self, EnableError, PfStatus, Wanted};
use crate::platform::Platform;
use alloc::format;
use alloc::string::String;
use conduit_hw::memory::Memory;
use conduit_hw::time;
use log::info;

/// Enumerates PCI with the clock frozen, then thaws it.
pub fn pci_init(platform: &Platform, mem: &Memory, wanted: &[Wanted]) {
    let at = time::freeze_for_test();
    info!("selftest: clock-stopped: every wait now reads a clock stuck at TSC {at:#x}");
    crate::pci::init(platform, mem, wanted);
    time::thaw_for_test();
    info!("selftest: clock-stopped: the clock runs again");
}

/// Checks that every PF the configuration uses was refused with the clock error and that its
/// VFs are off.
pub fn check() -> Result<usize, String> {
    let pci = crate::pci::get().ok_or("PCI was not enumerated")?;
    let mut refused = 0;
    for pf in sriov::pfs() {
        match &pf.status {
            PfStatus::Refused(EnableError::Clock { what, error }) => {
                let cap = pci
                    .with_config(|cfg| conduit_pci::SriovCap::find(&*cfg, pf.pf))
                    .map_err(|e| format!("{}: {e}", pf.pf))?
                    .ok_or_else(|| format!("{}: no SR-IOV capability", pf.pf))?;
                if cap.vf_enabled() || cap.num_vfs != 0 {
                    return Err(format!(
                        "{}: VF Enable {}, NumVFs {} after the refusal",
                        pf.pf,
                        cap.vf_enabled(),
                        cap.num_vfs
                    ));
                }
                info!(
                    "selftest: clock-stopped: {} refused: {what}: {error}; VF Enable off, NumVFs 0",
                    pf.pf
                );
                refused += 1;
            }
            PfStatus::NotWanted => {}
            other => {
                return Err(format!(
                    "{}: {other:?}, not refused with the clock error",
                    pf.pf
                ));
            }
        }
    }
    if refused == 0 {
        return Err(String::from("no PF was refused with the clock error"));
    }
    Ok(refused)
}
