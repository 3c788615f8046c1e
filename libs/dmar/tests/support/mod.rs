//! Test support: a DMAR byte builder, the q35 table, and a fake bridge accessor.
#![allow(dead_code)]

use std::collections::BTreeMap;

use conduit_dmar::{Bdf, BridgeBus};

/// The QEMU 10 q35 DMAR with `intel-iommu,intremap=on` and the topology of `docs/platforms.md`, as
/// `build_dmar_q35` (hw/i386/acpi-build.c) lays it out: ACPI header from `acpi_table_begin`
/// (OEM ID "BOCHS ", OEM table ID "BXPC    ", OEM revision 1, creator "BXPC" revision 1), HAW
/// 0x2f, flags 0x01, 10 reserved bytes; one DRHD (flags 0, size 0, segment 0, base 0xfed90000)
/// whose scopes are the IOAPIC (type 3, id 0, bus 0xff, path 00.0) followed by every function on
/// bus 0 in devfn order: endpoints get type 1, PCI bridges (the two root ports) type 2. The
/// checksum byte (0xc9) was computed independently of the Rust builder.
pub const Q35_DMAR_HEX: &str = concat!(
    "444d41528800000001c9424f4348532042585043202020200100000042585043010000002f01",
    "0000000000000000000000005800000000000000d9fe000000000308000000ff000001080000",
    "0000000001080000000001000208000000000200020800000000030001080000000004000108",
    "000000001f000108000000001f020108000000001f03",
);

pub fn q35_bytes() -> Vec<u8> {
    (0..Q35_DMAR_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&Q35_DMAR_HEX[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Byte builder for DMAR tables.
#[derive(Default, Clone)]
pub struct Table {
    pub bytes: Vec<u8>,
}

impl Table {
    /// ACPI header (QEMU's OEM fields) + HAW + flags + reserved.
    pub fn new(haw: u8, flags: u8) -> Self {
        let mut t = Self::default();
        t.bytes.extend_from_slice(b"DMAR");
        t.u32(0);
        t.u8(1);
        t.u8(0);
        t.bytes.extend_from_slice(b"BOCHS ");
        t.bytes.extend_from_slice(b"BXPC    ");
        t.u32(1);
        t.bytes.extend_from_slice(b"BXPC");
        t.u32(1);
        t.u8(haw);
        t.u8(flags);
        t.bytes.extend_from_slice(&[0; 10]);
        t
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }
    /// Appends a structure of `ty` whose body (after type/length) is `body`; Length computed.
    pub fn structure(&mut self, ty: u16, body: &[u8]) -> &mut Self {
        self.u16(ty);
        self.u16((4 + body.len()) as u16);
        self.raw(body)
    }
    /// Sets Length to the byte count and fixes the checksum.
    pub fn finish(&mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[4..8].copy_from_slice(&len.to_le_bytes());
        fix_checksum(&mut self.bytes);
        self.bytes.clone()
    }
}

/// Recomputes byte 9 so that the first Length bytes sum to zero.
pub fn fix_checksum(bytes: &mut [u8]) {
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let len = len.min(bytes.len());
    bytes[9] = 0;
    let sum = bytes[..len].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    bytes[9] = sum.wrapping_neg();
}

/// A device scope: type, enumeration id, start bus, path.
pub fn scope(ty: u8, enum_id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut v = vec![ty, (6 + 2 * path.len()) as u8, 0, 0, enum_id, bus];
    for &(d, f) in path {
        v.push(d);
        v.push(f);
    }
    v
}

/// DRHD body (after type/length): flags, size, segment, base, scopes.
pub fn drhd_body(flags: u8, size: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![flags, size];
    v.extend_from_slice(&segment.to_le_bytes());
    v.extend_from_slice(&base.to_le_bytes());
    for s in scopes {
        v.extend_from_slice(s);
    }
    v
}

/// The q35 scopes in QEMU's order.
pub fn q35_scopes() -> Vec<Vec<u8>> {
    let mut v = vec![scope(3, 0, 0xff, &[(0, 0)])];
    for (ty, d, f) in [
        (1, 0, 0),
        (1, 1, 0),
        (2, 2, 0),
        (2, 3, 0),
        (1, 4, 0),
        (1, 0x1f, 0),
        (1, 0x1f, 2),
        (1, 0x1f, 3),
    ] {
        v.push(scope(ty, 0, 0, &[(d, f)]));
    }
    v
}

/// The q35 table through the builder.
pub fn q35_built() -> Vec<u8> {
    let mut t = Table::new(0x2f, 0x01);
    t.structure(0, &drhd_body(0, 0, 0, 0xfed9_0000, &q35_scopes()));
    t.finish()
}

/// Fake bridges: BDF → (secondary, subordinate).
#[derive(Default)]
pub struct FakeBridges(pub BTreeMap<Bdf, (u8, u8)>);

impl FakeBridges {
    /// The q35 root ports: 00:02.0 → bus 1, 00:03.0 → bus 2.
    pub fn q35() -> Self {
        let mut m = BTreeMap::new();
        m.insert(bdf(0, 2, 0), (1, 1));
        m.insert(bdf(0, 3, 0), (2, 2));
        Self(m)
    }
}

impl BridgeBus for FakeBridges {
    fn secondary_bus(&self, bridge: Bdf) -> Option<u8> {
        self.0.get(&bridge).map(|b| b.0)
    }
    fn subordinate_bus(&self, bridge: Bdf) -> Option<u8> {
        self.0.get(&bridge).map(|b| b.1)
    }
}

pub fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(bus, dev, func).expect("valid BDF")
}
