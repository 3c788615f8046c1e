//! Parsing a line into a typed [`Command`], validating every argument.
//!
//! Words are separated by ASCII whitespace. Command words and log levels are matched ASCII
//! case-insensitively; guest names are exact (`[a-z0-9_-]`, 1..=32 bytes). Every error names the
//! argument, the command's usage or the word at fault.

use core::fmt;

use crate::guest::{GuestDirectory, GuestNameError, validate_guest_name};
use crate::help::{CommandInfo, find_command, suggest};
use crate::number::{NumberError, parse_u64};

/// Console log levels, from the quietest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// And warnings.
    Warn,
    /// And information.
    Info,
    /// And debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Every level, from the quietest.
    pub const ALL: [Self; 5] = [
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// The lower-case name typed on the shell.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    /// Parses a level name (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }
}

/// A guest named on the command line, resolved by the [`GuestDirectory`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GuestRef<'a, G> {
    /// The name as typed.
    pub name: &'a str,
    /// What the directory resolved it to.
    pub id: G,
}

/// A parsed, validated command. `G` is the directory's guest identifier.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Command<'a, G> {
    /// `help`: print [`crate::COMMANDS`].
    Help,
    /// `vms`: list the guests.
    Vms,
    /// `cpus`: list the physical CPUs.
    Cpus,
    /// `vcpu <guest>`: dump a guest's vCPU state.
    Vcpu(GuestRef<'a, G>),
    /// `ept <guest> <gpa>`: walk a guest's EPT; `gpa` is below the guest's address limit.
    Ept {
        /// The guest.
        guest: GuestRef<'a, G>,
        /// The guest-physical address.
        gpa: u64,
    },
    /// `iommu`: VT-d state.
    Iommu,
    /// `pci`: PCI functions.
    Pci,
    /// `irq`: interrupt routing.
    Irq,
    /// `log <level>`: set the console log level.
    Log(LogLevel),
    /// `stop <guest>`.
    Stop(GuestRef<'a, G>),
    /// `restart <guest>`.
    Restart(GuestRef<'a, G>),
    /// `console <guest>`: attach the console to the guest's UART until the escape byte
    /// ([`crate::CONSOLE_ESCAPE`]).
    Console(GuestRef<'a, G>),
    /// `quit` (or `exit`): end the run.
    Quit,
}

/// Why a line is not a valid command.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ParseError<'a> {
    /// The first word is no command.
    #[error("unknown command `{name}`{}; type `help` for the list", Suggestion(*suggestion))]
    UnknownCommand {
        /// The word typed.
        name: &'a str,
        /// The closest command, if one is close enough and unambiguous.
        suggestion: Option<&'static str>,
    },
    /// Too few or too many arguments.
    #[error("usage: {usage}")]
    Usage {
        /// The command.
        command: &'static str,
        /// Its synopsis.
        usage: &'static str,
    },
    /// A word in the guest position is not a syntactically valid guest name.
    #[error("bad guest name `{name}`: {reason}")]
    InvalidGuestName {
        /// The word typed.
        name: &'a str,
        /// What is wrong with it.
        reason: GuestNameError,
    },
    /// No guest has that name.
    #[error("unknown guest `{0}`; `vms` lists the guests")]
    UnknownGuest(&'a str),
    /// A numeric argument does not parse.
    #[error("bad <{arg}> `{text}`: {reason}")]
    InvalidNumber {
        /// The argument's name in the usage.
        arg: &'static str,
        /// The word typed.
        text: &'a str,
        /// What is wrong with it.
        reason: NumberError,
    },
    /// An address is at or beyond the guest's limit.
    #[error("address {addr:#x} is out of range (the guest's addresses end below {limit:#x})")]
    AddressOutOfRange {
        /// The address typed.
        addr: u64,
        /// The exclusive limit.
        limit: u64,
    },
    /// `log` with a word that is no level.
    #[error("unknown log level `{0}` (expected error, warn, info, debug or trace)")]
    UnknownLogLevel(&'a str),
}

/// Formats "; did you mean `x`?" or nothing.
struct Suggestion(Option<&'static str>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "; did you mean `{name}`?"),
            None => Ok(()),
        }
    }
}

/// Most arguments any command takes.
const MAX_ARGS: usize = 2;

/// Parses one line. A blank line is `Ok(None)`.
pub fn parse<'a, D>(line: &'a str, guests: &D) -> Result<Option<Command<'a, D::Id>>, ParseError<'a>>
where
    D: GuestDirectory + ?Sized,
{
    let mut words = line.split_ascii_whitespace();
    let Some(word) = words.next() else {
        return Ok(None);
    };
    let Some(info) = find_command(word) else {
        return Err(ParseError::UnknownCommand {
            name: word,
            suggestion: suggest(word),
        });
    };
    let mut args = [""; MAX_ARGS];
    let mut count = 0;
    for arg in words {
        let slot = args.get_mut(count).ok_or(usage(info))?;
        *slot = arg;
        count += 1;
    }
    if count != info.arity {
        return Err(usage(info));
    }
    let [first, second] = args;
    let command = match info.name {
        "help" => Command::Help,
        "vms" => Command::Vms,
        "cpus" => Command::Cpus,
        "iommu" => Command::Iommu,
        "pci" => Command::Pci,
        "irq" => Command::Irq,
        "quit" => Command::Quit,
        "vcpu" => Command::Vcpu(resolve(first, guests)?),
        "stop" => Command::Stop(resolve(first, guests)?),
        "restart" => Command::Restart(resolve(first, guests)?),
        "console" => Command::Console(resolve(first, guests)?),
        "ept" => {
            let guest = resolve(first, guests)?;
            let gpa = number("gpa", second)?;
            let limit = guests.address_limit(guest.id);
            if gpa >= limit {
                return Err(ParseError::AddressOutOfRange { addr: gpa, limit });
            }
            Command::Ept { guest, gpa }
        }
        "log" => {
            Command::Log(LogLevel::from_name(first).ok_or(ParseError::UnknownLogLevel(first))?)
        }
        // Every entry of the table is matched above.
        _ => {
            return Err(ParseError::UnknownCommand {
                name: word,
                suggestion: None,
            });
        }
    };
    Ok(Some(command))
}

fn usage(info: &CommandInfo) -> ParseError<'static> {
    ParseError::Usage {
        command: info.name,
        usage: info.usage,
    }
}

/// Validates and resolves a guest-name argument.
pub fn resolve<'a, D>(name: &'a str, guests: &D) -> Result<GuestRef<'a, D::Id>, ParseError<'a>>
where
    D: GuestDirectory + ?Sized,
{
    validate_guest_name(name).map_err(|reason| ParseError::InvalidGuestName { name, reason })?;
    let id = guests.lookup(name).ok_or(ParseError::UnknownGuest(name))?;
    Ok(GuestRef { name, id })
}

fn number<'a>(arg: &'static str, text: &'a str) -> Result<u64, ParseError<'a>> {
    parse_u64(text).map_err(|reason| ParseError::InvalidNumber { arg, text, reason })
}
