//! The `control` self-test: a guest's view of its assigned functions, driven through the entry
//! points a running vCPU's exits reach (`guest_driver`: configuration-port I/O exits, ECAM and
//! MSI-X table stores as EPT violations, served by the control task, events applied by the exit
//! path), then bad requests to the task's message interface and deliberate faults of the task,
//! each of which must be reported, followed by a restart and a correct answer to the next read.
//! Runs on QEMU, where no vCPU runs (TCG has no VMX) but guests' memory, EPT and functions are
//! built all the same.
//!
//! Expected values come from enumeration (done by the kernel before the hand-over): identity,
//! BAR sizes and physical capability offsets.

use super::guest_driver::{GuestView, err, msix_route};
use crate::control::{self, ControlError};
use crate::guest::Guest;
use crate::guest::devices::data_port_target;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_control_abi::{FaultKind, HYPERVISOR, Op, Request, Status};
use conduit_hw::memory::Memory;
use conduit_irq::{GuestId, Owner};
use conduit_pci::{BarKind, Bdf, cap_id, ext_cap_id};
use log::info;

pub(super) const GUEST: u16 = 0;

pub(super) fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The guest's vector the MSI-X tests program.
const GUEST_VECTOR: u8 = 0x41;
/// Where step 6 places the BAR.
const BAR_GPA: u64 = 0xc000_0000;

pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let g = guests
        .iter_mut()
        .find(|g| g.pci.index == GUEST)
        .ok_or("the first guest was not placed")?;
    let mut view = GuestView::new(g, mem)?;
    let mut steps = 0;
    // Steps 1-5 for every function of the first guest (00:01.0, 00:02.0, ...).
    let mut first = None;
    for dev in 1..32u8 {
        let Some(vbdf) = Bdf::new(0, dev, 0) else {
            break;
        };
        let Some(pbdf) = control::assignment(GUEST, vbdf) else {
            break;
        };
        let phys = pci
            .function(pbdf)
            .ok_or("an assigned function was not enumerated")?
            .clone();
        let (want_id, msix) = function_view(&mut view, vbdf, &phys)?;
        steps += 5;
        if first.is_none() {
            first = Some((vbdf, phys, want_id, msix));
        }
    }
    let (vbdf, phys, want_id, msix) = first
        .ok_or("the first guest has no function at 00:01.0 (assign one in the configuration)")?;

    // [6] BAR programming and decode: the exit path maps the BAR in the guest's EPT and
    // unmaps it again.
    if let Some(bar) = phys.bars.iter().find(|b| b.kind != BarKind::Io) {
        let off = 0x10 + 4 * u16::from(bar.index);
        view.write(vbdf, off, 4, BAR_GPA as u32)?;
        view.write(vbdf, 0x04, 2, 0x0002)?;
        let mapped = ept_phys(&view, BAR_GPA);
        check(mapped == Some(bar.address), || {
            format!("enabling memory decode: GPA {BAR_GPA:#x} maps to {mapped:x?}")
        })?;
        view.write(vbdf, 0x04, 2, 0)?;
        let after = ept_phys(&view, BAR_GPA);
        check(after.is_none(), || {
            format!("disabling decode: GPA {BAR_GPA:#x} still maps to {after:x?}")
        })?;
        view.write(vbdf, off, 4, 0)?;
        steps += 1;
        info!(
            "control-test [6] BAR{} at 0xc0000000 + memory decode: BarMoved to HPA {:#x} ({} KiB); decode off: BarUnmapped",
            bar.index,
            mapped.unwrap_or(0),
            bar.size >> 10
        );
    }

    // [7] The MSI-X table (the trapped page): the guest's stores become an entry change the
    // exit path routes.
    if let Some((cap, _)) = msix {
        msix_table(&mut view, mem, vbdf, &phys, cap)?;
        steps += 1;
        info!(
            "control-test [7] MSI-X table entry 0 written (address 0xfee00000, data 0x4041, unmasked): MsixEntryChanged event, data reads back 0x4041; garbage: misaligned and 2-byte writes refused, a write beyond the table ignored (reads 0), 0xffffffff in Vector Control reads back 0x1"
        );
    }

    // [8] Bad requests get errors or all ones, never another function.
    let other = Bdf::from_routing_id(0x28); // 00:05.0: not the guest's
    let absent = view.read(other, 0, 4)?;
    check(absent == u32::MAX, || {
        format!("an unowned function reads {absent:#x}")
    })?;
    let cases: [(Request, Status); 4] = [
        (Request::read(GUEST, vbdf, 0x1000, 4), Status::BadAccess),
        (Request::read(GUEST, vbdf, 0x10, 3), Status::BadAccess),
        (Request::read(GUEST, vbdf, 0x11, 4), Status::BadAccess),
        (Request::read(97, vbdf, 0, 4), Status::NoSuchGuest),
    ];
    for (req, want) in cases {
        let got = control::call(&req);
        check(
            got.as_ref().err() == Some(&ControlError::Refused(want)),
            || format!("{req:?} gave {got:?}"),
        )?;
    }
    let disabled = data_port_target(0x0000_0800, 0xcfc);
    let read = view.read_with_address(0x0000_0800, 0xcfc)?;
    check(disabled.is_none() && read == u32::MAX, || {
        format!("CF8 without Enable selected a function (the data port read {read:#x})")
    })?;
    steps += 1;
    info!(
        "control-test [8] bad requests: unowned 00:05.0 reads 0xffffffff; offset 0x1000, size 3, misaligned dword: refused (invalid access); guest 97: refused (no such guest); CONFIG_ADDRESS without Enable: no request"
    );

    // [9] Deliberate faults: each reported, the task restarted, the next read correct.
    let (_, restarts_before) = control::stats();
    let mut n = 0;
    for kind in FaultKind::ALL {
        if kind == FaultKind::Loop && !control::has_watchdog() {
            info!(
                "control-test [9] {}: skipped (no watchdog on this CPU)",
                kind.name()
            );
            continue;
        }
        let req = Request {
            offset: control::kernel_probe_address(),
            value: kind as u64,
            ..Request::new(Op::TestFault, HYPERVISOR, vbdf)
        };
        let got = control::call(&req);
        check(got.as_ref().err() == Some(&ControlError::Crashed), || {
            format!("{}: {got:?}", kind.name())
        })?;
        let id = view.read(vbdf, 0x00, 4)?;
        check(id == want_id, || {
            format!("after {}: ID {id:#x}", kind.name())
        })?;
        n += 1;
        info!(
            "control-test [9.{n}] {}: the call failed, the task was restarted, the next read of {vbdf} returns {:04x}:{:04x}",
            kind.name(),
            id as u16,
            id >> 16
        );
    }
    let (_, restarts_after) = control::stats();
    check(restarts_after - restarts_before == n, || {
        format!(
            "{} restarts for {n} faults",
            restarts_after - restarts_before
        )
    })?;
    steps += 1;

    // [10] Hammering: many reads in a row, every answer right.
    let start = conduit_hw::rdtsc();
    const READS: u32 = 2000;
    for _ in 0..READS {
        let id = view.read(vbdf, 0x00, 4)?;
        check(id == want_id, || format!("hammer read {id:#x}"))?;
    }
    let per = (conduit_hw::rdtsc() - start) / u64::from(READS);
    steps += 1;
    info!(
        "control-test [10] {READS} reads in a row, all correct ({per} TSC ticks per request on this machine)"
    );
    if interrupt_route(&mut view, mem)? {
        steps += 1;
    }
    if super::control_msi::run(&mut view, mem)? {
        steps += 1;
    }
    if super::control_blame::run(mem, guests)? {
        steps += 1;
    }
    Ok(steps)
}

/// The GPA's host-physical address in the guest's EPT, if mapped.
fn ept_phys(view: &GuestView, gpa: u64) -> Option<u64> {
    view.guest()
        .ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys)
}

