//! Interrupt policy: who owns which vector and which interrupt remapping table entry, and what
//! devices and I/O APIC inputs are programmed with.
//!
//! Every vector (0x20-0xfe, one local APIC's space; the hypervisor keeps [`vectors::RESERVED`])
//! and every IRTE has an owner, the hypervisor or a guest (`conduit_irq::VectorAllocator`,
//! `IrtAllocator`). Every entry written goes through `conduit_irq::authorize_irte` first: the
//! requester must own the index, the vector and the destination (guests: only the CPUs their
//! vCPUs run on, recorded by [`place_guest`]), use Fixed or Lowest Priority delivery, and a
//! guest's entry must verify the source-id (SVT = 01b). Anything else is refused with a typed
//! error, and nothing is written. A guest's MSI or MSI-X goes to the CPU of the vCPU it is for,
//! its INTx to its vCPU 0's.
//!
//! - [`init`]: the local APIC (if the IOMMU did not already choose its mode), its timer as the
//!   hypervisor's tick, every I/O APIC masked, the allocators sized to the interrupt remapping
//!   table.
//! - [`bind_msi`]: a device's MSI or one of its MSI-X entries through a verified IRTE on a fresh
//!   vector of its owner, programmed into the device in remappable format (handle = IRTE index,
//!   no subhandle).
//! - `route_isa` / `set_gsi_masked`: an ISA interrupt (MADT overrides applied) through the
//!   I/O APIC in remappable format, verified against the I/O APIC's source-id from the DMAR.
//! - `program_irte`, `reserve_index`, `reserve_vector`, [`release`], [`mask`], `release_guest`.
//! - `flood::service`: finishes what the interrupt path left (masking a flooding source at the
//!   device, through the control task for a guest's MSI once configuration space was handed
//!   over) and reports it; the scheduler runs it between time slices when a source was cut off
//!   ([`service_floods`]).
//!
//! Only the self-tests use `route_isa`, `set_gsi_masked`, `program_irte`, `reserve_index`,
//! `reserve_vector` and `release_guest` today, so they are built into the test image only
//! (feature `selftest`).
//!
//! The state is locked with interrupts disabled only, so the interrupt path ([`dispatch`]), which
//! never locks it, can never deadlock against it.

pub mod dispatch;
mod wait;
pub use error::IrqError;
pub use wait::{interrupt_window, wait_for_interrupt_until};
mod error;
mod flood;
mod intx;
mod route;
#[cfg(feature = "selftest")]
pub use intx::intx_status;
pub use intx::{
    guest_eoi, guest_reset, locate_intx, quarantine as quarantine_intx, route_intx, take_asserted,
};

pub use dispatch::Flood;
pub use dispatch::{FLOOD_LIMIT, on_interrupt};
#[cfg(feature = "selftest")]
pub use flood::service;
pub use flood::service_floods;
pub use route::{MsiKind, bind_msi};
#[cfg(feature = "selftest")]
pub use route::{MsiRoute, route_isa, set_gsi_masked};

use crate::iommu::{self, IRT_ENTRIES, IrInfo};
use crate::platform::Platform;
use crate::platform::acpi::IsaOverride;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::apic::{self, timer, vectors};
use conduit_hw::ioapic::IoApic;
use conduit_hw::memory::Memory;
use conduit_irq::{
    ApicMode, Destination, GuestId, IrtAllocator, Irte, Owner, Placements, VectorAllocator,
    authorize_irte,
};
use conduit_pci::PciAddress;
use log::{error, info, warn};
use spin::Mutex;

/// The tick period.
pub const TICK_MS: u32 = 10;

static TICK_RUNNING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// The tick timer's calibration, once it runs.
static TICK_CAL: spin::Once<timer::Calibration> = spin::Once::new();

/// Whether the periodic tick was started (the control task's watchdog runs on it).
pub fn tick_running() -> bool {
    TICK_RUNNING.load(core::sync::atomic::Ordering::Acquire)
}

