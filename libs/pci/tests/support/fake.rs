//! A fake configuration space: per-function 4 KiB images with write masks and RW1C masks, a
//! write log, and a check that BARs are only written while their decode is off.

use std::collections::BTreeMap;

use conduit_pci::{Bdf, ConfigAccess};

/// Hook run after every write to a function (to model registers the device changes itself).
pub type WriteHook = fn(&mut FakeFn, u16, u32);

/// One function's configuration space.
#[derive(Clone)]
pub struct FakeFn {
    pub bytes: Vec<u8>,
    pub wmask: Vec<u8>,
    pub w1c: Vec<u8>,
    pub hook: Option<WriteHook>,
    /// Offset of the SR-IOV capability, for the VF BAR decode check.
    pub sriov: Option<u16>,
}

impl FakeFn {
    /// A function with IDs, class code and header type; Command decode/bus-master/INTx-disable
    /// bits writable, Status error bits RW1C, everything else read-only.
    pub fn new(vendor: u16, device: u16, class: u32, header_type: u8) -> Self {
        let mut f = Self {
            bytes: vec![0; 4096],
            wmask: vec![0; 4096],
            w1c: vec![0; 4096],
            hook: None,
            sriov: None,
        };
        f.set16(0x00, vendor);
        f.set16(0x02, device);
        f.set32(0x08, class << 8);
        f.set8(0x0e, header_type);
        f.wmask16(0x04, 0x0407);
        f.w1c16(0x06, 0xf900);
        f
    }

    pub fn set8(&mut self, off: u16, v: u8) {
        self.bytes[usize::from(off)] = v;
    }
    pub fn set16(&mut self, off: u16, v: u16) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.bytes[usize::from(off) + i] = b;
        }
    }
    pub fn set32(&mut self, off: u16, v: u32) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.bytes[usize::from(off) + i] = b;
        }
    }
    pub fn get16(&self, off: u16) -> u16 {
        let o = usize::from(off);
        u16::from_le_bytes([self.bytes[o], self.bytes[o + 1]])
    }
    pub fn get32(&self, off: u16) -> u32 {
        let o = usize::from(off);
        u32::from_le_bytes([
            self.bytes[o],
            self.bytes[o + 1],
            self.bytes[o + 2],
            self.bytes[o + 3],
        ])
    }
    pub fn wmask16(&mut self, off: u16, m: u16) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            self.wmask[usize::from(off) + i] = b;
        }
    }
    pub fn wmask32(&mut self, off: u16, m: u32) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            self.wmask[usize::from(off) + i] = b;
        }
    }
    pub fn w1c16(&mut self, off: u16, m: u16) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            self.w1c[usize::from(off) + i] = b;
        }
    }

    /// Turns on Status.CapList and points the capability pointer at `first`.
    pub fn cap_list(&mut self, first: u8) {
        let st = self.get16(0x06) | 0x10;
        self.set16(0x06, st);
        self.set8(0x34, first);
    }
    /// A legacy capability header.
    pub fn cap(&mut self, off: u8, id: u8, next: u8) {
        self.set8(u16::from(off), id);
        self.set8(u16::from(off) + 1, next);
    }
    /// An extended capability header.
    pub fn ext_cap(&mut self, off: u16, id: u16, version: u8, next: u16) {
        self.set32(
            off,
            u32::from(id) | (u32::from(version) << 16) | (u32::from(next) << 20),
        );
    }

    /// A 32-bit memory BAR register at `reg` of `size` bytes holding `addr`.
    pub fn mem32_bar_at(&mut self, reg: u16, size: u32, prefetch: bool, addr: u32) {
        self.set32(reg, addr | (u32::from(prefetch) << 3));
        self.wmask32(reg, !(size - 1) & !0xf);
    }
    /// A 64-bit memory BAR at `reg`/`reg + 4` of `size` bytes holding `addr`.
    pub fn mem64_bar_at(&mut self, reg: u16, size: u64, prefetch: bool, addr: u64) {
        self.set32(reg, (addr as u32) | 0b100 | (u32::from(prefetch) << 3));
        self.set32(reg + 4, (addr >> 32) as u32);
        let mask = !(size - 1);
        self.wmask32(reg, (mask as u32) & !0xf);
        self.wmask32(reg + 4, (mask >> 32) as u32);
    }
    /// An I/O BAR at `reg`.
    pub fn io_bar_at(&mut self, reg: u16, size: u32, addr: u32) {
        self.set32(reg, addr | 1);
        self.wmask32(reg, !(size - 1) & !0x3);
    }
    /// BAR `index` of the header.
    pub fn bar(index: u8) -> u16 {
        0x10 + 4 * u16::from(index)
    }

    fn bar_range(&self) -> core::ops::Range<u16> {
        match self.bytes[0x0e] & 0x7f {
            0 => 0x10..0x28,
            1 => 0x10..0x18,
            _ => 0..0,
        }
    }
}

/// A set of functions on one segment.
#[derive(Clone, Default)]
pub struct FakeConfig {
    pub fns: BTreeMap<Bdf, FakeFn>,
    /// Every write, in order: (function, dword offset, value).
    pub writes: Vec<(Bdf, u16, u32)>,
    /// BAR writes that happened while the BAR's decode was enabled.
    pub decode_violations: Vec<(Bdf, u16)>,
}

impl FakeConfig {
    pub fn insert(&mut self, bdf: Bdf, f: FakeFn) {
        self.fns.insert(bdf, f);
    }
    pub fn func(&mut self, bdf: Bdf) -> &mut FakeFn {
        self.fns.get_mut(&bdf).expect("fake function exists")
    }
    pub fn get(&self, bdf: Bdf) -> &FakeFn {
        self.fns.get(&bdf).expect("fake function exists")
    }
}

impl ConfigAccess for FakeConfig {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        assert_eq!(offset & 3, 0, "unaligned read32 at {offset:#x}");
        match self.fns.get(&bdf) {
            Some(f) if offset < 0x1000 => f.get32(offset),
            _ => u32::MAX,
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        assert_eq!(offset & 3, 0, "unaligned write32 at {offset:#x}");
        self.writes.push((bdf, offset, value));
        let Some(f) = self.fns.get_mut(&bdf) else {
            return;
        };
        if offset >= 0x1000 {
            return;
        }
        if f.bar_range().contains(&offset) && f.get16(0x04) & 0x3 != 0 {
            self.decode_violations.push((bdf, offset));
        }
        if let Some(s) = f.sriov
            && (s + 0x24..s + 0x3c).contains(&offset)
            && f.get16(s + 0x08) & 0x8 != 0
        {
            self.decode_violations.push((bdf, offset));
        }
        for (i, vb) in value.to_le_bytes().into_iter().enumerate() {
            let o = usize::from(offset) + i;
            let (wm, c) = (f.wmask[o], f.w1c[o]);
            f.bytes[o] = ((f.bytes[o] & !wm) | (vb & wm)) & !(vb & c);
        }
        if let Some(hook) = f.hook {
            hook(f, offset, value);
        }
    }
}

/// Shorthand for a valid BDF.
pub fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(bus, dev, func).expect("valid BDF")
}
