//! The serial line editor: a state machine fed one received byte at a time.
//!
//! It keeps at most `CAP` bytes of printable ASCII (0x20..=0x7E) in a fixed buffer and tells the
//! caller what to echo back ([`Echo`]) and when something happened ([`Event`]).
//!
//! | input | effect | echo |
//! |---|---|---|
//! | 0x20..=0x7E | appended (dropped and counted once the buffer is full) | the byte |
//! | BS 0x08, DEL 0x7F | erases the last stored byte (nothing at the start of the line) | `"\x08 \x08"` |
//! | CR 0x0D or LF 0x0A | ends the line; an LF right after a CR is swallowed (CRLF ends one line) | `"\r\n"` |
//! | Ctrl-C 0x03 | discards the line ([`Event::Cancelled`]) | `"^C\r\n"` |
//! | Ctrl-U 0x15 | clears the line | one erase sequence per stored byte |
//! | ESC 0x1B | starts an escape sequence, swallowed whole (see below) | nothing |
//! | other C0 controls, 0x80..=0xFF | ignored, never stored | nothing |
//!
//! Escape sequences (ECMA-48 §5.4): `ESC [` opens a control sequence whose parameter and
//! intermediate bytes (0x20..=0x3F) are swallowed up to and including the final byte
//! (0x40..=0x7E); `ESC O` (SS3, used by the keypad and function keys) swallows one more byte;
//! `ESC` followed by any other byte in 0x20..=0x7E is a two-byte sequence. A control character
//! or a byte ≥ 0x80 inside a sequence aborts it and is then handled as ordinary input, so Enter and
//! Ctrl-C always work.
//!
//! A line that does not fit is reported as [`Event::Overflow`] when it ends and is not offered for
//! execution: a truncated command could name something else (another guest, another address).

/// Default capacity of a line, in bytes.
pub const LINE_CAPACITY: usize = 128;

/// What erasing one character on the terminal takes: back, overwrite with a space, back.
pub const ERASE_SEQUENCE: &[u8; 3] = b"\x08 \x08";

/// What ending a line echoes.
pub const NEWLINE_SEQUENCE: &[u8; 2] = b"\r\n";

/// What Ctrl-C echoes.
pub const INTERRUPT_SEQUENCE: &[u8; 4] = b"^C\r\n";

const CTRL_C: u8 = 0x03;
const BACKSPACE: u8 = 0x08;
const LF: u8 = 0x0a;
const CR: u8 = 0x0d;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

/// Bytes to write back to the terminal after a fed byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Echo {
    /// Nothing.
    Nothing,
    /// The byte itself (it was stored).
    Byte(u8),
    /// This many [`ERASE_SEQUENCE`]s (backspace, Ctrl-U).
    Erase(usize),
    /// [`NEWLINE_SEQUENCE`] (the line ended).
    NewLine,
    /// [`INTERRUPT_SEQUENCE`] (Ctrl-C).
    Interrupt,
}

impl Echo {
    /// The bytes to write, in order.
    pub fn bytes(self) -> EchoBytes {
        EchoBytes { echo: self, pos: 0 }
    }

    /// How many bytes [`Echo::bytes`] yields.
    pub fn byte_len(self) -> usize {
        match self {
            Self::Nothing => 0,
            Self::Byte(_) => 1,
            Self::Erase(n) => n.saturating_mul(ERASE_SEQUENCE.len()),
            Self::NewLine => NEWLINE_SEQUENCE.len(),
            Self::Interrupt => INTERRUPT_SEQUENCE.len(),
        }
    }
}

/// Iterator over the bytes of an [`Echo`].
#[derive(Clone, Debug)]
pub struct EchoBytes {
    echo: Echo,
    pos: usize,
}

impl Iterator for EchoBytes {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pos >= self.echo.byte_len() {
            return None;
        }
        let byte = match self.echo {
            Echo::Nothing => None,
            Echo::Byte(b) => Some(b),
            Echo::Erase(_) => ERASE_SEQUENCE.get(self.pos % ERASE_SEQUENCE.len()).copied(),
            Echo::NewLine => NEWLINE_SEQUENCE.get(self.pos).copied(),
            Echo::Interrupt => INTERRUPT_SEQUENCE.get(self.pos).copied(),
        };
        self.pos += 1;
        byte
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.echo.byte_len().saturating_sub(self.pos);
        (left, Some(left))
    }
}

impl ExactSizeIterator for EchoBytes {}

/// Something the shell must act on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// A complete line (possibly empty), printable ASCII only, at most `CAP` bytes.
    Line(&'a str),
    /// A line ended after bytes had to be dropped; it is not offered for execution.
    Overflow {
        /// Bytes that were stored when the line ended.
        kept: usize,
        /// Printable bytes dropped because the buffer was full.
        dropped: usize,
    },
    /// Ctrl-C discarded the line.
    Cancelled,
}

