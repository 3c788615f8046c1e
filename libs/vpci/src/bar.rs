//! Virtual Base Address Registers (PCI Local Bus Spec 3.0 §6.2.5.1, PCIe Base Spec r6.0
//! §7.5.1.2.1).
//!
//! Each implemented BAR is a register whose type bits (bit 0 I/O, bits 2:1 memory type, bit 3
//! Prefetchable) are read-only and whose address bits are writable exactly down to the BAR's
//! size. That one rule answers the guest's sizing sequence: writing all ones reads back the size
//! mask with the type bits (`0xFFFF_C00C` for a 16 KiB 64-bit prefetchable BAR, `0xFFFF_FFFF` in
//! its upper half), and any address the guest writes is masked to the BAR's alignment. Sizes are
//! the physical ones; for a VF they are the per-VF sizes read from the PF's SR-IOV capability
//! (§9.3.3.14), since the VF's own BARs are read-only zero (§9.3.4.1).
//!
//! I/O BARs decode 16 bits of address (x86 port space): bits 31:16 are read-only zero, which
//! §6.2.5.1 allows for devices on a 64 KiB I/O space.
//!
//! A BAR *decodes* when its space is enabled in the virtual Command register (Memory Space for
//! memory BARs, I/O Space for I/O BARs). Every change of what decodes where is reported as
//! [`Event::BarMoved`] or [`Event::BarUnmapped`]; a guest that sizes or reprograms BARs with
//! decode off (as §6.2.5.1 asks) causes no mapping churn.

use conduit_pci::{Bar, BarKind};

use crate::access::{Event, Events};
use crate::header::CommandState;
use crate::image::Image;

/// Offset of BAR0.
pub const BAR0: u16 = 0x10;
/// Number of BAR registers in a Type 0 header.
pub const BAR_COUNT: usize = 6;

/// One BAR as the guest sees it, with the physical BAR behind it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VirtualBar {
    /// BAR index (0..=5; for 64-bit the lower register).
    pub index: u8,
    /// I/O, 32-bit or 64-bit memory.
    pub kind: BarKind,
    /// Prefetchable (memory only).
    pub prefetchable: bool,
    /// Size in bytes, a power of two.
    pub size: u64,
    /// Physical base address.
    pub phys_addr: u64,
}

impl VirtualBar {
    /// Offset of the (lower) register.
    #[must_use]
    pub const fn offset(&self) -> u16 {
        BAR0 + 4 * self.index as u16
    }

    /// Read-only type bits of the lower register.
    #[must_use]
    pub const fn type_bits(&self) -> u32 {
        match self.kind {
            BarKind::Io => 0b1,
            BarKind::Memory32 => (self.prefetchable as u32) << 3,
            BarKind::Memory64 => 0b100 | ((self.prefetchable as u32) << 3),
        }
    }

    /// Writable bits of the lower register.
    #[must_use]
    pub const fn low_mask(&self) -> u32 {
        let addr_bits = !(self.size.wrapping_sub(1)) as u32;
        match self.kind {
            BarKind::Io => addr_bits & 0xfffc,
            BarKind::Memory32 | BarKind::Memory64 => addr_bits & !0xf,
        }
    }

    /// Writable bits of the upper register of a 64-bit BAR (0 otherwise).
    #[must_use]
    pub const fn high_mask(&self) -> u32 {
        match self.kind {
            BarKind::Memory64 => (!(self.size.wrapping_sub(1)) >> 32) as u32,
            BarKind::Io | BarKind::Memory32 => 0,
        }
    }
}

/// Why a physical BAR cannot back a virtual one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BadBarReason {
    /// Index above 5, or a 64-bit BAR at index 5.
    Index,
    /// Two BARs claim the same register.
    Overlap,
    /// Size not a power of two, or below the minimum (16 bytes memory, 4 bytes I/O), or a
    /// 32-bit BAR larger than 4 GiB.
    Size,
    /// Physical address 0: the BAR is not assigned (mapping it would expose address 0).
    Unassigned,
    /// Physical address not aligned to the size.
    Misaligned,
}

