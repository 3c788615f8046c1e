//! Issue 17, "Real hardware": SR-IOV only as configured and a hardware wait on a stopped clock.
//! Measured on QEMU 10 q35 + OVMF 2022.11 with the harness' device set (`docs/platforms.md`).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{MachineSpec, QemuSpec};
use crate::script::Step;

/// Must show 3: a configuration using only nvme VF 0 enables exactly one nvme VF (NumVFs 1), its
/// VF BAR where OVMF put it, and leaves igb's SR-IOV untouched (NumVFs 0, VF Enable off); `pci`
/// in the debug shell reads both PFs' registers back.
pub const QEMU_SRIOV_NVME_ONLY: Scenario = Scenario {
    name: "qemu-sriov-nvme-only",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/sriov-nvme-only.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"pci: 10 functions on 3 bus\(es\)",
        r"sriov: 01:00\.0 8086:10c9 SR-IOV: TotalVFs 8, InitialVFs 8, ",
        r"sriov: 01:00\.0: no configured VF uses it: SR-IOV left as firmware set it \(NumVFs 0, VF Enable off\)$",
        r"sriov: 02:00\.0 1b36:0010 SR-IOV: TotalVFs 4, InitialVFs 4, ",
        r"sriov: 02:00\.0: NumVFs 1 \(VF 0 is the highest the configuration uses; TotalVFs 4\): First VF Offset 0x1, VF Stride 1 -> VFs 02:00\.1 to 02:00\.1$",
        r"sriov: 02:00\.0: VF BAR0 mem64 16 KiB per VF, 16 KiB for 1$",
        r"sriov: 02:00\.0: kept where firmware put them: VF BAR0 0x[0-9a-f]+-0x[0-9a-f]+ \(inside a window of every bridge above\)$",
        r"sriov: 02:00\.0: 1 VFs enabled \(VF Enable and VF MSE set",
        r"pci:   02:00\.1 1b36:0010 class 01:08:02 NVM Express controller, VF 0 of 02:00\.0$",
        r"sriov:   02:00\.1: BAR0 decodes at 0x[0-9a-f]+: MSI-X entry 0 Vector Control 0x1 ",
        r"sriov: 02:00\.0: 1 of 1 VFs answer, 1 with MSI-X tables decoding",
        r"pci: 11 functions after enabling SR-IOV \(1 VFs\)",
        r"DMAR:   bridge 00:02\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 01-01: 01:00\.0 8086:10c9\s*$",
        r"DMAR:   bridge 00:03\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 02-02: 02:00\.0 1b36:0010, 02:00\.1 1b36:0010\s*$",
        r"nvme: 02:00\.0: function level reset done \(configuration restored; NumVFs/VF Enable cleared by the reset: 1 VF\(s\) were enabled before\)",
        r"nvme: 02:00\.0: 1 VF\(s\) enabled \(NumVFs 1, VF BAR0 0x[0-9a-f]+, 16 KiB per VF\), VF Enable and VF MSE set after the FLR",
        r#"nvme: 02:00\.0: VF 0 \(02:00\.1\) for guest "a": secondary controller 0x1 online with 2 VQ and 1 VI resources"#,
        r#"guest "a": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2$"#,
        // `pci`: the registers read live.
        r"conduit> pci$",
        r"^pci: 11 function\(s\) \(1 of them SR-IOV VFs\), enumerated at boot through ECAM at 0xb0000000",
        r"^    01:00\.0 8086:10c9 Ethernet controller; owner: hypervisor$",
        r"^      SR-IOV PF: TotalVFs 8, NumVFs 0, VF Enable off, VF device 8086:10ca, ",
        r"^        no VF enabled$",
        // The PF belongs to the hypervisor-owned domain holding its admin queues (crate::nvme).
        r#"^    02:00\.0 1b36:0010 NVM Express controller; owner: guest "nvme-pf-02:00\.0" \(domain 1\)$"#,
        r"^      SR-IOV PF: TotalVFs 4, NumVFs 1, VF Enable on, VF device 1b36:0010, first VF offset 0x1, stride 1$",
        r#"^        VF 0 02:00\.1 1b36:0010; owner: guest "a" \(domain 2\)$"#,
        r"conduit> quit$",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"DMA fault",
        // No igb VF, no second nvme VF, no VF BAR moved.
        r"01:1[01]\.[0-7]",
        r"02:00\.[2-7]",
        r"moving the VF BARs",
        r"VFs not enabled",
    ],
    input: &[
        Step::line(r"shell: ready", "pci"),
        Step::line(r"^        VF 0 02:00\.1 ", "quit"),
    ],
    end: End::Success,
    timeout_secs: 120,
};

