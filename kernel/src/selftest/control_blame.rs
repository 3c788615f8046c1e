//! Step 13 of the `control` self-test: a request that crashes the control task, sent on behalf
//! of guest B, is blamed on guest B, whose functions are quarantined, while guest A's function
//! keeps everything its driver set up across the task's restart: its virtual configuration
//! space (BARs, Command, MSI-X Enable and table entry, replayed into the new task from the
//! core's journal), its BAR mapping in guest A's EPT (a vCPU's accesses still reach the device
//! without an exit) and its MSI-X route (the device's next interrupt is guest A's).
//!
//! Guest A is the first guest with the igb PF at 00:02.0 (as in step 11); guest B the second
//! guest, with one function at 00:01.0.

use super::control::{GUEST, check};
use super::guest_driver::{GuestView, msix_route};
use super::intremap::wait_with_interrupts;
use crate::control::{self, ControlError};
use crate::guest::Guest;
use crate::irq::dispatch;
use alloc::format;
use alloc::string::String;
use conduit_control_abi::{FaultKind, Op, Request};
use conduit_hw::memory::Memory;
use conduit_irq::{GuestId, Owner};
use conduit_pci::{Bdf, cap_id};
use log::info;

/// Guest B's index.
const GUEST_B: u16 = 1;
/// The vector guest A's driver programs.
const VECTOR_A: u8 = 0x43;
/// TSC ticks to wait for one interrupt.
const ONE_INTERRUPT: u64 = 1 << 30;

/// The GPA's host-physical address in the guest's EPT, if mapped.
fn ept_phys(g: &Guest, gpa: u64) -> Option<u64> {
    g.ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys)
}

