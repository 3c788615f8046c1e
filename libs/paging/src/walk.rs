//! Walking the tree for one address: translation and the debug shell's view of every level.

use core::fmt;

use crate::error::Error;
use crate::format::EntryFormat;
use crate::memory::PhysMemory;
use crate::table::PageTable;
use crate::types::{Access, Attributes, Level, PagingLevels, Translation};

/// The entry a walk read at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalkStep {
    /// Level of the table the entry is in.
    pub level: Level,
    /// Physical address of that table.
    pub table: u64,
    /// Index of the entry in the table (0..512).
    pub index: usize,
    /// The raw entry.
    pub raw: u64,
    /// Whether the entry is present.
    pub present: bool,
    /// Whether the entry maps a page (always `false` when not present).
    pub leaf: bool,
    /// The rights the entry grants (empty when not present).
    pub access: Access,
    /// For a leaf, its decoded attributes (rights and memory type).
    pub attributes: Option<Attributes>,
    /// For a present entry, the next table or the page base.
    pub address: Option<u64>,
}

impl WalkStep {
    const NONE: WalkStep = WalkStep {
        level: Level::Pt,
        table: 0,
        index: 0,
        raw: 0,
        present: false,
        leaf: false,
        access: Access::empty(),
        attributes: None,
        address: None,
    };
}

/// Writes one line: `L4 0x0000000000001000[  5] = 0x0000000000002007 RWX-  -> table 0x2000`.
impl fmt::Display for WalkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "L{} {:#018x}[{:3}] = {:#018x} ",
            self.level.number(),
            self.table,
            self.index,
            self.raw
        )?;
        if !self.present {
            return f.write_str("not present");
        }
        for (flag, name) in [
            (Access::READ, "R"),
            (Access::WRITE, "W"),
            (Access::EXECUTE, "X"),
            (Access::USER, "U"),
        ] {
            f.write_str(if self.access.contains(flag) {
                name
            } else {
                "-"
            })?;
        }
        match (
            self.leaf,
            self.address,
            self.level.page_size(),
            self.attributes,
        ) {
            (true, Some(address), Some(size), Some(attributes)) => write!(
                f,
                " -> {:?} page {address:#x} {:?}",
                size, attributes.memory_type
            ),
            (_, Some(address), _, _) => write!(f, " -> table {address:#x}"),
            _ => Ok(()),
        }
    }
}

/// Every entry a walk read, from the root down to the leaf or the first not-present entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Walk {
    offset: u64,
    addr: u64,
    steps: [WalkStep; 4],
    len: usize,
}

impl Walk {
    /// The address walked.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The entries read, root first.
    pub fn steps(&self) -> &[WalkStep] {
        &self.steps[..self.len]
    }

    /// The last step, if it is a leaf.
    pub fn leaf(&self) -> Option<&WalkStep> {
        self.steps().last().filter(|step| step.leaf)
    }

    /// The translation the walk found, if the address is mapped.
    pub fn translation(&self) -> Option<Translation> {
        let leaf = self.leaf()?;
        let page_size = leaf.level.page_size()?;
        let page_phys = leaf.address?;
        Some(Translation {
            phys: page_phys + (self.offset & (page_size.bytes() - 1)),
            page_phys,
            page_size,
            attributes: leaf.attributes?,
            raw: leaf.raw,
        })
    }
}

/// One line per step.
impl fmt::Display for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "walk {:#x}:", self.addr)?;
        for step in self.steps() {
            writeln!(f, "  {step}")?;
        }
        Ok(())
    }
}

impl<F: EntryFormat, M: PhysMemory> PageTable<F, M> {
    /// Reads the entry for `addr` at every level, from the root down to the leaf or the first
    /// not-present entry. `addr` need not be aligned; it must be inside the table's address
    /// space ([`Error::AddressOutOfRange`]).
    pub fn walk(&self, addr: u64) -> Result<Walk, Error> {
        let offset = self.to_offset(addr)?;
        walk_entries(
            &self.format,
            self.config.levels,
            self.root,
            addr,
            offset,
            |phys| Ok(self.memory.read_entry(phys)),
            |_, _| Ok(()),
        )
    }

    /// The translation of `addr`: [`Error::NotMapped`] if it has none,
    /// [`Error::AddressOutOfRange`] if it is outside the table's address space.
    pub fn translate(&self, addr: u64) -> Result<Translation, Error> {
        self.walk(addr)?
            .translation()
            .ok_or(Error::NotMapped { addr })
    }
}

/// The one walk loop of the crate, for tables it builds ([`PageTable`]) and tables it only reads
/// ([`crate::ReadOnlyTable`]): from the root at `root` down to the leaf or the first not-present
/// entry for table offset `offset` (of input address `addr`). `read` reads one entry by physical
/// address; `check` vets every present entry before it is followed (reserved bits).
pub(crate) fn walk_entries<F: EntryFormat>(
    format: &F,
    levels: PagingLevels,
    root: u64,
    addr: u64,
    offset: u64,
    mut read: impl FnMut(u64) -> Result<u64, Error>,
    mut check: impl FnMut(Level, u64) -> Result<(), Error>,
) -> Result<Walk, Error> {
    let mut walk = Walk {
        offset,
        addr,
        steps: [WalkStep::NONE; 4],
        len: 0,
    };
    let mut table = root;
    let mut level = Some(levels.top());
    while let Some(current) = level {
        let index = current.index(offset);
        let raw = read(table + index as u64 * 8)?;
        let present = format.is_present(raw);
        if present {
            check(current, raw)?;
        }
        let leaf = present && format.is_leaf(current, raw);
        let address = present.then(|| format.address(current, raw));
        let attributes = match current.page_size() {
            Some(size) if leaf => Some(format.leaf_attributes(size, raw)),
            _ => None,
        };
        walk.steps[walk.len] = WalkStep {
            level: current,
            table,
            index,
            raw,
            present,
            leaf,
            access: if present {
                format.access(raw)
            } else {
                Access::empty()
            },
            attributes,
            address,
        };
        walk.len += 1;
        match address {
            Some(next) if !leaf => table = next,
            _ => break,
        }
        level = current.lower();
    }
    Ok(walk)
}
