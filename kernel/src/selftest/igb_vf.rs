//! `[test] scenario = "igb-vf"`: an igb VF's interrupts go to the guest that owns the VF, and
//! only there; the hypervisor runs the guests' drivers on their behalf (QEMU has no VMX, so no
//! vCPU can), through the entry points a running vCPU's exits reach (`guest_driver`:
//! configuration-port I/O exits, MSI-X table stores as EPT violations).
//!
//! Guest A is the first guest given an igb VF, guest B the next guest given a VF of the same PF.
//! The PF's bring-up at boot (`crate::igb::init`) set GPIE.Multiple_MSIX, without which no VF
//! interrupt leaves the device. The script:
//! 1. Guest A's driver, through its virtual configuration space and its virtual MSI-X table (the
//!    control task), places the VF's BARs, turns on decode, bus mastering and MSI-X Enable and
//!    programs entry 0 (stores to the trapped table page) with
//!    its vector [`VECTOR_A`]: the core makes that an IRTE owned by guest A that only the VF may
//!    use (source-id verified) and puts its handle in the VF's physical entry in remappable
//!    format (VT-d spec §5.1.4, §9.10).
//! 2. Guest B's driver does the same on its VF with [`VECTOR_B`].
//! 3. Guest A's driver enables its cause 0 (the VF's EIMS) and raises it [`RAISES`] times through
//!    the VF's EICS, clearing EICR (write 1) before each: guest A's counter grows by exactly
//!    that, its vector pending; guest B's does not move; nothing faults.
//! 4. The VF's physical entry 0 is rewritten with guest B's handle (what a guest able to write
//!    its VF's table directly, or a device forging its message, would do): the raise reaches
//!    nobody, and the remapping unit records an interrupt source-id fault (reason 0x26) from the
//!    VF at guest B's index.
//! 5. With the entry restored the next interrupt is guest A's again; guest B's own VF still
//!    reaches guest B (its IRTE was live: only the source-id check stopped the forged message).
//!
//! The drivers then turn MSI-X off and the entries are released; the per-guest counters
//! (`guest::report`) must read guest A: [`RAISES`] + 1 interrupts and one interrupt-remapping
//! fault, guest B: one interrupt.

use super::guest_driver::{GuestView, msix_route, virtual_bdf};
use super::intremap::{ONE_INTERRUPT, wait_ticks, wait_with_interrupts};
use crate::guest::Guest;
use crate::guest::boot::{self, Placed};
use crate::guest::interrupts::Routed;
use crate::igb::{self, Nic};
use crate::irq::{self, dispatch};
use crate::pci::{self, Function, msi};
use crate::{control, iommu};
use alloc::format;
use alloc::string::String;
use conduit_hw::memory::Memory;
use conduit_hw::vtd::fault::Fault;
use conduit_irq::{GuestId, Owner, RemappableMsi, SourceQualifier, SourceValidation};
use conduit_pci::{Bdf, cap_id, config::command};
use log::info;

/// Interrupts guest A's VF raises in step 3.
pub const RAISES: u64 = 16;
/// The vectors the guests' drivers program.
pub const VECTOR_A: u8 = 0x51;
pub const VECTOR_B: u8 = 0x52;
/// The VF's MSI-X vector 0 is its EICR cause 0.
const CAUSE: u32 = 0;
/// A compatibility-format MSI address to the local APIC 0 (Intel SDM Vol. 3A §11.11.1).
const MSI_ADDRESS: u64 = 0xfee0_0000;
/// Fault reason: interrupt request blocked by the IRTE's source-id check (VT-d spec, Appendix A).
const SID_FAILED: u8 = 0x26;
/// MSI-X Enable in Message Control (PCIe Base Spec r6.0 §7.7.2.2).
const MSIX_ENABLE: u32 = 1 << 15;

/// One guest with its VF, as its driver sees it.
pub(super) struct Side<'a> {
    pub guest: Placed,
    pub view: GuestView<'a>,
    pub vbdf: Bdf,
    pub vf: &'static Function,
    pub cap: u16,
}

impl Side<'_> {
    pub fn id(&self) -> GuestId {
        GuestId(self.guest.index)
    }

    pub fn delivered(&self) -> u64 {
        dispatch::guest_delivered(self.id())
    }
}

