//! Programming a function's message-signalled interrupts (PCI Local Bus Spec 3.0 §6.8.1 MSI,
//! §6.8.2 MSI-X; PCIe Base Spec r6.0 §7.7.1, §7.7.2). Under interrupt remapping the message is
//! in remappable format (VT-d §5.1.5.2): the address carries the IRTE handle, the data the
//! subhandle (`conduit_irq::RemappableMsi`); the layout of the capabilities is decoded by
//! `conduit_vpci` (the same decoding the guests' virtual capabilities use).
//!
//! MSI: the capability is disabled while address and data change, Multiple Message Enable is
//! set to one message, then MSI Enable is set. MSI-X: the entry is masked while it changes
//! (Vector Control bit 0), then unmasked if asked; MSI-X Enable is a separate step.

use super::{Function, get};
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::{self, MmioError};
use conduit_irq::MsiMessage;
use conduit_pci::ConfigAccess;
use conduit_pci::PciAddress;
use conduit_pci::caps::cap_id;
#[cfg(feature = "selftest")]
use conduit_pci::config::{command, reg};
use conduit_vpci::MsiInfo;
use conduit_vpci::MsixInfo;
use core::fmt;
use volatile::VolatilePtr;

/// Why a function's interrupts could not be programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiError {
    /// PCI was not enumerated, or no function at this address.
    NoFunction(PciAddress),
    /// The function has no such capability.
    NoCapability {
        bdf: PciAddress,
        what: &'static str,
    },
    /// An MSI-X entry beyond the table.
    NoEntry {
        bdf: PciAddress,
        entry: u16,
        size: u16,
    },
    /// The MSI-X table is not inside an implemented memory BAR.
    TableOutsideBar(PciAddress),
    Mmio(MmioError),
    /// Configuration space was handed over to the control task ([`super::hand_over`]): a write
    /// of the kernel's would be dropped.
    HandedOver(PciAddress),
}

impl fmt::Display for MsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFunction(b) => write!(f, "no PCI function at {b}"),
            Self::NoCapability { bdf, what } => write!(f, "{bdf} has no {what} capability"),
            Self::NoEntry { bdf, entry, size } => {
                write!(
                    f,
                    "{bdf}: MSI-X entry {entry} beyond its {size}-entry table"
                )
            }
            Self::TableOutsideBar(b) => write!(f, "{b}: MSI-X table outside its memory BAR"),
            Self::Mmio(e) => write!(f, "MSI-X table mapping: {e}"),
            Self::HandedOver(b) => write!(
                f,
                "{b}: configuration space belongs to the control task (the kernel's writes are \
                 dropped)"
            ),
        }
    }
}

fn function(at: PciAddress) -> Result<&'static Function, MsiError> {
    get()
        .and_then(|p| p.function_at(at))
        .ok_or(MsiError::NoFunction(at))
}

fn cap_offset(f: &Function, id: u8, what: &'static str) -> Result<u16, MsiError> {
    f.caps
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.offset)
        .ok_or(MsiError::NoCapability {
            bdf: f.address(),
            what,
        })
}

const MSI_ENABLE: u16 = 1 << 0;
#[cfg(feature = "selftest")]
const MSI_MME: u16 = 0x7 << 4;
#[cfg(feature = "selftest")]
const MSIX_ENABLE: u16 = 1 << 15;
#[cfg(feature = "selftest")]
const MSIX_FUNCTION_MASK: u16 = 1 << 14;

/// The MSI capability of `bdf`, decoded.
pub fn msi_info(at: PciAddress) -> Result<MsiInfo, MsiError> {
    let bdf = at.bdf;
    let f = function(at)?;
    let offset = cap_offset(f, cap_id::MSI, "MSI")?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    Ok(pci.with_segment(at.segment, |cfg| {
        MsiInfo::from_control(offset, cfg.read16(bdf, offset + 2))
    }))
}

/// Programs `message` into the MSI capability of `bdf` (one message) and enables it; INTx is
/// disabled in the Command register. Returns the capability's shape.
#[cfg(feature = "selftest")]
pub fn program_msi(at: PciAddress, message: MsiMessage) -> Result<MsiInfo, MsiError> {
    let bdf = at.bdf;
    let info = msi_info(at)?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    pci.with_segment(at.segment, |cfg| {
        let o = info.offset;
        let ctl = cfg.read16(bdf, o + 2);
        cfg.write16(bdf, o + 2, ctl & !(MSI_ENABLE | MSI_MME));
        cfg.write32(bdf, o + 4, message.address);
        if info.is_64bit {
            cfg.write32(bdf, o + 8, 0);
        }
        cfg.write16(bdf, o + info.data_offset(), message.data as u16);
        if info.per_vector_mask {
            cfg.write32(bdf, o + info.mask_offset(), 0);
        }
        let cmd = cfg.read16(bdf, reg::COMMAND);
        conduit_pci::config::write_command(cfg, bdf, cmd | command::INTX_DISABLE);
        cfg.write16(bdf, o + 2, (ctl & !MSI_MME) | MSI_ENABLE);
    });
    Ok(info)
}

/// Rewrites only the message address and data of an enabled MSI capability (what a guest's
/// driver does, or a forged reprogramming in a self-test).
#[cfg(feature = "selftest")]
pub fn retarget_msi(at: PciAddress, message: MsiMessage) -> Result<(), MsiError> {
    let bdf = at.bdf;
    let info = msi_info(at)?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    pci.with_segment(at.segment, |cfg| {
        cfg.write32(bdf, info.offset + 4, message.address);
        cfg.write16(bdf, info.offset + info.data_offset(), message.data as u16);
    });
    Ok(())
}

