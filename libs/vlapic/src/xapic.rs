//! The xAPIC memory-mapped interface (SDM Vol. 3A §11.4.1, Table 11-1).
//!
//! Accesses are 32-bit at the start of a 16-byte slot, as the SDM requires (§11.4.1). The
//! model's answer to anything else (an offset not a multiple of 16): reads return 0 and
//! writes are ignored, without an ESR error. Sub-dword reads are the kernel glue's to
//! extract from the aligned 32-bit read; sub-dword writes it drops.

use crate::regs::{self, DCR_WRITABLE, ICR_LOW_WRITABLE, Reg, SVR_WRITABLE};
use crate::{ApicMode, ApicPage, Effects, TimerMode, Vlapic, esr, lvt, offset};

impl<P: ApicPage> Vlapic<P> {
    /// A guest read of the xAPIC register at `offset` at TSC `now`. Write-only registers
    /// (EOI) read 0; a reserved offset reads 0 and records ESR "illegal register address"
    /// (whose LVT error interrupt, if unmasked, is in the returned [`Effects`]). Outside xAPIC
    /// mode the MMIO interface is off: 0, no effect.
    pub fn read(&mut self, offset: u32, now: u64) -> (u32, Effects) {
        if self.mode != ApicMode::XApic || offset & 0xF != 0 || offset >= 0x1000 {
            return (0, Effects::default());
        }
        let value = match regs::decode(offset) {
            None | Some(Reg::SelfIpi) => {
                return (0, self.error(esr::ILLEGAL_REGISTER_ADDRESS));
            }
            Some(Reg::Eoi) => 0,
            Some(Reg::Ppr) => u32::from(self.ppr()),
            Some(Reg::CurrentCount) => self.timer.current_count(now),
            Some(_) => self.page.read(offset),
        };
        (value, Effects::default())
    }

    /// A guest write of `value` to the xAPIC register at `offset` at TSC `now` (software
    /// mode, or an APIC-access exit under APIC virtualization). Read-only registers ignore it
    /// (the ID too: Conduit fixes it), reserved bits are dropped, a reserved offset records
    /// ESR "illegal register address".
    pub fn write(&mut self, offset: u32, value: u32, now: u64) -> Effects {
        if self.mode != ApicMode::XApic || offset & 0xF != 0 || offset >= 0x1000 {
            return Effects::default();
        }
        match regs::decode(offset) {
            None | Some(Reg::SelfIpi) => self.error(esr::ILLEGAL_REGISTER_ADDRESS),
            Some(Reg::Id) => {
                // Read-only here; an APIC-write exit left the guest's value in the page.
                self.write_id_register();
                Effects::default()
            }
            Some(Reg::Version | Reg::Ppr | Reg::Bitmap(_) | Reg::CurrentCount) => {
                Effects::default()
            }
            Some(Reg::Ldr) => {
                self.page.write(offset::LDR, value & 0xFF00_0000);
                Effects::default()
            }
            Some(Reg::Dfr) => {
                self.page.write(offset::DFR, value | 0x0FFF_FFFF);
                Effects::default()
            }
            Some(Reg::IcrHigh) => {
                self.page.write(offset::ICR_HIGH, value & 0xFF00_0000);
                Effects::default()
            }
            Some(Reg::IcrLow) => {
                self.page.write(offset::ICR_LOW, value & ICR_LOW_WRITABLE);
                let dest = self.page.read(offset::ICR_HIGH) >> 24;
                self.send_ipi(value, dest)
            }
            Some(Reg::Lvt(reg)) => {
                let value = value & lvt::writable(reg);
                if reg == offset::LVT_TIMER && TimerMode::from_lvt(value).is_none() {
                    // Reserved timer mode: the write is dropped.
                    self.page.write(reg, self.timer.lvt());
                    return Effects::default();
                }
                self.write_lvt(reg, value, now)
            }
            Some(Reg::Tpr) => {
                self.write_tpr(value & 0xFF);
                Effects::default()
            }
            Some(Reg::Eoi) => Effects {
                eoi: self.eoi(),
                ..Effects::default()
            },
            Some(Reg::Svr) => self.write_svr(value & SVR_WRITABLE, now),
            Some(Reg::Esr) => {
                self.write_esr();
                Effects::default()
            }
            Some(Reg::InitialCount) => self.write_initial_count(value, now),
            Some(Reg::DivideConfig) => {
                self.write_divide(value & DCR_WRITABLE);
                Effects::default()
            }
        }
    }

    /// A trap-like APIC-write VM exit at `offset` (SDM Vol. 3C §30.4.3.3): the guest's value
    /// is already in the page; the model acts on it as on [`Vlapic::write`] and leaves the
    /// register as the SDM defines it.
    pub fn apic_write(&mut self, offset: u32, now: u64) -> Effects {
        if offset & 0xF != 0 || offset >= 0x1000 {
            return Effects::default();
        }
        let value = self.page.read(offset);
        self.write(offset, value, now)
    }
}
