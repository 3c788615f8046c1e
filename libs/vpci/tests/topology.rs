//! The guest's virtual topology and CF8/ECAM address decoding.

mod support;

use conduit_pci::Bdf;
use conduit_vpci::topology::{CONFIG_ADDRESS, CONFIG_DATA};
use conduit_vpci::{
    AccessError, Cf8Address, Cf8Error, Cf8Mode, Ecam, EcamError, Event, TopologyError,
    VirtualTopology,
};
use support::pci::fake::bdf;
use support::vfs::{IGB_VF0, IGB_VF1, Machine, NVME_VF0, machine};

const V1: Bdf = Bdf::from_devfn(0, 1 << 3);
const V2: Bdf = Bdf::from_devfn(0, 2 << 3);

fn guest(m: &Machine) -> VirtualTopology {
    let mut t = VirtualTopology::new();
    t.insert(V1, m.igb_vf(IGB_VF0)).expect("00:01.0");
    t.insert(V2, m.nvme_vf(NVME_VF0)).expect("00:02.0");
    t
}

#[test]
fn functions_answer_at_their_virtual_bdfs() {
    let m = machine();
    let t = guest(&m);
    assert_eq!((t.len(), t.is_empty()), (2, false));
    assert_eq!(t.read(V1, 0, 4), Ok(0x10ca_8086));
    assert_eq!(t.read(V2, 0, 4), Ok(0x0010_1b36));
    assert_eq!(t.get(V1).map(|f| f.bdf()), Some(IGB_VF0));
    let listed: Vec<_> = t.iter().map(|(v, f)| (v, f.bdf())).collect();
    assert_eq!(listed, [(V1, IGB_VF0), (V2, NVME_VF0)]);
}

#[test]
fn empty_slots_read_all_ones_and_drop_writes() {
    let m = machine();
    let mut t = guest(&m);
    for vbdf in [
        bdf(0, 0, 0),
        bdf(0, 1, 1),
        bdf(0, 3, 0),
        bdf(1, 1, 0),
        bdf(0xff, 31, 7),
    ] {
        assert_eq!(t.read(vbdf, 0, 4), Ok(u32::MAX), "{vbdf}");
        assert_eq!(t.read(vbdf, 2, 2), Ok(0xffff));
        assert_eq!(t.read(vbdf, 0xe, 1), Ok(0xff));
        assert_eq!(t.write(vbdf, 4, 2, 0x6).map(|e| e.is_empty()), Ok(true));
        // Access checks apply there too.
        assert_eq!(
            t.read(vbdf, 1, 2),
            Err(AccessError::Misaligned { offset: 1, size: 2 })
        );
        assert_eq!(
            t.write(vbdf, 0x1000, 4, 0).err(),
            Some(AccessError::OutOfRange { offset: 0x1000 })
        );
    }
    // Writes through the topology reach the function.
    let ev = t.write(V1, 0x04, 2, 0x0004).expect("write");
    assert_eq!(
        ev.iter().copied().collect::<Vec<_>>(),
        [Event::CommandChanged {
            memory: false,
            io: false,
            bus_master: true,
            intx_disable: false
        }]
    );
    assert_eq!(t.read(V1, 0x04, 2), Ok(0x0004));
    assert_eq!(t.read(V2, 0x04, 2), Ok(0));
}

