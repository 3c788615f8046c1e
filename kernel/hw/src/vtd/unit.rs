//! One DMA remapping hardware unit: bring-up, global commands, context entries, invalidation and
//! the fault event interrupt.
//!
//! Bring-up order (§10.4.4-§10.4.6, §6.5): map the registers, decode CAP/ECAP, take the unit
//! over from firmware (`conduit_vtd::takeover`: pending fault records and FSTS error bits
//! cleared, then translation, interrupt remapping and queued invalidation off, one command at a
//! time), install an empty root table
//! (SRTP), invalidate the context cache and the IOTLB globally through the registers, enable the
//! invalidation queue where ECAP.QI = 1, program the fault event, and only then enable
//! translation: from that moment every function without a context entry is blocked. The
//! protected memory regions are disabled only after that ([`RemappingUnit::disable_pmr`]).

use super::access::{TscPoll, UnitAccess};
use super::inval::{self, Drain, Invalidation};
use super::qi::{Descriptor, Queue};
use super::regs::{FaultRecording, IotlbRegisters, Registers, fectl};
use super::tables::{ContextEntry, ContextTables};
use super::{VtdError, fault};
use crate::memory::mmio;
use crate::memory::{Frames, Memory, PhysWindow};
use alloc::vec::Vec;
use conduit_paging::{Config, PagingLevels};
use conduit_pci::Bdf;
use conduit_vtd::takeover::{self, Command, FaultEventError, FaultEventMsi, Pmr};
use conduit_vtd::{Cap, Ecap};
use log::{info, warn};
use volatile::{VolatilePtr, map_field};

/// How an invalidation was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Through the invalidation queue, completed by a wait descriptor's status write.
    Queued,
    /// Through the Context Command / IOTLB registers.
    Register,
}

impl core::fmt::Display for Method {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued invalidation",
            Self::Register => "register-based invalidation",
        })
    }
}

/// A remapping unit under Conduit's control.
pub struct RemappingUnit {
    phys: u64,
    regs: VolatilePtr<'static, Registers>,
    tlb: VolatilePtr<'static, IotlbRegisters>,
    /// The NFR + 1 fault-recording registers.
    records: Vec<VolatilePtr<'static, FaultRecording>>,
    cap: Cap,
    ecap: Ecap,
    window: PhysWindow,
    tables: ContextTables,
    queue: Option<Queue>,
    levels: PagingLevels,
    host_address_width: u8,
    /// The PCI segment whose functions the unit translates (its DRHD's Segment Number).
    segment: u16,
}

// SAFETY: the only non-`Send` fields are volatile pointers to the unit's registers, which are
// device memory mapped for the life of the hypervisor and valid from every CPU; the unit is only
// used through `&mut` (behind the IOMMU state's lock), so accesses are never concurrent.
unsafe impl Send for RemappingUnit {}

