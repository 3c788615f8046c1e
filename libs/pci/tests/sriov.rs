//! SR-IOV capability, VF routing IDs and VF BARs on the igb and nvme PFs.

mod support;

use conduit_pci::sriov::{control, reg};
use conduit_pci::{
    BarKind, Bdf, ConfigAccess, SriovCap, SriovError, vf_bar_address, vf_bar_window, vf_bdf,
};
use support::devices::{IGB_PF, IGB_SRIOV, NVME_PF, NVME_SRIOV, OVMF_VF_BAR0, igb_pf, q35};
use support::fake::{FakeConfig, FakeFn, bdf};

fn igb(cfg: &FakeConfig) -> SriovCap {
    SriovCap::find(cfg, IGB_PF).expect("walk").expect("SR-IOV")
}

fn nvme(cfg: &FakeConfig) -> SriovCap {
    SriovCap::find(cfg, NVME_PF).expect("walk").expect("SR-IOV")
}

fn names(vfs: impl Iterator<Item = Bdf>) -> Vec<String> {
    vfs.map(|b| b.to_string()).collect()
}

#[test]
fn igb_capability_fields() {
    let cfg = q35();
    let s = igb(&cfg);
    assert_eq!((s.pf, s.offset), (IGB_PF, IGB_SRIOV));
    assert_eq!((s.initial_vfs, s.total_vfs, s.num_vfs), (8, 8, 0));
    assert_eq!(
        (s.first_vf_offset, s.vf_stride, s.vf_device_id),
        (0x80, 2, 0x10ca)
    );
    assert_eq!((s.supported_page_sizes, s.system_page_size), (0x553, 0x1));
    assert_eq!(s.system_page_bytes(), Some(4096));
    assert_eq!((s.control, s.status), (0, 0));
    assert!(!s.vf_enabled() && !s.vf_memory_enabled() && !s.ari_capable_hierarchy());
    assert_eq!(s.vfs().expect("valid").count(), 0);
}

#[test]
fn nvme_capability_fields() {
    let cfg = q35();
    let s = nvme(&cfg);
    assert_eq!((s.pf, s.offset), (NVME_PF, NVME_SRIOV));
    assert_eq!((s.initial_vfs, s.total_vfs), (4, 4));
    assert_eq!(
        (s.first_vf_offset, s.vf_stride, s.vf_device_id),
        (1, 1, 0x0010)
    );
    assert_eq!((s.supported_page_sizes, s.system_page_size), (0x553, 0x1));
}

#[test]
fn functions_without_sriov() {
    let cfg = q35();
    assert_eq!(SriovCap::find(&cfg, bdf(0, 2, 0)), Ok(None));
    assert_eq!(SriovCap::find(&cfg, bdf(0, 4, 0)), Ok(None));
    let gone = bdf(1, 0, 1);
    assert_eq!(
        SriovCap::find(&cfg, gone),
        Err(SriovError::Pci(conduit_pci::PciError::NotPresent {
            bdf: gone
        }))
    );
}

#[test]
fn igb_vfs_with_two_and_eight() {
    let mut cfg = q35();
    let mut s = igb(&cfg);
    s.set_num_vfs(&mut cfg, 2).expect("NumVFs=2");
    assert_eq!(cfg.read16(IGB_PF, IGB_SRIOV + reg::NUM_VFS), 2);
    assert_eq!(names(s.vfs().expect("valid")), ["01:10.0", "01:10.2"]);
    assert_eq!(s.vf(1), Ok(bdf(1, 0x10, 2)));
    assert_eq!(
        s.vf(2),
        Err(SriovError::VfIndexOutOfRange {
            pf: IGB_PF,
            index: 2,
            num_vfs: 2
        })
    );
    assert_eq!(s.vfs_need_ari_forwarding(), Ok(true));
    s.set_num_vfs(&mut cfg, 8).expect("NumVFs=8");
    assert_eq!(
        names(s.vfs().expect("valid")),
        [
            "01:10.0", "01:10.2", "01:10.4", "01:10.6", "01:11.0", "01:11.2", "01:11.4", "01:11.6"
        ]
    );
    assert_eq!(s.vf_index(bdf(1, 0x11, 2)), Some(5));
    assert_eq!(s.vf_index(bdf(1, 0x11, 3)), None, "between VFs");
    assert_eq!(s.vf_index(bdf(1, 0x12, 0)), None, "past the last VF");
    assert_eq!(s.vf_index(IGB_PF), None);
    // The routing IDs are what ARI reads as functions 0x80, 0x82, ...
    assert_eq!(s.vf(0).map(Bdf::ari_function), Ok(0x80));
}

