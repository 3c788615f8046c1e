//! The validated configuration as the kernel sees it (serialised with postcard inside the bundle).

use alloc::string::String;
use alloc::vec::Vec;
use conduit_bootproto::ram::{GuestRam, RamError};
use serde::{Deserialize, Serialize};

pub use crate::testing::{TestCase, TestOnly};

/// Everything the kernel needs to know at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootConfig {
    /// Initial log level of the serial console.
    pub log_level: LogLevel,
    /// How the machine is ended when the hypervisor is done (or fails). Chosen by whoever builds the
    /// image for a machine: emulators have debug-exit devices, real hardware has none.
    pub exit: ExitMethod,
    /// A test-only scenario (never set by `conduit.toml` for production use).
    pub test: Option<TestCase>,
    /// What the hypervisor does once no guest is left to run.
    pub on_idle: OnIdle,
    /// Free-form name of the configuration, printed in the banner.
    pub name: String,
    /// The guests, in the order `conduit.toml` lists them (validated: see [`GuestConfig`]).
    pub guests: Vec<GuestConfig>,
    /// Allow device assignment on a machine without DMA remapping (the device can then DMA
    /// anywhere in memory): `[hypervisor] unsafe_no_iommu = true`.
    pub unsafe_no_iommu: bool,
    /// Which UART carries the log and the debug shell: `[hypervisor] console`.
    pub console: ConsoleChoice,
    /// The console's baud rate (8N1): `[hypervisor] baud`, 115200 divided by a whole number.
    pub baud: u32,
}

/// A PCI function by address or by identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSel {
    /// `ssss:bb:dd.f`, or `bb:dd.f` on segment 0.
    Bdf {
        /// PCI segment group (the MCFG's segment number).
        segment: u16,
        bus: u8,
        dev: u8,
        func: u8,
    },
    /// The first function with this vendor and device id.
    Id { vendor: u16, device: u16 },
}

/// One `[[guest.device]]`: a function, or virtual function `vf` of a physical function, with
/// a VF's network identity where the configuration gives one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAssignment {
    pub function: DeviceSel,
    pub vf: Option<u16>,
    /// The VF's MAC address (unicast, not zero; unique in the configuration).
    pub mac: Option<[u8; 6]>,
    /// VLAN ids (1-4094, each once) the VF may join.
    pub vlans: Vec<u16>,
}

impl DeviceAssignment {
    /// Do both name the same function (selector and VF index)?
    pub fn same_function(&self, other: &Self) -> bool {
        self.function == other.function && self.vf == other.vf
    }
}

/// A MAC address as `xx:xx:xx:xx:xx:xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacText(pub [u8; 6]);

impl core::fmt::Display for MacText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl core::fmt::Display for DeviceAssignment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.function {
            DeviceSel::Bdf {
                segment,
                bus,
                dev,
                func,
            } => {
                if segment != 0 {
                    write!(f, "{segment:04x}:")?;
                }
                write!(f, "{bus:02x}:{dev:02x}.{func:x}")?;
            }
            DeviceSel::Id { vendor, device } => write!(f, "{vendor:04x}:{device:04x}")?,
        }
        match self.vf {
            Some(vf) => write!(f, " VF {vf}"),
            None => Ok(()),
        }
    }
}