/// What an IRTE feeds, for masking and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Msi(PciAddress),
    Msix {
        bdf: PciAddress,
        entry: u16,
    },
    #[cfg(feature = "selftest")]
    IoApic {
        ioapic: usize,
        pin: u8,
    },
}

struct IoApicState {
    dev: IoApic,
    /// The I/O APIC's source-id, on the segment of the DRHD that lists it.
    source_id: Option<PciAddress>,
}

struct State {
    mem: &'static Memory,
    ir: Option<IrInfo>,
    ir_off: String,
    /// Every CPU's APIC ID (MADT), the bootstrap processor's (the destination of the
    /// hypervisor's own interrupts, and of a guest's until it is placed) and per guest the APIC
    /// ID of each vCPU's CPU ([`place_guest`]); also the destination policy IRTEs are
    /// authorised against.
    placements: Placements,
    vectors: VectorAllocator,
    irt: IrtAllocator<IRT_ENTRIES>,
    /// The I/O APICs and the MADT's ISA overrides, for routing ISA interrupts (the self-tests'
    /// I/O APIC-routed timer) and assigned functions' INTx (`intx.rs`).
    ioapics: Vec<IoApicState>,
    overrides: Vec<IsaOverride>,
    /// The INTx lines given to guests.
    intx: Vec<intx::IntxRoute>,
    /// The IRTE index feeding each source, with its vector.
    sources: Vec<(u16, u8, Source)>,
    /// Vectors whose flood was reported.
    reported: Vec<u8>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Runs `f` on the state with interrupts disabled.
fn with_state<R>(f: impl FnOnce(&mut State) -> Result<R, IrqError>) -> Result<R, IrqError> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = STATE.lock();
        let s = guard.as_mut().ok_or(IrqError::NotInitialised)?;
        f(s)
    })
}

impl State {
    fn mode(&self) -> ApicMode {
        self.ir.as_ref().map_or(ApicMode::XApic, |i| i.mode)
    }

    /// The APIC ID `owner`'s interrupts for its vCPU `vcpu` go to: the CPU that runs that vCPU,
    /// the bootstrap processor for the hypervisor (vCPU 0) and for a guest not placed yet.
    fn apic_of(&self, owner: Owner, vcpu: usize) -> Result<u32, IrqError> {
        Ok(self.placements.apic_of(owner, vcpu)?)
    }

    /// The destination of `owner`'s interrupts for its vCPU `vcpu` ([`State::apic_of`]), in the
    /// table's width.
    fn destination(&self, owner: Owner, vcpu: usize) -> Result<Destination, IrqError> {
        let apic = self.apic_of(owner, vcpu)?;
        Ok(match self.mode() {
            ApicMode::X2Apic => Destination::X2Apic(apic),
            ApicMode::XApic => Destination::XApic(apic as u8),
        })
    }

    /// Authorises `irte` for `requester` at `index`, then writes it into the interrupt
    /// remapping table of `segment`: the PCI segment of the requester the entry verifies (the
    /// tables are per segment, `crate::iommu`'s intremap).
    fn install(
        &mut self,
        requester: Owner,
        segment: u16,
        index: u16,
        irte: &Irte,
    ) -> Result<(), IrqError> {
        if self.ir.is_none() {
            return Err(IrqError::RemappingOff(self.ir_off.clone()));
        }
        authorize_irte(
            requester,
            index,
            irte,
            &self.irt,
            self.mode(),
            &self.vectors,
            &self.placements,
        )?;
        iommu::write_irte(segment, index, irte)?;
        Ok(())
    }
}

