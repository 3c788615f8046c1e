//! The virtual configuration image: 4 KiB of register values, and for the first 256 bytes a
//! write mask (bits the guest may change) and an RW1C mask (bits a guest write of 1 clears).
//! The extended space (0x100..0x1000) is read-only to the guest.
//!
//! Every offset is reduced modulo 4 KiB before indexing, so no access can index out of bounds.

use alloc::boxed::Box;

use crate::CONFIG_SPACE_SIZE;

/// Bytes with write/RW1C masks: the PCI-compatible space (PCIe Base Spec r6.0 §7.2.2).
pub(crate) const MASKED: usize = 0x100;

#[derive(Clone)]
pub(crate) struct Image {
    bytes: Box<[u8; CONFIG_SPACE_SIZE as usize]>,
    wmask: [u8; MASKED],
    w1c: [u8; MASKED],
}

fn idx(off: u16) -> usize {
    usize::from(off % CONFIG_SPACE_SIZE)
}

impl Image {
    pub(crate) fn new() -> Self {
        Self {
            bytes: Box::new([0; CONFIG_SPACE_SIZE as usize]),
            wmask: [0; MASKED],
            w1c: [0; MASKED],
        }
    }

    pub(crate) fn get8(&self, off: u16) -> u8 {
        self.bytes.get(idx(off)).copied().unwrap_or(0)
    }

    pub(crate) fn get16(&self, off: u16) -> u16 {
        u16::from_le_bytes([self.get8(off), self.get8(off.wrapping_add(1))])
    }

    pub(crate) fn get32(&self, off: u16) -> u32 {
        u32::from(self.get16(off)) | (u32::from(self.get16(off.wrapping_add(2))) << 16)
    }

    /// Little-endian read of `size` bytes (1, 2 or 4).
    pub(crate) fn read(&self, off: u16, size: u8) -> u32 {
        (0..u16::from(size)).fold(0, |acc, i| {
            acc | (u32::from(self.get8(off.wrapping_add(i))) << (8 * i))
        })
    }

    /// Sets a byte regardless of the masks (building and emulation only).
    pub(crate) fn set8(&mut self, off: u16, v: u8) {
        if let Some(b) = self.bytes.get_mut(idx(off)) {
            *b = v;
        }
    }

    pub(crate) fn set16(&mut self, off: u16, v: u16) {
        for (i, b) in (0u16..).zip(v.to_le_bytes()) {
            self.set8(off.wrapping_add(i), b);
        }
    }

    pub(crate) fn set32(&mut self, off: u16, v: u32) {
        for (i, b) in (0u16..).zip(v.to_le_bytes()) {
            self.set8(off.wrapping_add(i), b);
        }
    }

    /// Write mask of the byte at `off` (0 in the extended space).
    pub(crate) fn wmask8(&self, off: u16) -> u8 {
        self.wmask.get(idx(off)).copied().unwrap_or(0)
    }

    pub(crate) fn set_wmask8(&mut self, off: u16, m: u8) {
        if let Some(b) = self.wmask.get_mut(idx(off)) {
            *b = m;
        }
    }

    pub(crate) fn set_wmask16(&mut self, off: u16, m: u16) {
        for (i, b) in (0u16..).zip(m.to_le_bytes()) {
            self.set_wmask8(off.wrapping_add(i), b);
        }
    }

    pub(crate) fn set_wmask32(&mut self, off: u16, m: u32) {
        for (i, b) in (0u16..).zip(m.to_le_bytes()) {
            self.set_wmask8(off.wrapping_add(i), b);
        }
    }

    pub(crate) fn set_w1c16(&mut self, off: u16, m: u16) {
        for (i, b) in (0u16..).zip(m.to_le_bytes()) {
            if let Some(slot) = self.w1c.get_mut(idx(off.wrapping_add(i))) {
                *slot = b;
            }
        }
    }

    /// A guest write of one byte: writable bits take the new value, RW1C bits written as 1 are
    /// cleared, every other bit keeps its value.
    pub(crate) fn guest_write8(&mut self, off: u16, v: u8) {
        let (wm, c) = (
            self.wmask8(off),
            self.w1c.get(idx(off)).copied().unwrap_or(0),
        );
        let old = self.get8(off);
        self.set8(off, ((old & !wm) | (v & wm)) & !(v & c));
    }

    /// Copies the guest-visible bytes of the masked range from `other` (used by reset).
    pub(crate) fn restore_masked(&mut self, initial: &[u8; MASKED]) {
        for (i, &b) in (0u16..).zip(initial.iter()) {
            self.set8(i, b);
        }
    }

    /// A copy of the first 256 bytes.
    pub(crate) fn masked_snapshot(&self) -> [u8; MASKED] {
        let mut out = [0; MASKED];
        for (i, b) in (0u16..).zip(out.iter_mut()) {
            *b = self.get8(i);
        }
        out
    }
}
