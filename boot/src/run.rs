//! `conduit-boot image` and `conduit-boot run`.

use crate::Error;
use crate::cli::{ImageArgs, RunArgs};
use crate::expect::{End, Monitor, QEMU_FAILURE_CODE, QEMU_SUCCESS_CODE, qemu_status};
use crate::image::{self, ConfigText, ImageSpec};
use crate::machine::{self, HostTools, SerialOut};
use crate::paths::Workspace;
use crate::script::Script;
use crate::session::{Limits, Mode, Session};
use crate::terminal;
use std::path::PathBuf;
use std::time::Duration;

/// `conduit-boot image`: builds the disk image and its ramdisk.
pub fn image(ws: &Workspace, args: &ImageArgs) -> Result<(), Error> {
    let config = ConfigText::File(args.config.clone());
    // Configuration mistakes first: they are the user's to fix, and cheap to find.
    let loaded = image::load_config(&config, args.exit, &args.images)?;
    let kernel = kernel_for(ws, args.kernel.as_deref(), &config, &loaded)?;
    let built = image::build(&ImageSpec {
        kernel,
        config,
        exit: args.exit,
        images: args.images.clone(),
        out: args.out.clone(),
    })?;
    println!("disk image: {}", built.disk.display());
    println!("ramdisk:    {}", built.ramdisk.display());
    Ok(())
}

/// The kernel `image` and `run` use: the one given, else the production image; a configuration
/// with `[test]` or `test_break` needs the test image (see [`Workspace::kernel_for_config`]).
fn kernel_for(
    ws: &Workspace,
    explicit: Option<&std::path::Path>,
    config: &ConfigText,
    loaded: &conduit_config::toml_front::Loaded,
) -> Result<PathBuf, Error> {
    let origin = match config {
        ConfigText::File(path) => path.display().to_string(),
        ConfigText::Inline { .. } => String::from("the default configuration"),
    };
    Ok(ws.kernel_for_config(explicit, &origin, loaded.config.test_only().as_ref())?)
}

/// The configuration `run` uses: the one given, else `conduit.toml` at the repository root, else
/// the built-in defaults.
fn run_config(ws: &Workspace, given: Option<&PathBuf>) -> ConfigText {
    match given {
        Some(path) => ConfigText::File(path.clone()),
        None => {
            let default = ws.root.join("conduit.toml");
            if default.is_file() {
                ConfigText::File(default)
            } else {
                eprintln!(
                    "conduit-boot: no {}; using the default configuration",
                    default.display()
                );
                ConfigText::Inline {
                    text: String::new(),
                    dir: ws.root.clone(),
                }
            }
        }
    }
}

/// `conduit-boot run`: builds the image into `build/run/` and boots it with the serial console on
/// this terminal. Returns the process exit code: 0 if the kernel reported success.
pub fn run(ws: &Workspace, args: &RunArgs) -> Result<u8, Error> {
    let kind = args.machine.unwrap_or_else(machine::host_default);
    let spec = kind.default_spec();
    let config = run_config(ws, args.config.as_ref());
    let loaded = image::load_config(&config, spec.exit_method(), &args.images)?;
    let kernel = kernel_for(ws, args.kernel.as_deref(), &config, &loaded)?;
    let dir = ws.build_dir("run");
    let built = image::build(&ImageSpec {
        kernel,
        config,
        exit: spec.exit_method(),
        images: args.images.clone(),
        out: dir.join("disk.img"),
    })?;
    let tools = HostTools::from_env();
    let launch = machine::prepare(&spec, &tools, &dir, &built.disk, &args.extra)?;
    eprintln!(
        "conduit-boot: machine {} ({})",
        kind.name(),
        spec.describe()
    );
    eprintln!("conduit-boot: {}", launch.command_line());
    match &launch.serial {
        SerialOut::Stdout => {
            let mut session = Session::start(&launch, &dir.join("qemu.err"), Mode::Interactive)?;
            let status = session.wait()?;
            Ok(report_qemu(status))
        }
        SerialOut::File(_) | SerialOut::Socket(_) => {
            let own = dir.join("bochs.out");
            let typing = matches!(launch.serial, SerialOut::Socket(_));
            eprintln!(
                "conduit-boot: COM1 follows{}; Bochs' own log: {}",
                if typing {
                    " and takes your keystrokes: the debug shell prompts `conduit> ` (`help`; `quit` \
                     ends the run; Ctrl-C stops Bochs)"
                } else {
                    " (output only)"
                },
                own.display()
            );
            let mut session = Session::start(&launch, &own, Mode::Interactive)?;
            let raw = terminal::RawMode::enable();
            if let Some(socket) = session.input_socket() {
                terminal::forward_stdin(socket);
            }
            let mut monitor = Monitor::new(&[], &[]).map_err(|e| Error::Internal(e.to_string()))?;
            let limits = Limits {
                timeout: None,
                grace: Duration::from_secs(5),
            };
            let mut stdout = std::io::stdout();
            let ending = session.watch(&mut stdout, &mut monitor, &mut Script::empty(), limits);
            drop(raw);
            let ending = ending?;
            eprintln!("\nconduit-boot: bochs {ending}");
            Ok(match monitor.marker().map(|m| m.end()) {
                Some(End::Success) => 0,
                Some(End::Failure) => {
                    eprintln!("conduit-boot: the hypervisor reported failure");
                    1
                }
                None => {
                    eprintln!(
                        "conduit-boot: no end marker on the console; see {}",
                        own.display()
                    );
                    1
                }
            })
        }
    }
}

/// Explains QEMU's exit status and turns it into ours.
fn report_qemu(status: Option<i32>) -> u8 {
    match status {
        Some(s) if s == qemu_status(QEMU_SUCCESS_CODE) => {
            eprintln!("conduit-boot: the hypervisor reported success");
            0
        }
        Some(s) if s == qemu_status(QEMU_FAILURE_CODE) => {
            eprintln!("conduit-boot: the hypervisor reported failure");
            1
        }
        Some(s) => {
            eprintln!("conduit-boot: QEMU exited with status {s}");
            u8::try_from(s).unwrap_or(1).max(1)
        }
        None => {
            eprintln!("conduit-boot: QEMU was killed by a signal");
            1
        }
    }
}
