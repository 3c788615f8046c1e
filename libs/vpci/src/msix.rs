//! MSI-X emulation: the capability (PCI Local Bus Spec 3.0 §6.8.2, PCIe Base Spec r6.0 §7.7.2)
//! and [`MsixTable`], the table page the core traps.
//!
//! Capability: Message Control (§7.7.2.2) shows Table Size as on the device; MSI-X Enable (bit
//! 15) and Function Mask (bit 14) are emulated, start clear and are reported as
//! [`Event::MsixControlChanged`]. Table Offset/BIR (§7.7.2.3) and PBA Offset/BIR (§7.7.2.4) are
//! read-only copies: the guest finds the table in its own view of the same BAR.
//!
//! Table (§7.7.2.5–§7.7.2.8): entries of 16 bytes (Message Address, Message Upper Address,
//! Message Data, Vector Control). Software must access them with aligned dwords or qwords (§6.8.2
//! of the PCI spec, §7.7.2 of PCIe); anything else is an [`AccessError`]. Entries start masked
//! (Vector Control bit 0 set) with address and data zero. Accesses beyond the last entry (the
//! rest of a trapped page) read zero and ignore writes. The Pending Bit Array (§7.7.2.9) is
//! read-only: reads return the last state the core reported with
//! [`MsixTable::set_pending`] / [`MsixTable::set_pba_qword`].

use alloc::vec::Vec;

use conduit_pci::{Bdf, ConfigAccess};

use crate::access::{AccessError, Event, check_aligned};
use crate::bar::{BAR_COUNT, VirtualBar};
use crate::image::Image;

/// Register offsets within the capability.
pub mod reg {
    /// Message Control.
    pub const CONTROL: u16 = 0x02;
    /// Table Offset / Table BIR.
    pub const TABLE: u16 = 0x04;
    /// PBA Offset / PBA BIR.
    pub const PBA: u16 = 0x08;
}

/// Message Control bits (§7.7.2.2).
pub mod control {
    /// Table Size − 1, bits 10:0.
    pub const TABLE_SIZE_MASK: u16 = 0x07ff;
    /// Function Mask.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// MSI-X Enable.
    pub const ENABLE: u16 = 1 << 15;
}

/// Length of the MSI-X capability.
pub const CAP_LEN: u16 = 12;
/// Size of one table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Vector Control: Mask Bit.
pub const VECTOR_MASKED: u32 = 1;

/// Where the MSI-X structures live.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MsixInfo {
    /// Offset of the capability.
    pub offset: u16,
    /// Number of table entries (Table Size + 1), 1..=2048.
    pub table_size: u16,
    /// BAR holding the table.
    pub table_bir: u8,
    /// Offset of the table in that BAR (qword aligned).
    pub table_offset: u32,
    /// BAR holding the PBA.
    pub pba_bir: u8,
    /// Offset of the PBA in that BAR (qword aligned).
    pub pba_offset: u32,
}

impl MsixInfo {
    /// Reads the capability at `offset`.
    pub fn read<C: ConfigAccess + ?Sized>(cfg: &C, bdf: Bdf, offset: u16) -> Self {
        let ctl = cfg.read16(bdf, offset + reg::CONTROL);
        let table = cfg.read32(bdf, offset + reg::TABLE);
        let pba = cfg.read32(bdf, offset + reg::PBA);
        Self {
            offset,
            table_size: (ctl & control::TABLE_SIZE_MASK) + 1,
            table_bir: (table & 0x7) as u8,
            table_offset: table & !0x7,
            pba_bir: (pba & 0x7) as u8,
            pba_offset: pba & !0x7,
        }
    }

    /// Bytes of the table.
    #[must_use]
    pub const fn table_len(&self) -> u64 {
        self.table_size as u64 * ENTRY_SIZE
    }

    /// Bytes of the PBA (one bit per entry, in qwords).
    #[must_use]
    pub const fn pba_len(&self) -> u64 {
        (self.table_size as u64).div_ceil(64) * 8
    }

    /// Both structures lie inside implemented memory BARs.
    pub(crate) fn fits(&self, bars: &[Option<VirtualBar>; BAR_COUNT]) -> bool {
        let inside = |bir: u8, off: u32, len: u64| {
            bars.get(usize::from(bir))
                .and_then(Option::as_ref)
                .is_some_and(|b| {
                    b.kind != conduit_pci::BarKind::Io && u64::from(off) + len <= b.size
                })
        };
        inside(self.table_bir, self.table_offset, self.table_len())
            && inside(self.pba_bir, self.pba_offset, self.pba_len())
    }
}

/// Keeps Table Size, clears Enable and Function Mask, makes those two writable.
pub(crate) fn setup(img: &mut Image, info: &MsixInfo) {
    let at = info.offset + reg::CONTROL;
    img.set16(at, info.table_size - 1);
    img.set_wmask16(at, control::ENABLE | control::FUNCTION_MASK);
}

/// (MSI-X Enable, Function Mask) of the virtual capability.
pub(crate) fn control_state(img: &Image, info: &MsixInfo) -> (bool, bool) {
    let ctl = img.get16(info.offset + reg::CONTROL);
    (
        ctl & control::ENABLE != 0,
        ctl & control::FUNCTION_MASK != 0,
    )
}

