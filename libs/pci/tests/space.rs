//! Finding room for VF BARs behind a root port, on the address map OVMF leaves on QEMU q35
//! (measured with the harness' device set; `support::devices::ovmf_windows`).

use conduit_pci::{
    MmioWindow, Placement, SpaceError, VfBarRequest, cover, find_free, find_free_highest,
    place_behind_bridge, plan_span, room_around,
};

fn w(base: u64, limit: u64) -> MmioWindow {
    MmioWindow { base, limit }
}
fn sized(base: u64, size: u64) -> MmioWindow {
    MmioWindow::at(base, size).expect("valid")
}

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
/// What the hypervisor leaves to PCI below 4 GiB: from the lowest address firmware gave a BAR
/// or window, up to the I/O APIC.
const BOUNDS: MmioWindow = MmioWindow {
    base: 0xc000_0000,
    limit: 0xfebf_ffff,
};
const RP0_WINDOW: MmioWindow = MmioWindow {
    base: 0xc120_0000,
    limit: 0xc13f_ffff,
};
const RP1_WINDOW: MmioWindow = MmioWindow {
    base: 0xc100_0000,
    limit: 0xc11f_ffff,
};

/// igb 01:00.0: BAR1 128 KiB, BAR0 128 KiB, BAR3 16 KiB.
fn igb_bars() -> Vec<MmioWindow> {
    vec![
        sized(0xc120_0000, 128 * K),
        sized(0xc122_0000, 128 * K),
        sized(0xc124_0000, 16 * K),
    ]
}
/// nvme 02:00.0: BAR0 16 KiB.
fn nvme_bars() -> Vec<MmioWindow> {
    vec![sized(0xc100_0000, 16 * K)]
}
/// Bus 0 functions and platform ranges: VGA, the root ports' own BARs, edu, AHCI, ECAM, IOAPIC.
fn bus0() -> Vec<MmioWindow> {
    vec![
        sized(0xc000_0000, 16 * M),
        sized(0xc151_3000, 4 * K),
        sized(0xc151_2000, 4 * K),
        sized(0xc151_1000, 4 * K),
        sized(0xc140_0000, M),
        sized(0xc151_0000, 4 * K),
        sized(0xb000_0000, 256 * M),
        sized(0xfec0_0000, 4 * K),
    ]
}
/// What is foreign to root port 00:02.0: bus 0 and everything behind 00:03.0.
fn foreign_to_rp0() -> Vec<MmioWindow> {
    let mut f = bus0();
    f.push(RP1_WINDOW);
    f.extend(nvme_bars());
    f
}
fn foreign_to_rp1() -> Vec<MmioWindow> {
    let mut f = bus0();
    f.push(RP0_WINDOW);
    f.extend(igb_bars());
    f
}

fn igb_span() -> (u64, u64) {
    let pf = conduit_pci::Bdf::new(1, 0, 0).expect("valid");
    plan_span(&[
        VfBarRequest {
            pf,
            bar_index: 0,
            per_vf_size: 16 * K,
            num_vfs: 8,
        },
        VfBarRequest {
            pf,
            bar_index: 3,
            per_vf_size: 16 * K,
            num_vfs: 8,
        },
    ])
    .expect("valid")
}

#[test]
fn span_of_the_q35_vf_bars() {
    assert_eq!(igb_span(), (256 * K, 16 * K));
    let pf = conduit_pci::Bdf::new(2, 0, 0).expect("valid");
    let nvme = [VfBarRequest {
        pf,
        bar_index: 0,
        per_vf_size: 16 * K,
        num_vfs: 4,
    }];
    assert_eq!(plan_span(&nvme), Ok((64 * K, 16 * K)));
    let mixed = [
        VfBarRequest {
            pf,
            bar_index: 0,
            per_vf_size: 4 * K,
            num_vfs: 3,
        },
        VfBarRequest {
            pf,
            bar_index: 2,
            per_vf_size: 64 * K,
            num_vfs: 3,
        },
    ];
    assert_eq!(plan_span(&mixed), Ok((204 * K, 64 * K)));
    let zero = [VfBarRequest {
        num_vfs: 0,
        ..nvme[0]
    }];
    assert!(plan_span(&zero).is_err());
    let odd = [VfBarRequest {
        per_vf_size: 24 * K,
        ..nvme[0]
    }];
    assert!(plan_span(&odd).is_err());
}

#[test]
fn igb_vf_bars_fit_in_the_window_ovmf_left() {
    let (size, align) = igb_span();
    let p = place_behind_bridge(
        RP0_WINDOW,
        BOUNDS,
        &foreign_to_rp0(),
        &igb_bars(),
        size,
        align,
    );
    assert_eq!(
        p,
        Ok(Placement {
            region: w(0xc124_4000, 0xc128_3fff),
            window: RP0_WINDOW,
            grown: false,
        })
    );
}

#[test]
fn nvme_vf_bars_fit_in_the_window_ovmf_left() {
    let p = place_behind_bridge(
        RP1_WINDOW,
        BOUNDS,
        &foreign_to_rp1(),
        &nvme_bars(),
        64 * K,
        16 * K,
    );
    assert_eq!(
        p.map(|p| (p.region, p.grown)),
        Ok((w(0xc100_4000, 0xc101_3fff), false))
    );
}

