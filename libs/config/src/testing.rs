//! What only the test image carries out: the in-kernel test scenarios (`[test] scenario`) and the
//! settings the production image refuses ([`TestOnly`]).

use crate::model::{ApicTest, GuestBreak};
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Test-only scenarios the kernel runs after bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestCase {
    /// Read an address that no page table maps: must end in a decoded #PF.
    PageFault,
    /// VT-d: two DMA-test domains, QEMU's edu device (1234:11e8) as the DMA master, the scripted
    /// map/DMA/unmap/fault sequence.
    VtdEdu,
    /// [`TestCase::VtdEdu`] with register-based invalidation even where queued invalidation is
    /// offered.
    VtdEduRegisterInvalidation,
    /// The kernel parses a corrupted copy of the firmware's DMAR: remapping must stay off and
    /// every device assignment must be refused.
    DmarCorrupt,
    /// NVMe SR-IOV: the configured VFs of an NVMe PF are brought online through the PF's
    /// Virtualization Management command; then, on behalf of the first guest given such a VF
    /// (no vCPU runs it), an admin queue in that guest's memory runs Identify Controller through
    /// the VF, and an Identify whose data pointer lies outside the guest's memory must be blocked
    /// by the IOMMU.
    NvmeVf,
    /// [`TestCase::NvmeVf`]'s bring-up with deliberate errors: the first configured NVMe VF is
    /// addressed with a controller ID the PF does not list, the second asks for more VQ
    /// resources than a secondary controller may have. Both must be reported with the NVMe status
    /// and left unassigned; the other VFs come online.
    NvmeVfBad,
    /// NVMe VFs doing I/O: on behalf of the first two guests given VFs of one NVMe PF (no vCPU
    /// runs them), guest A's VF writes a mebibyte from guest A's memory to the shared namespace
    /// through I/O queues in guest A's memory, guest B's VF reads it back into guest B's memory;
    /// completions raise each VF's MSI-X on its own guest's IRTE; writes whose PRP or PRP list
    /// entry points outside guest A's memory must be blocked by the IOMMU.
    NvmeVfIo,
    /// VT-d interrupt remapping: edu's MSI through a guest-owned, source-verified IRTE (raised
    /// interrupts and the DMA-completion interrupt counted per guest), forged messages blocked
    /// with decoded faults (0x26, 0x22, 0x21), an I/O APIC-routed timer in remappable format,
    /// refused IRTE requests, a flooding device cut off.
    Intremap,
    /// The control task: a scripted guest-view sequence against the first guest's first
    /// assigned function through the message interface (identity, BAR sizing, capability
    /// filtering, read-only fields, bad requests), then deliberate faults of every kind, each
    /// reported, followed by a restart and a correct next read.
    Control,
    /// igb SR-IOV interrupts: on behalf of the first guest given an igb VF (no vCPU runs it), its
    /// driver programs the VF's MSI-X entry through the guest's virtual table; the resulting IRTE
    /// must be that guest's, the VF's interrupts (raised through its EICS) must all be counted
    /// for that guest and none for the other, and the same VF aimed at an IRTE of the second
    /// guest must be blocked with a source-id fault.
    IgbVf,
    /// igb VF data path: on behalf of the first guest given an igb VF (no vCPU runs it), its
    /// driver sets up the VF's transmit and receive rings in the guest's memory, sends an ARP
    /// request and an ICMP echo to the network's gateway and checks the replies that land in the
    /// guest's memory and raise the guest's interrupt; a transmit buffer outside the guest's
    /// memory must be blocked with a DMA fault attributed to that VF, and the next packet go.
    IgbNet,
    /// The igb PF's mailbox service: guest A's VF resets and gets its configured MAC; a request
    /// for guest B's VF's MAC, an unknown and a malformed message are refused (NACK) and logged;
    /// guest B's VF handshake is unaffected.
    IgbMailbox,
    /// A hardware wait whose clock never advances: the time reference every wait reads is
    /// frozen while SR-IOV enables the configured VFs; the 100 ms wait after VF Enable must end
    /// with the named error (clock stopped), the VFs be disabled again and boot go on.
    ClockStopped,
    /// Legacy INTx of an assigned function: on behalf of the OS guest given edu (no vCPU runs
    /// it), its driver raises edu's INTx (MSI off) repeatedly; each interrupt must reach the
    /// guest's virtual I/O APIC with the physical input masked until the guest's EOI, then a
    /// line never acknowledged must be cut off by the flood guard while the guest's other
    /// device keeps interrupting.
    Intx,
    /// Every CPU: each CPU's tick rises, a cross-CPU call reaches each AP and returns (its round
    /// trip timed), a TLB shootdown reaches every AP, and, where QEMU's edu device and interrupt
    /// remapping exist and there are at least three CPUs, edu's MSI routed (IRTE destination) to
    /// CPU 2 is delivered and counted on CPU 2 only.
    Smp,
    /// [`TestCase::Smp`] with a MADT entry added for an APIC ID no processor has (0x3e): it must
    /// be reported as not started and the others run.
    SmpGhost,
    /// Interrupts follow their guest: on behalf of the first guest (no vCPU runs it), placed on
    /// another CPU than the bootstrap processor and given edu, its driver programs edu's MSI;
    /// the IRTE's destination must be the APIC ID of the guest's CPU, and every interrupt edu
    /// raises must be counted for the guest and taken by that CPU.
    Placement,
}