/// One guest, validated at build time against its image.
///
/// Guarantees (checked by the image builder, `crate::guest`): `name` is 1-32 characters of
/// `[a-z0-9_-]` and unique; `memory_mib` is 2..=512 (all guests together at most 768); every
/// segment lies inside `[0, memory_mib MiB)`, the segments do not overlap, are sorted by `gpa`
/// and have `file_len <= mem_len`; a [`EntryMode::Long64`] guest loads nothing below
/// `conduit_abi::long64::LOW_AREA_END` (0x8000: the GDT and identity page tables the kernel writes
/// there); a [`EntryMode::Real16`] guest loads everything and enters below 1 MiB; `entry_point`
/// lies inside a segment; the bundle carries an image named `image` long enough for every segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    pub name: String,
    /// Guest RAM is GPA `[0, memory_mib MiB)`.
    pub memory_mib: u32,
    /// Its vCPUs, 1..=[`crate::guest::MAX_VCPUS`] (more than 1 only for an operating system:
    /// its local APICs start the others).
    pub vcpus: u32,
    pub entry: EntryMode,
    /// Long64: the RIP at entry. Real16: a linear address below 1 MiB, entered as
    /// CS:IP = [`GuestConfig::real_mode_cs_ip`].
    pub entry_point: u64,
    /// What to copy from the image into guest memory, sorted by `gpa`.
    pub segments: Vec<Segment>,
    /// The key of the bundle's [`crate::GuestImage`] (the `image` string of `conduit.toml`; guests
    /// may share one).
    pub image: String,
    /// The scheduler's time slice for this guest, 100..=100000 µs.
    pub time_slice_us: u32,
    /// TEST ONLY: corrupt the guest's state this way before entry (the entry must be refused).
    pub test_break: Option<GuestBreak>,
    /// TEST ONLY: run an OS guest's local APIC this way rather than the best the CPU offers.
    pub test_apic: Option<ApicTest>,
    /// PCI functions given to this guest (existence is checked at boot).
    pub devices: Vec<DeviceAssignment>,
    /// The operating system's boot protocol (`kind = "linux"` / `"multiboot"`), `None` for a
    /// purpose-built image.
    pub os: Option<OsBoot>,
    /// What happens when the guest crashes or resets itself.
    pub on_crash: OnCrash,
    /// What happens to the guest when a request it made crashes the control task.
    pub on_control_crash: OnControlCrash,
    /// `identity_ram_at` (Linux guests, only with `unsafe_no_iommu`): the host-physical address
    /// of the guest's RAM block, whose part above its first MiB is mapped at GPA = HPA
    /// (`conduit_bootproto::ram`); `None`: RAM at GPA 0, anywhere in host memory.
    pub identity_ram_at: Option<u64>,
    /// The physical CPU that runs it (`cpus`, `dedicated`; empty `cpus`: the default placement,
    /// chosen at boot).
    pub placement: crate::Placement,
}

/// What an operating-system guest is booted with besides its kernel image (the builder checked
/// it against the kernel's header; the kernel recomputes the layout from the same inputs with
/// `conduit-bootproto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OsBoot {
    /// Linux x86 boot protocol, 64-bit entry: `image` is the bzImage.
    Linux {
        /// The command line (without NUL), at most the kernel's `cmdline_size` bytes.
        cmdline: String,
        /// The bundle key of the initrd, if any.
        initrd: Option<String>,
    },
    /// Multiboot 0.6.96: `image` is the kernel.
    Multiboot {
        cmdline: String,
        modules: Vec<MultibootModule>,
    },
}

/// One Multiboot module: a bundle image and its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultibootModule {
    /// The bundle key (the module's `path` in `conduit.toml`).
    pub image: String,
    pub cmdline: String,
}

/// What happens to a guest when the control task fails while serving one of its requests (a
/// configuration or MSI-X table access of one of its functions): the guest is blamed either way,
/// and the task is restarted with every other guest's state replayed (docs/control-task.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnControlCrash {
    /// Its functions are quarantined: reset, no longer served (they read as absent), their
    /// interrupts no longer routed; the guest runs on without them.
    #[default]
    Quarantine,
    /// The guest is stopped (its functions quarantined as well).
    Stop,
}

impl OnControlCrash {
    /// The configuration's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Quarantine => "quarantine",
            Self::Stop => "stop",
        }
    }
}

/// What happens when a guest triple-faults, reboots itself (e.g. Linux after a panic with
/// `panic=N`) or resets through 0xCF9, the keyboard controller or ACPI (`on_crash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnCrash {
    /// The guest stops, reported with the reason.
    Stop,
    /// The guest is rebuilt from its image, at most `max_restarts` times; then it stops.
    Restart { max_restarts: u32 },
}

impl GuestConfig {
    /// The size of guest RAM in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory_mib) << 20
    }

    /// Where the guest's RAM lies in guest-physical space (the builder checked an identity
    /// placement, so an error here means a bundle not made by it).
    pub fn ram(&self) -> Result<GuestRam, RamError> {
        match self.identity_ram_at {
            Some(base) => GuestRam::identity(base, self.memory_bytes()),
            None => Ok(GuestRam::contiguous(self.memory_bytes())),
        }
    }

    /// For a real-mode guest: `(CS selector, IP)` of the entry point (CS.base = selector << 4).
    /// `None` for long64 guests.
    pub fn real_mode_cs_ip(&self) -> Option<(u16, u16)> {
        match self.entry {
            EntryMode::Real16 => conduit_abi::real16::cs_ip(self.entry_point),
            EntryMode::Long64 | EntryMode::Linux64 | EntryMode::Multiboot32 => None,
        }
    }
}

