//! A guest's PCI functions, guest side: configuration ports, BAR mappings in EPT, I/O BARs.
//!
//! - Configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2): the guest's dword writes
//!   to 0xCF8 are latched here; its accesses to 0xCFC-0xCFF are decoded against the latch
//!   (`conduit_vpci::Cf8Address`) and forwarded to the control task as requests
//!   ([`crate::control::call`]). A disabled or malformed address, a task error or an absent
//!   function read all ones and drop writes. Byte and word accesses to 0xCF8-0xCFB are not
//!   configuration accesses (0xCF9 is a chipset's reset register): they read all ones and are
//!   dropped.
//! - The task's answer to a write carries events. `BarMoved` of a memory BAR maps the physical
//!   BAR at the address the guest programmed, in its EPT, uncached (SDM Vol. 3C §29.3.7), after
//!   checking that the event names this function's BAR and that the address lies page-aligned
//!   in the guest's BAR window [`BAR_WINDOW`] without overlapping another mapping; the page(s)
//!   holding an MSI-X table stay unmapped (they trap). `BarUnmapped` unmaps. Both are followed
//!   by INVEPT (`bars.rs`). An I/O BAR becomes a port range whose accesses are forwarded to the
//!   physical ports. Accesses to a mapped memory BAR then go to the device with no VM exit at
//!   all. MSI-X entry changes go to `interrupts.rs`.
//! - When the control task restarts, its virtual functions are back in their reset state
//!   (decode off): [`sync`] removes the mappings made under its earlier life.

use super::Guest;
use super::bars::{map_io, map_memory, unmap_bar};
use crate::control::{self, ControlError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_config::OnControlCrash;
use conduit_control_abi::{Request, WireBar};
use conduit_pci::{Bar, BarKind, Bdf, PciAddress};
use conduit_vpci::{BarPlacer, Cf8Address, Cf8Mode, Event};
use core::ops::Range;
use log::{error, info, warn};
use x86_64::instructions::port::Port;

/// Where a guest may place its memory BARs (guest-physical): below the ECAM window, above all
/// guest RAM (the configuration keeps every guest's RAM below its start). The DSDT's `PCI0._CRS`
/// names it as the root bridge's memory window and the e820 map leaves it out (neither RAM nor
/// reserved), as a PC's firmware does with its PCI hole.
pub const BAR_WINDOW: Range<u64> = 0xc000_0000..0xe000_0000;
/// Where an OS guest's I/O BARs are placed at first: the top quarter of the port space, clear of
/// the legacy devices, the power-management ports and the configuration ports.
pub const IO_BAR_WINDOW: Range<u64> = 0xc000..0x1_0000;
const _: () = assert!(BAR_WINDOW.end <= super::mmio::ECAM_GPA);
const _: () = assert!(BAR_WINDOW.start >= conduit_config::MAX_GUEST_RAM_END);
const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_PORTS: core::ops::RangeInclusive<u16> = 0xcf8..=0xcff;

/// One function given to the guest.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub vbdf: Bdf,
    /// The physical function, on any segment the MCFG lists.
    pub bdf: PciAddress,
    /// The physical BARs as enumeration sized them.
    pub bars: Vec<Bar>,
    /// MSI-X table: (BAR, offset, entries).
    pub msix: Option<(u8, u32, u32)>,
}

