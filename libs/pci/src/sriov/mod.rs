//! SR-IOV: the PF's SR-IOV Extended Capability, VF routing IDs and VF BARs.
//!
//! Register layout, PCIe Base Spec r6.0 §9.3.3 (SR-IOV Extended Capability, ID 0x0010):
//!
//! | off  | register                  | §         |
//! |------|---------------------------|-----------|
//! | 0x04 | SR-IOV Capabilities (32)  | 9.3.3.2   |
//! | 0x08 | SR-IOV Control (16)       | 9.3.3.3   |
//! | 0x0a | SR-IOV Status (16, RW1C)  | 9.3.3.4   |
//! | 0x0c | InitialVFs (16)           | 9.3.3.5   |
//! | 0x0e | TotalVFs (16)             | 9.3.3.6   |
//! | 0x10 | NumVFs (16)               | 9.3.3.7   |
//! | 0x12 | Function Dependency Link  | 9.3.3.8   |
//! | 0x14 | First VF Offset (16)      | 9.3.3.9   |
//! | 0x16 | VF Stride (16)            | 9.3.3.10  |
//! | 0x1a | VF Device ID (16)         | 9.3.3.11  |
//! | 0x1c | Supported Page Sizes (32) | 9.3.3.12  |
//! | 0x20 | System Page Size (32)     | 9.3.3.13  |
//! | 0x24 | VF BAR0..5 (6 × 32)       | 9.3.3.14  |
//! | 0x3c | VF Migration State Array  | 9.3.3.15  |
//!
//! VF *n* (0-based) has routing ID `PF + First VF Offset + n * VF Stride`, computed as 16-bit
//! routing IDs, so VFs may sit on bus numbers above the PF's (§9.2.1.2). First VF Offset and VF
//! Stride may change whenever NumVFs or ARI Capable Hierarchy is written (§9.3.3.9, §9.3.3.10):
//! [`SriovCap::set_num_vfs`] and [`SriovCap::set_ari_capable_hierarchy`] re-read them.
//!
//! A VF BAR decodes a contiguous array of NumVFs equally sized apertures: the size read back by
//! the usual all-ones sizing is the per-VF size, VF *n*'s BAR is at `base + n * size`, the total
//! window is `size * NumVFs`, and the base must be aligned to the per-VF size (§9.3.3.14). VF
//! BARs are memory BARs only. Their decode is gated by VF Memory Space Enable (Control bit 3),
//! not by the PF's Command register, so [`SriovCap::size_vf_bars`] clears VF MSE while sizing.

mod vf_bars;

mod vf_view;

pub use vf_bars::{vf_bar_address, vf_bar_window, vf_function_bars};
pub use vf_view::VfConfig;

use crate::bdf::Bdf;
use crate::caps::{ext_cap_id, find_ext_capability};
use crate::config::{self, ConfigAccess};
use crate::error::{CapError, PciError};

/// Register offsets within the SR-IOV capability.
pub mod reg {
    /// SR-IOV Capabilities.
    pub const CAPABILITIES: u16 = 0x04;
    /// SR-IOV Control.
    pub const CONTROL: u16 = 0x08;
    /// SR-IOV Status.
    pub const STATUS: u16 = 0x0a;
    /// InitialVFs.
    pub const INITIAL_VFS: u16 = 0x0c;
    /// TotalVFs.
    pub const TOTAL_VFS: u16 = 0x0e;
    /// NumVFs.
    pub const NUM_VFS: u16 = 0x10;
    /// Function Dependency Link.
    pub const FUNCTION_DEPENDENCY_LINK: u16 = 0x12;
    /// First VF Offset.
    pub const FIRST_VF_OFFSET: u16 = 0x14;
    /// VF Stride.
    pub const VF_STRIDE: u16 = 0x16;
    /// VF Device ID.
    pub const VF_DEVICE_ID: u16 = 0x1a;
    /// Supported Page Sizes.
    pub const SUPPORTED_PAGE_SIZES: u16 = 0x1c;
    /// System Page Size.
    pub const SYSTEM_PAGE_SIZE: u16 = 0x20;
    /// VF BAR0; VF BAR n is at `VF_BAR0 + 4 * n`.
    pub const VF_BAR0: u16 = 0x24;
}

