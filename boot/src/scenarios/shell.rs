//! The debug-shell scenarios' expectations and the input the harness types: `qemu-shell` (no
//! VMX; the platform commands after the VT-d self-test, bad input, an over-long line) and `bochs-shell` (three guests
//! running while their state is read and one of them is stopped and restarted).

use super::{ANY_EXCEPTION, BANNER, Config, PANIC, Scenario};
use crate::expect::End;
use crate::machine::{BochsSpec, MachineSpec, QemuSpec};
use crate::script::{Input, Step};

/// Bytes no terminal should send, then a word: NUL, SOH, STX, BEL, BS and DEL at the start of a
/// line, 0xff 0xfe 0x80 0x9b, a cursor key (CSI), a CSI with parameters, an SS3 function key, a
/// two-byte escape, a tab; `junk` erased with Ctrl-U; 0xff; `junk` again and Enter. Only the
/// last `junk` may reach the parser.
pub const GARBAGE: &[u8] =
    b"\x00\x01\x02\x07\x08\x7f\xff\xfe\x80\x9b\x1b[A\x1b[1;5C\x1bOP\x1bx\tjunk\x15\xffjunk\r";

/// `qemu-shell`: what the harness types.
pub const QEMU_INPUT: &[Step] = &[
    Step::line(r"shell: ready on COM1", "help"),
    Step::line(
        r"quit +end the run through the normal exit path \(also `exit`\)",
        "pci",
    ),
    Step::line(r"^  00:1f\.3 8086:2930 ", "iommu"),
    Step::line(r"^  faults: ", "irq"),
    Step::line(r"^  IOAPIC id 0 at 0xfec00000", "vms"),
    Step::line(r"hello64: not created", "vcpu hello64"),
    Step::line(r"is not available on this machine", "frobnicate"),
    Step {
        wait: r"unknown command `frobnicate`",
        send: Input::LongLine {
            fill: b'x',
            len: 300,
        },
    },
    Step {
        wait: r"^error: line too long",
        send: Input::Raw(GARBAGE),
    },
    Step::line(r"unknown command `junk`", "log debug"),
    Step::line(r"^log level: debug", "quit"),
];

