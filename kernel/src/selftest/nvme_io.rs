//! `[test] scenario = "nvme-vf-io"`: two NVMe VFs move a mebibyte through the shared namespace,
//! each for its own guest; the hypervisor plays both guests' drivers (QEMU has no VMX, so no vCPU
//! can) through the entry points a running vCPU's exits reach (`guest_driver`).
//!
//! Guest A and guest B are the first two guests given an online VF of the same NVMe PF. At boot
//! the PF attached its namespaces to both VFs' controllers (`crate::nvme::namespaces`). Each
//! guest's driver places its VF's BAR0 through its configuration ports (its EPT maps the BAR to
//! the VF's), runs the admin queue in its own memory ([`ADMIN_GPA`]), finds the namespace
//! (Identify Active Namespace list, Identify Namespace), creates I/O queue pair 1 in its memory
//! with completion interrupts on MSI-X vector 0, then turns MSI-X on and programs entry 0 through
//! its virtual table: the core makes that an IRTE owned by the guest. Every DMA is a VF's own,
//! through its guest's IOMMU domain (device address = guest-physical address). The script:
//! 1. Guest A fills [`BYTES`] of its memory with a pattern and writes it at LBA 0: one command per
//!    MDTS-sized chunk, each described by PRP1 and a PRP list in guest A's memory.
//! 2. Guest B reads the same blocks into its own (zeroed) memory: the checksum equals guest A's.
//!    Each completion raised the VF's MSI-X on its own guest's IRTE: guest A's counter grew by
//!    guest A's commands, guest B's by guest B's, and neither by the other's.
//! 3. Guest A writes one page with PRP1 at guest B's buffer (outside guest A's IOVA window): the
//!    VF's read of it is blocked, a fault recorded with the VF's BDF, the address and the reason;
//!    the blocks written do not hold guest B's data.
//! 4. Guest A writes three pages whose PRP list's last entry is the IOVA at which the PF's admin
//!    queues live in the hypervisor's own domain: blocked the same way.
//!    After 3 and 4 guest B's memory and the hypervisor's pages (root table, PF admin queues)
//!    keep their checksums; the commands' statuses are logged decoded.
//! 5. The per-guest counters: guest A's DMA faults are exactly the two blocked transfers.

mod blocked;

use super::guest_driver::{GuestView, msix_route, virtual_bdf};
use super::intremap::{ONE_INTERRUPT, wait_ticks, wait_with_interrupts};
use super::vtd_edu::checksum;
use crate::guest::Guest;
use crate::guest::boot::{self, Placed};
use crate::iommu;
use crate::irq::dispatch;
use crate::nvme::io::{self, DmaPages, Done, IoMemory, IoQueue, Transfer};
use crate::nvme::regs::{ADMIN_PAGES, AdminMemory, PAGE};
use crate::nvme::{self, Controller, OnlineVf};
use crate::pci::{self, Function};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::{Memory, PhysWindow};
use conduit_irq::{GuestId, Owner};
use conduit_nvme::{Cns, Command, Direction, IdentifyController, IdentifyNamespace, NamespaceList};
use conduit_pci::{Bdf, cap_id};
use log::info;

/// Bytes guest A writes and guest B reads back.
pub const BYTES: u64 = 1 << 20;
/// The guests' data buffers (GPA).
const BUFFER_GPA: u64 = 0x40_0000;
/// Admin queues and data page, then I/O SQ, I/O CQ and the PRP list page (GPA).
const ADMIN_GPA: u64 = 0x80_0000;
const IO_SQ_GPA: u64 = ADMIN_GPA + ADMIN_PAGES * PAGE;
const IO_CQ_GPA: u64 = IO_SQ_GPA + PAGE;
const LIST_GPA: u64 = IO_CQ_GPA + PAGE;
/// A scratch page for reading back what a blocked write left on the namespace.
const SCRATCH_GPA: u64 = LIST_GPA + PAGE;
/// The blocked writes go here (past the mebibyte of step 1).
const BAD_LBA_BYTES: u64 = 2 << 20;
/// The vectors the guests' drivers program.
const VECTOR_A: u8 = 0x53;
const VECTOR_B: u8 = 0x54;
/// A compatibility-format MSI address to the local APIC 0 (Intel SDM Vol. 3A §11.11.1).
const MSI_ADDRESS: u64 = 0xfee0_0000;
/// Fault reason of a DMA read of a page without read permission (VT-d spec, Appendix A; QEMU
/// reports 06h for a read, whatever the paging level).
const NO_READ: u8 = 0x06;

