//! PCI enumeration at boot: the device list everything else looks functions up in.
//!
//! Configuration space is reached through ECAM when the MCFG names a window for segment 0, else
//! through configuration mechanism #1 ([`access`]). Enumeration starts at the first bus of the
//! window and follows every PCI-to-PCI bridge to its secondary bus (the bus numbers the firmware
//! assigned; PCI-to-PCI Bridge Architecture Spec 1.2 §3.2.5.3), visiting functions 1-7 of
//! multi-function devices; then every other bus of the ECAM window is probed, so that root buses
//! of further host bridges (no bridge leads to them) are found too. MCFG windows of segments
//! other than 0 are logged and not enumerated. For each function it reads the identification header, sizes the BARs
//! and walks the legacy and extended capability lists (all through `conduit_pci`), and the boot
//! log prints the tree. Then the VFs of every SR-IOV PF are enabled and join the list
//! ([`sriov`], with their MMIO space below 4 GiB from [`window`]).

pub mod access;
pub mod msi;
pub mod report;
pub mod reset;
pub mod sriov;
mod sriov_bars;
mod sriov_vf;
pub mod window;

use crate::platform::Platform;
use access::{Access, EcamAccess, PortIoAccess};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_pci::{
    Bars, Bdf, BridgeBuses, Capability, ConfigAccess, ExtCapability, Header, HeaderLayout,
};
use log::{error, info, warn};
use spin::{Mutex, Once};

/// One function found at boot.
#[derive(Debug, Clone)]
pub struct Function {
    pub bdf: Bdf,
    pub header: Header,
    /// Sized BARs (empty when sizing failed: see `problems`).
    pub bars: Bars,
    /// The legacy capability list, in list order.
    pub caps: Vec<Capability>,
    /// The PCIe extended capability list, in list order (empty without ECAM).
    pub ext_caps: Vec<ExtCapability>,
    /// Bus numbers, for bridges.
    pub bridge: Option<BridgeBuses>,
    /// Number of bridges between the root bus and this function.
    pub depth: u8,
    /// What could not be read (malformed BAR or capability list), for the log.
    pub problems: Vec<String>,
    /// For an SR-IOV virtual function: its PF and VF index.
    pub vf: Option<sriov::VfOf>,
    /// Interrupt Pin (0: no INTx; 1 = INTA# .. 4 = INTD#) and Interrupt Line as the firmware
    /// left them (PCI Local Bus Spec 3.0 §6.2.4), read at enumeration, before configuration
    /// space is handed to the control task. A VF has no INTx (PCIe Base Spec r6.0 §9.3.4.1).
    pub intx: Intx,
}

/// A function's Interrupt Pin and Interrupt Line registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Intx {
    pub pin: u8,
    pub line: u8,
}

/// Interrupt Line and Interrupt Pin (Type 0 and Type 1 headers alike).
const INTERRUPT_LINE: u16 = 0x3c;
const INTERRUPT_PIN: u16 = 0x3d;

impl Function {
    pub fn vendor_id(&self) -> u16 {
        self.header.vendor_id
    }

    pub fn device_id(&self) -> u16 {
        self.header.device_id
    }
}

/// The configuration-space accessor and the functions found at boot.
#[derive(Debug)]
pub struct Pci {
    access: Mutex<Access>,
    functions: Vec<Function>,
}

static PCI: Once<Pci> = Once::new();

impl Pci {
    /// Every function, in enumeration order (depth first: a bridge, then what is behind it).
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The function at `bdf`, if enumeration found one.
    pub fn function(&self, bdf: Bdf) -> Option<&Function> {
        self.functions.iter().find(|f| f.bdf == bdf)
    }

    /// Functions on the buses `first..=last`.
    pub fn on_buses(&self, first: u8, last: u8) -> impl Iterator<Item = &Function> {
        self.functions
            .iter()
            .filter(move |f| (first..=last).contains(&f.bdf.bus()))
    }

    /// Runs `f` with exclusive use of configuration space.
    pub fn with_config<R>(&self, f: impl FnOnce(&mut Access) -> R) -> R {
        f(&mut self.access.lock())
    }
}