/// Must show 5: a hardware wait whose clock never advances ends with the named error, not a hang.
/// The test image freezes the time reference every wait reads for PCI enumeration; the 100 ms
/// wait after VF Enable gives up with "clock stopped", the PF is refused (VF Enable off, NumVFs
/// 0), the clock runs again and the boot completes, the guest's VF refused with the reason.
pub const QEMU_CLOCK_STOPPED: Scenario = Scenario {
    name: "qemu-clock-stopped",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/clock-stopped.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"selftest: clock-stopped: every wait now reads a clock stuck at TSC 0x[0-9a-f]+$",
        r"sriov: 02:00\.0: 1 VFs enabled \(VF Enable and VF MSE set",
        r"sriov: 02:00\.0: VFs not enabled: the 100 ms wait after VF Enable: clock stopped: the TSC read 0x[0-9a-f]+ 1048576 times in a row, so the wait was abandoned instead of hanging$",
        r"selftest: clock-stopped: the clock runs again$",
        r"nvme: 02:00\.0: not driven: its VFs were not enabled at boot: the 100 ms wait after VF Enable: clock stopped",
        r"selftest: clock-stopped: 02:00\.0 refused: the 100 ms wait after VF Enable: clock stopped: .*; VF Enable off, NumVFs 0$",
        r"selftest: clock-stopped: PASS \(1 steps\)",
        r#"guest "a": device\[0\] 02:00\.0 VF 0 not assigned: .*clock stopped"#,
        r"boot complete: ",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"FAIL",
        r"DMA fault",
        r"assigned 02:00\.1 ",
    ],
    input: &[],
    end: End::Success,
    timeout_secs: 120,
};

/// Must show 2: a PCIe expander bridge (`pxb-pcie`, bus_nr 0x20: its own host bridge and root
/// bus, which no bridge on bus 0 leads to) with a root port (20:00.0) holding a second edu
/// (21:00.0). Enumeration finds the root bus by probing the MCFG range, `pci` lists the edu, and
/// it is assigned to the guest by address, in its IOMMU domain.
pub const QEMU_PXB: Scenario = Scenario {
    name: "qemu-pxb",
    machine: MachineSpec::Qemu(QemuSpec {
        extra_args: &[
            "-device",
            "pxb-pcie,id=pxb1,bus_nr=32,bus=pcie.0",
            "-device",
            "pcie-root-port,id=rp9,bus=pxb1,chassis=9",
            "-device",
            "edu,bus=rp9",
        ],
        ..QemuSpec::TCG
    }),
    config: Config::File("boot/scenarios/pxb.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"pci: bus 20 is a root bus no bridge leads to \(another host bridge\): scanning it$",
        r"pci: 20:00\.0 1b36:000c class 06:04:00 PCI-to-PCI bridge, buses 21-21$",
        r"pci:   21:00\.0 1234:11e8 class 00:ff:00 unclassified device$",
        r"pci: 13 functions on 5 bus\(es\)",
        // QEMU 10's DMAR (INCLUDE_PCI_ALL clear) names the expander's root port as a bridge
        // scope whose path starts at bus 0x20, and the expander's host bridge (00:05.0, 1b36:000b).
        r"DMAR:   bridge 20:00\.0 1b36:000c \(PCI-to-PCI bridge\) covers buses 21-21: 21:00\.0 1234:11e8\s*$",
        r"DMAR:   endpoint 00:05\.0 1b36:000b \(host bridge\)",
        r#"iommu: assigned 21:00\.0 to domain 1 "a" on unit 0xfed90000: context entry DID 1"#,
        r#"guest "a": assigned 21:00\.0 \(21:00\.0\) in IOMMU domain [0-9]+$"#,
        r"conduit> pci$",
        r"^  20:00\.0 1b36:000c PCI-to-PCI bridge, buses 21-21; owner: hypervisor$",
        r#"^    21:00\.0 1234:11e8 unclassified device; owner: guest "a" \(domain [0-9]+\)$"#,
        r"conduit> quit$",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"DMA fault", r"not assigned"],
    input: &[
        Step::line(r"shell: ready", "pci"),
        Step::line(r"^    21:00\.0 ", "quit"),
    ],
    end: End::Success,
    timeout_secs: 120,
};
