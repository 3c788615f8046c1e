//! The command line: `image`, `run`, `test`, `linux-bare`.

use crate::image::QEMU_DEBUG_EXIT_PORT;
use crate::machine::MachineKind;
use conduit_config::ExitMethod;
use std::path::PathBuf;

/// The usage text.
pub const USAGE: &str = "\
conduit-boot: builds, runs and tests Conduit's UEFI disk image

USAGE:
  conduit-boot image --config <TOML> --exit qemu|bochs|halt [--kernel <ELF>]
                     [--image KEY=PATH ...] --out <DISK.img>
  conduit-boot run   [--machine kvm|qemu|bochs] [--config <TOML>] [--kernel <ELF>]
                     [--image KEY=PATH ...] [-- <extra emulator arguments or bochsrc lines>]
  conduit-boot test  [--tier qemu|kvm|bochs|all] [--filter <SUBSTR>] [--kernel <ELF>] [--list]
  conduit-boot linux-bare --iso <CD.iso> --busybox <ELF> [--cpu <MODEL>] [--memory <MiB>]
                     [--conduit-log <LOG>]

`linux-bare` boots Linux with no hypervisor on Bochs (default CPU tigerlake, 512 MiB) from
the isolinux CD of `scripts/linux-assets --bare-cd` (the baseline of `scripts/bench --linux`) and prints the
instructions from the kernel's 64-bit entry to /init's first instruction; with `--conduit-log`,
also the Conduit guest's figure (`linux_guest_to_init_instr=N`) read from that boot log.

`image` and `run` boot the production image by default:
  target/x86_64-unknown-none/release/conduit-kernel
  (`cargo build -p conduit-kernel -p conduit-control --release`);
`test` boots the test image (self-tests, fault injection) by default:
  target/test-image/x86_64-unknown-none/release/conduit-kernel
  (`cargo build -p conduit-kernel -p conduit-control --release --features selftest
   --target-dir target/test-image`; `--kernel` replaces it), and the production image for the
  scenarios of the production image (`qemu-production*`).
A configuration with `[test]`, `test_break` or `test_apic` needs `--kernel` of the test image.
The control task is the `conduit-control` next to the kernel ELF.
Guest images are the `image` paths of the configuration's [[guest]] tables, relative to the
configuration file's directory (build the test guests with `cargo build -p conduit-guest --release`);
`--image KEY=PATH` reads the image a configuration names KEY from PATH instead.
`run` defaults to kvm when /dev/kvm exists and the CPU has VMX, else bochs, and to the
configuration conduit.toml at the repository root (built-in defaults if there is none).
Environment: CONDUIT_ROOT, CONDUIT_QEMU, CONDUIT_BOCHS, CONDUIT_OVMF, CONDUIT_VGABIOS.
";

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("no command given (expected image, run, test or linux-bare)")]
    NoCommand,
    #[error("unknown command `{0}` (expected image, run, test or linux-bare)")]
    UnknownCommand(String),
    #[error("`{command}` has no option `{option}`")]
    UnknownOption {
        command: &'static str,
        option: String,
    },
    #[error("`{0}` needs a value")]
    MissingValue(String),
    #[error("`{flag}` does not take `{value}` (expected {expected})")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("`{command}` needs `{flag}`")]
    Required {
        command: &'static str,
        flag: &'static str,
    },
    #[error("`{0}` is given twice")]
    Repeated(String),
    #[error("`--image {0}` is not KEY=PATH")]
    BadImage(String),
    #[error("unexpected argument `{0}`")]
    Unexpected(String),
}

/// `conduit-boot image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArgs {
    pub config: PathBuf,
    pub exit: ExitMethod,
    pub kernel: Option<PathBuf>,
    /// `--image KEY=PATH`: read the guest image the configuration names KEY from PATH.
    pub images: Vec<(String, PathBuf)>,
    pub out: PathBuf,
}

/// `conduit-boot run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// `None`: the host's default ([`crate::machine::host_default`]).
    pub machine: Option<MachineKind>,
    pub config: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    /// `--image KEY=PATH`: read the guest image the configuration names KEY from PATH.
    pub images: Vec<(String, PathBuf)>,
    /// After `--`: appended to QEMU's command line, or to the bochsrc as lines.
    pub extra: Vec<String>,
}

/// Which scenarios `test` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    All,
    Only(MachineKind),
}

impl Tier {
    /// Whether a scenario on a `kind` machine belongs to the tier.
    pub fn includes(self, kind: MachineKind) -> bool {
        match self {
            Self::All => true,
            Self::Only(k) => k == kind,
        }
    }
}