/// The device list, once [`init`] ran.
pub fn get() -> Option<&'static Pci> {
    PCI.get()
}

/// Chooses the access mechanism, enumerates and logs the tree, then enables the VFs `wanted`
/// names ([`sriov`]). Runs once; later calls return the first result.
pub fn init(platform: &Platform, mem: &Memory, wanted: &[sriov::Wanted]) -> &'static Pci {
    PCI.call_once(|| {
        let mut access = choose_access(platform, mem);
        info!("pci: configuration access through {}", access.describe());
        let first_bus = match &access {
            Access::Ecam(_) => platform
                .ecam
                .iter()
                .find(|e| e.segment == 0)
                .map_or(0, |e| e.bus_start),
            Access::PortIo(_) | Access::HandedOver => 0,
        };
        let mut functions = Vec::new();
        let mut visited = [false; 256];
        scan_bus(&mut access, first_bus, 0, &mut visited, &mut functions);
        if let Access::Ecam(e) = &access {
            let (_, start, end) = e.region();
            scan_root_buses(&mut access, start, end, &mut visited, &mut functions);
        }
        for e in platform.ecam.iter().filter(|e| e.segment != 0) {
            warn!(
                "pci: segment {} (buses {:02x}-{:02x}, ECAM at {:#x}) is not enumerated: Conduit \
                 addresses PCI segment 0 only; functions there cannot be assigned",
                e.segment, e.bus_start, e.bus_end, e.base
            );
        }
        let buses = visited.iter().filter(|v| **v).count();
        for f in &functions {
            report::log_function(f);
        }
        info!("pci: {} functions on {buses} bus(es)", functions.len());
        sriov::init(&mut access, &mut functions, platform, mem, wanted);
        Pci {
            access: Mutex::new(access),
            functions,
        }
    })
}

fn choose_access(platform: &Platform, mem: &Memory) -> Access {
    match platform.ecam.iter().find(|e| e.segment == 0) {
        Some(region) => match EcamAccess::new(mem, region) {
            Ok(ecam) => return Access::Ecam(ecam),
            Err(e) => warn!(
                "pci: cannot map the ECAM window at {:#x} ({e}): using port I/O",
                region.base
            ),
        },
        None if platform.ecam.is_empty() => {}
        None => warn!("pci: the MCFG has no window for segment 0: using port I/O"),
    }
    Access::PortIo(PortIoAccess)
}

/// Probes every bus of the ECAM window that no bridge led to: root buses of further host bridges
/// (one per I/O stack on multi-socket servers, QEMU's `pxb-pcie`), which have no parent bridge
/// and so are reached only by looking (PCI Firmware Spec 3.3 §4.1.2: the MCFG's range covers
/// every bus the segment decodes). A bus with a function at device 0-31, function 0, is scanned
/// as a root bus (depth 0), bridges below it followed as usual.
fn scan_root_buses(
    cfg: &mut Access,
    start: u8,
    end: u8,
    visited: &mut [bool; 256],
    out: &mut Vec<Function>,
) {
    for bus in start..=end {
        if visited[usize::from(bus)] {
            continue;
        }
        let present = (0..=Bdf::MAX_DEVICE)
            .filter_map(|d| Bdf::new(bus, d, 0))
            .any(|b| conduit_pci::read_header(&*cfg, b).is_ok());
        if present {
            info!(
                "pci: bus {bus:02x} is a root bus no bridge leads to (another host bridge): scanning it"
            );
            scan_bus(cfg, bus, 0, visited, out);
        }
    }
}

