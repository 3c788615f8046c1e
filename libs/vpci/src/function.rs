//! [`VirtualFunction`]: the virtual configuration space of one assigned function.
//!
//! Built once from the physical function through a [`ConfigAccess`]; afterwards every guest
//! access is answered from the virtual image and nothing is written to the device. The image is
//! the single source of truth: the emulated registers (Command, BARs, MSI, MSI-X control,
//! Device Control) are ordinary bytes with write masks, and after each write the emulation
//! compares what the core cares about before and after and reports the differences as
//! [`Event`]s. Read-only bytes cannot change, whatever the guest writes.

use alloc::vec::Vec;

use conduit_pci::config::reg;
use conduit_pci::{Bar, Bdf, ConfigAccess, PciError, SriovCap, size_bars, vf_bar_address};

use crate::access::{self, AccessError, Event, Events};
use crate::bar::{self, BAR_COUNT, BadBarReason, VirtualBar};
use crate::caps::{self, HiddenCap, PcieInfo, Policy, pcie};
use crate::header::{self, CommandState, MULTI_FUNCTION, STATUS_RW1C};
use crate::image::{Image, MASKED};
use crate::msi::{self, MsiInfo, MsiState};
use crate::msix::{self, MsixInfo, MsixTable};

/// Why a virtual function could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum BuildError {
    /// Sizing the physical BARs failed.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The function does not answer.
    #[error("{bdf}: no function present")]
    NotPresent {
        /// The function.
        bdf: Bdf,
    },
    /// Only Type 0 (endpoint) headers are assigned.
    #[error("{bdf}: header type {header_type:#04x} is not an endpoint")]
    NotAnEndpoint {
        /// The function.
        bdf: Bdf,
        /// Its Header Type byte.
        header_type: u8,
    },
    /// `vf` is not one of the PF's NumVFs VFs, or VF Enable is clear.
    #[error("{vf} is not an enabled VF of {pf}")]
    NotAVf {
        /// The PF.
        pf: Bdf,
        /// The function asked for.
        vf: Bdf,
    },
    /// A physical BAR cannot back a virtual one.
    #[error("BAR {index}: {reason:?}")]
    BadBar {
        /// BAR index.
        index: u8,
        /// What is wrong with it.
        reason: BadBarReason,
    },
}

/// A VF's configuration space with what the VF does not implement supplied by the PF:
/// Vendor ID and Device ID read `0xFFFF` on a VF (PCIe Base Spec r6.0 §9.3.4.1), so this
/// overlay answers the first dword of `vf` with the PF's Vendor ID and the SR-IOV VF Device ID
/// (§9.3.3.11). Every other read goes to the inner accessor; writes are dropped.
#[derive(Debug)]
pub struct VfConfig<'a, C: ?Sized> {
    cfg: &'a C,
    vf: Bdf,
    id: u32,
}

impl<'a, C: ConfigAccess + ?Sized> VfConfig<'a, C> {
    /// The overlay for `vf` with the given IDs.
    pub fn new(cfg: &'a C, vf: Bdf, vendor_id: u16, device_id: u16) -> Self {
        Self {
            cfg,
            vf,
            id: u32::from(vendor_id) | (u32::from(device_id) << 16),
        }
    }
}

impl<C: ConfigAccess + ?Sized> ConfigAccess for VfConfig<'_, C> {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        if bdf == self.vf && offset == reg::VENDOR_ID {
            self.id
        } else {
            self.cfg.read32(bdf, offset)
        }
    }

    fn write32(&mut self, _bdf: Bdf, _offset: u16, _value: u32) {}
}

/// What the core cares about, compared before and after each write.
#[derive(Clone, Copy, PartialEq, Eq)]
struct State {
    cmd: CommandState,
    decode: [Option<u64>; BAR_COUNT],
    msi: Option<MsiState>,
    msix: Option<(bool, bool)>,
}

