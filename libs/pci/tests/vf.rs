//! VFs as functions: identity from the PF when their ID registers read 0xffff, and the BARs each
//! VF decodes.

mod support;

use conduit_pci::{
    Bar, BarKind, Bars, Bdf, ConfigAccess, SriovCap, VfConfig, cap_id, capabilities,
    ext_capabilities, read_header, vf_function_bars,
};
use support::devices::{IGB_PF, q35};
use support::fake::{FakeConfig, FakeFn, bdf};

const VF1: Bdf = Bdf::from_devfn(1, 0x82);

/// An igb VF as the spec says it reads: Vendor/Device ID 0xffff, class 02:00:00, MSI-X and PCIe
/// capabilities, ARI extended capability.
fn spec_vf() -> FakeFn {
    let mut f = FakeFn::new(0xffff, 0xffff, 0x020000, 0x00);
    f.cap_list(0x70);
    f.cap(0x70, cap_id::MSIX, 0xa0);
    f.cap(0xa0, cap_id::PCIE, 0);
    f.ext_cap(0x100, 0x000e, 1, 0);
    f
}

#[test]
fn a_vf_reading_ffff_gets_its_identity_from_the_pf() {
    let mut cfg = q35();
    cfg.insert(VF1, spec_vf());
    assert!(
        read_header(&cfg, VF1).is_err(),
        "the generic reader skips it"
    );
    let view = VfConfig::new(&mut cfg, VF1, 0x8086, 0x10ca);
    assert!(view.answers());
    assert_eq!(view.raw_id(), 0xffff_ffff);
    let h = read_header(&view, VF1).expect("present through the view");
    assert_eq!(
        (h.vendor_id, h.device_id, h.class.base),
        (0x8086, 0x10ca, 0x02)
    );
    let caps: Vec<u8> = capabilities(&view, VF1)
        .map(|c| c.expect("ok").id)
        .collect();
    assert_eq!(caps, [cap_id::MSIX, cap_id::PCIE]);
    let ext: Vec<u16> = ext_capabilities(&view, VF1)
        .map(|c| c.expect("ok").id)
        .collect();
    assert_eq!(ext, [0x000e]);
    // Other functions read through unchanged.
    assert_eq!(view.read32(IGB_PF, 0), 0x10c9_8086);
}

#[test]
fn a_vf_with_real_ids_and_an_absent_vf() {
    let mut cfg = q35();
    cfg.insert(VF1, FakeFn::new(0x8086, 0x10ca, 0x020000, 0x00));
    let view = VfConfig::new(&mut cfg, VF1, 0x8086, 0x10ca);
    assert_eq!(view.raw_id(), 0x10ca_8086);
    assert_eq!(read_header(&view, VF1).map(|h| h.device_id), Ok(0x10ca));
    let absent = bdf(1, 0x10, 4);
    let view = VfConfig::new(&mut cfg, absent, 0x8086, 0x10ca);
    assert!(!view.answers());
    assert!(read_header(&view, absent).is_err());
}

#[test]
fn writes_pass_through_the_view() {
    let mut cfg = q35();
    cfg.insert(VF1, spec_vf());
    let mut view = VfConfig::new(&mut cfg, VF1, 0x8086, 0x10ca);
    view.write32(VF1, 0x04, 0x0006);
    let cfg: &mut FakeConfig = view.into_inner();
    assert_eq!(cfg.get(VF1).get16(0x04), 0x0006);
}

#[test]
fn each_vf_decodes_its_slice_of_every_vf_bar() {
    let mut cfg = q35();
    let mut igb = SriovCap::find(&cfg, IGB_PF).expect("walk").expect("igb");
    igb.set_num_vfs(&mut cfg, 8).expect("8");
    let bars = igb.size_vf_bars(&mut cfg).expect("sized");
    igb.write_vf_bar(&mut cfg, bars.get(0).expect("BAR0"), 0xc124_4000)
        .expect("programmed");
    igb.write_vf_bar(&mut cfg, bars.get(3).expect("BAR3"), 0xc126_4000)
        .expect("programmed");
    let programmed = igb.size_vf_bars(&mut cfg).expect("re-read");
    assert_eq!(programmed.get(0).map(|b| b.address), Some(0xc124_4000));
    assert_eq!(programmed.get(3).map(|b| b.address), Some(0xc126_4000));
    for i in 0..8u16 {
        let vf = vf_function_bars(&programmed, i).expect("in range");
        let a0 = vf.get(0).expect("BAR0");
        let a3 = vf.get(3).expect("BAR3");
        assert_eq!(
            (a0.address, a0.size, a0.kind, a0.prefetchable),
            (
                0xc124_4000 + u64::from(i) * 0x4000,
                0x4000,
                BarKind::Memory64,
                true
            )
        );
        assert_eq!(a3.address, 0xc126_4000 + u64::from(i) * 0x4000);
        assert!(a3.address + a3.size <= 0x1_0000_0000);
        assert!(vf.get(1).is_none() && vf.get(2).is_none());
    }
}

#[test]
fn vf_bars_that_would_overflow_are_refused() {
    let bar = Bar {
        index: 0,
        kind: BarKind::Memory64,
        prefetchable: false,
        address: !0x3fff,
        size: 0x4000,
    };
    let bars = Bars::from_bars([bar]);
    assert_eq!(
        vf_function_bars(&bars, 0).and_then(|b| b.get(0).copied()),
        Some(bar)
    );
    assert_eq!(vf_function_bars(&bars, 1), None);
    assert_eq!(vf_function_bars(&Bars::default(), 3), Some(Bars::default()));
}