fn scan_bus(
    cfg: &mut Access,
    bus: u8,
    depth: u8,
    visited: &mut [bool; 256],
    out: &mut Vec<Function>,
) {
    visited[usize::from(bus)] = true;
    for device in 0..=Bdf::MAX_DEVICE {
        let Some(f0) = Bdf::new(bus, device, 0) else {
            continue;
        };
        let Ok(header) = conduit_pci::read_header(&*cfg, f0) else {
            continue;
        };
        let last = if header.multi_function() {
            Bdf::MAX_FUNCTION
        } else {
            0
        };
        for function in 0..=last {
            let Some(bdf) = Bdf::new(bus, device, function) else {
                continue;
            };
            let Ok(header) = conduit_pci::read_header(&*cfg, bdf) else {
                continue;
            };
            let f = probe(cfg, bdf, header, depth);
            let below = f.bridge.and_then(|b| b.range()).map(|r| *r.start());
            if f.header.layout() == HeaderLayout::Bridge && below.is_none() {
                warn!("pci: bridge {bdf} has no secondary bus assigned: not scanned behind it");
            }
            out.push(f);
            if let Some(secondary) = below {
                if secondary > bus && !visited[usize::from(secondary)] {
                    scan_bus(cfg, secondary, depth + 1, visited, out);
                } else {
                    warn!("pci: bridge {bdf} names bus {secondary:#04x} again: not rescanned");
                }
            }
        }
    }
}

fn probe(cfg: &mut Access, bdf: Bdf, header: Header, depth: u8) -> Function {
    let mut problems = Vec::new();
    let bars = conduit_pci::size_bars(cfg, bdf).unwrap_or_else(|e| {
        problems.push(alloc::format!("BARs: {e}"));
        Bars::default()
    });
    let mut caps = Vec::new();
    for c in conduit_pci::capabilities(&*cfg, bdf) {
        match c {
            Ok(c) => caps.push(c),
            Err(e) => problems.push(alloc::format!("capabilities: {e}")),
        }
    }
    let mut ext_caps = Vec::new();
    for c in conduit_pci::ext_capabilities(&*cfg, bdf) {
        match c {
            Ok(c) => ext_caps.push(c),
            Err(e) => problems.push(alloc::format!("extended capabilities: {e}")),
        }
    }
    let bridge = (header.layout() == HeaderLayout::Bridge)
        .then(|| conduit_pci::bridge_buses(&*cfg, bdf).ok())
        .flatten();
    Function {
        bdf,
        header,
        bars,
        caps,
        ext_caps,
        bridge,
        depth,
        problems,
        vf: None,
        intx: Intx {
            pin: cfg.read8(bdf, INTERRUPT_PIN),
            line: cfg.read8(bdf, INTERRUPT_LINE),
        },
    }
}

/// Sets bits in the Command register of `bdf` (PCI Local Bus Spec 3.0 §6.2.2), leaving the
/// others; returns the new value.
pub fn enable_command_bits(bdf: Bdf, bits: u16) -> Option<u16> {
    let pci = get()?;
    pci.with_config(|cfg| {
        conduit_pci::read_header(&*cfg, bdf).ok()?;
        let old = cfg.read16(bdf, conduit_pci::config::reg::COMMAND);
        conduit_pci::config::write_command(cfg, bdf, old | bits);
        Some(cfg.read16(bdf, conduit_pci::config::reg::COMMAND))
    })
}

/// How a configuration names a PCI function: by address (`bb:dd.f`) or by identity
/// (`vvvv:dddd`, the first function enumeration found with that vendor and device ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRef {
    Address(Bdf),
    Id { vendor: u16, device: u16 },
}

impl core::str::FromStr for DeviceRef {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('.') {
            return s
                .parse::<Bdf>()
                .map(Self::Address)
                .map_err(|_| "expected bb:dd.f");
        }
        let (v, d) = s.split_once(':').ok_or("expected bb:dd.f or vvvv:dddd")?;
        let hex = |t: &str| {
            (t.len() == 4)
                .then(|| u16::from_str_radix(t, 16).ok())
                .flatten()
                .ok_or("expected four hex digits in vvvv:dddd")
        };
        Ok(Self::Id {
            vendor: hex(v)?,
            device: hex(d)?,
        })
    }
}

impl core::fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Address(b) => write!(f, "{b}"),
            Self::Id { vendor, device } => write!(f, "{vendor:04x}:{device:04x}"),
        }
    }
}

impl DeviceRef {
    /// What a configuration's `function = "..."` names (`None`: not a valid address).
    pub fn from_config(sel: conduit_config::DeviceSel) -> Option<Self> {
        Some(match sel {
            conduit_config::DeviceSel::Bdf { bus, dev, func } => {
                Self::Address(Bdf::new(bus, dev, func)?)
            }
            conduit_config::DeviceSel::Id { vendor, device } => Self::Id { vendor, device },
        })
    }
}

