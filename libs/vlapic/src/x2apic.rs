//! The x2APIC MSR interface (SDM Vol. 3A §11.12.1, Table 11-6), IA32_APIC_BASE and its mode
//! transitions (§11.12.5, Figure 11-27) and destination matching (§11.6.2, §11.12.10).

use crate::regs::{self, DCR_WRITABLE, ICR_LOW_WRITABLE, Reg, SVR_WRITABLE};
use crate::{ApicMode, ApicPage, Effects, Gp, TimerMode, Trigger, Vlapic, esr, lvt, offset};

/// The only APIC base Conduit offers (the architectural default). IA32_APIC_BASE writes
/// naming another base get #GP: relocating the APIC is not supported.
pub const APIC_BASE_ADDRESS: u64 = 0xFEE0_0000;

/// IA32_APIC_BASE (MSR 0x1B) bits (SDM Vol. 3A §11.4.4, Figure 11-5; §11.12.1).
pub mod apic_base_bits {
    /// Bit 8: bootstrap processor (read-only here).
    pub const BSP: u64 = 1 << 8;
    /// Bit 10: x2APIC mode.
    pub const EXTD: u64 = 1 << 10;
    /// Bit 11: APIC global enable.
    pub const ENABLE: u64 = 1 << 11;
}

/// First and last x2APIC MSR.
const MSR_FIRST: u32 = 0x800;
const MSR_LAST: u32 = 0x8FF;

impl<P: ApicPage> Vlapic<P> {
    /// The register behind x2APIC MSR `msr`, #GP unless the APIC is in x2APIC mode and `msr`
    /// names a register that exists there.
    fn x2apic_reg(&self, msr: u32) -> Result<Reg, Gp> {
        if self.mode != ApicMode::X2Apic || !(MSR_FIRST..=MSR_LAST).contains(&msr) {
            return Err(Gp);
        }
        match regs::decode((msr - MSR_FIRST) << 4) {
            // No DFR and no separate ICR high half in x2APIC mode.
            None | Some(Reg::Dfr | Reg::IcrHigh) => Err(Gp),
            Some(reg) => Ok(reg),
        }
    }

    /// RDMSR of x2APIC register `msr` at TSC `now`: #GP outside x2APIC mode, for reserved
    /// MSRs and for the write-only EOI and SELF IPI. The ICR (0x830) reads as 64 bits.
    pub fn msr_read(&self, msr: u32, now: u64) -> Result<u64, Gp> {
        let value = match self.x2apic_reg(msr)? {
            Reg::Eoi | Reg::SelfIpi => return Err(Gp),
            Reg::IcrLow => {
                let high = self.page.read(offset::X2APIC_ICR_HIGH);
                return Ok(u64::from(self.page.read(offset::ICR_LOW)) | (u64::from(high) << 32));
            }
            Reg::Ppr => u32::from(self.ppr()),
            Reg::CurrentCount => self.timer.current_count(now),
            _ => self.page.read((msr - MSR_FIRST) << 4),
        };
        Ok(u64::from(value))
    }

    /// WRMSR of `value` to x2APIC register `msr` at TSC `now`: #GP outside x2APIC mode, for
    /// reserved MSRs, read-only registers (ID, version, LDR, PPR, ISR/TMR/IRR, current
    /// count), any reserved bit set (bits 63:32 of every register but the ICR), a reserved
    /// timer mode, and non-zero writes to EOI and ESR (SDM Vol. 3A §11.12.1.2).
    pub fn msr_write(&mut self, msr: u32, value: u64, now: u64) -> Result<Effects, Gp> {
        let reg = self.x2apic_reg(msr)?;
        if reg == Reg::IcrLow {
            let (low, dest) = (value as u32, (value >> 32) as u32);
            if low & !ICR_LOW_WRITABLE != 0 {
                return Err(Gp);
            }
            self.page.write(offset::ICR_LOW, low);
            self.page.write(offset::X2APIC_ICR_HIGH, dest);
            return Ok(self.send_ipi(low, dest));
        }
        let v = u32::try_from(value).map_err(|_| Gp)?;
        let check = |writable: u32| if v & !writable == 0 { Ok(()) } else { Err(Gp) };
        Ok(match reg {
            Reg::Tpr => {
                check(0xFF)?;
                self.write_tpr(v);
                Effects::default()
            }
            Reg::Eoi => {
                check(0)?;
                Effects {
                    eoi: self.eoi(),
                    ..Effects::default()
                }
            }
            Reg::Svr => {
                check(SVR_WRITABLE)?;
                self.write_svr(v, now)
            }
            Reg::Esr => {
                check(0)?;
                self.write_esr();
                Effects::default()
            }
            Reg::Lvt(reg) => {
                check(lvt::writable(reg))?;
                if reg == offset::LVT_TIMER && TimerMode::from_lvt(v).is_none() {
                    return Err(Gp);
                }
                self.write_lvt(reg, v, now)
            }
            Reg::InitialCount => self.write_initial_count(v, now),
            Reg::DivideConfig => {
                check(DCR_WRITABLE)?;
                self.write_divide(v);
                Effects::default()
            }
            Reg::SelfIpi => {
                check(0xFF)?;
                if v < 16 {
                    self.error(esr::SEND_ILLEGAL_VECTOR)
                } else {
                    self.accept(v as u8, Trigger::Edge)
                }
            }
            // Read-only registers (ICR, DFR and ICR high were dealt with above).
            _ => return Err(Gp),
        })
    }

