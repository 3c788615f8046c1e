//! The serial console and the `log` facade.
//!
//! Every line is `[<tsc>] <LEVEL> <module>: <message>`, the TSC read when the line was logged
//! (instructions under Bochs, cycles elsewhere) and the module path without the crate name
//! (`hw::` for this crate's modules).
//!
//! The debug shell shares the line: while its prompt (and what the operator has typed) is on the
//! terminal, a log line first erases it, then it is drawn again below the log line, so log output
//! and the shell's never share a line. Everything goes through one lock.

use crate::{rdtsc, serial};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<Console>> = Mutex::new(None);
static LOGGER: Logger = Logger;
static READY: AtomicBool = AtomicBool::new(false);

/// The most of the shell's input line (prompt and typed text) the console redraws.
const INPUT_MAX: usize = 192;
/// Carriage return, then "erase to the end of the line" (ECMA-48 EL).
const ERASE_LINE: &[u8] = b"\r\x1b[K";

/// COM1 and what the shell shows on the terminal's current line.
struct Console {
    port: SerialPort,
    input: [u8; INPUT_MAX],
    input_len: usize,
    /// Whether the shell's input line is on the terminal (a log line must erase and redraw it).
    input_shown: bool,
}

impl Console {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.port.send_raw(b);
        }
    }

    fn redraw_input(&mut self) {
        for i in 0..self.input_len.min(INPUT_MAX) {
            self.port.send_raw(self.input[i]);
        }
    }
}

struct Logger;

/// Opens COM1 and installs the logger at `info` until the configuration says otherwise.
pub fn init() {
    *COM1.lock() = Some(Console {
        port: serial::open_com1(),
        input: [0; INPUT_MAX],
        input_len: 0,
        input_shown: false,
    });
    READY.store(true, Ordering::Release);
    // A second `set_logger` is the only failure, and `init` runs once.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
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
        let mut guard = COM1.lock();
        if let Some(c) = guard.as_mut() {
            if c.input_shown {
                c.write_bytes(ERASE_LINE);
            }
            // The UART writer cannot fail.
            let _ = write!(CrLf(&mut c.port), "[{:>14}] {level} {module}: ", rdtsc());
            let tag = module.rsplit("::").next();
            let mut body = StripTag {
                inner: CrLf(&mut c.port),
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
        serial::drain();
    }
}

/// Turns `\n` into `\r\n` for serial terminals.
struct CrLf<'a>(&'a mut SerialPort);

impl Write for CrLf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.send_raw(b'\r');
            }
            self.0.send_raw(b);
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
/// hold it) and works before `init`.
pub fn emergency(args: fmt::Arguments) {
    let mut port = if READY.load(Ordering::Acquire) {
        serial::com1_unlocked()
    } else {
        serial::open_com1()
    };
    let _ = writeln!(CrLf(&mut port), "{args}");
}

/// Prints a plain line without the log prefix (the harness' end markers, fatal reports).
pub fn println(args: fmt::Arguments) {
    let mut guard = COM1.lock();
    match guard.as_mut() {
        Some(c) => {
            if core::mem::take(&mut c.input_shown) {
                c.write_bytes(ERASE_LINE);
            }
            let _ = writeln!(CrLf(&mut c.port), "{args}");
        }
        None => {
            drop(guard);
            emergency(args);
        }
    }
}

/// One received byte, if COM1 holds one; never waits.
pub fn read_byte() -> Option<u8> {
    let guard = COM1.lock();
    // Reading needs no driver state, but the lock keeps it apart from a line being written.
    guard.as_ref().and_then(|_| serial::try_read())
}

/// The shell's side of the console. Each call takes the lock for its own output only: nothing
/// that logs may run while it is held.
pub mod shell {
    use super::{COM1, CrLf, ERASE_LINE, INPUT_MAX};
    use core::fmt::Write;

    /// Writes `bytes` as they are (the line editor's echo) and records the input line the
    /// terminal now shows: `prompt` followed by `text`.
    pub fn echo(bytes: impl Iterator<Item = u8>, prompt: &str, text: &str) {
        let mut guard = COM1.lock();
        let Some(c) = guard.as_mut() else { return };
        for b in bytes {
            c.port.send_raw(b);
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
        let mut guard = COM1.lock();
        let Some(c) = guard.as_mut() else { return };
        for b in bytes {
            c.port.send_raw(b);
        }
        c.input_shown = false;
    }

    /// Writes one line of command output (`\n` becomes `\r\n`), erasing a shown input line
    /// first.
    pub fn line(text: &str) {
        let mut guard = COM1.lock();
        let Some(c) = guard.as_mut() else { return };
        if core::mem::take(&mut c.input_shown) {
            c.write_bytes(ERASE_LINE);
        }
        let _ = CrLf(&mut c.port).write_str(text);
        let _ = CrLf(&mut c.port).write_str("\n");
    }
}
