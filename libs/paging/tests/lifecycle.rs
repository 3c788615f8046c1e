//! Creation, destruction, running out of frames, bad frames, walks.

mod common;

use common::*;
use conduit_paging::{
    Access, Attributes, Config, Ept, Error, Level, MemoryType, PageSize, PageTable, PagingLevels,
};

#[test]
fn destroy_returns_every_frame() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    t.map(&mut a, 0, 0, 3 * GIB1 + 5 * MIB2 + 3 * KIB4, rw)
        .expect("map");
    t.map(&mut a, 0x7f_0000_0000, 0, 17 * KIB4, rw)
        .expect("map");
    t.map(&mut a, 0xff_ffc0_0000, 0, MIB2 + KIB4, rw)
        .expect("map");
    t.unmap(&mut a, GIB1 + 5 * KIB4, KIB4).expect("split");
    let live = fake.live_frames();
    assert!(live > 8, "{live} frames");
    assert_eq!(destroy(t, &fake), live);
    assert_eq!(fake.allocations(), fake.frees());
    fake.assert_clean();
}

#[test]
fn destroy_of_an_empty_table_frees_the_root() {
    let (t, fake) = vtd(PagingLevels::Three, all_large());
    let root = t.root();
    assert_eq!(destroy(t, &fake), 1);
    assert!(!fake.is_live(root));
}

#[test]
fn new_fails_cleanly() {
    let fake = Fake::new();
    let mut a = fake.clone();
    fake.set_limit(Some(0));
    let result = PageTable::new(Ept::new(), fake.clone(), Config::default(), &mut a);
    assert_eq!(result.err(), Some(Error::OutOfFrames));
    fake.set_limit(None);
    for bits in [31, 53] {
        let config = Config::default().with_phys_addr_bits(bits);
        let result = PageTable::new(Ept::new(), fake.clone(), config, &mut a);
        assert_eq!(result.err(), Some(Error::InvalidPhysicalWidth { bits }));
    }
    assert_eq!(fake.live_frames(), 0);
}

#[test]
fn out_of_frames_during_map_restores_the_table() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    t.map(&mut a, 5 * GIB1, 0, KIB4, rw).expect("map");
    let before = fake.snapshot();
    // Spans two page directories and needs two PDs and two PTs: fails after 0..=3 allocations.
    for limit in 0..4 {
        fake.set_limit(Some(limit));
        let result = t.map(&mut a, GIB1 - 2 * KIB4, MIB2 - 2 * KIB4, 2 * MIB2, rw);
        assert_eq!(result, Err(Error::OutOfFrames), "limit {limit}");
        assert_eq!(fake.snapshot(), before, "limit {limit}");
        fake.assert_clean();
        assert!(t.translate(GIB1 - 2 * KIB4).is_err());
    }
    fake.set_limit(Some(4));
    t.map(&mut a, GIB1 - 2 * KIB4, MIB2 - 2 * KIB4, 2 * MIB2, rw)
        .expect("exactly enough frames");
    assert_eq!(t.translate(GIB1 - KIB4).expect("mapped").phys, MIB2 - KIB4);
    let tr = t.translate(GIB1).expect("mapped");
    assert_eq!((tr.phys, tr.page_size), (MIB2, PageSize::Size2M));
    assert_eq!(
        t.translate(GIB1 + MIB2).expect("mapped").page_size,
        PageSize::Size4K
    );
    assert_eq!(t.translate(5 * GIB1).expect("mapped").phys, 0);
    fake.assert_clean();
    let live = fake.live_frames();
    assert_eq!(destroy(t, &fake), live);
}

#[test]
fn out_of_frames_when_splitting_unmaps_nothing() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, 0, GIB1, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    let before = fake.snapshot();
    fake.set_limit(Some(0));
    assert_eq!(t.unmap(&mut a, 5 * KIB4, KIB4), Err(Error::OutOfFrames));
    assert_eq!(fake.snapshot(), before);
    assert_eq!(
        t.translate(5 * KIB4).expect("still mapped").page_size,
        PageSize::Size2M
    );
    fake.assert_clean();
}

