//! Issue "SR-IOV" and issue 17 ("SR-IOV only as configured"): the expectations of `qemu-sriov`,
//! measured on QEMU 10 q35 + OVMF 2022.11 with the harness' device set (`docs/platforms.md`).
//!
//! Measured there: OVMF leaves root port 00:02.0 forwarding 0xc1200000-0xc13fffff (igb's BARs at
//! 0xc1200000-0xc1243fff) and 00:03.0 forwarding 0xc1000000-0xc11fffff (nvme BAR0 at 0xc1000000);
//! both prefetchable windows lie above 4 GiB (0xe000000000-0xe03fffffff). OVMF places igb's VF
//! BARs (64-bit prefetchable) there, and nvme's VF BAR0 (64-bit, not prefetchable) at 0xc1004000
//! in the memory window. boot/scenarios/sriov.toml names igb VFs 0 and 1 (and 8, beyond TotalVFs)
//! and nvme VFs 1 and 3 (and 4): igb gets NumVFs 2, nvme NumVFs 4. The nvme VF BARs stay where
//! OVMF put them; igb's are moved below 4 GiB by the named quirk `igb-vf-bar-32` (QEMU's igb VFs
//! drop the upper 32 bits of their BAR addresses), inside the memory window, which need not grow.
//! VF *n* of igb (PF routing ID 0x100, First VF Offset 0x80, VF Stride 2) is at routing ID
//! 0x180 + 2n: 01:10.0, 01:10.2; nvme's (offset 1, stride 1) at 02:00.1-02:00.4. Addresses are
//! matched as "below 4 GiB" (at most 8 hex digits), not pinned, so that a firmware that lays out
//! BARs differently still passes.