fn side<'a>(
    g: Placed,
    guest: &'a mut Guest,
    vf: &'static Function,
    mem: &Memory,
) -> Result<Side<'a>, String> {
    let vbdf = virtual_bdf(g.index, vf.bdf)
        .ok_or_else(|| format!("{} is not in guest \"{}\"'s topology", vf.bdf, g.name))?;
    let cap = vf
        .caps
        .iter()
        .find(|c| c.id == cap_id::MSIX)
        .ok_or_else(|| format!("{} has no MSI-X capability", vf.bdf))?
        .offset;
    Ok(Side {
        view: GuestView::new(guest, mem)?,
        guest: g,
        vbdf,
        vf,
        cap,
    })
}

/// The guests given a VF of one igb PF: guest A is the first given an igb VF, guest B the next
/// given a VF of the same PF (configuration order); with their VFs and the PF.
pub(super) fn pair() -> Result<(Placed, &'static Function, Placed, &'static Function, Bdf), String>
{
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let with_vf = |g: &Placed| {
        g.devices
            .iter()
            .filter_map(|b| pci.function_at(*b))
            .find(|f| igb::is_vf(f))
    };
    let placed = boot::placed();
    let (a, vf_a) = placed
        .iter()
        .find_map(|g| with_vf(g).map(|f| (g.clone(), f)))
        .ok_or("no guest was given an igb VF")?;
    let pf = vf_a.vf.ok_or("guest A's VF has no PF")?.pf;
    let (b, vf_b) = placed
        .iter()
        .filter(|g| g.index != a.index)
        .find_map(|g| {
            with_vf(g)
                .filter(|f| f.vf.is_some_and(|v| v.pf == pf))
                .map(|f| (g.clone(), f))
        })
        .ok_or_else(|| format!("no second guest was given a VF of {pf}"))?;
    Ok((a, vf_a, b, vf_b, pf))
}

/// Guests A and B with their VFs, and the PF.
pub(super) fn find<'a>(
    guests: &'a mut [Guest],
    mem: &Memory,
) -> Result<(Side<'a>, Side<'a>, Bdf), String> {
    let (a, vf_a, b, vf_b, pf) = pair()?;
    let (mut guest_a, mut guest_b) = (None, None);
    for g in guests.iter_mut() {
        if g.pci.index == a.index {
            guest_a = Some(g);
        } else if g.pci.index == b.index {
            guest_b = Some(g);
        }
    }
    let not_placed = |p: &Placed| format!("guest \"{}\" was not placed", p.name);
    let guest_a = guest_a.ok_or_else(|| not_placed(&a))?;
    let guest_b = guest_b.ok_or_else(|| not_placed(&b))?;
    Ok((
        side(a, guest_a, vf_a, mem)?,
        side(b, guest_b, vf_b, mem)?,
        pf,
    ))
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    iommu::status().map_err(|why| format!("DMA remapping is not enabled: {why}"))?;
    iommu::interrupt_remapping()
        .map_err(|why| format!("interrupt remapping is not enabled: {why}"))?;
    let (mut a, mut b, pf) = find(guests, mem)?;
    let gpie = igb::pf_gpie(pf).ok_or_else(|| {
        format!("{pf} was not set up for VF interrupts at boot (see the igb lines above)")
    })?;
    if gpie & igb::regs::GPIE_MSIX_MODE == 0 {
        return Err(format!(
            "{pf}: GPIE reads {gpie:#010x}: Multiple_MSIX is clear"
        ));
    }
    info!(
        "selftest: igb-vf: guest A = \"{}\" (VF {} at its {}), guest B = \"{}\" (VF {} at its {}); \
         PF {pf} GPIE {gpie:#010x} (MSIX_MODE set by the PF's bring-up); no vCPU runs: the \
         hypervisor plays each guest's driver through its virtual configuration space and \
         MSI-X table",
        a.guest.name, a.vf.bdf, a.vbdf, b.guest.name, b.vf.bdf, b.vbdf
    );
    let result = script(&mut a, &mut b, mem);
    for s in [&mut a, &mut b] {
        if let Ok(nic) = Nic::open(mem, s.vf) {
            nic.quiesce();
        }
        if let Err(e) = s.view.disable_msix(s.vbdf, s.cap) {
            log::warn!(
                "selftest: igb-vf: guest \"{}\"'s driver could not turn MSI-X off: {e}",
                s.guest.name
            );
        }
        crate::guest::interrupts::release_function(
            s.guest.index,
            conduit_pci::PciAddress::on_segment0(s.vf.bdf),
        );
    }
    result?;
    counters(&a, &b)?;
    Ok(6)
}

