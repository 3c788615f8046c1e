//! Two PCI segments behind one fake ECAM: every MCFG allocation is reached through its own
//! window, bus numbers repeat across segments without mixing, and each segment's walk finds its
//! bridges' buses and its further root buses.

mod support;

use conduit_pci::enumerate::{Event, walk};
use conduit_pci::{Bdf, ConfigAccess, EcamWindow, OnSegment, SegmentAccess, check_windows};
use support::fake::{FakeFn, bdf};

/// Physical memory holding the configuration spaces of every window, as an ECAM decoder sees it:
/// a function's bytes sit at `window.first_byte() + window.offset_of(bdf, 0)`.
struct FakeEcam {
    windows: Vec<EcamWindow>,
    /// One byte image per window, `window.bytes()` bytes, all ones where no function answers.
    memory: Vec<Vec<u8>>,
}

impl FakeEcam {
    fn new(windows: Vec<EcamWindow>) -> Self {
        check_windows(&windows).expect("consistent MCFG");
        let memory = windows
            .iter()
            .map(|w| vec![0xff; usize::try_from(w.bytes()).expect("fits")])
            .collect();
        Self { windows, memory }
    }

    fn locate(&self, segment: u16, bdf: Bdf, offset: u16) -> Option<(usize, usize)> {
        self.windows.iter().enumerate().find_map(|(i, w)| {
            if !w.decodes(segment, bdf.bus()) {
                return None;
            }
            let at = w.offset_of(bdf, offset)?;
            Some((i, usize::try_from(at).expect("fits")))
        })
    }

    /// Places a function's 4 KiB image.
    fn put(&mut self, segment: u16, at: Bdf, f: &FakeFn) {
        let (i, o) = self.locate(segment, at, 0).expect("a window decodes it");
        self.memory[i][o..o + 4096].copy_from_slice(&f.bytes);
    }
}

impl SegmentAccess for FakeEcam {
    fn read32_on(&self, segment: u16, bdf: Bdf, offset: u16) -> u32 {
        self.locate(segment, bdf, offset)
            .map_or(u32::MAX, |(i, o)| {
                let b = &self.memory[i][o..o + 4];
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            })
    }

    fn write32_on(&mut self, segment: u16, bdf: Bdf, offset: u16, value: u32) {
        if let Some((i, o)) = self.locate(segment, bdf, offset) {
            self.memory[i][o..o + 4].copy_from_slice(&value.to_le_bytes());
        }
    }
}

fn host_bridge() -> FakeFn {
    FakeFn::new(0x8086, 0x29c0, 0x06_00_00, 0)
}

fn endpoint(device: u16) -> FakeFn {
    FakeFn::new(0x8086, device, 0x02_00_00, 0)
}

fn root_port(secondary: u8, subordinate: u8) -> FakeFn {
    let mut f = FakeFn::new(0x8086, 0x7d00, 0x06_04_00, 1);
    f.set8(0x19, secondary);
    f.set8(0x1a, subordinate);
    f
}

/// Segment 0: buses 00-7f at one window, 80-ff at a second (root bus 80 of another host bridge);
/// segment 1: buses 00-3f at a third window elsewhere. The same numbers `00:00.0` and `01:00.0`
/// are different functions on the two segments.
fn machine() -> FakeEcam {
    let mut e = FakeEcam::new(vec![
        EcamWindow {
            base: 0xb000_0000,
            segment: 0,
            bus_start: 0,
            bus_end: 0x7f,
        },
        EcamWindow {
            base: 0xb000_0000,
            segment: 0,
            bus_start: 0x80,
            bus_end: 0xff,
        },
        EcamWindow {
            base: 0x38_0000_0000,
            segment: 1,
            bus_start: 0,
            bus_end: 0x3f,
        },
    ]);
    e.put(0, bdf(0, 0, 0), &host_bridge());
    e.put(0, bdf(0, 1, 0), &root_port(1, 1));
    e.put(0, bdf(1, 0, 0), &endpoint(0x10c9));
    e.put(0, bdf(0x80, 0, 0), &host_bridge());
    e.put(0, bdf(0x80, 2, 0), &endpoint(0x1533));
    e.put(1, bdf(0, 0, 0), &host_bridge());
    e.put(1, bdf(0, 3, 0), &root_port(1, 2));
    e.put(1, bdf(1, 0, 0), &endpoint(0x0a54));
    e
}

fn walked(
    e: &mut FakeEcam,
    segment: u16,
    buses: core::ops::RangeInclusive<u8>,
) -> (Vec<String>, usize) {
    let cfg = OnSegment::new(e, segment);
    let mut seen = Vec::new();
    let n = walk(&cfg, buses, &mut |ev| {
        seen.push(match ev {
            Event::Function { bdf, header, depth } => {
                format!("{bdf} {:04x} depth {depth}", header.device_id)
            }
            Event::RootBus(b) => format!("root bus {b:02x}"),
            Event::Unassigned(b) => format!("unassigned {b}"),
            Event::Revisit { bridge, bus } => format!("revisit {bridge} -> {bus:02x}"),
        });
    });
    (seen, n)
}

#[test]
fn each_segment_is_walked_through_its_own_windows() {
    let mut e = machine();
    assert_eq!(
        walked(&mut e, 0, 0..=0xff),
        (
            vec![
                "00:00.0 29c0 depth 0".to_string(),
                "00:01.0 7d00 depth 0".to_string(),
                "01:00.0 10c9 depth 1".to_string(),
                "root bus 80".to_string(),
                "80:00.0 29c0 depth 0".to_string(),
                "80:02.0 1533 depth 0".to_string(),
            ],
            3
        )
    );
    assert_eq!(
        walked(&mut e, 1, 0..=0x3f),
        (
            vec![
                "00:00.0 29c0 depth 0".to_string(),
                "00:03.0 7d00 depth 0".to_string(),
                "01:00.0 0a54 depth 1".to_string(),
            ],
            2
        )
    );
    // A segment the MCFG does not list reads all ones: nothing there.
    assert_eq!(walked(&mut e, 2, 0..=0xff), (vec![], 1));
}

#[test]
fn writes_reach_only_the_named_segment() {
    let mut e = machine();
    let ep = bdf(1, 0, 0);
    OnSegment::new(&mut e, 1).write32(ep, 0x10, 0xfe00_0000);
    assert_eq!(OnSegment::new(&mut e, 1).read32(ep, 0x10), 0xfe00_0000);
    assert_eq!(OnSegment::new(&mut e, 0).read32(ep, 0x10), 0);
    // The second window of segment 0 starts at bus 0x80, 128 MiB above the shared base.
    let at = e.windows[1].offset_of(bdf(0x80, 2, 0), 0).expect("decoded");
    assert_eq!((e.windows[1].first_byte(), at), (0xb800_0000, 2 << 15));
    assert_eq!(
        OnSegment::new(&mut e, 0).read32(bdf(0x80, 2, 0), 0),
        0x1533_8086
    );
}

#[test]
fn a_bridge_looping_back_is_not_walked_twice() {
    let mut e = machine();
    e.put(1, bdf(1, 1, 0), &root_port(1, 1));
    e.put(1, bdf(0, 4, 0), &root_port(0, 0));
    let (seen, _) = walked(&mut e, 1, 0..=0x3f);
    assert!(
        seen.contains(&"revisit 01:01.0 -> 01".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"unassigned 00:04.0".to_string()), "{seen:?}");
}
