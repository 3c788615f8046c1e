//! Classifying decoded ranges relative to a bridge, and placing VF BARs through every bridge
//! above a PF: the measured q35 map, and a switch hierarchy.

use conduit_pci::decoders::{classify, side};
use conduit_pci::{
    Bdf, BridgeWindow, Decoded, Decoder, MmioWindow, SpaceError, VfSpace, VfSpaceError,
    WindowChange, place_vf_space,
};

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const BOUNDS: MmioWindow = MmioWindow {
    base: 0xc000_0000,
    limit: 0xfebf_ffff,
};
const CLOSED: MmioWindow = MmioWindow { base: 1, limit: 0 };

fn w(base: u64, limit: u64) -> MmioWindow {
    MmioWindow { base, limit }
}
fn sized(base: u64, size: u64) -> MmioWindow {
    MmioWindow::at(base, size).expect("valid")
}
fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(bus, dev, func).expect("valid")
}
fn on(bus: u8, range: MmioWindow) -> Decoded {
    Decoded {
        range,
        by: Decoder::Function { bus },
    }
}
fn bridge_window(b: &BridgeWindow) -> Decoded {
    Decoded {
        range: b.memory,
        by: Decoder::Bridge { bdf: b.bdf },
    }
}

/// The q35 map OVMF leaves (measured): root ports, their windows (both prefetchable windows above
/// 4 GiB), igb, nvme, VGA, edu, AHCI, ECAM, I/O APIC.
fn q35() -> (Vec<Decoded>, Vec<BridgeWindow>) {
    let rp0 = BridgeWindow {
        bdf: bdf(0, 2, 0),
        secondary: 1,
        subordinate: 1,
        memory: w(0xc120_0000, 0xc13f_ffff),
    };
    let rp1 = BridgeWindow {
        bdf: bdf(0, 3, 0),
        secondary: 2,
        subordinate: 2,
        memory: w(0xc100_0000, 0xc11f_ffff),
    };
    let decoded = vec![
        on(0, sized(0xc000_0000, 16 * M)),
        on(0, sized(0xc151_3000, 4 * K)),
        on(0, sized(0xc151_2000, 4 * K)),
        bridge_window(&rp0),
        Decoded {
            range: w(0xe0_0000_0000, 0xe0_1fff_ffff),
            by: Decoder::Bridge { bdf: rp0.bdf },
        },
        on(1, sized(0xc122_0000, 128 * K)),
        on(1, sized(0xc120_0000, 128 * K)),
        on(1, sized(0xc124_0000, 16 * K)),
        on(0, sized(0xc151_1000, 4 * K)),
        bridge_window(&rp1),
        Decoded {
            range: w(0xe0_2000_0000, 0xe0_3fff_ffff),
            by: Decoder::Bridge { bdf: rp1.bdf },
        },
        on(2, sized(0xc100_0000, 16 * K)),
        on(0, sized(0xc140_0000, M)),
        on(0, sized(0xc151_0000, 4 * K)),
        Decoded {
            range: sized(0xb000_0000, 256 * M),
            by: Decoder::Platform,
        },
        Decoded {
            range: sized(0xfec0_0000, 4 * K),
            by: Decoder::Platform,
        },
    ];
    (decoded, vec![rp0, rp1])
}

fn place(
    decoded: &[Decoded],
    bridges: &[BridgeWindow],
    bus: u8,
    size: u64,
    align: u64,
) -> Result<(MmioWindow, Vec<WindowChange>), VfSpaceError> {
    let mut inner = vec![CLOSED; decoded.len()];
    let mut foreign = vec![CLOSED; decoded.len()];
    let mut changes = vec![
        WindowChange {
            bridge: bdf(0, 0, 0),
            before: CLOSED,
            after: CLOSED
        };
        bridges.len()
    ];
    let VfSpace { region, changes: n } = place_vf_space(
        decoded,
        bridges,
        bus,
        BOUNDS,
        size,
        align,
        &mut inner,
        &mut foreign,
        &mut changes,
    )?;
    changes.truncate(n);
    Ok((region, changes))
}