fn script(a: &mut Side, b: &mut Side, mem: &'static Memory) -> Result<(), String> {
    let route_a = program(a, VECTOR_A, mem, "igb-vf", 1)?;
    let route_b = program(b, VECTOR_B, mem, "igb-vf", 2)?;
    let nic_a = Nic::open(mem, a.vf).map_err(|e| format!("{e}"))?;
    nic_a.enable(CAUSE);
    raises(a, b, &nic_a, route_a)?;
    forged(a, b, &nic_a, route_a, route_b, mem)?;
    let nic_b = Nic::open(mem, b.vf).map_err(|e| format!("{e}"))?;
    nic_b.enable(CAUSE);
    after_forgery(a, b, &nic_a, &nic_b)
}

/// Steps 1 and 2: the guest's driver programs entry 0; the route must be the guest's own
/// (logged as step `step` of `scenario`).
pub(super) fn program(
    s: &mut Side,
    vector: u8,
    mem: &Memory,
    scenario: &str,
    step: u8,
) -> Result<Routed, String> {
    let name = s.guest.name.clone();
    let bdf = s.vf.bdf;
    let owner = Owner::Guest(s.id());
    let placed = s.view.place_bars(s.vbdf, s.vf.bars.iter().copied())?;
    s.view.enable_msix(s.vbdf, s.cap)?;
    let table = s.view.msix_table(s.vbdf, s.cap, &placed)?;
    s.view
        .program_msix_entry(table, 0, MSI_ADDRESS, u32::from(vector))?;
    let r = msix_route(mem, bdf, 0, owner)
        .map_err(|e| format!("guest \"{name}\"'s MSI-X entry 0 of {bdf} was not routed: {e}"))?;
    let held = irq::irte_owner(r.index);
    let binding = dispatch::binding(r.vector);
    let irte = iommu::read_irte(r.index)
        .ok_or_else(|| format!("IRTE {} cannot be read", r.index))?
        .map_err(|e| format!("IRTE {}: {e}", r.index))?;
    let verifies = irte.source_validation()
        == SourceValidation::RequesterId {
            sid: bdf.routing_id(),
            sq: SourceQualifier::All,
        };
    if held != Some(owner)
        || binding.is_none_or(|b| {
            b.owner != owner || b.index != Some(r.index) || b.virtual_vector != Some(vector)
        })
        || r.guest_vector != vector
        || !irte.is_present()
        || irte.vector() != r.vector
        || !verifies
    {
        return Err(format!(
            "guest \"{name}\"'s entry: IRTE {} held by {held:?}, vector {:#x} bound {binding:?}, \
             IRTE {irte:?}",
            r.index, r.vector
        ));
    }
    let handle = RemappableMsi::single(r.index).encode();
    let (address, data, masked) =
        msi::read_msix_entry(mem, conduit_pci::PciAddress::on_segment0(bdf), 0)
            .map_err(|e| format!("{e}"))?;
    let ctl = control::physical_read(conduit_pci::PciAddress::on_segment0(bdf), s.cap + 2, 2)
        .unwrap_or(0);
    let cmd =
        control::physical_read(conduit_pci::PciAddress::on_segment0(bdf), 0x04, 2).unwrap_or(0);
    if address != handle.address || data != handle.data || masked || ctl & MSIX_ENABLE == 0 {
        return Err(format!(
            "{bdf}'s physical entry 0: address {address:#x} data {data:#x} masked {masked}, \
             MSI-X control {ctl:#x} (handle {} wants address {:#x})",
            r.index, handle.address
        ));
    }
    if cmd & u32::from(command::BUS_MASTER) == 0 {
        return Err(format!("{bdf}: bus mastering is off (Command {cmd:#06x})"));
    }
    info!(
        "selftest: {scenario} [{step}] guest \"{name}\" programmed MSI-X entry 0 of its {} (VF {bdf}) \
         with vector {vector:#x} through its virtual table: IRTE {} owned by guest \"{name}\" \
         (source-id {bdf} verified, SVT=01 SQ=00) -> host vector {:#x}; the VF's physical entry \
         0: address {address:#010x} data {data:#06x} unmasked, MSI-X enabled, bus master on \
         (Command {cmd:#06x})",
        s.vbdf, r.index, r.vector
    );
    Ok(r)
}

