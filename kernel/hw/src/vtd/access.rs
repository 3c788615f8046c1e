//! The unit's typed register blocks behind `conduit_vtd::takeover::Registers`, so that the
//! host-tested takeover sequence runs on the hardware, and the bounded wait it polls with.

use super::inval::wait_for;
use super::regs::{FaultRecording, Registers};
use conduit_vtd::takeover::{Poll, Reg32, Reg64, Registers as Access};
use volatile::{VolatilePtr, map_field};

/// One unit's fixed register block and its fault-recording registers.
pub struct UnitAccess<'a> {
    pub regs: VolatilePtr<'static, Registers>,
    /// The NFR + 1 fault-recording registers; a record beyond them reads 0 and ignores writes.
    pub records: &'a [VolatilePtr<'static, FaultRecording>],
}

impl Access for UnitAccess<'_> {
    fn read32(&mut self, reg: Reg32) -> u32 {
        let r = self.regs;
        match reg {
            Reg32::Gcmd => map_field!(r.gcmd).read(),
            Reg32::Gsts => map_field!(r.gsts).read(),
            Reg32::Fsts => map_field!(r.fsts).read(),
            Reg32::Fectl => map_field!(r.fectl).read(),
            Reg32::Fedata => map_field!(r.fedata).read(),
            Reg32::Feaddr => map_field!(r.feaddr).read(),
            Reg32::Feuaddr => map_field!(r.feuaddr).read(),
            Reg32::Pmen => map_field!(r.pmen).read(),
            Reg32::Plmbase => map_field!(r.plmbase).read(),
            Reg32::Plmlimit => map_field!(r.plmlimit).read(),
        }
    }

    fn write32(&mut self, reg: Reg32, value: u32) {
        let r = self.regs;
        match reg {
            Reg32::Gcmd => map_field!(r.gcmd).write(value),
            Reg32::Gsts => map_field!(r.gsts).write(value),
            Reg32::Fsts => map_field!(r.fsts).write(value),
            Reg32::Fectl => map_field!(r.fectl).write(value),
            Reg32::Fedata => map_field!(r.fedata).write(value),
            Reg32::Feaddr => map_field!(r.feaddr).write(value),
            Reg32::Feuaddr => map_field!(r.feuaddr).write(value),
            Reg32::Pmen => map_field!(r.pmen).write(value),
            Reg32::Plmbase => map_field!(r.plmbase).write(value),
            Reg32::Plmlimit => map_field!(r.plmlimit).write(value),
        }
    }

    fn read64(&mut self, reg: Reg64) -> u64 {
        let r = self.regs;
        match reg {
            Reg64::Cap => map_field!(r.cap).read(),
            Reg64::Rtaddr => map_field!(r.rtaddr).read(),
            Reg64::Phmbase => map_field!(r.phmbase).read(),
            Reg64::Phmlimit => map_field!(r.phmlimit).read(),
            Reg64::Iqh => map_field!(r.iqh).read(),
            Reg64::Iqt => map_field!(r.iqt).read(),
            Reg64::Iqa => map_field!(r.iqa).read(),
            Reg64::Irta => map_field!(r.irta).read(),
            Reg64::FaultHigh(n) => self
                .records
                .get(usize::from(n))
                .map_or(0, |rec| map_field!(rec.hi).read()),
        }
    }

    fn write64(&mut self, reg: Reg64, value: u64) {
        let r = self.regs;
        match reg {
            Reg64::Cap => map_field!(r.cap).write(value),
            Reg64::Rtaddr => map_field!(r.rtaddr).write(value),
            Reg64::Phmbase => map_field!(r.phmbase).write(value),
            Reg64::Phmlimit => map_field!(r.phmlimit).write(value),
            Reg64::Iqh => map_field!(r.iqh).write(value),
            Reg64::Iqt => map_field!(r.iqt).write(value),
            Reg64::Iqa => map_field!(r.iqa).write(value),
            Reg64::Irta => map_field!(r.irta).write(value),
            Reg64::FaultHigh(n) => {
                if let Some(rec) = self.records.get(usize::from(n)) {
                    map_field!(rec.hi).write(value);
                }
            }
        }
    }
}

/// The TSC-bounded wait of [`wait_for`] (a few seconds).
pub struct TscPoll;

impl Poll for TscPoll {
    fn until(&mut self, done: &mut dyn FnMut() -> bool) -> bool {
        wait_for(done)
    }
}
