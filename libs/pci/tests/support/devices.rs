//! The QEMU q35 test machine of `docs/platforms.md`, as fake config spaces.
//!
//! Measured facts (`docs/platforms.md`): IDs, bus topology, root-port ACS at 0x148, the igb and nvme
//! extended capability chains and SR-IOV values, the igb PF BAR sizes, the VF BARs. Taken from
//! QEMU 10 sources: igb legacy capabilities PM@0x40 → MSI@0x50 → MSI-X@0x70 → PCIe@0xa0 and BAR3
//! being 64-bit (`hw/net/igb.c`); root-port AER@0x100 (`GEN_PCIE_ROOT_PORT_AER_OFFSET`); nvme
//! PCIe@0x80 and PM@0x60 (`hw/nvme/ctrl.c`). Model choices (not measured): the root ports'
//! PCIe capability at 0x40, the nvme MSI-X capability at 0x40, programmed BAR addresses.

use conduit_pci::Bdf;

use super::fake::{FakeConfig, FakeFn, bdf};

pub const IGB_PF: Bdf = Bdf::from_devfn(1, 0);
pub const NVME_PF: Bdf = Bdf::from_devfn(2, 0);
pub const RP0: Bdf = Bdf::from_devfn(0, 2 << 3);
pub const RP1: Bdf = Bdf::from_devfn(0, 3 << 3);

pub const IGB_SRIOV: u16 = 0x160;
pub const NVME_SRIOV: u16 = 0x120;

/// Where OVMF leaves the igb VF BARs (`docs/platforms.md`): above 4 GiB.
pub const OVMF_VF_BAR0: u64 = 0xe0_0000_0000;

/// Writes an SR-IOV capability at `off` (registers per PCIe Base Spec §9.3.3).
pub fn sriov_cap(
    f: &mut FakeFn,
    off: u16,
    total: u16,
    first_offset: u16,
    stride: u16,
    vf_device: u16,
) {
    f.ext_cap(off, 0x0010, 1, 0);
    f.set16(off + 0x08, 0);
    f.wmask16(off + 0x08, 0x001f);
    f.w1c16(off + 0x0a, 0x0001);
    f.set16(off + 0x0c, total);
    f.set16(off + 0x0e, total);
    f.wmask16(off + 0x10, 0xffff);
    f.set16(off + 0x14, first_offset);
    f.set16(off + 0x16, stride);
    f.set16(off + 0x1a, vf_device);
    f.set32(off + 0x1c, 0x553);
    f.set32(off + 0x20, 0x1);
    f.wmask32(off + 0x20, 0xffff_ffff);
    f.sriov = Some(off);
}

/// A PCIe capability (version 2) of `port_type` at `off`; `ari_fwd` sets DevCap2.ARI forwarding.
pub fn pcie_cap(f: &mut FakeFn, off: u8, next: u8, port_type: u8, ari_fwd: bool) {
    f.cap(off, 0x10, next);
    let o = u16::from(off);
    f.set16(o + 2, 0x0002 | (u16::from(port_type) << 4));
    f.set32(o + 0x24, if ari_fwd { 1 << 5 } else { 0 });
    if ari_fwd {
        f.wmask16(o + 0x28, 1 << 5);
    }
}

/// `pcie-root-port` 1b36:000c at 00:0x.0 forwarding to `bus`.
pub fn root_port(bus: u8) -> FakeFn {
    let mut f = FakeFn::new(0x1b36, 0x000c, 0x060400, 0x01);
    f.set32(0x18, u32::from(bus) << 8 | u32::from(bus) << 16);
    f.wmask32(0x18, 0x00ff_ffff);
    f.cap_list(0x40);
    pcie_cap(&mut f, 0x40, 0, 0x4, true);
    f.ext_cap(0x100, 0x0001, 2, 0x148);
    f.ext_cap(0x148, 0x000d, 1, 0);
    f.set16(0x04, 0x0007);
    f
}