#[test]
fn out_of_frames_in_second_split_keeps_every_translation() {
    let (mut t, fake) = vtd(PagingLevels::Four, all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    t.map(&mut a, GIB1, 0, GIB1, rw).expect("map");
    fake.set_limit(Some(1));
    let hole = GIB1 + MIB2 + KIB4;
    assert_eq!(t.unmap(&mut a, hole, KIB4), Err(Error::OutOfFrames));
    fake.assert_clean();
    for addr in [GIB1, hole - KIB4, hole, hole + KIB4, 2 * GIB1 - KIB4] {
        let tr = t.translate(addr).expect("still mapped");
        assert_eq!(
            (tr.phys, tr.page_size, tr.attributes),
            (addr - GIB1, PageSize::Size2M, rw)
        );
    }
    fake.set_limit(None);
    t.unmap(&mut a, hole, KIB4).expect("unmap");
    assert!(t.translate(hole).is_err());
    assert_eq!(
        t.translate(hole + KIB4).expect("mapped").page_size,
        PageSize::Size4K
    );
}

#[test]
fn bad_frames_are_refused_and_handed_back() {
    let fake = Fake::new();
    let mut a = fake.clone();
    let config = Config::default().with_phys_addr_bits(39);
    let mut t = PageTable::new(Ept::new(), fake.clone(), config, &mut a).expect("new");
    let before = fake.snapshot();
    for bad in [0x1234, 1 << 40] {
        fake.return_bad_frame(bad);
        assert_eq!(
            t.map(&mut a, 0, 0, KIB4, Attributes::wb(Access::READ)),
            Err(Error::BadFrame { frame: bad })
        );
        assert_eq!(fake.snapshot(), before);
    }
    assert_eq!(fake.bad_frames_returned(), [0x1234, 1 << 40]);
    t.map(&mut a, 0, 0, KIB4, Attributes::wb(Access::READ))
        .expect("good frames");
    fake.assert_clean();
}

#[test]
fn walk_reports_every_level() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let addr = 0x12_3456_7000;
    let attrs = Attributes::new(Access::RX, MemoryType::WriteThrough);
    t.map(&mut a, addr, 0x9000, KIB4, attrs).expect("map");
    let walk = t.walk(addr + 0x321).expect("walk");
    assert_eq!(walk.addr(), addr + 0x321);
    let steps = walk.steps();
    assert_eq!(steps.len(), 4);
    let levels = [Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt];
    let indices = [
        (addr >> 39) & 511,
        (addr >> 30) & 511,
        (addr >> 21) & 511,
        (addr >> 12) & 511,
    ];
    let mut table = t.root();
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step.level, levels[i]);
        assert_eq!(step.table, table);
        assert_eq!(step.index as u64, indices[i]);
        assert_eq!(step.raw, fake.entry(table, step.index));
        assert!(step.present);
        assert_eq!(step.leaf, i == 3);
        if i < 3 {
            assert_eq!(step.access, Access::RWX);
            assert_eq!(step.attributes, None);
            table = step.address.expect("next table");
            assert_eq!(step.raw, table | 0b111);
        }
    }
    let leaf = walk.leaf().expect("leaf");
    assert_eq!(leaf.raw, 0x9000 | 0x25);
    assert_eq!(leaf.address, Some(0x9000));
    assert_eq!(leaf.attributes, Some(attrs));
    let tr = walk.translation().expect("translation");
    assert_eq!((tr.phys, tr.page_size), (0x9321, PageSize::Size4K));
}

#[test]
fn walk_stops_at_not_present_entries_and_large_leaves() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let empty = t.walk(0x5000).expect("walk");
    assert_eq!(empty.steps().len(), 1);
    let root = empty.steps()[0];
    assert!(!root.present && !root.leaf && root.address.is_none() && root.access.is_empty());
    assert_eq!(empty.translation(), None);
    t.map(&mut a, GIB1, 0, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    let walk = t.walk(GIB1 + MIB2).expect("walk");
    assert_eq!(walk.steps().len(), 3);
    assert!(!walk.steps()[2].present);
    let walk = t.walk(GIB1 + 0x1000).expect("walk");
    assert_eq!(walk.steps().len(), 3);
    assert_eq!(walk.leaf().map(|s| s.level), Some(Level::Pd));
    assert_eq!(
        t.walk(1 << 50),
        Err(Error::AddressOutOfRange {
            addr: 1 << 50,
            bits: 48
        })
    );
}

#[test]
fn walk_display_names_each_level() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, GIB1, 4 * MIB2, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    let text = t.walk(GIB1).expect("walk").to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "walk 0x40000000:");
    assert!(
        lines[1].starts_with("  L4 ") && lines[1].contains("RWX- -> table 0x"),
        "{text}"
    );
    assert!(lines[2].contains("[  1]"), "{text}");
    assert!(
        lines[3].ends_with("RW-- -> Size2M page 0x800000 WriteBack"),
        "{text}"
    );
    let missing = t.walk(0).expect("walk").to_string();
    assert!(missing.contains("not present"), "{missing}");
}

#[test]
fn out_of_frames_splitting_the_end_of_a_range_unmaps_nothing() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    // A 4 KiB page just below a 2 MiB leaf; unmap both the page and the leaf's first 4 KiB.
    t.map(&mut a, MIB2 - KIB4, 0x3000, KIB4, rw)
        .expect("map 4K");
    t.map(&mut a, MIB2, 4 * MIB2, MIB2, rw).expect("map 2M");
    let before = fake.snapshot();
    fake.set_limit(Some(0));
    assert_eq!(
        t.unmap(&mut a, MIB2 - KIB4, 2 * KIB4),
        Err(Error::OutOfFrames)
    );
    assert_eq!(fake.snapshot(), before);
    assert_eq!(t.translate(MIB2 - KIB4).expect("still mapped").phys, 0x3000);
    fake.set_limit(None);
    let inv = t
        .unmap(&mut a, MIB2 - KIB4, 2 * KIB4)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!(
        (inv.start, inv.len, inv.tables_freed),
        (MIB2 - KIB4, MIB2 + KIB4, true)
    );
    assert!(t.translate(MIB2 - KIB4).is_err() && t.translate(MIB2).is_err());
    assert_eq!(
        t.translate(MIB2 + KIB4).expect("kept").phys,
        4 * MIB2 + KIB4
    );
    fake.assert_clean();
}
