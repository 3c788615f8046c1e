//! PCI enumeration at boot: the device list everything else looks functions up in.
//!
//! Configuration space is reached through ECAM, one window per MCFG allocation of every PCI
//! segment, else (no MCFG) through configuration mechanism #1 on segment 0 ([`access`]). Each
//! segment is walked by `conduit_pci::enumerate`: from its first bus, following every
//! PCI-to-PCI bridge to its secondary bus (the bus numbers the firmware assigned), then every other
//! bus of the segment's MCFG range, so that root buses of further host bridges (no bridge leads to
//! them) are found too. For each function it reads the identification header, sizes the BARs and
//! walks the legacy and extended capability lists (all through `conduit_pci`), and the boot log
//! prints the tree (`ssss:bb:dd.f` off segment 0). Then the VFs of the SR-IOV PFs on segment 0
//! that the configuration uses are enabled and join the list ([`sriov`], [`window`]).

pub mod access;
pub mod msi;
pub mod report;
pub mod reset;
pub mod sriov;
mod sriov_bars;
mod sriov_vf;
pub mod window;

use crate::platform::Platform;
use crate::platform::acpi::Ecam;
use access::{Access, EcamAccess, PortIoAccess};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::Memory;
use conduit_pci::enumerate::{self, Event};
use conduit_pci::{
    Bars, Bdf, BridgeBuses, Capability, ConfigAccess, ExtCapability, Header, HeaderLayout,
    OnSegment, PciAddress,
};
use log::{error, info, warn};
use spin::{Mutex, Once};

/// One function found at boot.
#[derive(Debug, Clone)]
pub struct Function {
    /// The PCI segment group (0 unless the MCFG lists further segments).
    pub segment: u16,
    /// The address within the segment.
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

    /// The segment-qualified address.
    pub fn address(&self) -> PciAddress {
        PciAddress::new(self.segment, self.bdf)
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

    /// The function at `bdf` on segment 0, if enumeration found one.
    pub fn function(&self, bdf: Bdf) -> Option<&Function> {
        self.function_at(PciAddress::on_segment0(bdf))
    }

    /// The function at `address` (any segment), if enumeration found one.
    pub fn function_at(&self, address: PciAddress) -> Option<&Function> {
        self.functions.iter().find(|f| f.address() == address)
    }

    /// Functions on the buses `first..=last` of `segment`.
    pub fn on_buses(&self, segment: u16, first: u8, last: u8) -> impl Iterator<Item = &Function> {
        self.functions
            .iter()
            .filter(move |f| f.segment == segment && (first..=last).contains(&f.bdf.bus()))
    }

    /// Runs `f` with exclusive use of configuration space (segment 0 through `ConfigAccess`).
    pub fn with_config<R>(&self, f: impl FnOnce(&mut Access) -> R) -> R {
        f(&mut self.access.lock())
    }

    /// Runs `f` with exclusive use of the configuration space of `segment`.
    pub fn with_segment<R>(
        &self,
        segment: u16,
        f: impl FnOnce(&mut OnSegment<'_, Access>) -> R,
    ) -> R {
        f(&mut OnSegment::new(&mut *self.access.lock(), segment))
    }
}

/// The device list, once [`init`] ran.
pub fn get() -> Option<&'static Pci> {
    PCI.get()
}

/// Chooses the access mechanism, enumerates every segment and logs the tree, then enables the
/// VFs `wanted` names ([`sriov`]). Runs once; later calls return the first result.
pub fn init(platform: &Platform, mem: &Memory, wanted: &[sriov::Wanted]) -> &'static Pci {
    PCI.call_once(|| {
        let mut access = choose_access(platform, mem);
        info!("pci: configuration access through {}", access.describe());
        // Each segment once, with the bus range its allocations span (ports: segment 0, bus 0).
        let mut segments: Vec<(u16, u8, u8)> = Vec::new();
        match &access {
            Access::Ecam(windows) => {
                for w in windows.iter().map(EcamAccess::region) {
                    match segments.iter_mut().find(|s| s.0 == w.segment) {
                        Some(s) => *s = (s.0, s.1.min(w.bus_start), s.2.max(w.bus_end)),
                        None => segments.push((w.segment, w.bus_start, w.bus_end)),
                    }
                }
            }
            Access::PortIo(_) | Access::HandedOver => segments.push((0, 0, 0)),
        }
        segments.sort_unstable();
        let mut functions = Vec::new();
        let mut buses = 0;
        for &(segment, first, last) in &segments {
            buses += scan_segment(&mut access, segment, first..=last, &mut functions);
        }
        for f in &functions {
            report::log_function(f);
        }
        info!(
            "pci: {} functions on {buses} bus(es) of {} segment(s)",
            functions.len(),
            segments.len()
        );
        sriov::init(&mut access, &mut functions, platform, mem, wanted);
        Pci {
            access: Mutex::new(access),
            functions,
        }
    })
}

