//! Root and context tables in legacy mode (§3.4.2, §3.4.3; formats in §9.1 "Root Entry" and
//! §9.3 "Context Entry", encoded by `conduit_vtd::entries`).
//!
//! The root table holds 256 128-bit root entries, one per bus, each pointing at a context table
//! of 256 128-bit context entries, one per devfn.
//!
//! A function without a present context entry is blocked: its DMA faults with reason 0x02. Every
//! entry update goes through [`PhysWindow`], which flushes the written lines from the CPU caches
//! when the unit's walks are not coherent (ECAP.C = 0). Invalidation is the caller's job.

use super::VtdError;
use crate::memory::{Frames, PhysWindow};
use alloc::boxed::Box;
use conduit_paging::{FrameAllocator, PhysMemory};
use conduit_pci::Bdf;
pub use conduit_vtd::ContextEntry;
use conduit_vtd::root_entry;

/// The root table and the context tables hanging from it.
pub struct ContextTables {
    window: PhysWindow,
    root: u64,
    /// Physical address of each bus's context table, once one was needed.
    context: Box<[Option<u64>; 256]>,
}

impl ContextTables {
    /// An empty root table: every bus, and so every function, blocked.
    pub fn new(window: PhysWindow, frames: &mut Frames<'_>) -> Result<Self, VtdError> {
        let root = frames.allocate_frame().ok_or(VtdError::OutOfFrames)?;
        let mut window = window;
        window.flush(root, 4096);
        Ok(Self {
            window,
            root,
            context: Box::new([None; 256]),
        })
    }

    /// Number of buses with a context table.
    pub fn buses(&self) -> usize {
        self.context.iter().filter(|t| t.is_some()).count()
    }

    /// Physical address of the root table (for RTADDR).
    pub fn root(&self) -> u64 {
        self.root
    }

    fn entry_addr(table: u64, index: u8) -> u64 {
        table + u64::from(index) * 16
    }

    /// The present context entry of `bdf`, if any.
    #[cfg(feature = "selftest")]
    pub fn get(&self, bdf: Bdf) -> Option<ContextEntry> {
        let table = self.context[usize::from(bdf.bus())]?;
        let at = Self::entry_addr(table, bdf.devfn());
        ContextEntry::decode(self.window.read_entry(at), self.window.read_entry(at + 8))
    }

    /// The context table of `bus`, created empty (every function blocked) with a present root
    /// entry on first use. With the root entry present, a blocked function's DMA reports
    /// "context entry not present" (0x02) rather than "root entry not present" (0x01).
    pub fn bus_table(&mut self, frames: &mut Frames<'_>, bus: u8) -> Result<u64, VtdError> {
        if let Some(t) = self.context[usize::from(bus)] {
            return Ok(t);
        }
        let t = frames.allocate_frame().ok_or(VtdError::OutOfFrames)?;
        self.window.flush(t, 4096);
        let at = Self::entry_addr(self.root, bus);
        let (lo, hi) = root_entry(t);
        self.window.write_entry(at + 8, hi);
        self.window.write_entry(at, lo);
        self.window.flush(at, 16);
        self.context[usize::from(bus)] = Some(t);
        Ok(t)
    }

    /// Makes `bdf`'s context entry present with `entry`, creating the bus's context table (and
    /// its root entry) on first use. The high qword is written before the low one, which holds P.
    pub fn set(
        &mut self,
        frames: &mut Frames<'_>,
        bdf: Bdf,
        entry: ContextEntry,
    ) -> Result<(), VtdError> {
        let table = self.bus_table(frames, bdf.bus())?;
        let at = Self::entry_addr(table, bdf.devfn());
        let (lo, hi) = entry.encode();
        self.window.write_entry(at, 0);
        self.window.write_entry(at + 8, hi);
        self.window.write_entry(at, lo);
        self.window.flush(at, 16);
        Ok(())
    }

    /// Makes `bdf`'s context entry not present (P cleared first) and returns what it was.
    #[cfg(feature = "selftest")]
    pub fn clear(&mut self, bdf: Bdf) -> Option<ContextEntry> {
        let old = self.get(bdf)?;
        let table = self.context[usize::from(bdf.bus())]?;
        let at = Self::entry_addr(table, bdf.devfn());
        self.window.write_entry(at, 0);
        self.window.write_entry(at + 8, 0);
        self.window.flush(at, 16);
        Some(old)
    }
}