/// One guest with its VF and its driver's state.
struct Side<'a> {
    guest: Placed,
    view: GuestView<'a>,
    vf: OnlineVf,
    function: &'static Function,
    vbdf: Bdf,
    window: PhysWindow,
}

impl Side<'_> {
    fn id(&self) -> GuestId {
        GuestId(self.guest.index)
    }

    fn delivered(&self) -> u64 {
        dispatch::guest_delivered(self.id())
    }

    fn pages(&self, gpa: u64, pages: u64) -> DmaPages {
        DmaPages {
            window: self.window,
            hpa: self.guest.hpa + gpa,
            device: gpa,
            pages,
        }
    }

    fn sum(&self, gpa: u64, len: u64) -> u64 {
        checksum(&self.window, self.guest.hpa + gpa, len)
    }
}

/// The driver's view of its controller after bring-up.
struct Driver {
    c: Controller,
    q: IoQueue,
    nsid: u32,
    ns: IdentifyNamespace,
    limit: u64,
}

fn find<'a>(guests: &'a mut [Guest], mem: &Memory) -> Result<(Side<'a>, Side<'a>), String> {
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let placed = boot::placed();
    let with_vf = |g: &Placed| {
        g.devices
            .iter()
            .find_map(|b| nvme::online_vf(b.bdf).filter(|_| b.segment == 0))
    };
    let (a, (pf, vf_a)) = placed
        .iter()
        .find_map(|g| with_vf(g).map(|v| (g.clone(), v)))
        .ok_or("no guest was given an NVMe VF that is online")?;
    let (b, (_, vf_b)) = placed
        .iter()
        .filter(|g| g.index != a.index)
        .find_map(|g| with_vf(g).filter(|(p, _)| *p == pf).map(|v| (g.clone(), v)))
        .ok_or_else(|| format!("no second guest was given an online VF of {pf}"))?;
    let (mut guest_a, mut guest_b) = (None, None);
    for g in guests.iter_mut() {
        if g.pci.index == a.index {
            guest_a = Some(g);
        } else if g.pci.index == b.index {
            guest_b = Some(g);
        }
    }
    let side = |p: Placed, g: Option<&'a mut Guest>, vf: OnlineVf| -> Result<Side<'a>, String> {
        let g = g.ok_or_else(|| format!("guest \"{}\" was not placed", p.name))?;
        let function = pci.function(vf.bdf).ok_or("the VF was not enumerated")?;
        let vbdf = virtual_bdf(p.index, vf.bdf)
            .ok_or_else(|| format!("{} is not in guest \"{}\"'s topology", vf.bdf, p.name))?;
        if p.size < SCRATCH_GPA + PAGE {
            return Err(format!("guest \"{}\" is too small for the script", p.name));
        }
        Ok(Side {
            view: GuestView::new(g, mem)?,
            guest: p,
            vf,
            function,
            vbdf,
            window: PhysWindow::new(mem, true),
        })
    };
    Ok((side(a, guest_a, vf_a)?, side(b, guest_b, vf_b)?))
}

/// Places BAR0 through the configuration ports, turns decode and bus mastering on; the guest's
/// EPT must map the BAR to the VF's BAR0.
fn map_bar0(s: &mut Side) -> Result<Vec<(u8, u64)>, String> {
    let placed = s.view.place_bars(s.vbdf, s.function.bars.iter().copied())?;
    let gpa = placed
        .iter()
        .find(|(i, _)| *i == 0)
        .map(|(_, g)| *g)
        .ok_or("the VF has no memory BAR0")?;
    s.view.write(s.vbdf, 0x04, 2, 0x0006)?;
    let hpa = s
        .view
        .guest()
        .ept_walk(gpa)
        .ok()
        .and_then(|w| w.translation())
        .map(|t| t.phys);
    if hpa != Some(s.vf.bar0) {
        return Err(format!(
            "guest \"{}\"'s BAR0 at GPA {gpa:#x} maps to {hpa:x?}, not the VF's BAR0 {:#x}",
            s.guest.name, s.vf.bar0
        ));
    }
    Ok(placed)
}

