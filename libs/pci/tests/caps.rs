//! Capability walks on the q35 devices and on hostile configuration spaces.

mod support;

use conduit_pci::pcie::{self, AriCap, PortType};
use conduit_pci::{
    CapError, Capability, ExtCapability, cap_id, capabilities, ext_cap_id, ext_capabilities,
    find_capability, find_ext_capability,
};
use support::devices::{IGB_PF, NVME_PF, RP0, q35};
use support::fake::{FakeConfig, FakeFn, bdf};

fn legacy(cfg: &FakeConfig, b: conduit_pci::Bdf) -> Vec<Result<Capability, CapError>> {
    capabilities(cfg, b).collect()
}

fn extended(cfg: &FakeConfig, b: conduit_pci::Bdf) -> Vec<Result<ExtCapability, CapError>> {
    ext_capabilities(cfg, b).collect()
}

fn cap(id: u8, offset: u16) -> Result<Capability, CapError> {
    Ok(Capability { id, offset })
}

fn ext(id: u16, version: u8, offset: u16) -> Result<ExtCapability, CapError> {
    Ok(ExtCapability {
        id,
        version,
        offset,
    })
}

#[test]
fn igb_capability_chains() {
    let cfg = q35();
    assert_eq!(
        legacy(&cfg, IGB_PF),
        [
            cap(0x01, 0x40),
            cap(cap_id::MSI, 0x50),
            cap(cap_id::MSIX, 0x70),
            cap(cap_id::PCIE, 0xa0)
        ]
    );
    assert_eq!(
        extended(&cfg, IGB_PF),
        [
            ext(ext_cap_id::AER, 2, 0x100),
            ext(ext_cap_id::ARI, 1, 0x150),
            ext(ext_cap_id::SRIOV, 1, 0x160)
        ]
    );
    assert_eq!(find_capability(&cfg, IGB_PF, cap_id::MSIX), Ok(Some(0x70)));
    assert_eq!(find_capability(&cfg, IGB_PF, cap_id::MSI), Ok(Some(0x50)));
    assert_eq!(find_capability(&cfg, IGB_PF, cap_id::PCIE), Ok(Some(0xa0)));
    assert_eq!(find_capability(&cfg, IGB_PF, cap_id::VENDOR), Ok(None));
    assert_eq!(
        find_ext_capability(&cfg, IGB_PF, ext_cap_id::SRIOV),
        Ok(Some(0x160))
    );
    assert_eq!(
        find_ext_capability(&cfg, IGB_PF, ext_cap_id::ARI),
        Ok(Some(0x150))
    );
    assert_eq!(find_ext_capability(&cfg, IGB_PF, ext_cap_id::ACS), Ok(None));
}

#[test]
fn nvme_and_root_port_chains() {
    let cfg = q35();
    assert_eq!(
        extended(&cfg, NVME_PF),
        [
            ext(ext_cap_id::ARI, 1, 0x100),
            ext(ext_cap_id::SRIOV, 1, 0x120)
        ]
    );
    assert_eq!(find_capability(&cfg, NVME_PF, cap_id::MSIX), Ok(Some(0x40)));
    assert_eq!(
        find_ext_capability(&cfg, RP0, ext_cap_id::ACS),
        Ok(Some(0x148))
    );
    assert_eq!(
        find_ext_capability(&cfg, RP0, ext_cap_id::AER),
        Ok(Some(0x100))
    );
}

#[test]
fn functions_without_lists() {
    let cfg = q35();
    // edu: no Status.CapList, no extended header.
    let edu = bdf(0, 4, 0);
    assert_eq!(legacy(&cfg, edu), []);
    assert_eq!(extended(&cfg, edu), []);
    assert_eq!(find_capability(&cfg, edu, cap_id::MSI), Ok(None));
    assert_eq!(find_ext_capability(&cfg, edu, ext_cap_id::SRIOV), Ok(None));
}

#[test]
fn absent_function_is_one_error() {
    let cfg = q35();
    let b = bdf(9, 0, 0);
    assert_eq!(legacy(&cfg, b), [Err(CapError::NotPresent { bdf: b })]);
    assert_eq!(extended(&cfg, b), [Err(CapError::NotPresent { bdf: b })]);
    assert_eq!(
        find_capability(&cfg, b, cap_id::MSI),
        Err(CapError::NotPresent { bdf: b })
    );
    assert_eq!(
        find_ext_capability(&cfg, b, ext_cap_id::SRIOV),
        Err(CapError::NotPresent { bdf: b })
    );
}