/// One window per MCFG allocation, if the allocations are consistent and every window maps;
/// else configuration mechanism #1 (segment 0 only).
fn choose_access(platform: &Platform, mem: &Memory) -> Access {
    if platform.ecam.is_empty() {
        return Access::PortIo(PortIoAccess);
    }
    if let Err(e) = conduit_pci::check_windows(&platform.ecam) {
        warn!("pci: the MCFG is inconsistent ({e}): using port I/O (segment 0 only)");
        return Access::PortIo(PortIoAccess);
    }
    // Segment 0 first: without a usable window there, configuration mechanism #1 serves it and
    // no other window is mapped (the kernel keeps no mapping it would not hand over).
    let (zero, others): (Vec<&Ecam>, Vec<&Ecam>) =
        platform.ecam.iter().partition(|r| r.segment == 0);
    let mut windows = Vec::new();
    for region in zero.into_iter().chain(others) {
        if windows.is_empty() && region.segment != 0 {
            break;
        }
        match EcamAccess::new(mem, region) {
            Ok(ecam) => windows.push(ecam),
            Err(e) => warn!(
                "pci: cannot map the ECAM window at {:#x} (segment {}, buses {:02x}-{:02x}): {e}: \
                 its functions are not enumerated",
                region.base, region.segment, region.bus_start, region.bus_end
            ),
        }
    }
    if windows.is_empty() {
        warn!("pci: no ECAM window of segment 0 is usable: using port I/O, for segment 0 only");
        return Access::PortIo(PortIoAccess);
    }
    Access::Ecam(windows)
}

/// Walks `segment` (`conduit_pci::enumerate`), probing every function found; returns the number
/// of buses walked. Root buses no bridge leads to (one per I/O stack on multi-socket servers,
/// QEMU's `pxb-pcie`) are found by probing every bus of the segment's MCFG range (PCI Firmware
/// Spec 3.3 §4.1.2).
fn scan_segment(
    access: &mut Access,
    segment: u16,
    buses: core::ops::RangeInclusive<u8>,
    out: &mut Vec<Function>,
) -> usize {
    let mut cfg = OnSegment::new(access, segment);
    let mut found = Vec::new();
    let walked = enumerate::walk(&cfg, buses, &mut |event| match event {
        Event::Function { bdf, header, depth } => found.push((bdf, header, depth)),
        Event::RootBus(bus) => info!(
            "pci: {} is a root bus no bridge leads to (another host bridge): scanning it",
            bus_name(segment, bus)
        ),
        Event::Unassigned(bdf) => warn!(
            "pci: bridge {} has no secondary bus assigned: not scanned behind it",
            PciAddress::new(segment, bdf)
        ),
        Event::Revisit { bridge, bus } => warn!(
            "pci: bridge {} names bus {bus:#04x} again: not rescanned",
            PciAddress::new(segment, bridge)
        ),
    });
    for (bdf, header, depth) in found {
        out.push(probe(&mut cfg, segment, bdf, header, depth));
    }
    walked
}

/// `bus NN`, or `segment SSSS bus NN` off segment 0.
fn bus_name(segment: u16, bus: u8) -> String {
    if segment == 0 {
        alloc::format!("bus {bus:02x}")
    } else {
        alloc::format!("segment {segment:04x} bus {bus:02x}")
    }
}

fn probe<C: ConfigAccess>(
    cfg: &mut C,
    segment: u16,
    bdf: Bdf,
    header: Header,
    depth: u8,
) -> Function {
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
        segment,
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

/// Sets bits in the Command register of `bdf` on segment 0 ([`enable_command_bits_at`]).
pub fn enable_command_bits(bdf: Bdf, bits: u16) -> Option<u16> {
    enable_command_bits_at(PciAddress::on_segment0(bdf), bits)
}

/// Sets bits in the Command register of `at` (PCI Local Bus Spec 3.0 §6.2.2), leaving the
/// others; returns the new value.
pub fn enable_command_bits_at(at: PciAddress, bits: u16) -> Option<u16> {
    let pci = get()?;
    pci.with_segment(at.segment, |cfg| {
        let bdf = at.bdf;
        conduit_pci::read_header(&*cfg, bdf).ok()?;
        let old = cfg.read16(bdf, conduit_pci::config::reg::COMMAND);
        conduit_pci::config::write_command(cfg, bdf, old | bits);
        Some(cfg.read16(bdf, conduit_pci::config::reg::COMMAND))
    })
}

/// How a configuration names a PCI function: by address (`bb:dd.f` on segment 0, or
/// `ssss:bb:dd.f`) or by identity (`vvvv:dddd`, the first function enumeration found with that
/// vendor and device ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRef {
    Address(PciAddress),
    Id { vendor: u16, device: u16 },
}

