//! Random map/unmap sequences checked against a simple interval model.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use conduit_paging::{
    Access, Attributes, EntryFormat, Ept, Error, Host, LargePages, PageTable, PagingLevels,
    VtdSecondLevel,
};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Mapped intervals (table offsets): start -> (end, phys, access).
#[derive(Default)]
struct Model(BTreeMap<u64, (u64, u64, Access)>);

impl Model {
    fn lookup(&self, addr: u64) -> Option<(u64, Access)> {
        let (start, (end, phys, access)) = self.0.range(..=addr).next_back()?;
        (addr < *end).then(|| (phys + (addr - start), *access))
    }

    fn first_overlap(&self, start: u64, end: u64) -> Option<u64> {
        self.0
            .iter()
            .filter(|(s, (e, _, _))| **s < end && *e > start)
            .map(|(s, _)| (*s).max(start))
            .min()
    }

    /// Removes `[start, end)`; returns the extent that was actually mapped.
    fn remove(&mut self, start: u64, end: u64) -> Option<(u64, u64)> {
        let hit: Vec<u64> = self
            .0
            .iter()
            .filter(|(s, (e, _, _))| **s < end && *e > start)
            .map(|(s, _)| *s)
            .collect();
        let mut extent: Option<(u64, u64)> = None;
        for s in &hit {
            let (e, phys, access) = self.0.remove(s).expect("present");
            let (lo, hi) = ((*s).max(start), e.min(end));
            extent = Some(extent.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
            if *s < start {
                self.0.insert(*s, (start, phys, access));
            }
            if e > end {
                self.0.insert(end, (e, phys + (end - s), access));
            }
        }
        extent
    }
}

fn run<F: EntryFormat + Copy>(
    format: F,
    levels: PagingLevels,
    large: LargePages,
    base: u64,
    seed: u64,
) {
    let (mut t, fake) = common::table(format, config(levels, large));
    let mut a = fake.clone();
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let window = 4 * GIB1;
    let accesses = [Access::READ, Access::RW, Access::RX, Access::RWX];
    let mut sizes = BTreeSet::new();
    let mut check = |t: &PageTable<F, Fake>, model: &Model, offset: u64| {
        if offset >= window {
            return;
        }
        let expected = model.lookup(offset);
        match t.translate(base + offset) {
            Ok(tr) => {
                let (phys, access) =
                    expected.unwrap_or_else(|| panic!("{offset:#x} mapped, model says not"));
                assert_eq!(tr.phys, phys, "{offset:#x}");
                sizes.insert(tr.page_size);
                assert_eq!(
                    tr.attributes.access & Access::RW,
                    access & Access::RW,
                    "{offset:#x}"
                );
            }
            Err(Error::NotMapped { .. }) => assert_eq!(expected, None, "{offset:#x} not mapped"),
            Err(e) => panic!("{e}"),
        }
    };
    for op in 0..300 {
        let unit = [KIB4, KIB4, MIB2, MIB2, GIB1][rng.below(5) as usize];
        // Misalign small units now and then; 1 GiB units stay aligned (else 2^18 leaves).
        let skew = |rng: &mut Rng| {
            if unit < GIB1 && rng.below(4) == 0 {
                KIB4 * rng.below(4)
            } else {
                0
            }
        };
        let start = rng.below(window / unit) * unit + skew(&mut rng);
        let len = (unit * (1 + rng.below(3))).min(window - start);
        let end = start + len;
        if rng.below(3) != 0 {
            let phys = rng.below(16 * GIB1 / unit) * unit + skew(&mut rng);
            let access = accesses[rng.below(4) as usize];
            let result = t.map(&mut a, base + start, phys, len, Attributes::wb(access));
            match model.first_overlap(start, end) {
                Some(first) => assert_eq!(
                    result,
                    Err(Error::AlreadyMapped { addr: base + first }),
                    "op {op}"
                ),
                None => {
                    result.unwrap_or_else(|e| panic!("op {op}: {e}"));
                    model.0.insert(start, (end, phys, access));
                }
            }
        } else {
            let result = t
                .unmap(&mut a, base + start, len)
                .unwrap_or_else(|e| panic!("op {op}: {e}"));
            let removed = model.remove(start, end);
            assert_eq!(result.is_some(), removed.is_some(), "op {op}");
            if let (Some(inv), Some((lo, hi))) = (result, removed) {
                // Covers what was unmapped, and at most the large pages split at the ends.
                assert!(
                    inv.start <= base + lo && inv.last() >= base + hi - 1,
                    "op {op}: {inv:x?}"
                );
                assert!(inv.start >= base + start / GIB1 * GIB1, "op {op}: {inv:x?}");
                assert!(
                    inv.last() < base + end.next_multiple_of(GIB1),
                    "op {op}: {inv:x?}"
                );
            }
        }
        fake.assert_clean();
        for offset in [start.wrapping_sub(KIB4), start, end - KIB4, end] {
            check(&t, &model, offset);
        }
        for _ in 0..16 {
            check(&t, &model, rng.below(window / KIB4) * KIB4);
        }
        let bounds: Vec<u64> = model
            .0
            .iter()
            .flat_map(|(s, (e, _, _))| [*s, *e - KIB4, *e])
            .collect();
        for offset in bounds {
            check(&t, &model, offset);
        }
    }
    let expected_sizes = 1
        + large.contains(LargePages::SIZE_2M) as usize
        + large.contains(LargePages::SIZE_1G) as usize;
    assert_eq!(sizes.len(), expected_sizes, "leaf sizes seen: {sizes:?}");
    // Unmapping everything frees every table but the root.
    t.unmap(&mut a, base, window).expect("unmap all");
    fake.assert_clean();
    assert_eq!(fake.live_frames(), 1);
    assert_eq!(destroy(t, &fake), 1);
    assert_eq!(fake.allocations(), fake.frees());
}

#[test]
fn random_ept_operations_match_the_model() {
    run(
        Ept::new(),
        PagingLevels::Four,
        all_large(),
        0,
        0x9e37_79b9_7f4a_7c15,
    );
}

#[test]
fn random_vtd_three_level_operations_match_the_model() {
    run(
        VtdSecondLevel::new(),
        PagingLevels::Three,
        LargePages::SIZE_2M,
        0,
        0x1234_5678_9abc_def1,
    );
}

#[test]
fn random_host_upper_half_operations_match_the_model() {
    run(
        Host::new(),
        PagingLevels::Four,
        all_large(),
        0xffff_ff00_0000_0000,
        0x0bad_cafe_dead_beef,
    );
}