/// Copy `image[file_offset..file_offset + file_len]` to GPA `gpa`, then zero-fill up to
/// `gpa + mem_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub gpa: u64,
    pub file_offset: u64,
    pub file_len: u64,
    pub mem_len: u64,
}

impl Segment {
    /// The first GPA after the segment (the builder checked that it does not overflow).
    pub fn end(&self) -> u64 {
        self.gpa.saturating_add(self.mem_len)
    }
}

/// The CPU mode a guest starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryMode {
    /// 64-bit long mode, paging on (identity map of the first 4 GiB), CS=0x08, DS/ES/SS=0x10,
    /// GDT at GPA 0x800, RSP = top of guest memory, RFLAGS = 0x2, no IDT.
    Long64,
    /// Real mode (CR0.PE=0, unrestricted guest), CS:IP from the entry point, SS=0, SP=0x7000,
    /// other segments 0.
    Real16,
    /// The Linux 64-bit boot protocol (`kind = "linux"`): long mode, identity paging, a GDT with
    /// flat __BOOT_CS 0x10 and __BOOT_DS 0x18, IF = 0, RSI = the zero page, RIP = the load
    /// address + 0x200.
    Linux64,
    /// Multiboot 0.6.96 (`kind = "multiboot"`): 32-bit protected mode, paging off, flat CS
    /// (0x08) and DS/ES/FS/GS/SS (0x10), IF = 0, EAX = 0x2BADB002, EBX = the Multiboot
    /// information structure, at the kernel's entry point.
    Multiboot32,
}

impl EntryMode {
    /// Parses the `entry` value of `conduit.toml` (an operating-system guest's entry mode
    /// follows from its `kind`, it is never written).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "long64" => Some(Self::Long64),
            "real16" => Some(Self::Real16),
            _ => None,
        }
    }

    /// The `entry` value of `conduit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Long64 => "long64",
            Self::Real16 => "real16",
            Self::Linux64 => "linux64",
            Self::Multiboot32 => "multiboot32",
        }
    }
}

/// TEST ONLY: a guest state the kernel deliberately corrupts before entry, so that the VM entry
/// checks (or the kernel's own pre-entry check) must refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestBreak {
    /// CR0.PG = 1 with CR0.PE = 0.
    Cr0PgWithoutPe,
    /// RFLAGS bit 1 (reserved, must be 1) cleared.
    RflagsReservedBitClear,
    /// TR marked unusable.
    TrUnusable,
}

impl GuestBreak {
    /// Every value, for listings and error messages.
    pub const ALL: [Self; 3] = [
        Self::Cr0PgWithoutPe,
        Self::RflagsReservedBitClear,
        Self::TrUnusable,
    ];

    /// The `test_break` value of `conduit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cr0PgWithoutPe => "cr0-pg-without-pe",
            Self::RflagsReservedBitClear => "rflags-reserved-bit-clear",
            Self::TrUnusable => "tr-unusable",
        }
    }

    /// Parses the `test_break` value of `conduit.toml`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// TEST ONLY: how an OS guest's local APIC is run, overriding the choice the kernel makes from
/// the CPU's capabilities (docs/linux-guests.md, "Virtual platform").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApicTest {
    /// Software emulation (EPT violations and event injection) even where the CPU offers APIC
    /// virtualization.
    Software,
}

impl ApicTest {
    /// Every value, for listings and error messages.
    pub const ALL: [Self; 1] = [Self::Software];

    /// The `test_apic` value of `conduit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Software => "software",
        }
    }

    /// Parses the `test_apic` value of `conduit.toml`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Log levels, from the quietest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Parses the lower-case name used in `conduit.toml` and on the debug shell.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "error" => Self::Error,
            "warn" => Self::Warn,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "trace" => Self::Trace,
            _ => return None,
        })
    }
}

