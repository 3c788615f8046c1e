//! Reading a serial log: ordered expectations, forbidden patterns, the kernel's end marker, and the
//! verdict of a run.
//!
//! The log arrives in chunks; [`Monitor`] splits it into lines (dropping `\r` and ANSI escape
//! sequences, which the firmware sprinkles in) and checks each line as it completes:
//! - expectations must match in order; a line may satisfy several consecutive expectations, and the
//!   next expectation is only looked for at or after the line that satisfied the previous one;
//! - further labelled sequences (one per guest, say) are each ordered the same way but independent
//!   of each other and of the main one, since guests run interleaved;
//! - a forbidden pattern matching any line fails the run;
//! - the first `CONDUIT EXIT: success` or `CONDUIT EXIT: failure (code N)` is the end marker.

use regex::Regex;
use std::collections::VecDeque;
use std::time::Duration;

/// How many log lines a failure report shows.
pub const TAIL_LINES: usize = 30;

/// The exit status QEMU reports when the kernel writes `code` to `isa-debug-exit`.
pub const fn qemu_status(code: u8) -> i32 {
    ((code as i32) << 1) | 1
}
/// The value the kernel writes to `isa-debug-exit` on success (QEMU exits with 33).
pub const QEMU_SUCCESS_CODE: u8 = 0x10;
/// The value the kernel writes to `isa-debug-exit` on failure (QEMU exits with 35).
pub const QEMU_FAILURE_CODE: u8 = 0x11;

/// How a run is expected to end (or how it did, by the marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Success,
    Failure,
}

/// The kernel's end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `CONDUIT EXIT: success`
    Success,
    /// `CONDUIT EXIT: failure (code N)`; the code if the line carried one.
    Failure(Option<u32>),
}

impl Marker {
    /// Success or failure, without the code.
    pub fn end(self) -> End {
        match self {
            Self::Success => End::Success,
            Self::Failure(_) => End::Failure,
        }
    }
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Success => f.write_str("success"),
            Self::Failure(Some(c)) => write!(f, "failure (code {c})"),
            Self::Failure(None) => f.write_str("failure"),
        }
    }
}

/// A pattern that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("bad pattern `{pattern}`: {source}")]
pub struct PatternError {
    pub pattern: String,
    pub source: regex::Error,
}

fn compile_one(pattern: &str) -> Result<Regex, PatternError> {
    Regex::new(pattern).map_err(|source| PatternError {
        pattern: pattern.to_string(),
        source,
    })
}

fn compile(patterns: &[&str]) -> Result<Vec<Regex>, PatternError> {
    patterns.iter().map(|p| compile_one(p)).collect()
}

/// The kernel's end marker line.
/// The code may be decimal or `0x` hexadecimal.
const MARKER: &str = r"CONDUIT EXIT: (success|failure(?: \(code (0x[0-9a-fA-F]+|[0-9]+)\))?)";
/// ANSI escape sequences: CSI (ESC [ parameters final) and two-byte escapes.
pub(crate) const ESCAPE: &str = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]";

/// A marker's failure code: decimal, or hexadecimal with `0x`.
fn parse_code(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A matched line: its 1-based number in the log and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub text: String,
}

/// Patterns to match in order, and how far they got.
#[derive(Debug)]
struct Sequence {
    /// `None` for the main sequence.
    label: Option<String>,
    patterns: Vec<Regex>,
    next: usize,
    last_match: Option<Line>,
}

impl Sequence {
    fn new(label: Option<&str>, patterns: &[&str]) -> Result<Self, PatternError> {
        Ok(Self {
            label: label.map(str::to_string),
            patterns: compile(patterns)?,
            next: 0,
            last_match: None,
        })
    }

    /// Advances over every pattern `text` satisfies.
    fn check(&mut self, text: &str, line: impl Fn() -> Line) {
        while self
            .patterns
            .get(self.next)
            .is_some_and(|re| re.is_match(text))
        {
            self.next += 1;
            self.last_match = Some(line());
        }
    }