fn with(f: FakeFn) -> (FakeConfig, conduit_pci::Bdf) {
    let b = bdf(7, 0, 0);
    let mut cfg = FakeConfig::default();
    cfg.insert(b, f);
    (cfg, b)
}

#[test]
fn legacy_loops_end_with_loop_error() {
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.cap_list(0x40);
    f.cap(0x40, cap_id::PCIE, 0x50);
    f.cap(0x50, cap_id::MSI, 0x40);
    let (cfg, b) = with(f);
    assert_eq!(
        legacy(&cfg, b),
        [
            cap(cap_id::PCIE, 0x40),
            cap(cap_id::MSI, 0x50),
            Err(CapError::Loop {
                bdf: b,
                offset: 0x40
            })
        ]
    );
    assert_eq!(
        find_capability(&cfg, b, cap_id::MSIX),
        Err(CapError::Loop {
            bdf: b,
            offset: 0x40
        })
    );
    assert_eq!(
        find_capability(&cfg, b, cap_id::MSI),
        Ok(Some(0x50)),
        "found before the loop"
    );

    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.cap_list(0xfc);
    f.cap(0xfc, 0x09, 0xfc);
    let (cfg, b) = with(f);
    assert_eq!(
        legacy(&cfg, b),
        [
            cap(0x09, 0xfc),
            Err(CapError::Loop {
                bdf: b,
                offset: 0xfc
            })
        ]
    );
}

#[test]
fn legacy_pointers_out_of_range_or_misaligned() {
    for (ptr, err) in [
        (0x3c_u8, "range"),
        (0x04, "range"),
        (0x41, "align"),
        (0x42, "align"),
        (0xff, "align"),
    ] {
        let mut f = FakeFn::new(0x1234, 1, 0, 0);
        f.cap_list(0x40);
        f.cap(0x40, cap_id::MSI, ptr);
        let (cfg, b) = with(f);
        let p = u16::from(ptr);
        let want = if err == "range" {
            CapError::OutOfRange { bdf: b, pointer: p }
        } else {
            CapError::Misaligned { bdf: b, pointer: p }
        };
        assert_eq!(
            legacy(&cfg, b),
            [cap(cap_id::MSI, 0x40), Err(want)],
            "next {ptr:#x}"
        );
        // The first pointer is checked the same way.
        let mut f = FakeFn::new(0x1234, 1, 0, 0);
        f.cap_list(ptr);
        let (cfg, b) = with(f);
        assert_eq!(legacy(&cfg, b).len(), 1);
        assert!(legacy(&cfg, b)[0].is_err());
    }
}

#[test]
fn all_ones_config_space() {
    // A function whose every byte reads 0xff except a plausible vendor ID: the walk must stop.
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.bytes[2..].fill(0xff);
    let (cfg, b) = with(f);
    let l = legacy(&cfg, b);
    assert_eq!(l.len(), 1);
    assert!(matches!(
        l[0],
        Err(CapError::Misaligned { pointer: 0xff, .. })
    ));
    assert_eq!(
        extended(&cfg, b),
        [],
        "all-ones at 0x100 means no extended space"
    );
    // Capability header gone all-ones mid-walk.
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.cap_list(0x40);
    f.cap(0x40, cap_id::MSI, 0x80);
    f.set16(0x80, 0xffff);
    let (cfg, b) = with(f);
    assert_eq!(
        legacy(&cfg, b),
        [
            cap(cap_id::MSI, 0x40),
            Err(CapError::AllOnes {
                bdf: b,
                offset: 0x80
            })
        ]
    );
}

