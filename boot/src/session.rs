//! A running emulator: starting it, streaming its serial console, typing into it, stopping it.
//!
//! Under QEMU the console is the emulator's stdout, read by a thread into a channel, and its stdin
//! feeds the serial port; under Bochs it is a TCP connection the emulator opens to our listener,
//! read the same way and written for input (or a file the emulator appends to, tailed, without
//! input). Either way [`Session::watch`] copies the bytes to a sink as they arrive, feeds them to
//! a [`Monitor`] and to the [`Script`] that types into the console, and decides when the run is
//! over.

use crate::expect::{Ending, Monitor};
use crate::machine::{Launch, SerialOut, SerialSocket};
use crate::script::Script;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the serial console is polled when nothing arrives.
const POLL: Duration = Duration::from_millis(50);
/// How long the console is drained after the emulator exits.
const DRAIN: Duration = Duration::from_secs(2);
/// How long an emulator may take to open its serial connection.
const CONNECT: Duration = Duration::from_secs(30);

/// Why a session failed (not the guest: the host side).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the serial log: {0}")]
    Sink(#[source] std::io::Error),
    #[error("cannot read the serial console {path}: {source}")]
    Serial {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot wait for the emulator: {0}")]
    Wait(#[source] std::io::Error),
    #[error("cannot accept the emulator's serial connection: {0}")]
    Accept(#[source] std::io::Error),
    #[error("cannot write to the serial console: {0}")]
    Input(#[source] std::io::Error),
}

/// Where input for the serial console goes.
enum SerialInput {
    /// Nowhere (a file console, an interactive QEMU that reads the terminal itself).
    None,
    /// QEMU's stdin.
    Stdin(ChildStdin),
    /// The emulator's serial connection.
    Socket(TcpStream),
}

/// Whether the session belongs to a person at a terminal or to the test harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The emulator stays in this process group (Ctrl-C reaches it) and, where it can, talks to
    /// the terminal directly.
    Interactive,
    /// The emulator gets its own process group (so a timeout can kill all of it) and no stdin.
    Batch,
}

/// Where the serial bytes come from.
enum SerialSource {
    /// The terminal gets them directly (interactive QEMU): nothing to read.
    Direct,
    /// A pipe read by a thread.
    Pipe { rx: Receiver<Vec<u8>>, open: bool },
    /// A file the emulator appends to; opened once it exists.
    File { path: PathBuf, file: Option<File> },
}

impl SerialSource {
    /// New bytes, waiting up to `wait` when there are none.
    fn poll(&mut self, wait: Duration) -> Result<Vec<u8>, SessionError> {
        match self {
            Self::Direct => {
                std::thread::sleep(wait);
                Ok(Vec::new())
            }
            Self::Pipe { rx, open } => {
                if !*open {
                    std::thread::sleep(wait);
                    return Ok(Vec::new());
                }
                let mut out = match rx.recv_timeout(wait) {
                    Ok(bytes) => bytes,
                    Err(RecvTimeoutError::Timeout) => return Ok(Vec::new()),
                    Err(RecvTimeoutError::Disconnected) => {
                        *open = false;
                        return Ok(Vec::new());
                    }
                };
                while let Ok(more) = rx.try_recv() {
                    out.extend_from_slice(&more);
                }
                Ok(out)
            }
            Self::File { path, file } => {
                if file.is_none() {
                    *file = File::open(&*path).ok();
                }
                let mut out = Vec::new();
                if let Some(f) = file {
                    f.read_to_end(&mut out)
                        .map_err(|source| SessionError::Serial {
                            path: path.clone(),
                            source,
                        })?;
                }
                if out.is_empty() {
                    std::thread::sleep(wait);
                }
                Ok(out)
            }
        }
    }

    /// Whether more bytes may still come after the emulator exited.
    fn may_have_more(&self) -> bool {
        matches!(self, Self::Pipe { open: true, .. })
    }
}

/// A started emulator.
pub struct Session {
    child: Child,
    serial: SerialSource,
    input: SerialInput,
    lock_file: Option<PathBuf>,
    mode: Mode,
    started: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// When [`Session::watch`] gives up.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Kill the emulator after this long (`None`: never).
    pub timeout: Option<Duration>,
    /// Kill the emulator this long after the end marker if it has not exited by itself.
    pub grace: Duration,
}

impl Session {
    /// Starts the emulator. Its own messages (stderr; Bochs' stdout too) go to `own_output`, except
    /// for an interactive QEMU, which keeps the terminal.
    pub fn start(launch: &Launch, own_output: &Path, mode: Mode) -> Result<Self, SessionError> {
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args);
        if let Some(dir) = &launch.cwd {
            cmd.current_dir(dir);
        }
        let output = || {
            File::create(own_output).map_err(|source| SessionError::Output {
                path: own_output.to_path_buf(),
                source,
            })
        };
        let direct = mode == Mode::Interactive && launch.serial == SerialOut::Stdout;
        if direct {
            cmd.stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        } else {
            let err = output()?;
            let stdin = if launch.serial == SerialOut::Stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            };
            cmd.stdin(stdin)
                .stderr(Stdio::from(err.try_clone().map_err(|source| {
                    SessionError::Output {
                        path: own_output.to_path_buf(),
                        source,
                    }
                })?));
            match launch.serial {
                SerialOut::Stdout => cmd.stdout(Stdio::piped()),
                SerialOut::File(_) | SerialOut::Socket(_) => cmd.stdout(Stdio::from(err)),
            };
        }
        if mode == Mode::Batch {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| SessionError::Spawn {
            program: launch.program.clone(),
            source,
        })?;
        let mut input = match child.stdin.take() {
            Some(stdin) => SerialInput::Stdin(stdin),
            None => SerialInput::None,
        };
        let serial = match (&launch.serial, child.stdout.take()) {
            _ if direct => SerialSource::Direct,
            (SerialOut::File(path), _) => SerialSource::File {
                path: path.clone(),
                file: None,
            },
            (SerialOut::Stdout, Some(pipe)) => SerialSource::Pipe {
                rx: pump(pipe),
                open: true,
            },
            (SerialOut::Stdout, None) => SerialSource::Direct,
            (SerialOut::Socket(socket), _) => match accept(socket, &mut child)? {
                Some(stream) => {
                    let reader = stream.try_clone().map_err(SessionError::Accept)?;
                    input = SerialInput::Socket(stream);
                    SerialSource::Pipe {
                        rx: pump(reader),
                        open: true,
                    }
                }
                // The emulator died before connecting: its own output says why.
                None => SerialSource::Pipe {
                    rx: mpsc::channel().1,
                    open: false,
                },
            },
        };
        Ok(Self {
            child,
            serial,
            input,
            lock_file: launch.lock_file.clone(),
            mode,
            started: Instant::now(),
        })
    }

    /// Streams the console into `sink` and `monitor`, typing what `script` says when it says so,
    /// until the emulator exits, a forbidden pattern matches, the timeout passes, or the end
    /// marker was seen `grace` ago without the emulator exiting. Kills it in the last three cases.
    pub fn watch(
        &mut self,
        sink: &mut dyn Write,
        monitor: &mut Monitor,
        script: &mut Script,
        limits: Limits,
    ) -> Result<Ending, SessionError> {
        let mut marker_seen: Option<Instant> = None;
        let ending = loop {
            let bytes = self.serial.poll(POLL)?;
            self.forward(&bytes, sink, monitor)?;
            for input in script.feed(&bytes) {
                self.send(&input)?;
            }
            if marker_seen.is_none() && monitor.marker().is_some() {
                marker_seen = Some(Instant::now());
            }
            if monitor.forbidden_problem().is_some() {
                self.kill()?;
                self.drain(sink, monitor)?;
                break Ending::Forbidden;
            }
            if let Some(status) = self.child.try_wait().map_err(SessionError::Wait)? {
                self.drain(sink, monitor)?;
                break Ending::Exited(status.code());
            }
            if let Some(t) = marker_seen.filter(|t| t.elapsed() >= limits.grace) {
                self.kill()?;
                self.drain(sink, monitor)?;
                break Ending::StoppedAfterMarker(t.elapsed());
            }
            if let Some(limit) = limits.timeout.filter(|l| self.started.elapsed() >= *l) {
                self.kill()?;
                self.drain(sink, monitor)?;
                break Ending::Timeout(limit);
            }
        };
        monitor.finish();
        self.remove_lock();
        Ok(ending)
    }

    /// Writes `bytes` to the serial console. Without an input channel, or once the emulator has
    /// closed it (it exited), the bytes are dropped: the run's end is judged elsewhere.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let result = match &mut self.input {
            SerialInput::None => return Ok(()),
            SerialInput::Stdin(w) => w.write_all(bytes).and_then(|()| w.flush()),
            SerialInput::Socket(w) => w.write_all(bytes).and_then(|()| w.flush()),
        };
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map_err(SessionError::Input),
        }
    }

    /// A second handle on the serial connection, for a thread that types into it (`run` copies
    /// the terminal to it); `None` unless the console is a socket.
    pub fn input_socket(&self) -> Option<TcpStream> {
        match &self.input {
            SerialInput::Socket(s) => s.try_clone().ok(),
            _ => None,
        }
    }

    /// Waits for an interactive emulator that owns the terminal.
    pub fn wait(&mut self) -> Result<Option<i32>, SessionError> {
        let status = self.child.wait().map_err(SessionError::Wait)?;
        self.remove_lock();
        Ok(status.code())
    }

    fn forward(
        &mut self,
        bytes: &[u8],
        sink: &mut dyn Write,
        monitor: &mut Monitor,
    ) -> Result<(), SessionError> {
        if !bytes.is_empty() {
            sink.write_all(bytes)
                .and_then(|()| sink.flush())
                .map_err(SessionError::Sink)?;
            monitor.feed(bytes);
        }
        Ok(())
    }

    /// Reads what is left after the emulator stopped.
    fn drain(&mut self, sink: &mut dyn Write, monitor: &mut Monitor) -> Result<(), SessionError> {
        let until = Instant::now() + DRAIN;
        loop {
            let bytes = self.serial.poll(POLL)?;
            self.forward(&bytes, sink, monitor)?;
            if (bytes.is_empty() && !self.serial.may_have_more()) || Instant::now() >= until {
                return Ok(());
            }
        }
    }

    /// Kills the emulator (its whole process group in batch mode) and reaps it.
    fn kill(&mut self) -> Result<(), SessionError> {
        if self.mode == Mode::Batch
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours; `-pid` names
            // the process group this session created for the emulator (`process_group(0)`).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        // Already dead is fine; reaping is what matters.
        let _ = self.child.kill();
        self.child.wait().map_err(SessionError::Wait)?;
        Ok(())
    }

    fn remove_lock(&self) {
        if let Some(lock) = &self.lock_file {
            let _ = std::fs::remove_file(lock);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.kill();
            self.remove_lock();
        }
    }
}

/// Waits for the emulator to connect to `socket`; `None` if it exits first.
fn accept(socket: &SerialSocket, child: &mut Child) -> Result<Option<TcpStream>, SessionError> {
    let listener = socket.listener();
    listener
        .set_nonblocking(true)
        .map_err(SessionError::Accept)?;
    let started = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .map_err(SessionError::Accept)?;
                // Keystrokes go out at once, not when a segment fills.
                stream.set_nodelay(true).map_err(SessionError::Accept)?;
                return Ok(Some(stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(SessionError::Accept(e)),
        }
        if child.try_wait().map_err(SessionError::Wait)?.is_some() {
            return Ok(None);
        }
        if started.elapsed() >= CONNECT {
            return Err(SessionError::Accept(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the emulator did not connect to 127.0.0.1:{} within {}s",
                    socket.port(),
                    CONNECT.as_secs()
                ),
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe on a thread, sending chunks as they arrive; the channel closes at end of file.
fn pump(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The last `n` lines of a file (empty if it cannot be read).
pub fn tail_of_file(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