/// `conduit-boot test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestArgs {
    pub tier: Tier,
    pub filter: Option<String>,
    pub kernel: Option<PathBuf>,
    pub list: bool,
}

/// `conduit-boot linux-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxBareArgs {
    pub iso: PathBuf,
    /// The initramfs' busybox (its ELF entry is /init's first instruction).
    pub busybox: PathBuf,
    /// Bochs' CPU model; `None`: [`crate::linux_bare::BareSpec::DEFAULT_CPU`].
    pub cpu: Option<String>,
    /// Guest memory in MiB; `None`: 512.
    pub memory: Option<u32>,
    /// A Conduit boot log to take the guest's figure from.
    pub conduit_log: Option<PathBuf>,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Image(ImageArgs),
    Run(RunArgs),
    Test(TestArgs),
    LinuxBare(LinuxBareArgs),
}

/// Walks the options of one command.
struct Options<'a> {
    command: &'static str,
    args: std::slice::Iter<'a, String>,
}

/// One option: its name and, for `--name=value`, the inline value.
struct Opt<'a> {
    name: &'a str,
    inline: Option<&'a str>,
}

impl<'a> Options<'a> {
    /// The next option, `Ok(None)` at the end or at `--`.
    fn next(&mut self) -> Result<Option<Opt<'a>>, CliError> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if arg == "--" {
            return Ok(None);
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Some(Opt {
                name: "--help",
                inline: None,
            }));
        }
        if !arg.starts_with("--") {
            return Err(CliError::Unexpected(arg.clone()));
        }
        Ok(Some(match arg.split_once('=') {
            Some((name, value)) => Opt {
                name,
                inline: Some(value),
            },
            None => Opt {
                name: arg,
                inline: None,
            },
        }))
    }

    fn value(&mut self, opt: &Opt<'a>) -> Result<&'a str, CliError> {
        match opt.inline {
            Some(v) => Ok(v),
            None => self
                .args
                .next()
                .filter(|v| !v.starts_with("--"))
                .map(String::as_str)
                .ok_or_else(|| CliError::MissingValue(opt.name.to_string())),
        }
    }

    fn unknown(&self, opt: &Opt<'_>) -> CliError {
        CliError::UnknownOption {
            command: self.command,
            option: opt.name.to_string(),
        }
    }

    /// Everything after `--`.
    fn rest(self) -> Vec<String> {
        self.args.cloned().collect()
    }
}

fn set_once<T>(slot: &mut Option<T>, flag: &str, value: T) -> Result<(), CliError> {
    if slot.replace(value).is_some() {
        Err(CliError::Repeated(flag.to_string()))
    } else {
        Ok(())
    }
}

fn image_spec(value: &str) -> Result<(String, PathBuf), CliError> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(CliError::BadImage(value.to_string())),
    }
}

fn exit_method(value: &str) -> Result<ExitMethod, CliError> {
    match value {
        "qemu" => Ok(ExitMethod::QemuDebugExit {
            port: QEMU_DEBUG_EXIT_PORT,
        }),
        "bochs" => Ok(ExitMethod::BochsShutdown),
        "halt" => Ok(ExitMethod::Halt),
        _ => Err(CliError::BadValue {
            flag: "--exit".into(),
            value: value.into(),
            expected: "qemu, bochs or halt",
        }),
    }
}

