//! The control task's scenarios (issue "control task"): QEMU's scripted guest view and
//! deliberate faults through the message interface; Bochs' e1000 passed through to a real guest,
//! and refused without `unsafe_no_iommu`.

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};

/// Issue "control task": the kernel's side of the task's life, common to every machine.
const CONTROL_TASK_STARTED: &str = r"control: task image [0-9]+ KiB \([0-9]+ R\+X, [0-9]+ R\+W pages\) at 0x600000000000, entry 0x600000000000, CR3 0x[0-9a-f]+; ring 3 \(CS 0x33, SS 0x2b\), 64 KiB stack, configuration space through ";

/// The deliberate faults of the task, in the order the self-test runs them, on the hypervisor's
/// behalf (nobody to blame): each reported with the request, the task restarted with every
/// function restored (guest A's state replayed from the core's journal), the next read right.
const CONTROL_FAULTS: &[&str] = &[
    // A write to kernel code: present but supervisor-only (U/S clear in the task's PML4 entry):
    // error code 0x7 = present, write, user.
    r"control task faulted: #PF at RIP 0x6000000[0-9a-f]{5} CR2 0x80000[0-9a-f]{5} \(page fault, error code 0x7, RSP 0x60003fff[0-9a-f]{4}\) while serving TestFault for the hypervisor at 00:01\.0 \(offset 0x[0-9a-f]+, size 0, value 0x1\)$",
    r"control: [1-9][0-9]* request\(s\) replayed into 4 function\(s\)",
    r"control task restarted \(restart #1\): reloaded from its image; 4 function\(s\) restored with their guests' state \([1-9][0-9]* request\(s\) replayed\), 0 reset, 0 quarantined",
    r"control-test \[9\.1\] write to kernel memory: the call failed, the task was restarted, the next read of 00:01\.0 returns 1b36:0010",
    // Nothing mapped there: error code 0x4 = not present, read, user.
    r"control task faulted: #PF at RIP 0x6000000[0-9a-f]{5} CR2 0x600030000000 \(page fault, error code 0x4,",
    r"control task restarted \(restart #2\)",
    r"control-test \[9\.2\] read of an unmapped address: .* returns 1b36:0010",
    r"control task faulted: #GP at RIP 0x6000000[0-9a-f]{5} \(general protection, error code 0x0,",
    r"control task restarted \(restart #3\)",
    r"control-test \[9\.3\] HLT at CPL 3: .* returns 1b36:0010",
    // Port 0x80 is outside the TSS I/O permission bitmap (only 0xcf8-0xcff are open).
    r"control task faulted: #GP at RIP 0x6000000[0-9a-f]{5} \(general protection, error code 0x0,",
    r"control task restarted \(restart #4\)",
    r"control-test \[9\.4\] port I/O outside the permission bitmap: .* returns 1b36:0010",
    r"control task faulted: #UD at RIP 0x6000000[0-9a-f]{5} \(invalid opcode,",
    r"control task restarted \(restart #5\)",
    r"control-test \[9\.5\] UD2: .* returns 1b36:0010",
    r"control task watchdog: no reply after [0-9]+ TSC ticks while serving TestFault",
    r"control task restarted \(restart #6\)",
    r"control-test \[9\.6\] endless loop: .* returns 1b36:0010",
    r"control task panic: deliberate panic \(test request\) \(control/src/serve\.rs:[0-9]+\) while serving TestFault",
    r"control task restarted \(restart #7\)",
    r"control-test \[9\.7\] panic: .* returns 1b36:0010",
];

/// Bochs' e1000 (82540EM, 8086:100e: INTx only, no capability list) in slot 2, no host network.
pub const BOCHS_E1000: &[&str] = &[
    "pci: enabled=1, chipset=i440fx, slot1=pcivga, slot2=e1000",
    "e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null",
];

/// The e1000 as enumeration sees it under Bochs (OVMF places BAR0 at 0x81000000).
const BOCHS_E1000_ENUM: &[&str] = &[
    r"pci: configuration access through port I/O 0xcf8/0xcfc",
    r"pci: 00:03\.0 8086:100e class 02:00:00 Ethernet controller",
    r"pci:     BAR0 mem32 0x[0-9a-f]+ size 128 KiB, BAR1 io 0x[0-9a-f]+ size 64 B",
];

