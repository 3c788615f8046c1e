//! One interrupt remapping table per PCI segment.
//!
//! An IRTE's source validation (VT-d spec §9.10: SVT, SQ and SID) compares the requester's
//! 16-bit source-id, which carries no segment: two functions at the same bus, device and function
//! of two segments present the same source-id. A remapping unit serves one segment (§8.3: a
//! DRHD's scopes and INCLUDE_PCI_ALL apply within its Segment Number), so an entry written only
//! into the table of the units of its function's segment is reachable by that segment's
//! requesters alone: the same handle sent by the namesake on another segment looks up that
//! segment's table, where the entry is not present (§5.1.4: not present = fault, request
//! blocked). [`SegmentTables`] holds those tables, one per segment that has units; IRT indices
//! stay allocated over all of them together ([`crate::IrtAllocator`]), so an index is live in at
//! most one table.

/// Why a segment got no table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SegmentTablesError<E> {
    /// Every slot holds a table of another segment already.
    Full {
        /// The segment that did not fit.
        segment: u16,
    },
    /// Making the table failed.
    Make(E),
}

/// At most `N` tables, each of one PCI segment.
#[derive(Debug)]
pub struct SegmentTables<T, const N: usize> {
    slots: [Option<(u16, T)>; N],
}

impl<T, const N: usize> Default for SegmentTables<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> SegmentTables<T, N> {
    /// No table.
    #[must_use]
    pub fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| None),
        }
    }

    /// The table of `segment`, made with `make` the first time a unit of that segment asks.
    pub fn get_or_make<E>(
        &mut self,
        segment: u16,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<&mut T, SegmentTablesError<E>> {
        let index = match self.position(segment) {
            Some(i) => i,
            None => {
                let free = self
                    .slots
                    .iter()
                    .position(Option::is_none)
                    .ok_or(SegmentTablesError::Full { segment })?;
                let table = make().map_err(SegmentTablesError::Make)?;
                self.slots[free] = Some((segment, table));
                free
            }
        };
        match &mut self.slots[index] {
            Some((_, t)) => Ok(t),
            None => Err(SegmentTablesError::Full { segment }),
        }
    }

    fn position(&self, segment: u16) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(seg, _)| *seg == segment))
    }

    /// The table of `segment`: where an entry for a function of that segment (or an I/O APIC
    /// its DRHD lists) is written; `None` when no unit serves the segment.
    #[must_use]
    pub fn get(&self, segment: u16) -> Option<&T> {
        self.slots
            .iter()
            .flatten()
            .find(|(seg, _)| *seg == segment)
            .map(|(_, t)| t)
    }

    /// [`Self::get`], mutable.
    pub fn get_mut(&mut self, segment: u16) -> Option<&mut T> {
        self.slots
            .iter_mut()
            .flatten()
            .find(|(seg, _)| *seg == segment)
            .map(|(_, t)| t)
    }

    /// Every (segment, table), in the order the tables were made.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &T)> {
        self.slots.iter().flatten().map(|(seg, t)| (*seg, t))
    }

    /// Every (segment, table), mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u16, &mut T)> {
        self.slots.iter_mut().flatten().map(|(seg, t)| (*seg, t))
    }

    /// Number of tables.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Whether there is no table (interrupt remapping is off).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
