//! The Intel 82576 (igb): what the hypervisor does with the PF so that the VFs it gives to guests
//! can raise interrupts, and the functions' interrupt registers ([`regs`]).
//!
//! A VF has its own MSI-X capability (3 vectors, table in its BAR3) and its own extended
//! interrupt registers in BAR0 (VTEICS/VTEIMS/VTEIMC/VTEICR at the PF's EICS/EIMS/EIMC/EICR
//! offsets; Intel 82576 GbE Controller Datasheet §7.8 "Virtualization", §7.3 "Interrupts"), but
//! the device-wide interrupt mode is the PF's: only with GPIE.Multiple_MSIX (bit 4) set in the PF
//! does a VF's cause become its MSI-X message (in QEMU 10's `hw/net/igb_core.c` a VF's EICS write
//! is folded into the PF's EICR and masked with the legacy mask otherwise; no mailbox handshake
//! or reset-done bit is consulted on that path).
//!
//! At boot, [`init`] finds the igb PFs whose VFs the configuration gives to guests
//! (`[[guest.device]] function = "01:00.0", vf = 0`) and, per PF (owned by the hypervisor, which
//! gives the PF itself to nobody then): memory decode on in its Command register, then
//! GPIE.Multiple_MSIX set and read back. It runs before configuration space is handed to the
//! control task, on every machine alike (QEMU's igb model, nested KVM, hardware). Everything
//! else a VF needs for its interrupts is the guest's: bus mastering, MSI-X Enable and the table
//! entries through its virtual configuration space and virtual MSI-X table
//! (`guest::interrupts`), and the causes it enables in its own EIMS.
//!
//! A PF the configuration also gives to a guest as a whole is left alone (that guest's driver
//! owns GPIE); the conflict is reported.

pub mod mailbox;
pub mod regs;
pub mod switch;
mod vf_ctl;

use crate::pci::{self, DeviceRef, Function};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::Bundle;
use conduit_hw::memory::Memory;
use conduit_hw::memory::mmio::MmioError;
use conduit_pci::Bdf;
use conduit_pci::config::command;
use core::fmt;
use log::{error, info, warn};
#[cfg(feature = "selftest")]
use regs::Interrupts;
use regs::{GPIE_MSIX_MODE, MIN_BAR0, PfGpie};
#[cfg(feature = "selftest")]
use spin::Mutex;

pub const VENDOR: u16 = 0x8086;
/// 82576 PF device IDs (copper, fiber, SerDes, quad copper, quad copper ET2, NS, NS SerDes,
/// SerDes quad); QEMU's `igb` is 0x10c9.
pub const PF_DEVICES: [u16; 8] = [
    0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x1526, 0x150a, 0x1518, 0x150d,
];
/// The 82576 VF's device ID (the SR-IOV capability's VF Device ID).
#[cfg(feature = "selftest")]
pub const VF_DEVICE: u16 = 0x10ca;

/// Why a PF could not be set up for its VFs' interrupts, or a function's registers not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgbError {
    /// No memory BAR0 large enough for the interrupt registers.
    NoBar0(Bdf),
    /// Memory decode did not come on (the Command register read back).
    NoDecode {
        bdf: Bdf,
        command: Option<u16>,
    },
    Mmio(Bdf, MmioError),
    /// GPIE read back without Multiple_MSIX after setting it.
    MsixModeNotTaken {
        bdf: Bdf,
        gpie: u32,
    },
    /// VMDq needs at least one VF and a pool left for the PF (8 pools).
    PoolCount {
        bdf: Bdf,
        num_vfs: u16,
    },
    /// The PHY write through MDIC did not complete (Ready clear or Error set).
    Phy {
        bdf: Bdf,
        mdic: u32,
    },
    /// The VMDq switch registers did not read back as written.
    SwitchNotTaken(Bdf, switch::Switch),
}

impl fmt::Display for IgbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBar0(b) => write!(f, "{b}: no memory BAR0 of at least {MIN_BAR0:#x} bytes"),
            Self::NoDecode { bdf, command } => match command {
                Some(c) => write!(f, "{bdf}: memory decode off (Command reads {c:#06x})"),
                None => write!(f, "{bdf}: its Command register cannot be written"),
            },
            Self::Mmio(b, e) => write!(f, "{b}: BAR0: {e}"),
            Self::MsixModeNotTaken { bdf, gpie } => write!(
                f,
                "{bdf}: GPIE reads {gpie:#010x} after setting Multiple_MSIX (bit 4)"
            ),
            Self::PoolCount { bdf, num_vfs } => write!(
                f,
                "{bdf}: {num_vfs} VFs enabled: VMDq needs 1 to {} VFs (a pool is the PF's)",
                switch::POOLS - 1
            ),
            Self::Phy { bdf, mdic } => write!(
                f,
                "{bdf}: restarting autonegotiation through MDIC failed (MDIC {mdic:#010x})"
            ),
            Self::SwitchNotTaken(bdf, s) => {
                write!(f, "{bdf}: the VMDq switch reads back {s}")
            }
        }
    }
}