#[test]
fn a_full_window_grows_into_free_space_only() {
    // 00:02.0 with only its first MiB open: the VF BARs need the second one, which is free.
    let small = w(0xc120_0000, 0xc12f_ffff);
    let p = place_behind_bridge(small, BOUNDS, &foreign_to_rp0(), &igb_bars(), M, 16 * K)
        .expect("room above");
    assert_eq!(p.region, w(0xc124_4000, 0xc134_3fff));
    assert_eq!(p.window, w(0xc120_0000, 0xc13f_ffff));
    assert!(p.grown);
    // The room is bounded by 00:03.0's window below and edu above: 2 MiB are not there.
    assert_eq!(
        room_around(small, BOUNDS, &[&foreign_to_rp0()]),
        Ok(w(0xc120_0000, 0xc13f_ffff))
    );
    assert_eq!(
        place_behind_bridge(small, BOUNDS, &foreign_to_rp0(), &igb_bars(), 2 * M, 16 * K),
        Err(SpaceError::NoRoom {
            size: 2 * M,
            align: 16 * K,
            room: w(0xc120_0000, 0xc13f_ffff)
        })
    );
    // 00:03.0 is boxed in by VGA below and 00:02.0 above: its window cannot grow at all.
    let e = place_behind_bridge(
        RP1_WINDOW,
        BOUNDS,
        &foreign_to_rp1(),
        &nvme_bars(),
        4 * M,
        16 * K,
    );
    assert_eq!(
        e,
        Err(SpaceError::NoRoom {
            size: 4 * M,
            align: 16 * K,
            room: RP1_WINDOW
        })
    );
}

#[test]
fn growth_may_go_downwards() {
    // A bridge at 0xd0000000 with free space only below it.
    let win = w(0xd000_0000, 0xd00f_ffff);
    let inner = [sized(0xd000_0000, M)];
    let foreign = [w(0xc000_0000, 0xcfdf_ffff), w(0xd010_0000, 0xfebf_ffff)];
    let p = place_behind_bridge(win, BOUNDS, &foreign, &inner, M, 64 * K).expect("below");
    // The highest free MiB below it: the window grows by one block, not two.
    assert_eq!(p.region, w(0xcff0_0000, 0xcfff_ffff));
    assert_eq!(p.window, w(0xcff0_0000, 0xd00f_ffff));
}

#[test]
fn a_closed_window_opens_on_free_blocks() {
    // A bridge that forwards nothing yet: the first free MiB above everything OVMF placed.
    let mut foreign = foreign_to_rp0();
    foreign.push(RP0_WINDOW);
    let p = place_behind_bridge(
        w(0xfff0_0000, 0xfffff),
        BOUNDS,
        &foreign,
        &[],
        256 * K,
        16 * K,
    )
    .expect("free");
    assert_eq!(p.window, w(0xc160_0000, 0xc16f_ffff));
    assert_eq!(p.region, w(0xc160_0000, 0xc163_ffff));
    assert!(p.grown);
}

#[test]
fn a_window_over_foreign_space_is_refused() {
    // A window that already covers edu: growing it cannot make it right.
    let bad = w(0xc120_0000, 0xc14f_ffff);
    assert_eq!(
        place_behind_bridge(bad, BOUNDS, &foreign_to_rp0(), &igb_bars(), 4 * M, 16 * K),
        Err(SpaceError::WindowConflict {
            window: bad,
            other: sized(0xc140_0000, M)
        })
    );
    let outside = w(0x9000_0000, 0x900f_ffff);
    assert!(matches!(
        room_around(outside, BOUNDS, &[]),
        Err(SpaceError::WindowConflict { .. })
    ));
    assert_eq!(
        place_behind_bridge(RP0_WINDOW, BOUNDS, &[], &[], 0, 16 * K),
        Err(SpaceError::BadRequest {
            size: 0,
            align: 16 * K
        })
    );
    assert_eq!(
        place_behind_bridge(RP0_WINDOW, BOUNDS, &[], &[], 4 * K, 3),
        Err(SpaceError::BadRequest {
            size: 4 * K,
            align: 3
        })
    );
}

#[test]
fn bridges_above_cover_the_grown_window() {
    // A switch: upstream port window 0xc1200000-0xc12fffff; the downstream port grew to 2 MiB.
    let upstream = w(0xc120_0000, 0xc12f_ffff);
    let grown = w(0xc120_0000, 0xc13f_ffff);
    assert_eq!(cover(upstream, grown, BOUNDS, &bus0()), Ok(grown));
    // Already covered: unchanged.
    assert_eq!(cover(grown, upstream, BOUNDS, &bus0()), Ok(grown));
    // Something else decodes the second MiB.
    let other = sized(0xc130_0000, 4 * K);
    assert_eq!(
        cover(upstream, grown, BOUNDS, &[other]),
        Err(SpaceError::WindowConflict {
            window: grown,
            other
        })
    );
    assert!(matches!(
        cover(upstream, w(0xfec0_0000, 0xfecf_ffff), BOUNDS, &[]),
        Err(SpaceError::WindowConflict { .. })
    ));
}