/// Brings interrupts up: the local APIC (xAPIC as the firmware left it unless the IOMMU chose
/// x2APIC already), the tick, every I/O APIC masked, and the allocators.
pub fn init(mem: &'static Memory, platform: &Platform) {
    let boot_apic = match apic::init(
        mem,
        false,
        "no interrupt remapping: the firmware's mode is kept",
    ) {
        Ok(id) => {
            conduit_hw::percpu::bsp_online(id);
            id
        }
        Err(e) => {
            error!("irq: {e}: no interrupts");
            return;
        }
    };
    start_tick();
    let mut ioapics = Vec::new();
    for io in io_apics(platform) {
        match IoApic::open(mem, u64::from(io.address), io.gsi_base) {
            Ok(dev) if !(1..=240).contains(&dev.pins()) || dev.version() == 0xff => warn!(
                "ioapic: nothing answers as an I/O APIC at {:#x} (version register reads {} \
                 inputs, version {:#x}): not used",
                io.address,
                dev.pins(),
                dev.version()
            ),
            Ok(mut dev) => {
                let live = dev.mask_all();
                let source_id = iommu::ioapic_source_id(io.id);
                info!(
                    "ioapic: I/O APIC {} at {:#x}: version {:#x}, {} inputs (GSI {}-{}), \
                     source-id {}; every input masked ({live} were unmasked)",
                    io.id,
                    dev.phys(),
                    dev.version(),
                    dev.pins(),
                    dev.gsi_base(),
                    dev.gsi_base() + u32::from(dev.pins()) - 1,
                    source_id.map_or_else(
                        || String::from("unknown (no DMAR scope)"),
                        |b| alloc::format!("{b} (DMAR I/OxAPIC scope)")
                    ),
                );
                ioapics.push(IoApicState { dev, source_id });
            }
            Err(e) => warn!("ioapic: I/O APIC {} at {:#x}: {e}", io.id, io.address),
        }
    }
    let (ir, ir_off) = match iommu::interrupt_remapping() {
        Ok(info) => (Some(info), String::new()),
        Err(why) => (None, why),
    };
    let irt = match ir {
        Some(ref i) => IrtAllocator::new(i.size).unwrap_or_else(|_| IrtAllocator::empty()),
        None => IrtAllocator::empty(),
    };
    let Ok(vectors) = VectorAllocator::new(&vectors::RESERVED) else {
        error!("irq: reserved vectors out of range");
        return;
    };
    match ir {
        Some(ref i) => info!(
            "irq: interrupt remapping on: {}, {} destinations (APIC {boot_apic}); vectors \
             {:#x}-{:#x} allocated with owners (the hypervisor keeps {:#x} VT-d fault, {:#x} \
             tick); flood limit {FLOOD_LIMIT} interrupts per source per tick",
            describe_tables(i),
            match i.mode {
                ApicMode::X2Apic => "32-bit x2APIC",
                ApicMode::XApic => "8-bit xAPIC",
            },
            conduit_irq::FIRST_VECTOR,
            conduit_irq::LAST_VECTOR,
            vectors::VTD_FAULT,
            vectors::TICK
        ),
        None => info!("irq: interrupt remapping off ({ir_off}): device interrupts are not routed"),
    }
    *STATE.lock() = Some(State {
        mem,
        ir,
        ir_off,
        placements: Placements::new(boot_apic, platform.local_apic_ids.clone()),
        vectors,
        irt,
        ioapics,
        overrides: platform.isa_overrides.clone(),
        intx: Vec::new(),
        sources: Vec::new(),
        reported: Vec::new(),
    });
}

