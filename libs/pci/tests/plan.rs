//! VF BAR window placement below 4 GiB.

mod support;

use conduit_pci::{MmioWindow, PlanError, SriovCap, VfBarPlacement, VfBarRequest, plan_vf_bars};
use support::devices::{IGB_PF, NVME_PF, q35};

const K16: u64 = 16 << 10;

fn req(pf: conduit_pci::Bdf, bar_index: u8, per_vf_size: u64, num_vfs: u16) -> VfBarRequest {
    VfBarRequest {
        pf,
        bar_index,
        per_vf_size,
        num_vfs,
    }
}

fn placed(out: &[Option<VfBarPlacement>]) -> Vec<(u64, u64)> {
    out.iter()
        .map(|p| p.map(|p| (p.base, p.size)).expect("placed"))
        .collect()
}

fn assert_sane(window: MmioWindow, out: &[Option<VfBarPlacement>]) {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for p in out.iter().flatten() {
        assert_eq!(
            p.base % p.request.per_vf_size,
            0,
            "natural alignment of {p:?}"
        );
        assert!(
            p.base >= window.base && p.limit() <= window.limit,
            "inside window: {p:?}"
        );
        assert!(p.limit() <= 0xffff_ffff, "below 4 GiB");
        for &(b, l) in &spans {
            assert!(
                p.limit() < b || p.base > l,
                "overlap {p:?} with [{b:#x}, {l:#x}]"
            );
        }
        spans.push((p.base, p.limit()));
    }
}

#[test]
fn q35_vf_bars_into_a_root_port_window() {
    // End to end on the fake machine: size through SR-IOV, plan, program, read back.
    let mut cfg = q35();
    let mut igb = SriovCap::find(&cfg, IGB_PF).expect("walk").expect("igb");
    let mut nvme = SriovCap::find(&cfg, NVME_PF).expect("walk").expect("nvme");
    igb.set_num_vfs(&mut cfg, 8).expect("8");
    nvme.set_num_vfs(&mut cfg, 4).expect("4");
    let igb_bars = igb.size_vf_bars(&mut cfg).expect("sized");
    let nvme_bars = nvme.size_vf_bars(&mut cfg).expect("sized");
    let mut requests: Vec<VfBarRequest> = igb_bars
        .iter()
        .map(|b| VfBarRequest::new(IGB_PF, b, igb.num_vfs))
        .collect();
    requests.extend(
        nvme_bars
            .iter()
            .map(|b| VfBarRequest::new(NVME_PF, b, nvme.num_vfs)),
    );
    assert_eq!(requests.len(), 3);

    let window = MmioWindow {
        base: 0xc020_0000,
        limit: 0xc02f_ffff,
    };
    let mut out = [None; 3];
    let plan = plan_vf_bars(window, &requests, &mut out).expect("fits");
    assert_eq!(
        placed(plan),
        [
            (0xc020_0000, 128 << 10),
            (0xc022_0000, 128 << 10),
            (0xc024_0000, 64 << 10)
        ]
    );
    assert_sane(window, plan);

    for p in plan.iter().flatten() {
        let (cap, bars) = if p.request.pf == IGB_PF {
            (&mut igb, &igb_bars)
        } else {
            (&mut nvme, &nvme_bars)
        };
        let bar = bars.get(p.request.bar_index).expect("sized BAR");
        cap.write_vf_bar(&mut cfg, bar, p.base).expect("programmed");
    }
    let after = igb.size_vf_bars(&mut cfg).expect("sized");
    assert_eq!(after.get(0).map(|b| b.address), Some(0xc020_0000));
    assert_eq!(after.get(3).map(|b| b.address), Some(0xc022_0000));
    let after = nvme.size_vf_bars(&mut cfg).expect("sized");
    assert_eq!(after.get(0).map(|b| b.address), Some(0xc024_0000));
    assert!(cfg.decode_violations.is_empty());
}

#[test]
fn larger_alignments_go_first_and_padding_is_only_in_front() {
    let window = MmioWindow {
        base: 0x8000_1000,
        limit: 0x80ff_ffff,
    };
    let requests = [
        req(NVME_PF, 0, 4096, 3),
        req(IGB_PF, 0, 1 << 20, 2),
        req(IGB_PF, 3, K16, 5),
    ];
    let mut out = [None; 3];
    let plan = plan_vf_bars(window, &requests, &mut out).expect("fits");
    assert_eq!(
        placed(plan),
        [
            (0x8031_4000, 0x3000),
            (0x8010_0000, 2 << 20),
            (0x8030_0000, 5 * K16)
        ],
        "1 MiB first at the first 1 MiB boundary, then 16K, then 4K"
    );
    assert_sane(window, plan);
}