#[test]
fn q35_classification() {
    let (decoded, bridges) = q35();
    let rp0 = &bridges[0];
    let sides: Vec<Option<bool>> = decoded
        .iter()
        .map(|d| side(d, Some(rp0), &bridges))
        .collect();
    assert_eq!(
        sides,
        [
            Some(false),
            Some(false),
            Some(false),
            None, // its own windows
            None,
            Some(true), // igb
            Some(true),
            Some(true),
            Some(false),
            Some(false), // the other root port's windows
            Some(false),
            Some(false), // nvme, behind the other port
            Some(false),
            Some(false),
            Some(false), // platform
            Some(false),
        ]
    );
    // Relative to the root bus, everything is foreign.
    assert!(
        decoded
            .iter()
            .all(|d| side(d, None, &bridges) == Some(false))
    );
    let mut inner = vec![CLOSED; decoded.len()];
    let mut foreign = vec![CLOSED; decoded.len()];
    assert_eq!(
        classify(&decoded, &bridges, Some(rp0), &mut inner, &mut foreign),
        Ok((3, 11))
    );
    assert_eq!(
        classify(&decoded, &bridges, Some(rp0), &mut inner[..3], &mut foreign),
        Err(VfSpaceError::Scratch {
            needed: decoded.len(),
            capacity: 3
        })
    );
}

#[test]
fn q35_vf_space_inside_the_root_port_windows() {
    let (decoded, bridges) = q35();
    let (region, changes) = place(&decoded, &bridges, 1, 256 * K, 16 * K).expect("igb");
    assert_eq!(region, w(0xc124_4000, 0xc128_3fff));
    assert_eq!(
        changes,
        [WindowChange {
            bridge: bdf(0, 2, 0),
            before: w(0xc120_0000, 0xc13f_ffff),
            after: w(0xc120_0000, 0xc13f_ffff),
        }]
    );
    let (region, changes) = place(&decoded, &bridges, 2, 64 * K, 16 * K).expect("nvme");
    assert_eq!(region, w(0xc100_4000, 0xc101_3fff));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].before, changes[0].after);
    // 2 MiB more for nvme: 00:03.0 is boxed in by VGA below and 00:02.0 above.
    assert_eq!(
        place(&decoded, &bridges, 2, 2 * M, 16 * K),
        Err(VfSpaceError::Space {
            bridge: Some(bdf(0, 3, 0)),
            error: SpaceError::NoRoom {
                size: 2 * M,
                align: 16 * K,
                room: w(0xc100_0000, 0xc11f_ffff)
            }
        })
    );
}

#[test]
fn a_pf_on_the_root_bus_gets_free_space_directly() {
    let (decoded, bridges) = q35();
    let (region, changes) = place(&decoded, &bridges, 0, 64 * K, 16 * K).expect("free");
    // The first gap of the map: between edu (to 0xc14fffff) and AHCI's BAR at 0xc1510000.
    assert_eq!(region, w(0xc150_0000, 0xc150_ffff));
    assert!(changes.is_empty());
    assert!(decoded.iter().all(|d| !d.range.overlaps(&region)));
}

/// A root port 00:1c.0 (buses 1-4) above a switch: upstream port 01:00.0 (buses 2-4), downstream
/// ports 02:00.0 (bus 3, the PF's) and 02:01.0 (bus 4, another device).
fn switch() -> (Vec<Decoded>, Vec<BridgeWindow>) {
    let root = BridgeWindow {
        bdf: bdf(0, 0x1c, 0),
        secondary: 1,
        subordinate: 4,
        memory: w(0xd000_0000, 0xd01f_ffff),
    };
    let up = BridgeWindow {
        bdf: bdf(1, 0, 0),
        secondary: 2,
        subordinate: 4,
        memory: w(0xd000_0000, 0xd01f_ffff),
    };
    let down = BridgeWindow {
        bdf: bdf(2, 0, 0),
        secondary: 3,
        subordinate: 3,
        memory: w(0xd000_0000, 0xd00f_ffff),
    };
    let other = BridgeWindow {
        bdf: bdf(2, 1, 0),
        secondary: 4,
        subordinate: 4,
        memory: w(0xd010_0000, 0xd01f_ffff),
    };
    let decoded = vec![
        on(0, sized(0xc000_0000, 16 * M)),
        bridge_window(&root),
        bridge_window(&up),
        bridge_window(&down),
        bridge_window(&other),
        on(3, sized(0xd000_0000, M)),
        on(4, sized(0xd010_0000, M)),
        Decoded {
            range: sized(0xe000_0000, 256 * M),
            by: Decoder::Platform,
        },
    ];
    (decoded, vec![root, up, down, other])
}