impl RemappingUnit {
    /// Maps the unit at `phys`, logs its capabilities and takes it over: a root table with an
    /// empty context table for each of `buses` (buses of `segment`, the unit's DRHD's Segment
    /// Number, VT-d spec §8.3; every function blocked), caches invalidated,
    /// queued invalidation on where supported (unless `register_only`). Translation stays off
    /// until [`RemappingUnit::enable_translation`].
    pub fn new(
        mem: &Memory,
        phys: u64,
        host_address_width: u8,
        register_only: bool,
        segment: u16,
        buses: &[u8],
    ) -> Result<Self, VtdError> {
        let probe = mmio::map(mem, phys, 4096).map_err(VtdError::Mmio)?;
        let regs = probe.block::<Registers>(0).map_err(VtdError::Mmio)?;
        let ver = map_field!(regs.ver).read();
        let cap = Cap(map_field!(regs.cap).read());
        let ecap = Ecap(map_field!(regs.ecap).read());
        info!(
            "vtd: remapping unit at {phys:#x}: version {}.{}, CAP {:#018x}, ECAP {:#018x}",
            (ver >> 4) & 0xf,
            ver & 0xf,
            cap.0,
            ecap.0
        );
        info!("vtd:   CAP: {cap}");
        info!("vtd:   ECAP: {ecap}");
        let records_end = cap.fault_record_offset() + (u64::from(cap.nfr()) + 1) * 16;
        let len = (ecap.iotlb_offset() + 16)
            .max(records_end)
            .max(core::mem::size_of::<Registers>() as u64)
            .next_multiple_of(4096);
        let mmio = mmio::map(mem, phys, len).map_err(VtdError::Mmio)?;
        let regs = mmio.block::<Registers>(0).map_err(VtdError::Mmio)?;
        let tlb = mmio
            .block::<IotlbRegisters>(ecap.iotlb_offset())
            .map_err(VtdError::Mmio)?;
        let records = (0..=u64::from(cap.nfr()))
            .map(|n| mmio.block::<FaultRecording>(cap.fault_record_offset() + n * 16))
            .collect::<Result<Vec<_>, _>>()
            .map_err(VtdError::Mmio)?;
        let levels = cap.levels().ok_or(VtdError::UnsupportedWidth {
            sagaw: cap.sagaw(),
            mgaw: cap.mgaw(),
        })?;
        let window = PhysWindow::new(mem, ecap.c());
        let mut frames = Frames::new(mem);
        let mut tables = ContextTables::new(window, &mut frames)?;
        for bus in buses {
            tables.bus_table(&mut frames, *bus)?;
        }
        let mut unit = Self {
            phys,
            regs,
            tlb,
            records,
            cap,
            ecap,
            window,
            tables,
            queue: None,
            levels,
            host_address_width,
            segment,
        };
        unit.take_over()?;
        unit.set_root_table()?;
        if ecap.qi() && !register_only {
            unit.enable_queue(&mut frames)?;
        } else if ecap.qi() {
            info!("vtd:   queued invalidation supported but not used (register-based by request)");
        } else {
            info!("vtd:   ECAP.QI = 0: invalidations go through the registers");
        }
        fault::register(
            unit.regs(),
            phys,
            segment,
            mmio.virt(cap.fault_record_offset()),
        );
        Ok(unit)
    }

