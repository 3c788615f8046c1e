//! A VF's configuration space as the generic header and capability code can read it.
//!
//! A VF's Vendor ID and Device ID registers read `0xffff` (PCIe Base Spec r6.0 §9.3.4.1.1,
//! §9.3.4.1.2): its identity is the PF's Vendor ID and the PF's SR-IOV VF Device ID (§9.3.3.11).
//! Everything that treats Vendor ID `0xffff` as "no function here" (header reads, capability
//! walks) would therefore skip real VFs. [`VfConfig`] wraps an accessor and, for one VF only,
//! answers the ID dword with the identity taken from its PF when the VF itself reads `0xffff`
//! there but does answer at the Revision ID/Class Code dword. All other accesses pass through.

use crate::bdf::Bdf;
use crate::config::{ConfigAccess, reg};

/// An accessor that presents VF `vf` with the PF's Vendor ID and the VF Device ID.
#[derive(Debug)]
pub struct VfConfig<C> {
    inner: C,
    vf: Bdf,
    id: u32,
}

impl<C: ConfigAccess> VfConfig<C> {
    /// Wraps `inner` for VF `vf` whose identity is `vendor:device`.
    pub const fn new(inner: C, vf: Bdf, vendor: u16, device: u16) -> Self {
        Self {
            inner,
            vf,
            id: (vendor as u32) | ((device as u32) << 16),
        }
    }

    /// The VF answers configuration reads: its Revision ID/Class Code dword is not all ones (an
    /// absent function, or one still returning Configuration Request Retry Status through ECAM,
    /// reads all ones everywhere).
    pub fn answers(&self) -> bool {
        self.inner.read32(self.vf, reg::REVISION_ID) != u32::MAX
    }

    /// What the VF's Vendor ID/Device ID dword really reads (`0xffffffff` on hardware that
    /// follows §9.3.4.1.1; some emulations return the IDs).
    pub fn raw_id(&self) -> u32 {
        self.inner.read32(self.vf, reg::VENDOR_ID)
    }

    /// The wrapped accessor.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: ConfigAccess> ConfigAccess for VfConfig<C> {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        let raw = self.inner.read32(bdf, offset);
        if bdf == self.vf && offset == reg::VENDOR_ID && raw as u16 == 0xffff && self.answers() {
            return self.id;
        }
        raw
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.inner.write32(bdf, offset, value);
    }
}
