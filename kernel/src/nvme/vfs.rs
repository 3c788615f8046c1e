//! Turning a PF's VFs on again after the PF's Function Level Reset (SR-IOV, PCIe Base Spec r6.0
//! §9.3.3).
//!
//! [`crate::pci::sriov`] enables every PF's VFs at boot (NumVFs = TotalVFs) and places their BARs
//! below 4 GiB. The nvme PF manager ([`super::pf`]) then resets the PF to apply the primary
//! controller's flexible allocation, which clears NumVFs and VF Enable (the VF BARs, System Page
//! Size and ARI Capable Hierarchy come back from [`crate::pci::reset`]'s save/restore). So
//! [`enable`] runs only *after* that reset, with at least as many VFs as before (the function
//! list and the VF BDFs stay valid), and the PF is never reset again afterwards. A VF BAR still
//! at 0 (no PCI manager placed it) is refused here.

use crate::pci::Pci;
use alloc::string::String;
use conduit_hw::time;
use conduit_pci::{Bar, Bdf, SriovCap, vf_bar_address};

/// Time to wait after VF Enable before the VFs are used (§9.3.3.3.1).
const VF_ENABLE_MS: u64 = 100;

/// A PF's enabled VFs.
#[derive(Debug, Clone, Copy)]
pub struct EnabledVfs {
    pub sriov: SriovCap,
    /// VF BAR0 as sized and programmed (its size is one VF's aperture).
    pub bar0: Bar,
}

impl EnabledVfs {
    /// Routing ID and BAR0 address of VF `index`.
    pub fn vf(&self, index: u16) -> Option<(Bdf, u64)> {
        let bdf = self.sriov.vf(index).ok()?;
        Some((bdf, vf_bar_address(&self.bar0, index)?))
    }
}

/// NumVFs := max(`wanted`, what was enabled before), VF Enable and VF Memory Space Enable, then
/// waits the 100 ms the specification gives VFs.
pub fn enable(pci: &Pci, pf: Bdf, wanted: u16, before: u16) -> Result<EnabledVfs, String> {
    let enabled = pci.with_config(|cfg| {
        let mut sriov = SriovCap::find(&*cfg, pf)
            .map_err(|e| alloc::format!("{e}"))?
            .ok_or_else(|| alloc::format!("{pf}: no SR-IOV capability"))?;
        if sriov.vf_enabled() {
            sriov.disable_vfs(cfg).map_err(|e| alloc::format!("{e}"))?;
        }
        let num = wanted.max(before);
        sriov
            .set_num_vfs(cfg, num)
            .map_err(|e| alloc::format!("{e}"))?;
        let bars = sriov.size_vf_bars(cfg).map_err(|e| alloc::format!("{e}"))?;
        let bar0 = *bars
            .get(0)
            .ok_or_else(|| alloc::format!("{pf}: the SR-IOV capability has no VF BAR0"))?;
        if bar0.address == 0 {
            return Err(alloc::format!(
                "{pf}: VF BAR0 is not placed (address 0): the PCI manager must program it first"
            ));
        }
        sriov
            .enable_vfs(cfg, true)
            .map_err(|e| alloc::format!("{e}"))?;
        Ok(EnabledVfs { sriov, bar0 })
    })?;
    time::delay_ms(VF_ENABLE_MS)
        .map_err(|e| alloc::format!("{pf}: the {VF_ENABLE_MS} ms wait after VF Enable: {e}"))?;
    Ok(enabled)
}

/// NumVFs currently enabled on `pf` (0 if VF Enable is clear or there is no SR-IOV capability).
pub fn enabled_count(pci: &Pci, pf: Bdf) -> u16 {
    pci.with_config(|cfg| match SriovCap::find(&*cfg, pf) {
        Ok(Some(c)) if c.vf_enabled() => c.num_vfs,
        _ => 0,
    })
}

/// Sets Bus Master Enable and Memory Space Enable in a VF's Command register; returns the value
/// read back. Memory Space Enable is read-only zero in a VF (VF MSE in the PF decides,
/// §9.3.4.1.3), so writing it is harmless where the device follows the specification, but QEMU 10
/// gates a VF's BAR decode on it (a VF with it clear reads 0 everywhere). Written directly: a
/// VF's Vendor ID reads 0xffff (§9.3.4.1.1), so the usual header checks do not apply.
pub fn enable_vf_command(pci: &Pci, vf: Bdf) -> u16 {
    use conduit_pci::ConfigAccess;
    use conduit_pci::config::{command, reg};
    pci.with_config(|cfg| {
        let old = cfg.read16(vf, reg::COMMAND);
        let new = old | command::BUS_MASTER | command::MEMORY_SPACE;
        cfg.write32(vf, reg::COMMAND, u32::from(new));
        cfg.read16(vf, reg::COMMAND)
    })
}