/// `pcigst64` with the e1000: enumeration through its virtual configuration space, BAR sizing,
/// BAR0 mapped, registers read through EPT with no exit (STATUS as Bochs' e1000 resets it: link
/// up, full duplex, 1000 Mb/s; the MAC from its EEPROM is the bochsrc's), then bad input.
const PCIGST64: &[&str] = &[
    r"pcigst64: hello from pcigst64",
    r"pcigst64: pci 00:01\.0 8086:100e class 02:00:00 revision 0x03",
    r"pcigst64: bus 0: 1 function\(s\)",
    r"pcigst64: BAR0: read 0xfffe0000 after writing all ones: memory 32-bit, size 128 KiB",
    // OVMF left the e1000's bus mastering on: the guest's view starts with it (0x0004).
    r"pcigst64: BAR0 programmed at 0xc0000000, memory decoding on \(command 0x0006\)",
    r"pcigst64: e1000 STATUS \(BAR0\+0x8\) = 0x80080783; VM exits during the read: 0$",
    r"pcigst64: e1000 CTRL \(BAR0\+0x0\) = 0x[0-9a-f]{8}; VM exits during the read: 0$",
    r"pcigst64: e1000 EEPROM words 0-2 through EERD \(BAR0\+0x14\): MAC 52:54:00:12:34:56; VM exits during the 3 writes and the reads: 0$",
    // The ECAM window: each access an EPT violation, decoded and forwarded; offset 0x100 is
    // reachable there (the e1000 has no extended capabilities: 0).
    r"pcigst64: ECAM window: 00:01\.0 at 0xe0008000 reads 8086:100e \(dword\), vendor 8086 \(word\), class 0x02 \(byte\); 0x100 reads 0x0$",
    r"pcigst64: ECAM window: a qword reads 0xffffffffffffffff; 00:05\.0 reads 0xffffffff; after a write to the vendor ID: 8086:100e; 8 EPT-violation exits for 8 accesses",
    r"pcigst64: bad input: writes to vendor/device and class/revision: ignored",
    r"pcigst64: bad input: garbage in BAR2-BAR5: they read 0x0$",
    r"pcigst64: bad input: BAR0 moved to 0x100000 \(guest RAM\): RAM there unchanged",
    r"pcigst64: BAR0 back at 0xc0000000: STATUS = 0x80080783, VM exits during the read: 0$",
    r"pcigst64: bad input: CONFIG_ADDRESS without Enable: data port reads 0xffffffff",
    r"pcigst64: bad input: bus 5 device 0 reads 0xffffffff",
    r"pcigst64: bad input: 2000 configuration reads, 0 wrong",
    r"pcigst64: done",
    r#"guest "pcigst64" exited with code 0x0\b"#,
];

/// A guest with no function: its bus 0 is empty and the BAR window is not its memory.
const PCIGST64_EMPTY: &[&str] = &[
    r"bus 0: 0 function\(s\)",
    r"ECAM window: 00:01\.0 reads 0xffffffff",
    r"no e1000 here: reading GPA 0xc0000008, which is not this guest's",
];