impl Pci {
    /// The function `r` names, if enumeration found it.
    pub fn resolve(&self, r: DeviceRef) -> Option<&Function> {
        resolve_in(&self.functions, r)
    }
}

/// The function `r` names among `functions`: the one at its address, or the first with its
/// vendor and device ID (also used by [`sriov`] before the device list is complete).
fn resolve_in(functions: &[Function], r: DeviceRef) -> Option<&Function> {
    functions.iter().find(|f| match r {
        DeviceRef::Address(bdf) => f.bdf == bdf,
        DeviceRef::Id { vendor, device } => f.vendor_id() == vendor && f.device_id() == device,
    })
}

/// How physical configuration space was reached before [`hand_over`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// ECAM: `phys` is the address of bus `start_bus`; `len` bytes cover up to `end_bus`.
    Ecam {
        phys: u64,
        len: u64,
        start_bus: u8,
        end_bus: u8,
    },
    /// Configuration mechanism #1 (ports 0xCF8/0xCFC).
    PortIo,
}

/// The mechanism the kernel uses, for the control task to use too; `None` before enumeration
/// or after [`hand_over`].
pub fn mechanism() -> Option<Mechanism> {
    let pci = get()?;
    match &*pci.access.lock() {
        Access::Ecam(e) => {
            let (window, start_bus, end_bus) = e.region();
            Some(Mechanism::Ecam {
                phys: window.phys(),
                len: (u64::from(end_bus - start_bus) + 1) << 20,
                start_bus,
                end_bus,
            })
        }
        Access::PortIo(_) => Some(Mechanism::PortIo),
        Access::HandedOver => None,
    }
}

/// Gives physical configuration space up once boot is done with it: from here on the kernel's
/// accessor reads all ones and drops writes ([`Access::HandedOver`]), and its ECAM mappings (the
/// MMIO mapping and the loader's physical-memory window over the region) are removed, so that
/// the control task holds the only way in. Returns the mechanism, or `None` if enumeration never
/// ran or it was handed over already.
pub fn hand_over(mem: &Memory) -> Option<Mechanism> {
    let pci = get()?;
    let old = core::mem::replace(&mut *pci.access.lock(), Access::HandedOver);
    match old {
        Access::Ecam(e) => {
            let (window, start_bus, end_bus) = e.region();
            let len = (u64::from(end_bus - start_bus) + 1) << 20;
            // SAFETY: the accessor owning the window was replaced by `HandedOver` under the access
            // lock and is consumed here; `EcamAccess::new` is the window's only mapper, so no copy
            // of it makes or uses a block again.
            let mapped = unsafe { conduit_hw::memory::mmio::unmap(mem, &window) };
            // SAFETY: the ECAM range is device memory; no RAM the kernel uses, and so nothing it
            // reaches through the physical-memory window, lies there.
            let direct = unsafe { conduit_hw::memory::mmio::unmap_direct(mem, window.phys(), len) };
            match (mapped, direct) {
                (Ok(mapped), Ok(direct)) => info!(
                    "pci: ECAM at {:#x} ({} MiB, buses {start_bus}-{end_bus}) handed over: the kernel's mapping ({} KiB) and the physical-memory window over it ({} MiB) removed",
                    window.phys(),
                    len >> 20,
                    mapped >> 10,
                    direct >> 20
                ),
                (mapped, direct) => error!(
                    "pci: ECAM at {:#x} ({} MiB, buses {start_bus}-{end_bus}) handed over, but the kernel's way into it was not all removed: its mapping: {}; the physical-memory window over it: {}",
                    window.phys(),
                    len >> 20,
                    mapped.map_or_else(|e| alloc::format!("{e}"), |_| String::from("removed")),
                    direct.map_or_else(|e| alloc::format!("{e}"), |_| String::from("removed")),
                ),
            }
            Some(Mechanism::Ecam {
                phys: window.phys(),
                len,
                start_bus,
                end_bus,
            })
        }
        Access::PortIo(_) => {
            info!("pci: configuration mechanism #1 (ports 0xcf8-0xcff) handed over");
            Some(Mechanism::PortIo)
        }
        Access::HandedOver => None,
    }
}
