//! Unmapping: splitting large leaves, clearing, freeing empty tables, invalidation ranges.

mod common;

use common::*;
use conduit_paging::{
    Access, Attributes, Error, Host, Invalidation, LargePages, Level, PageSize, PagingLevels,
    VtdSecondLevel,
};

#[test]
fn unmapping_4k_inside_a_2m_page_splits_it_and_keeps_511_entries() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let (addr, phys) = (GIB1 + 4 * MIB2, 7 * MIB2);
    t.map(&mut a, addr, phys, MIB2, Attributes::wb(Access::RWX))
        .expect("map");
    assert_eq!(
        t.translate(addr).expect("mapped").page_size,
        PageSize::Size2M
    );
    let hole = addr + 5 * KIB4;
    let inv = t
        .unmap(&mut a, hole, KIB4)
        .expect("unmap")
        .expect("was mapped");
    fake.assert_clean();
    // The whole former 2 MiB leaf is reported: its entry changed.
    assert_eq!(
        inv,
        Invalidation {
            start: addr,
            len: MIB2,
            tables_freed: false
        }
    );
    assert_eq!(t.translate(hole), Err(Error::NotMapped { addr: hole }));
    let walk = t.walk(addr).expect("walk");
    let pd = &walk.steps()[2];
    assert_eq!((pd.level, pd.leaf), (Level::Pd, false));
    let pt = pd.address.expect("page table");
    for index in 0..512u64 {
        let raw = fake.entry(pt, index as usize);
        if index == 5 {
            assert_eq!(raw, 0);
        } else {
            // Same WB RWX attributes, no PS bit, consecutive addresses.
            assert_eq!(raw, (phys + index * KIB4) | 0x37, "entry {index}");
        }
    }
    assert_eq!(
        t.translate(addr + 6 * KIB4 + 1).expect("mapped").phys,
        phys + 6 * KIB4 + 1
    );
}

#[test]
fn unmapping_4k_inside_a_1g_page_splits_twice() {
    let (mut t, fake) = vtd(PagingLevels::Four, all_large());
    let mut a = fake.clone();
    let rw = Attributes::wb(Access::RW);
    t.map(&mut a, GIB1, 2 * GIB1, GIB1, rw).expect("map");
    let frames = fake.live_frames();
    let hole = GIB1 + 3 * MIB2 + 7 * KIB4;
    let inv = t
        .unmap(&mut a, hole, KIB4)
        .expect("unmap")
        .expect("was mapped");
    fake.assert_clean();
    assert_eq!((inv.start, inv.len), (GIB1, GIB1));
    assert_eq!(fake.live_frames(), frames + 2);
    assert_eq!(t.translate(hole), Err(Error::NotMapped { addr: hole }));
    let check = [
        (GIB1, PageSize::Size2M),
        (GIB1 + 3 * MIB2, PageSize::Size4K),
        (hole + KIB4, PageSize::Size4K),
        (2 * GIB1 - 1, PageSize::Size2M),
    ];
    for (addr, size) in check {
        let tr = t.translate(addr).expect("still mapped");
        assert_eq!(
            (tr.phys, tr.page_size, tr.attributes),
            (addr + GIB1, size, rw),
            "{addr:#x}"
        );
    }
    // The new page directory: 2 MiB leaves with PS, one entry a table.
    let pd = t.walk(GIB1).expect("walk").steps()[1].address.expect("pd");
    assert_eq!(fake.entry(pd, 0), (2 * GIB1) | 0x83);
    assert_eq!(fake.entry(pd, 511), (2 * GIB1 + 511 * MIB2) | 0x83);
    assert_eq!(fake.entry(pd, 3) & 0x83, 0x03);
}

#[test]
fn unmap_then_translate_fails_and_neighbours_stay() {
    let (mut t, fake) = host(LargePages::empty());
    let mut a = fake.clone();
    let base = 0xffff_c000_0000_0000;
    t.map(
        &mut a,
        base,
        0x10_0000,
        8 * KIB4,
        Attributes::wb(Access::RW),
    )
    .expect("map");
    let inv = t
        .unmap(&mut a, base + 2 * KIB4, 3 * KIB4)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!(
        inv,
        Invalidation {
            start: base + 2 * KIB4,
            len: 3 * KIB4,
            tables_freed: false
        }
    );
    for page in 0..8 {
        let addr = base + page * KIB4;
        let mapped = t.translate(addr).is_ok();
        assert_eq!(mapped, !(2..5).contains(&page), "page {page}");
    }
    assert_eq!(
        t.translate(base + 5 * KIB4).expect("mapped").phys,
        0x10_0000 + 5 * KIB4
    );
    fake.assert_clean();
}

#[test]
fn emptied_tables_are_freed_up_to_the_root() {
    let (mut t, fake) = vtd(PagingLevels::Four, all_large());
    let mut a = fake.clone();
    let addr = 0x7f_1234_5000;
    t.map(&mut a, addr, 0x5000, KIB4, Attributes::wb(Access::RW))
        .expect("map");
    assert_eq!(fake.live_frames(), 4);
    let inv = t
        .unmap(&mut a, addr, KIB4)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!(
        inv,
        Invalidation {
            start: addr,
            len: KIB4,
            tables_freed: true
        }
    );
    assert_eq!(fake.live_frames(), 1);
    assert!((0..512).all(|index| fake.entry(t.root(), index) == 0));
    assert_eq!(t.walk(addr).expect("walk").steps().len(), 1);
    fake.assert_clean();
}