// Issue "control task": the deprivileged owner of configuration space on QEMU (no VMX: the
// guest's functions are assigned in its IOMMU domain and built in the task; the self-test drives
// the guest's view through the message interface). Values: QEMU 10's nvme VF 0 (02:00.1: PF's
// vendor and VF Device ID 1b36:0010, rev 2, BAR0 16 KiB 64-bit, MSI-X@0x40 with 1 entry at
// BAR0+0x2000, PCIe@0x80, PM@0x60; ARI@0x100) at 00:01.0 and the igb PF (01:00.0: 8086:10c9 rev
// 1, BAR0/BAR1 128 KiB, BAR2 I/O 32 B, BAR3 16 KiB 64-bit with its 10 MSI-X entries; PM@0x40
// MSI@0x50 MSI-X@0x70 PCIe@0xa0; AER@0x100 ARI@0x150 SR-IOV@0x160) at 00:02.0.
pub const QEMU_CONTROL: Scenario = Scenario {
    name: "qemu-control",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/control.toml"),
    guests: &[],
    expect: &[
        BANNER,
        r"control: watchdog 50 ms per request = [1-9][0-9]* TSC ticks, 2000 ms to build a function = [1-9][0-9]* TSC ticks \(TSC [1-9][0-9]*\.[0-9]{3} MHz, measured against the ACPI PM timer at port 0x608; checked at the hypervisor tick, every 10 ms\)",
        CONTROL_TASK_STARTED,
        r"control: task started: 2 guest topology\(ies\)",
        // Domain 1 is the hypervisor's own for the NVMe PF that brings the VF online (`nvme`).
        r#"guest VF 02:00\.1 of 02:00\.0: secondary controller 0x1 online"#,
        r#"guest "a": assigned 02:00\.1 \(02:00\.0 VF 0\) in IOMMU domain 2"#,
        r#"guest "a": assigned 01:00\.0 \(01:00\.0\) in IOMMU domain 2"#,
        r#"guest "a": assigned 00:04\.0 \(1234:11e8\) in IOMMU domain 2"#,
        r#"guest "a": 02:00\.1 appears at 00:01\.0 \(virtual configuration space in the control task; BAR0 mem64 16 KiB; MSI-X 1 entries in BAR0 at 0x2000 \(trapped\)\)"#,
        r#"guest "a": 01:00\.0 appears at 00:02\.0 \(virtual configuration space in the control task; BAR0 mem32 128 KiB, BAR1 mem32 128 KiB, BAR2 io 32 B, BAR3 mem64 16 KiB; MSI-X 10 entries in BAR3 at 0x0 \(trapped\)\)"#,
        // edu (1234:11e8): MSI only, no MSI-X: its MSI is routed through the control task.
        r#"guest "a": 00:04\.0 appears at 00:03\.0 \(virtual configuration space in the control task; BAR0 mem32 1 MiB\)$"#,
        // Guest B, the one step 13 blames: the nvme PF's second VF.
        r#"guest "b": assigned 02:00\.2 \(02:00\.0 VF 1\) in IOMMU domain 3"#,
        r#"guest "b": 02:00\.2 appears at 00:01\.0 \(virtual configuration space in the control task; BAR0 mem64 16 KiB; MSI-X 1 entries in BAR0 at 0x2000 \(trapped\)\)"#,
        r"pci: ECAM at 0xb0000000 \(256 MiB, buses 0-255\) handed over: the kernel's mapping \(262144 KiB\) and the physical-memory window over it \(256 MiB\) removed",
        r"control-test \[1\] 00:01\.0 \(physical 02:00\.1, VF 0 of 02:00\.0\): vendor 1b36 device 0010 revision 0x02 class 01:08:02, as on the device",
        r"control-test \[2\] 00:01\.0 BAR sizing \(all ones written, read back\): BAR0 reads 0xffffc004:0xffffffff = 16 KiB; the physical sizes",
        r"control-test \[3\] 00:01\.0 capabilities: 0x11@0x40 0x10@0x80 0x01@0x60; MSI-X visible, table size 1$",
        r"control-test \[4\] 00:01\.0 extended capabilities: header at 0x100 reads 0x00000000; hidden: ARI@0x100$",
        r"control-test \[5\] 00:01\.0 writes of 0xa5a5a5a5 to IDs, class, subsystem, capability pointer, header type and interrupt pin: unchanged",
        r"control-test \[1\] 00:02\.0 \(physical 01:00\.0\): vendor 8086 device 10c9 revision 0x01 class 02:00:00, as on the device",
        r"control-test \[2\] 00:02\.0 BAR sizing \(all ones written, read back\): BAR0 reads 0xfffe0000 = 128 KiB, BAR1 reads 0xfffe0000 = 128 KiB, BAR2 reads 0x0000ffe1 = 32 B, BAR3 reads 0xffffc004:0xffffffff = 16 KiB; the physical sizes",
        r"control-test \[3\] 00:02\.0 capabilities: 0x01@0x40 0x05@0x50 0x11@0x70 0x10@0xa0; MSI-X visible, table size 10$",
        // The PF's SR-IOV capability (and AER, ARI) is not in the guest's view.
        r"control-test \[4\] 00:02\.0 extended capabilities: header at 0x100 reads 0x00000000; hidden: AER@0x100 ARI@0x150 SR-IOV@0x160$",
        r"control-test \[5\] 00:02\.0 writes of 0xa5a5a5a5 to IDs, class, subsystem, capability pointer, header type and interrupt pin: unchanged",
        r"control-test \[1\] 00:03\.0 \(physical 00:04\.0\): vendor 1234 device 11e8 revision 0x10 class 00:ff:00, as on the device",
        r"control-test \[2\] 00:03\.0 BAR sizing \(all ones written, read back\): BAR0 reads 0xfff00000 = 1 MiB; the physical sizes",
        r"control-test \[3\] 00:03\.0 capabilities: 0x05@0x40; MSI-X absent$",
        r"control-test \[5\] 00:03\.0 writes of 0xa5a5a5a5",
        r"control-test \[6\] BAR0 at 0xc0000000 \+ memory decode: BarMoved to HPA 0x[0-9a-f]+ \(16 KiB\); decode off: BarUnmapped",
        r"control-test \[7\] MSI-X table entry 0 written \(address 0xfee00000, data 0x4041, unmasked\): MsixEntryChanged event, data reads back 0x4041; garbage: misaligned and 2-byte writes refused, a write beyond the table ignored \(reads 0\), 0xffffffff in Vector Control reads back 0x1",
        r"control-test \[8\] bad requests: unowned 00:05\.0 reads 0xffffffff; offset 0x1000, size 3, misaligned dword: refused \(invalid access\); guest 97: refused \(no such guest\); CONFIG_ADDRESS without Enable: no request",
        CONTROL_FAULTS[0],
        CONTROL_FAULTS[1],
        CONTROL_FAULTS[2],
        CONTROL_FAULTS[3],
        CONTROL_FAULTS[4],
        CONTROL_FAULTS[5],
        CONTROL_FAULTS[6],
        CONTROL_FAULTS[7],
        CONTROL_FAULTS[8],
        CONTROL_FAULTS[9],
        CONTROL_FAULTS[10],
        CONTROL_FAULTS[11],
        CONTROL_FAULTS[12],
        CONTROL_FAULTS[13],
        CONTROL_FAULTS[14],
        CONTROL_FAULTS[15],
        CONTROL_FAULTS[16],
        CONTROL_FAULTS[17],
        CONTROL_FAULTS[18],
        CONTROL_FAULTS[19],
        CONTROL_FAULTS[20],
        CONTROL_FAULTS[21],
        r"control-test \[10\] 2000 reads in a row, all correct",
        // A guest's MSI-X table write becomes an IRTE owned by the guest (source-id verified);
        // the igb raises the entry and the delivery is the guest's, its own vector pending.
        r"irq: guest 0: MSI-X entry 0 of 01:00\.0 -> IRTE [0-9]+ -> vector 0x[0-9a-f]+ \(the guest's vector 0x41\) on APIC 0 \(fixed, edge, physical\); source-id 01:00\.0 verified",
        r#"guest "a": MSI-X entry 0 of 01:00\.0 \(its vector 0x41\) routed: IRTE [0-9]+ -> vector 0x[0-9a-f]+"#,
        r#"guest "a": MSI-X entry 0 of 01:00\.0 not routed: delivery mode 4 \(only fixed and lowest priority are routed\)"#,
        r"control-test \[11\] 00:02\.0 \(01:00\.0\) MSI-X entry 0 written by the guest \(vector 0x41\): IRTE [0-9]+ -> host vector 0x[0-9a-f]+; the device's interrupt was delivered to guest 0 with its vector 0x41 pending; an NMI-mode message is refused",
        // A guest's MSI (not MSI-X): an IRTE of the guest's, the physical capability programmed
        // by the control task with the remappable-format message (handle = IRTE index, bit 4
        // set), 8 raises of the edu all the guest's; MSI off: physical Enable clear.
        r"irq: guest 0: MSI of 00:04\.0 -> IRTE [0-9]+ -> vector 0x[0-9a-f]+ \(the guest's vector 0x52\) on APIC 0 \(fixed, edge, physical\); source-id 00:04\.0 verified \(SVT=01, SQ=00\); to be programmed through the control task in remappable format",
        r#"guest "a": MSI of 00:04\.0 \(its vector 0x52\) routed: IRTE [0-9]+ -> vector 0x[0-9a-f]+; the control task programmed address 0xfee[0-9a-f]{3}[13579bdf]0 data 0x0000"#,
        // MSI on again and a flood: the guard masks the IRTE and, configuration space being the
        // control task's, the task turns the physical MSI off for the guest.
        r"irq: interrupt flood from 00:04\.0 \(MSI\) \(guest 0, IRTE [0-9]+, vector 0x[0-9a-f]+\): [0-9]+ interrupts within one tick \(limit 64\) at tick [0-9]+: IRTE masked \(not present, fault processing disabled\), MSI disabled at the device by the control task; [0-9]+ suppressed since",
        r"control-test \[12\] 00:03\.0 \(00:04\.0\) MSI written by the guest \(vector 0x52\): IRTE [0-9]+ -> host vector 0x[0-9a-f]+; physical MSI programmed by the control task: control 0x0081, address 0xfee[0-9a-f]{3}[13579bdf]0, data 0x0000; 8 raises, 8 delivered to guest 0 with its vector 0x52 pending; MSI off: physical control 0x0080, the next raise delivered to nobody",
        r"control-test \[12\] flood: MSI on again \(IRTE [0-9]+ -> host vector 0x[0-9a-f]+\), [1-9][0-9]* raises tripped the guard: IRTE masked; the control task turned the physical MSI off for guest 0 \(control 0x0080\), reported masked at the device",
        // Step 13: a crash on guest B's behalf is blamed on guest B alone.
        r#"control task faulted: #PF at RIP 0x6000000[0-9a-f]{5} CR2 0x80000[0-9a-f]{5} \(page fault, error code 0x7, RSP 0x60003fff[0-9a-f]{4}\) while serving TestFault for guest 1 at 00:01\.0 \(offset 0x[0-9a-f]+, size 0, value 0x1\); blamed on guest "b" \(index 1\), whose request it was"#,
        r#"control: guest "b" blamed: its 1 function\(s\) are quarantined \(not served any more, interrupts masked, reset at the restart\); the other guests keep theirs"#,
        r"control task restarted \(restart #8\): reloaded from its image; 3 function\(s\) restored with their guests' state \([1-9][0-9]* request\(s\) replayed\), 0 reset, 1 quarantined",
        r#"guest "b": the control task's restart reset its functions: 1 BAR mapping\(s\) removed"#,
        r"control-test \[13\] a crash on guest B's behalf: guest B blamed and quarantined \(00:01\.0 reads 0xffffffff, its BAR mapping removed, its requests refused\); guest A's 00:02\.0 \(01:00\.0\) kept Command 0x0006, BAR0 0xc0000000 -> 0x[0-9a-f]+ in its EPT, MSI-X control 0x8009, entry 0 data 0x43 on IRTE [0-9]+ \(host vector 0x[0-9a-f]+\); its next interrupt arrived with vector 0x43",
        r"selftest: control: PASS \(23 steps\)",
        r"CONDUIT EXIT: success",
    ],
    forbid: &[PANIC, ANY_EXCEPTION, r"FAIL", r"given up", r"restart #9"],
    input: &[],
    end: End::Success,
    timeout_secs: 150,
};

