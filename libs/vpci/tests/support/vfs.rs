//! The igb and nvme VFs of the q35 test machine (`docs/platforms.md`).
//!
//! Measured (`docs/platforms.md`): VF Device IDs 0x10ca / 0x0010, First VF Offset / Stride 0x80/2
//! and 1/1, igb VF BAR0 + BAR3 16 KiB 64-bit prefetchable, nvme VF BAR0 16 KiB 64-bit
//! non-prefetchable, igb VF MSI-X 3 vectors with the table in BAR3, nvme VF MSI-X 1 vector with
//! the table at BAR0 + 0x2000. From QEMU 10 sources (`hw/net/igbvf.c`, `hw/nvme/ctrl.c`): igb VF
//! revision 1, MSI-X at 0x70 with the PBA at BAR3 + 0x2000, PCIe at 0xa0, AER at 0x100, ARI at
//! 0x150; nvme VF PM at 0x60, PCIe at 0x80, ARI at 0x100; QEMU links the newest capability
//! first. Model choices (not measured): the nvme VF MSI-X at 0x40 with its PBA at BAR0 + 0x3000,
//! subsystem IDs, the Device Status / Link Status contents, MSI-X left enabled on the device
//! by a previous owner, and the VF BAR windows below 4 GiB.

use conduit_pci::{Bars, Bdf, ConfigAccess, SriovCap};
use conduit_vpci::{Policy, VirtualFunction};

use super::pci::devices::{IGB_PF, NVME_PF, pcie_cap, q35};
use super::pci::fake::{FakeConfig, FakeFn, bdf};

pub const IGB_VF0: Bdf = Bdf::from_devfn(1, 0x80);
pub const IGB_VF1: Bdf = Bdf::from_devfn(1, 0x82);
pub const NVME_VF0: Bdf = Bdf::from_devfn(2, 1);
pub const NVME_VF1: Bdf = Bdf::from_devfn(2, 2);

/// VF BAR windows (two VFs × 16 KiB each), below 4 GiB as `docs/platforms.md` requires.
pub const IGB_VF_BAR0: u64 = 0xc200_0000;
pub const IGB_VF_BAR3: u64 = 0xc201_0000;
pub const NVME_VF_BAR0: u64 = 0xc300_0000;
pub const KIB16: u64 = 16 << 10;

/// A VF's header: IDs read 0xFFFF, BARs read-only zero, only Bus Master writable in Command
/// (PCIe Base Spec r6.0 §9.3.4.1), Interrupt Pin 0.
fn vf_header(class: u32, rev: u8) -> FakeFn {
    let mut f = FakeFn::new(0xffff, 0xffff, class, 0x00);
    f.set8(0x08, rev);
    f.wmask16(0x04, 0x0004);
    f
}

/// PCIe capability with FLR, a Device Status error bit and a Link Status value.
fn vf_pcie(f: &mut FakeFn, off: u8, next: u8) {
    pcie_cap(f, off, next, 0x0, false);
    let o = u16::from(off);
    f.set32(o + 0x04, 1 << 28);
    f.set16(o + 0x0a, 0x0004);
    f.set16(o + 0x12, 0x1011);
}

/// MSI-X capability: `vectors`, table and PBA (BIR in the low 3 bits), left enabled.
pub fn msix_cap(f: &mut FakeFn, off: u8, next: u8, vectors: u16, table: u32, pba: u32) {
    f.cap(off, 0x11, next);
    let o = u16::from(off);
    f.set16(o + 2, 0x8000 | (vectors - 1));
    f.set32(o + 4, table);
    f.set32(o + 8, pba);
}

/// igb VF (82576 VF): PCIe@0xa0 → MSI-X@0x70; AER@0x100 → ARI@0x150.
pub fn igb_vf() -> FakeFn {
    let mut f = vf_header(0x020000, 1);
    f.set32(0x2c, 0x0000_8086);
    f.cap_list(0xa0);
    vf_pcie(&mut f, 0xa0, 0x70);
    msix_cap(&mut f, 0x70, 0, 3, 0x0000_0003, 0x0000_2003);
    f.ext_cap(0x100, 0x0001, 2, 0x150);
    f.set32(0x104, 0x0000_0010);
    f.ext_cap(0x150, 0x000e, 1, 0);
    f.set32(0x154, 0x0000_0100);
    f
}

/// nvme VF: MSI-X@0x40 → PCIe@0x80 → PM@0x60; ARI@0x100.
pub fn nvme_vf() -> FakeFn {
    let mut f = vf_header(0x010802, 2);
    f.set32(0x2c, 0x1100_1af4);
    f.cap_list(0x40);
    msix_cap(&mut f, 0x40, 0x80, 1, 0x0000_2000, 0x0000_3000);
    vf_pcie(&mut f, 0x80, 0x60);
    f.cap(0x60, 0x01, 0);
    f.set16(0x62, 0x0003);
    f.ext_cap(0x100, 0x000e, 1, 0);
    f
}