#[test]
fn tables_with_other_mappings_are_kept() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, 0x1000, 0x5000, KIB4, Attributes::wb(Access::READ))
        .expect("map");
    t.map(&mut a, 0x3000, 0x6000, KIB4, Attributes::wb(Access::READ))
        .expect("map");
    let inv = t
        .unmap(&mut a, 0x1000, KIB4)
        .expect("unmap")
        .expect("was mapped");
    assert!(!inv.tables_freed);
    assert_eq!(fake.live_frames(), 4);
    assert_eq!(t.translate(0x3000).expect("mapped").phys, 0x6000);
    fake.assert_clean();
}

#[test]
fn unmapping_a_hole_reports_nothing_and_writes_nothing() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, GIB1, 0, KIB4, Attributes::wb(Access::READ))
        .expect("map");
    fake.clear_logs();
    assert_eq!(t.unmap(&mut a, 0, GIB1), Ok(None));
    assert_eq!(t.unmap(&mut a, GIB1 + KIB4, MIB2), Ok(None));
    assert!(fake.writes().is_empty());
    assert!(t.translate(GIB1).is_ok());
}

#[test]
fn whole_large_pages_are_cleared_without_splitting() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, GIB1, GIB1, GIB1 + MIB2, Attributes::wb(Access::RW))
        .expect("map");
    let allocations = fake.allocations();
    let inv = t
        .unmap(&mut a, GIB1, GIB1 + MIB2)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!(fake.allocations(), allocations, "no split needed");
    assert_eq!(
        inv,
        Invalidation {
            start: GIB1,
            len: GIB1 + MIB2,
            tables_freed: true
        }
    );
    assert_eq!(fake.live_frames(), 1);
    fake.assert_clean();
}

#[test]
fn unmap_across_mixed_leaf_sizes() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    let start = MIB2 - 2 * KIB4;
    t.map(
        &mut a,
        start,
        start,
        2 * KIB4 + MIB2 + KIB4,
        Attributes::wb(Access::RW),
    )
    .expect("map");
    // Leaves: 4K, 4K, 2M, 4K. Unmap from the second 4K page through the middle of the 2 MiB one.
    let inv = t
        .unmap(&mut a, MIB2 - KIB4, KIB4 + MIB2 / 2)
        .expect("unmap")
        .expect("was mapped");
    assert_eq!((inv.start, inv.len), (MIB2 - KIB4, KIB4 + MIB2));
    assert!(t.translate(start).is_ok());
    assert!(t.translate(MIB2 - KIB4).is_err());
    assert!(t.translate(MIB2 + MIB2 / 2 - KIB4).is_err());
    let kept = t.translate(MIB2 + MIB2 / 2).expect("second half kept");
    assert_eq!(
        (kept.phys, kept.page_size),
        (MIB2 + MIB2 / 2, PageSize::Size4K)
    );
    assert!(t.translate(2 * MIB2).is_ok());
    fake.assert_clean();
}

#[test]
fn split_keeps_format_specific_bits() {
    let fake = Fake::new();
    let mut a = fake.clone();
    let snoop = VtdSecondLevel::new().with_snoop(true);
    let mut t = conduit_paging::PageTable::new(
        snoop,
        fake.clone(),
        config(PagingLevels::Three, all_large()),
        &mut a,
    )
    .expect("new");
    t.map(&mut a, 0, MIB2, MIB2, Attributes::wb(Access::READ))
        .expect("map");
    t.unmap(&mut a, KIB4, KIB4).expect("unmap");
    assert_eq!(t.translate(0).expect("mapped").raw, MIB2 | 0x801);
    assert_eq!(
        t.translate(2 * KIB4).expect("mapped").raw,
        (MIB2 + 2 * KIB4) | 0x801
    );

    let (mut h, fake) = common::table(
        Host::new().with_global(true),
        config(PagingLevels::Four, all_large()),
    );
    let mut a = fake.clone();
    let user_ro = Attributes::wb(Access::READ | Access::USER);
    h.map(&mut a, GIB1, GIB1, GIB1, user_ro).expect("map");
    h.unmap(&mut a, GIB1 + MIB2, KIB4).expect("unmap");
    let nx = 1 << 63;
    assert_eq!(h.translate(GIB1).expect("mapped").raw, nx | GIB1 | 0x185);
    assert_eq!(
        h.translate(GIB1 + MIB2 + KIB4).expect("mapped").raw,
        nx | (GIB1 + MIB2 + KIB4) | 0x105
    );
    assert_eq!(
        h.translate(GIB1 + MIB2 + KIB4).expect("mapped").attributes,
        user_ro
    );
}

#[test]
fn remapping_after_unmap_uses_new_translation() {
    let (mut t, fake) = ept(all_large());
    let mut a = fake.clone();
    t.map(&mut a, 0, 0, MIB2, Attributes::wb(Access::RW))
        .expect("map");
    t.unmap(&mut a, 0, MIB2).expect("unmap");
    t.map(&mut a, 0, 4 * MIB2, MIB2, Attributes::wb(Access::READ))
        .expect("remap");
    let tr = t.translate(0x10).expect("mapped");
    assert_eq!(
        (tr.phys, tr.attributes.access),
        (4 * MIB2 + 0x10, Access::READ)
    );
    fake.assert_clean();
    assert_eq!(destroy(t, &fake), 3);
}
