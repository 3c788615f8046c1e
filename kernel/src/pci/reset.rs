//! Function Level Reset (PCIe Base Spec r6.0 §6.6.2) with the configuration state saved and
//! restored around it.
//!
//! An FLR returns the function's configuration registers to their initial values (BARs, Command,
//! Device Control, the SR-IOV capability's NumVFs and VF Enable included), so software saves what
//! it programmed and writes it back (§6.6.2: "software ... is responsible for restoring"). The
//! sequence: FLR capable (Device Capabilities bit 28); bus mastering off and Transactions Pending
//! (Device Status bit 5) clear; save; Initiate Function Level Reset (Device Control bit 15);
//! 100 ms (§6.6.2: the function must complete the FLR within 100 ms); the function answers
//! configuration reads again; restore, Command last.
//!
//! VF Enable is *not* restored: whoever needs VFs enables them after the reset, knowing that
//! their state (and a device's per-VF configuration) is gone. The restored SR-IOV state is the
//! System Page Size, the VF BARs, NumVFs and the Control bits other than VF Enable.

use super::access::Access;
use conduit_hw::time;
use conduit_pci::sriov::{control, reg as sriov_reg};
use conduit_pci::{Bdf, ConfigAccess, SriovCap};
use log::warn;

/// Device Capabilities, Device Control and Device Status within the PCIe capability.
const DEVCAP: u16 = 0x04;
const DEVCTL: u16 = 0x08;
const DEVSTA: u16 = 0x0a;
const DEVCAP_FLR: u32 = 1 << 28;
const DEVCTL_INITIATE_FLR: u16 = 1 << 15;
const DEVSTA_TRANSACTIONS_PENDING: u16 = 1 << 5;
/// Time a function has to complete an FLR.
const FLR_MS: u64 = 100;
/// How long the function may keep answering with all ones (or Configuration Request Retry)
/// after that.
const READY_MS: u64 = 1000;
/// How long to wait for outstanding transactions before the reset.
const PENDING_MS: u64 = 100;

/// Why a function could not be reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetError {
    /// The function is gone (all ones).
    Absent(Bdf),
    /// No PCI Express capability, or Device Capabilities lacks FLR.
    NotCapable(Bdf),
    /// The function did not answer within a second after the reset.
    NotReady(Bdf),
    /// A wait of the reset was abandoned: the clock stopped.
    Clock {
        bdf: Bdf,
        what: &'static str,
        error: time::ClockStopped,
    },
}

impl core::fmt::Display for ResetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Absent(b) => write!(f, "{b} does not answer configuration reads"),
            Self::NotCapable(b) => write!(f, "{b} is not capable of a function level reset"),
            Self::NotReady(b) => write!(f, "{b} did not come back within {READY_MS} ms of its FLR"),
            Self::Clock { bdf, what, error } => write!(f, "{bdf}: {what}: {error}"),
        }
    }
}

/// What [`function_level_reset`] restores.
#[derive(Debug, Clone, Copy)]
struct Saved {
    /// Dwords 0x00-0x3f of the type-0 header.
    header: [u32; 16],
    pcie: u16,
    devctl: u16,
    devctl2: u16,
    sriov: Option<SavedSriov>,
}

#[derive(Debug, Clone, Copy)]
struct SavedSriov {
    offset: u16,
    control: u16,
    num_vfs: u16,
    system_page_size: u32,
    vf_bars: [u32; 6],
}

fn save(cfg: &Access, bdf: Bdf, pcie: u16) -> Saved {
    let mut header = [0u32; 16];
    for (i, d) in header.iter_mut().enumerate() {
        *d = cfg.read32(bdf, (i * 4) as u16);
    }
    let sriov = SriovCap::find(cfg, bdf).ok().flatten().map(|c| {
        let mut vf_bars = [0u32; 6];
        for (i, b) in vf_bars.iter_mut().enumerate() {
            *b = cfg.read32(bdf, c.offset + sriov_reg::VF_BAR0 + 4 * i as u16);
        }
        SavedSriov {
            offset: c.offset,
            control: c.control,
            num_vfs: c.num_vfs,
            system_page_size: c.system_page_size,
            vf_bars,
        }
    });
    Saved {
        header,
        pcie,
        devctl: cfg.read16(bdf, pcie + DEVCTL),
        devctl2: cfg.read16(bdf, pcie + conduit_pci::pcie::PCIE_DEVCTL2),
        sriov,
    }
}