/// The emulated configuration space of one function assigned to a guest.
#[derive(Clone)]
pub struct VirtualFunction {
    bdf: Bdf,
    img: Image,
    initial: [u8; MASKED],
    bars: [Option<VirtualBar>; BAR_COUNT],
    msi: Option<MsiInfo>,
    msix: Option<MsixInfo>,
    table: Option<MsixTable>,
    pcie: Option<PcieInfo>,
    hidden: Vec<HiddenCap>,
    legacy_fault: Option<conduit_pci::CapError>,
    extended_fault: Option<conduit_pci::CapError>,
}

impl core::fmt::Debug for VirtualFunction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtualFunction")
            .field("bdf", &self.bdf)
            .field("bars", &self.bars)
            .field("msi", &self.msi)
            .field("msix", &self.msix)
            .finish_non_exhaustive()
    }
}

impl VirtualFunction {
    /// Builds the virtual function for `bdf` from its configuration space as `cfg` shows it
    /// (for a VF: a [`VfConfig`]) and the physical BARs behind it (`bars`, with this function's
    /// physical addresses). Reads only.
    pub fn build<C: ConfigAccess + ?Sized>(
        cfg: &C,
        bdf: Bdf,
        bars: &[Bar],
        policy: &Policy<'_>,
    ) -> Result<Self, BuildError> {
        let vendor = cfg.read16(bdf, reg::VENDOR_ID);
        if matches!(vendor, 0xffff | 0x0000) {
            return Err(BuildError::NotPresent { bdf });
        }
        let header_type = cfg.read8(bdf, reg::HEADER_TYPE);
        if header_type & 0x7f != 0 {
            return Err(BuildError::NotAnEndpoint { bdf, header_type });
        }
        let mut img = Image::new();
        header::build(&mut img, cfg, bdf, bars.iter().any(Bar::is_io));
        let vbars = bar::build(&mut img, bars)
            .map_err(|(index, reason)| BuildError::BadBar { index, reason })?;
        let layout = caps::build(&mut img, cfg, bdf, &vbars, policy);
        header::set_cap_list(&mut img, layout.any_legacy);
        Ok(Self {
            bdf,
            initial: img.masked_snapshot(),
            img,
            bars: vbars,
            msi: layout.msi,
            msix: layout.msix,
            table: layout.msix.map(|m| MsixTable::new(m.table_size)),
            pcie: layout.pcie,
            hidden: layout.hidden,
            legacy_fault: layout.legacy_fault,
            extended_fault: layout.extended_fault,
        })
    }

    /// Builds from a function that implements its own IDs and BARs (a PF, or any endpoint),
    /// sizing its BARs with conduit-pci's [`size_bars`] (decode is off while sizing and the
    /// Command register restored). Call before the function is in use.
    pub fn from_function<C: ConfigAccess + ?Sized>(
        cfg: &mut C,
        bdf: Bdf,
        policy: &Policy<'_>,
    ) -> Result<Self, BuildError> {
        let bars: Vec<Bar> = size_bars(cfg, bdf)?.iter().copied().collect();
        Self::build(&*cfg, bdf, &bars, policy)
    }

    /// Builds for SR-IOV VF `vf` of the PF described by `sriov`. `vf_bars` are the PF's VF
    /// BARs as sized ([`SriovCap::size_vf_bars`], per-VF sizes) and programmed: this VF's
    /// apertures are at `base + index * size` (§9.3.3.14). Vendor ID comes from the PF, Device
    /// ID from the SR-IOV VF Device ID; the rest is read from the VF. Reads only.
    pub fn from_vf<C: ConfigAccess + ?Sized>(
        cfg: &C,
        sriov: &SriovCap,
        vf_bars: &conduit_pci::Bars,
        vf: Bdf,
        policy: &Policy<'_>,
    ) -> Result<Self, BuildError> {
        let pf = sriov.pf;
        let index = sriov
            .vf_index(vf)
            .filter(|_| sriov.vf_enabled())
            .ok_or(BuildError::NotAVf { pf, vf })?;
        if cfg.read32(vf, reg::REVISION_ID) == u32::MAX {
            return Err(BuildError::NotPresent { bdf: vf });
        }
        let mut bars = Vec::new();
        for b in vf_bars.iter() {
            let address = vf_bar_address(b, index).ok_or(BuildError::BadBar {
                index: b.index,
                reason: BadBarReason::Misaligned,
            })?;
            bars.push(Bar { address, ..*b });
        }
        let vendor = cfg.read16(pf, reg::VENDOR_ID);
        let overlay = VfConfig::new(cfg, vf, vendor, sriov.vf_device_id);
        Self::build(&overlay, vf, &bars, policy)
    }