/// `qemu-sriov`, in order.
pub const EXPECT: &[&str] = &[
    super::BANNER,
    r"config: bundle of [0-9]+ bytes, 3 guest\(s\), 1 image\(s\)",
    r"pci: 10 functions on 3 bus\(es\)",
    // The PF side: windows, capability, ARI, NumVFs, VF BAR sizes, placement, VF Enable.
    r"window: bridge 00:02\.0 \(buses 01-01\): memory window 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8}, prefetchable window 0x[0-9a-f]+-0x[0-9a-f]+ \(64-bit\)",
    r"window: bridge 00:03\.0 \(buses 02-02\): memory window 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8}, prefetchable window",
    r"window: firmware claims [1-9][0-9]* range\(s\) \([1-9][0-9]* below 4 GiB\) no new window may take: the memory map's [1-9][0-9]* entries \([0-9]+ neither usable nor the loader's: firmware, ACPI, reserved or MMIO\), the DMAR's register sets",
    r"window: VF BARs go below 4 GiB, in 0x[0-9a-f]{1,8}-0xfebfffff \(from the lowest address firmware gave PCI to below the I/O APIC\)",
    r"sriov: 01:00\.0 8086:10c9 SR-IOV: TotalVFs 8, InitialVFs 8, offset 0x80, stride 2, VF device 0x10ca, page sizes 0x553 \(system 4 KiB\)",
    r"sriov: 01:00\.0: upstream port 00:02\.0: ARI forwarding enabled; ARI Capable Hierarchy set",
    r"sriov: 01:00\.0: NumVFs 2 \(VF 1 is the highest the configuration uses; TotalVFs 8\): First VF Offset 0x80, VF Stride 2 -> VFs 01:10\.0 to 01:10\.2$",
    r"sriov: 01:00\.0: VF BAR0 mem64 prefetchable 16 KiB per VF, 32 KiB for 2; VF BAR3 mem64 prefetchable 16 KiB per VF, 32 KiB for 2",
    r"sriov: 01:00\.0: moving the VF BARs below 4 GiB: quirk igb-vf-bar-32: VF BAR0 at 0x[0-9a-f]+-0x[0-9a-f]+ reaches above 4 GiB and the VFs of 8086:10c9 \(QEMU's igb\) drop the upper 32 bits of their BAR addresses",
    r"window: 01:00\.0: VF BARs get 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8} \(64 KiB\)",
    r"window: bridge 00:02\.0 memory window (0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8} holds them \(unchanged\)|0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8} -> 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8} to hold them); memory decode on",
    r"sriov: 01:00\.0: programmed VF BAR0 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8}, VF BAR3 0x[0-9a-f]{1,8}-0x[0-9a-f]{1,8} \(below 4 GiB, upper dwords 0\)",
    r"sriov: 01:00\.0: 2 VFs enabled \(VF Enable and VF MSE set",
    r"sriov: 02:00\.0 1b36:0010 SR-IOV: TotalVFs 4, InitialVFs 4, offset 0x1, stride 1, VF device 0x0010",
    r"sriov: 02:00\.0: upstream port 00:03\.0: ARI forwarding enabled; ARI Capable Hierarchy set",
    r"sriov: 02:00\.0: NumVFs 4 \(VF 3 is the highest the configuration uses; TotalVFs 4\): First VF Offset 0x1, VF Stride 1 -> VFs 02:00\.1 to 02:00\.4",
    r"sriov: 02:00\.0: VF BAR0 mem64 16 KiB per VF, 64 KiB for 4$",
    r"sriov: 02:00\.0: kept where firmware put them: VF BAR0 0x[0-9a-f]+-0x[0-9a-f]+ \(inside a window of every bridge above\)",
    r"sriov: 02:00\.0: 4 VFs enabled \(VF Enable and VF MSE set",
    r"sriov: waited 100 ms after VF Enable \(TSC at [1-9][0-9]*\.[0-9]{3} MHz, measured against the ACPI PM timer at port 0x608\) before configuration requests to VFs",
    // The igb VFs: BDF, identity (PF vendor, VF Device ID 0x10ca), BARs below 4 GiB, decoding.
    r"pci:   01:10\.0 8086:10ca class 02:00:00 Ethernet controller, VF 0 of 01:00\.0$",
    r"pci:       BAR0 mem64 prefetchable 0x[0-9a-f]{1,8} size 16 KiB, BAR3 mem64 prefetchable 0x[0-9a-f]{1,8} size 16 KiB$",
    r"sriov:   01:10\.0: BAR3 decodes at 0x[0-9a-f]{1,8}: MSI-X entry 0 Vector Control 0x1 ",
    r"pci:   01:10\.2 8086:10ca class 02:00:00 Ethernet controller, VF 1 of 01:00\.0$",
    r"pci:       BAR0 mem64 prefetchable 0x[0-9a-f]{1,8} size 16 KiB, BAR3 mem64 prefetchable 0x[0-9a-f]{1,8} size 16 KiB$",
    r"sriov:   01:10\.2: BAR3 decodes at 0x[0-9a-f]{1,8}: MSI-X entry 0 Vector Control 0x1 ",
    r"sriov: 01:00\.0: 2 of 2 VFs answer, 2 with MSI-X tables decoding; every VF BAR below 4 GiB",
    // Every nvme VF (VF Device ID 0x0010), where OVMF put them.
    r"pci:   02:00\.1 1b36:0010 class 01:08:02 NVM Express controller, VF 0 of 02:00\.0$",
    r"pci:       BAR0 mem64 0x[0-9a-f]+ size 16 KiB$",
    r"sriov:   02:00\.1: BAR0 decodes at 0x[0-9a-f]+: MSI-X entry 0 Vector Control 0x1 ",
    r"pci:   02:00\.2 1b36:0010 class 01:08:02 NVM Express controller, VF 1 of 02:00\.0$",
    r"pci:       BAR0 mem64 0x[0-9a-f]+ size 16 KiB$",
    r"sriov:   02:00\.2: BAR0 decodes at 0x[0-9a-f]+: MSI-X entry 0 Vector Control 0x1 ",
    r"pci:   02:00\.3 1b36:0010 class 01:08:02 NVM Express controller, VF 2 of 02:00\.0$",
    r"pci:       BAR0 mem64 0x[0-9a-f]+ size 16 KiB$",
    r"sriov:   02:00\.3: BAR0 decodes at 0x[0-9a-f]+: MSI-X entry 0 Vector Control 0x1 ",
    r"pci:   02:00\.4 1b36:0010 class 01:08:02 NVM Express controller, VF 3 of 02:00\.0$",
    r"pci:       BAR0 mem64 0x[0-9a-f]+ size 16 KiB$",
    r"sriov:   02:00\.4: BAR0 decodes at 0x[0-9a-f]+: MSI-X entry 0 Vector Control 0x1 ",
    r"sriov: 02:00\.0: 4 of 4 VFs answer, 4 with MSI-X tables decoding",
    r"pci: 16 functions after enabling SR-IOV \(6 VFs\)",
    DMAR_BRIDGE_RP0,
    DMAR_BRIDGE_RP1,
    // boot/scenarios/sriov.toml: the configured VFs in their guests' domains; refused entries
    // named by guest and `[[guest.device]]` index.
    // The nvme VFs' secondary controllers are brought online first (crate::nvme), with the PF's
    // admin queues in the hypervisor's own domain 1: the guests' domains start at 2.
    r#"iommu: created domain 1 "nvme-pf-02:00\.0": IOVA 0x10000000-0x10002fff"#,
    r#"nvme: 02:00\.0: VF 1 \(02:00\.2\) for guest "a": secondary controller 0x2 online with 2 VQ and 1 VI resources"#,
    r#"nvme: 02:00\.0: VF 3 \(02:00\.4\) for guest "c": secondary controller 0x4 online with 2 VQ and 1 VI resources"#,
    r#"iommu: created domain 2 "a": IOVA 0x0-0x3fffff"#,
    r#"iommu: assigned 01:10\.0 to domain 2 "a" on unit 0xfed90000: context entry DID 2"#,
    r#"guest "a": assigned 01:10\.0 \(8086:10c9 VF 0\) in IOMMU domain 2$"#,
    r#"iommu: assigned 02:00\.2 to domain 2 "a" on unit 0xfed90000: context entry DID 2"#,
    r#"guest "a": assigned 02:00\.2 \(02:00\.0 VF 1\) in IOMMU domain 2$"#,
    r#"guest "a": 4 MiB at HPA 0x[0-9a-f]+, 2 function\(s\) assigned"#,
    r#"iommu: created domain 3 "b""#,
    r#"iommu: assigned 01:10\.2 to domain 3 "b" on unit 0xfed90000: context entry DID 3"#,
    r#"guest "b": assigned 01:10\.2 \(01:00\.0 VF 1\) in IOMMU domain 3$"#,
    r#"guest "b": device\[1\] 8086:10c9 VF 8 not assigned: VF index 8 is at or beyond TotalVFs 8 of 01:00\.0$"#,
    r#"guest "b": device\[2\] 1234:11e8 VF 0 not assigned: 00:04\.0 has no SR-IOV capability: it has no VFs$"#,
    r#"guest "b": device\[3\] 01:00\.0 VF 0 not assigned: 01:10\.0 is already assigned to domain 2$"#,
    r#"guest "b": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
    r#"iommu: created domain 4 "c""#,
    r#"guest "c": assigned 02:00\.4 \(1b36:0010 VF 3\) in IOMMU domain 4$"#,
    r#"guest "c": device\[1\] 02:00\.0 VF 4 not assigned: VF index 4 is at or beyond TotalVFs 4 of 02:00\.0$"#,
    r#"guest "c": device\[2\] 03:00\.0 VF 0 not assigned: no PF 03:00\.0 on this machine$"#,
    r#"guest "c": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned"#,
    r"boot complete: .*DMAR present, DMA remapping on",
    r"CONDUIT EXIT: success",
];

/// The DMAR's root-port bridge scopes cover the VFs enabled (igb's 2 configured ones).
pub const DMAR_BRIDGE_RP0: &str = r"DMAR:   bridge 00:02\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 01-01: 01:00\.0 8086:10c9, 01:10\.0 8086:10ca, 01:10\.2 8086:10ca\s*$";
/// The same for 00:03.0 and the nvme VFs.
pub const DMAR_BRIDGE_RP1: &str = r"DMAR:   bridge 00:03\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 02-02: 02:00\.0 1b36:0010, 02:00\.1 1b36:0010, 02:00\.2 1b36:0010, 02:00\.3 1b36:0010, 02:00\.4 1b36:0010\s*$";

/// Forbidden: a VF that does not answer or decode, a PF left without VFs, a VF beyond the
/// configured ones (igb's VF 2 at 01:10.4).
pub const FORBID: &[&str] = &[
    r"panicked",
    r"EXCEPTION #",
    r"DMA fault",
    r"does not decode",
    r"does not answer",
    r"VFs not enabled",
    r"01:10\.4",
];