/// igb PF 8086:10c9 (82576), rev 1.
pub fn igb_pf() -> FakeFn {
    let mut f = FakeFn::new(0x8086, 0x10c9, 0x020000, 0x00);
    f.set8(0x08, 1);
    f.mem32_bar_at(FakeFn::bar(0), 128 << 10, false, 0xc106_0000);
    f.mem32_bar_at(FakeFn::bar(1), 128 << 10, false, 0xc108_0000);
    f.io_bar_at(FakeFn::bar(2), 32, 0x6000);
    f.mem64_bar_at(FakeFn::bar(3), 16 << 10, false, 0xc10a_0000);
    f.cap_list(0x40);
    f.cap(0x40, 0x01, 0x50);
    f.cap(0x50, 0x05, 0x70);
    f.cap(0x70, 0x11, 0xa0);
    pcie_cap(&mut f, 0xa0, 0, 0x0, false);
    f.ext_cap(0x100, 0x0001, 2, 0x150);
    f.ext_cap(0x150, 0x000e, 1, IGB_SRIOV);
    sriov_cap(&mut f, IGB_SRIOV, 8, 0x80, 2, 0x10ca);
    f.mem64_bar_at(IGB_SRIOV + 0x24, 16 << 10, true, OVMF_VF_BAR0);
    f.mem64_bar_at(
        IGB_SRIOV + 0x24 + 12,
        16 << 10,
        true,
        OVMF_VF_BAR0 + (128 << 10),
    );
    f.set16(0x04, 0x0007);
    f
}

/// nvme PF 1b36:0010 with `sriov_max_vfs=4`.
pub fn nvme_pf() -> FakeFn {
    let mut f = FakeFn::new(0x1b36, 0x0010, 0x010802, 0x00);
    f.mem64_bar_at(FakeFn::bar(0), 16 << 10, false, 0xc100_0000);
    f.cap_list(0x40);
    f.cap(0x40, 0x11, 0x60);
    f.cap(0x60, 0x01, 0x80);
    pcie_cap(&mut f, 0x80, 0, 0x0, false);
    f.ext_cap(0x100, 0x000e, 1, NVME_SRIOV);
    sriov_cap(&mut f, NVME_SRIOV, 4, 1, 1, 0x0010);
    f.mem64_bar_at(NVME_SRIOV + 0x24, 16 << 10, false, 0);
    f.set16(0x04, 0x0006);
    f
}

/// The memory windows OVMF leaves on the root ports (measured on QEMU 10 q35 + OVMF 2022.11):
/// 00:02.0 memory 0xc1200000-0xc13fffff, prefetchable 0xe000000000-0xe01fffffff; 00:03.0 memory
/// 0xc1000000-0xc11fffff, prefetchable 0xe020000000-0xe03fffffff. Base/limit address bits are
/// writable, the type bits read-only.
pub fn ovmf_windows(mut c: FakeConfig) -> FakeConfig {
    for (rp, mem, pref) in [
        (RP0, 0xc130_c120, 0x1ff1_0001),
        (RP1, 0xc110_c100, 0x3ff1_2001),
    ] {
        let f = c.func(rp);
        f.set32(0x20, mem);
        f.wmask32(0x20, 0xfff0_fff0);
        f.set32(0x24, pref);
        f.wmask32(0x24, 0xfff0_fff0);
        for upper in [0x28, 0x2c] {
            f.set32(upper, 0xe0);
            f.wmask32(upper, u32::MAX);
        }
    }
    c
}

/// The whole q35 machine.
pub fn q35() -> FakeConfig {
    let mut c = FakeConfig::default();
    c.insert(bdf(0, 0, 0), FakeFn::new(0x8086, 0x29c0, 0x060000, 0x00));
    c.insert(bdf(0, 1, 0), FakeFn::new(0x1234, 0x1111, 0x030000, 0x00));
    c.insert(RP0, root_port(1));
    c.insert(RP1, root_port(2));
    c.insert(bdf(0, 4, 0), FakeFn::new(0x1234, 0x11e8, 0x00ff00, 0x00));
    c.insert(bdf(0, 0x1f, 0), FakeFn::new(0x8086, 0x2918, 0x060100, 0x80));
    c.insert(bdf(0, 0x1f, 2), FakeFn::new(0x8086, 0x2922, 0x010601, 0x00));
    c.insert(bdf(0, 0x1f, 3), FakeFn::new(0x8086, 0x2930, 0x0c0500, 0x00));
    c.insert(IGB_PF, igb_pf());
    c.insert(NVME_PF, nvme_pf());
    c
}
