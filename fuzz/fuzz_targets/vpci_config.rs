//! Fuzz target: one function's virtual configuration space and its MSI-X table
//! (`conduit_vpci::VirtualFunction`), built from a hostile physical configuration space and
//! BAR list, then driven by a guest's configuration and table accesses and resets.
//!
//! Invariants (PCI Local Bus Spec 3.0 §6.2, PCIe Base Spec r6.0 §7.5.1, §7.7.2):
//! - read-only registers never change: identity (vendor, device, revision, class), header
//!   type, subsystem IDs, capabilities pointer, interrupt pin, every capability's ID and next
//!   pointer, and the whole extended space (0x100-0xFFF);
//! - an access is refused exactly when its size is not 1/2/4, it is misaligned or out of range;
//! - the events of every write describe the mapping state: a BAR mapped by `BarMoved` is
//!   unmapped by `BarUnmapped` at the same address, the state the events build is where the
//!   model says each BAR decodes, addresses are aligned to the power-of-two size, and the
//!   physical address is the BAR's own;
//! - the MSI-X entries the events report are the table's entries;
//! - a reset brings the whole configuration space back to its state right after the build.
#![no_main]

use arbitrary::Arbitrary;
use conduit_pci::{Bar, BarKind, Bdf, ConfigAccess};
use conduit_vpci::{Event, Events, MsixEntry, Policy, VirtualFunction};
use libfuzzer_sys::fuzz_target;

/// The physical configuration space: read-only for the emulation after the build.
struct Physical(Vec<u8>);

impl ConfigAccess for Physical {
    fn read32(&self, _bdf: Bdf, offset: u16) -> u32 {
        let at = usize::from(offset & 0xffc);
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    fn write32(&mut self, _bdf: Bdf, offset: u16, _value: u32) {
        panic!("the physical function was written at {offset:#x}");
    }
}

#[derive(Arbitrary, Debug)]
struct BarSpec {
    index: u8,
    kind: u8,
    prefetchable: bool,
    size_log2: u8,
    address: u64,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read(u16, u8),
    Write(u16, u8, u32),
    /// A write of the Command register (decode on or off), the most common trigger.
    Command(u16),
    /// A write of a BAR register (`index % 6`).
    BarWrite(u8, u32),
    TableRead(u16, u8),
    TableWrite(u16, u8, u64),
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Vec<u8>,
    bars: Vec<BarSpec>,
    ops: Vec<Op>,
}

fn config_space(bytes: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8; 4096];
    let n = bytes.len().min(4096);
    c[..n].copy_from_slice(&bytes[..n]);
    if matches!(u16::from_le_bytes([c[0], c[1]]), 0 | 0xffff) {
        c[0..2].copy_from_slice(&0x8086u16.to_le_bytes());
    }
    c[0x0e] &= 0x80;
    c
}

fn bars(specs: &[BarSpec]) -> Vec<Bar> {
    specs
        .iter()
        .take(6)
        .map(|s| {
            let kind = match s.kind % 3 {
                0 => BarKind::Io,
                1 => BarKind::Memory32,
                _ => BarKind::Memory64,
            };
            let size = 1u64 << (s.size_log2 % 48).max(2);
            Bar {
                index: s.index % 7,
                kind,
                prefetchable: s.prefetchable,
                address: s.address & !(size - 1),
                size,
            }
        })
        .collect()
}

fn image(vf: &VirtualFunction) -> Vec<u8> {
    (0..4096u16)
        .step_by(4)
        .flat_map(|o| {
            vf.read(o, 4)
                .expect("aligned dword reads succeed")
                .to_le_bytes()
        })
        .collect()
}

/// Offsets of the bytes below 0x100 the guest can never change (the extended space, all of it
/// read-only, is compared whole at the end).
fn read_only(img: &[u8]) -> Vec<usize> {
    let mut ro: Vec<usize> = vec![
        0, 1, 2, 3, 8, 9, 10, 11, 0x0e, 0x2c, 0x2d, 0x2e, 0x2f, 0x34, 0x3d,
    ];
    if img[6] & 0x10 != 0 {
        let mut at = usize::from(img[0x34] & 0xfc);
        for _ in 0..48 {
            if at < 0x40 {
                break;
            }
            ro.extend([at, at + 1]);
            at = usize::from(img[at + 1] & 0xfc);
        }
    }
    ro
}

fn config_ok(offset: u16, size: u8) -> bool {
    matches!(size, 1 | 2 | 4)
        && offset.is_multiple_of(u16::from(size))
        && u32::from(offset) + u32::from(size) <= 4096
}

/// The core's view, built only from events.
struct Core {
    mapped: [Option<u64>; 6],
    entries: Vec<MsixEntry>,
}

