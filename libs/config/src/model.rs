//! The validated configuration as the kernel sees it (serialised with postcard inside the bundle).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

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
    /// Free-form name of the configuration, printed in the banner.
    pub name: String,
    /// Reserved for the guests of later issues; empty means "no guests".
    pub guests: Vec<String>,
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
}

impl TestCase {
    /// Parses the name used in `[test] scenario = "..."`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "page-fault" => Some(Self::PageFault),
            "vtd-edu" => Some(Self::VtdEdu),
            "vtd-edu-reginv" => Some(Self::VtdEduRegisterInvalidation),
            "dmar-corrupt" => Some(Self::DmarCorrupt),
            _ => None,
        }
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
        ] {
            assert_eq!(TestCase::from_name(name), Some(case));
        }
        assert_eq!(TestCase::from_name("vtd"), None);
    }
}