// Issue "control task", Bochs (VMX, no IOMMU, no SR-IOV): Bochs' own e1000 given to a real
// guest, allowed explicitly (unsafe_no_iommu) and logged as a warning; the control task owns
// configuration mechanism #1 (its TSS I/O bitmap); the guest enumerates the function through
// its virtual configuration space, sizes and maps BAR0, and reads device registers through
// EPT with zero exits (its own count, and no EPT violation in the hypervisor's per-reason
// report); a second guest sees nothing and its probe of the BAR window is an EPT violation.
pub const BOCHS_PASSTHROUGH: Scenario = Scenario {
    name: "bochs-passthrough",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        extra_lines: BOCHS_E1000,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/passthrough.toml"),
    expect: &[
        BANNER,
        r"config: bundle of [0-9]+ bytes, 2 guest\(s\), 1 image\(s\), control task \([0-9]+ KiB\)",
        r"VMX: available",
        BOCHS_E1000_ENUM[0],
        BOCHS_E1000_ENUM[1],
        BOCHS_E1000_ENUM[2],
        r"control: watchdog 50 ms per request = (247[5-9][0-9]{3}|24[89][0-9]{4}|25[01][0-9]{4}|252[0-4][0-9]{3}|2525000) TSC ticks, 2000 ms to build a function = (99[0-9]{6}|100[0-9]{6}|101000000) TSC ticks \(TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz, measured against the 8254's channel 2; checked at the hypervisor tick, every 10 ms\)",
        CONTROL_TASK_STARTED,
        r"ports 0xcf8-0xcff \(TSS I/O permission bitmap\)$",
        r"control: task started: 2 guest topology\(ies\)",
        r#"guest "pcigst64": assigned 00:03\.0 \(8086:100e\) WITHOUT DMA remapping \(unsafe_no_iommu\): it can reach all memory"#,
        r#"guest "pcigst64": 00:03\.0 appears at 00:01\.0 \(virtual configuration space in the control task; BAR0 mem32 128 KiB, BAR1 io 64 B\)"#,
        r"pci: configuration mechanism #1 \(ports 0xcf8-0xcff\) handed over",
        r"sched: running 2 guest\(s\) round-robin",
        r#"guest "pcigst64": 00:01\.0 Command: memory on, I/O off, bus master on, INTx disable off"#,
        r#"guest "pcigst64": BAR0 of 00:01\.0 \(00:03\.0\) mapped: GPA 0xc0000000-0xc001ffff -> HPA 0x[0-9a-f]+ \(128 KiB, uncached, no exits\)"#,
        r#"guest "pcigst64": BAR0 of 00:01\.0 unmapped from GPA 0xc0000000"#,
        r#"guest "pcigst64": BAR0 of 00:01\.0 at 0x100000 not mapped: outside the guest's BAR window 0xc0000000-0xdfffffff"#,
        r#"guest "pcigst64": BAR0 of 00:01\.0 \(00:03\.0\) mapped: GPA 0xc0000000-0xc001ffff"#,
        r"sched: every guest has finished",
        // Exit counters: only port I/O (configuration and console) and hypercalls; no EPT
        // violation at all for the guest that uses the BAR.
        r#"guest "pcigst64": exited with code 0x0; [0-9]+ exits, VMCALL: [0-9]+, I/O instruction: [0-9]+, EPT violation: 8; [0-9]+ TSC ticks in guest"#,
        r#"guest "other": stopped \(EPT violation at GPA 0xc0000008 \(read, outside the guest's memory\) RIP 0x[0-9a-f]+\); [0-9]+ exits, VMCALL: 1, I/O instruction: [0-9]+, EPT violation: 2;"#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[
        ("pcigst64", PCIGST64),
        (
            "other",
            &[
                r"other: hello from pcigst64",
                PCIGST64_EMPTY[0],
                PCIGST64_EMPTY[1],
                PCIGST64_EMPTY[2],
                r#"guest "other" stopped: EPT violation at GPA 0xc0000008 \(read, outside the guest's memory\)"#,
            ],
        ),
    ],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"self-check failed",
        r"control task (faulted|watchdog|panic|broke)",
        r"other: pci 00:",
    ],
    input: &[],
    end: End::Success,
    timeout_secs: 300,
};