/// Sets or clears MSI Enable of `bdf`, while the kernel still owns configuration space;
/// [`MsiError::HandedOver`] afterwards (the control task writes it then: `Op::PhysicalMsi`).
pub fn set_msi_enabled(at: PciAddress, enabled: bool) -> Result<(), MsiError> {
    let bdf = at.bdf;
    let info = msi_info(at)?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    if matches!(*pci.access.lock(), super::access::Access::HandedOver) {
        return Err(MsiError::HandedOver(at));
    }
    pci.with_segment(at.segment, |cfg| {
        let ctl = cfg.read16(bdf, info.offset + 2);
        let ctl = if enabled {
            ctl | MSI_ENABLE
        } else {
            ctl & !MSI_ENABLE
        };
        cfg.write16(bdf, info.offset + 2, ctl);
    });
    Ok(())
}

/// The MSI capability's current (enable, address, data).
#[cfg(feature = "selftest")]
pub fn read_msi(at: PciAddress) -> Result<(bool, u64, u16), MsiError> {
    let bdf = at.bdf;
    let info = msi_info(at)?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    Ok(pci.with_segment(at.segment, |cfg| {
        let o = info.offset;
        let mut address = u64::from(cfg.read32(bdf, o + 4));
        if info.is_64bit {
            address |= u64::from(cfg.read32(bdf, o + 8)) << 32;
        }
        (
            cfg.read16(bdf, o + 2) & MSI_ENABLE != 0,
            address,
            cfg.read16(bdf, o + info.data_offset()),
        )
    }))
}

/// One MSI-X table entry (§6.8.2.6-§6.8.2.9).
#[repr(C)]
struct MsixEntry {
    address: u32,
    upper_address: u32,
    data: u32,
    vector_control: u32,
}

const _: () = assert!(core::mem::size_of::<MsixEntry>() == 16);

/// The MSI-X capability of `bdf`, decoded.
pub fn msix_info(at: PciAddress) -> Result<MsixInfo, MsiError> {
    let bdf = at.bdf;
    let f = function(at)?;
    let offset = cap_offset(f, cap_id::MSIX, "MSI-X")?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    Ok(pci.with_segment(at.segment, |cfg| MsixInfo::read(&*cfg, bdf, offset)))
}

fn msix_entry(
    mem: &Memory,
    at: PciAddress,
    entry: u16,
) -> Result<VolatilePtr<'static, MsixEntry>, MsiError> {
    let info = msix_info(at)?;
    if entry >= info.table_size {
        return Err(MsiError::NoEntry {
            bdf: at,
            entry,
            size: info.table_size,
        });
    }
    let f = function(at)?;
    let bar = f
        .bars
        .get(info.table_bir)
        .filter(|b| b.is_memory() && u64::from(info.table_offset) + info.table_len() <= b.size)
        .ok_or(MsiError::TableOutsideBar(at))?;
    let table = mmio::map(
        mem,
        bar.address + u64::from(info.table_offset),
        info.table_len(),
    )
    .map_err(MsiError::Mmio)?;
    table
        .block::<MsixEntry>(u64::from(entry) * 16)
        .map_err(MsiError::Mmio)
}

/// Programs MSI-X table entry `entry` of `bdf` with `message`, masked while it changes, left
/// masked if `masked`. MSI-X itself is enabled by [`set_msix_enabled`].
pub fn program_msix_entry(
    mem: &Memory,
    at: PciAddress,
    entry: u16,
    message: MsiMessage,
    masked: bool,
) -> Result<(), MsiError> {
    let e = msix_entry(mem, at, entry)?;
    let ctl = volatile::map_field!(e.vector_control);
    ctl.write(ctl.read() | 1);
    volatile::map_field!(e.address).write(message.address);
    volatile::map_field!(e.upper_address).write(0);
    volatile::map_field!(e.data).write(message.data);
    if !masked {
        ctl.write(ctl.read() & !1);
    }
    Ok(())
}

/// Sets or clears the Mask bit of MSI-X table entry `entry` (§6.8.2.9).
pub fn set_msix_entry_masked(
    mem: &Memory,
    at: PciAddress,
    entry: u16,
    masked: bool,
) -> Result<(), MsiError> {
    let e = msix_entry(mem, at, entry)?;
    let ctl = volatile::map_field!(e.vector_control);
    let v = ctl.read();
    ctl.write(if masked { v | 1 } else { v & !1 });
    Ok(())
}

/// Reads MSI-X table entry `entry` back: (address, data, masked).
#[cfg(feature = "selftest")]
pub fn read_msix_entry(
    mem: &Memory,
    at: PciAddress,
    entry: u16,
) -> Result<(u32, u32, bool), MsiError> {
    let e = msix_entry(mem, at, entry)?;
    Ok((
        volatile::map_field!(e.address).read(),
        volatile::map_field!(e.data).read(),
        volatile::map_field!(e.vector_control).read() & 1 != 0,
    ))
}

/// Sets MSI-X Enable (with the function mask clear) or clears it; INTx is disabled when enabled.
#[cfg(feature = "selftest")]
pub fn set_msix_enabled(at: PciAddress, enabled: bool) -> Result<(), MsiError> {
    let bdf = at.bdf;
    let info = msix_info(at)?;
    let pci = get().ok_or(MsiError::NoFunction(at))?;
    pci.with_segment(at.segment, |cfg| {
        let at = info.offset + 2;
        let ctl = cfg.read16(bdf, at) & !MSIX_FUNCTION_MASK;
        if enabled {
            let cmd = cfg.read16(bdf, reg::COMMAND);
            conduit_pci::config::write_command(cfg, bdf, cmd | command::INTX_DISABLE);
            cfg.write16(bdf, at, ctl | MSIX_ENABLE);
        } else {
            cfg.write16(bdf, at, ctl & !MSIX_ENABLE);
        }
    });
    Ok(())
}