/// The q35 machine with NumVFs=2 on both PFs, VF BARs programmed below 4 GiB, VFs enabled.
pub struct Machine {
    pub cfg: FakeConfig,
    pub igb: SriovCap,
    pub igb_bars: Bars,
    pub nvme: SriovCap,
    pub nvme_bars: Bars,
}

fn enable(cfg: &mut FakeConfig, pf: Bdf, bases: &[(u8, u64)]) -> (SriovCap, Bars) {
    let mut s = SriovCap::find(cfg, pf).expect("walk").expect("SR-IOV");
    s.set_num_vfs(cfg, 2).expect("NumVFs");
    let sized = s.size_vf_bars(cfg).expect("size");
    for &(index, base) in bases {
        let bar = *sized.get(index).expect("VF BAR");
        s.write_vf_bar(cfg, &bar, base).expect("program");
    }
    s.enable_vfs(cfg, true).expect("enable");
    let bars = s.size_vf_bars(cfg).expect("re-size");
    (s, bars)
}

pub fn machine() -> Machine {
    let mut cfg = q35();
    let (igb, igb_bars) = enable(&mut cfg, IGB_PF, &[(0, IGB_VF_BAR0), (3, IGB_VF_BAR3)]);
    let (nvme, nvme_bars) = enable(&mut cfg, NVME_PF, &[(0, NVME_VF_BAR0)]);
    cfg.insert(IGB_VF0, igb_vf());
    cfg.insert(IGB_VF1, igb_vf());
    cfg.insert(NVME_VF0, nvme_vf());
    cfg.insert(NVME_VF1, nvme_vf());
    Machine {
        cfg,
        igb,
        igb_bars,
        nvme,
        nvme_bars,
    }
}

impl Machine {
    pub fn igb_vf(&self, vf: Bdf) -> VirtualFunction {
        VirtualFunction::from_vf(&self.cfg, &self.igb, &self.igb_bars, vf, &Policy::DEFAULT)
            .expect("igb VF builds")
    }

    pub fn nvme_vf(&self, vf: Bdf) -> VirtualFunction {
        VirtualFunction::from_vf(&self.cfg, &self.nvme, &self.nvme_bars, vf, &Policy::DEFAULT)
            .expect("nvme VF builds")
    }
}

/// A plain function built with `from_function` from a one-function fake.
pub fn single(f: FakeFn) -> Result<VirtualFunction, conduit_vpci::BuildError> {
    let mut cfg = FakeConfig::default();
    let b = bdf(3, 0, 0);
    cfg.insert(b, f);
    VirtualFunction::from_function(&mut cfg, b, &Policy::DEFAULT)
}

/// The virtual function seen as a configuration space, so conduit-pci's walkers can check it.
pub struct View<'a>(pub &'a VirtualFunction);

pub const VIEW_BDF: Bdf = Bdf::from_devfn(0, 8);

impl ConfigAccess for View<'_> {
    fn read32(&self, _bdf: Bdf, offset: u16) -> u32 {
        self.0.read(offset, 4).expect("aligned dword read")
    }
    fn write32(&mut self, _bdf: Bdf, _offset: u16, _value: u32) {
        panic!("views are read-only");
    }
}

/// The whole 4 KiB image, byte by byte.
pub fn image(vf: &VirtualFunction) -> Vec<u8> {
    (0..0x1000u16)
        .map(|o| vf.read(o, 1).expect("byte read") as u8)
        .collect()
}

/// Legacy capability (id, offset) list of the virtual function.
pub fn legacy_caps(vf: &VirtualFunction) -> Vec<(u8, u16)> {
    conduit_pci::capabilities(&View(vf), VIEW_BDF)
        .map(|c| {
            c.map(|c| (c.id, c.offset))
                .expect("well-formed virtual list")
        })
        .collect()
}

/// Extended capability (id, offset) list of the virtual function.
pub fn ext_caps(vf: &VirtualFunction) -> Vec<(u16, u16)> {
    conduit_pci::ext_capabilities(&View(vf), VIEW_BDF)
        .map(|c| {
            c.map(|c| (c.id, c.offset))
                .expect("well-formed virtual list")
        })
        .collect()
}

/// Writes that must succeed.
pub fn w(vf: &mut VirtualFunction, off: u16, size: u8, value: u32) -> Vec<conduit_vpci::Event> {
    vf.write(off, size, value)
        .expect("valid access")
        .into_iter()
        .collect()
}

/// Reads that must succeed.
pub fn r(vf: &VirtualFunction, off: u16, size: u8) -> u32 {
    vf.read(off, size).expect("valid access")
}

pub fn fake_bdf() -> Bdf {
    bdf(3, 0, 0)
}
