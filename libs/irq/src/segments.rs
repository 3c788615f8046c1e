//! One interrupt remapping table per PCI segment.
//!
//! An IRTE's source validation (VT-d spec §9.10: SVT, SQ and SID) compares the requester's
//! 16-bit source-id, which carries no segment: two functions at the same bus, device and function
//! of two segments present the same source-id. A remapping unit serves one segment (§8.3: a
//! DRHD's scopes and INCLUDE_PCI_ALL apply within its Segment Number), so an entry written only
//! into the table of the units of its function's segment is reachable by that segment's
//! requesters alone: the same handle sent by the namesake on another segment looks up that
//! segment's table, where the entry is not present (§5.1.4: not present = fault, request
//! blocked). [`SegmentTables`] holds those tables, one per segment that has units, with no limit
//! on their number; IRT indices stay allocated over all of them together
//! ([`crate::IrtAllocator`]), so an index is in use in at most one table, its *holder*.

use alloc::vec::Vec;

/// One table per PCI segment, in the order the segments first asked for one.
#[derive(Debug)]
pub struct SegmentTables<T> {
    tables: Vec<(u16, T)>,
}

impl<T> Default for SegmentTables<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SegmentTables<T> {
    /// No table.
    #[must_use]
    pub const fn new() -> Self {
        Self { tables: Vec::new() }
    }