impl Core {
    fn apply(&mut self, vf: &VirtualFunction, events: &Events) {
        for e in events.iter() {
            match *e {
                Event::BarMoved {
                    index,
                    guest_addr,
                    old_guest_addr,
                    size,
                    phys_addr,
                    kind,
                } => {
                    let bar = vf.bar(index).expect("events name implemented BARs");
                    assert_eq!((bar.size, bar.phys_addr, bar.kind), (size, phys_addr, kind));
                    assert!(
                        size.is_power_of_two() && guest_addr.is_multiple_of(size),
                        "{e:?}"
                    );
                    let slot = &mut self.mapped[usize::from(index)];
                    assert_eq!(*slot, old_guest_addr, "BarMoved's old address");
                    *slot = Some(guest_addr);
                }
                Event::BarUnmapped {
                    index,
                    guest_addr,
                    size,
                    ..
                } => {
                    let bar = vf.bar(index).expect("events name implemented BARs");
                    assert_eq!(bar.size, size);
                    let slot = &mut self.mapped[usize::from(index)];
                    assert_eq!(*slot, Some(guest_addr), "unmapped where it was mapped");
                    *slot = None;
                }
                Event::FunctionReset => self.reset_table(vf),
                Event::MsixEntryChanged { .. } => panic!("configuration writes change no entry"),
                _ => {}
            }
        }
    }
    fn reset_table(&mut self, vf: &VirtualFunction) {
        let n = vf.msix_table().map_or(0, |t| t.len());
        self.entries = vec![
            MsixEntry {
                address: 0,
                data: 0,
                masked: true
            };
            usize::from(n)
        ];
    }
    fn check(&self, vf: &VirtualFunction) {
        for i in 0..6u8 {
            assert_eq!(
                self.mapped[usize::from(i)],
                vf.bar_decoding(i),
                "BAR {i} decoding"
            );
        }
        if let Some(t) = vf.msix_table() {
            assert!(
                t.entries().eq(self.entries.iter().copied()),
                "MSI-X entries"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let phys = Physical(config_space(&input.config));
    let bdf = Bdf::from_routing_id(0x0108);
    let Ok(mut vf) = VirtualFunction::build(&phys, bdf, &bars(&input.bars), &Policy::DEFAULT)
    else {
        return;
    };
    let built = image(&vf);
    let ro = read_only(&built);
    let mut core = Core {
        mapped: [None; 6],
        entries: Vec::new(),
    };
    core.reset_table(&vf);
    core.check(&vf);
    for op in input.ops {
        match op {
            Op::Read(offset, size) => {
                let r = vf.read(offset, size);
                assert_eq!(
                    r.is_ok(),
                    config_ok(offset, size),
                    "read {offset:#x}/{size}"
                );
                if let Ok(v) = r {
                    assert!(
                        size == 4 || v >> (8 * u32::from(size)) == 0,
                        "read wider than size"
                    );
                }
            }
            Op::Write(offset, size, value) => {
                let r = vf.write(offset, size, value);
                assert_eq!(
                    r.is_ok(),
                    config_ok(offset, size),
                    "write {offset:#x}/{size}"
                );
                if let Ok(events) = r {
                    core.apply(&vf, &events);
                }
            }
            Op::Command(value) => {
                let events = vf
                    .write(4, 2, u32::from(value))
                    .expect("Command is writable");
                core.apply(&vf, &events);
            }
            Op::BarWrite(index, value) => {
                let offset = 0x10 + 4 * u16::from(index % 6);
                let events = vf.write(offset, 4, value).expect("BARs are dwords");
                core.apply(&vf, &events);
            }
            Op::TableRead(offset, size) => {
                if let Some(t) = vf.msix_table() {
                    let _ = t.read(u64::from(offset), size);
                }
            }
            Op::TableWrite(offset, size, value) => {
                if let Some(t) = vf.msix_table_mut() {
                    let before = t.clone();
                    match t.write(u64::from(offset), size, value) {
                        Ok(Some(Event::MsixEntryChanged {
                            index,
                            address,
                            data,
                            masked,
                        })) => {
                            assert!(index < t.len());
                            assert_eq!(address & 3, 0, "message address bits 1:0");
                            let entry = MsixEntry {
                                address,
                                data,
                                masked,
                            };
                            assert_eq!(t.entry(index), Some(entry));
                            core.entries[usize::from(index)] = entry;
                        }
                        Ok(Some(other)) => panic!("table write gave {other:?}"),
                        Ok(None) => assert_eq!(*t, before, "no event: no change"),
                        Err(_) => assert_eq!(*t, before, "a refused write changes nothing"),
                    }
                }
            }
            Op::Reset => {
                let events = vf.reset();
                core.apply(&vf, &events);
                core.reset_table(&vf);
                assert_eq!(image(&vf), built, "reset restores the built state");
            }
        }
        for &at in &ro {
            let now = vf.read(at as u16, 1).expect("byte reads succeed") as u8;
            assert_eq!(now, built[at], "read-only byte {at:#x} changed");
        }
        core.check(&vf);
    }
    assert_eq!(
        image(&vf)[0x100..],
        built[0x100..],
        "the extended space is read-only"
    );
});