/// Is `f` an 82576 PF with an SR-IOV capability?
pub fn is_pf(f: &Function) -> bool {
    f.vf.is_none()
        && f.vendor_id() == VENDOR
        && PF_DEVICES.contains(&f.device_id())
        && f.ext_caps
            .iter()
            .any(|e| e.id == conduit_pci::ext_cap_id::SRIOV)
}

/// Is `f` a VF of an 82576 PF?
#[cfg(feature = "selftest")]
pub fn is_vf(f: &Function) -> bool {
    f.vf.is_some() && f.vendor_id() == VENDOR && f.device_id() == VF_DEVICE
}

/// A PF set up for its VFs' interrupts (kept for the self-tests, which read GPIE back).
#[cfg(feature = "selftest")]
#[derive(Clone, Copy)]
struct Managed {
    pf: Bdf,
    gpie: PfGpie,
}

#[cfg(feature = "selftest")]
// SAFETY: `PfGpie` holds a volatile pointer into the PF's BAR0, device memory mapped for the life
// of the hypervisor and valid from every CPU; GPIE is only read and written through it.
unsafe impl Send for Managed {}

#[cfg(feature = "selftest")]
static MANAGED: Mutex<Vec<Managed>> = Mutex::new(Vec::new());

/// What the configuration asks of one igb PF: its VFs (index, guest, network identity) and the
/// guests given the PF itself.
struct Plan {
    pf: Bdf,
    vfs: Vec<mailbox::VfPlan>,
    whole: Vec<String>,
}

fn plan(bundle: &Bundle<'_>, pci: &pci::Pci) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    for g in &bundle.config.guests {
        for (j, d) in g.devices.iter().enumerate() {
            let Some(f) = DeviceRef::from_config(d.function).and_then(|r| pci.resolve(r)) else {
                continue;
            };
            if !is_pf(f) {
                if d.mac.is_some() || !d.vlans.is_empty() {
                    warn!(
                        "guest \"{}\": device[{j}] ({d}, {}): `mac` and `vlans` apply to the VFs \
                         of an igb PF only; ignored",
                        g.name, f.bdf
                    );
                }
                continue;
            }
            let at = match plans.iter().position(|p| p.pf == f.bdf) {
                Some(i) => i,
                None => {
                    plans.push(Plan {
                        pf: f.bdf,
                        vfs: Vec::new(),
                        whole: Vec::new(),
                    });
                    plans.len() - 1
                }
            };
            match d.vf {
                Some(index) => plans[at].vfs.push(mailbox::VfPlan {
                    index,
                    guest: g.name.clone(),
                    mac: d.mac,
                    vlans: d.vlans.clone(),
                }),
                None => plans[at].whole.push(g.name.clone()),
            }
        }
    }
    plans.retain(|p| !p.vfs.is_empty());
    plans
}

/// Sets up every igb PF whose VFs the configuration gives to guests (see the module docs). Runs
/// before configuration space is handed to the control task.
pub fn init(bundle: &Bundle<'_>, mem: &Memory) {
    let Some(pci) = pci::get() else { return };
    for p in plan(bundle, pci) {
        let wanted: Vec<String> = p
            .vfs
            .iter()
            .map(|v| alloc::format!("VF {} (guest \"{}\")", v.index, v.guest))
            .collect();
        let wanted = wanted.join(", ");
        if !p.whole.is_empty() {
            warn!(
                "igb {}: given as a whole to guest(s) \"{}\" and its {wanted} to others: the PF's \
                 guest owns GPIE, so the VFs' interrupts depend on its driver",
                p.pf,
                p.whole.join("\", \"")
            );
            continue;
        }
        let Some(f) = pci.function(p.pf) else {
            continue;
        };
        // The switch first: VF pools stay off until each VF's reset handshake, which the
        // mailbox service (set up next) answers.
        let switched = enabled_vfs(p.pf)
            .ok_or(IgbError::PoolCount {
                bdf: p.pf,
                num_vfs: 0,
            })
            .and_then(|n| switch::setup(f, mem, n));
        match switched {
            Ok(s) => info!("igb {}: VMDq switch set for the VF data path: {s}", p.pf),
            Err(e) => error!(
                "igb {}: the VF data path is not set up: {e}; the packets of {wanted} will not \
                 move",
                p.pf
            ),
        }
        match bring_up(f, mem) {
            Ok((gpie, value, cmd)) => {
                // Only the self-tests read GPIE back later ([`pf_gpie`]); the production image is
                // done with the mapping once MSI-X mode is set.
                #[cfg(feature = "selftest")]
                MANAGED.lock().push(Managed { pf: p.pf, gpie });
                #[cfg(not(feature = "selftest"))]
                let _: PfGpie = gpie;
                info!(
                    "igb {}: GPIE.MSIX_MODE set for VF interrupts (GPIE {value:#010x}, memory \
                     decode on: Command {cmd:#06x}); VFs wanted: {wanted}",
                    p.pf
                );
                if let Err(e) = mailbox::init(f, mem, &p.vfs) {
                    error!(
                        "igb {}: mailbox not served: {e}; the VF drivers of {wanted} get no \
                         answer to their reset",
                        p.pf
                    );
                }
            }
            Err(e) => error!(
                "igb {}: not set up for VF interrupts: {e}; the interrupts of {wanted} will not \
                 arrive",
                p.pf
            ),
        }
    }
}

