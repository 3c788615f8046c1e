//! Driving the serial line: a scenario's input as expect/send steps.
//!
//! A [`Step`] waits for a log line matching its pattern, then sends its [`Input`] to COM1. Steps
//! run in order; a step only looks at lines that end after the previous step's input was sent,
//! so a line seen earlier (or the line that triggered the previous step) never triggers it. A step
//! with an empty pattern sends as soon as the previous one has. Lines are cleaned as the
//! [`crate::expect::Monitor`] cleans them (`\r` and ANSI escape sequences removed).

use crate::expect::{ESCAPE, PatternError};
use regex::Regex;

/// What a step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A command line: the text, then a carriage return (Enter).
    Line(&'static str),
    /// Bytes exactly as given (garbage, control characters, bytes above 0x7f).
    Raw(&'static [u8]),
    /// `len` copies of `fill`, then a carriage return: an over-long line.
    LongLine { fill: u8, len: usize },
}

impl Input {
    /// The bytes to write to the serial line.
    pub fn bytes(&self) -> Vec<u8> {
        match *self {
            Self::Line(text) => {
                let mut b = text.as_bytes().to_vec();
                b.push(b'\r');
                b
            }
            Self::Raw(bytes) => bytes.to_vec(),
            Self::LongLine { fill, len } => {
                let mut b = vec![fill; len];
                b.push(b'\r');
                b
            }
        }
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Line(text) => format!("`{text}`"),
            Self::Raw(bytes) => format!("{} raw byte(s)", bytes.len()),
            Self::LongLine { fill, len } => {
                format!("a {len}-byte line of {:?}", char::from(*fill))
            }
        }
    }
}

/// One expect/send pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// A regular expression a log line must match; empty: no wait.
    pub wait: &'static str,
    pub send: Input,
}

impl Step {
    /// After a line matching `wait`, send `line` and Enter.
    pub const fn line(wait: &'static str, line: &'static str) -> Self {
        Self {
            wait,
            send: Input::Line(line),
        }
    }
}

/// The steps of one run, and how far they got.
#[derive(Debug)]
pub struct Script {
    steps: Vec<(Option<Regex>, Input)>,
    next: usize,
    escape: Regex,
    partial: Vec<u8>,
}

impl Script {
    /// A script of these steps; every pattern must compile.
    pub fn new(steps: &[Step]) -> Result<Self, PatternError> {
        let compile = |p: &str| {
            Regex::new(p).map_err(|source| PatternError {
                pattern: p.to_string(),
                source,
            })
        };
        let steps = steps
            .iter()
            .map(|s| {
                let wait = (!s.wait.is_empty()).then(|| compile(s.wait)).transpose()?;
                Ok((wait, s.send))
            })
            .collect::<Result<Vec<_>, PatternError>>()?;
        Ok(Self {
            steps,
            next: 0,
            escape: compile(ESCAPE)?,
            partial: Vec::new(),
        })
    }

    /// No input at all.
    pub fn empty() -> Self {
        Self::new(&[]).expect("the escape-sequence pattern is valid")
    }

    /// Whether every step has sent its input.
    pub fn done(&self) -> bool {
        self.next == self.steps.len()
    }

    /// How many steps have sent their input.
    pub fn sent(&self) -> usize {
        self.next
    }