    pub(super) fn regs(&self) -> VolatilePtr<'static, Registers> {
        self.regs
    }

    fn tlb_regs(&self) -> VolatilePtr<'static, IotlbRegisters> {
        self.tlb
    }

    /// Register base (physical).
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The PCI segment the unit translates.
    pub fn segment(&self) -> u16 {
        self.segment
    }

    pub fn cap(&self) -> Cap {
        self.cap
    }

    pub fn ecap(&self) -> Ecap {
        self.ecap
    }

    /// The Global Status register, read now (TE, QIES, IRES, ... : §10.4.5).
    pub fn global_status(&self) -> u32 {
        let regs = self.regs();
        map_field!(regs.gsts).read()
    }

    /// Whether invalidations go through the invalidation queue (else the registers).
    pub fn queued_invalidation(&self) -> bool {
        self.queue.is_some()
    }

    /// The invalidation queue, where queued invalidation is on.
    pub(super) fn queue_mut(&mut self) -> Option<&mut Queue> {
        self.queue.as_mut()
    }

    /// Physical address of the root table.
    pub fn root_table(&self) -> u64 {
        self.tables.root()
    }

    /// The physical-memory accessor for this unit's tables (flushes when ECAP.C = 0).
    pub fn window(&self) -> PhysWindow {
        self.window
    }

    /// The configuration second-level tables of this unit are built with: the depth from
    /// SAGAW/MGAW, large pages from SLLPS, output addresses limited to the host address width.
    pub fn table_config(&self) -> Config {
        Config::new(self.levels)
            .with_large_pages(self.cap.large_pages())
            .with_phys_addr_bits(self.host_address_width)
    }

    /// The registers as `conduit_vtd::takeover` accesses them.
    pub(super) fn access(&self) -> UnitAccess<'_> {
        UnitAccess {
            regs: self.regs,
            records: &self.records,
        }
    }

    /// Carries out one global command (one GCMD bit, the other enables kept) and waits, bounded,
    /// for GSTS to follow. Returns GSTS.
    pub(super) fn command(&self, command: Command) -> Result<u32, VtdError> {
        takeover::command(&mut self.access(), &mut TscPoll, command).map_err(VtdError::Takeover)
    }

    /// Takes the unit from whatever firmware left: pending fault records and FSTS's error bits
    /// cleared first, then translation, interrupt remapping and queued invalidation turned off
    /// in that order (`conduit_vtd::takeover`).
    fn take_over(&mut self) -> Result<(), VtdError> {
        let done = takeover::take_over(&mut self.access(), &mut TscPoll, self.cap)
            .map_err(VtdError::Takeover)?;
        let (cleared, off) = (done.cleared, done.disabled);
        if cleared.records != 0 || cleared.fsts & takeover::fsts::ERRORS != 0 {
            warn!(
                "vtd:   firmware left {} fault record(s) and FSTS {:#010x}: cleared",
                cleared.records, cleared.fsts
            );
        }
        for (was_on, what) in [
            (off.translation, "translation"),
            (off.interrupt_remapping, "interrupt remapping"),
            (off.queued_invalidation, "queued invalidation"),
        ] {
            if was_on {
                warn!("vtd:   firmware left {what} enabled: disabled to take over");
            }
        }
        if off.queue_undrained {
            warn!(
                "vtd:   firmware's invalidation queue had not drained (IQH != IQT) when disabled"
            );
        }
        Ok(())
    }

    /// Installs the root table (legacy mode, RTADDR.TTM = 0) and invalidates every cache through
    /// the registers: required after setting the root table pointer (§6.5).
    fn set_root_table(&mut self) -> Result<(), VtdError> {
        takeover::set_root_table(&mut self.access(), &mut TscPoll, self.tables.root())
            .map_err(VtdError::Takeover)?;
        let regs = self.regs();
        let drain = self.drain();
        for inv in [Invalidation::ContextGlobal, Invalidation::IotlbGlobal] {
            inval::by_register(regs, self.tlb_regs(), drain, inv)?;
        }
        info!(
            "vtd:   root table at {:#x} (legacy mode, {} bus(es) with empty context tables, \
             {}-level second-level tables, {}); context cache and IOTLB invalidated globally \
             through the registers",
            self.tables.root(),
            self.tables.buses(),
            self.levels.count(),
            if self.ecap.c() {
                "coherent walks"
            } else {
                "non-coherent walks: table updates flushed with CLFLUSH"
            }
        );
        Ok(())
    }

    fn enable_queue(&mut self, frames: &mut Frames<'_>) -> Result<(), VtdError> {
        let queue = Queue::new(self.window, frames)?;
        takeover::enable_queue(&mut self.access(), &mut TscPoll, queue.iqa())
            .map_err(VtdError::Takeover)?;
        info!(
            "vtd:   queued invalidation enabled: 256 descriptors at {:#x}",
            queue.iqa()
        );
        self.queue = Some(queue);
        Ok(())
    }

    /// Programs the fault event interrupt for `vector` on the CPU with local APIC ID `apic_id`
    /// (§5.1.6 / §10.4.11-§10.4.13; destination bits 31:8 in FEUADDR, which units with ECAP.EIM
    /// have) and unmasks it. A destination above 255 on a unit without EIM cannot be addressed:
    /// the interrupt stays masked and the error says why (faults are then found by polling).
    pub fn enable_fault_interrupt(&self, apic_id: u32, vector: u8) -> Result<(), FaultEventError> {
        let msi = FaultEventMsi::new(apic_id, vector, self.ecap.eim())?;
        msi.program(&mut self.access());
        let regs = self.regs();
        map_field!(regs.fectl).write(0);
        let masked = map_field!(regs.fectl).read() & fectl::IM != 0;
        info!(
            "vtd:   fault event interrupt: vector {vector:#x} to APIC {apic_id}{} (FEADDR \
             {:#010x}, FEUADDR {:#010x})",
            if masked {
                " (still masked!)"
            } else {
                ", unmasked"
            },
            msi.address,
            msi.upper_address,
        );
        Ok(())
    }

    /// Turns the protected memory regions off (PMEN.EPM = 0, PRS awaited): call once
    /// translation is on, so that the remapping tables alone decide what DMA reaches.
    pub fn disable_pmr(&mut self) -> Result<Pmr, VtdError> {
        takeover::disable_pmr(&mut self.access(), &mut TscPoll, self.cap)
            .map_err(VtdError::Takeover)
    }

    /// Turns translation off again (a unit that failed after it was enabled); every function of
    /// the unit is then untranslated.
    pub fn disable_translation(&mut self) -> Result<(), VtdError> {
        self.command(Command::Translation(false)).map(|_| ())
    }

    /// Enables DMA remapping: functions without a context entry are blocked from now on.
    pub fn enable_translation(&mut self) -> Result<(), VtdError> {
        let gsts = self.command(Command::Translation(true))?;
        info!(
            "vtd: unit {:#x}: DMA remapping enabled (GSTS {gsts:#010x}): every function without \
             a context entry is blocked",
            self.phys,
        );
        Ok(())
    }

    fn drain(&self) -> Drain {
        Drain {
            reads: self.cap.drd(),
            writes: self.cap.dwd(),
        }
    }

    /// Makes table updates visible where the unit requires write-buffer flushing (CAP.RWBF).
    fn flush_write_buffer(&self) -> Result<(), VtdError> {
        if !self.cap.rwbf() {
            return Ok(());
        }
        self.command(Command::FlushWriteBuffer).map(|_| ())
    }

    /// Carries out `requests` (queued in one batch where possible) and returns how. Page-selective
    /// requests become domain-selective where the unit has no PSI or the block exceeds MAMV.
    pub fn invalidate(&mut self, requests: &[Invalidation]) -> Result<Method, VtdError> {
        let (psi, mamv) = (self.cap.psi(), u32::from(self.cap.mamv()));
        let normal = |inv: Invalidation| inv.supported(psi, mamv);
        let drain = self.drain();
        let regs = self.regs();
        if let Some(queue) = self.queue.as_mut() {
            let mut batch = alloc::vec::Vec::with_capacity(requests.len());
            batch.extend(
                requests
                    .iter()
                    .map(|r| Descriptor::invalidation(normal(*r), drain)),
            );
            queue.submit(regs, &batch)?;
            return Ok(Method::Queued);
        }
        for r in requests {
            inval::by_register(regs, self.tlb_regs(), drain, normal(*r))?;
        }
        Ok(Method::Register)
    }

    /// Points `bdf` at the second-level tables `root` of domain `did`. Under caching mode the
    /// not-present entry may be cached (tagged with DID 0), so the context cache entry and the
    /// domain's IOTLB are invalidated (§6.1); otherwise only the write buffer is flushed.
    pub fn attach(
        &mut self,
        frames: &mut Frames<'_>,
        bdf: Bdf,
        did: u16,
        root: u64,
    ) -> Result<Option<Method>, VtdError> {
        let entry = ContextEntry {
            did,
            slptptr: root,
            levels: self.levels,
        };
        self.tables.set(frames, bdf, entry)?;
        if self.cap.cm() {
            let requests = [
                Invalidation::ContextDevice {
                    did: 0,
                    source: bdf,
                },
                Invalidation::IotlbDomain { did },
            ];
            return self.invalidate(&requests).map(Some);
        }
        self.flush_write_buffer()?;
        Ok(None)
    }

    /// Clears `bdf`'s context entry and invalidates what the unit may have cached for it.
    /// Returns the domain it was attached to.
    #[cfg(feature = "selftest")]
    pub fn detach(&mut self, bdf: Bdf) -> Result<Option<(u16, Method)>, VtdError> {
        let Some(old) = self.tables.clear(bdf) else {
            return Ok(None);
        };
        let requests = [
            Invalidation::ContextDevice {
                did: old.did,
                source: bdf,
            },
            Invalidation::IotlbDomain { did: old.did },
        ];
        let method = self.invalidate(&requests)?;
        Ok(Some((old.did, method)))
    }

    /// The context entry of `bdf`, if present.
    #[cfg(feature = "selftest")]
    pub fn context(&self, bdf: Bdf) -> Option<ContextEntry> {
        self.tables.get(bdf)
    }
}