/// The outcome of one fed byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Feed<'a> {
    /// What to write back to the terminal.
    pub echo: Echo,
    /// What happened, if anything.
    pub event: Option<Event<'a>>,
}

impl Feed<'_> {
    const QUIET: Self = Self {
        echo: Echo::Nothing,
        event: None,
    };

    fn echo(echo: Echo) -> Self {
        Self { echo, event: None }
    }
}

/// Where the editor is inside an escape sequence.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Escape {
    /// Not in a sequence.
    Idle,
    /// After ESC.
    Start,
    /// After `ESC [`: parameters and intermediates until a final byte.
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The line editor. `CAP` is the line capacity in bytes; no allocation.
#[derive(Clone, Debug)]
pub struct LineEditor<const CAP: usize = LINE_CAPACITY> {
    buf: [u8; CAP],
    len: usize,
    dropped: usize,
    escape: Escape,
    after_cr: bool,
    /// The last byte ended a line whose text was handed out: clear before the next byte.
    finished: bool,
}

impl<const CAP: usize> Default for LineEditor<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize> LineEditor<CAP> {
    /// The capacity of a line, in bytes.
    pub const CAPACITY: usize = CAP;

    /// An empty editor.
    pub const fn new() -> Self {
        Self {
            buf: [0; CAP],
            len: 0,
            dropped: 0,
            escape: Escape::Idle,
            after_cr: false,
            finished: false,
        }
    }

    /// The line being edited (empty right after a line ended).
    pub fn current(&self) -> &str {
        if self.finished {
            return "";
        }
        self.stored()
    }

    /// Bytes of the line being edited.
    pub fn len(&self) -> usize {
        if self.finished { 0 } else { self.len }
    }

    /// Whether the line being edited is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Printable bytes dropped from the line being edited so far.
    pub fn dropped(&self) -> usize {
        if self.finished { 0 } else { self.dropped }
    }

    /// Forgets the line and any partial escape sequence.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn stored(&self) -> &str {
        // Only 0x20..=0x7E is ever stored, so the bytes are always UTF-8.
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn clear(&mut self) {
        self.len = 0;
        self.dropped = 0;
    }

    /// Feeds one received byte.
    pub fn feed(&mut self, byte: u8) -> Feed<'_> {
        if core::mem::take(&mut self.finished) {
            self.clear();
        }
        if core::mem::take(&mut self.after_cr) && byte == LF {
            return Feed::QUIET;
        }
        if self.swallow_escape(byte) {
            return Feed::QUIET;
        }
        match byte {
            CR | LF => {
                self.after_cr = byte == CR;
                let event = if self.dropped > 0 {
                    let event = Event::Overflow {
                        kept: self.len,
                        dropped: self.dropped,
                    };
                    self.clear();
                    event
                } else {
                    self.finished = true;
                    Event::Line(self.stored())
                };
                Feed {
                    echo: Echo::NewLine,
                    event: Some(event),
                }
            }
            BACKSPACE | DEL => {
                if self.len == 0 {
                    return Feed::QUIET;
                }
                self.len -= 1;
                Feed::echo(Echo::Erase(1))
            }
            CTRL_C => {
                self.clear();
                Feed {
                    echo: Echo::Interrupt,
                    event: Some(Event::Cancelled),
                }
            }
            CTRL_U => {
                let erased = self.len;
                self.clear();
                Feed::echo(Echo::Erase(erased))
            }
            ESC => {
                self.escape = Escape::Start;
                Feed::QUIET
            }
            0x20..=0x7e => match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                    Feed::echo(Echo::Byte(byte))
                }
                None => {
                    self.dropped = self.dropped.saturating_add(1);
                    Feed::QUIET
                }
            },
            _ => Feed::QUIET,
        }
    }

    /// Advances the escape-sequence state; `true` when `byte` belongs to a sequence.
    fn swallow_escape(&mut self, byte: u8) -> bool {
        let (swallowed, next) = match (self.escape, byte) {
            (Escape::Idle, _) => return false,
            (Escape::Start, b'[') => (true, Escape::Csi),
            (Escape::Start, b'O') => (true, Escape::Ss3),
            (Escape::Start | Escape::Ss3, 0x20..=0x7e) => (true, Escape::Idle),
            // Parameter (0x30..=0x3F) and intermediate (0x20..=0x2F) bytes.
            (Escape::Csi, 0x20..=0x3f) => (true, Escape::Csi),
            // Final byte.
            (Escape::Csi, 0x40..=0x7e) => (true, Escape::Idle),
            // A control character or a byte >= 0x80 aborts the sequence.
            _ => (false, Escape::Idle),
        };
        self.escape = next;
        swallowed
    }
}