/// `qemu-shell`: what the console must show, in order.
pub const QEMU_EXPECT: &[&str] = &[
    BANNER,
    r"VMX: not available",
    r"selftest: vtd-edu: PASS \(8 steps\)",
    r#"guest "hello64": assigned 00:04\.0 \(1234:11e8\) in IOMMU domain 3"#,
    r#"guest "hello64": 4 MiB at HPA 0x[0-9a-f]+, 1 function\(s\) assigned; its vCPUs are not started because VMX is absent"#,
    r"shell: ready on COM1 \(type `help`; `quit` ends the run; it stays after the guests finish\)",
    // `help`: one line per command, usages in one column.
    r"conduit> help$",
    r"^  help +list the commands$",
    r"^  vms +list the guests and their state$",
    r"^  vcpu <guest> +dump the vCPU state of a guest$",
    r"^  ept <guest> <gpa> +walk a guest's EPT",
    r"^  iommu +show the VT-d units",
    r"^  pci +list PCI functions",
    r"^  irq +show vectors, IRTEs",
    r"^  log <error\|warn\|info\|debug\|trace>  set the console log level$",
    r"^  stop <guest> +stop a guest$",
    r"^  restart <guest> +restart a guest",
    r"^  quit +end the run through the normal exit path \(also `exit`\)$",
    // `pci`: the tree enumerated at boot (QEMU q35 under OVMF), the SR-IOV PFs read live, the
    // owner of every function from the IOMMU domains: edu belongs to hello64.
    r"conduit> pci$",
    // Since issue 17 VFs are enabled only as configured: this configuration names none, so both
    // PFs read NumVFs 0 with VF Enable off.
    r"^pci: 10 function\(s\) \(0 of them SR-IOV VFs\), enumerated at boot through ECAM at 0xb0000000; owners from the IOMMU domains$",
    r"^  00:00\.0 8086:29c0 host bridge; owner: hypervisor$",
    r"^  00:02\.0 1b36:000c PCI-to-PCI bridge, buses 01-01; owner: hypervisor$",
    r"^    01:00\.0 8086:10c9 Ethernet controller; owner: hypervisor$",
    r"^      SR-IOV PF: TotalVFs 8, NumVFs 0, VF Enable off, VF device 8086:10ca, first VF offset 0x80, stride 2$",
    r"^        no VF enabled$",
    r"^  00:03\.0 1b36:000c PCI-to-PCI bridge, buses 02-02; owner: hypervisor$",
    r"^    02:00\.0 1b36:0010 NVM Express controller; owner: hypervisor$",
    r"^      SR-IOV PF: TotalVFs 4, NumVFs 0, VF Enable off, VF device 1b36:0010, first VF offset 0x1, stride 1$",
    r"^        no VF enabled$",
    r#"^  00:04\.0 1234:11e8 unclassified device; owner: guest "hello64" \(domain 3\)$"#,
    r"^  00:1f\.3 8086:2930 SMBus controller; owner: hypervisor$",
    // `iommu`: QEMU's one unit (intremap=on, caching-mode=on), the guest's domain, and the DMA
    // faults the VT-d self-test provoked before the shell started, decoded.
    r"conduit> iommu$",
    r"^iommu: DMA remapping on: 1 unit\(s\), 1 domain\(s\)$",
    r"^  unit 0xfed90000: CAP 0x00d2008c222f0686, ECAP 0x0000000000f00f4a; translation on, interrupt remapping on, queued invalidation; root table 0x[0-9a-f]+$",
    r"^    CAP: ND=6 \(65536 domains\) .* CM=1 SAGAW=0x6 \(39-bit 3-level, 48-bit 4-level\) MGAW=48 .*NFR=0 \(1 fault record\(s\)\)",
    r"^    ECAP: C=0 QI=1 DT=0 IR=1 EIM=0 PT=1 SC=0 ",
    r#"^  domain 3 "hello64": IOVA 0x0-0x3fffff -> HPA 0x[0-9a-f]+ \(4 MiB\); 4-level table at 0x[0-9a-f]+; functions: 00:04\.0$"#,
    r"^  faults: 6 since boot; the last 6:$",
    r"^    unit 0xfed90000: source 00:04\.0, write at IOVA 0x4200000, reason 0x02: context entry not present",
    r"^    unit 0xfed90000: source 00:04\.0, write at IOVA 0x[0-9a-f]+, reason 0x05: write to a page without write permission",
    r"^    unit 0xfed90000: source 00:04\.0, read at IOVA 0x[0-9a-f]+, reason 0x06: read of a page without read permission",
    // `irq`: remapping on; the VT-d fault vector counted the self-test's six faults; the tick runs.
    r"conduit> irq$",
    r"^irq: interrupt remapping is on$",
    r"^  local APIC 0 in xAPIC mode at 0xfee00000; host interrupts disabled",
    r"^  vector 0x30: VT-d fault event \(unit\(s\) 0xfed90000\), owner hypervisor; delivered 6 time\(s\)$",
    r"^  vector 0xff: local APIC spurious interrupt, owner hypervisor; delivered 0 time\(s\)$",
    r"^  vector 0xf0: hypervisor tick \(local APIC timer\), owner hypervisor; [1-9][0-9]* tick\(s\)$",
    r"^  IOAPIC id 0 at 0xfec00000, GSI base 0: every input masked at boot",
    // `vms` and `vcpu` on a machine without VMX.
    r"conduit> vms$",
    r"^no guest runs on this machine: this CPU has no VMX$",
    r"^  hello64: not created \(vCPU not started \(this CPU has no VMX\); memory, IOMMU domain and 1 function\(s\) set up\)$",
    r"conduit> vcpu hello64$",
    r"^error: `vcpu` is not available on this machine: no guest runs here \(this CPU has no VMX\)$",
    // Bad input: an unknown command, an over-long line, garbage.
    r"conduit> frobnicate$",
    r"^error: unknown command `frobnicate`; type `help` for the list$",
    // The echo stops at the 128-byte capacity.
    r"conduit> x{128}$",
    r"^error: line too long \(a line holds 128 bytes\): dropped 172 bytes after the first 128; nothing was executed$",
    r"^error: unknown command `junk`; type `help` for the list$",
    // The shell goes on: the log level changes at run time.
    r"conduit> log debug$",
    r"^log level: debug \(was info\)$",
    r"conduit> quit$",
    r"^quit: ending the run$",
    r"sched: quit: the operator ended the run with 0 guest\(s\) still running",
    r"CONDUIT EXIT: success",
];

/// `qemu-shell`: never seen.
pub const QEMU_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    // The VT-d self-test that runs first must pass.
    r"FAIL",
    // Ctrl-U must have erased the first `junk`; no garbage byte may reach the parser.
    r"junkjunk",
    r"unknown command `[^`]*[^ -~]",
    // VFs are listed once, under their PF, with the identity enumeration recorded.
    r"does not answer",
    r"^    01:10\.0 ",
];