/// Step 7 on `vbdf` (physically `phys`, MSI-X capability at `cap`): with its BARs placed and
/// memory decode on, the guest's stores to entry 0 of its table reach the control task's
/// virtual table and the entry change is routed for the guest; its loads read the entry back.
/// Misaligned and 2-byte stores change nothing; a store to Vector Control keeps only the mask
/// bit. Offsets beyond the table are out of a guest's reach (the trapped page ends): the
/// message interface itself is asked.
fn msix_table(
    view: &mut GuestView,
    mem: &Memory,
    vbdf: Bdf,
    phys: &crate::pci::Function,
    cap: u16,
) -> Result<(), String> {
    let placed = view.place_bars(vbdf, phys.bars.iter().copied())?;
    view.write(vbdf, 0x04, 2, 0x0002)?;
    let table = view.msix_table(vbdf, cap, &placed)?;
    view.mmio_write(table, 4, 0xfee0_0000)?;
    view.mmio_write(table + 8, 4, 0x4041)?;
    view.mmio_write(table + 12, 4, 0)?;
    let route = msix_route(mem, phys.bdf, 0, Owner::Guest(GuestId(GUEST)));
    check(
        route.as_ref().is_ok_and(|r| r.guest_vector == GUEST_VECTOR),
        || format!("MSI-X entry write (address 0xfee00000, data 0x4041, unmasked): {route:?}"),
    )?;
    let data = view.mmio_read(table + 8, 4)?;
    check(data == 0x4041, || {
        format!("MSI-X entry 0 data reads {data:#x}")
    })?;
    // Garbage: misaligned and 2-byte stores are refused: the entry keeps its address.
    view.mmio_write(table + 2, 4, u64::from(u32::MAX))?;
    view.mmio_write(table, 2, 0xffff)?;
    let address = view.mmio_read(table, 4)?;
    check(address == 0xfee0_0000, || {
        format!("after misaligned and 2-byte stores the entry's address reads {address:#x}")
    })?;
    let w = Request {
        offset: 0x1_0000,
        size: 4,
        value: u64::MAX,
        ..Request::new(Op::MsixWrite, GUEST, vbdf)
    };
    let beyond = control::call(&w).map_err(err)?;
    check(beyond.events().count() == 0, || {
        String::from("a write beyond the table changed an entry")
    })?;
    let r = Request {
        offset: 0x1_0000,
        size: 4,
        ..Request::new(Op::MsixRead, GUEST, vbdf)
    };
    let zero = control::call(&r).map_err(err)?.value;
    view.mmio_write(table + 12, 4, u64::from(u32::MAX))?;
    let ctl = view.mmio_read(table + 12, 4)?;
    let masked = msix_route(mem, phys.bdf, 0, Owner::Guest(GuestId(GUEST)));
    check(zero == 0 && ctl == 1 && masked.is_err(), || {
        format!("beyond reads {zero:#x}, vector control {ctl:#x}, route after masking {masked:?}")
    })?;
    view.write(vbdf, 0x04, 2, 0)?;
    view.clear_bars(vbdf, &placed)
}