#[test]
fn nvme_vfs_follow_the_pf() {
    let mut cfg = q35();
    let mut s = nvme(&cfg);
    s.set_num_vfs(&mut cfg, 2).expect("NumVFs=2");
    assert_eq!(names(s.vfs().expect("valid")), ["02:00.1", "02:00.2"]);
    s.set_num_vfs(&mut cfg, 4).expect("NumVFs=4");
    assert_eq!(
        names(s.vfs().expect("valid")),
        ["02:00.1", "02:00.2", "02:00.3", "02:00.4"]
    );
    assert_eq!(s.vfs_need_ari_forwarding(), Ok(false));
    assert_eq!(s.vf_index(bdf(2, 0, 3)), Some(2));
    assert_eq!(
        s.set_num_vfs(&mut cfg, 5),
        Err(SriovError::TooManyVfs {
            pf: NVME_PF,
            requested: 5,
            total: 4
        })
    );
    assert_eq!(s.num_vfs, 4, "rejected request did not write");
}

#[test]
fn vf_routing_ids_cross_bus_boundaries() {
    let pf = bdf(1, 0, 0);
    assert_eq!(vf_bdf(pf, 0x80, 2, 0), Some(bdf(1, 0x10, 0)));
    assert_eq!(vf_bdf(pf, 0x80, 2, 63), Some(bdf(1, 0x1f, 6)));
    assert_eq!(vf_bdf(pf, 0x80, 2, 64), Some(bdf(2, 0, 0)), "bus increases");
    assert_eq!(
        vf_bdf(pf, 0x80, 2, 200),
        Some(Bdf::from_routing_id(0x100 + 0x80 + 400))
    );
    assert_eq!(vf_bdf(bdf(0xff, 0x1f, 0), 0x80, 2, 0), None, "past ff:1f.7");
    assert_eq!(
        vf_bdf(bdf(0xff, 0, 0), 0xff, 0, 0),
        Some(bdf(0xff, 0x1f, 7))
    );
}

#[test]
fn routing_overflow_and_zero_stride_are_rejected_and_reset() {
    let mut cfg = FakeConfig::default();
    let pf = bdf(0xff, 0x1f, 0);
    cfg.insert(pf, igb_pf());
    let mut s = SriovCap::find(&cfg, pf).expect("walk").expect("SR-IOV");
    assert_eq!(
        s.set_num_vfs(&mut cfg, 1),
        Err(SriovError::RoutingIdOverflow { pf, index: 0 })
    );
    assert_eq!(s.num_vfs, 0, "NumVFs written back to 0");
    assert_eq!(cfg.read16(pf, IGB_SRIOV + reg::NUM_VFS), 0);

    let mut cfg = q35();
    cfg.func(IGB_PF).set16(IGB_SRIOV + reg::VF_STRIDE, 0);
    let mut s = igb(&cfg);
    s.set_num_vfs(&mut cfg, 1).expect("one VF needs no stride");
    assert_eq!(
        s.set_num_vfs(&mut cfg, 2),
        Err(SriovError::ZeroVfStride {
            pf: IGB_PF,
            num_vfs: 2
        })
    );
    assert_eq!(cfg.read16(IGB_PF, IGB_SRIOV + reg::NUM_VFS), 0);

    let mut cfg = q35();
    cfg.func(IGB_PF).set16(IGB_SRIOV + reg::FIRST_VF_OFFSET, 0);
    let mut s = igb(&cfg);
    assert_eq!(
        s.set_num_vfs(&mut cfg, 1),
        Err(SriovError::ZeroFirstVfOffset { pf: IGB_PF })
    );
}

/// A device whose First VF Offset / VF Stride depend on NumVFs and ARI Capable Hierarchy, as
/// §9.3.3.9/§9.3.3.10 allow: without ARI, VFs are packed as devices 0x10.. with stride 8.
fn layout_hook(f: &mut FakeFn, offset: u16, _value: u32) {
    let Some(s) = f.sriov else { return };
    if offset != s + reg::NUM_VFS && offset != s + reg::CONTROL {
        return;
    }
    let ari = f.get16(s + reg::CONTROL) & control::ARI_CAPABLE_HIERARCHY != 0;
    let num = f.get16(s + reg::NUM_VFS);
    let (first, stride) = match (ari, num > 4) {
        (true, false) => (0x80, 2),
        (true, true) => (0x40, 1),
        (false, _) => (0x80, 8),
    };
    f.set16(s + reg::FIRST_VF_OFFSET, first);
    f.set16(s + reg::VF_STRIDE, stride);
}