/// SR-IOV Control bits (§9.3.3.3).
pub mod control {
    /// VF Enable.
    pub const VF_ENABLE: u16 = 1 << 0;
    /// VF Migration Enable.
    pub const VF_MIGRATION_ENABLE: u16 = 1 << 1;
    /// VF Migration Interrupt Enable.
    pub const VF_MIGRATION_INTERRUPT_ENABLE: u16 = 1 << 2;
    /// VF Memory Space Enable.
    pub const VF_MSE: u16 = 1 << 3;
    /// ARI Capable Hierarchy (meaningful in the lowest-numbered PF only).
    pub const ARI_CAPABLE_HIERARCHY: u16 = 1 << 4;
}

/// Errors of SR-IOV operations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SriovError {
    /// Header or BAR access failed.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The extended capability list is malformed.
    #[error(transparent)]
    Cap(#[from] CapError),
    /// The function has no SR-IOV capability.
    #[error("{pf}: no SR-IOV capability")]
    NoSriov {
        /// The function.
        pf: Bdf,
    },
    /// The operation needs VF Enable clear (§9.3.3.3.1, §9.3.3.7).
    #[error("{pf}: VF Enable is set")]
    VfEnabled {
        /// The PF.
        pf: Bdf,
    },
    /// NumVFs above TotalVFs.
    #[error("{pf}: {requested} VFs requested, TotalVFs is {total}")]
    TooManyVfs {
        /// The PF.
        pf: Bdf,
        /// Requested NumVFs.
        requested: u16,
        /// TotalVFs.
        total: u16,
    },
    /// VF Enable with NumVFs 0.
    #[error("{pf}: NumVFs is 0")]
    NoVfs {
        /// The PF.
        pf: Bdf,
    },
    /// First VF Offset 0 would give VF 0 the PF's own routing ID.
    #[error("{pf}: First VF Offset is 0")]
    ZeroFirstVfOffset {
        /// The PF.
        pf: Bdf,
    },
    /// VF Stride 0 with more than one VF would give several VFs one routing ID.
    #[error("{pf}: VF Stride is 0 with {num_vfs} VFs")]
    ZeroVfStride {
        /// The PF.
        pf: Bdf,
        /// NumVFs.
        num_vfs: u16,
    },
    /// A VF routing ID would exceed `ff:1f.7`.
    #[error("{pf}: routing ID of VF {index} overflows")]
    RoutingIdOverflow {
        /// The PF.
        pf: Bdf,
        /// VF index.
        index: u16,
    },
    /// VF index not below NumVFs.
    #[error("{pf}: VF index {index} not below NumVFs {num_vfs}")]
    VfIndexOutOfRange {
        /// The PF.
        pf: Bdf,
        /// The index.
        index: u16,
        /// NumVFs.
        num_vfs: u16,
    },
    /// Page size not a power of two of at least 4 KiB, or not in Supported Page Sizes.
    #[error("{pf}: page size {page_size:#x} not supported")]
    UnsupportedPageSize {
        /// The PF.
        pf: Bdf,
        /// The rejected size in bytes.
        page_size: u64,
    },
    /// A VF BAR claims I/O space, which VFs may not use.
    #[error("{pf}: VF BAR {index} indicates I/O space")]
    IoVfBar {
        /// The PF.
        pf: Bdf,
        /// VF BAR index.
        index: u8,
    },
    /// A VF BAR base is misaligned, or the window does not fit a 32-bit BAR / overflows.
    #[error("{pf}: address {address:#x} does not fit VF BAR {index}")]
    BadVfBarAddress {
        /// The PF.
        pf: Bdf,
        /// VF BAR index.
        index: u8,
        /// The rejected address.
        address: u64,
    },
}

/// VF *index*'s routing ID: `pf + first_vf_offset + index * vf_stride`, as 16-bit routing IDs.
/// `None` if it would exceed `0xffff`.
#[must_use]
pub fn vf_bdf(pf: Bdf, first_vf_offset: u16, vf_stride: u16, index: u16) -> Option<Bdf> {
    let rid = u32::from(pf.routing_id())
        + u32::from(first_vf_offset)
        + u32::from(index) * u32::from(vf_stride);
    u16::try_from(rid).ok().map(Bdf::from_routing_id)
}