    /// Guest read of `size` (1, 2, 4) bytes at `offset`.
    pub fn read(&self, offset: u16, size: u8) -> Result<u32, AccessError> {
        let off = access::check_config(offset, size)?;
        Ok(self.img.read(off, size))
    }

    /// Guest write of `size` (1, 2, 4) bytes at `offset`; returns what the core must do.
    pub fn write(&mut self, offset: u16, size: u8, value: u32) -> Result<Events, AccessError> {
        let off = access::check_config(offset, size)?;
        let mut events = Events::new();
        if usize::from(off) >= MASKED {
            return Ok(events);
        }
        let before = self.state();
        let mut flr = false;
        for i in 0..u16::from(size) {
            let o = off + i;
            let byte = (value >> (8 * i)) as u8;
            if let Some(p) = self.pcie
                && p.flr
                && o == p.offset + pcie::DEVCTL + 1
                && byte & (pcie::DEVCTL_FLR >> 8) as u8 != 0
            {
                flr = true;
            }
            self.img.guest_write8(o, byte);
        }
        if let Some(m) = self.msi {
            msi::fixup(&mut self.img, &m);
        }
        if flr {
            events.push(Event::FunctionReset);
            self.reset_state();
        }
        self.emit(&before, &mut events);
        Ok(events)
    }

    /// Returns the virtual function to its state right after the build (the reset state: decode
    /// and bus mastering off, BARs zero, MSI and MSI-X disabled, table entries masked) and
    /// reports what stopped. For the core's own resets (guest reboot); a guest FLR does this
    /// by itself.
    pub fn reset(&mut self) -> Events {
        let before = self.state();
        self.reset_state();
        let mut events = Events::new();
        self.emit(&before, &mut events);
        events
    }

    /// Sets RW1C Status bits (e.g. Received Master Abort) for the guest to see and clear.
    /// Bits outside [`STATUS_RW1C`] are ignored.
    pub fn raise_status(&mut self, bits: u16) {
        let st = self.img.get16(reg::STATUS);
        self.img.set16(reg::STATUS, st | (bits & STATUS_RW1C));
    }

    /// Sets the Multi-Function bit of Header Type (the topology does this on function 0 of a
    /// device with further functions, PCI Local Bus Spec 3.0 §6.2.1).
    pub fn set_multi_function(&mut self, on: bool) {
        let v = if on { MULTI_FUNCTION } else { 0 };
        self.img.set8(reg::HEADER_TYPE, v);
        if let Some(b) = self.initial.get_mut(usize::from(reg::HEADER_TYPE)) {
            *b = v;
        }
    }

    /// Sets the Interrupt Line the guest first reads, and reads again after a reset (a
    /// software-owned register, PCI Local Bus Spec 3.0 §6.2.4: what firmware would have left
    /// there, here the guest's interrupt input for the function's pin). The guest may still
    /// write it.
    pub fn set_interrupt_line(&mut self, line: u8) {
        self.img.set8(header::INTERRUPT_LINE, line);
        if let Some(b) = self.initial.get_mut(usize::from(header::INTERRUPT_LINE)) {
            *b = line;
        }
    }

    /// Programs BAR register `offset` with `base` as firmware leaves it, before the guest runs:
    /// the guest first reads it there, and reads it there again after a reset (as after a
    /// Function Level Reset on a machine whose firmware re-assigns, PCI Firmware Spec 3.3 §3.5),
    /// so a rebuilt function and a reset one agree. Decode stays as it is (no event).
    pub fn place_bar(&mut self, offset: u16, base: u32) -> Result<(), AccessError> {
        self.write(offset, 4, base)?;
        for at in offset..offset + 4 {
            let byte = self.img.get8(at);
            if let Some(b) = self.initial.get_mut(usize::from(at)) {
                *b = byte;
            }
        }
        Ok(())
    }