impl core::str::FromStr for DeviceRef {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('.') {
            return s
                .parse::<PciAddress>()
                .map(Self::Address)
                .map_err(|_| "expected [ssss:]bb:dd.f");
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
            conduit_config::DeviceSel::Bdf {
                segment,
                bus,
                dev,
                func,
            } => Self::Address(PciAddress::new(segment, Bdf::new(bus, dev, func)?)),
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
        DeviceRef::Address(address) => f.address() == address,
        DeviceRef::Id { vendor, device } => f.vendor_id() == vendor && f.device_id() == device,
    })
}

/// One ECAM window the kernel maps: `phys` is the address of bus `start_bus` of `segment`;
/// `len` bytes cover up to `end_bus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcamWindow {
    pub segment: u16,
    pub phys: u64,
    pub len: u64,
    pub start_bus: u8,
    pub end_bus: u8,
}

/// How physical configuration space was reached before [`hand_over`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// ECAM: every window the kernel mapped, of every segment, in MCFG order.
    Ecam(Vec<EcamWindow>),
    /// Configuration mechanism #1 (ports 0xCF8/0xCFC; segment 0).
    PortIo,
}

/// The mechanism the kernel uses, for the control task to use too; `None` before enumeration
/// or after [`hand_over`]. With ECAM: every window, of every segment the MCFG lists.
pub fn mechanism() -> Option<Mechanism> {
    let pci = get()?;
    match &*pci.access.lock() {
        Access::Ecam(windows) => Some(ecam_mechanism(windows)),
        Access::PortIo(_) => Some(Mechanism::PortIo),
        Access::HandedOver => None,
    }
}

fn ecam_mechanism(windows: &[EcamAccess]) -> Mechanism {
    Mechanism::Ecam(
        windows
            .iter()
            .map(|e| {
                let r = e.region();
                EcamWindow {
                    segment: r.segment,
                    phys: r.first_byte(),
                    len: r.bytes(),
                    start_bus: r.bus_start,
                    end_bus: r.bus_end,
                }
            })
            .collect(),
    )
}

/// Gives physical configuration space up once boot is done with it: from here on the kernel's
/// accessor reads all ones and drops writes ([`Access::HandedOver`]), and its ECAM mappings (the
/// MMIO mapping and the loader's physical-memory window over each window, of every segment) are
/// removed, so that the control task holds the only way in. Returns the mechanism, or `None` if
/// enumeration never ran or it was handed over already.
pub fn hand_over(mem: &Memory) -> Option<Mechanism> {
    let pci = get()?;
    let old = core::mem::replace(&mut *pci.access.lock(), Access::HandedOver);
    match old {
        Access::Ecam(windows) => {
            let mechanism = ecam_mechanism(&windows);
            // Removing a mapping ends with a TLB shootdown on the other CPUs, a cross-CPU call:
            // it needs interrupts enabled (no lock an interrupt handler takes is held here).
            conduit_hw::smp::with_interrupts(|| {
                for e in windows {
                    unmap_window(mem, e);
                }
            });
            Some(mechanism)
        }
        Access::PortIo(_) => {
            info!("pci: configuration mechanism #1 (ports 0xcf8-0xcff) handed over");
            Some(Mechanism::PortIo)
        }
        Access::HandedOver => None,
    }
}

/// Removes the kernel's ways into one ECAM window (consumed: it is not used again).
fn unmap_window(mem: &Memory, e: EcamAccess) {
    let r = *e.region();
    let window = e.mapping();
    let (phys, len) = (r.first_byte(), r.bytes());
    let what = alloc::format!(
        "pci: ECAM at {phys:#x} ({} MiB, {})",
        len >> 20,
        if r.segment == 0 {
            alloc::format!("buses {}-{}", r.bus_start, r.bus_end)
        } else {
            alloc::format!(
                "segment {:04x} buses {:02x}-{:02x}",
                r.segment,
                r.bus_start,
                r.bus_end
            )
        }
    );
    // SAFETY: the accessor owning the window was replaced by `HandedOver` under the access lock
    // and is consumed here; `EcamAccess::new` is the window's only mapper, so no copy of it makes
    // or uses a block again.
    let mapped = unsafe { conduit_hw::memory::mmio::unmap(mem, &window) };
    // SAFETY: the ECAM range is device memory; no RAM the kernel uses, and so nothing it reaches
    // through the physical-memory window, lies there.
    let direct = unsafe { conduit_hw::memory::mmio::unmap_direct(mem, phys, len) };
    match (mapped, direct) {
        (Ok(mapped), Ok(direct)) => info!(
            "{what} handed over: the kernel's mapping ({} KiB) and the physical-memory window over it ({} MiB) removed",
            mapped >> 10,
            direct >> 20
        ),
        (mapped, direct) => error!(
            "{what} handed over, but the kernel's way into it was not all removed: its mapping: {}; the physical-memory window over it: {}",
            mapped.map_or_else(|e| alloc::format!("{e}"), |_| String::from("removed")),
            direct.map_or_else(|e| alloc::format!("{e}"), |_| String::from("removed")),
        ),
    }
}