#[derive(Debug, Clone)]
pub(super) struct MemMap {
    pub(super) vbdf: Bdf,
    pub(super) index: u8,
    pub(super) gpa: u64,
    pub(super) size: u64,
    /// The trapped MSI-X part: BAR-relative page range, the table (BAR-relative start, bytes),
    /// and the kernel's uncached mapping of the physical pages (for the rest of those pages).
    pub(super) trap: Option<super::mmio::Trap>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct IoMap {
    pub(super) vbdf: Bdf,
    pub(super) index: u8,
    pub(super) port: u32,
    pub(super) size: u32,
    pub(super) phys: u32,
}

/// The guest's functions and what is mapped for them.
#[derive(Debug, Default)]
pub struct GuestDevices {
    /// The guest's index in the configuration (its topology in the control task).
    pub index: u16,
    cf8: u32,
    pub(super) functions: Vec<Assigned>,
    pub(super) mem_maps: Vec<MemMap>,
    pub(super) io_maps: Vec<IoMap>,
    epoch: u64,
}

impl GuestDevices {
    /// A guest with these functions (already built in the control task).
    pub fn new(index: u16, functions: Vec<Assigned>) -> Self {
        Self {
            index,
            functions,
            epoch: control::epoch(),
            ..Self::default()
        }
    }
}

/// Builds each assigned function in the control task at virtual 00:01.0, 00:02.0, … and
/// returns the guest's devices. A function the task cannot build is reported and left out.
/// For a guest with a virtual platform (`firmware_bars`: an OS that expects firmware to have
/// assigned its devices' resources) each BAR starts out programmed, placed by
/// [`conduit_vpci::BarPlacer`] in [`BAR_WINDOW`] and [`IO_BAR_WINDOW`]; decode stays off until
/// the guest turns it on, which maps the BAR (`apply`).
pub fn register(
    index: u16,
    name: &str,
    assigned: &[PciAddress],
    firmware_bars: bool,
) -> GuestDevices {
    let mut functions = Vec::new();
    let mut placer = BarPlacer::new(BAR_WINDOW, IO_BAR_WINDOW);
    for &bdf in assigned {
        let Some(vbdf) = Bdf::new(0, functions.len() as u8 + 1, 0) else {
            error!("guest \"{name}\": {bdf} not given: no free virtual device number");
            continue;
        };
        let f = crate::pci::get().and_then(|p| p.function_at(bdf));
        let bars: Vec<Bar> = f
            .map(|f| f.bars.iter().copied().collect())
            .unwrap_or_default();
        // A VF's own ID registers read 0xFFFF: enumeration recorded the PF's Vendor ID and the
        // VF Device ID for it.
        let id = f
            .filter(|f| f.vf.is_some())
            .map(|f| (f.header.vendor_id, f.header.device_id));
        let placed = if firmware_bars {
            match placer.place_all(&bars) {
                Ok(p) => p,
                Err(e) => {
                    error!("guest \"{name}\": {bdf} not given: {e}");
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        // The placed addresses lie in the BAR windows, below 4 GiB.
        let wire: Vec<WireBar> = bars
            .iter()
            .map(|b| {
                let base = placed
                    .iter()
                    .find(|(i, _)| *i == b.index)
                    .and_then(|(_, at)| u32::try_from(*at).ok())
                    .unwrap_or(0);
                WireBar::with_guest_base(b, base)
            })
            .collect();
        // The guest's interrupt input for the function's INTx pin (`intx.rs`).
        let line = super::intx::virtual_line(vbdf.device(), f.map_or(0, |f| f.intx.pin));
        match control::add_function(index, vbdf, bdf, &wire, true, id, line) {
            Ok(layout) => {
                let msix = layout.msix.map_or(String::new(), |(bir, off, n)| {
                    format!("; MSI-X {n} entries in BAR{bir} at {off:#x} (trapped)")
                });
                info!(
                    "guest \"{name}\": {bdf} appears at {vbdf} (virtual configuration space in the control task; {}{msix})",
                    describe_bars(&bars)
                );
                for (i, at) in &placed {
                    info!(
                        "guest \"{name}\": BAR{i} of {vbdf} starts at {at:#x} (as firmware leaves it)"
                    );
                }
                functions.push(Assigned {
                    vbdf,
                    bdf,
                    bars,
                    msix: layout.msix,
                });
            }
            Err((e, why)) => error!("guest \"{name}\": {bdf} not given: {e} {why}"),
        }
    }
    GuestDevices::new(index, functions)
}

fn describe_bars(bars: &[Bar]) -> String {
    if bars.is_empty() {
        return String::from("no BARs");
    }
    let list: Vec<String> = bars
        .iter()
        .map(|b| {
            let kind = match b.kind {
                BarKind::Io => "io",
                BarKind::Memory32 => "mem32",
                BarKind::Memory64 => "mem64",
            };
            format!("BAR{} {kind} {}", b.index, size_text(b.size))
        })
        .collect();
    list.join(", ")
}

pub(crate) fn size_text(size: u64) -> String {
    match size {
        s if s >= 1 << 20 && s.is_multiple_of(1 << 20) => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s.is_multiple_of(1 << 10) => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Whether `port` is the guest's: a configuration port or one of its mapped I/O BARs.
pub fn claims(g: &Guest, port: u16) -> bool {
    CONFIG_PORTS.contains(&port) || io_map(g, port).is_some()
}

fn io_map(g: &Guest, port: u16) -> Option<IoMap> {
    let p = u32::from(port);
    g.pci
        .io_maps
        .iter()
        .find(|m| (m.port..m.port + m.size).contains(&p))
        .copied()
}

/// A guest IN from a port [`claims`] accepted: the value (low `size` bytes).
pub fn port_in(g: &mut Guest, port: u16, size: u8) -> u64 {
    if !CONFIG_PORTS.contains(&port) {
        return bar_io(g, port, size, None);
    }
    if port == CONFIG_ADDRESS && size == 4 {
        return u64::from(g.pci.cf8);
    }
    let Some((vbdf, offset)) = decode(g, port) else {
        return u64::MAX;
    };
    let answer = control::call(&Request::read(g.pci.index, vbdf, offset, size));
    sync(g);
    match answer {
        Ok(a) => a.value,
        Err(e) => {
            note_error(g, &e);
            u64::MAX
        }
    }
}

/// A guest OUT to a port [`claims`] accepted.
pub fn port_out(g: &mut Guest, port: u16, size: u8, value: u64) {
    if !CONFIG_PORTS.contains(&port) {
        bar_io(g, port, size, Some(value));
        return;
    }
    if port == CONFIG_ADDRESS {
        if size == 4 {
            g.pci.cf8 = value as u32;
        }
        return;
    }
    let Some((vbdf, offset)) = decode(g, port) else {
        return;
    };
    config_write(g, vbdf, offset, size, value as u32);
}

/// A guest's configuration write to (`vbdf`, `offset`), through any mechanism: forwarded, then
/// its events applied.
pub fn config_write(g: &mut Guest, vbdf: Bdf, offset: u16, size: u8, value: u32) {
    let req = Request::write(g.pci.index, vbdf, offset, size, value);
    let answer = control::call(&req);
    sync(g);
    match answer {
        Ok(a) => {
            for e in a.events() {
                apply(g, vbdf, e);
            }
        }
        Err(e) => note_error(g, &e),
    }
}

/// The function and offset a data-port access selects, if the latched address is enabled and
/// well formed.
fn decode(g: &Guest, port: u16) -> Option<(Bdf, u16)> {
    data_port_target(g.pci.cf8, port)
}

/// The function and configuration offset an access to data port `port` (0xCFC-0xCFF) reaches
/// with `cf8` latched in CONFIG_ADDRESS; `None` when the address is disabled or malformed.
pub fn data_port_target(cf8: u32, port: u16) -> Option<(Bdf, u16)> {
    let a = Cf8Address::decode(cf8, Cf8Mode::Standard).ok()?;
    Some((a.bdf, a.offset(port).ok()?))
}

/// The trapped range (MSI-X table page) `gpa` falls in, if any.
pub fn trapped(g: &Guest, gpa: u64) -> Option<super::mmio::Trap> {
    g.pci.mem_maps.iter().find_map(|m| {
        m.trap
            .as_ref()
            .filter(|t| (m.gpa + t.pages.start..m.gpa + t.pages.end).contains(&gpa))
            .cloned()
    })
}

/// Task failures are the task's to report; a crash deserves a line about the guest too (one this
/// guest is blamed for stops it in [`sync`] when its configuration says so).
pub(super) fn note_error(g: &Guest, e: &ControlError) {
    match e {
        ControlError::Crashed => warn!(
            "guest \"{}\": its configuration access failed in the control task (restarted)",
            g.name
        ),
        ControlError::Blamed => warn!(
            "guest \"{}\": its request crashed the control task: its functions are quarantined (on_control_crash = \"{}\")",
            g.name,
            g.spec().on_control_crash.name()
        ),
        _ => {}
    }
}

/// Forwards an access to a mapped I/O BAR to the physical ports.
fn bar_io(g: &mut Guest, port: u16, size: u8, value: Option<u64>) -> u64 {
    let Some(m) = io_map(g, port) else {
        return u64::MAX;
    };
    let p = u32::from(port);
    if p + u32::from(size) > m.port + m.size {
        return u64::MAX;
    }
    let phys = (m.phys + (p - m.port)) as u16;
    // SAFETY: `phys` lies inside the physical I/O BAR of a function assigned to this guest
    // (checked when the mapping was made), so the access reaches only that device.
    unsafe {
        match (size, value) {
            (1, Some(v)) => Port::<u8>::new(phys).write(v as u8),
            (2, Some(v)) => Port::<u16>::new(phys).write(v as u16),
            (_, Some(v)) => Port::<u32>::new(phys).write(v as u32),
            (1, None) => return u64::from(Port::<u8>::new(phys).read()),
            (2, None) => return u64::from(Port::<u16>::new(phys).read()),
            (_, None) => return u64::from(Port::<u32>::new(phys).read()),
        }
    }
    0
}

/// Acts on one event of a write to `vbdf`.
pub(super) fn apply(g: &mut Guest, vbdf: Bdf, e: &Event) {
    match *e {
        Event::BarMoved {
            index,
            kind,
            guest_addr,
            size,
            phys_addr,
            ..
        } => {
            unmap_bar(g, vbdf, index);
            let result = match kind {
                BarKind::Io => map_io(g, vbdf, index, guest_addr, size, phys_addr),
                BarKind::Memory32 | BarKind::Memory64 => {
                    map_memory(g, vbdf, index, guest_addr, size, phys_addr)
                }
            };
            if let Err(why) = result {
                warn!(
                    "guest \"{}\": BAR{index} of {vbdf} at {guest_addr:#x} not mapped: {why}",
                    g.name
                );
            }
        }
        Event::BarUnmapped { index, .. } => unmap_bar(g, vbdf, index),
        Event::CommandChanged {
            memory,
            io,
            bus_master,
            intx_disable,
        } => info!(
            "guest \"{}\": {vbdf} Command: memory {}, I/O {}, bus master {}, INTx disable {}",
            g.name,
            on(memory),
            on(io),
            on(bus_master),
            on(intx_disable)
        ),
        Event::FunctionReset => {
            info!("guest \"{}\": {vbdf} function level reset", g.name);
            if let Some(bdf) = physical_of(g, vbdf) {
                super::interrupts::release_function(g.pci.index, bdf);
            }
        }
        Event::MsixEntryChanged {
            index,
            address,
            data,
            masked,
        } => {
            if let Some(bdf) = physical_of(g, vbdf) {
                let change = super::interrupts::EntryChange {
                    entry: index,
                    address,
                    data,
                    masked,
                };
                let vcpu = receiving_vcpu(g, address);
                let routed = super::interrupts::on_msix_entry(
                    g.pci.index,
                    vcpu,
                    &g.name,
                    g.mem,
                    bdf,
                    change,
                );
                note_msi_destination(g, routed, address);
            }
        }
        Event::MsixControlChanged {
            enabled,
            function_mask,
        } => info!(
            "guest \"{}\": {vbdf} MSI-X {}, function mask {} (on the device too)",
            g.name,
            if enabled { "enabled" } else { "disabled" },
            on(function_mask)
        ),
        Event::MsiChanged { .. } => {
            if let (Some(bdf), Some(change)) = (
                physical_of(g, vbdf),
                super::interrupts::MsiChange::from_event(e),
            ) {
                let vcpu = receiving_vcpu(g, change.address);
                let routed =
                    super::interrupts::on_msi(g.pci.index, vcpu, &g.name, bdf, vbdf, change);
                note_msi_destination(g, routed, change.address);
            }
        }
    }
}

/// The vCPU a message the guest writes to `address` is for, decided before it is routed so that
/// its IRTE aims at that vCPU's CPU: the guest's local APICs the address names
/// (`VirtualPlatform::msi_target`, the rule the vector is later drained into an IRR by); vCPU 0
/// for a guest without a platform.
fn receiving_vcpu(g: &Guest, address: u64) -> u8 {
    g.platform
        .as_ref()
        .map_or(0, |p| p.msi_target(address) as u8)
}

/// A message the guest wrote was routed: its vCPU follows the destination of its address
/// (`VirtualPlatform::set_msi_destination`).
fn note_msi_destination(g: &mut Guest, routed: Option<super::interrupts::Routed>, address: u64) {
    if let (Some(r), Some(p)) = (routed, g.platform.as_mut()) {
        p.set_msi_destination(r.guest_vector, address);
    }
}

/// The physical function behind `vbdf`.
fn physical_of(g: &Guest, vbdf: Bdf) -> Option<PciAddress> {
    g.pci
        .functions
        .iter()
        .find(|f| f.vbdf == vbdf)
        .map(|f| f.bdf)
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Puts every function of the guest back in its reset state through the control task (the
/// operator stopped the guest): decode and bus mastering off in its virtual view, BARs
/// unmapped, and the device's bus mastering off. Returns each physical function with its Command
/// register afterwards (`None`: the task could not do it).
pub fn reset_functions(g: &mut Guest) -> Vec<(PciAddress, Option<u16>)> {
    let functions: Vec<(Bdf, PciAddress)> =
        g.pci.functions.iter().map(|f| (f.vbdf, f.bdf)).collect();
    let mut out = Vec::new();
    for (vbdf, bdf) in functions {
        let req = Request::new(conduit_control_abi::Op::ResetFunction, g.pci.index, vbdf);
        let answer = control::call(&req);
        sync(g);
        match answer {
            Ok(a) => {
                for e in a.events() {
                    apply(g, vbdf, e);
                }
                super::interrupts::release_function(g.pci.index, bdf);
                out.push((bdf, Some(a.value as u16)));
            }
            Err(e) => {
                note_error(g, &e);
                out.push((bdf, None));
            }
        }
    }
    out
}

/// After a restart of the control task: drops the mappings this guest made for those of its
/// functions the restart brought back in their reset state (quarantined, or not restorable;
/// every other function is rebuilt as it was and keeps its mappings), and stops the guest if its
/// functions were quarantined and its configuration says `on_control_crash = "stop"`. Cheap when
/// nothing changed; called after every request and by the scheduler before each slice.
pub fn sync(g: &mut Guest) {
    let epoch = control::epoch();
    if g.pci.epoch == epoch {
        return;
    }
    let reset = control::functions_reset_since(g.pci.index, g.pci.epoch);
    g.pci.epoch = epoch;
    if g.spec().on_control_crash == OnControlCrash::Stop
        && g.state == super::State::Runnable
        && control::quarantined(g.pci.index)
    {
        g.stop(String::from(
            "a request of its crashed the control task (on_control_crash = \"stop\")",
        ));
    }
    if reset.is_empty() {
        return;
    }
    let maps: Vec<(Bdf, u8)> = g
        .pci
        .mem_maps
        .iter()
        .map(|m| (m.vbdf, m.index))
        .chain(g.pci.io_maps.iter().map(|m| (m.vbdf, m.index)))
        .filter(|(vbdf, _)| reset.contains(vbdf))
        .collect();
    for (vbdf, index) in &maps {
        unmap_bar(g, *vbdf, *index);
    }
    if !maps.is_empty() {
        warn!(
            "guest \"{}\": the control task's restart reset its functions: {} BAR mapping(s) removed",
            g.name,
            maps.len()
        );
    }
}