/// Step 3: [`RAISES`] interrupts, all guest A's.
fn raises(a: &Side, b: &Side, nic: &Nic, route: Routed) -> Result<(), String> {
    let eims = nic.interrupts.enabled();
    if eims & (1 << CAUSE) == 0 {
        return Err(format!(
            "{}: EIMS reads {eims:#x}: cause {CAUSE} is not enabled",
            a.vf.bdf
        ));
    }
    let (a0, b0) = (a.delivered(), b.delivered());
    let v0 = dispatch::delivered(route.vector);
    let mut waited = 0;
    for _ in 0..RAISES {
        let before = a.delivered();
        nic.raise(CAUSE);
        if wait_with_interrupts(ONE_INTERRUPT, || a.delivered() > before) {
            waited += 1;
        }
    }
    // Time for anything late or doubled to show.
    wait_ticks(2);
    let (got_a, got_b) = (a.delivered() - a0, b.delivered() - b0);
    let on_vector = dispatch::delivered(route.vector) - v0;
    let pending_a = dispatch::take_pending(a.id());
    let pending_b = dispatch::take_pending(b.id());
    let faults = iommu::service_faults();
    if waited != RAISES
        || got_a != RAISES
        || on_vector != RAISES
        || got_b != 0
        || pending_a != Some(VECTOR_A)
        || pending_b.is_some()
        || !faults.is_empty()
    {
        return Err(format!(
            "{RAISES} raises of {}: guest A counted {got_a} ({waited} awaited, {on_vector} on \
             vector {:#x}, pending {pending_a:?}), guest B {got_b} (pending {pending_b:?}), \
             faults {faults:?}",
            a.vf.bdf, route.vector
        ));
    }
    info!(
        "selftest: igb-vf [3] {} raised {RAISES} times via EICS, guest \"{}\" received {got_a} \
         (vector {VECTOR_A:#x} pending), guest \"{}\" {got_b} (the VF's EIMS {eims:#x}, EICR \
         cleared before each raise; host vector {:#x} counted {on_vector}, no fault)",
        a.vf.bdf, a.guest.name, b.guest.name, route.vector
    );
    Ok(())
}

/// Step 4: guest A's VF aimed at guest B's IRTE: blocked, one decoded fault.
fn forged(
    a: &Side,
    b: &Side,
    nic: &Nic,
    route_a: Routed,
    route_b: Routed,
    mem: &Memory,
) -> Result<(), String> {
    let bdf = a.vf.bdf;
    let describe = |e: msi::MsiError| format!("{e}");
    let irte_b = iommu::read_irte(route_b.index)
        .and_then(Result::ok)
        .ok_or("guest B's IRTE cannot be read")?;
    if irte_b.accepts_requester(bdf.routing_id())
        || !irte_b.accepts_requester(b.vf.bdf.routing_id())
    {
        return Err(format!("guest B's IRTE {irte_b:?} does not verify its VF"));
    }
    let forged = RemappableMsi::single(route_b.index).encode();
    let (a0, b0) = (a.delivered(), b.delivered());
    let totals = dispatch::totals();
    msi::program_msix_entry(
        mem,
        conduit_pci::PciAddress::on_segment0(bdf),
        0,
        forged,
        false,
    )
    .map_err(describe)?;
    nic.raise(CAUSE);
    // Time for a wrong delivery and for the fault event interrupt.
    wait_ticks(2);
    let (a1, b1) = (a.delivered(), b.delivered());
    let totals_after = dispatch::totals();
    let faults = iommu::service_faults();
    let restored = RemappableMsi::single(route_a.index).encode();
    msi::program_msix_entry(
        mem,
        conduit_pci::PciAddress::on_segment0(bdf),
        0,
        restored,
        false,
    )
    .map_err(describe)?;
    if (a1, b1) != (a0, b0) || totals_after != totals {
        return Err(format!(
            "{bdf} aimed at guest B's IRTE {} was delivered: guest A {a0} -> {a1}, guest B {b0} \
             -> {b1}, (delivered, unbound) {totals:?} -> {totals_after:?}",
            route_b.index
        ));
    }
    let blocked = |f: &Fault| {
        f.source == bdf && f.interrupt_index == Some(route_b.index) && f.reason == SID_FAILED
    };
    match faults.as_slice() {
        [f] if blocked(f) => {}
        other => {
            return Err(format!(
                "{bdf} aimed at guest B's IRTE {}: expected one fault {SID_FAILED:#04x} from \
                 {bdf} with that index, found {other:?}",
                route_b.index
            ));
        }
    }
    info!(
        "selftest: igb-vf [4] {bdf}'s physical MSI-X entry 0 rewritten with guest \"{}\"'s handle \
         {} (address {:#010x}; IRTE {} verifies source-id {}): raised once, delivered to nobody \
         (guest \"{}\" {a1}, guest \"{}\" {b1}: unchanged); fault {SID_FAILED:#04x} recorded \
         (source {bdf}, index {}): {}",
        b.guest.name,
        route_b.index,
        forged.address,
        route_b.index,
        b.vf.bdf,
        a.guest.name,
        b.guest.name,
        route_b.index,
        conduit_vtd::reason_text(SID_FAILED)
    );
    Ok(())
}