#[test]
fn insert_and_remove_rules_and_multi_function() {
    let m = machine();
    let mut t = guest(&m);
    assert_eq!(
        t.insert(V1, m.igb_vf(IGB_VF1)),
        Err(TopologyError::Occupied { vbdf: V1 })
    );
    let v31 = bdf(0, 3, 1);
    assert_eq!(
        t.insert(v31, m.igb_vf(IGB_VF1)),
        Err(TopologyError::NoFunctionZero { vbdf: v31 })
    );
    let v11 = bdf(0, 1, 1);
    t.insert(v11, m.igb_vf(IGB_VF1)).expect("00:01.1");
    assert_eq!(
        t.read(V1, 0x0e, 1),
        Ok(0x80),
        "function 0 is now multi-function"
    );
    assert_eq!(t.read(v11, 0x0e, 1), Ok(0x00));
    assert_eq!(t.read(V2, 0x0e, 1), Ok(0x00));
    assert_eq!(
        t.remove(V1).err(),
        Some(TopologyError::FunctionsRemain { vbdf: V1 })
    );
    assert_eq!(t.remove(v11).map(|f| f.bdf()), Ok(IGB_VF1));
    assert_eq!(t.read(V1, 0x0e, 1), Ok(0x00), "single function again");
    assert_eq!(
        t.remove(v11).err(),
        Some(TopologyError::NotFound { vbdf: v11 })
    );
    assert_eq!(t.remove(V1).map(|f| f.bdf()), Ok(IGB_VF0));
    assert_eq!(t.read(V1, 0, 4), Ok(u32::MAX));
    assert!(t.get_mut(V2).is_some() && t.get_mut(V1).is_none());
}

#[test]
fn cf8_decoding() {
    let d = |v| Cf8Address::decode(v, Cf8Mode::Standard);
    let e = |v| Cf8Address::decode(v, Cf8Mode::Extended);
    let at = |b: Bdf, register| Ok(Cf8Address { bdf: b, register });
    assert_eq!(d(0x8000_0810), at(V1, 0x10));
    assert_eq!(d(0x0000_0810), Err(Cf8Error::Disabled), "enable bit clear");
    assert_eq!(d(0x0000_0000), Err(Cf8Error::Disabled));
    assert_eq!(d(0x8000_0813), at(V1, 0x10), "bits 1:0 ignored");
    assert_eq!(d(0x80ff_fffc), at(bdf(0xff, 31, 7), 0xfc));
    assert_eq!(d(0x8001_1a3c), at(bdf(1, 3, 2), 0x3c));
    // Bits 30:24: reserved in standard mode.
    for v in [0x8100_0810, 0x8f00_0810, 0xc000_0810, 0xff00_0810] {
        assert_eq!(d(v), Err(Cf8Error::ReservedBits { value: v }), "{v:#x}");
    }
    // Extended: bits 27:24 are register bits 11:8; 30:28 stay reserved.
    assert_eq!(e(0x8100_0810), at(V1, 0x110));
    assert_eq!(e(0x8f00_08fc), at(V1, 0xffc));
    assert_eq!(e(0x8000_0810), at(V1, 0x10));
    assert_eq!(
        e(0x9000_0810),
        Err(Cf8Error::ReservedBits { value: 0x9000_0810 })
    );
    assert_eq!(e(0x7f00_0810), Err(Cf8Error::Disabled));
    // Encoding round-trips.
    for (b, reg) in [(V1, 0x10), (bdf(0xff, 31, 7), 0xfc), (bdf(2, 0, 1), 0x3c)] {
        assert_eq!(d(Cf8Address::encode(b, reg)), at(b, reg));
    }
    assert_eq!(e(Cf8Address::encode(V2, 0x4a0)), at(V2, 0x4a0));
    assert_eq!(Cf8Address::encode(V2, 0x4a3) & 3, 0);
}

#[test]
fn cf8_data_ports() {
    let a = Cf8Address::decode(0x8000_1004, Cf8Mode::Standard).expect("valid");
    assert_eq!(a.bdf, V2);
    assert_eq!(
        (CONFIG_DATA..CONFIG_DATA + 4)
            .map(|p| a.offset(p))
            .collect::<Vec<_>>(),
        [Ok(4), Ok(5), Ok(6), Ok(7)]
    );
    for port in [
        CONFIG_ADDRESS,
        CONFIG_DATA - 1,
        CONFIG_DATA + 4,
        0,
        u16::MAX,
    ] {
        assert_eq!(a.offset(port), Err(Cf8Error::NotDataPort { port }));
    }
}