/// Step 11: the guest programs MSI-X entry 0 of the igb PF (its 00:02.0) through the trapped
/// table; the exit path turns the entry change into an IRTE owned by the guest
/// (`guest::interrupts`); the device raises it (EICS) and the delivery is the guest's, its own
/// vector pending. The guest then stores a message with the NMI delivery mode: refused, the
/// physical entry masked.
fn interrupt_route(view: &mut GuestView, mem: &'static Memory) -> Result<bool, String> {
    use crate::irq::dispatch;
    let vbdf = Bdf::from_routing_id(0x10); // 00:02.0
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let Some(f) = control::assignment(GUEST, vbdf).and_then(|b| pci.function(b)) else {
        return Ok(false);
    };
    if !crate::igb::is_pf(f) {
        return Ok(false);
    }
    let cap = f
        .caps
        .iter()
        .find(|c| c.id == cap_id::MSIX)
        .ok_or("the igb PF has no MSI-X capability")?
        .offset;
    let owner = Owner::Guest(GuestId(GUEST));
    // The guest's driver: BARs placed, memory decode and bus mastering, MSI-X on, entry 0
    // programmed.
    let placed = view.place_bars(vbdf, f.bars.iter().copied())?;
    view.enable_msix(vbdf, cap)?;
    let table = view.msix_table(vbdf, cap, &placed)?;
    view.program_msix_entry(table, 0, 0xfee0_0000, u32::from(GUEST_VECTOR))?;
    let route = msix_route(mem, f.bdf, 0, owner)
        .map_err(|e| format!("the unmasked entry was not routed: {e}"))?;
    let nic = crate::igb::Nic::open(mem, f).map_err(|e| format!("{e}"))?;
    nic.enable(0);
    let guest = GuestId(GUEST);
    let before = dispatch::guest_delivered(guest);
    nic.raise(0);
    let arrived = super::intremap::wait_with_interrupts(1 << 30, || {
        dispatch::guest_delivered(guest) > before
    });
    let pending = dispatch::take_pending(guest);
    nic.quiesce();
    // NMI delivery mode (data bits 10:8 = 100b): refused, the physical entry masked.
    view.mmio_write(table + 8, 4, u64::from(0x0400 | u32::from(GUEST_VECTOR)))?;
    let nmi = msix_route(mem, f.bdf, 0, owner);
    view.disable_msix(vbdf, cap)?;
    view.clear_bars(vbdf, &placed)?;
    crate::guest::interrupts::release_function(GUEST, conduit_pci::PciAddress::on_segment0(f.bdf));
    check(
        arrived && pending == Some(GUEST_VECTOR) && nmi.is_err(),
        || format!("delivered {arrived}, pending {pending:?}, NMI message routed {nmi:?}"),
    )?;
    info!(
        "control-test [11] {vbdf} ({}) MSI-X entry 0 written by the guest (vector {GUEST_VECTOR:#x}): IRTE {} -> host vector {:#x}; the device's interrupt was delivered to guest 0 with its vector {GUEST_VECTOR:#x} pending; an NMI-mode message is refused",
        f.bdf, route.index, route.vector
    );
    Ok(true)
}