#[test]
fn extended_list_hostile_pointers() {
    let mk = |next: u16| {
        let mut f = FakeFn::new(0x1234, 1, 0, 0);
        f.ext_cap(0x100, ext_cap_id::AER, 2, 0x200);
        f.ext_cap(0x200, ext_cap_id::ARI, 1, next);
        with(f)
    };
    let (cfg, b) = mk(0x100);
    assert_eq!(
        extended(&cfg, b),
        [
            ext(1, 2, 0x100),
            ext(ext_cap_id::ARI, 1, 0x200),
            Err(CapError::Loop {
                bdf: b,
                offset: 0x100
            })
        ]
    );
    let (cfg, b) = mk(0x200);
    assert_eq!(
        extended(&cfg, b).last(),
        Some(&Err(CapError::Loop {
            bdf: b,
            offset: 0x200
        }))
    );
    let (cfg, b) = mk(0x0fc);
    assert_eq!(
        extended(&cfg, b).last(),
        Some(&Err(CapError::OutOfRange {
            bdf: b,
            pointer: 0xfc
        }))
    );
    let (cfg, b) = mk(0x40);
    assert_eq!(
        extended(&cfg, b).last(),
        Some(&Err(CapError::OutOfRange {
            bdf: b,
            pointer: 0x40
        }))
    );
    let (cfg, b) = mk(0x302);
    assert_eq!(
        extended(&cfg, b).last(),
        Some(&Err(CapError::Misaligned {
            bdf: b,
            pointer: 0x302
        }))
    );
    assert_eq!(
        find_ext_capability(&cfg, b, ext_cap_id::SRIOV),
        Err(CapError::Misaligned {
            bdf: b,
            pointer: 0x302
        })
    );
    assert_eq!(
        find_ext_capability(&cfg, b, ext_cap_id::ARI),
        Ok(Some(0x200))
    );
    // Last dword of config space, pointing to itself.
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.ext_cap(0x100, ext_cap_id::AER, 2, 0xffc);
    f.ext_cap(0xffc, ext_cap_id::ACS, 1, 0xffc);
    let (cfg, b) = with(f);
    assert_eq!(
        extended(&cfg, b).last(),
        Some(&Err(CapError::Loop {
            bdf: b,
            offset: 0xffc
        }))
    );
    // All ones mid-walk.
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.ext_cap(0x100, ext_cap_id::AER, 2, 0x400);
    f.set32(0x400, u32::MAX);
    let (cfg, b) = with(f);
    assert_eq!(
        extended(&cfg, b),
        [
            ext(1, 2, 0x100),
            Err(CapError::AllOnes {
                bdf: b,
                offset: 0x400
            })
        ]
    );
}

#[test]
fn long_but_finite_chain_is_walked_entirely() {
    // 48 legacy capabilities back to back fill 0x40..=0xfc: the bound must not cut them off.
    let mut f = FakeFn::new(0x1234, 1, 0, 0);
    f.cap_list(0x40);
    for off in (0x40..=0xfc_u16).step_by(4) {
        let next = if off == 0xfc { 0 } else { off + 4 };
        f.cap(off as u8, 0x09, next as u8);
    }
    // And 960 extended capabilities from 0x100 to 0xffc.
    for off in (0x100..=0xffc_u16).step_by(4) {
        let next = if off == 0xffc { 0 } else { off + 4 };
        f.ext_cap(off, 0x000b, 1, next);
    }
    let (cfg, b) = with(f);
    let l = legacy(&cfg, b);
    assert_eq!(l.len(), 48);
    assert!(l.iter().all(Result::is_ok));
    let e = extended(&cfg, b);
    assert_eq!(e.len(), 960);
    assert!(e.iter().all(Result::is_ok));
}

#[test]
fn pcie_port_types_and_ari_forwarding() {
    let mut cfg = q35();
    let rp = pcie::pcie_cap(&cfg, RP0).expect("walk").expect("PCIe");
    assert_eq!(
        (rp.offset, rp.version, rp.port_type),
        (0x40, 2, PortType::RootPort)
    );
    assert!(rp.port_type.is_downstream_port());
    let igb = pcie::pcie_cap(&cfg, IGB_PF).expect("walk").expect("PCIe");
    assert_eq!((igb.offset, igb.port_type), (0xa0, PortType::Endpoint));
    assert!(!igb.port_type.is_downstream_port());
    assert_eq!(pcie::pcie_cap(&cfg, bdf(0, 4, 0)), Ok(None));

    assert_eq!(pcie::ari_forwarding_supported(&cfg, RP0), Ok(true));
    assert_eq!(pcie::ari_forwarding_enabled(&cfg, RP0), Ok(false));
    assert_eq!(pcie::set_ari_forwarding(&mut cfg, RP0, true), Ok(true));
    assert_eq!(pcie::ari_forwarding_enabled(&cfg, RP0), Ok(true));
    assert_eq!(pcie::set_ari_forwarding(&mut cfg, RP0, false), Ok(false));
    assert_eq!(pcie::ari_forwarding_enabled(&cfg, RP0), Ok(false));
    // An endpoint does not support it: nothing is written.
    cfg.writes.clear();
    assert_eq!(pcie::set_ari_forwarding(&mut cfg, IGB_PF, true), Ok(false));
    assert!(cfg.writes.is_empty());

    assert_eq!(
        pcie::ari_cap(&cfg, IGB_PF),
        Ok(Some(AriCap {
            offset: 0x150,
            next_function: 0
        }))
    );
    assert_eq!(
        pcie::ari_cap(&cfg, NVME_PF).map(|c| c.map(|c| c.offset)),
        Ok(Some(0x100))
    );
    assert_eq!(pcie::ari_cap(&cfg, RP0), Ok(None));
}