#[test]
fn guest_bar_sizing_through_cf8() {
    let m = machine();
    let mut t = guest(&m);
    let io = |t: &mut VirtualTopology, cf8: u32, port: u16, size: u8, value: Option<u32>| {
        let a = Cf8Address::decode(cf8, Cf8Mode::Standard).expect("enabled");
        let off = a.offset(port).expect("data port");
        match value {
            Some(v) => t.write(a.bdf, off, size, v).map(|_| 0),
            None => t.read(a.bdf, off, size),
        }
    };
    let bar0 = Cf8Address::encode(V1, 0x10);
    io(&mut t, bar0, CONFIG_DATA, 4, Some(u32::MAX)).expect("size");
    assert_eq!(io(&mut t, bar0, CONFIG_DATA, 4, None), Ok(0xffff_c00c));
    assert_eq!(io(&mut t, bar0, CONFIG_DATA + 2, 2, None), Ok(0xffff));
    assert_eq!(io(&mut t, bar0, CONFIG_DATA + 1, 1, None), Ok(0xc0));
    // A word at 0xCFD is misaligned; a dword at 0xCFE straddles.
    assert_eq!(
        io(&mut t, bar0, CONFIG_DATA + 1, 2, None),
        Err(AccessError::Misaligned {
            offset: 0x11,
            size: 2
        })
    );
    assert_eq!(
        io(&mut t, bar0, CONFIG_DATA + 2, 4, None),
        Err(AccessError::Straddles {
            offset: 0x12,
            size: 4
        })
    );
    // Vendor ID of an empty slot.
    assert_eq!(
        io(
            &mut t,
            Cf8Address::encode(bdf(0, 5, 0), 0),
            CONFIG_DATA,
            2,
            None
        ),
        Ok(0xffff)
    );
}

#[test]
fn ecam_decoding() {
    let ecam = Ecam::new(0, 0).expect("bus 0 only");
    assert_eq!(ecam.decode(0x8010), Ok((V1, 0x10)));
    assert_eq!(ecam.decode(0x10ffc), Ok((V2, 0xffc)));
    assert_eq!(ecam.decode(0xf_ffff), Ok((bdf(0, 31, 7), 0xfff)));
    assert_eq!(
        ecam.decode(0x10_0000),
        Err(EcamError::BusOutOfRange { bus: 1 })
    );
    assert_eq!(
        ecam.decode(1 << 28),
        Err(EcamError::OutOfWindow { offset: 1 << 28 })
    );
    assert_eq!(
        ecam.decode(u64::MAX),
        Err(EcamError::OutOfWindow { offset: u64::MAX })
    );
    let full = Ecam::new(0, 0xff).expect("all buses");
    assert_eq!(full.decode(0x0fff_ffff), Ok((bdf(0xff, 31, 7), 0xfff)));
    assert_eq!(full.decode(0x0120_b004), Ok((bdf(0x12, 1, 3), 0x004)));
    // A region for buses 1..=2: offsets stay relative to bus 0.
    let sub = Ecam::new(1, 2).expect("buses 1-2");
    assert_eq!((sub.start_bus(), sub.end_bus()), (1, 2));
    assert_eq!(sub.decode(0x8000), Err(EcamError::BusOutOfRange { bus: 0 }));
    assert_eq!(sub.decode(0x20_0000), Ok((bdf(2, 0, 0), 0)));
    assert_eq!(
        sub.decode(0x30_0000),
        Err(EcamError::BusOutOfRange { bus: 3 })
    );
    assert_eq!(Ecam::new(3, 2), None);
}

#[test]
fn ecam_accesses_reach_the_extended_space() {
    let m = machine();
    let t = guest(&m);
    let ecam = Ecam::new(0, 0).expect("bus 0");
    let (vbdf, off) = ecam.decode(0x8100).expect("decode");
    assert_eq!((vbdf, off), (V1, 0x100));
    assert_eq!(t.read(vbdf, off, 4), Ok(0), "no extended capabilities");
    let (vbdf, off) = ecam.decode(0x8ffe).expect("decode");
    assert_eq!(
        t.read(vbdf, off, 4),
        Err(AccessError::Straddles {
            offset: 0xffe,
            size: 4
        })
    );
}