/// The driver's bring-up: controller enabled, namespace found, MSI-X entry 0 programmed with
/// `vector`, then I/O queue pair 1 with completions on MSI-X vector 0 (a controller may bind a
/// completion queue to its vector when the queue is created: QEMU's nvme signals a vector only
/// if MSI-X was enabled by then).
fn bring_up(
    s: &mut Side,
    mem: &'static Memory,
    placed: &[(u8, u64)],
    vector: u8,
) -> Result<Driver, String> {
    let bdf = s.vf.bdf;
    let e = |e: nvme::controller::NvmeError| format!("VF {bdf}: {e}");
    let admin = AdminMemory {
        window: s.window,
        hpa: s.guest.hpa + ADMIN_GPA,
        device: ADMIN_GPA,
    };
    let mut c = Controller::open(mem, bdf, s.vf.bar0, s.vf.bar0_len, admin).map_err(e)?;
    c.enable().map_err(e)?;
    let data = c
        .identify(Cns::Controller, 0, "Identify Controller")
        .map_err(e)?;
    let id = IdentifyController::parse(&data[..]).map_err(|x| format!("{x}"))?;
    let data = c
        .identify_ns(
            Cns::ActiveNamespaces,
            0,
            0,
            "Identify Active Namespace ID list",
        )
        .map_err(e)?;
    let list = NamespaceList::parse(&data[..]).map_err(|x| format!("{x}"))?;
    let nsid = *list.ids().first().ok_or_else(|| {
        format!("VF {bdf} sees no active namespace: the PF did not attach one to it")
    })?;
    let data = c
        .identify_ns(Cns::Namespace, nsid, 0, "Identify Namespace")
        .map_err(e)?;
    let ns = IdentifyNamespace::parse(&data[..]).map_err(|x| format!("{x}"))?;
    if ns.bytes() < BAD_LBA_BYTES + 4 * PAGE {
        return Err(format!(
            "namespace {nsid} has {} bytes: too small",
            ns.bytes()
        ));
    }
    let limit = c.transfer_limit(&id);
    program_msix(s, placed, vector, mem)?;
    let queues = IoMemory {
        sq: s.pages(IO_SQ_GPA, 1),
        cq: s.pages(IO_CQ_GPA, 1),
    };
    let q = c.create_io_queue(1, queues, Some(0)).map_err(e)?;
    info!(
        "selftest: nvme-vf-io: guest \"{}\"'s driver: VF {bdf} (controller {:#x}, MDTS {} = {} \
         KiB per command) sees namespace {nsid}: {} blocks of {} bytes ({} MiB); I/O queue pair \
         1 created at GPA {IO_SQ_GPA:#x} (SQ) and {IO_CQ_GPA:#x} (CQ), completions on MSI-X \
         vector 0",
        s.guest.name,
        id.cntlid,
        id.mdts,
        limit >> 10,
        ns.nsze,
        ns.block_size,
        ns.bytes() >> 20
    );
    Ok(Driver {
        c,
        q,
        nsid,
        ns,
        limit,
    })
}

/// MSI-X on, entry 0 programmed with `vector` through the virtual table: the route must be an
/// IRTE owned by the guest.
fn program_msix(
    s: &mut Side,
    placed: &[(u8, u64)],
    vector: u8,
    mem: &Memory,
) -> Result<u16, String> {
    let cap = s
        .function
        .caps
        .iter()
        .find(|c| c.id == cap_id::MSIX)
        .ok_or_else(|| format!("{} has no MSI-X capability", s.vf.bdf))?
        .offset;
    s.view.enable_msix(s.vbdf, cap)?;
    let table = s.view.msix_table(s.vbdf, cap, placed)?;
    s.view
        .program_msix_entry(table, 0, MSI_ADDRESS, u32::from(vector))?;
    let r = msix_route(mem, s.vf.bdf, 0, Owner::Guest(s.id()))?;
    if r.guest_vector != vector {
        return Err(format!(
            "guest \"{}\"'s entry delivers vector {:#x}, not {vector:#x}",
            s.guest.name, r.guest_vector
        ));
    }
    info!(
        "selftest: nvme-vf-io: guest \"{}\" programmed MSI-X entry 0 of its {} (VF {}) with \
         vector {vector:#x} through its virtual table at GPA {table:#x}: IRTE {} owned by guest \
         \"{}\" -> host vector {:#x}",
        s.guest.name, s.vbdf, s.vf.bdf, r.index, s.guest.name, r.vector
    );
    Ok(r.index)
}