/// A snapshot of a PF's SR-IOV capability.
///
/// The snapshot goes stale when the device changes registers on its own: the mutating methods
/// below re-read it; call [`SriovCap::refresh`] after writing the capability by other means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SriovCap {
    /// The PF.
    pub pf: Bdf,
    /// Offset of the capability in the PF's configuration space.
    pub offset: u16,
    /// SR-IOV Capabilities register.
    pub capabilities: u32,
    /// SR-IOV Control register.
    pub control: u16,
    /// SR-IOV Status register.
    pub status: u16,
    /// InitialVFs.
    pub initial_vfs: u16,
    /// TotalVFs.
    pub total_vfs: u16,
    /// NumVFs.
    pub num_vfs: u16,
    /// Function Dependency Link.
    pub function_dependency_link: u8,
    /// First VF Offset.
    pub first_vf_offset: u16,
    /// VF Stride.
    pub vf_stride: u16,
    /// VF Device ID.
    pub vf_device_id: u16,
    /// Supported Page Sizes: bit n set means 2^(n+12) bytes is supported.
    pub supported_page_sizes: u32,
    /// System Page Size: the one bit n set selects 2^(n+12) bytes.
    pub system_page_size: u32,
}

impl SriovCap {
    /// Finds the SR-IOV capability of `pf`; `Ok(None)` if it has none.
    pub fn find<C: ConfigAccess + ?Sized>(cfg: &C, pf: Bdf) -> Result<Option<Self>, SriovError> {
        config::read_header(cfg, pf)?;
        match find_ext_capability(cfg, pf, ext_cap_id::SRIOV)? {
            Some(offset) => Self::read(cfg, pf, offset).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the capability at a known `offset`.
    pub fn read<C: ConfigAccess + ?Sized>(
        cfg: &C,
        pf: Bdf,
        offset: u16,
    ) -> Result<Self, SriovError> {
        config::read_header(cfg, pf)?;
        let mut cap = Self {
            pf,
            offset,
            capabilities: 0,
            control: 0,
            status: 0,
            initial_vfs: 0,
            total_vfs: 0,
            num_vfs: 0,
            function_dependency_link: 0,
            first_vf_offset: 0,
            vf_stride: 0,
            vf_device_id: 0,
            supported_page_sizes: 0,
            system_page_size: 0,
        };
        cap.load(cfg);
        Ok(cap)
    }

    fn load<C: ConfigAccess + ?Sized>(&mut self, cfg: &C) {
        let (pf, o) = (self.pf, self.offset);
        let d = |off: u16| cfg.read32(pf, o + off);
        self.capabilities = d(reg::CAPABILITIES);
        let ctl_sts = d(reg::CONTROL);
        self.control = ctl_sts as u16;
        self.status = (ctl_sts >> 16) as u16;
        let vfs = d(reg::INITIAL_VFS);
        self.initial_vfs = vfs as u16;
        self.total_vfs = (vfs >> 16) as u16;
        let num = d(reg::NUM_VFS);
        self.num_vfs = num as u16;
        self.function_dependency_link = (num >> 16) as u8;
        let off_stride = d(reg::FIRST_VF_OFFSET);
        self.first_vf_offset = off_stride as u16;
        self.vf_stride = (off_stride >> 16) as u16;
        self.vf_device_id = (d(reg::VF_DEVICE_ID & !3) >> 16) as u16;
        self.supported_page_sizes = d(reg::SUPPORTED_PAGE_SIZES);
        self.system_page_size = d(reg::SYSTEM_PAGE_SIZE);
    }

    /// Re-reads every register (e.g. after a device-internal change or a reset).
    pub fn refresh<C: ConfigAccess + ?Sized>(&mut self, cfg: &C) -> Result<(), SriovError> {
        config::read_header(cfg, self.pf)?;
        self.load(cfg);
        Ok(())
    }

    /// VF Enable is set.
    #[must_use]
    pub const fn vf_enabled(&self) -> bool {
        self.control & control::VF_ENABLE != 0
    }

    /// VF Memory Space Enable is set.
    #[must_use]
    pub const fn vf_memory_enabled(&self) -> bool {
        self.control & control::VF_MSE != 0
    }

    /// ARI Capable Hierarchy is set.
    #[must_use]
    pub const fn ari_capable_hierarchy(&self) -> bool {
        self.control & control::ARI_CAPABLE_HIERARCHY != 0
    }

    /// The selected system page size in bytes; `None` unless exactly one bit is set.
    #[must_use]
    pub fn system_page_bytes(&self) -> Option<u64> {
        (self.system_page_size.count_ones() == 1)
            .then(|| 1u64 << (self.system_page_size.trailing_zeros() + 12))
    }

    /// Routing ID of VF `index` (0-based) under the current NumVFs, offset and stride.
    pub fn vf(&self, index: u16) -> Result<Bdf, SriovError> {
        let pf = self.pf;
        if index >= self.num_vfs {
            return Err(SriovError::VfIndexOutOfRange {
                pf,
                index,
                num_vfs: self.num_vfs,
            });
        }
        self.check_routing()?;
        vf_bdf(pf, self.first_vf_offset, self.vf_stride, index)
            .ok_or(SriovError::RoutingIdOverflow { pf, index })
    }

    /// All NumVFs VF routing IDs, in VF order. Validates offset, stride and overflow first, so the
    /// iterator itself cannot fail.
    pub fn vfs(&self) -> Result<impl Iterator<Item = Bdf> + use<>, SriovError> {
        self.check_layout()?;
        let (pf, off, stride) = (self.pf, self.first_vf_offset, self.vf_stride);
        Ok((0..self.num_vfs).filter_map(move |i| vf_bdf(pf, off, stride, i)))
    }

    /// The VF index of `vf` if it is one of this PF's NumVFs VFs.
    #[must_use]
    pub fn vf_index(&self, vf: Bdf) -> Option<u16> {
        if self.num_vfs == 0 || self.first_vf_offset == 0 {
            return None;
        }
        let first = u32::from(self.pf.routing_id()) + u32::from(self.first_vf_offset);
        let delta = u32::from(vf.routing_id()).checked_sub(first)?;
        let index = match self.vf_stride {
            0 => (delta == 0).then_some(0)?,
            s => (delta % u32::from(s) == 0).then(|| delta / u32::from(s))?,
        };
        u16::try_from(index).ok().filter(|&i| i < self.num_vfs)
    }

    /// Whether some VF has a non-zero conventional device number, so that the Downstream Port
    /// above must have ARI forwarding enabled to reach it (see [`Bdf::requires_ari_forwarding`]).
    /// For the QEMU igb (offset 0x80, stride 2) this is true for any NumVFs ≥ 1.
    pub fn vfs_need_ari_forwarding(&self) -> Result<bool, SriovError> {
        Ok(self.vfs()?.any(Bdf::requires_ari_forwarding))
    }

    /// Offset, stride and the last VF's routing ID are all usable for the current NumVFs.
    fn check_layout(&self) -> Result<(), SriovError> {
        self.check_routing()?;
        if let Some(last) = self.num_vfs.checked_sub(1) {
            self.vf(last)?;
        }
        Ok(())
    }

    fn check_routing(&self) -> Result<(), SriovError> {
        let pf = self.pf;
        if self.num_vfs > 0 && self.first_vf_offset == 0 {
            return Err(SriovError::ZeroFirstVfOffset { pf });
        }
        if self.num_vfs > 1 && self.vf_stride == 0 {
            return Err(SriovError::ZeroVfStride {
                pf,
                num_vfs: self.num_vfs,
            });
        }
        Ok(())
    }

    fn write_control<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        value: u16,
    ) -> Result<(), SriovError> {
        // Whole dword, zeros in the RW1C Status half (§9.3.3.4).
        cfg.write32(self.pf, self.offset + reg::CONTROL, u32::from(value));
        self.refresh(cfg)
    }

    /// Writes NumVFs, then re-reads the capability: First VF Offset and VF Stride may have
    /// changed (§9.3.3.9/§9.3.3.10). Requires VF Enable clear and `num_vfs <= TotalVFs`. If the
    /// device then reports an unusable offset/stride (0 offset, 0 stride with several VFs, routing
    /// ID overflow) NumVFs is written back to 0 and the error returned.
    pub fn set_num_vfs<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        num_vfs: u16,
    ) -> Result<(), SriovError> {
        let pf = self.pf;
        self.refresh(cfg)?;
        if self.vf_enabled() {
            return Err(SriovError::VfEnabled { pf });
        }
        if num_vfs > self.total_vfs {
            return Err(SriovError::TooManyVfs {
                pf,
                requested: num_vfs,
                total: self.total_vfs,
            });
        }
        cfg.write16(pf, self.offset + reg::NUM_VFS, num_vfs);
        self.refresh(cfg)?;
        if let Err(e) = self.check_layout() {
            cfg.write16(pf, self.offset + reg::NUM_VFS, 0);
            self.refresh(cfg)?;
            return Err(e);
        }
        Ok(())
    }