    fn complete(&self) -> bool {
        self.next == self.patterns.len()
    }

    fn problem(&self) -> Option<String> {
        let re = self.patterns.get(self.next)?;
        let n = self.patterns.len();
        let label = self
            .label
            .as_ref()
            .map_or_else(String::new, |l| format!("`{l}` "));
        Some(match &self.last_match {
            Some(l) => format!(
                "{label}expectation {}/{n} `{}` not found after line {} `{}`",
                self.next + 1,
                re.as_str(),
                l.number,
                l.text
            ),
            None => format!(
                "{label}expectation 1/{n} `{}` not found (no expectation matched)",
                re.as_str()
            ),
        })
    }
}

/// Watches a serial log as it arrives.
#[derive(Debug)]
pub struct Monitor {
    /// The main sequence first, then the labelled ones.
    sequences: Vec<Sequence>,
    forbid: Vec<Regex>,
    marker_re: Regex,
    escape_re: Regex,
    forbidden: Option<(String, Line)>,
    marker: Option<Marker>,
    lines: usize,
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl Monitor {
    /// A monitor for these expectations (in order) and forbidden patterns.
    pub fn new(expect: &[&str], forbid: &[&str]) -> Result<Self, PatternError> {
        Self::with_sequences(expect, &[], forbid)
    }

    /// A monitor with further labelled sequences, each ordered in itself but independent of the
    /// others and of `expect` (the output of guests that run interleaved).
    pub fn with_sequences(
        expect: &[&str],
        sequences: &[(&str, &[&str])],
        forbid: &[&str],
    ) -> Result<Self, PatternError> {
        let mut all = vec![Sequence::new(None, expect)?];
        for (label, patterns) in sequences {
            all.push(Sequence::new(Some(label), patterns)?);
        }
        Ok(Self {
            sequences: all,
            forbid: compile(forbid)?,
            marker_re: compile_one(MARKER)?,
            escape_re: compile_one(ESCAPE)?,
            forbidden: None,
            marker: None,
            lines: 0,
            partial: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        })
    }

    /// Feeds bytes as they arrive; complete lines are checked at once.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let raw = std::mem::take(&mut self.partial);
                self.line(&raw);
            } else {
                self.partial.push(b);
            }
        }
    }

    /// Checks the last line if it has no newline (call when the log ends).
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let raw = std::mem::take(&mut self.partial);
            self.line(&raw);
        }
    }

    fn line(&mut self, raw: &[u8]) {
        let lossy = String::from_utf8_lossy(raw);
        let text = self.escape_re.replace_all(lossy.trim_end_matches('\r'), "");
        let text = text.replace('\r', "");
        self.lines += 1;
        let here = || Line {
            number: self.lines,
            text: text.clone(),
        };
        if self.forbidden.is_none()
            && let Some(re) = self.forbid.iter().find(|re| re.is_match(&text))
        {
            self.forbidden = Some((re.as_str().to_string(), here()));
        }
        for sequence in &mut self.sequences {
            sequence.check(&text, here);
        }
        if self.marker.is_none()
            && let Some(c) = self.marker_re.captures(&text)
        {
            self.marker = Some(if c.get(1).is_some_and(|m| m.as_str() == "success") {
                Marker::Success
            } else {
                Marker::Failure(c.get(2).and_then(|m| parse_code(m.as_str())))
            });
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text);
    }

    /// The end marker, once seen.
    pub fn marker(&self) -> Option<Marker> {
        self.marker
    }

    /// Whether every expectation has matched.
    pub fn all_matched(&self) -> bool {
        self.sequences.iter().all(Sequence::complete)
    }

    /// How many complete lines have been checked.
    pub fn line_count(&self) -> usize {
        self.lines
    }

    /// The last [`TAIL_LINES`] lines, escape sequences removed.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }

    /// Why the expectations are not all met, if they are not (every unfinished sequence).
    pub fn expectation_problem(&self) -> Option<String> {
        let problems: Vec<String> = self
            .sequences
            .iter()
            .filter_map(Sequence::problem)
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// The forbidden pattern that matched, and where.
    pub fn forbidden_problem(&self) -> Option<String> {
        self.forbidden
            .as_ref()
            .map(|(re, l)| format!("forbidden `{re}` matched line {} `{}`", l.number, l.text))
    }
}