/// `bochs-shell`: what the harness types.
pub const BOCHS_INPUT: &[Step] = &[
    Step::line(r"alpha: round 3/60", "vms"),
    Step::line(r"^  gamma: (running|halted)", "pci"),
    Step::line(r#"owner: guest "beta""#, "iommu"),
    Step::line(r"^iommu: DMA remapping off", "vcpu beta"),
    Step::line(r"^vcpu of beta", "ept alpha 0x100000"),
    Step::line(r"^EPT of alpha", "ept alpha 0x400000"),
    Step::line(r"out of range", "vcpu nosuch"),
    Step {
        wait: r"unknown guest `nosuch`",
        send: Input::Raw(GARBAGE),
    },
    Step::line(r"unknown command `junk`", "stop beta"),
    Step::line(r"^stopped beta", "stop beta"),
    Step::line(r"guest `beta` is not running", "vms"),
    // The others keep running while beta is stopped: a round of alpha, `vms`, then a round of
    // gamma that comes after `vms` answered (at 115200 baud a round of gamma can be logged
    // before the shell reads `vms`: the wait for the end of its answer keeps the order).
    Step::line(r"alpha: round", "vms"),
    Step {
        wait: r"^  gamma: (running|halted)",
        send: Input::Raw(b""),
    },
    Step::line(r"gamma: round", "restart beta"),
    Step::line(r"beta: round 1/60", "vms"),
    Step::line(r"sched: every guest has finished", "vms"),
    Step::line(r"^  gamma: exited", "quit"),
];

/// `bochs-shell`: what the console must show, in order.
pub const BOCHS_EXPECT: &[&str] = &[
    BANNER,
    r"VMX: available",
    r#"guest "alpha": 4 MiB at host 0x[0-9a-f]+, EPTP 0x[0-9a-f]+, VPID 1, slice 1000 us"#,
    r#"guest "beta": assigned 00:03\.0 \(8086:100e\) WITHOUT DMA remapping \(unsafe_no_iommu\)"#,
    r"sched: running 3 guest\(s\) round-robin",
    r"shell: ready on COM1 \(type `help`; `quit` ends the run; it stays after the guests finish\)",
    // `vms` while all three run: state, memory, time in the guest, exits by reason.
    r"conduit> vms$",
    r"^3 guest\(s\), 3 runnable, 0 not created; TSC (49\.[5-9][0-9]{2}|50\.[0-4][0-9]{2}|50\.500) MHz \(measured against the 8254's channel 2\)$",
    r"^  alpha: (running|halted \(in HLT until its next slice\)); 4 MiB at host 0x[0-9a-f]+, VPID 1, [0-9]+\.[0-9]{3} ms in guest$",
    r"^    exits: [1-9][0-9]* \(HLT: [1-9][0-9]*, I/O instruction: [1-9][0-9]*, VMX-preemption timer expired: [1-9][0-9]*\)$",
    r"^  beta: (running|halted \(in HLT until its next slice\)); 2 MiB at host 0x[0-9a-f]+, VPID 2, ",
    r"^    exits: [1-9][0-9]* \(HLT: [1-9][0-9]*, I/O instruction: [1-9][0-9]*, VMX-preemption timer expired: [1-9][0-9]*\)$",
    r"^    functions: 00:03\.0 \(Command 0x0007\)$",
    r"^  gamma: (running|halted \(in HLT until its next slice\)); 2 MiB at host 0x[0-9a-f]+, VPID 3, ",
    r"^    exits: [1-9][0-9]* \(HLT: [1-9][0-9]*, I/O instruction: [1-9][0-9]*, VMX-preemption timer expired: [1-9][0-9]*\)$",
    // `pci` and `iommu` on Bochs: enumeration through port I/O, beta's e1000 (OVMF left bus
    // mastering on), no IOMMU.
    r"conduit> pci$",
    r"^pci: [0-9]+ function\(s\) \(0 of them SR-IOV VFs\), enumerated at boot through port I/O 0xcf8/0xcfc \(no MCFG\)",
    r"^  00:00\.0 8086:1237 host bridge; owner: hypervisor$",
    r#"^  00:03\.0 8086:100e Ethernet controller; owner: guest "beta" \(no IOMMU domain: unprotected\)$"#,
    r"conduit> iommu$",
    r"^iommu: DMA remapping off: the firmware reports no DMAR table$",
    // `vcpu beta`: the guest state of its VMCS, RIP inside ticker64's code at 1 MiB.
    r"conduit> vcpu beta$",
    r"^vcpu of beta \(VPID 2, (running|halted \(in HLT until its next slice\)), VMCS launched\):$",
    r"^  RIP    0x00000000001[0-9a-f]{5}  \(CS\.base\+RIP 0x1[0-9a-f]{5}: in image segment \[0x100000, 0x10[0-9a-f]{4}\)\)$",
    r"^  RSP    0x00000000001[0-9a-f]{5}  RFLAGS 0x[0-9a-f]{16} \[",
    r"^  CR0    0x0000000080010033 \[PE MP ET NE WP PG\]$",
    r"^  CR3    0x0000000000001000$",
    r"^  CR4    0x0000000000002020 \[PAE VMXE\]$",
    r"^  EFER   0x0000000000000500 \[LME LMA\]$",
    r"^  CS     0x0008 base 0x0000000000000000 limit 0xffffffff ar 0x0a09b \(code RX accessed, DPL 0, present, L, G\)$",
    r"^  SS     0x0010 base 0x0000000000000000 limit 0xffffffff ar 0x0c093 \(data RW accessed, DPL 0, present, D/B, G\)$",
    r"^  TR     0x0018 base 0x0000000000000880 limit 0x00000067 ar 0x0008b \(64/32-bit TSS \(busy\), DPL 0, present\)$",
    r"^  GDTR   base 0x0000000000000800 limit 0x0027 ",
    r"^  activity (active|HLT); interruptibility none; pending debug exceptions 0x0$",
    r"^  event to inject at the next entry: none$",
    r"^  last exit: (HLT|I/O instruction|VMX-preemption timer expired) \(reason (12|30|52)\)",
    // `ept alpha 0x100000`: a 2 MiB leaf at level 2, write-back, RWX, inside alpha's memory.
    r"conduit> ept alpha 0x100000$",
    r"^EPT of alpha \(EPTP 0x[0-9a-f]+\), GPA 0x100000, 3 level\(s\) read:$",
    r"^  L4 0x[0-9a-f]{16}\[  0\] = 0x[0-9a-f]{16} RWX- -> table 0x[0-9a-f]+$",
    r"^  L3 0x[0-9a-f]{16}\[  0\] = 0x[0-9a-f]{16} RWX- -> table 0x[0-9a-f]+$",
    r"^  L2 0x[0-9a-f]{16}\[  0\] = 0x[0-9a-f]{16} RWX- -> Size2M page 0x[0-9a-f]+ WriteBack$",
    r"^  GPA 0x100000 -> HPA 0x[0-9a-f]+ \(Size2M leaf, WriteBack, RWX\), inside the guest's memory \[0x[0-9a-f]+, 0x[0-9a-f]+\)$",
    // Bad arguments: each error names what does not exist.
    r"conduit> ept alpha 0x400000$",
    r"^error: address 0x400000 is out of range \(the guest's addresses end below 0x400000\)$",
    r"conduit> vcpu nosuch$",
    r"^error: unknown guest `nosuch`; `vms` lists the guests$",
    // Garbage on the line while guests run: dropped, the shell goes on.
    r"^error: unknown command `junk`; type `help` for the list$",
    // `stop beta`: beta stops, the others keep running.
    r"conduit> stop beta$",
    r#"guest "beta" stopped: by operator"#,
    r#"guest "beta": 00:03\.0 quiesced: bus mastering off \(Command 0x0003\)"#,
    r"^stopped beta: it is not entered again; its memory, EPT and IOMMU domain stay until it is destroyed$",
    r"^  00:03\.0 quiesced: bus mastering off \(Command 0x0003\); still assigned to beta$",
    r"conduit> stop beta$",
    r"^error: guest `beta` is not running \(stopped \(by operator\)\); `restart beta` starts it again$",
    // The others keep running while beta is stopped: a round of alpha, then `vms`, a round of
    // gamma (the order the input script waits for them).
    r"alpha: round [0-9]+/60",
    r"conduit> vms$",
    r"^  alpha: (running|halted \(in HLT until its next slice\)); ",
    r"^  beta: stopped \(by operator\); 2 MiB",
    r"^    functions: 00:03\.0 \(Command 0x0003\)$",
    r"^  gamma: (running|halted \(in HLT until its next slice\)); ",
    r"gamma: round [0-9]+/60",
    // `restart beta`: from its image again, while the others run.
    r"conduit> restart beta$",
    r#"guest "beta" restarted from its image \(restart 1\)"#,
    r"^restarted beta from its image \(entry Long64 \{ rip: 1048576 \}\); restarts so far: 1$",
    r"^  its functions stay assigned, with bus mastering off until its driver turns it on$",
    r"beta: hello from ticker64",
    r"beta: round 1/60",
    r"^  beta: (running|halted \(in HLT until its next slice\)); 2 MiB at host 0x[0-9a-f]+, VPID 2, [0-9]+\.[0-9]{3} ms in guest, restarted 1 time\(s\)$",
    r"alpha: round [0-9]+/60",
    // Every guest ends; the shell stays until `quit`.
    r"sched: every guest has finished",
    r"preemption-timer exits per guest: alpha=[1-9][0-9]* beta=[1-9][0-9]* gamma=[1-9][0-9]*",
    r"conduit> vms$",
    r"^3 guest\(s\), 0 runnable, 0 not created",
    r"^  alpha: exited with code 0x7c; ",
    r"^  beta: exited with code 0x7c; .*, restarted 1 time\(s\)$",
    r"^  gamma: exited with code 0x7c; ",
    r"conduit> quit$",
    r"^quit: ending the run$",
    r"CONDUIT EXIT: success",
];

/// What every ticker64 instance prints, from its start to its exit.
macro_rules! ticker {
    ($name:literal) => {
        &[
            concat!($name, ": hello from ticker64"),
            concat!($name, ": round 1/60"),
            concat!($name, ": round 30/60"),
            concat!($name, ": round 60/60"),
            concat!($name, ": done"),
            concat!("guest \"", $name, "\" exited with code 0x7c"),
        ]
    };
}

/// `bochs-shell`: per guest. beta runs twice: stopped, then from the start again.
pub const BOCHS_GUESTS: &[(&str, &[&str])] = &[
    ("alpha", ticker!("alpha")),
    (
        "beta",
        &[
            "beta: hello from ticker64",
            "beta: round 1/60",
            r#"guest "beta" stopped: by operator"#,
            r#"guest "beta" restarted from its image"#,
            "beta: hello from ticker64",
            "beta: round 1/60",
            "beta: round 60/60",
            "beta: done",
            r#"guest "beta" exited with code 0x7c"#,
        ],
    ),
    ("gamma", ticker!("gamma")),
];

/// `bochs-shell`: never seen (the guest failures of `super::GUEST_FORBID` that apply, and garbage
/// reaching the parser).
pub const BOCHS_FORBID: &[&str] = &[
    PANIC,
    ANY_EXCEPTION,
    r"check failed",
    r"junkjunk",
    r"unknown command `[^`]*[^ -~]",
];

/// Issue "Serial-console debug shell", on QEMU (no VMX; the platform commands): the harness
/// types `help`, `pci`, `iommu`, `irq`, `vms`, `vcpu`, an unknown command, a 300-byte line and
/// garbage (control characters, bytes above 0x7f, escape sequences), then `quit`.
pub const QEMU_SHELL: Scenario = Scenario {
    name: "qemu-shell",
    machine: MachineSpec::Qemu(QemuSpec::TCG),
    config: Config::File("boot/scenarios/shell-qemu.toml"),
    expect: QEMU_EXPECT,
    guests: &[],
    forbid: QEMU_FORBID,
    input: QEMU_INPUT,
    end: End::Success,
    timeout_secs: 120,
};

/// Issue "Serial-console debug shell", on Bochs with three guests running: `vms`, `vcpu`,
/// `ept`, bad guest names and addresses, `stop` and `restart` of one guest while the others
/// run, then (after every guest has finished) `vms` and `quit`.
pub const BOCHS_SHELL: Scenario = Scenario {
    name: "bochs-shell",
    machine: MachineSpec::Bochs(BochsSpec {
        cpu_model: "tigerlake",
        // An e1000 for beta to own (and `stop` to quiesce).
        extra_lines: &[
            "pci: enabled=1, chipset=i440fx, slot1=pcivga, slot2=e1000",
            "e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null",
        ],
        ..BochsSpec::DEFAULT
    }),
    config: Config::File("boot/scenarios/shell-bochs.toml"),
    expect: BOCHS_EXPECT,
    guests: BOCHS_GUESTS,
    forbid: BOCHS_FORBID,
    input: BOCHS_INPUT,
    end: End::Success,
    timeout_secs: 400,
};