impl TestCase {
    /// Every scenario, for listings and error messages.
    pub const ALL: [Self; 17] = [
        Self::PageFault,
        Self::VtdEdu,
        Self::VtdEduRegisterInvalidation,
        Self::DmarCorrupt,
        Self::NvmeVf,
        Self::NvmeVfBad,
        Self::NvmeVfIo,
        Self::Intremap,
        Self::Control,
        Self::IgbVf,
        Self::IgbNet,
        Self::IgbMailbox,
        Self::ClockStopped,
        Self::Intx,
        Self::Smp,
        Self::SmpGhost,
        Self::Placement,
    ];

    /// The name used in `[test] scenario = "..."`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PageFault => "page-fault",
            Self::VtdEdu => "vtd-edu",
            Self::VtdEduRegisterInvalidation => "vtd-edu-reginv",
            Self::DmarCorrupt => "dmar-corrupt",
            Self::NvmeVf => "nvme-vf",
            Self::NvmeVfBad => "nvme-vf-bad",
            Self::NvmeVfIo => "nvme-vf-io",
            Self::Intremap => "intremap",
            Self::Control => "control",
            Self::IgbVf => "igb-vf",
            Self::IgbNet => "igb-net",
            Self::IgbMailbox => "igb-mailbox",
            Self::ClockStopped => "clock-stopped",
            Self::Intx => "intx",
            Self::Smp => "smp",
            Self::SmpGhost => "smp-ghost",
            Self::Placement => "placement",
        }
    }

    /// Parses the name used in `[test] scenario = "..."`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A setting that only the test image (the kernel and control task built with their `selftest`
/// feature) carries out; the production image refuses a configuration that has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOnly {
    /// `[test] scenario = "..."`.
    Scenario(TestCase),
    /// A guest's `test_break`.
    GuestBreak { guest: String, value: GuestBreak },
    /// A guest's `test_apic`.
    GuestApic { guest: String, value: ApicTest },
}

impl core::fmt::Display for TestOnly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Scenario(t) => write!(f, "[test] scenario \"{}\"", t.name()),
            Self::GuestBreak { guest, value } => {
                write!(f, "guest \"{guest}\" test_break = \"{}\"", value.name())
            }
            Self::GuestApic { guest, value } => {
                write!(f, "guest \"{guest}\" test_apic = \"{}\"", value.name())
            }
        }
    }
}
