//! The serial debug shell: a line-oriented shell on COM1 beside the guests.
//!
//! The scheduler calls [`Shell::poll`] between time slices and, once no guest is runnable, in its
//! idle loop. A poll takes at most [`BYTES_PER_POLL`] received bytes (never waiting for one),
//! feeds them to `conduit_shell`'s line editor, echoes, and executes at most one finished line
//! with `conduit_shell::parse`. Every command answers from the live structures (the guests, their
//! VMCS and EPT, the firmware's tables); output goes through the console lock one whole line at a
//! time, so it never shares a line with a log message.

mod cpus;
mod guests;
mod platform;

use crate::guest::Guests;
use crate::platform::Platform;
use crate::sched::remote;
use alloc::string::String;
use conduit_config::OnIdle;
use conduit_hw::console;
use conduit_shell::{COMMANDS, Command, Event, LineEditor, LogLevel, ParseError, USAGE_WIDTH};
use core::fmt::Write as _;
use log::{LevelFilter, info};

/// What the shell shows before the operator's input.
pub const PROMPT: &str = "conduit> ";
/// The most received bytes one poll takes: a burst of input never holds up the guests for long.
pub const BYTES_PER_POLL: usize = 32;

/// Writes one line of shell output (formatted first, then written under the console lock).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::shell::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Formats `args` and writes it as one line.
pub fn line(args: core::fmt::Arguments<'_>) {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = text.write_fmt(args);
    console::shell::line(&text);
}

/// Whether the scheduler goes on after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The operator typed `quit`: end the run.
    Quit,
    /// `console <guest>`: attach the console to that guest's UART (by index).
    Attach(usize),
}

/// What a command may look at and change (a guest on another CPU through that CPU:
/// `sched::remote`).
pub struct World<'a> {
    pub guests: &'a Guests,
    pub platform: &'a Platform,
}

/// The shell's own state: only the line being typed.
pub struct Shell {
    editor: LineEditor,
    /// The guest whose UART the console is attached to (`console <guest>`), by index.
    attached: Option<usize>,
}

impl Shell {
    pub fn new() -> Self {
        Self {
            editor: LineEditor::new(),
            attached: None,
        }
    }

    /// Announces the shell and shows the prompt.
    pub fn start(&mut self, on_idle: OnIdle) {
        let after = match on_idle {
            OnIdle::Exit => "the run ends when no guest is left",
            OnIdle::Shell => "it stays after the guests finish",
        };
        match console::current() {
            Some((name, _)) => {
                info!("ready on {name} (type `help`; `quit` ends the run; {after})")
            }
            // Nothing shows this line; the log says why no UART answered.
            None => info!("no console UART answers: the debug shell has no terminal"),
        }
        prompt();
    }

    /// Takes what has arrived on the serial line, up to [`BYTES_PER_POLL`] bytes and at most one
    /// command; returns at once when nothing is there.
    pub fn poll(&mut self, world: &mut World<'_>) -> Flow {
        if let Some(i) = self.attached {
            self.poll_attached(world, i);
            return Flow::Continue;
        }
        for _ in 0..BYTES_PER_POLL {
            let Some(byte) = console::read_byte() else {
                break;
            };
            let feed = self.editor.feed(byte);
            let echo = feed.echo;
            let Some(event) = feed.event else {
                console::shell::echo(echo.bytes(), PROMPT, self.editor.current());
                continue;
            };
            console::shell::end_input(echo.bytes());
            let flow = match event {
                Event::Line(text) => match execute(text, world) {
                    Flow::Attach(id) => {
                        self.attach(world, id);
                        if self.attached.is_some() {
                            // No prompt while attached: the guest's output owns the terminal.
                            return Flow::Continue;
                        }
                        Flow::Continue
                    }
                    other => other,
                },
                Event::Overflow { kept, dropped } => {
                    say!(
                        "error: line too long (a line holds {} bytes): dropped {dropped} bytes after the first {kept}; nothing was executed",
                        conduit_shell::LINE_CAPACITY
                    );
                    Flow::Continue
                }
                Event::Cancelled => Flow::Continue,
            };
            if flow == Flow::Continue {
                prompt();
            }
            return flow;
        }
        Flow::Continue
    }
}