/// `N IRTEs at A shared by U unit(s)` per table, with its segment when there are several (one
/// table per segment; IRT indices are allocated over all of them).
fn describe_tables(i: &IrInfo) -> String {
    let several = i.tables.len() > 1;
    let list: Vec<String> = i
        .tables
        .iter()
        .map(|&(segment, base, units)| {
            alloc::format!(
                "{} IRTEs at {base:#x} shared by {units} unit(s){}",
                i.size.entries(),
                if several {
                    alloc::format!(" of segment {segment:04x}")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    list.join(", ")
}

/// The I/O APICs of the MADT; without a MADT (a machine whose firmware publishes no ACPI tables,
/// such as Bochs with its legacy BIOS), the one I/O APIC every PC has at the architectural default
/// address 0xFEC00000 with GSI base 0 (MultiProcessor Specification 1.4 §3.6.1, default
/// configurations; the MADT's I/O APIC structure, ACPI 6.5 §5.2.12.3, is what normally says so).
/// [`IoApic::open`] reads its version register, and an input count outside 1..=240 (nothing
/// answering there) drops it.
fn io_apics(platform: &Platform) -> Vec<crate::platform::acpi::IoApic> {
    if !platform.io_apics.is_empty() {
        return platform.io_apics.clone();
    }
    info!(
        "ioapic: the firmware listed no I/O APIC (no MADT): the PC default at {DEFAULT_IOAPIC:#x}, \
         GSI base 0, is assumed"
    );
    alloc::vec![crate::platform::acpi::IoApic {
        id: 0,
        address: DEFAULT_IOAPIC,
        gsi_base: 0,
    }]
}

/// The I/O APIC's architectural default base.
const DEFAULT_IOAPIC: u32 = 0xfec0_0000;

/// Starts the tick on an AP with the BSP's calibration (every CPU's local APIC timer runs from
/// the same clock). Returns the initial count, or `None` if the BSP's tick does not run.
pub fn start_ap_tick() -> Option<u32> {
    let cal = TICK_CAL.get()?;
    Some(timer::start_periodic(cal, vectors::TICK, TICK_MS))
}

fn start_tick() {
    match timer::calibrate() {
        Ok(cal) => {
            let count = timer::start_periodic(&cal, vectors::TICK, TICK_MS);
            TICK_CAL.call_once(|| cal);
            TICK_RUNNING.store(true, core::sync::atomic::Ordering::Release);
            info!(
                "apic: timer: {} counts/ms (divide by 16, measured over {} ms = {} TSC ticks at \
                 {}); hypervisor tick every {TICK_MS} ms on vector {:#x} (initial count {count})",
                cal.counts_per_ms,
                timer::CALIBRATION_MS,
                cal.tsc.ticks_in_ms(timer::CALIBRATION_MS),
                cal.tsc,
                vectors::TICK
            );
        }
        Err(e) => warn!("apic: timer not calibrated ({e}): no hypervisor tick"),
    }
}

/// Writes `irte` at `index` of segment 0's table for `requester` if [`authorize_irte`] allows
/// it; refusals are logged and returned, and leave the table unchanged.
#[cfg(feature = "selftest")]
pub fn program_irte(requester: Owner, index: u16, irte: &Irte) -> Result<(), IrqError> {
    let result = with_state(|s| s.install(requester, 0, index, irte));
    match &result {
        Ok(()) => info!(
            "irq: {requester}: IRTE {index} written ({}vector {:#x}, destination {:?})",
            if irte.is_present() {
                ""
            } else {
                "not present, "
            },
            irte.vector(),
            irte.destination()
        ),
        Err(e) => error!("irq: refused IRTE {index} requested by {requester}: {e}"),
    }
    result
}

/// Takes a free IRT index for `owner` (its entry stays not present until programmed).
#[cfg(feature = "selftest")]
pub fn reserve_index(owner: Owner) -> Result<u16, IrqError> {
    with_state(|s| {
        if s.ir.is_none() {
            return Err(IrqError::RemappingOff(s.ir_off.clone()));
        }
        Ok(s.irt.alloc(owner)?)
    })
}

/// The owner of IRT index `index` in the allocator's records (`None`: free, or remapping off).
#[cfg(feature = "selftest")]
pub fn irte_owner(index: u16) -> Option<Owner> {
    with_state(|s| Ok(s.irt.owner(index))).ok().flatten()
}

/// Takes a free vector for `owner`, bound to nothing: its interrupts are counted as delivered.
#[cfg(feature = "selftest")]
pub fn reserve_vector(owner: Owner) -> Result<u8, IrqError> {
    with_state(|s| {
        let v = s.vectors.alloc(owner)?;
        dispatch::bind(
            v,
            conduit_irq::Binding {
                owner,
                index: None,
                virtual_vector: None,
                vcpu: 0,
            },
        );
        Ok(v)
    })
}

/// Gives `index` (cleared to not present) and its vector, if any, back; only their owner may.
/// If the entry cannot be cleared (or its invalidation fails) nothing is given back: the index
/// and the vector stay allocated, so a possibly live entry is never reused.
pub fn release(owner: Owner, index: u16, vector: Option<u8>) -> Result<(), IrqError> {
    with_state(|s| {
        s.irt.check(index, owner)?;
        iommu::clear_irte(index)?;
        s.irt.free(index, owner)?;
        s.sources.retain(|(i, _, _)| *i != index);
        if let Some(v) = vector {
            s.vectors.free(v, owner)?;
            dispatch::unbind(v);
        }
        Ok(())
    })
}

/// Masks the IRTE at `index` (not present, fault processing disabled: the unit drops its
/// requests without fault records) and keeps it, and its vector, allocated to `owner`: for a
/// route whose device could not be quietened, so that the handle it may still send is never
/// handed to anyone else. Only the owner may.
pub fn mask(owner: Owner, index: u16) -> Result<(), IrqError> {
    with_state(|s| {
        s.irt.check(index, owner)?;
        iommu::mask_irte(index)?;
        Ok(())
    })
}

/// Gives a vector taken with [`reserve_vector`] back; only its owner may.
#[cfg(feature = "selftest")]
pub fn release_vector(owner: Owner, vector: u8) -> Result<(), IrqError> {
    with_state(|s| {
        s.vectors.free(vector, owner)?;
        dispatch::unbind(vector);
        Ok(())
    })
}

/// Frees everything guest `id` holds: its IRTEs (cleared) and vectors. Returns (entries,
/// vectors).
#[cfg(feature = "selftest")]
pub fn release_guest(id: GuestId) -> Result<(usize, usize), IrqError> {
    let owner = Owner::Guest(id);
    with_state(|s| {
        let indices: Vec<u16> = s.irt.owned_by(owner).collect();
        for &i in &indices {
            iommu::clear_irte(i)?;
        }
        let vectors: Vec<u8> = s.vectors.owned_by(owner).collect();
        for &v in &vectors {
            dispatch::unbind(v);
        }
        s.sources.retain(|(i, _, _)| !indices.contains(i));
        s.irt.release_all(owner);
        s.vectors.release_all(owner);
        dispatch::clear_guest(id);
        Ok((indices.len(), vectors.len()))
    })
}

/// The bootstrap processor as an IRTE destination, in the table's width (`None` before
/// [`init`]).
#[cfg(feature = "selftest")]
pub fn this_cpu() -> Option<Destination> {
    with_state(|s| s.destination(Owner::Hypervisor, 0)).ok()
}

/// Records that the CPU with APIC ID `apics[k]` runs vCPU k of guest `id`: the guest's device
/// interrupts for vCPU k are routed there from now on (IRTE destination), its INTx (I/O APIC
/// entries, with or without remapping) to vCPU 0's, and its IRTEs may aim at any of them, no
/// other CPU. Called once per guest, before its functions are bound. An APIC ID that is neither
/// a CPU of the MADT nor an online CPU is refused, and nothing is recorded.
pub fn place_guest(id: GuestId, apics: &[u32]) -> Result<(), IrqError> {
    with_state(|s| {
        // Without a MADT (Bochs) the APs are found by a broadcast start-up: an online CPU
        // counts as well as a MADT entry.
        for &apic in apics {
            let online = conduit_hw::percpu::all()
                .any(|c| c.apic_id() == apic && c.state() == conduit_hw::percpu::CpuState::Online);
            if online {
                s.placements.add_cpu(apic);
            }
        }
        Ok(s.placements.place(id, apics)?)
    })
}

/// Interrupts delivered to guest `id` so far.
pub fn guest_interrupts(id: GuestId) -> u64 {
    dispatch::guest_delivered(id)
}