/// How the emulator stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself, with this status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// The timeout passed; it was killed.
    Timeout(Duration),
    /// The end marker was seen but it did not exit within the grace period; it was killed.
    StoppedAfterMarker(Duration),
    /// A forbidden pattern matched: the run has failed whatever follows; it was killed at once
    /// (a guest that went wrong early would otherwise hold the run until its timeout).
    Forbidden,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(Some(s)) => write!(f, "exited with status {s}"),
            Self::Exited(None) => f.write_str("was killed by a signal"),
            Self::Timeout(t) => write!(f, "timed out after {}s and was stopped", t.as_secs()),
            Self::StoppedAfterMarker(t) => {
                write!(f, "was stopped {}s after the end marker", t.as_secs())
            }
            Self::Forbidden => f.write_str("was stopped at a forbidden line"),
        }
    }
}

/// Whether the emulator's exit status carries the verdict (QEMU's `isa-debug-exit`) or not (Bochs
/// always exits with 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCheck {
    /// QEMU: the status must be 33 for success, 35 for failure.
    QemuDebugExit,
    /// Judge by the marker alone.
    MarkerOnly,
}

/// Judges a finished run: `Ok` if it passed, else every reason it did not.
pub fn verdict(
    monitor: &Monitor,
    expected: End,
    ending: Ending,
    check: StatusCheck,
) -> Result<(), String> {
    let mut why: Vec<String> = Vec::new();
    let marker = monitor.marker();
    match (ending, marker) {
        (Ending::Timeout(t), None) => {
            why.push(format!(
                "timeout after {}s without an end marker",
                t.as_secs()
            ));
        }
        (Ending::Exited(status), None) if monitor.line_count() == 0 => {
            // It never got going: the emulator's own message says why, expectations would not.
            return Err(format!(
                "emulator {} before any serial output",
                Ending::Exited(status)
            ));
        }
        (Ending::Exited(status), None) => {
            why.push(format!(
                "emulator {} without an end marker",
                Ending::Exited(status)
            ));
        }
        (_, Some(m)) if m.end() != expected => {
            why.push(format!("ended with `{m}`, expected {}", describe(expected)));
        }
        _ => {}
    }
    if let (StatusCheck::QemuDebugExit, Some(m)) = (check, marker) {
        let want = match m.end() {
            End::Success => qemu_status(QEMU_SUCCESS_CODE),
            End::Failure => qemu_status(QEMU_FAILURE_CODE),
        };
        match ending {
            Ending::Exited(Some(s)) if s == want => {}
            Ending::Exited(s) => why.push(format!(
                "QEMU exited with {} after `{m}`, expected status {want} from isa-debug-exit",
                s.map_or("a signal".to_string(), |s| format!("status {s}"))
            )),
            // The forbidden line is the reason (below).
            Ending::Forbidden => {}
            Ending::Timeout(t) | Ending::StoppedAfterMarker(t) => why.push(format!(
                "QEMU did not exit through isa-debug-exit within {}s of `{m}`; it was stopped",
                t.as_secs()
            )),
        }
    }
    why.extend(monitor.forbidden_problem());
    why.extend(monitor.expectation_problem());
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

fn describe(end: End) -> &'static str {
    match end {
        End::Success => "success",
        End::Failure => "failure",
    }
}

#[cfg(test)]
#[path = "expect_tests.rs"]
mod tests;
