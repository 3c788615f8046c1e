//! The serial console and the `log` facade.
//!
//! Every line is `[<tsc>] <LEVEL> <module>: <message>`, the TSC read when the line was logged
//! (instructions under Bochs, cycles elsewhere) and the module path without the crate name
//! (`hw::` for this crate's modules).
//!
//! The debug shell shares the line: while its prompt (and what the operator has typed) is on the
//! terminal, a log line first erases it, then it is drawn again below the log line, so log output
//! and the shell's never share a line. Everything goes through one lock.

use crate::rdtsc;
use crate::serial::Uart;
use conduit_uart::uart::{DEFAULT_BAUD, ReadBack, UartError};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);
static LOGGER: Logger = Logger;

/// Takes the console lock. Another CPU may hold it for a whole line (at 115200 baud, about
/// 87 µs per character); a CPU that waits for it with interrupts disabled would not take the
/// cross-CPU requests sent to it meanwhile, so while it spins it serves its own mailbox
/// ([`crate::smp::lock_serving`]).
fn lock_console() -> spin::MutexGuard<'static, Option<Console>> {
    crate::smp::lock_serving(&CONSOLE)
}
static READY: AtomicBool = AtomicBool::new(false);
/// [`Uart::key`] of the console UART for the fatal path; [`NO_UART`] when there is none.
static ACTIVE_KEY: AtomicU64 = AtomicU64::new(NO_UART);
const NO_UART: u64 = u64::MAX;
/// What was written before the console was chosen, replayed on the chosen one.
static EARLY: Mutex<EarlyLog> = Mutex::new(EarlyLog {
    bytes: [0; EARLY_MAX],
    len: 0,
    dropped: 0,
});

/// The most of the shell's input line (prompt and typed text) the console redraws.
const INPUT_MAX: usize = 192;
/// How much of the early log is kept for the chosen console.
const EARLY_MAX: usize = 24 * 1024;
/// Carriage return, then "erase to the end of the line" (ECMA-48 EL).
const ERASE_LINE: &[u8] = b"\r\x1b[K";

struct EarlyLog {
    bytes: [u8; EARLY_MAX],
    len: usize,
    dropped: usize,
}

/// The console UART and what the shell shows on the terminal's current line.
struct Console {
    /// Where the log and the shell go; `None` when no UART answers.
    port: Option<Uart>,
    /// A second UART that gets every byte too (the early console while the choice is announced).
    mirror: Option<Uart>,
    /// Whether output is also kept in [`EARLY`] (until the console is chosen).
    recording: bool,
    input: [u8; INPUT_MAX],
    input_len: usize,
    /// Whether the shell's input line is on the terminal (a log line must erase and redraw it).
    input_shown: bool,
}

impl Console {
    fn send(&mut self, b: u8) {
        if let Some(p) = self.port.as_mut() {
            p.send(b);
        }
        if let Some(m) = self.mirror.as_mut() {
            m.send(b);
        }
        if self.recording {
            let mut early = EARLY.lock();
            if early.len < EARLY_MAX {
                let at = early.len;
                early.bytes[at] = b;
                early.len += 1;
            } else {
                early.dropped += 1;
            }
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.send(b);
        }
    }

    fn redraw_input(&mut self) {
        for i in 0..self.input_len.min(INPUT_MAX) {
            self.send(self.input[i]);
        }
    }
}

struct Logger;

/// Opens COM1 at the default 115200 8N1 as the early console and installs the logger at `info`
/// until the configuration says otherwise. A missing COM1 costs nothing: output is kept for the
/// console chosen later ([`switch`]).
pub fn init() {
    let mut com1 = Uart::com1();
    let opened = com1.program(DEFAULT_BAUD);
    if opened.is_ok() {
        ACTIVE_KEY.store(com1.key(), Ordering::Release);
    }
    *lock_console() = Some(Console {
        port: opened.is_ok().then_some(com1),
        mirror: None,
        recording: true,
        input: [0; INPUT_MAX],
        input_len: 0,
        input_shown: false,
    });
    READY.store(true, Ordering::Release);
    // A second `set_logger` is the only failure, and `init` runs once.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
    match opened {
        Ok(back) => log::info!(
            "console: COM1 at port {:#x}, {back} (the early console until the configured one \
             is chosen)",
            crate::serial::COM1
        ),
        Err(e) => log::warn!("console: COM1: {e}; the log is kept for the configured console"),
    }
}

