//! Base Address Registers: decoding, sizing, programming.
//!
//! PCI Local Bus Spec 3.0 §6.2.5.1 ("Address Maps"): bit 0 selects I/O (1) or memory (0). Memory
//! BARs carry the type in bits 2:1 (`00` 32-bit, `01` reserved since 3.0 / "below 1 MiB" in 2.x,
//! `10` 64-bit using the next BAR as upper dword, `11` reserved) and Prefetchable in bit 3. The
//! size is found by writing all ones, reading back, and taking the lowest set bit of the address
//! bits; the original value is restored afterwards. §6.2.5.1 also asks software to turn decode off
//! (Command bits 0/1) while sizing so the device never decodes the transient all-ones address;
//! [`size_bars`] does that and restores the Command register afterwards.
//!
//! The same BAR format is used by the SR-IOV VF BARs (PCIe Base Spec r6.0 §9.3.3.14), which reuse
//! [`probe_bar_at`] with the VF Memory Space Enable bit as the decode guard (see [`crate::sriov`]).

use crate::bdf::Bdf;
use crate::config::{self, ConfigAccess, command, reg};
use crate::error::PciError;

/// What a BAR decodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory space (type `00b`, or the legacy "below 1 MiB" type `01b`).
    Memory32,
    /// 64-bit memory space (type `10b`); occupies this BAR and the next.
    Memory64,
}

/// A sized, implemented BAR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bar {
    /// BAR index (0..=5); for 64-bit BARs the lower of the two.
    pub index: u8,
    /// I/O, 32-bit or 64-bit memory.
    pub kind: BarKind,
    /// Prefetchable memory (bit 3); always false for I/O.
    pub prefetchable: bool,
    /// Currently programmed base address (flag bits masked off).
    pub address: u64,
    /// Decoded size in bytes, a power of two.
    pub size: u64,
}

impl Bar {
    /// True for 64-bit memory BARs.
    #[must_use]
    pub const fn is_64bit(&self) -> bool {
        matches!(self.kind, BarKind::Memory64)
    }

    /// True for I/O BARs.
    #[must_use]
    pub const fn is_io(&self) -> bool {
        matches!(self.kind, BarKind::Io)
    }

    /// True for memory BARs.
    #[must_use]
    pub const fn is_memory(&self) -> bool {
        !self.is_io()
    }
}

/// The BARs of one function, indexed by BAR number; the upper half of a 64-bit BAR and
/// unimplemented BARs are `None`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Bars {
    slots: [Option<Bar>; 6],
}

impl Bars {
    /// The BAR at `index`, if implemented (and not an upper half).
    #[must_use]
    pub fn get(&self, index: u8) -> Option<&Bar> {
        self.slots.get(usize::from(index)).and_then(Option::as_ref)
    }

    /// Implemented BARs in index order.
    pub fn iter(&self) -> impl Iterator<Item = &Bar> {
        self.slots.iter().flatten()
    }

    /// A set made of `bars`, each in the slot of its index (a later BAR with the same index
    /// replaces an earlier one; indexes above 5 are ignored).
    pub fn from_bars(bars: impl IntoIterator<Item = Bar>) -> Self {
        let mut out = Self::default();
        for bar in bars {
            out.set(bar);
        }
        out
    }

    pub(crate) fn set(&mut self, bar: Bar) {
        if let Some(slot) = self.slots.get_mut(usize::from(bar.index)) {
            *slot = Some(bar);
        }
    }
}

/// Lowest set bit of `mask` (the size a BAR decodes), or 0 for an empty mask.
fn lowest_set_bit(mask: u64) -> u64 {
    mask.isolate_lowest_one()
}