/// How many VFs of `pf` are enabled (NumVFs as the SR-IOV bring-up set it).
fn enabled_vfs(pf: Bdf) -> Option<u16> {
    match pci::sriov::pfs().iter().find(|p| p.pf == pf)?.status {
        pci::sriov::PfStatus::Enabled { num_vfs, .. } => Some(num_vfs),
        _ => None,
    }
}

/// Memory decode on, then GPIE.Multiple_MSIX; returns GPIE mapped, its value and the Command
/// register.
fn bring_up(f: &Function, mem: &Memory) -> Result<(PfGpie, u32, u16), IgbError> {
    let bar = f
        .bars
        .get(0)
        .filter(|b| b.is_memory() && b.size >= MIN_BAR0)
        .ok_or(IgbError::NoBar0(f.bdf))?;
    let cmd = pci::enable_command_bits(f.bdf, command::MEMORY_SPACE);
    if cmd.is_none_or(|c| c & command::MEMORY_SPACE == 0) {
        return Err(IgbError::NoDecode {
            bdf: f.bdf,
            command: cmd,
        });
    }
    let gpie = PfGpie::map(mem, bar.address, bar.size).map_err(|e| IgbError::Mmio(f.bdf, e))?;
    let value = gpie.set_msix_mode(true);
    if value & GPIE_MSIX_MODE == 0 {
        return Err(IgbError::MsixModeNotTaken {
            bdf: f.bdf,
            gpie: value,
        });
    }
    Ok((gpie, value, cmd.unwrap_or(0)))
}

/// GPIE of `pf` read now, if [`init`] set the PF up for its VFs.
#[cfg(feature = "selftest")]
pub fn pf_gpie(pf: Bdf) -> Option<u32> {
    let managed = MANAGED.lock();
    managed.iter().find(|m| m.pf == pf).map(|m| m.gpie.read())
}

/// An igb function (PF or VF) with its extended interrupt registers mapped; for a PF, GPIE too.
#[cfg(feature = "selftest")]
pub struct Nic {
    pub bdf: Bdf,
    pub interrupts: Interrupts,
    gpie: Option<PfGpie>,
}

#[cfg(feature = "selftest")]
impl Nic {
    /// Maps the interrupt registers of `f`'s BAR0.
    pub fn open(mem: &Memory, f: &Function) -> Result<Self, IgbError> {
        let bar = f
            .bars
            .get(0)
            .filter(|b| b.is_memory() && b.size >= MIN_BAR0)
            .ok_or(IgbError::NoBar0(f.bdf))?;
        let mmio = |e| IgbError::Mmio(f.bdf, e);
        let interrupts = Interrupts::map(mem, bar.address, bar.size).map_err(mmio)?;
        let gpie = if f.vf.is_none() {
            Some(PfGpie::map(mem, bar.address, bar.size).map_err(mmio)?)
        } else {
            None
        };
        Ok(Self {
            bdf: f.bdf,
            interrupts,
            gpie,
        })
    }

    /// Cause `cause` enabled; a PF is put in MSI-X mode first (a VF depends on its PF's).
    pub fn enable(&self, cause: u32) {
        if let Some(g) = self.gpie {
            g.set_msix_mode(true);
        }
        self.interrupts.unmask(cause);
    }

    /// One message on cause `cause`.
    pub fn raise(&self, cause: u32) {
        self.interrupts.raise(cause);
    }

    /// Every cause masked and cleared; a PF leaves MSI-X mode unless it serves VFs.
    pub fn quiesce(&self) {
        self.interrupts.mask_all();
        if let Some(g) = self.gpie
            && pf_gpie(self.bdf).is_none()
        {
            g.set_msix_mode(false);
        }
    }
}