fn fill_pattern(s: &Side, gpa: u64, len: u64) {
    let base = s.window.virt(s.guest.hpa + gpa).cast::<u64>();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..(len / 8) as usize {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // SAFETY: [gpa, gpa + len) lies inside the guest's memory (checked against its size by
        // the caller's layout), mapped through the window; no vCPU runs the guest.
        unsafe { core::ptr::write_volatile(base.add(i), x) };
    }
}

fn log_done(s: &Side, step: u8, d: &Done, block: u32) {
    let first = d.chunk.offset / u64::from(block);
    info!(
        "selftest: nvme-vf-io [{step}] guest \"{}\": LBA {first}-{} ({} KiB): PRP1 {:#x}, PRP2 \
         {:#x}{}: NVMe status {}",
        s.guest.name,
        first + u64::from(d.chunk.blocks) - 1,
        d.chunk.bytes >> 10,
        d.prp1,
        d.prp2,
        if d.list_entries > 0 {
            format!(" (PRP list of {} entries)", d.list_entries)
        } else {
            String::new()
        },
        d.status
    );
}

/// Runs `direction` of [`BYTES`] at LBA 0 between the guest's buffer and the namespace; returns
/// the commands it took, after waiting for that many interrupts on the guest's vector.
fn move_mebibyte(
    s: &Side,
    d: &mut Driver,
    direction: Direction,
    step: u8,
    other: &Side,
) -> Result<u64, String> {
    let t = Transfer {
        direction,
        nsid: d.nsid,
        slba: 0,
        block: d.ns.block_size,
        buffer: BUFFER_GPA,
        bytes: BYTES,
        limit: d.limit,
    };
    // Interrupts of earlier completions (the queue creation's) arrive first.
    wait_ticks(2);
    let (mine0, other0) = (s.delivered(), other.delivered());
    let mut dones = Vec::new();
    // Each completion's interrupt is awaited before the next command: with interrupts off, two
    // messages on one vector would merge into one pending request.
    let commands = io::transfer(&mut d.q, &t, &s.pages(LIST_GPA, 1), |x| {
        dones.push(*x);
        let n = dones.len() as u64;
        wait_with_interrupts(ONE_INTERRUPT, || s.delivered() >= mine0 + n);
    })
    .map_err(|e| format!("VF {}: {e}", s.vf.bdf))? as u64;
    for x in &dones {
        log_done(s, step, x, d.ns.block_size);
    }
    wait_ticks(2);
    let (mine, theirs) = (s.delivered() - mine0, other.delivered() - other0);
    if mine != commands || theirs != 0 {
        return Err(format!(
            "{} commands of guest \"{}\" raised {mine} interrupt(s) for it and {theirs} for \
             guest \"{}\"",
            commands, s.guest.name, other.guest.name
        ));
    }
    Ok(commands)
}

/// Runs one command on the guest's I/O queue and waits for its completion's interrupt.
fn awaited(
    s: &Side,
    q: &mut IoQueue,
    command: Command,
    what: &'static str,
) -> Result<conduit_nvme::Completion, nvme::controller::NvmeError> {
    let before = s.delivered();
    let c = q.run(command, what)?;
    wait_with_interrupts(ONE_INTERRUPT, || s.delivered() > before);
    Ok(c)
}