/// The console in use: its name and where its registers are, e.g. `COM2` and `port 0x2f8`.
pub fn current() -> Option<(alloc::string::String, alloc::string::String)> {
    let guard = lock_console();
    let port = guard.as_ref()?.port.as_ref()?;
    Some((alloc::string::String::from(&*port.name), port.location()))
}

/// Programs `uart` at `baud` 8N1, reading the settings back.
pub fn open(uart: &mut Uart, baud: u32) -> Result<ReadBack, UartError> {
    if let Some(c) = lock_console().as_mut()
        && let Some(p) = c.port.as_mut()
        && p.key() == uart.key()
    {
        // Reprogramming the UART in use: let what is queued leave at the old rate first.
        p.drain();
    }
    uart.program(baud)
}

/// Makes `chosen` the console (`None`: stay where the output goes now): the early log is replayed
/// on it when it is a different UART, then `announce` runs while every line goes to both the
/// previous console and the chosen one (it logs which console was chosen and why), and from then
/// on only the chosen one is written.
pub fn switch(chosen: Option<Uart>, announce: impl FnOnce()) {
    {
        let mut guard = lock_console();
        let Some(c) = guard.as_mut() else { return };
        c.recording = false;
        if let Some(new) = chosen {
            let same = c.port.as_ref().is_some_and(|p| p.key() == new.key());
            let mut new = new;
            if !same {
                let early = EARLY.lock();
                for &b in &early.bytes[..early.len] {
                    new.send(b);
                }
                if early.dropped > 0 {
                    let mut w = CrLf(&mut new);
                    let _ = writeln!(
                        w,
                        "[console: {} more bytes of the early log were not kept]",
                        early.dropped
                    );
                }
            }
            ACTIVE_KEY.store(new.key(), Ordering::Release);
            let old = c.port.replace(new);
            c.mirror = if same { None } else { old };
        }
    }
    announce();
    if let Some(c) = lock_console().as_mut() {
        c.mirror = None;
    }
}

/// Where [`CrLf`] puts bytes: the console (its UART, the mirror, the early log) or straight one
/// UART (the replay note, the fatal path).
trait Sink {
    fn put(&mut self, b: u8);
}

impl Sink for Console {
    fn put(&mut self, b: u8) {
        self.send(b);
    }
}

impl Sink for Uart {
    fn put(&mut self, b: u8) {
        self.send(b);
    }
}

/// Changes the log level at run time.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let module = record.module_path().unwrap_or("?");
        // The kernel's modules without the crate name, the hardware layer's as `hw::...`.
        let module = module.strip_prefix("conduit_kernel::").unwrap_or(module);
        let module = match module {
            "conduit_kernel" => "conduit",
            m => m.strip_prefix("conduit_").unwrap_or(m),
        };
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let mut guard = lock_console();
        if let Some(c) = guard.as_mut() {
            if c.input_shown {
                c.write_bytes(ERASE_LINE);
            }
            // The UART writer cannot fail.
            let _ = write!(CrLf(&mut *c), "[{:>14}] {level} {module}: ", rdtsc());
            let tag = module.rsplit("::").next();
            let mut body = StripTag {
                inner: CrLf(&mut *c),
                tag,
            };
            let _ = body.write_fmt(*record.args());
            let _ = body.inner.write_str("\n");
            if c.input_shown {
                c.redraw_input();
            }
        }
    }

    fn flush(&self) {
        if let Some(p) = lock_console().as_mut().and_then(|c| c.port.as_mut()) {
            p.drain();
        }
    }
}

/// Turns `\n` into `\r\n` for serial terminals.
struct CrLf<'a, S: Sink>(&'a mut S);

impl<S: Sink> Write for CrLf<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.put(b'\r');
            }
            self.0.put(b);
        }
        Ok(())
    }
}

/// Drops a message's own leading `<tag>: ` where the line already names the module it comes
/// from (`pci::sriov: sriov: 01:00.0 ...` is printed `pci::sriov: 01:00.0 ...`). Only the first
/// piece the message writes is looked at.
struct StripTag<'t, W> {
    inner: W,
    tag: Option<&'t str>,
}

