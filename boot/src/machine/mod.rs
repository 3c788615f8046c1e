//! The emulated machines: which one to use, and how to start it.
//!
//! A [`MachineSpec`] says what the machine is (QEMU with its accelerator and IOMMU options, or Bochs
//! with its CPU model); [`prepare`] turns it into a [`Launch`]: the command line, the files it needs
//! (written into a run directory), and where its serial console comes out.

pub mod bochs;
pub mod qemu;

use crate::image::QEMU_DEBUG_EXIT_PORT;
use conduit_config::ExitMethod;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use bochs::BochsSpec;
pub use qemu::{Accel, QemuConsole, QemuSpec};

/// The machine names of the command line (`--machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    /// QEMU with KVM (nested VT-x) and the full device set.
    Kvm,
    /// QEMU with TCG (no VMX) and the full device set.
    Qemu,
    /// Bochs (VMX, EPT; no IOMMU).
    Bochs,
}

impl MachineKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [Self; 3] = [Self::Kvm, Self::Qemu, Self::Bochs];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Qemu => "qemu",
            Self::Bochs => "bochs",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The interactive machine of this kind, with default options.
    pub fn default_spec(self) -> MachineSpec {
        match self {
            Self::Kvm => MachineSpec::Qemu(QemuSpec::KVM),
            Self::Qemu => MachineSpec::Qemu(QemuSpec::TCG),
            Self::Bochs => MachineSpec::Bochs(BochsSpec::DEFAULT),
        }
    }
}

/// The default machine: `kvm` when `/dev/kvm` exists and the CPU has VMX (so nested VT-x can work),
/// else `bochs`, the only other machine that runs VMX code.
pub fn select_default(kvm_device_exists: bool, cpuinfo: &str) -> MachineKind {
    if kvm_device_exists && cpu_has_vmx(cpuinfo) {
        MachineKind::Kvm
    } else {
        MachineKind::Bochs
    }
}

/// Whether `/proc/cpuinfo` text lists the `vmx` flag.
pub fn cpu_has_vmx(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == "vmx"))
}

/// [`select_default`] for this host.
pub fn host_default() -> MachineKind {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    select_default(Path::new("/dev/kvm").exists(), &cpuinfo)
}

/// Whether this host can run the `kvm` machine (`/dev/kvm` and VMX): scenarios on it are run
/// only then, and otherwise listed as not run.
pub fn kvm_usable() -> bool {
    host_default() == MachineKind::Kvm
}

/// A fully described machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineSpec {
    Qemu(QemuSpec),
    Bochs(BochsSpec),
}

impl MachineSpec {
    /// How the kernel ends this machine.
    pub fn exit_method(&self) -> ExitMethod {
        match self {
            Self::Qemu(_) => ExitMethod::QemuDebugExit {
                port: QEMU_DEBUG_EXIT_PORT,
            },
            Self::Bochs(_) => ExitMethod::BochsShutdown,
        }
    }

    /// The machine kind (the test tier it belongs to).
    pub fn kind(&self) -> MachineKind {
        match self {
            Self::Qemu(q) if q.accel == Accel::Kvm => MachineKind::Kvm,
            Self::Qemu(_) => MachineKind::Qemu,
            Self::Bochs(_) => MachineKind::Bochs,
        }
    }

    /// A one-line description for listings.
    pub fn describe(&self) -> String {
        match self {
            Self::Qemu(q) => q.describe(),
            Self::Bochs(b) => b.describe(),
        }
    }
}

/// Host programs and firmware; each can be overridden by an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTools {
    /// `CONDUIT_QEMU`, default `qemu-system-x86_64`.
    pub qemu: String,
    /// `CONDUIT_BOCHS`, default `bochs`.
    pub bochs: String,
    /// `CONDUIT_OVMF`, default `/usr/share/ovmf/OVMF.fd` (a single image, for `-bios` and Bochs' ROM).
    pub ovmf: PathBuf,
    /// `CONDUIT_VGABIOS`, default `/usr/share/vgabios/vgabios.bin` (Bochs only).
    pub vgabios: PathBuf,
}

impl Default for HostTools {
    fn default() -> Self {
        Self {
            qemu: "qemu-system-x86_64".into(),
            bochs: "bochs".into(),
            ovmf: "/usr/share/ovmf/OVMF.fd".into(),
            vgabios: "/usr/share/vgabios/vgabios.bin".into(),
        }
    }
}