#[test]
fn every_bridge_above_grows_outermost_first() {
    let (decoded, bridges) = switch();
    let (region, changes) = place(&decoded, &bridges, 3, M, 64 * K).expect("room below");
    // The PF's port is full and 02:01.0 sits above it: the MiB below is taken, and the switch's
    // upstream port and the root port grow to cover it.
    assert_eq!(region, w(0xcff0_0000, 0xcfff_ffff));
    assert_eq!(
        changes,
        [
            WindowChange {
                bridge: bdf(0, 0x1c, 0),
                before: w(0xd000_0000, 0xd01f_ffff),
                after: w(0xcff0_0000, 0xd01f_ffff),
            },
            WindowChange {
                bridge: bdf(1, 0, 0),
                before: w(0xd000_0000, 0xd01f_ffff),
                after: w(0xcff0_0000, 0xd01f_ffff),
            },
            WindowChange {
                bridge: bdf(2, 0, 0),
                before: w(0xd000_0000, 0xd00f_ffff),
                after: w(0xcff0_0000, 0xd00f_ffff),
            },
        ]
    );
    // Something decoded just below the root port's window blocks the growth.
    let mut blocked = decoded.clone();
    blocked.push(on(0, sized(0xcff0_0000, M)));
    let e = place(&blocked, &bridges, 3, M, 64 * K);
    assert!(
        matches!(
            e,
            Err(VfSpaceError::Space {
                bridge: Some(b),
                error: SpaceError::NoRoom { .. }
            }) if b == bdf(2, 0, 0)
        ),
        "{e:?}"
    );
}

#[test]
fn a_bridge_above_that_cannot_cover_is_named() {
    // Firmware left the root port's window over a platform range (0xd0200000): the downstream
    // port may grow, but the root port's grown window would still hold that range.
    let (mut decoded, mut bridges) = switch();
    bridges[0].memory = w(0xd000_0000, 0xd02f_ffff);
    decoded[1].range = bridges[0].memory;
    let platform = sized(0xd020_0000, 4 * K);
    decoded.push(Decoded {
        range: platform,
        by: Decoder::Platform,
    });
    assert_eq!(
        place(&decoded, &bridges, 3, M, 64 * K),
        Err(VfSpaceError::Space {
            bridge: Some(bdf(0, 0x1c, 0)),
            error: SpaceError::WindowConflict {
                window: w(0xcff0_0000, 0xd02f_ffff),
                other: platform
            }
        })
    );
}

#[test]
fn a_closed_window_opens() {
    let (mut decoded, mut bridges) = q35();
    bridges[0].memory = CLOSED;
    decoded[3].range = CLOSED;
    let (region, changes) = place(&decoded, &bridges, 1, 256 * K, 16 * K).expect("opened");
    // A whole free MiB: igb's own BARs (behind the closed window) count as used too.
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].after, w(0xc130_0000, 0xc13f_ffff));
    assert_eq!(region, w(0xc130_0000, 0xc133_ffff));
    assert!(changes[0].after.contains(&region));
    assert!(decoded.iter().all(|d| !d.range.overlaps(&changes[0].after)));
}

#[test]
fn errors_display() {
    let e = VfSpaceError::Space {
        bridge: Some(bdf(0, 2, 0)),
        error: SpaceError::BadRequest { size: 0, align: 1 },
    };
    assert!(
        e.to_string()
            .starts_with("behind bridge 00:02.0: bad request")
    );
    let e = VfSpaceError::Scratch {
        needed: 4,
        capacity: 1,
    };
    assert_eq!(e.to_string(), "scratch space for 1 entries, 4 needed");
}
