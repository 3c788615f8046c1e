//! SR-IOV virtual functions are not found by enumeration (they appear only once their PF's VF
//! Enable is set, and their Vendor ID may read 0xffff: PCIe Base Spec r6.0 §9.3.4.1.1); this finds
//! the PF of an enabled VF from the PFs' SR-IOV capabilities.

use super::Pci;
use conduit_pci::{Bdf, SriovCap, ext_cap_id};

/// The PF and VF index of `vf`, if some enumerated PF has VF Enable set and `vf` is one of its
/// NumVFs VFs.
pub fn parent(pci: &Pci, vf: Bdf) -> Option<(Bdf, u16)> {
    pci.functions()
        .iter()
        .filter(|f| f.ext_caps.iter().any(|c| c.id == ext_cap_id::SRIOV))
        .find_map(|f| {
            let cap = pci.with_config(|cfg| SriovCap::find(&*cfg, f.bdf).ok().flatten())?;
            let index = cap.vf_enabled().then(|| cap.vf_index(vf)).flatten()?;
            Some((f.bdf, index))
        })
}