    /// The table of `segment`, made with `make` the first time a unit of that segment asks; the
    /// error of `make` when it fails (no table is added then).
    pub fn get_or_make<E>(
        &mut self,
        segment: u16,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<&mut T, E> {
        let index = match self.tables.iter().position(|(s, _)| *s == segment) {
            Some(i) => i,
            None => {
                self.tables.push((segment, make()?));
                self.tables.len() - 1
            }
        };
        Ok(&mut self.tables[index].1)
    }

    /// The table of `segment`: where an entry for a function of that segment (or an I/O APIC
    /// its DRHD lists) is written; `None` when no unit serves the segment.
    #[must_use]
    pub fn get(&self, segment: u16) -> Option<&T> {
        self.tables
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, t)| t)
    }

    /// [`Self::get`], mutable.
    pub fn get_mut(&mut self, segment: u16) -> Option<&mut T> {
        self.tables
            .iter_mut()
            .find(|(s, _)| *s == segment)
            .map(|(_, t)| t)
    }

    /// Every (segment, table), in the order the tables were made.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &T)> {
        self.tables.iter().map(|(s, t)| (*s, t))
    }

    /// Number of tables.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there is no table (interrupt remapping is off).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The segment of the first table for which `holds` is true (the table an index is in use
    /// in: present, or masked but still its owner's); `None` when no table holds it. Nothing
    /// else is guessed: an operation on an index no table holds has no table to act on.
    pub fn holder(&self, mut holds: impl FnMut(&T) -> bool) -> Option<u16> {
        self.tables.iter().find(|(_, t)| holds(t)).map(|(s, _)| *s)
    }

    /// Runs `clear` on every table: first on the [`Self::holder`] (so the live entry goes first),
    /// then on every other table, in order, whether or not an earlier one failed. Returns the
    /// first error, after every table was tried.
    pub fn clear_everywhere<E>(
        &mut self,
        holds: impl FnMut(&T) -> bool,
        mut clear: impl FnMut(u16, &mut T) -> Result<(), E>,
    ) -> Result<(), E> {
        let first = self.holder(holds);
        let order = first
            .into_iter()
            .chain(
                self.tables
                    .iter()
                    .map(|(s, _)| *s)
                    .filter(|s| Some(*s) != first),
            )
            .collect::<Vec<u16>>();
        let mut result = Ok(());
        for segment in order {
            if let Some(t) = self.get_mut(segment) {
                let done = clear(segment, t);
                if result.is_ok() {
                    result = done;
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake table: 8 entries, `None` = not in use.
    type Fake = [Option<u32>; 8];

    fn tables(segments: &[u16]) -> SegmentTables<Fake> {
        let mut t = SegmentTables::new();
        for &s in segments {
            t.get_or_make(s, || Ok::<_, ()>([None; 8])).expect("made");
        }
        t
    }

    /// Units of segments 0, 1, 0, 2, 1 ask in turn: three tables, each made once, in the order
    /// of the first asker; each segment gets its own.
    #[test]
    fn one_table_per_segment() {
        let mut t = SegmentTables::<Fake>::new();
        let mut made = Vec::new();
        for s in [0u16, 1, 0, 2, 1] {
            t.get_or_make(s, || {
                made.push(s);
                Ok::<_, ()>([None; 8])
            })
            .expect("made")[usize::from(s)] = Some(u32::from(s) + 10);
        }
        assert_eq!(made, [0, 1, 2]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().map(|(s, _)| s).collect::<Vec<_>>(), [0, 1, 2]);
        // What segment 1's unit wrote is in segment 1's table only.
        assert_eq!(t.get(1).expect("table")[1], Some(11));
        assert_eq!(t.get(0).expect("table")[1], None);
        assert_eq!(t.get(2).expect("table")[1], None);
    }

    /// More than any fixed number of segments (the old limit was 16): every one gets a table.
    #[test]
    fn no_limit_on_segments() {
        let segments: Vec<u16> = (0..40).map(|s| s * 3).collect();
        let t = tables(&segments);
        assert_eq!(t.len(), 40);
        assert!(segments.iter().all(|&s| t.get(s).is_some()));
    }

    #[test]
    fn a_segment_without_units_has_no_table() {
        let mut t = tables(&[0, 1]);
        assert!(t.get(2).is_none());
        assert!(t.get_mut(2).is_none());
        assert!(!t.is_empty());
        assert!(SegmentTables::<Fake>::default().is_empty());
    }

    /// A failing `make` is returned as is and adds nothing; a later attempt may succeed.
    #[test]
    fn the_make_error_is_returned_and_adds_no_table() {
        let mut t = tables(&[0]);
        assert_eq!(
            t.get_or_make(5, || Err::<Fake, _>("no memory")).err(),
            Some("no memory")
        );
        assert_eq!(t.len(), 1);
        assert!(t.get(5).is_none());
        assert!(t.get_or_make(5, || Ok::<_, &str>([None; 8])).is_ok());
        assert_eq!(t.len(), 2);
    }

    /// The holder is the table where the index is in use; with none, there is none (no fallback
    /// to the first table).
    #[test]
    fn the_holder_is_the_table_using_the_index_or_none() {
        let mut t = tables(&[0, 1, 2]);
        t.get_mut(2).expect("table")[3] = Some(7);
        assert_eq!(t.holder(|x| x[3].is_some()), Some(2));
        assert_eq!(t.holder(|x| x[4].is_some()), None);
        assert_eq!(SegmentTables::<Fake>::new().holder(|_| true), None);
    }

    /// Clearing an index: the holder's table first, then every other table even after a
    /// failure; the first error is returned and the live entry is gone.
    #[test]
    fn clearing_starts_with_the_holder_and_goes_on_after_failures() {
        let mut t = tables(&[0, 1, 2, 3]);
        t.get_mut(2).expect("table")[3] = Some(7);
        let mut visited = Vec::new();
        let result = t.clear_everywhere(
            |x| x[3].is_some(),
            |s, x| {
                visited.push(s);
                if s == 0 || s == 3 {
                    return Err(s);
                }
                x[3] = None;
                Ok(())
            },
        );
        assert_eq!(visited, [2, 0, 1, 3]);
        assert_eq!(result, Err(0), "the first error");
        assert_eq!(
            t.holder(|x| x[3].is_some()),
            None,
            "the live entry is cleared"
        );
        // With no holder every table is still visited, in order.
        let mut visited = Vec::new();
        let result = t.clear_everywhere(
            |x| x[3].is_some(),
            |s, _| {
                visited.push(s);
                Ok::<_, ()>(())
            },
        );
        assert_eq!((visited, result), (vec![0, 1, 2, 3], Ok(())));
    }

    /// A holder whose own clearing fails is reported, and the others are still cleared.
    #[test]
    fn a_failing_holder_does_not_stop_the_others() {
        let mut t = tables(&[0, 1]);
        t.get_mut(1).expect("table")[2] = Some(1);
        let mut visited = Vec::new();
        let result = t.clear_everywhere(
            |x| x[2].is_some(),
            |s, _| {
                visited.push(s);
                if s == 1 { Err("holder") } else { Ok(()) }
            },
        );
        assert_eq!((visited, result), (vec![1, 0], Err("holder")));
    }
}