    /// IA32_APIC_BASE as the guest reads it.
    pub fn apic_base(&self) -> u64 {
        let bsp = if self.bsp { apic_base_bits::BSP } else { 0 };
        let mode = match self.mode {
            ApicMode::Disabled => 0,
            ApicMode::XApic => apic_base_bits::ENABLE,
            ApicMode::X2Apic => apic_base_bits::ENABLE | apic_base_bits::EXTD,
        };
        APIC_BASE_ADDRESS | bsp | mode
    }

    /// WRMSR IA32_APIC_BASE. #GP for reserved bits (0-7, 9, 52-63), a base other than
    /// [`APIC_BASE_ADDRESS`], the invalid state EN=0/EXTD=1 and the transitions the SDM
    /// forbids (x2APIC → xAPIC, disabled → x2APIC; §11.12.5). The BSP flag is read-only.
    /// Entering the disabled state resets the APIC (registers as at power-up); entering
    /// x2APIC mode turns the ID register into the 32-bit x2APIC ID and derives the LDR
    /// (§11.12.5.1).
    pub fn set_apic_base(&mut self, value: u64) -> Result<Effects, Gp> {
        const ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;
        let known = ADDRESS | apic_base_bits::BSP | apic_base_bits::EXTD | apic_base_bits::ENABLE;
        if value & !known != 0 || value & ADDRESS != APIC_BASE_ADDRESS {
            return Err(Gp);
        }
        let enable = value & apic_base_bits::ENABLE != 0;
        let extd = value & apic_base_bits::EXTD != 0;
        let new = match (enable, extd) {
            (false, false) => ApicMode::Disabled,
            (true, false) => ApicMode::XApic,
            (true, true) => ApicMode::X2Apic,
            (false, true) => return Err(Gp),
        };
        match (self.mode, new) {
            (old, new) if old == new => return Ok(Effects::default()),
            (ApicMode::X2Apic, ApicMode::XApic) | (ApicMode::Disabled, ApicMode::X2Apic) => {
                return Err(Gp);
            }
            _ => {}
        }
        let mut fx = Effects {
            mode_changed: true,
            ..Effects::default()
        };
        self.mode = new;
        match new {
            ApicMode::Disabled => {
                fx.tmr_changed = self.eoi_exit_bitmap() != [0; 4];
                fx.timer_changed = self.timer.next_deadline().is_some();
                self.reset();
            }
            ApicMode::XApic => self.write_id_register(),
            ApicMode::X2Apic => {
                self.write_id_register();
                self.page.write(offset::LDR, self.x2apic_ldr());
                self.page.write(offset::X2APIC_ICR_HIGH, 0);
            }
        }
        Ok(fx)
    }

    /// The x2APIC logical ID: cluster (ID bits 31:4) in bits 31:16, bit `ID & 0xF` in bits
    /// 15:0 (SDM Vol. 3A §11.12.10.2).
    fn x2apic_ldr(&self) -> u32 {
        ((self.id >> 4) << 16) | (1 << (self.id & 0xF))
    }

    /// Whether an interrupt with destination `dest` (in the current mode's format: 8 bits
    /// xAPIC, 32 bits x2APIC) in logical (`logical`) or physical destination mode targets this
    /// APIC (SDM Vol. 3A §11.6.2: physical ID or broadcast; xAPIC logical: 0xFF is a broadcast; flat
    /// model: the 8-bit masks intersect; xAPIC cluster model: same cluster, or cluster 0xF, and the
    /// 4-bit masks intersect; x2APIC logical: same 16-bit cluster, or 0xFFFF, and the 16-bit
    /// masks intersect, §11.12.10). A disabled APIC matches nothing.
    pub fn matches(&self, dest: u32, logical: bool) -> bool {
        match (self.mode, logical) {
            (ApicMode::Disabled, _) => false,
            (ApicMode::XApic, false) => dest & 0xFF == 0xFF || dest & 0xFF == self.id,
            (ApicMode::X2Apic, false) => dest == u32::MAX || dest == self.id,
            (ApicMode::XApic, true) => {
                let dest = dest & 0xFF;
                if dest == 0xFF {
                    return true;
                }
                let ldr = self.page.read(offset::LDR) >> 24;
                match self.page.read(offset::DFR) >> 28 {
                    0xF => dest & ldr != 0,
                    0x0 => {
                        let cluster = dest >> 4;
                        (cluster == 0xF || cluster == ldr >> 4) && dest & ldr & 0xF != 0
                    }
                    _ => false,
                }
            }
            (ApicMode::X2Apic, true) => {
                let ldr = self.page.read(offset::LDR);
                let cluster = dest >> 16;
                (cluster == 0xFFFF || cluster == ldr >> 16) && dest & ldr & 0xFFFF != 0
            }
        }
    }
}