/// One table entry as the guest programmed it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MsixEntry {
    /// Message address (bits 1:0 zero).
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// Vector Control Mask bit.
    pub masked: bool,
}

/// The virtual MSI-X table and PBA of one function.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MsixTable {
    entries: Vec<[u32; 4]>,
    pba: Vec<u64>,
}

/// Writable bits of the four dwords of an entry: address bits 31:2, upper address, data, and
/// the Mask bit of Vector Control (the rest of Vector Control is reserved or optional and reads
/// zero here).
const ENTRY_WMASK: [u32; 4] = [0xffff_fffc, u32::MAX, u32::MAX, VECTOR_MASKED];

impl MsixTable {
    /// A table of `table_size` entries (clamped to 1..=2048, §7.7.2.2), all masked.
    #[must_use]
    pub fn new(table_size: u16) -> Self {
        let n = table_size.clamp(1, 2048);
        Self {
            entries: alloc::vec![[0, 0, 0, VECTOR_MASKED]; usize::from(n)],
            pba: alloc::vec![0; usize::from(n).div_ceil(64)],
        }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> u16 {
        self.entries.len() as u16
    }

    /// Always false: a table has at least one entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `index`, if it exists.
    #[must_use]
    pub fn entry(&self, index: u16) -> Option<MsixEntry> {
        self.entries.get(usize::from(index)).map(|e| MsixEntry {
            address: u64::from(e[0]) | (u64::from(e[1]) << 32),
            data: e[2],
            masked: e[3] & VECTOR_MASKED != 0,
        })
    }

    /// All entries in order.
    pub fn entries(&self) -> impl Iterator<Item = MsixEntry> + '_ {
        (0..self.len()).filter_map(|i| self.entry(i))
    }

    /// Back to the reset state: every entry masked with address and data zero, PBA clear.
    pub fn reset(&mut self) {
        self.entries.fill([0, 0, 0, VECTOR_MASKED]);
        self.pba.fill(0);
    }

    fn dword(&self, index: u64) -> u32 {
        let (entry, word) = ((index / 4) as usize, (index % 4) as usize);
        self.entries
            .get(entry)
            .and_then(|e| e.get(word))
            .copied()
            .unwrap_or(0)
    }

    /// Reads `size` (4 or 8) bytes at `offset` from the start of the table. Beyond the last
    /// entry reads zero.
    pub fn read(&self, offset: u64, size: u8) -> Result<u64, AccessError> {
        check_aligned(offset, size, &[4, 8], 8)?;
        let first = offset / 4;
        let low = u64::from(self.dword(first));
        Ok(if size == 8 {
            low | (u64::from(self.dword(first + 1)) << 32)
        } else {
            low
        })
    }

    /// Writes `size` (4 or 8) bytes at `offset` from the start of the table. Returns the
    /// [`Event::MsixEntryChanged`] of the entry if the write changed it; writes beyond the last
    /// entry are ignored.
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
    ) -> Result<Option<Event>, AccessError> {
        check_aligned(offset, size, &[4, 8], 8)?;
        let entry = offset / ENTRY_SIZE;
        let Some(e) = usize::try_from(entry)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        else {
            return Ok(None);
        };
        let before = *e;
        let first = ((offset % ENTRY_SIZE) / 4) as usize;
        let words = usize::from(size / 4);
        for (k, slot) in e.iter_mut().enumerate().skip(first).take(words) {
            let v = (value >> (32 * (k - first))) as u32;
            let m = ENTRY_WMASK.get(k).copied().unwrap_or(0);
            *slot = (*slot & !m) | (v & m);
        }
        if *e == before {
            return Ok(None);
        }
        let index = entry as u16;
        Ok(self.entry(index).map(|en| Event::MsixEntryChanged {
            index,
            address: en.address,
            data: en.data,
            masked: en.masked,
        }))
    }

    /// Reads `size` (4 or 8) bytes at `offset` from the start of the PBA: the last known
    /// pending state; zero beyond the array.
    pub fn read_pba(&self, offset: u64, size: u8) -> Result<u64, AccessError> {
        check_aligned(offset, size, &[4, 8], 8)?;
        let q = usize::try_from(offset / 8)
            .ok()
            .and_then(|i| self.pba.get(i))
            .copied()
            .unwrap_or(0);
        Ok(match (size, offset % 8) {
            (8, _) => q,
            (_, 0) => q & 0xffff_ffff,
            _ => q >> 32,
        })
    }

    /// Records the pending bit of `vector` (ignored beyond the table).
    pub fn set_pending(&mut self, vector: u16, pending: bool) {
        if vector >= self.len() {
            return;
        }
        let bit = 1u64 << (vector % 64);
        if let Some(q) = self.pba.get_mut(usize::from(vector / 64)) {
            if pending { *q |= bit } else { *q &= !bit }
        }
    }

    /// Records a whole PBA qword (e.g. read from the physical PBA); bits beyond the table are
    /// dropped.
    pub fn set_pba_qword(&mut self, index: usize, value: u64) {
        let valid = usize::from(self.len()).saturating_sub(index.saturating_mul(64));
        let mask = if valid >= 64 {
            u64::MAX
        } else {
            (1u64 << valid) - 1
        };
        if let Some(q) = self.pba.get_mut(index) {
            *q = value & mask;
        }
    }
}
