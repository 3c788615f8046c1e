//! The operator's terminal during `conduit-boot run` under Bochs: keystrokes go to the
//! hypervisor's serial shell one by one (no local line editing, no local echo: the shell edits and
//! echoes), and the terminal is restored afterwards, also when Ctrl-C ends the run.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Mutex;

/// The settings to restore (set while raw mode is on).
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Raw-ish mode on standard input while it lives: ICANON and ECHO off (keystrokes are passed on
/// as typed), ISIG kept (Ctrl-C still ends the run). A no-op when standard input is no terminal.
#[derive(Debug)]
pub struct RawMode {
    active: bool,
}

impl RawMode {
    /// Turns raw mode on if standard input is a terminal.
    pub fn enable() -> Self {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
            return Self { active: false };
        }
        // SAFETY: an all-zero termios is a valid value to be overwritten by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid termios for tcgetattr to fill.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return Self { active: false };
        }
        if let Ok(mut saved) = SAVED.lock() {
            *saved = Some(t);
        }
        let mut raw = t;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: `raw` is a complete termios derived from the current one.
        let ok = unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } == 0;
        if ok {
            // SAFETY: `restore_and_die` is an `extern "C" fn(c_int)`, a valid signal handler; it
            // only calls async-signal-safe functions (tcsetattr, signal, raise).
            unsafe {
                libc::signal(
                    libc::SIGINT,
                    restore_and_die as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
                libc::signal(
                    libc::SIGTERM,
                    restore_and_die as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
            }
        }
        Self { active: ok }
    }

    /// Whether the terminal is in raw mode.
    pub fn active(&self) -> bool {
        self.active
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.active {
            restore();
        }
    }
}

fn restore() {
    if let Ok(saved) = SAVED.lock()
        && let Some(t) = saved.as_ref()
    {
        // SAFETY: `t` is the termios tcgetattr returned for this descriptor.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
    }
}

/// Restores the terminal, then dies of the signal as if there had been no handler.
extern "C" fn restore_and_die(sig: libc::c_int) {
    // try_lock: the interrupted thread may hold the lock; then the terminal stays as it is
    // rather than the handler deadlocking.
    if let Ok(saved) = SAVED.try_lock()
        && let Some(t) = saved.as_ref()
    {
        // SAFETY: as in `restore`; tcsetattr is async-signal-safe.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
    }
    // SAFETY: resetting the disposition and re-raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Copies standard input to the serial connection on a thread, byte by byte as typed, until
/// either side closes.
pub fn forward_stdin(mut socket: TcpStream) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if std::io::Write::write_all(&mut socket, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_mode_is_a_no_op_without_a_terminal() {
        // Under `cargo test` standard input is not a terminal in CI; where it is, raw mode is
        // turned on and off again by the guard.
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
        let raw = RawMode::enable();
        if !tty {
            assert!(!raw.active());
        }
        drop(raw);
    }
}
