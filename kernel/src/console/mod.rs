//! The serial console and the `log` facade.
//!
//! Every line is `[<tsc>] <LEVEL> <module>: <message>`, the TSC read when the line was logged
//! (instructions under Bochs, cycles elsewhere) and the module path without the crate name.

use crate::arch::x86_64::{rdtsc, serial};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);
static LOGGER: Logger = Logger;
static READY: AtomicBool = AtomicBool::new(false);

struct Logger;

/// Opens COM1 and installs the logger at `info` until the configuration says otherwise.
pub fn init() {
    *COM1.lock() = Some(serial::open_com1());
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
        let module = module.strip_prefix("conduit_kernel::").unwrap_or(module);
        let module = if module == "conduit_kernel" {
            "conduit"
        } else {
            module
        };
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let mut guard = COM1.lock();
        if let Some(port) = guard.as_mut() {
            // The UART writer cannot fail.
            let _ = writeln!(
                CrLf(port),
                "[{:>14}] {level} {module}: {}",
                rdtsc(),
                record.args()
            );
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
        Some(port) => {
            let _ = writeln!(CrLf(port), "{args}");
        }
        None => {
            drop(guard);
            emergency(args);
        }
    }
}