impl Shell {
    /// Attached: typed bytes go to the guest's UART as they are, except the escape byte, which
    /// detaches. A guest that is no longer running detaches the console too. The bytes reach the
    /// guest through the CPU that runs it.
    fn poll_attached(&mut self, world: &mut World<'_>, i: usize) {
        let Some(slot) = world.guests.list.get(i) else {
            self.attached = None;
            return;
        };
        if !slot.runnable() {
            self.attached = None;
            let done = remote::with_guest(world.guests, i, |g, _| {
                g.set_console_attached(false);
                say!(
                    "\r\nconsole: {} is {}; back in the shell",
                    g.name,
                    g.state_text()
                );
            });
            if let Err(e) = done {
                say!(
                    "\r\nconsole: {} is no longer running ({e}); back in the shell",
                    slot.name
                );
            }
            prompt();
            return;
        }
        let mut typed = alloc::vec::Vec::new();
        let mut escape = false;
        for _ in 0..BYTES_PER_POLL {
            let Some(byte) = console::read_byte() else {
                break;
            };
            if byte == conduit_shell::CONSOLE_ESCAPE {
                escape = true;
                break;
            }
            typed.push(byte);
        }
        if typed.is_empty() && !escape {
            return;
        }
        let name = slot.name.clone();
        let fed = remote::with_guest(world.guests, i, move |g, _| {
            for byte in typed {
                g.console_input(byte);
            }
            if escape {
                g.set_console_attached(false);
            }
        });
        if let Err(e) = fed {
            say!("\r\nconsole: input for {name} lost: {e}");
        }
        if escape {
            self.attached = None;
            say!("\r\nconsole: detached from {name}; back in the shell");
            prompt();
        }
    }

    fn attach(&mut self, world: &mut World<'_>, id: usize) {
        let attached = alloc::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let flag = attached.clone();
        let done = remote::with_guest(world.guests, id, move |g, _| {
            if g.state != crate::guest::State::Runnable {
                say!(
                    "error: {} is {}: nothing to attach to",
                    g.name,
                    g.state_text()
                );
                return;
            }
            say!(
                "console: attached to {}'s serial port (Ctrl-] returns to the shell)",
                g.name
            );
            g.set_console_attached(true);
            flag.store(true, core::sync::atomic::Ordering::Release);
        });
        match done {
            Ok(_) if attached.load(core::sync::atomic::Ordering::Acquire) => {
                self.attached = Some(id);
            }
            Ok(_) => {}
            Err(e) => say!("error: cannot attach: {e}"),
        }
    }
}

fn prompt() {
    console::shell::echo(PROMPT.bytes(), PROMPT, "");
}

/// Commands that inspect or steer guests: they need VMX.
fn needs_vmx(word: &str) -> bool {
    ["vcpu", "ept", "stop", "restart", "console"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(word))
}

/// Parses and runs one line.
fn execute(line: &str, world: &mut World<'_>) -> Flow {
    let word = line.split_ascii_whitespace().next().unwrap_or("");
    if needs_vmx(word)
        && let Some(why) = &world.guests.no_vmx
    {
        say!(
            "error: `{}` is not available on this machine: no guest runs here ({why})",
            word.to_ascii_lowercase()
        );
        return Flow::Continue;
    }
    let command = match conduit_shell::parse(line, world.guests) {
        Ok(Some(c)) => c,
        Ok(None) => return Flow::Continue,
        Err(ParseError::UnknownGuest(name)) if world.guests.refusal(name).is_some() => {
            let reason = world.guests.refusal(name).map_or("", |r| r.reason.as_str());
            say!("error: guest `{name}` was never created: {reason}");
            return Flow::Continue;
        }
        Err(e) => {
            say!("error: {e}");
            return Flow::Continue;
        }
    };
    match command {
        Command::Help => help(),
        Command::Vms => guests::vms(world.guests),
        Command::Cpus => cpus::cpus(world.guests),
        Command::Vcpu(g) => guests::vcpu(world.guests, g.id),
        Command::Ept { guest, gpa } => guests::ept(world.guests, guest.id, gpa),
        Command::Stop(g) => guests::stop(world.guests, g.id),
        Command::Restart(g) => guests::restart(world.guests, g.id),
        Command::Console(g) => return Flow::Attach(g.id),
        Command::Iommu => platform::iommu(world.platform),
        Command::Pci => platform::pci(world.platform, world.guests),
        Command::Irq => platform::irq(world.platform),
        Command::Log(level) => set_log_level(level),
        Command::Quit => {
            say!("quit: ending the run");
            return Flow::Quit;
        }
    }
    Flow::Continue
}

fn help() {
    say!("commands (guest names as `vms` shows them; numbers in decimal or 0x-hex):");
    for c in &COMMANDS {
        let mut aliases = String::new();
        for a in c.aliases {
            let _ = write!(aliases, " (also `{a}`)");
        }
        say!(
            "  {:<width$}  {}{aliases}",
            c.usage,
            c.summary,
            width = USAGE_WIDTH
        );
    }
}

fn set_log_level(level: LogLevel) {
    let before = log::max_level();
    console::set_level(match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    });
    say!(
        "log level: {} (was {})",
        level.name(),
        before.as_str().to_ascii_lowercase()
    );
}
