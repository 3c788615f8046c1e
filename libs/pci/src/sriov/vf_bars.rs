//! VF BARs: sizing through the SR-IOV capability, programming, window arithmetic.
//!
//! PCIe Base Spec r6.0 §9.3.3.14: VF BARn has the format of a memory BAR (PCI Local Bus Spec 3.0
//! §6.2.5.1); sizing it the usual way yields the aperture of **one** VF, the VFs' apertures are
//! laid out contiguously from the programmed base, the total window is `size × NumVFs`, and its
//! decode is enabled by VF Memory Space Enable in SR-IOV Control (§9.3.3.3.4).

use super::{SriovCap, SriovError, control, reg};
use crate::bar::{self, Bar, BarKind, Bars};
use crate::config::ConfigAccess;

impl SriovCap {
    /// Sizes the six VF BARs. Each [`Bar::size`] is the **per-VF** size; see [`vf_bar_window`].
    /// VF MSE is cleared during sizing and restored afterwards. Size after choosing the system
    /// page size: the reported sizes depend on it.
    pub fn size_vf_bars<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
    ) -> Result<Bars, SriovError> {
        self.refresh(cfg)?;
        let saved = self.control;
        if saved & control::VF_MSE != 0 {
            self.write_control(cfg, saved & !control::VF_MSE)?;
        }
        let result = bar::probe_block(cfg, self.pf, self.offset + reg::VF_BAR0, 6);
        if saved & control::VF_MSE != 0 {
            self.write_control(cfg, saved)?;
        }
        let bars = result?;
        if let Some(io) = bars.iter().find(|b| b.is_io()) {
            return Err(SriovError::IoVfBar {
                pf: self.pf,
                index: io.index,
            });
        }
        Ok(bars)
    }

    /// Programs VF BAR `bar` (from [`SriovCap::size_vf_bars`]) so that VF 0's aperture starts at
    /// `address`. The address must be aligned to the per-VF size, and for a 32-bit VF BAR the
    /// whole window (`size * NumVFs`) must end below 4 GiB. VF MSE is off during the update and
    /// restored afterwards. Returns the BAR as now programmed.
    pub fn write_vf_bar<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        bar: &Bar,
        address: u64,
    ) -> Result<Bar, SriovError> {
        let pf = self.pf;
        let bad = SriovError::BadVfBarAddress {
            pf,
            index: bar.index,
            address,
        };
        if bar.index > 5 || (bar.is_64bit() && bar.index > 4) || bar.is_io() {
            return Err(bad);
        }
        let window = vf_bar_window(bar, self.num_vfs.max(1)).ok_or(bad)?;
        let aligned = bar.size.is_power_of_two() && address & (bar.size - 1) == 0;
        let end = address.checked_add(window - 1).ok_or(bad)?;
        if !aligned || (bar.kind == BarKind::Memory32 && end > u64::from(u32::MAX)) {
            return Err(bad);
        }
        self.refresh(cfg)?;
        let saved = self.control;
        if saved & control::VF_MSE != 0 {
            self.write_control(cfg, saved & !control::VF_MSE)?;
        }
        bar::write_bar_at(
            cfg,
            pf,
            self.offset + reg::VF_BAR0 + 4 * u16::from(bar.index),
            bar,
            address,
        );
        if saved & control::VF_MSE != 0 {
            self.write_control(cfg, saved)?;
        }
        Ok(Bar { address, ..*bar })
    }
}

/// Total window of a VF BAR for `num_vfs` VFs: per-VF size × NumVFs; `None` on overflow.
#[must_use]
pub fn vf_bar_window(bar: &Bar, num_vfs: u16) -> Option<u64> {
    bar.size.checked_mul(u64::from(num_vfs))
}

/// Address of VF `index`'s aperture of a VF BAR programmed at `bar.address`.
#[must_use]
pub fn vf_bar_address(bar: &Bar, index: u16) -> Option<u64> {
    bar.size
        .checked_mul(u64::from(index))
        .and_then(|off| bar.address.checked_add(off))
}

/// The BARs VF `index` decodes: for each VF BAR (programmed at `vf_bars`' addresses, as returned
/// by [`SriovCap::write_vf_bar`]), the VF's own aperture of the per-VF size (§9.3.3.14). The VF's
/// own BAR registers are read-only zero (§9.3.4.1.11), so this is the only way to learn them.
/// `None` if an address overflows.
#[must_use]
pub fn vf_function_bars(vf_bars: &Bars, index: u16) -> Option<Bars> {
    let mut out = Bars::default();
    for bar in vf_bars.iter() {
        let address = vf_bar_address(bar, index)?;
        address.checked_add(bar.size.checked_sub(1)?)?;
        out.set(Bar { address, ..*bar });
    }
    Some(out)
}
