//! `conduit-boot`: Conduit's host-side tool (the library behind the binary).
//!
//! - `image`: builds the UEFI disk image (the bootloader crate's GPT image with the kernel, and the
//!   boot bundle of `conduit.toml` and guest images as its ramdisk);
//! - `run`: boots it interactively under QEMU (KVM or TCG) or Bochs;
//! - `test`: runs the boot scenarios of [`scenarios`] and judges their serial logs (and, in every
//!   log, the TSC figures against the kernel's one rate: [`tsc`]);
//! - `linux-bare`: the bare-metal baseline of the Linux boot benchmark ([`linux_bare`]).

pub mod cli;
pub mod expect;
pub mod harness;
pub mod image;
pub mod linux_bare;
pub mod linux_log;
pub mod machine;
pub mod paths;
pub mod run;
pub mod scenarios;
pub mod script;
pub mod session;
pub mod terminal;
pub mod tsc;

use std::process::ExitCode;

/// Everything that can stop the tool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cli(#[from] cli::CliError),
    #[error(transparent)]
    Path(#[from] paths::PathError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Machine(#[from] machine::MachineError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error(transparent)]
    LinuxBare(#[from] linux_bare::BareError),
    #[error("argument {0:?} is not valid UTF-8")]
    NotUtf8(std::ffi::OsString),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Exit code for command-line errors.
const USAGE_ERROR: u8 = 2;

/// The whole program: parses the command line, runs the command, reports errors.
pub fn main() -> ExitCode {
    match dispatch() {
        Ok(code) => ExitCode::from(code),
        Err(e @ (Error::Cli(_) | Error::NotUtf8(_))) => {
            eprintln!("conduit-boot: {e}\n\n{}", cli::USAGE);
            ExitCode::from(USAGE_ERROR)
        }
        Err(e) => {
            eprintln!("conduit-boot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch() -> Result<u8, Error> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().map_err(Error::NotUtf8))
        .collect::<Result<Vec<String>, Error>>()?;
    let command = cli::parse(&args)?;
    if command == cli::Command::Help {
        print!("{}", cli::USAGE);
        return Ok(0);
    }
    let ws = paths::Workspace::locate()?;
    match command {
        cli::Command::Help => Ok(0),
        cli::Command::Image(a) => run::image(&ws, &a).map(|()| 0),
        cli::Command::Run(a) => run::run(&ws, &a),
        cli::Command::Test(a) => harness::run(&ws, &a).map(|ok| if ok { 0 } else { 1 }),
        cli::Command::LinuxBare(a) => linux_bare::command(&ws, &a).map(|()| 0),
    }
}