/// Checks the physical BARs and writes the virtual BAR registers (address 0, type bits, masks).
pub(crate) fn build(
    img: &mut Image,
    bars: &[Bar],
) -> Result<[Option<VirtualBar>; BAR_COUNT], (u8, BadBarReason)> {
    let mut out = [None; BAR_COUNT];
    let mut used = [false; BAR_COUNT];
    for bar in bars {
        let i = usize::from(bar.index);
        let regs = if bar.is_64bit() { 2 } else { 1 };
        if i + regs > BAR_COUNT {
            return Err((bar.index, BadBarReason::Index));
        }
        if used.iter().skip(i).take(regs).any(|&u| u) {
            return Err((bar.index, BadBarReason::Overlap));
        }
        let min = if bar.is_io() { 4 } else { 16 };
        let max = if bar.is_64bit() { u64::MAX } else { 1 << 32 };
        if !bar.size.is_power_of_two() || bar.size < min || bar.size > max {
            return Err((bar.index, BadBarReason::Size));
        }
        if bar.address == 0 {
            return Err((bar.index, BadBarReason::Unassigned));
        }
        if bar.address & (bar.size - 1) != 0 {
            return Err((bar.index, BadBarReason::Misaligned));
        }
        for u in used.iter_mut().skip(i).take(regs) {
            *u = true;
        }
        let vbar = VirtualBar {
            index: bar.index,
            kind: bar.kind,
            prefetchable: bar.prefetchable && bar.is_memory(),
            size: bar.size,
            phys_addr: bar.address,
        };
        img.set32(vbar.offset(), vbar.type_bits());
        img.set_wmask32(vbar.offset(), vbar.low_mask());
        if bar.is_64bit() {
            img.set32(vbar.offset() + 4, 0);
            img.set_wmask32(vbar.offset() + 4, vbar.high_mask());
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(vbar);
        }
    }
    Ok(out)
}

/// The address the guest has programmed into `bar` (flag bits masked off).
pub(crate) fn guest_addr(img: &Image, bar: &VirtualBar) -> u64 {
    let low = img.get32(bar.offset());
    match bar.kind {
        BarKind::Io => u64::from(low & !0x3),
        BarKind::Memory32 => u64::from(low & !0xf),
        BarKind::Memory64 => u64::from(low & !0xf) | (u64::from(img.get32(bar.offset() + 4)) << 32),
    }
}

/// Where each BAR decodes under `cmd`: `Some(guest address)` when its space is enabled.
pub(crate) fn decoding(
    img: &Image,
    bars: &[Option<VirtualBar>; BAR_COUNT],
    cmd: CommandState,
) -> [Option<u64>; BAR_COUNT] {
    let mut out = [None; BAR_COUNT];
    for (slot, bar) in out.iter_mut().zip(bars.iter()) {
        if let Some(bar) = bar {
            let on = match bar.kind {
                BarKind::Io => cmd.io,
                BarKind::Memory32 | BarKind::Memory64 => cmd.memory,
            };
            *slot = on.then(|| guest_addr(img, bar));
        }
    }
    out
}

/// Emits the mapping changes between two decode states.
pub(crate) fn diff(
    bars: &[Option<VirtualBar>; BAR_COUNT],
    before: &[Option<u64>; BAR_COUNT],
    after: &[Option<u64>; BAR_COUNT],
    events: &mut Events,
) {
    for ((bar, &old), &new) in bars.iter().zip(before).zip(after) {
        let Some(bar) = bar else { continue };
        match (old, new) {
            (old, Some(guest_addr)) if old != Some(guest_addr) => events.push(Event::BarMoved {
                index: bar.index,
                kind: bar.kind,
                guest_addr,
                old_guest_addr: old,
                size: bar.size,
                phys_addr: bar.phys_addr,
            }),
            (Some(guest_addr), None) => events.push(Event::BarUnmapped {
                index: bar.index,
                kind: bar.kind,
                guest_addr,
                size: bar.size,
            }),
            _ => {}
        }
    }
}