/// Step 5: the restored entry is guest A's again; guest B's own VF reaches guest B.
fn after_forgery(a: &Side, b: &Side, nic_a: &Nic, nic_b: &Nic) -> Result<(), String> {
    let (a0, b0) = (a.delivered(), b.delivered());
    nic_a.raise(CAUSE);
    let to_a = wait_with_interrupts(ONE_INTERRUPT, || a.delivered() > a0);
    let pending_a = dispatch::take_pending(a.id());
    nic_b.raise(CAUSE);
    let to_b = wait_with_interrupts(ONE_INTERRUPT, || b.delivered() > b0);
    wait_ticks(2);
    let pending_b = dispatch::take_pending(b.id());
    let (a1, b1) = (a.delivered(), b.delivered());
    let faults = iommu::service_faults();
    if !to_a
        || !to_b
        || a1 != a0 + 1
        || b1 != b0 + 1
        || pending_a != Some(VECTOR_A)
        || pending_b != Some(VECTOR_B)
        || !faults.is_empty()
    {
        return Err(format!(
            "after the forgery: guest A {a0} -> {a1} (pending {pending_a:?}), guest B {b0} -> \
             {b1} (pending {pending_b:?}), faults {faults:?}"
        ));
    }
    info!(
        "selftest: igb-vf [5] entry 0 restored: the next interrupt of {} reached guest \"{}\" \
         ({a1}, vector {VECTOR_A:#x} pending); guest \"{}\"'s own VF {} raised once: guest \"{}\" \
         received it ({b1}, vector {VECTOR_B:#x} pending)",
        a.vf.bdf, a.guest.name, b.guest.name, b.vf.bdf, b.guest.name
    );
    Ok(())
}

/// Step 6: the per-guest counters say what the steps did.
fn counters(a: &Side, b: &Side) -> Result<(), String> {
    let all = crate::guest::report::counters();
    let of = |s: &Side| {
        all.iter()
            .find(|c| c.name == s.guest.name)
            .map(|c| (c.interrupts, c.dma_faults, c.interrupt_faults))
    };
    let want_a = (RAISES + 1, 0, 1);
    let want_b = (1, 0, 0);
    if of(a) != Some(want_a) || of(b) != Some(want_b) {
        return Err(format!(
            "per-guest counters (interrupts, DMA faults, interrupt faults): guest A {:?}, want \
             {want_a:?}; guest B {:?}, want {want_b:?}",
            of(a),
            of(b)
        ));
    }
    info!(
        "selftest: igb-vf [6] per-guest counters: guest \"{}\" {} interrupts and 1 \
         interrupt-remapping fault (its VF's forged message), guest \"{}\" 1 interrupt; no DMA \
         faults",
        a.guest.name,
        RAISES + 1,
        b.guest.name
    );
    Ok(())
}
