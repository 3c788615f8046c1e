//! A fake register page and helpers shared by the tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use conduit_vlapic::{ApicPage, Effects, TimerClock, Vlapic, offset};

/// A 4 KiB page of dwords; clones share the storage, so a test can play the CPU (APIC
/// virtualization) and change the page behind the model's back.
#[derive(Clone, Debug)]
pub struct Page(Rc<RefCell<Box<[u32; 1024]>>>);

impl Page {
    pub fn new() -> Self {
        // Garbage, so a reset that forgets a register shows.
        Self(Rc::new(RefCell::new(Box::new([0xDEAD_BEEF; 1024]))))
    }

    pub fn get(&self, off: u32) -> u32 {
        self.0.borrow()[off as usize / 4]
    }

    pub fn set(&self, off: u32, value: u32) {
        self.0.borrow_mut()[off as usize / 4] = value;
    }
}

impl ApicPage for Page {
    fn read(&self, offset: u32) -> u32 {
        self.get(offset)
    }
    fn write(&mut self, offset: u32, value: u32) {
        self.set(offset, value);
    }
}

/// 50 MHz TSC (Bochs' default rate), 1 MHz crystal (Conduit's).
pub const CLOCK: TimerClock = TimerClock {
    tsc_hz: 50_000_000,
    apic_timer_hz: 1_000_000,
};

/// A power-up APIC with ID `id`.
pub fn fresh(id: u32) -> Vlapic<Page> {
    Vlapic::new(Page::new(), id, id == 0, CLOCK).expect("valid configuration")
}

/// APIC ID 0, software-enabled (SVR 0x1FF), xAPIC.
pub fn apic() -> Vlapic<Page> {
    let mut a = fresh(0);
    assert_eq!(a.write(offset::SVR, 0x1FF, 0), Effects::default());
    a
}

/// An xAPIC read that must have no side effect.
pub fn read(a: &mut Vlapic<Page>, off: u32) -> u32 {
    let (value, fx) = a.read(off, 0);
    assert_eq!(fx, Effects::default(), "read of {off:#x}");
    value
}

/// ESR as software reads it: write (latch), then read.
pub fn esr(a: &mut Vlapic<Page>) -> u32 {
    assert_eq!(a.write(offset::ESR, 0, 0), Effects::default());
    read(a, offset::ESR)
}

/// Whether `vector` is set in the 256-bit register at `base`.
pub fn bit(a: &mut Vlapic<Page>, base: u32, vector: u8) -> bool {
    read(a, base + u32::from(vector / 32) * 0x10) & (1 << (vector % 32)) != 0
}