/// Sizes the BAR whose register is at `offset` without touching any decode-enable bit.
///
/// `index` is reported in the result and errors; `last_index` is the highest BAR index of the
/// register block (a 64-bit BAR there has no upper dword). Writes all ones, reads back and
/// restores the original value (both dwords for a 64-bit BAR). Returns `Ok(None)` for an
/// unimplemented BAR (reads back zero address bits).
///
/// The caller must have disabled decode for this register block: [`size_bars`] and
/// [`crate::sriov::SriovCap::size_vf_bars`] do.
pub fn probe_bar_at<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    offset: u16,
    index: u8,
    last_index: u8,
) -> Result<Option<Bar>, PciError> {
    let orig = cfg.read32(bdf, offset);
    if orig & 1 == 1 {
        cfg.write32(bdf, offset, u32::MAX);
        let readback = cfg.read32(bdf, offset);
        cfg.write32(bdf, offset, orig);
        let size = lowest_set_bit(u64::from(readback & !0x3));
        if size == 0 {
            return Ok(None);
        }
        return Ok(Some(Bar {
            index,
            kind: BarKind::Io,
            prefetchable: false,
            address: u64::from(orig & !0x3),
            size,
        }));
    }
    let prefetchable = orig & 0x8 != 0;
    match (orig >> 1) & 0x3 {
        0b00 | 0b01 => {
            cfg.write32(bdf, offset, u32::MAX);
            let readback = cfg.read32(bdf, offset);
            cfg.write32(bdf, offset, orig);
            let size = lowest_set_bit(u64::from(readback & !0xf));
            if size == 0 {
                return Ok(None);
            }
            Ok(Some(Bar {
                index,
                kind: BarKind::Memory32,
                prefetchable,
                address: u64::from(orig & !0xf),
                size,
            }))
        }
        0b10 => {
            if index >= last_index {
                return Err(PciError::Bar64InLastSlot { bdf, index });
            }
            let hi_off = offset + 4;
            let orig_hi = cfg.read32(bdf, hi_off);
            cfg.write32(bdf, offset, u32::MAX);
            cfg.write32(bdf, hi_off, u32::MAX);
            let readback = cfg.read32(bdf, offset);
            let readback_hi = cfg.read32(bdf, hi_off);
            cfg.write32(bdf, offset, orig);
            cfg.write32(bdf, hi_off, orig_hi);
            let mask = (u64::from(readback_hi) << 32) | u64::from(readback & !0xf);
            let size = lowest_set_bit(mask);
            if size == 0 {
                return Ok(None);
            }
            Ok(Some(Bar {
                index,
                kind: BarKind::Memory64,
                prefetchable,
                address: (u64::from(orig_hi) << 32) | u64::from(orig & !0xf),
                size,
            }))
        }
        _ => Err(PciError::ReservedBarType { bdf, index }),
    }
}

/// Sizes every BAR of a function of `block_len` BAR registers starting at `base`.
pub(crate) fn probe_block<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    base: u16,
    block_len: u8,
) -> Result<Bars, PciError> {
    let mut bars = Bars::default();
    let mut index = 0u8;
    while index < block_len {
        let offset = base + 4 * u16::from(index);
        match probe_bar_at(cfg, bdf, offset, index, block_len - 1)? {
            Some(bar) => {
                let step = if bar.is_64bit() { 2 } else { 1 };
                bars.set(bar);
                index += step;
            }
            None => index += 1,
        }
    }
    Ok(bars)
}

/// Sizes all BARs of `bdf` (6 for a Type 0 header, 2 for Type 1, none otherwise).
///
/// Memory and I/O decode are switched off in the Command register for the duration and the
/// original Command value is written back afterwards, also when a BAR is malformed.
pub fn size_bars<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Result<Bars, PciError> {
    let header = config::read_header(cfg, bdf)?;
    let count = header.layout().bar_count();
    if count == 0 {
        return Ok(Bars::default());
    }
    let cmd = config::read_command(cfg, bdf);
    let decode = command::IO_SPACE | command::MEMORY_SPACE;
    if cmd & decode != 0 {
        config::write_command(cfg, bdf, cmd & !decode);
    }
    let result = probe_block(cfg, bdf, reg::BAR0, count);
    if cmd & decode != 0 {
        config::write_command(cfg, bdf, cmd);
    }
    result
}

/// Checks that `address` is a legal base for `bar`: naturally aligned to its size, and within
/// 32 bits for I/O and 32-bit memory BARs.
pub(crate) fn check_address(bdf: Bdf, bar: &Bar, address: u64) -> Result<(), PciError> {
    let aligned = bar.size != 0 && address & (bar.size - 1) == 0;
    let fits = bar.is_64bit()
        || address
            .checked_add(bar.size - 1)
            .is_some_and(|end| end <= u64::from(u32::MAX));
    if aligned && fits {
        Ok(())
    } else {
        Err(PciError::BadBarAddress {
            bdf,
            index: bar.index,
            address,
        })
    }
}

/// Writes `address` into the BAR register(s) at `offset` (flag bits are read-only and written
/// as zero). No decode handling.
pub(crate) fn write_bar_at<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    offset: u16,
    bar: &Bar,
    address: u64,
) {
    cfg.write32(bdf, offset, address as u32);
    if bar.is_64bit() {
        cfg.write32(bdf, offset + 4, (address >> 32) as u32);
    }
}

/// Programs `bar` (as returned by [`size_bars`]) to `address`, with decode of the function off
/// during the update (the two halves of a 64-bit BAR are not written atomically) and the Command
/// register restored afterwards. Returns the BAR as now programmed.
pub fn write_bar<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    bar: &Bar,
    address: u64,
) -> Result<Bar, PciError> {
    let header = config::read_header(cfg, bdf)?;
    if bar.index >= header.layout().bar_count() {
        return Err(PciError::BarIndexOutOfRange {
            bdf,
            index: bar.index,
        });
    }
    check_address(bdf, bar, address)?;
    let cmd = config::read_command(cfg, bdf);
    let decode = command::IO_SPACE | command::MEMORY_SPACE;
    if cmd & decode != 0 {
        config::write_command(cfg, bdf, cmd & !decode);
    }
    write_bar_at(cfg, bdf, reg::BAR0 + 4 * u16::from(bar.index), bar, address);
    if cmd & decode != 0 {
        config::write_command(cfg, bdf, cmd);
    }
    Ok(Bar { address, ..*bar })
}