#[test]
fn find_free_skips_used_ranges_and_respects_alignment() {
    let within = w(0x1000, 0xffff);
    let used = [w(0x1000, 0x1fff), w(0x3000, 0x3fff), w(1, 0)];
    assert_eq!(
        find_free(within, &[&used], 0x1000, 0x1000),
        Some(w(0x2000, 0x2fff))
    );
    assert_eq!(
        find_free(within, &[&used], 0x2000, 0x2000),
        Some(w(0x4000, 0x5fff))
    );
    assert_eq!(
        find_free(within, &[&used, &[w(0x4000, 0xffff)]], 0x1000, 0x1000),
        Some(w(0x2000, 0x2fff))
    );
    assert_eq!(
        find_free(within, &[&used, &[w(0x2000, 0xffff)]], 0x1000, 0x1000),
        None
    );
    assert_eq!(find_free(within, &[], 0, 0x1000), None);
    assert_eq!(find_free(within, &[], 0x1000, 0), None);
    assert_eq!(
        find_free(w(u64::MAX - 0xfff, u64::MAX), &[], 0x1000, 0x1000),
        Some(w(u64::MAX - 0xfff, u64::MAX))
    );
    assert_eq!(
        find_free(w(u64::MAX - 0xfff, u64::MAX), &[], 0x2000, 0x1000),
        None
    );
    // Every result lies inside, is aligned, and touches nothing used.
    for size in [0x800u64, 0x1000, 0x3000] {
        for align in [0x800u64, 0x1000, 0x4000] {
            if let Some(r) = find_free(within, &[&used], size, align) {
                assert!(within.contains(&r) && r.base % align == 0 && r.size() == size);
                assert!(used.iter().all(|u| !u.overlaps(&r)));
            }
        }
    }
}

#[test]
fn window_relations() {
    let a = w(0x1000, 0x1fff);
    assert!(a.overlaps(&w(0x1fff, 0x2fff)));
    assert!(!a.overlaps(&w(0x2000, 0x2fff)));
    assert!(!a.overlaps(&w(1, 0)));
    assert!(a.contains(&w(0x1800, 0x1fff)) && a.contains(&w(1, 0)));
    assert!(!a.contains(&w(0x1800, 0x2000)));
    assert_eq!(a.hull(&w(0x4000, 0x4fff)), w(0x1000, 0x4fff));
    assert_eq!(w(1, 0).hull(&a), a);
    assert_eq!(MmioWindow::at(0, 0), None);
    assert_eq!(MmioWindow::at(u64::MAX, 2), None);
}

#[test]
fn find_free_highest_mirrors_find_free() {
    let within = w(0x1000, 0xffff);
    let used = [w(0xf000, 0xffff), w(0xc000, 0xcfff)];
    assert_eq!(
        find_free_highest(within, &[&used], 0x1000, 0x1000),
        Some(w(0xe000, 0xefff))
    );
    assert_eq!(
        find_free_highest(within, &[&used], 0x2000, 0x2000),
        Some(w(0xa000, 0xbfff))
    );
    assert_eq!(
        find_free_highest(within, &[&used, &[w(0x1000, 0xbfff)]], 0x1000, 0x1000),
        Some(w(0xe000, 0xefff))
    );
    assert_eq!(
        find_free_highest(within, &[&[w(0x1800, 0xffff)]], 0x1000, 0x1000),
        None
    );
    assert_eq!(
        find_free_highest(w(0, 0xfff), &[], 0x1000, 0x1000),
        Some(w(0, 0xfff))
    );
    assert_eq!(find_free_highest(w(0, 0xffe), &[], 0x1000, 0x1000), None);
    assert_eq!(
        find_free_highest(w(0, u64::MAX), &[], 0x1000, 0x1000),
        Some(w(u64::MAX - 0xfff, u64::MAX))
    );
    assert_eq!(find_free_highest(within, &[], 0, 0x1000), None);
    for size in [0x800u64, 0x1000, 0x3000] {
        for align in [0x800u64, 0x1000, 0x4000] {
            if let Some(r) = find_free_highest(within, &[&used], size, align) {
                assert!(within.contains(&r) && r.base % align == 0 && r.size() == size);
                assert!(used.iter().all(|u| !u.overlaps(&r)));
            }
        }
    }
}

#[test]
fn growth_uses_the_free_tail_of_the_window() {
    // 00:02.0 with its first MiB open and 768 KiB free at its top: a 1 MiB request starts in
    // that tail and grows the window by one block only.
    let small = w(0xc120_0000, 0xc12f_ffff);
    let p = place_behind_bridge(small, BOUNDS, &foreign_to_rp0(), &igb_bars(), M, 256 * K)
        .expect("room");
    assert_eq!(p.region, w(0xc128_0000, 0xc137_ffff));
    assert_eq!(p.window, w(0xc120_0000, 0xc13f_ffff));
}
