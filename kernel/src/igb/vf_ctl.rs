//! The PF register writes the mailbox service decides ([`conduit_igb_mbx::Action`]): a VF's
//! receive address with its pool, its receive and transmit enables, its pool's VMOLR, and the
//! shared VLAN (VLVF, VFTA) and multicast (MTA) tables. These are the only writes Conduit makes
//! to those registers; the PF-wide receive and transmit setup lives elsewhere.
//!
//! Register layouts: 82576 datasheet register descriptions of RAL/RAH (address low 32 bits, then
//! the high 16 bits with Address Valid and the pool select bits), VFRE/VFTE (one bit per VF),
//! VMOLR, VLVF, VFTA and MTA; the order (RAL before RAH, VFTE before VFRE) is Linux igb's.

use super::regs::{PfReg, PfRegs, RAH_AV, RAH_POOL_SHIFT};
use conduit_hw::memory::mmio::MmioError;
use conduit_igb_mbx::Action;

/// Carries out one action on the PF's registers.
pub fn apply(regs: &PfRegs, action: &Action) -> Result<(), MmioError> {
    match *action {
        Action::ReceiveAddress { index, mac, pool } => {
            let [lo, hi] = mac.to_words();
            regs.write(PfReg::Ral(index), lo)?;
            regs.write(
                PfReg::Rah(index),
                (hi & 0xffff) | RAH_AV | (1 << (RAH_POOL_SHIFT + u32::from(pool))),
            )
        }
        Action::RxTx { vf, enable } => {
            for reg in [PfReg::Vfte, PfReg::Vfre] {
                let old = regs.read(reg)?;
                let bit = 1u32 << vf;
                regs.write(reg, if enable { old | bit } else { old & !bit })?;
            }
            Ok(())
        }
        Action::Vmolr { vf, value } => regs.write(PfReg::Vmolr(vf), value),
        Action::Vlvf { index, value } => regs.write(PfReg::Vlvf(index), value),
        Action::Vfta { index, value } => regs.write(PfReg::Vfta(index), value),
        Action::Mta { index, value } => regs.write(PfReg::Mta(index), value),
    }
}
