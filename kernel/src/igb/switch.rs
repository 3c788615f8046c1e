//! The PF-wide setup that lets a VF's packets move: the 82576's VMDq switch (Intel 82576 GbE
//! Controller Datasheet §7.8 "Virtualization": VMDq pool selection and transmit switching), set the way Linux's igb PF
//! driver sets it once it has VFs (docs/sriov.md, "The VF data path").
//!
//! With VMDq on, the receive side sorts every frame into pools (pool *n* = VF *n*'s queue, the
//! PF's pool after the VFs'): a unicast frame goes to the pools whose receive-address entries
//! hold its destination MAC, broadcast and multicast to every pool that accepts them
//! (replication), unicast that matches no entry to the default pool; each pool then only gets it
//! while its VFRE bit is set. The transmit side sends a VF's frame to the wire only while the VF's
//! VFTE bit is set, and with loopback on switches frames between pools.
//!
//! [`setup`], per PF the hypervisor keeps for its VFs, at boot:
//! - bus mastering and memory decode on in the PF's Command register (the device's receive
//!   unit is the PF's: QEMU's model takes no frame from its network back end while the PF's bus
//!   mastering is off);
//! - VFRE and VFTE cleared: no VF moves packets until its reset handshake through the mailbox
//!   (the mailbox service enables its pool and programs its MAC then, as Linux's PF does);
//! - MRQC in VMDq mode (one queue per pool, no RSS); VT_CTL's default pool = the PF's pool (the
//!   pool after the enabled VFs), replication on;
//! - DTXSWC: loopback on (VF-to-VF frames switched inside the device), MAC and VLAN
//!   anti-spoofing on every pool but the PF's; QDE: every queue drops when it has no
//!   descriptors, so that one guest's full ring does not stall the others';
//! - RCTL: receive on, broadcasts accepted, CRC stripped; TCTL: transmit on, short frames padded;
//!   CTRL.SLU (link up follows the PHY);
//! - with the link down (STATUS.LU clear, as after a device reset, which QEMU's model leaves
//!   down until autonegotiation is restarted), the PHY's autonegotiation restarted through MDIC
//!   (BMCR: autonegotiation on and restarted, as Linux's PF does when it sets up a copper link);
//!   the link comes up on its own later (a VF's driver waits for its STATUS.LU).

use super::IgbError;
use super::regs::{
    BMCR_RESTART_AUTONEG, CTRL_SLU, DEVICE_CONTROL, DTXSWC_LOOPBACK, DeviceControl, MDIC,
    MDIC_ERROR, MDIC_INTERNAL_PHY, MDIC_OP_WRITE, MDIC_PHY_SHIFT, MDIC_READY, MDIC_REG_SHIFT,
    MRQC_MODE, MRQC_VMDQ, Mdic, PHY_BMCR, POOL_CONTROL, POOL_ENABLES, PoolControl, PoolEnables,
    QUEUE_DROP, QueueDrop, RCTL_BAM, RCTL_EN, RCTL_SECRC, RX_CONTROL, RxControl, STATUS_LU,
    SWITCH_BAR0, TCTL_EN, TCTL_PSP, TX_CONTROL, TX_SWITCH, TxControl, TxSwitch,
    VT_CTL_DEFAULT_POOL, VT_CTL_DEFAULT_POOL_SHIFT, VT_CTL_DISABLE_DEFAULT_POOL,
    VT_CTL_REPLICATION, dtxswc_mac_spoof, dtxswc_vlan_spoof,
};
use crate::pci::{self, Function};
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio;
use conduit_pci::config::command;
use core::fmt;
use volatile::map_field;

/// Pools (and VFs) of the 82576.
pub const POOLS: u16 = 8;
/// Every one of the 16 receive queues.
const ALL_QUEUES: u32 = 0xffff;
/// Reads of MDIC before a PHY write counts as failed.
const MDIC_POLLS: u32 = 100_000;

/// The switch registers as read back after [`setup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The PF's pool (the default pool): the pool after the enabled VFs.
    pub pf_pool: u16,
    pub mrqc: u32,
    pub vt_ctl: u32,
    pub dtxswc: u32,
    pub vfre: u32,
    pub vfte: u32,
    pub rctl: u32,
    pub tctl: u32,
    pub status: u32,
    pub command: u16,
    /// The link was down and autonegotiation was restarted.
    pub autoneg: bool,
}