fn restore(cfg: &mut Access, bdf: Bdf, s: &Saved) {
    // BARs and the expansion ROM BAR first, with decoding still off.
    for off in (0x10..=0x24).step_by(4).chain([0x30]) {
        cfg.write32(bdf, off, s.header[usize::from(off / 4)]);
    }
    // Cache Line Size and Latency Timer (the upper half is Header Type and BIST).
    cfg.write16(bdf, 0x0c, s.header[3] as u16);
    // Interrupt Line.
    cfg.write8(bdf, 0x3c, s.header[15] as u8);
    // Device Control with zeros in the RW1C Device Status half; Device Control 2.
    cfg.write32(
        bdf,
        s.pcie + DEVCTL,
        u32::from(s.devctl & !DEVCTL_INITIATE_FLR),
    );
    cfg.write16(bdf, s.pcie + conduit_pci::pcie::PCIE_DEVCTL2, s.devctl2);
    if let Some(v) = s.sriov {
        cfg.write32(
            bdf,
            v.offset + sriov_reg::SYSTEM_PAGE_SIZE,
            v.system_page_size,
        );
        for (i, b) in v.vf_bars.iter().enumerate() {
            cfg.write32(bdf, v.offset + sriov_reg::VF_BAR0 + 4 * i as u16, *b);
        }
        cfg.write16(bdf, v.offset + sriov_reg::NUM_VFS, v.num_vfs);
        let ctl = v.control & !control::VF_ENABLE;
        cfg.write32(bdf, v.offset + sriov_reg::CONTROL, u32::from(ctl));
    }
    // Command last (zeros in the RW1C Status half).
    cfg.write32(bdf, 0x04, s.header[1] & 0xffff);
}

/// Resets `bdf` with an FLR, keeping its configuration (see the module docs). Runs with the
/// configuration space locked for the whole reset.
pub fn function_level_reset(pci: &super::Pci, bdf: Bdf) -> Result<(), ResetError> {
    pci.with_config(|cfg| {
        conduit_pci::read_header(&*cfg, bdf).map_err(|_| ResetError::Absent(bdf))?;
        let pcie = conduit_pci::pcie::pcie_cap(&*cfg, bdf)
            .ok()
            .flatten()
            .ok_or(ResetError::NotCapable(bdf))?
            .offset;
        if cfg.read32(bdf, pcie + DEVCAP) & DEVCAP_FLR == 0 {
            return Err(ResetError::NotCapable(bdf));
        }
        let saved = save(cfg, bdf, pcie);
        // No new DMA, then let what is in flight finish.
        let command = saved.header[1] as u16 & !conduit_pci::config::command::BUS_MASTER;
        cfg.write32(bdf, 0x04, u32::from(command));
        let clock = |what| move |error| ResetError::Clock { bdf, what, error };
        let drained = time::wait_ms(PENDING_MS, || {
            cfg.read16(bdf, pcie + DEVSTA) & DEVSTA_TRANSACTIONS_PENDING == 0
        })
        .map_err(clock("waiting for Transactions Pending to clear"))?;
        if !drained {
            // §6.6.2 lets software reset anyway: the FLR discards what is still outstanding.
            warn!(
                "pci: {bdf}: Transactions Pending still set after {PENDING_MS} ms; resetting anyway"
            );
        }
        let devctl = u32::from(saved.devctl | DEVCTL_INITIATE_FLR);
        cfg.write32(bdf, pcie + DEVCTL, devctl);
        time::delay_ms(FLR_MS).map_err(clock("the wait after initiating the FLR"))?;
        // All ones: not back yet; 0x0001: Configuration Request Retry Status (§2.3.2).
        let back = time::wait_ms(READY_MS, || !matches!(cfg.read16(bdf, 0), 0xffff | 0x0001))
            .map_err(clock("waiting for the function to answer after its FLR"))?;
        if !back {
            return Err(ResetError::NotReady(bdf));
        }
        restore(cfg, bdf, &saved);
        Ok(())
    })
}