    /// Sets or clears ARI Capable Hierarchy (meaningful in the PF with the lowest function number
    /// only), then re-reads the capability (offset and stride may change). Requires VF Enable
    /// clear. Set it when the Downstream Port above has ARI forwarding enabled (§9.3.3.3.5).
    pub fn set_ari_capable_hierarchy<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        on: bool,
    ) -> Result<(), SriovError> {
        self.refresh(cfg)?;
        if self.vf_enabled() {
            return Err(SriovError::VfEnabled { pf: self.pf });
        }
        let ctl = if on {
            self.control | control::ARI_CAPABLE_HIERARCHY
        } else {
            self.control & !control::ARI_CAPABLE_HIERARCHY
        };
        self.write_control(cfg, ctl)
    }

    /// Selects the system page size (bytes: a supported power of two ≥ 4 KiB). VF BAR sizes and
    /// alignment follow it (§9.3.3.13), so size VF BARs afterwards. Requires VF Enable clear.
    pub fn set_system_page_size<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        page_bytes: u64,
    ) -> Result<(), SriovError> {
        let pf = self.pf;
        self.refresh(cfg)?;
        if self.vf_enabled() {
            return Err(SriovError::VfEnabled { pf });
        }
        let bad = SriovError::UnsupportedPageSize {
            pf,
            page_size: page_bytes,
        };
        if !page_bytes.is_power_of_two() || page_bytes < 4096 {
            return Err(bad);
        }
        let bit = page_bytes.trailing_zeros() - 12;
        if bit >= 32 || self.supported_page_sizes & (1 << bit) == 0 {
            return Err(bad);
        }
        cfg.write32(pf, self.offset + reg::SYSTEM_PAGE_SIZE, 1 << bit);
        self.refresh(cfg)
    }

    /// Sets VF Enable (and VF MSE if `memory`). Requires NumVFs ≥ 1 with a valid routing layout.
    /// The caller must wait before touching the VFs (100 ms per §9.3.3.3.1, unless the device
    /// reports readiness otherwise) and program VF BARs before setting VF MSE.
    pub fn enable_vfs<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        memory: bool,
    ) -> Result<(), SriovError> {
        self.refresh(cfg)?;
        if self.num_vfs == 0 {
            return Err(SriovError::NoVfs { pf: self.pf });
        }
        self.check_layout()?;
        let mut ctl = self.control | control::VF_ENABLE;
        if memory {
            ctl |= control::VF_MSE;
        }
        self.write_control(cfg, ctl)
    }

    /// Clears VF Enable and VF MSE.
    pub fn disable_vfs<C: ConfigAccess + ?Sized>(&mut self, cfg: &mut C) -> Result<(), SriovError> {
        self.refresh(cfg)?;
        let ctl = self.control & !(control::VF_ENABLE | control::VF_MSE);
        self.write_control(cfg, ctl)
    }

    /// Sets or clears VF Memory Space Enable.
    pub fn set_vf_memory<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        on: bool,
    ) -> Result<(), SriovError> {
        self.refresh(cfg)?;
        let ctl = if on {
            self.control | control::VF_MSE
        } else {
            self.control & !control::VF_MSE
        };
        self.write_control(cfg, ctl)
    }
}