#[test]
fn exact_fit_and_one_byte_short() {
    let requests = [req(IGB_PF, 0, K16, 8), req(IGB_PF, 3, K16, 8)];
    let exact = MmioWindow {
        base: 0xd000_0000,
        limit: 0xd003_ffff,
    };
    let mut out = [None; 2];
    let plan = plan_vf_bars(exact, &requests, &mut out).expect("exact fit");
    assert_eq!(
        placed(plan),
        [(0xd000_0000, 128 << 10), (0xd002_0000, 128 << 10)]
    );

    let short = MmioWindow {
        base: 0xd000_0000,
        limit: 0xd003_fffe,
    };
    assert_eq!(
        plan_vf_bars(short, &requests, &mut out),
        Err(PlanError::WindowTooSmall {
            index: 1,
            size: 128 << 10,
            align: K16,
            needed: 256 << 10,
            available: (256 << 10) - 1,
        })
    );
    // Misaligned base: the padding counts.
    let shifted = MmioWindow {
        base: 0xd000_0004,
        limit: 0xd004_0003,
    };
    match plan_vf_bars(shifted, &requests, &mut out) {
        Err(PlanError::WindowTooSmall {
            needed, available, ..
        }) => {
            assert_eq!((needed, available), ((256 << 10) + K16 - 4, 256 << 10));
        }
        other => panic!("expected WindowTooSmall, got {other:?}"),
    }
}

#[test]
fn window_must_be_below_4g_and_non_empty() {
    let requests = [req(IGB_PF, 0, K16, 2)];
    let mut out = [None; 1];
    let above = MmioWindow {
        base: 0xe0_0000_0000,
        limit: 0xe0_0fff_ffff,
    };
    assert_eq!(
        plan_vf_bars(above, &requests, &mut out),
        Err(PlanError::WindowAbove4G {
            limit: 0xe0_0fff_ffff
        })
    );
    let straddle = MmioWindow {
        base: 0xffff_0000,
        limit: 0x1_0000_ffff,
    };
    assert!(matches!(
        plan_vf_bars(straddle, &requests, &mut out),
        Err(PlanError::WindowAbove4G { .. })
    ));
    let top = MmioWindow {
        base: 0xffff_8000,
        limit: 0xffff_ffff,
    };
    let plan = plan_vf_bars(top, &requests, &mut out).expect("the last 32K below 4 GiB");
    assert_eq!(placed(plan), [(0xffff_8000, 2 * K16)]);
    let empty = MmioWindow {
        base: 0xd000_0000,
        limit: 0xcfff_ffff,
    };
    assert_eq!(empty.size(), 0);
    assert_eq!(
        plan_vf_bars(empty, &requests, &mut out),
        Err(PlanError::EmptyWindow {
            base: 0xd000_0000,
            limit: 0xcfff_ffff
        })
    );
}

#[test]
fn near_the_top_alignment_does_not_overflow() {
    let requests = [req(IGB_PF, 0, 1 << 31, 1)];
    let mut out = [None; 1];
    let w = MmioWindow {
        base: 0x8000_0001,
        limit: 0xffff_ffff,
    };
    assert!(matches!(
        plan_vf_bars(w, &requests, &mut out),
        Err(PlanError::WindowTooSmall { index: 0, .. })
    ));
}

#[test]
fn bad_requests() {
    let w = MmioWindow {
        base: 0xc000_0000,
        limit: 0xcfff_ffff,
    };
    let mut out = [None; 2];
    assert_eq!(
        plan_vf_bars(w, &[req(IGB_PF, 0, 3 << 12, 1)], &mut out),
        Err(PlanError::BadSize {
            index: 0,
            size: 3 << 12
        })
    );
    assert_eq!(
        plan_vf_bars(w, &[req(IGB_PF, 0, K16, 1), req(IGB_PF, 3, 0, 1)], &mut out),
        Err(PlanError::BadSize { index: 1, size: 0 })
    );
    assert_eq!(
        plan_vf_bars(w, &[req(IGB_PF, 0, K16, 0)], &mut out),
        Err(PlanError::BadCount { index: 0 })
    );
    assert_eq!(
        plan_vf_bars(w, &[req(IGB_PF, 0, 1 << 63, 2)], &mut out),
        Err(PlanError::BadCount { index: 0 })
    );
    let three = [req(IGB_PF, 0, K16, 1); 3];
    assert_eq!(
        plan_vf_bars(w, &three, &mut out),
        Err(PlanError::OutputTooShort {
            needed: 3,
            capacity: 2
        })
    );
    let plan = plan_vf_bars(w, &[], &mut out).expect("nothing to place");
    assert!(plan.is_empty());
}