impl Switch {
    /// STATUS.LU.
    pub fn link_up(&self) -> bool {
        self.status & STATUS_LU != 0
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MRQC {:#x} (VMDq), VT_CTL {:#010x} (default pool {} = the PF's, replication on), \
             DTXSWC {:#010x} (loopback, anti-spoofing on the VFs' pools), VFRE {:#x} VFTE {:#x} \
             (each VF's pool waits for its reset handshake), RCTL {:#010x}, TCTL {:#010x}, \
             Command {:#06x}; link {} (STATUS {:#010x}){}",
            self.mrqc,
            self.vt_ctl,
            self.pf_pool,
            self.dtxswc,
            self.vfre,
            self.vfte,
            self.rctl,
            self.tctl,
            self.command,
            if self.link_up() { "up" } else { "down" },
            self.status,
            if self.autoneg {
                ": autonegotiation restarted (PHY BMCR through MDIC)"
            } else {
                ""
            }
        )
    }
}

/// DTXSWC with loopback and anti-spoofing on every pool but `pf_pool` (what Linux's PF writes).
fn dtxswc(old: u32, pf_pool: u16) -> u32 {
    let spoof = (0..u32::from(POOLS))
        .filter(|p| *p != u32::from(pf_pool))
        .fold(0, |acc, p| acc | dtxswc_mac_spoof(p) | dtxswc_vlan_spoof(p));
    (old & !0xffff) | spoof | DTXSWC_LOOPBACK
}

/// Sets up the VMDq switch of the PF `f`, whose `num_vfs` VFs are enabled (see the module docs).
pub fn setup(f: &Function, mem: &Memory, num_vfs: u16) -> Result<Switch, IgbError> {
    if num_vfs == 0 || num_vfs >= POOLS {
        return Err(IgbError::PoolCount {
            bdf: f.bdf,
            num_vfs,
        });
    }
    let bar = f
        .bars
        .get(0)
        .filter(|b| b.is_memory() && b.size >= SWITCH_BAR0)
        .ok_or(IgbError::NoBar0(f.bdf))?;
    let wanted = command::MEMORY_SPACE | command::BUS_MASTER;
    let cmd = pci::enable_command_bits(f.bdf, wanted);
    let cmd = match cmd {
        Some(c) if c & wanted == wanted => c,
        other => {
            return Err(IgbError::NoDecode {
                bdf: f.bdf,
                command: other,
            });
        }
    };
    let map = mmio::map(mem, bar.address, SWITCH_BAR0).map_err(|e| IgbError::Mmio(f.bdf, e))?;
    let mmio = |e| IgbError::Mmio(f.bdf, e);
    let device = map.block::<DeviceControl>(DEVICE_CONTROL).map_err(mmio)?;
    let rx = map.block::<RxControl>(RX_CONTROL).map_err(mmio)?;
    let tx = map.block::<TxControl>(TX_CONTROL).map_err(mmio)?;
    let enables = map.block::<PoolEnables>(POOL_ENABLES).map_err(mmio)?;
    let drop = map.block::<QueueDrop>(QUEUE_DROP).map_err(mmio)?;
    let switch = map.block::<TxSwitch>(TX_SWITCH).map_err(mmio)?;
    let pools = map.block::<PoolControl>(POOL_CONTROL).map_err(mmio)?;
    let mdic = map.block::<Mdic>(MDIC).map_err(mmio)?;

    map_field!(enables.vfre).write(0);
    map_field!(enables.vfte).write(0);
    let pf_pool = num_vfs;
    map_field!(pools.mrqc).update(|m| (m & !MRQC_MODE) | MRQC_VMDQ);
    map_field!(pools.vt_ctl).update(|v| {
        (v & !(VT_CTL_DEFAULT_POOL | VT_CTL_DISABLE_DEFAULT_POOL))
            | (u32::from(pf_pool) << VT_CTL_DEFAULT_POOL_SHIFT)
            | VT_CTL_REPLICATION
    });
    map_field!(switch.dtxswc).update(|d| dtxswc(d, pf_pool));
    map_field!(drop.qde).write(ALL_QUEUES);
    map_field!(rx.rctl).update(|r| r | RCTL_EN | RCTL_BAM | RCTL_SECRC);
    map_field!(tx.tctl).update(|t| t | TCTL_EN | TCTL_PSP);
    map_field!(device.ctrl).update(|c| c | CTRL_SLU);

    let autoneg = map_field!(device.status).read() & STATUS_LU == 0;
    if autoneg {
        map_field!(mdic.mdic).write(
            BMCR_RESTART_AUTONEG
                | (PHY_BMCR << MDIC_REG_SHIFT)
                | (MDIC_INTERNAL_PHY << MDIC_PHY_SHIFT)
                | MDIC_OP_WRITE,
        );
        // The PHY answers within microseconds; the MDI cycle is over when Ready is set.
        let mut done = 0;
        for _ in 0..MDIC_POLLS {
            done = map_field!(mdic.mdic).read();
            if done & (MDIC_READY | MDIC_ERROR) != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        if done & MDIC_READY == 0 || done & MDIC_ERROR != 0 {
            return Err(IgbError::Phy {
                bdf: f.bdf,
                mdic: done,
            });
        }
    }

    let s = Switch {
        pf_pool,
        mrqc: map_field!(pools.mrqc).read(),
        vt_ctl: map_field!(pools.vt_ctl).read(),
        dtxswc: map_field!(switch.dtxswc).read(),
        vfre: map_field!(enables.vfre).read(),
        vfte: map_field!(enables.vfte).read(),
        rctl: map_field!(rx.rctl).read(),
        tctl: map_field!(tx.tctl).read(),
        status: map_field!(device.status).read(),
        command: cmd,
        autoneg,
    };
    let taken = s.mrqc & MRQC_MODE == MRQC_VMDQ
        && (s.vt_ctl & VT_CTL_DEFAULT_POOL) >> VT_CTL_DEFAULT_POOL_SHIFT == u32::from(pf_pool)
        && s.vt_ctl & VT_CTL_REPLICATION != 0
        && s.dtxswc & DTXSWC_LOOPBACK != 0
        && s.rctl & RCTL_EN != 0
        && s.tctl & TCTL_EN != 0;
    if !taken {
        return Err(IgbError::SwitchNotTaken(f.bdf, s));
    }
    Ok(s)
}