    /// The physical function behind this virtual one.
    #[must_use]
    pub const fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The implemented BARs.
    pub fn bars(&self) -> impl Iterator<Item = &VirtualBar> {
        self.bars.iter().flatten()
    }

    /// BAR `index`, if implemented (the upper half of a 64-bit BAR is not).
    #[must_use]
    pub fn bar(&self, index: u8) -> Option<&VirtualBar> {
        self.bars.get(usize::from(index)).and_then(Option::as_ref)
    }

    /// The address the guest programmed into BAR `index`, decoding or not.
    #[must_use]
    pub fn bar_guest_addr(&self, index: u8) -> Option<u64> {
        self.bar(index).map(|b| bar::guest_addr(&self.img, b))
    }

    /// Where BAR `index` decodes now: `Some` when its space is enabled in Command.
    #[must_use]
    pub fn bar_decoding(&self, index: u8) -> Option<u64> {
        let cmd = CommandState::read(&self.img);
        bar::decoding(&self.img, &self.bars, cmd)
            .get(usize::from(index))
            .copied()
            .flatten()
    }

    /// The MSI capability, if linked.
    #[must_use]
    pub const fn msi(&self) -> Option<&MsiInfo> {
        self.msi.as_ref()
    }

    /// The MSI-X capability, if linked.
    #[must_use]
    pub const fn msix(&self) -> Option<&MsixInfo> {
        self.msix.as_ref()
    }

    /// The virtual MSI-X table.
    #[must_use]
    pub const fn msix_table(&self) -> Option<&MsixTable> {
        self.table.as_ref()
    }

    /// The virtual MSI-X table, for the core's trapped-page accesses.
    pub const fn msix_table_mut(&mut self) -> Option<&mut MsixTable> {
        self.table.as_mut()
    }

    /// (MSI-X Enable, Function Mask) as the guest set them.
    #[must_use]
    pub fn msix_control(&self) -> Option<(bool, bool)> {
        self.msix.map(|m| msix::control_state(&self.img, &m))
    }

    /// Guest address of the MSI-X table (the page the core traps), while its BAR decodes.
    #[must_use]
    pub fn msix_table_guest_addr(&self) -> Option<u64> {
        let m = self.msix?;
        self.bar_decoding(m.table_bir)
            .and_then(|base| base.checked_add(u64::from(m.table_offset)))
    }

    /// Physical capabilities left out of the virtual lists.
    #[must_use]
    pub fn hidden_caps(&self) -> &[HiddenCap] {
        &self.hidden
    }

    /// How the physical legacy list was malformed, if it was (the walk stopped there).
    #[must_use]
    pub const fn legacy_fault(&self) -> Option<conduit_pci::CapError> {
        self.legacy_fault
    }

    /// How the physical extended list was malformed, if it was.
    #[must_use]
    pub const fn extended_fault(&self) -> Option<conduit_pci::CapError> {
        self.extended_fault
    }

    fn reset_state(&mut self) {
        self.img.restore_masked(&self.initial);
        if let Some(t) = self.table.as_mut() {
            t.reset();
        }
    }

    fn state(&self) -> State {
        let cmd = CommandState::read(&self.img);
        State {
            cmd,
            decode: bar::decoding(&self.img, &self.bars, cmd),
            msi: self.msi.map(|m| MsiState::read(&self.img, &m)),
            msix: self.msix_control(),
        }
    }

    fn emit(&self, before: &State, events: &mut Events) {
        let after = self.state();
        if after.cmd != before.cmd {
            events.push(Event::CommandChanged {
                memory: after.cmd.memory,
                io: after.cmd.io,
                bus_master: after.cmd.bus_master,
                intx_disable: after.cmd.intx_disable,
            });
        }
        bar::diff(&self.bars, &before.decode, &after.decode, events);
        if after.msi != before.msi
            && let Some(m) = after.msi
        {
            events.push(m.event());
        }
        if after.msix != before.msix
            && let Some((enabled, function_mask)) = after.msix
        {
            events.push(Event::MsixControlChanged {
                enabled,
                function_mask,
            });
        }
    }
}