#[test]
fn offset_and_stride_are_reread_after_numvfs_and_ari_changes() {
    let mut cfg = q35();
    cfg.func(IGB_PF).hook = Some(layout_hook);
    cfg.func(IGB_PF)
        .set16(IGB_SRIOV + reg::CONTROL, control::ARI_CAPABLE_HIERARCHY);
    let mut s = igb(&cfg);
    s.set_num_vfs(&mut cfg, 2).expect("2");
    assert_eq!((s.first_vf_offset, s.vf_stride), (0x80, 2));
    assert_eq!(names(s.vfs().expect("valid")), ["01:10.0", "01:10.2"]);
    s.set_num_vfs(&mut cfg, 6).expect("6");
    assert_eq!(
        (s.first_vf_offset, s.vf_stride),
        (0x40, 1),
        "changed by the NumVFs write"
    );
    assert_eq!(
        names(s.vfs().expect("valid")).first().map(String::as_str),
        Some("01:08.0")
    );
    s.set_ari_capable_hierarchy(&mut cfg, false)
        .expect("ARI off");
    assert!(!s.ari_capable_hierarchy());
    assert_eq!(
        (s.first_vf_offset, s.vf_stride),
        (0x80, 8),
        "changed by the control write"
    );
    assert_eq!(
        names(s.vfs().expect("valid")).get(1).map(String::as_str),
        Some("01:11.0")
    );
}

#[test]
fn changes_need_vf_enable_clear() {
    let mut cfg = q35();
    let mut s = nvme(&cfg);
    assert_eq!(
        s.enable_vfs(&mut cfg, false),
        Err(SriovError::NoVfs { pf: NVME_PF })
    );
    s.set_num_vfs(&mut cfg, 2).expect("2");
    s.enable_vfs(&mut cfg, true).expect("enable");
    assert!(s.vf_enabled() && s.vf_memory_enabled());
    assert_eq!(cfg.read16(NVME_PF, NVME_SRIOV + reg::CONTROL) & 0x9, 0x9);
    let busy = Err(SriovError::VfEnabled { pf: NVME_PF });
    assert_eq!(s.set_num_vfs(&mut cfg, 3), busy);
    assert_eq!(s.set_ari_capable_hierarchy(&mut cfg, true), busy);
    assert_eq!(s.set_system_page_size(&mut cfg, 8192), busy);
    s.disable_vfs(&mut cfg).expect("disable");
    assert!(!s.vf_enabled() && !s.vf_memory_enabled());
    s.set_num_vfs(&mut cfg, 3).expect("now allowed");
}

#[test]
fn control_writes_keep_rw1c_status() {
    let mut cfg = q35();
    cfg.func(IGB_PF).set16(IGB_SRIOV + reg::STATUS, 1); // VF Migration Status latched
    let mut s = igb(&cfg);
    s.set_ari_capable_hierarchy(&mut cfg, true).expect("ARI on");
    assert_eq!(s.status, 1);
    assert_eq!(cfg.read16(IGB_PF, IGB_SRIOV + reg::STATUS), 1);
}

#[test]
fn system_page_size() {
    let mut cfg = q35();
    let mut s = igb(&cfg);
    s.set_system_page_size(&mut cfg, 8192)
        .expect("8K is in 0x553");
    assert_eq!(
        (s.system_page_size, s.system_page_bytes()),
        (0x2, Some(8192))
    );
    for bad in [4096 * 4, 3000, 0, 2048, 1 << 50] {
        assert_eq!(
            s.set_system_page_size(&mut cfg, bad),
            Err(SriovError::UnsupportedPageSize {
                pf: IGB_PF,
                page_size: bad
            }),
            "{bad:#x}"
        );
    }
    s.set_system_page_size(&mut cfg, 4096).expect("back to 4K");
    assert_eq!(s.system_page_bytes(), Some(4096));
}