// The same assignment without `unsafe_no_iommu`: refused with the reason; the guest's bus 0
// is empty.
pub const BOCHS_PASSTHROUGH_REFUSED: Scenario = Scenario {
    name: "bochs-passthrough-refused",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        extra_lines: BOCHS_E1000,
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/passthrough-refused.toml"),
    expect: &[
        BANNER,
        BOCHS_E1000_ENUM[1],
        r"control: task started: 1 guest topology\(ies\)",
        r#"guest "pcigst64": 1 function\(s\) not assigned: DMA remapping is off \(the firmware reports no DMAR table\); set \[hypervisor\] unsafe_no_iommu = true to assign without protection"#,
        r#"guest "pcigst64": stopped \(EPT violation at GPA 0xc0000008 \(read, outside the guest's memory\) RIP 0x[0-9a-f]+\); [0-9]+ exits, VMCALL: 1, I/O instruction: [0-9]+, EPT violation: 2;"#,
        r"CONDUIT EXIT: success",
    ],
    guests: &[(
        "pcigst64",
        &[
            r"pcigst64: hello from pcigst64",
            PCIGST64_EMPTY[0],
            PCIGST64_EMPTY[1],
            PCIGST64_EMPTY[2],
        ],
    )],
    forbid: &[
        PANIC,
        ANY_EXCEPTION,
        r"self-check failed",
        r"WITHOUT DMA remapping",
        r"appears at 00:01\.0",
        r"pcigst64: pci 00:",
    ],
    input: &[],
    end: End::Success,
    timeout_secs: 300,
};