/// Runs step 13; `Ok(false)` when the configuration has no guest B or guest A has no igb PF.
pub(super) fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<bool, String> {
    let pci = crate::pci::get().ok_or("no PCI enumeration")?;
    let vbdf_a = Bdf::from_routing_id(0x10); // 00:02.0
    let vbdf_b = Bdf::from_routing_id(0x08); // 00:01.0
    let Some(fa) = control::assignment(GUEST, vbdf_a).and_then(|b| pci.function(b)) else {
        return Ok(false);
    };
    let Some(fb) = control::assignment(GUEST_B, vbdf_b).and_then(|b| pci.function(b)) else {
        return Ok(false);
    };
    if !crate::igb::is_pf(fa) {
        return Ok(false);
    }
    let cap = fa
        .caps
        .iter()
        .find(|c| c.id == cap_id::MSIX)
        .ok_or("the igb PF has no MSI-X capability")?
        .offset;
    let (left, right) = guests.split_at_mut(1);
    let (ga, gb) = (&mut left[0], &mut right[0]);
    check(ga.pci.index == GUEST && gb.pci.index == GUEST_B, || {
        format!("guests in order {} and {}", ga.pci.index, gb.pci.index)
    })?;
    let owner = Owner::Guest(GuestId(GUEST));

    // Guest A's driver: BARs placed, decode and bus mastering, MSI-X on, entry 0 programmed.
    let mut a = GuestView::new(ga, mem)?;
    let placed_a = a.place_bars(vbdf_a, fa.bars.iter().copied())?;
    a.enable_msix(vbdf_a, cap)?;
    let table = a.msix_table(vbdf_a, cap, &placed_a)?;
    a.program_msix_entry(table, 0, 0xfee0_0000, u32::from(VECTOR_A))?;
    let bar0_gpa = placed_a
        .iter()
        .find(|(i, _)| *i == 0)
        .map(|(_, gpa)| *gpa)
        .ok_or("the igb PF's BAR0 was not placed")?;
    let setup = Setup {
        bdf: fa.bdf,
        vbdf: vbdf_a,
        cap,
        placed: &placed_a,
        bar0_gpa,
        owner,
    };
    let before = Snapshot::take(&mut a, mem, &setup)?;

    // Guest B's driver: its function's BARs placed and memory decode on (a mapping to lose).
    let mut b = GuestView::new(gb, mem)?;
    let placed_b = b.place_bars(vbdf_b, fb.bars.iter().copied())?;
    b.write(vbdf_b, 0x04, 2, 0x0002)?;
    let b_gpa = placed_b
        .first()
        .map(|(_, gpa)| *gpa)
        .ok_or("guest B's BAR")?;
    let b_mapped = ept_phys(b.guest(), b_gpa).is_some();

    // The crash, on guest B's behalf.
    let (_, restarts_before) = control::stats();
    let req = Request {
        offset: control::kernel_probe_address(),
        value: FaultKind::WriteKernel as u64,
        ..Request::new(Op::TestFault, GUEST_B, vbdf_b)
    };
    let got = control::call(&req);
    check(got.as_ref().err() == Some(&ControlError::Blamed), || {
        format!("a crash on guest B's behalf gave {got:?}")
    })?;
    let (_, restarts_after) = control::stats();
    // Guest B: quarantined, its function absent, its BAR mapping dropped at its next sync.
    let id_b = b.read(vbdf_b, 0x00, 4)?;
    crate::guest::devices::sync(b.guest_mut());
    let b_after = ept_phys(b.guest(), b_gpa);
    let again = control::call(&Request::read(GUEST_B, vbdf_b, 0, 4));
    check(
        b_mapped
            && control::quarantined(GUEST_B)
            && id_b == u32::MAX
            && b_after.is_none()
            && again.as_ref().err() == Some(&ControlError::Quarantined)
            && restarts_after == restarts_before + 1,
        || {
            format!(
                "guest B: mapped before {b_mapped}, quarantined {}, reads {id_b:#x}, BAR now {b_after:x?}, a direct request {again:?}, restarts {restarts_before} -> {restarts_after}",
                control::quarantined(GUEST_B)
            )
        },
    )?;

    // Guest A noticed nothing: the same virtual registers, mapping and route; its interrupt
    // arrives.
    let mut a = GuestView::new(&mut left[0], mem)?;
    let after = Snapshot::take(&mut a, mem, &setup)?;
    check(after == before, || {
        format!("guest A before the restart {before:x?}, after {after:x?}")
    })?;
    let nic = crate::igb::Nic::open(mem, fa).map_err(|e| format!("{e}"))?;
    nic.enable(0);
    let guest = GuestId(GUEST);
    let delivered = dispatch::guest_delivered(guest);
    nic.raise(0);
    let arrived = wait_with_interrupts(ONE_INTERRUPT, || {
        dispatch::guest_delivered(guest) > delivered
    });
    let pending = dispatch::take_pending(guest);
    nic.quiesce();
    a.disable_msix(vbdf_a, cap)?;
    a.clear_bars(vbdf_a, &placed_a)?;
    crate::guest::interrupts::release_function(GUEST, conduit_pci::PciAddress::on_segment0(fa.bdf));
    check(arrived && pending == Some(VECTOR_A), || {
        format!("after the restart guest A's interrupt: delivered {arrived}, pending {pending:?}")
    })?;
    info!(
        "control-test [13] a crash on guest B's behalf: guest B blamed and quarantined ({vbdf_b} reads {id_b:#x}, its BAR mapping removed, its requests refused); guest A's {vbdf_a} ({}) kept Command {:#06x}, BAR0 {:#x} -> {:#x} in its EPT, MSI-X control {:#06x}, entry 0 data {:#x} on IRTE {} (host vector {:#x}); its next interrupt arrived with vector {VECTOR_A:#x}",
        fa.bdf,
        after.command,
        bar0_gpa,
        after.bar0_phys,
        after.msix_control,
        after.entry_data,
        after.irte,
        after.host_vector
    );
    Ok(true)
}

/// What guest A's driver set up, read as the guest and the core see it.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    command: u32,
    bar0: u32,
    bar0_phys: u64,
    msix_control: u32,
    entry_data: u64,
    irte: u16,
    host_vector: u8,
}

/// Where guest A's function is and what its driver placed.
struct Setup<'p> {
    bdf: Bdf,
    vbdf: Bdf,
    cap: u16,
    placed: &'p [(u8, u64)],
    bar0_gpa: u64,
    owner: Owner,
}

impl Snapshot {
    fn take(a: &mut GuestView, mem: &Memory, s: &Setup) -> Result<Self, String> {
        let command = a.read(s.vbdf, 0x04, 2)?;
        let bar0 = a.read(s.vbdf, 0x10, 4)? & !0xf;
        let msix_control = a.read(s.vbdf, s.cap + 2, 2)?;
        let table = a.msix_table(s.vbdf, s.cap, s.placed)?;
        let entry_data = a.mmio_read(table + 8, 4)?;
        let bar0_phys =
            ept_phys(a.guest(), s.bar0_gpa).ok_or("BAR0 is not mapped in guest A's EPT")?;
        let route = msix_route(mem, s.bdf, 0, s.owner)?;
        Ok(Self {
            command,
            bar0,
            bar0_phys,
            msix_control,
            entry_data,
            irte: route.index,
            host_vector: route.vector,
        })
    }
}