#[test]
fn igb_vf_bar_sizing() {
    let mut cfg = q35();
    let mut s = igb(&cfg);
    s.set_num_vfs(&mut cfg, 2).expect("2");
    let bars = s.size_vf_bars(&mut cfg).expect("sized");
    let ids: Vec<u8> = bars.iter().map(|b| b.index).collect();
    assert_eq!(ids, [0, 3]);
    for b in bars.iter() {
        assert_eq!(
            (b.kind, b.prefetchable, b.size),
            (BarKind::Memory64, true, 16 << 10),
            "VF BAR{}",
            b.index
        );
        assert_eq!(vf_bar_window(b, s.num_vfs), Some(32 << 10));
    }
    let b0 = bars.get(0).expect("VF BAR0");
    assert_eq!(b0.address, OVMF_VF_BAR0, "where OVMF left it: above 4 GiB");
    assert_eq!(vf_bar_address(b0, 1), Some(OVMF_VF_BAR0 + (16 << 10)));
    assert_eq!(
        bars.get(3).map(|b| b.address),
        Some(OVMF_VF_BAR0 + (128 << 10))
    );
    assert_eq!(vf_bar_window(b0, 8), Some(128 << 10));
}

#[test]
fn vf_bar_sizing_turns_vf_mse_off_and_restores_it() {
    let mut cfg = q35();
    let mut s = nvme(&cfg);
    s.set_num_vfs(&mut cfg, 4).expect("4");
    s.enable_vfs(&mut cfg, true).expect("enable with VF MSE");
    let before = cfg.get(NVME_PF).bytes.clone();
    cfg.writes.clear();
    let bars = s.size_vf_bars(&mut cfg).expect("sized");
    let b0 = bars.get(0).expect("VF BAR0");
    assert_eq!(
        (b0.kind, b0.prefetchable, b0.size),
        (BarKind::Memory64, false, 16 << 10)
    );
    assert_eq!(bars.iter().count(), 1);
    assert_eq!(vf_bar_window(b0, 4), Some(64 << 10));
    assert!(
        cfg.decode_violations.is_empty(),
        "{:?}",
        cfg.decode_violations
    );
    let ctl: Vec<u32> = cfg
        .writes
        .iter()
        .filter(|w| w.1 == NVME_SRIOV + reg::CONTROL)
        .map(|w| w.2)
        .collect();
    assert_eq!(ctl, [0x1, 0x9], "VF MSE off, then restored");
    assert_eq!(cfg.get(NVME_PF).bytes, before);
    assert!(s.vf_memory_enabled());
}

#[test]
fn writing_vf_bars() {
    let mut cfg = q35();
    let mut s = igb(&cfg);
    s.set_num_vfs(&mut cfg, 8).expect("8");
    s.set_vf_memory(&mut cfg, true)
        .expect("MSE on, to check it is turned off");
    let bars = s.size_vf_bars(&mut cfg).expect("sized");
    let b0 = *bars.get(0).expect("VF BAR0");
    let b3 = *bars.get(3).expect("VF BAR3");
    let bad = |index, address| {
        Err(SriovError::BadVfBarAddress {
            pf: IGB_PF,
            index,
            address,
        })
    };
    assert_eq!(
        s.write_vf_bar(&mut cfg, &b0, 0xc000_2000),
        bad(0, 0xc000_2000),
        "not 16K aligned"
    );
    assert_eq!(
        s.write_vf_bar(&mut cfg, &b0, !0x3fff_u64),
        bad(0, !0x3fff_u64)
    );
    let w0 = s
        .write_vf_bar(&mut cfg, &b0, 0xc000_0000)
        .expect("below 4 GiB");
    let w3 = s
        .write_vf_bar(&mut cfg, &b3, 0xc002_0000)
        .expect("below 4 GiB");
    assert_eq!((w0.address, w3.address), (0xc000_0000, 0xc002_0000));
    assert!(cfg.decode_violations.is_empty());
    assert!(s.vf_memory_enabled(), "restored");
    assert_eq!(
        cfg.read32(IGB_PF, IGB_SRIOV + reg::VF_BAR0 + 4),
        0,
        "upper dword cleared"
    );
    let again = s.size_vf_bars(&mut cfg).expect("sized");
    assert_eq!(again.get(0).map(|b| b.address), Some(0xc000_0000));
    assert_eq!(again.get(3).map(|b| b.address), Some(0xc002_0000));
    // A 32-bit VF BAR whose window would cross 4 GiB.
    let mut b32 = b0;
    b32.kind = BarKind::Memory32;
    assert_eq!(
        s.write_vf_bar(&mut cfg, &b32, 0xffff_c000),
        bad(0, 0xffff_c000)
    );
}

#[test]
fn io_vf_bar_is_rejected() {
    let mut cfg = q35();
    cfg.func(IGB_PF)
        .io_bar_at(IGB_SRIOV + reg::VF_BAR0 + 8, 32, 0);
    let mut s = igb(&cfg);
    assert_eq!(
        s.size_vf_bars(&mut cfg),
        Err(SriovError::IoVfBar {
            pf: IGB_PF,
            index: 2
        })
    );
}