/// Steps 1-5 for one function: identity, BAR sizing, capability list, extended capabilities,
/// read-only fields. Returns the expected Vendor/Device dword and the MSI-X capability's offset
/// and table size, as the guest sees them.
fn function_view(
    view: &mut GuestView,
    vbdf: Bdf,
    phys: &crate::pci::Function,
) -> Result<(u32, Option<(u16, u32)>), String> {
    let pbdf = phys.bdf;
    let vf = phys
        .vf
        .map_or(String::new(), |v| format!(", VF {} of {}", v.index, v.pf));
    // [1] Identity passes through.
    let id = view.read(vbdf, 0x00, 4)?;
    let class = view.read(vbdf, 0x08, 4)?;
    let h = phys.header;
    let want_id = u32::from(h.vendor_id) | (u32::from(h.device_id) << 16);
    check(id == want_id, || {
        format!("ID {id:#010x}, physical {want_id:#010x}")
    })?;
    let (rev, base, sub, prog) = (
        class as u8,
        (class >> 24) as u8,
        (class >> 16) as u8,
        (class >> 8) as u8,
    );
    check(
        (rev, base, sub, prog) == (h.revision, h.class.base, h.class.sub, h.class.prog_if),
        || format!("class/revision {class:#010x} differ from the device's"),
    )?;
    info!(
        "control-test [1] {vbdf} (physical {pbdf}{vf}): vendor {:04x} device {:04x} revision {rev:#04x} class {base:02x}:{sub:02x}:{prog:02x}, as on the device",
        id as u16,
        id >> 16
    );

    // [2] BAR sizing answered from the physical sizes.
    let mut sized = Vec::new();
    for bar in phys.bars.iter() {
        let off = 0x10 + 4 * u16::from(bar.index);
        view.write(vbdf, off, 4, u32::MAX)?;
        let low = view.read(vbdf, off, 4)?;
        let high = if bar.kind == BarKind::Memory64 {
            view.write(vbdf, off + 4, 4, u32::MAX)?;
            view.read(vbdf, off + 4, 4)?
        } else {
            0xffff_ffff
        };
        let mask = if bar.kind == BarKind::Io {
            !0x3u32
        } else {
            !0xfu32
        };
        // An I/O BAR that decodes 16 bits reads 0 in bits 31:16 (PCI Local Bus Spec 3.0
        // §6.2.5.1): software sizes it over those 16 bits.
        let bits = if bar.kind == BarKind::Io && low & 0xffff_0000 == 0 {
            low | 0xffff_0000
        } else {
            low
        };
        let size = if bar.kind == BarKind::Memory64 {
            (!((u64::from(high) << 32) | u64::from(bits & mask))).wrapping_add(1)
        } else {
            u64::from(!(bits & mask)).wrapping_add(1) & 0xffff_ffff
        };
        check(size == bar.size, || {
            format!(
                "BAR{} sizes to {size:#x}, physical {:#x}",
                bar.index, bar.size
            )
        })?;
        view.write(vbdf, off, 4, 0)?;
        if bar.kind == BarKind::Memory64 {
            view.write(vbdf, off + 4, 4, 0)?;
        }
        sized.push(format!(
            "BAR{} reads {low:#010x}{} = {}",
            bar.index,
            if bar.kind == BarKind::Memory64 {
                format!(":{high:#010x}")
            } else {
                String::new()
            },
            crate::guest::devices::size_text(size)
        ));
    }
    info!(
        "control-test [2] {vbdf} BAR sizing (all ones written, read back): {}; the physical sizes",
        sized.join(", ")
    );

    // [3] The capability list: MSI-X visible with the device's table size; only allowed IDs.
    let mut caps = Vec::new();
    let mut at = view.read(vbdf, 0x34, 1)? as u16 & 0xfc;
    let mut msix_size = None;
    while at != 0 && caps.len() < 48 {
        let hdr = view.read(vbdf, at, 2)?;
        let id = hdr as u8;
        caps.push(format!("{id:#04x}@{at:#x}"));
        check(
            matches!(id, cap_id::PM | cap_id::MSI | cap_id::MSIX | cap_id::PCIE),
            || format!("capability {id:#x} at {at:#x} should be hidden"),
        )?;
        if id == cap_id::MSIX {
            let ctl = view.read(vbdf, at + 2, 2)?;
            msix_size = Some((at, (ctl & 0x7ff) + 1));
        }
        at = (hdr >> 8) as u16 & 0xfc;
    }
    let phys_msix = phys.caps.iter().any(|c| c.id == cap_id::MSIX);
    check(msix_size.is_some() == phys_msix, || {
        String::from("MSI-X visibility differs from the device")
    })?;
    info!(
        "control-test [3] {vbdf} capabilities: {}; MSI-X {}",
        caps.join(" "),
        msix_size.map_or(String::from("absent"), |(_, n)| format!(
            "visible, table size {n}"
        ))
    );

    // [4] Extended capabilities (SR-IOV, ARI, AER, ...) hidden.
    let ext = view.read(vbdf, 0x100, 4)?;
    check(ext == 0, || {
        format!("extended capability header reads {ext:#x}")
    })?;
    let mut hidden = Vec::new();
    for c in &phys.ext_caps {
        let v = view.read(vbdf, c.offset, 4)?;
        check(v == 0, || {
            format!(
                "extended capability {:#x} at {:#x} readable",
                c.id, c.offset
            )
        })?;
        let name = match c.id {
            ext_cap_id::SRIOV => "SR-IOV",
            ext_cap_id::ARI => "ARI",
            ext_cap_id::AER => "AER",
            _ => "other",
        };
        hidden.push(format!("{name}@{:#x}", c.offset));
    }
    info!(
        "control-test [4] {vbdf} extended capabilities: header at 0x100 reads {ext:#010x}; hidden: {}",
        if hidden.is_empty() {
            String::from("none on the device")
        } else {
            hidden.join(" ")
        }
    );

    // [5] Writes to read-only fields change nothing.
    let ro: [(u16, u8); 6] = [
        (0x00, 4),
        (0x08, 4),
        (0x2c, 4),
        (0x34, 1),
        (0x0e, 1),
        (0x3d, 1),
    ];
    for (off, size) in ro {
        let before = view.read(vbdf, off, size)?;
        view.write(vbdf, off, size, 0xa5a5_a5a5)?;
        let after = view.read(vbdf, off, size)?;
        check(before == after, || {
            format!("read-only {off:#x} changed from {before:#x} to {after:#x}")
        })?;
    }
    info!(
        "control-test [5] {vbdf} writes of 0xa5a5a5a5 to IDs, class, subsystem, capability pointer, header type and interrupt pin: unchanged"
    );

    Ok((want_id, msix_size))
}