/// What the hypervisor does when no guest is runnable (every guest exited or was stopped, or none
/// was configured): `[hypervisor] on_idle` in `conduit.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnIdle {
    /// End the run (`CONDUIT EXIT: success`) through the configured exit method.
    Exit,
    /// Stay at the serial debug shell until its `quit` command (the default).
    #[default]
    Shell,
}

impl OnIdle {
    /// Every value, for error messages.
    pub const ALL: [Self; 2] = [Self::Exit, Self::Shell];

    /// The `on_idle` value of `conduit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Shell => "shell",
        }
    }

    /// Parses the `on_idle` value of `conduit.toml`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Which UART is the console (`[hypervisor] console` in `conduit.toml`; `docs/console.md`). The
/// kernel starts on COM1 either way and switches once the ACPI tables are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConsoleChoice {
    /// The UART the ACPI SPCR table names, else the DBG2's first 16550, else COM1 (the default).
    #[default]
    Auto,
    /// COM1, the 16550 at I/O port 0x3f8.
    Com1,
    /// COM2, the 16550 at I/O port 0x2f8.
    Com2,
    /// As `Auto`, but falling back to COM1 is a warning.
    Spcr,
}

impl ConsoleChoice {
    /// Every value, for error messages.
    pub const ALL: [Self; 4] = [Self::Auto, Self::Com1, Self::Com2, Self::Spcr];

    /// The `console` value of `conduit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Com1 => "com1",
            Self::Com2 => "com2",
            Self::Spcr => "spcr",
        }
    }

    /// Parses the `console` value of `conduit.toml`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// How the hypervisor ends the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitMethod {
    /// Halt forever (real hardware): the serial log is the only report.
    Halt,
    /// QEMU's `isa-debug-exit` device at the given I/O port; QEMU exits with `(code << 1) | 1`.
    QemuDebugExit { port: u16 },
    /// Bochs: the string `Shutdown` written to port 0x8900.
    BochsShutdown,
}

impl BootConfig {
    /// The first setting of this configuration that only the test image carries out (the
    /// scenario first, then the guests' `test_break` and `test_apic` in configuration order), if
    /// any.
    pub fn test_only(&self) -> Option<TestOnly> {
        if let Some(t) = self.test {
            return Some(TestOnly::Scenario(t));
        }
        self.guests.iter().find_map(|g| {
            g.test_break
                .map(|value| TestOnly::GuestBreak {
                    guest: g.name.clone(),
                    value,
                })
                .or_else(|| {
                    g.test_apic.map(|value| TestOnly::GuestApic {
                        guest: g.name.clone(),
                        value,
                    })
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::TestCase;

    #[test]
    fn vtd_scenario_names() {
        for (name, case) in [
            ("vtd-edu", TestCase::VtdEdu),
            ("vtd-edu-reginv", TestCase::VtdEduRegisterInvalidation),
            ("dmar-corrupt", TestCase::DmarCorrupt),
            ("page-fault", TestCase::PageFault),
            ("nvme-vf", TestCase::NvmeVf),
            ("nvme-vf-bad", TestCase::NvmeVfBad),
            ("nvme-vf-io", TestCase::NvmeVfIo),
            ("intremap", TestCase::Intremap),
            ("control", TestCase::Control),
            ("igb-vf", TestCase::IgbVf),
            ("igb-net", TestCase::IgbNet),
            ("igb-mailbox", TestCase::IgbMailbox),
            ("clock-stopped", TestCase::ClockStopped),
            ("intx", TestCase::Intx),
            ("smp", TestCase::Smp),
            ("smp-ghost", TestCase::SmpGhost),
            ("placement", TestCase::Placement),
        ] {
            assert_eq!(TestCase::from_name(name), Some(case));
        }
        assert_eq!(TestCase::from_name("vtd"), None);
        assert_eq!(TestCase::from_name("nvme"), None);
        assert_eq!(TestCase::from_name("nvme-vf "), None);
        assert_eq!(TestCase::from_name("intremap-eim"), None);
        assert_eq!(TestCase::from_name("Intremap"), None);
        assert_eq!(TestCase::from_name("igb"), None);
        assert_eq!(TestCase::from_name("igb_vf"), None);
        assert_eq!(TestCase::from_name("igb-vf-bad"), None);
        for case in TestCase::ALL {
            assert_eq!(TestCase::from_name(case.name()), Some(case));
        }
    }
}