impl<W: Write> Write for StripTag<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let s = match self.tag.take() {
            Some(tag) => s
                .strip_prefix(tag)
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(s),
            None => s,
        };
        self.inner.write_str(s)
    }
}

/// Writes a line on the fatal path: never waits for the console lock (the interrupted code may
/// hold it) and works before `init` (COM1, at whatever rate it runs).
pub fn emergency(args: fmt::Arguments) {
    let key = if READY.load(Ordering::Acquire) {
        ACTIVE_KEY.load(Ordering::Acquire)
    } else {
        Uart::com1().key()
    };
    if key == NO_UART {
        return;
    }
    // SAFETY: `ACTIVE_KEY` only holds keys of console UARTs, whose mappings are never removed.
    let Some(access) = (unsafe { Uart::access_of(key) }) else {
        return;
    };
    let mut uart = Uart {
        access,
        name: alloc::borrow::Cow::Borrowed("console"),
    };
    let _ = writeln!(CrLf(&mut uart), "{args}");
}

/// Waits (bounded) until the console has sent every byte, without its lock (the exit path).
pub fn drain_unlocked() {
    let key = ACTIVE_KEY.load(Ordering::Acquire);
    if key == NO_UART {
        return;
    }
    // SAFETY: as in `emergency`.
    if let Some(mut access) = unsafe { Uart::access_of(key) } {
        conduit_uart::uart::drain(&mut access);
    }
}

/// Prints a plain line without the log prefix (the harness' end markers, fatal reports).
pub fn println(args: fmt::Arguments) {
    let mut guard = lock_console();
    match guard.as_mut() {
        Some(c) => {
            if core::mem::take(&mut c.input_shown) {
                c.write_bytes(ERASE_LINE);
            }
            let _ = writeln!(CrLf(&mut *c), "{args}");
        }
        None => {
            drop(guard);
            emergency(args);
        }
    }
}

/// One received byte, if the console UART holds one; never waits.
pub fn read_byte() -> Option<u8> {
    let guard = lock_console();
    // The lock keeps reading apart from a line being written.
    let mut guard = guard;
    guard.as_mut()?.port.as_mut()?.try_read()
}

/// The shell's side of the console. Each call takes the lock for its own output only: nothing
/// that logs may run while it is held.
pub mod shell {
    use super::{CrLf, ERASE_LINE, INPUT_MAX, lock_console};
    use core::fmt::Write;

    /// Writes `bytes` as they are (the line editor's echo) and records the input line the
    /// terminal now shows: `prompt` followed by `text`.
    pub fn echo(bytes: impl Iterator<Item = u8>, prompt: &str, text: &str) {
        let mut guard = lock_console();
        let Some(c) = guard.as_mut() else { return };
        for b in bytes {
            c.send(b);
        }
        let mut len = 0;
        for &b in prompt.as_bytes().iter().chain(text.as_bytes()) {
            if let Some(slot) = c.input.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
        c.input_len = len.min(INPUT_MAX);
        c.input_shown = true;
    }

    /// Writes the echo that ends the input line (a newline, `^C`): the terminal shows no input
    /// line any more.
    pub fn end_input(bytes: impl Iterator<Item = u8>) {
        let mut guard = lock_console();
        let Some(c) = guard.as_mut() else { return };
        for b in bytes {
            c.send(b);
        }
        c.input_shown = false;
    }

    /// Writes `bytes` exactly as they are (a guest's console output while the operator has it
    /// attached): no line ending translation, no erasing of an input line.
    pub fn raw(bytes: &[u8]) {
        let mut guard = lock_console();
        let Some(c) = guard.as_mut() else { return };
        for &b in bytes {
            c.send(b);
        }
    }

    /// Writes one line of command output (`\n` becomes `\r\n`), erasing a shown input line
    /// first.
    pub fn line(text: &str) {
        let mut guard = lock_console();
        let Some(c) = guard.as_mut() else { return };
        if core::mem::take(&mut c.input_shown) {
            c.write_bytes(ERASE_LINE);
        }
        let _ = CrLf(&mut *c).write_str(text);
        let _ = CrLf(&mut *c).write_str("\n");
    }
}