/// Runs the script; returns the number of steps passed.
pub fn run(mem: &'static Memory, guests: &mut [Guest]) -> Result<usize, String> {
    iommu::status().map_err(|why| format!("DMA remapping is not enabled: {why}"))?;
    iommu::interrupt_remapping()
        .map_err(|why| format!("interrupt remapping is not enabled: {why}"))?;
    let (mut a, mut b) = find(guests, mem)?;
    let pf = nvme::online_vf(a.vf.bdf).ok_or("guest A's VF is gone")?.0;
    info!(
        "selftest: nvme-vf-io: guest A = \"{}\" (VF {} at its {}, {} MiB at HPA {:#x}), guest B \
         = \"{}\" (VF {} at its {}, {} MiB at HPA {:#x}), both VFs of {pf}; buffers at GPA \
         {BUFFER_GPA:#x}, queues from GPA {ADMIN_GPA:#x}; no vCPU runs: the hypervisor plays \
         both drivers",
        a.guest.name,
        a.vf.bdf,
        a.vbdf,
        a.guest.size >> 20,
        a.guest.hpa,
        b.guest.name,
        b.vf.bdf,
        b.vbdf,
        b.guest.size >> 20,
        b.guest.hpa
    );
    let placed_a = map_bar0(&mut a)?;
    let placed_b = map_bar0(&mut b)?;
    let mut da = bring_up(&mut a, mem, &placed_a, VECTOR_A)?;
    let mut db = bring_up(&mut b, mem, &placed_b, VECTOR_B)?;
    let result = script(&mut a, &mut b, &mut da, &mut db, pf);
    for (s, d) in [(&mut a, da), (&mut b, db)] {
        let mut c = d.c;
        if let Err(e) = c.delete_io_queue(d.q).and_then(|()| c.disable()) {
            log::warn!("selftest: nvme-vf-io: VF {}: shutting down: {e}", s.vf.bdf);
        }
        crate::guest::interrupts::release_function(
            s.guest.index,
            conduit_pci::PciAddress::on_segment0(s.vf.bdf),
        );
    }
    result
}

fn script(
    a: &mut Side,
    b: &mut Side,
    da: &mut Driver,
    db: &mut Driver,
    pf: Bdf,
) -> Result<usize, String> {
    fill_pattern(a, BUFFER_GPA, BYTES);
    let sum_a = a.sum(BUFFER_GPA, BYTES);
    let written = move_mebibyte(a, da, Direction::Write, 1, b)?;
    info!(
        "selftest: nvme-vf-io [1] guest \"{}\" wrote {} KiB from GPA {BUFFER_GPA:#x} (checksum \
         {sum_a:#018x}) at LBA 0 in {written} commands; {written} MSI-X interrupts reached guest \
         \"{}\" (vector {VECTOR_A:#x}), none guest \"{}\"",
        a.guest.name,
        BYTES >> 10,
        a.guest.name,
        b.guest.name
    );
    b.pages(BUFFER_GPA, BYTES / PAGE).zero();
    let zeroed = b.sum(BUFFER_GPA, BYTES);
    let read = move_mebibyte(b, db, Direction::Read, 2, a)?;
    let sum_b = b.sum(BUFFER_GPA, BYTES);
    if sum_b != sum_a {
        return Err(format!(
            "guest \"{}\" read back checksum {sum_b:#018x}, guest \"{}\" wrote {sum_a:#018x}",
            b.guest.name, a.guest.name
        ));
    }
    info!(
        "selftest: nvme-vf-io [2] guest \"{}\" read {} KiB at LBA 0 into GPA {BUFFER_GPA:#x} \
         (zeroed: {zeroed:#018x}) in {read} commands: checksum {sum_b:#018x}, equal to guest \
         \"{}\"'s; {read} MSI-X interrupts reached guest \"{}\" (vector {VECTOR_B:#x}), none \
         guest \"{}\"",
        b.guest.name,
        BYTES >> 10,
        a.guest.name,
        b.guest.name,
        a.guest.name
    );
    wait_ticks(2);
    let (a0, b0) = (a.delivered(), b.delivered());
    blocked::bad_writes(a, da, b, pf)?;
    wait_ticks(2);
    // Three commands of guest A's: the two blocked writes and the read-back.
    let (more_a, more_b) = (a.delivered() - a0, b.delivered() - b0);
    if (more_a, more_b) != (3, 0) {
        return Err(format!(
            "steps 3-4: guest A's 3 commands raised {more_a} interrupt(s) for it and {more_b} \
             for guest B"
        ));
    }
    let all = crate::guest::report::counters();
    let of = |s: &Side| {
        all.iter()
            .find(|c| c.name == s.guest.name)
            .map(|c| (c.dma_faults, c.interrupt_faults))
    };
    if of(a) != Some((2, 0)) || of(b) != Some((0, 0)) {
        return Err(format!(
            "per-guest (DMA faults, interrupt faults): guest A {:?}, want (2, 0); guest B {:?}, \
             want (0, 0)",
            of(a),
            of(b)
        ));
    }
    info!(
        "selftest: nvme-vf-io [5] guest \"{}\": 2 DMA faults (the blocked writes), {more_a} \
         interrupts for its 3 commands of steps 3-4; guest \"{}\": no fault, {more_b} \
         interrupts",
        a.guest.name, b.guest.name
    );
    Ok(5)
}