fn machine(flag: &str, value: &str, all: bool) -> Result<Option<MachineKind>, CliError> {
    if all && value == "all" {
        return Ok(None);
    }
    MachineKind::from_name(value)
        .map(Some)
        .ok_or_else(|| CliError::BadValue {
            flag: flag.into(),
            value: value.into(),
            expected: if all {
                "qemu, kvm, bochs or all"
            } else {
                "kvm, qemu or bochs"
            },
        })
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(CliError::NoCommand);
    };
    let command: &'static str = match command.as_str() {
        "image" => "image",
        "run" => "run",
        "test" => "test",
        "linux-bare" => "linux-bare",
        "help" | "-h" | "--help" => return Ok(Command::Help),
        other => return Err(CliError::UnknownCommand(other.to_string())),
    };
    let mut o = Options {
        command,
        args: rest.iter(),
    };
    let (mut config, mut exit, mut kernel, mut out, mut machine_kind) =
        (None, None, None, None, None);
    let (mut tier, mut filter, mut list) = (None, None, false);
    let mut images = Vec::new();
    let (mut iso, mut busybox, mut cpu, mut memory, mut conduit_log) =
        (None, None, None, None, None);
    while let Some(opt) = o.next()? {
        match (command, opt.name) {
            (_, "--help") => return Ok(Command::Help),
            ("image" | "run" | "test", "--kernel") => {
                set_once(&mut kernel, opt.name, PathBuf::from(o.value(&opt)?))?
            }
            ("image" | "run", "--config") => {
                set_once(&mut config, opt.name, PathBuf::from(o.value(&opt)?))?;
            }
            ("image" | "run", "--image") => images.push(image_spec(o.value(&opt)?)?),
            ("image", "--exit") => set_once(&mut exit, opt.name, exit_method(o.value(&opt)?)?)?,
            ("image", "--out") => set_once(&mut out, opt.name, PathBuf::from(o.value(&opt)?))?,
            ("run", "--machine") => {
                let m = machine(opt.name, o.value(&opt)?, false)?;
                set_once(&mut machine_kind, opt.name, m)?;
            }
            ("test", "--tier") => {
                let t = machine(opt.name, o.value(&opt)?, true)?.map_or(Tier::All, Tier::Only);
                set_once(&mut tier, opt.name, t)?;
            }
            ("test", "--filter") => set_once(&mut filter, opt.name, o.value(&opt)?.to_string())?,
            ("test", "--list") if opt.inline.is_none() => list = true,
            ("linux-bare", "--iso") => set_once(&mut iso, opt.name, PathBuf::from(o.value(&opt)?))?,
            ("linux-bare", "--busybox") => {
                set_once(&mut busybox, opt.name, PathBuf::from(o.value(&opt)?))?;
            }
            ("linux-bare", "--cpu") => set_once(&mut cpu, opt.name, o.value(&opt)?.to_string())?,
            ("linux-bare", "--memory") => {
                let v = o.value(&opt)?;
                let mib = v.parse::<u32>().ok().filter(|m| *m >= 64).ok_or_else(|| {
                    CliError::BadValue {
                        flag: opt.name.into(),
                        value: v.into(),
                        expected: "a size in MiB, at least 64",
                    }
                })?;
                set_once(&mut memory, opt.name, mib)?;
            }
            ("linux-bare", "--conduit-log") => {
                set_once(&mut conduit_log, opt.name, PathBuf::from(o.value(&opt)?))?;
            }
            _ => return Err(o.unknown(&opt)),
        }
    }
    let required = |flag: &'static str| CliError::Required { command, flag };
    Ok(match command {
        "image" => {
            if o.args.len() > 0 {
                return Err(CliError::Unexpected(o.rest().join(" ")));
            }
            Command::Image(ImageArgs {
                config: config.ok_or_else(|| required("--config"))?,
                exit: exit.ok_or_else(|| required("--exit"))?,
                kernel,
                images,
                out: out.ok_or_else(|| required("--out"))?,
            })
        }
        "run" => Command::Run(RunArgs {
            machine: machine_kind.flatten(),
            config,
            kernel,
            images,
            extra: o.rest(),
        }),
        "linux-bare" => {
            if o.args.len() > 0 {
                return Err(CliError::Unexpected(o.rest().join(" ")));
            }
            Command::LinuxBare(LinuxBareArgs {
                iso: iso.ok_or_else(|| required("--iso"))?,
                busybox: busybox.ok_or_else(|| required("--busybox"))?,
                cpu,
                memory,
                conduit_log,
            })
        }
        _ => {
            if o.args.len() > 0 {
                return Err(CliError::Unexpected(o.rest().join(" ")));
            }
            Command::Test(TestArgs {
                tier: tier.unwrap_or(Tier::All),
                filter,
                kernel,
                list,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, CliError> {
        parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn image_with_everything() {
        let c = p(
            "image --config a.toml --exit=qemu --kernel k --image g=x.bin --image h=y --out d.img",
        );
        assert_eq!(
            c,
            Ok(Command::Image(ImageArgs {
                config: "a.toml".into(),
                exit: ExitMethod::QemuDebugExit { port: 0xf4 },
                kernel: Some("k".into()),
                images: vec![("g".into(), "x.bin".into()), ("h".into(), "y".into())],
                out: "d.img".into(),
            }))
        );
        assert!(matches!(
            p("image --config a --exit bochs --out o"),
            Ok(Command::Image(ImageArgs {
                exit: ExitMethod::BochsShutdown,
                ..
            }))
        ));
        assert!(matches!(
            p("image --config a --exit halt --out o"),
            Ok(Command::Image(ImageArgs {
                exit: ExitMethod::Halt,
                ..
            }))
        ));
    }

    #[test]
    fn image_errors() {
        assert_eq!(
            p("image --config a --out o"),
            Err(CliError::Required {
                command: "image",
                flag: "--exit"
            })
        );
        assert_eq!(
            p("image --exit qemu --out o"),
            Err(CliError::Required {
                command: "image",
                flag: "--config"
            })
        );
        assert_eq!(
            p("image --config a --exit qemu"),
            Err(CliError::Required {
                command: "image",
                flag: "--out"
            })
        );
        assert!(matches!(
            p("image --config a --exit kvm --out o"),
            Err(CliError::BadValue { .. })
        ));
        assert_eq!(
            p("image --config"),
            Err(CliError::MissingValue("--config".into()))
        );
        assert_eq!(
            p("image --config --out o"),
            Err(CliError::MissingValue("--config".into()))
        );
        assert_eq!(
            p("image --config a --config b"),
            Err(CliError::Repeated("--config".into()))
        );
        assert_eq!(p("image --image =x"), Err(CliError::BadImage("=x".into())));
        assert_eq!(
            p("image --image nameonly"),
            Err(CliError::BadImage("nameonly".into()))
        );
        assert_eq!(
            p("image --machine qemu"),
            Err(CliError::UnknownOption {
                command: "image",
                option: "--machine".into()
            })
        );
        assert_eq!(p("image stray"), Err(CliError::Unexpected("stray".into())));
    }

    #[test]
    fn run_defaults_and_extra_arguments() {
        assert_eq!(
            p("run"),
            Ok(Command::Run(RunArgs {
                machine: None,
                config: None,
                kernel: None,
                images: vec![],
                extra: vec![]
            }))
        );
        let Ok(Command::Run(r)) = p("run --machine bochs --config c.toml -- -d int --x") else {
            panic!("run parses")
        };
        assert_eq!(r.machine, Some(MachineKind::Bochs));
        assert_eq!(r.config, Some("c.toml".into()));
        assert_eq!(r.extra, ["-d", "int", "--x"]);
        assert!(matches!(
            p("run --machine vbox"),
            Err(CliError::BadValue { .. })
        ));
        assert!(matches!(
            p("run --machine all"),
            Err(CliError::BadValue { .. })
        ));
        assert!(matches!(
            p("run --exit qemu"),
            Err(CliError::UnknownOption { command: "run", .. })
        ));
    }

    #[test]
    fn test_options() {
        assert_eq!(
            p("test"),
            Ok(Command::Test(TestArgs {
                tier: Tier::All,
                filter: None,
                kernel: None,
                list: false
            }))
        );
        assert_eq!(
            p("test --tier bochs --filter found --list"),
            Ok(Command::Test(TestArgs {
                tier: Tier::Only(MachineKind::Bochs),
                filter: Some("found".into()),
                kernel: None,
                list: true
            }))
        );
        assert!(matches!(
            p("test --tier all"),
            Ok(Command::Test(TestArgs {
                tier: Tier::All,
                ..
            }))
        ));
        assert!(matches!(
            p("test --tier fast"),
            Err(CliError::BadValue { .. })
        ));
        assert!(matches!(
            p("test --list=yes"),
            Err(CliError::UnknownOption { .. })
        ));
        assert!(matches!(p("test -- extra"), Err(CliError::Unexpected(_))));
        assert!(Tier::Only(MachineKind::Qemu).includes(MachineKind::Qemu));
        assert!(!Tier::Only(MachineKind::Qemu).includes(MachineKind::Bochs));
    }

    #[test]
    fn commands_and_help() {
        assert_eq!(p(""), Err(CliError::NoCommand));
        assert_eq!(p("boot"), Err(CliError::UnknownCommand("boot".into())));
        assert_eq!(p("help"), Ok(Command::Help));
        assert_eq!(p("--help"), Ok(Command::Help));
        assert_eq!(p("test -h"), Ok(Command::Help));
    }

    #[test]
    fn linux_bare() {
        assert_eq!(
            p("linux-bare --iso b.iso --busybox bb --memory 512 --conduit-log c.log"),
            Ok(Command::LinuxBare(LinuxBareArgs {
                iso: "b.iso".into(),
                busybox: "bb".into(),
                cpu: None,
                memory: Some(512),
                conduit_log: Some("c.log".into()),
            }))
        );
        assert!(matches!(
            p("linux-bare --iso b.iso --busybox bb --cpu corei7_skylake_x"),
            Ok(Command::LinuxBare(LinuxBareArgs { cpu: Some(c), .. })) if c == "corei7_skylake_x"
        ));
        assert_eq!(
            p("linux-bare --busybox bb"),
            Err(CliError::Required {
                command: "linux-bare",
                flag: "--iso"
            })
        );
        assert!(matches!(
            p("linux-bare --iso b --busybox bb --memory 8"),
            Err(CliError::BadValue { .. })
        ));
        assert!(matches!(
            p("linux-bare --iso b --busybox bb --kernel k"),
            Err(CliError::UnknownOption { .. })
        ));
    }
}
