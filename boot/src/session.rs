//! A running emulator: starting it, streaming its serial console, stopping it.
//!
//! Under QEMU the console is the emulator's stdout, read by a thread into a channel; under Bochs it
//! is a file the emulator appends to, which is tailed. Either way [`Session::watch`] copies the bytes
//! to a sink as they arrive, feeds them to a [`Monitor`], and decides when the run is over.

use crate::expect::{Ending, Monitor};
use crate::machine::{Launch, SerialOut};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the serial console is polled when nothing arrives.
const POLL: Duration = Duration::from_millis(50);
/// How long the console is drained after the emulator exits.
const DRAIN: Duration = Duration::from_secs(2);

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
            cmd.stdin(Stdio::null())
                .stderr(Stdio::from(err.try_clone().map_err(|source| {
                    SessionError::Output {
                        path: own_output.to_path_buf(),
                        source,
                    }
                })?));
            match launch.serial {
                SerialOut::Stdout => cmd.stdout(Stdio::piped()),
                SerialOut::File(_) => cmd.stdout(Stdio::from(err)),
            };
        }
        if mode == Mode::Batch {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| SessionError::Spawn {
            program: launch.program.clone(),
            source,
        })?;
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
        };
        Ok(Self {
            child,
            serial,
            lock_file: launch.lock_file.clone(),
            mode,
            started: Instant::now(),
        })
    }

    /// Streams the console into `sink` and `monitor` until the emulator exits, the timeout passes,
    /// or the end marker was seen `grace` ago without the emulator exiting. Kills it in the last two
    /// cases.
    pub fn watch(
        &mut self,
        sink: &mut dyn Write,
        monitor: &mut Monitor,
        limits: Limits,
    ) -> Result<Ending, SessionError> {
        let mut marker_seen: Option<Instant> = None;
        let ending = loop {
            let bytes = self.serial.poll(POLL)?;
            self.forward(&bytes, sink, monitor)?;
            if marker_seen.is_none() && monitor.marker().is_some() {
                marker_seen = Some(Instant::now());
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
mod tests {
    use super::*;

    fn launch(program: &str, args: &[&str], serial: SerialOut) -> Launch {
        Launch {
            program: program.into(),
            args: args.iter().map(|s| (*s).to_string()).collect(),
            serial,
            lock_file: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conduit-boot-session-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join(name)
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let l = launch("/nonexistent/qemu", &[], SerialOut::Stdout);
        let e = Session::start(&l, &temp("missing.err"), Mode::Batch).expect_err("no such program");
        assert!(
            e.to_string()
                .starts_with("cannot start `/nonexistent/qemu`"),
            "{e}"
        );
    }

    #[test]
    fn piped_output_is_streamed_and_the_exit_status_kept() {
        let script = "echo one; echo 'x: CONDUIT EXIT: success'; exit 33";
        let l = launch("sh", &["-c", script], SerialOut::Stdout);
        let mut s = Session::start(&l, &temp("pipe.err"), Mode::Batch).expect("sh runs");
        let mut log = Vec::new();
        let mut m = Monitor::new(&["one"], &[]).expect("valid");
        let limits = Limits {
            timeout: Some(Duration::from_secs(20)),
            grace: Duration::from_secs(5),
        };
        let ending = s.watch(&mut log, &mut m, limits).expect("watched");
        assert_eq!(ending, Ending::Exited(Some(33)));
        assert_eq!(log, b"one\nx: CONDUIT EXIT: success\n");
        assert!(m.all_matched());
    }

    #[test]
    fn a_hung_emulator_is_killed_at_the_timeout_with_its_children() {
        let l = launch("sh", &["-c", "sleep 30 & sleep 30"], SerialOut::Stdout);
        let mut s = Session::start(&l, &temp("hang.err"), Mode::Batch).expect("sh runs");
        let mut m = Monitor::new(&[], &[]).expect("valid");
        let limits = Limits {
            timeout: Some(Duration::from_millis(300)),
            grace: Duration::from_secs(5),
        };
        let t = Instant::now();
        let ending = s
            .watch(&mut std::io::sink(), &mut m, limits)
            .expect("watched");
        assert_eq!(ending, Ending::Timeout(Duration::from_millis(300)));
        // The background `sleep` held the pipe open: the drain only returns early if it died too.
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "took {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_file_console_is_tailed_and_a_lingering_emulator_stopped_after_the_marker() {
        let com1 = temp("com1.txt");
        let _ = std::fs::remove_file(&com1);
        let script = format!(
            "sleep 0.2; printf 'a\\nCONDUIT EXIT: failure (code 4)\\n' > {}; sleep 30",
            com1.display()
        );
        let l = launch("sh", &["-c", &script], SerialOut::File(com1.clone()));
        let mut s = Session::start(&l, &temp("file.out"), Mode::Batch).expect("sh runs");
        let mut m = Monitor::new(&[], &[]).expect("valid");
        let limits = Limits {
            timeout: Some(Duration::from_secs(20)),
            grace: Duration::from_millis(300),
        };
        let ending = s
            .watch(&mut std::io::sink(), &mut m, limits)
            .expect("watched");
        assert!(
            matches!(ending, Ending::StoppedAfterMarker(_)),
            "{ending:?}"
        );
        assert_eq!(m.marker(), Some(crate::expect::Marker::Failure(Some(4))));
    }

    #[test]
    fn tail_of_file_skips_blank_lines() {
        let p = temp("tail.txt");
        std::fs::write(&p, "a\n\nb\nc\n").expect("write");
        assert_eq!(tail_of_file(&p, 2), ["b", "c"]);
        assert!(tail_of_file(Path::new("/nonexistent/x"), 3).is_empty());
    }
}