    /// Feeds console output as it arrives; returns what to send now, in order (one entry per
    /// step that fired).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = self.fire_immediate();
        for &b in bytes {
            if b != b'\n' {
                self.partial.push(b);
                continue;
            }
            let raw = std::mem::take(&mut self.partial);
            let lossy = String::from_utf8_lossy(&raw);
            let text = self.escape.replace_all(&lossy, "").replace('\r', "");
            if let Some((Some(wait), input)) = self.steps.get(self.next)
                && wait.is_match(&text)
            {
                out.push(input.bytes());
                self.next += 1;
                out.extend(self.fire_immediate());
            }
        }
        out
    }

    /// Sends the steps that do not wait, from the current one on.
    fn fire_immediate(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((None, input)) = self.steps.get(self.next) {
            out.push(input.bytes());
            self.next += 1;
        }
        out
    }

    /// Why the script did not finish, if it did not.
    pub fn problem(&self) -> Option<String> {
        let (wait, input) = self.steps.get(self.next)?;
        Some(format!(
            "input step {}/{} (send {}) never saw a line matching `{}`",
            self.next + 1,
            self.steps.len(),
            input.describe(),
            wait.as_ref().map_or("", Regex::as_str)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Step] = &[
        Step::line("shell: ready", "help"),
        Step::line(r"quit +end the run", "vms"),
        Step {
            wait: "",
            send: Input::Raw(b"\x00\xff\x1b[A"),
        },
        Step {
            wait: r"^error: ",
            send: Input::LongLine { fill: b'x', len: 5 },
        },
    ];

    fn script() -> Script {
        Script::new(STEPS).expect("valid patterns")
    }

    #[test]
    fn inputs_are_encoded() {
        assert_eq!(Input::Line("vms").bytes(), b"vms\r");
        assert_eq!(Input::Raw(b"\x03\xff").bytes(), b"\x03\xff");
        assert_eq!(
            Input::LongLine { fill: b'y', len: 3 }.bytes(),
            b"yyy\r".to_vec()
        );
        assert_eq!(
            Input::LongLine {
                fill: b'x',
                len: 300
            }
            .describe(),
            "a 300-byte line of 'x'"
        );
    }

    #[test]
    fn steps_fire_in_order_on_complete_lines_across_chunks() {
        let mut s = script();
        // A partial line does not fire; its completion does.
        assert!(s.feed(b"[1] INFO shell: rea").is_empty());
        assert_eq!(s.feed(b"dy on COM1\r\n"), vec![b"help\r".to_vec()]);
        // The `help` output's last line fires `vms` and, right after it, the raw step.
        let out = s.feed(b"conduit> help\r\n  quit   end the run (also `exit`)\r\n");
        assert_eq!(out, vec![b"vms\r".to_vec(), b"\x00\xff\x1b[A".to_vec()]);
        assert_eq!(s.sent(), 3);
        assert!(!s.done());
        assert_eq!(
            s.feed(b"error: unknown command\n"),
            vec![b"xxxxx\r".to_vec()]
        );
        assert!(s.done() && s.problem().is_none());
        // Nothing more to send, whatever comes.
        assert!(s.feed(b"error: again\n").is_empty());
    }

    #[test]
    fn lines_before_a_step_is_armed_do_not_fire_it() {
        let mut s = script();
        // "error:" arrives before step 4 is armed: it must not count later.
        let out = s.feed(b"error: early\nshell: ready\n");
        assert_eq!(out, vec![b"help\r".to_vec()]);
        assert!(s.feed(b"error: still early\n").is_empty());
        assert_eq!(s.sent(), 1);
    }

    #[test]
    fn escapes_and_carriage_returns_are_removed_before_matching() {
        let mut s = Script::new(&[Step::line(r"^\[1\] log line$", "x")]).expect("valid");
        assert_eq!(
            s.feed(b"\r\x1b[K[1] log\x1b[0m line\r\n"),
            vec![b"x\r".to_vec()]
        );
    }

    #[test]
    fn leading_immediate_steps_fire_on_the_first_feed() {
        let mut s = Script::new(&[Step {
            wait: "",
            send: Input::Line("now"),
        }])
        .expect("valid");
        assert_eq!(s.feed(b""), vec![b"now\r".to_vec()]);
        assert!(s.done());
    }

    #[test]
    fn an_unfinished_script_names_the_step_and_its_pattern() {
        let mut s = script();
        s.feed(b"shell: ready\n");
        assert_eq!(
            s.problem().as_deref(),
            Some("input step 2/4 (send `vms`) never saw a line matching `quit +end the run`")
        );
        assert!(Script::empty().done());
        assert!(Script::new(&[Step::line("(", "x")]).is_err());
    }
}