impl HostTools {
    /// The defaults, with environment overrides applied.
    pub fn from_env() -> Self {
        let d = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            qemu: var("CONDUIT_QEMU").unwrap_or(d.qemu),
            bochs: var("CONDUIT_BOCHS").unwrap_or(d.bochs),
            ovmf: var("CONDUIT_OVMF").map_or(d.ovmf, PathBuf::from),
            vgabios: var("CONDUIT_VGABIOS").map_or(d.vgabios, PathBuf::from),
        }
    }
}

/// Where a machine's serial console (COM1) comes out, and how input reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialOut {
    /// On the emulator's standard output (QEMU `-serial stdio`); its stdin feeds the port.
    Stdout,
    /// Into a file the emulator appends to (Bochs `com1: mode=file`); no input.
    File(PathBuf),
    /// A TCP connection the emulator opens to this listener (Bochs `com1: mode=socket-client`):
    /// output and input both go through it.
    Socket(SerialSocket),
}

/// A loopback listener for an emulator's serial connection.
#[derive(Debug, Clone)]
pub struct SerialSocket(Arc<TcpListener>);

impl SerialSocket {
    /// Listens on 127.0.0.1 at a port the system chooses (so parallel runs never collide).
    pub fn bind_loopback() -> std::io::Result<Self> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map(|l| Self(Arc::new(l)))
    }

    /// The port listened on (0 if the system cannot say).
    pub fn port(&self) -> u16 {
        self.0.local_addr().map_or(0, |a| a.port())
    }

    /// The listener.
    pub fn listener(&self) -> &TcpListener {
        &self.0
    }
}

/// Two sockets are the same when they listen on the same port.
impl PartialEq for SerialSocket {
    fn eq(&self, other: &Self) -> bool {
        self.port() == other.port()
    }
}

impl Eq for SerialSocket {}

/// Everything needed to start a prepared machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub serial: SerialOut,
    /// A file the emulator locks while it runs, to delete if the run is killed.
    pub lock_file: Option<PathBuf>,
    /// The emulator's working directory (`None`: ours). Bochs writes device files there (the
    /// e1000's `eth_null-*` dumps).
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a machine could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes what the machine needs into `dir` (QEMU's NVMe backing file; Bochs' configuration, with
/// the stale lock and serial files removed) and returns how to start it. `extra` is appended to the
/// QEMU command line, or to the bochsrc as lines.
pub fn prepare(
    spec: &MachineSpec,
    tools: &HostTools,
    dir: &Path,
    disk: &Path,
    extra: &[String],
) -> Result<Launch, MachineError> {
    std::fs::create_dir_all(dir).map_err(|source| MachineError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    match spec {
        MachineSpec::Qemu(q) => qemu::prepare(q, tools, dir, disk, extra),
        MachineSpec::Bochs(b) => bochs::prepare(b, tools, dir, disk, extra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMX_CPU: &str =
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx sse2\n";
    const PLAIN_CPU: &str = "processor\t: 0\nflags\t\t: fpu vme svm sse2\nvmx flags\t: ept\n";

    #[test]
    fn kvm_needs_both_the_device_and_vmx() {
        assert_eq!(select_default(true, VMX_CPU), MachineKind::Kvm);
        assert_eq!(select_default(false, VMX_CPU), MachineKind::Bochs);
        assert_eq!(select_default(true, PLAIN_CPU), MachineKind::Bochs);
        assert_eq!(select_default(true, ""), MachineKind::Bochs);
    }

    #[test]
    fn vmx_is_a_whole_flag_of_the_flags_line() {
        assert!(cpu_has_vmx(VMX_CPU));
        // "vmx flags" is a different key, and "vmxx" is not "vmx".
        assert!(!cpu_has_vmx(PLAIN_CPU));
        assert!(!cpu_has_vmx("flags : vmxx avx\n"));
    }

    #[test]
    fn names_round_trip_and_kinds_map_to_exits() {
        for k in MachineKind::ALL {
            assert_eq!(MachineKind::from_name(k.name()), Some(k));
            assert_eq!(k.default_spec().kind(), k);
        }
        assert_eq!(MachineKind::from_name("tcg"), None);
        assert_eq!(
            MachineKind::Qemu.default_spec().exit_method(),
            ExitMethod::QemuDebugExit { port: 0xf4 }
        );
        assert_eq!(
            MachineKind::Bochs.default_spec().exit_method(),
            ExitMethod::BochsShutdown
        );
    }
}
