//! 100k pseudo-random bytes through the editor and the parser: no panics, and the invariants hold
//! after every byte.

use conduit_shell::{Echo, Event, GuestEntry, LINE_CAPACITY, LineEditor, parse};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly keyboard-like bytes, with enough controls, escapes and high bytes to matter.
    fn byte(&mut self) -> u8 {
        let r = self.next();
        match r % 100 {
            0..=59 => b' ' + ((r >> 8) % 95) as u8,
            60..=64 => 0x7f,
            65..=67 => 0x08,
            68..=70 => b'\r',
            71..=72 => b'\n',
            73 => 0x03,
            74 => 0x15,
            75..=79 => 0x1b,
            80..=84 => b'[',
            85..=89 => (r >> 8) as u8 | 0x80,
            _ => (r >> 8) as u8 % 0x20,
        }
    }
}

/// What a dumb terminal shows on the current line: printable bytes overwrite at the cursor, BS
/// moves left, CR LF starts a new line.
#[derive(Default)]
struct Terminal {
    line: Vec<u8>,
    cursor: usize,
}

impl Terminal {
    fn apply(&mut self, echo: Echo) {
        for b in echo.bytes() {
            match b {
                0x08 => self.cursor = self.cursor.checked_sub(1).expect("BS past column 0"),
                b'\r' => self.cursor = 0,
                b'\n' => self.line.clear(),
                0x20..=0x7e => {
                    if self.cursor < self.line.len() {
                        self.line[self.cursor] = b;
                    } else {
                        self.line.push(b);
                    }
                    self.cursor += 1;
                }
                other => panic!("echoed non-printable {other:#x}"),
            }
        }
    }

    fn visible(&self) -> &[u8] {
        &self.line[..self.cursor]
    }
}

fn check_stream<const CAP: usize>(seed: u64, count: usize) -> (usize, usize, usize) {
    let guests = [
        GuestEntry {
            name: "linux",
            memory_size: 1 << 30,
        },
        GuestEntry {
            name: "rtos-1",
            memory_size: 0x10_0000,
        },
    ];
    let mut rng = Rng(seed);
    let mut ed = LineEditor::<CAP>::new();
    let mut term = Terminal::default();
    let (mut lines, mut overflows, mut cancels) = (0, 0, 0);
    for _ in 0..count {
        let byte = rng.byte();
        let before = ed.len();
        let feed = ed.feed(byte);
        if let Echo::Erase(n) = feed.echo {
            assert!(n <= before, "erased {n} of {before}");
        }
        term.apply(feed.echo);
        match feed.event {
            Some(Event::Line(line)) => {
                assert!(line.len() <= CAP);
                assert!(line.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{line:?}");
                // The parser never panics on what the editor produces.
                let _ = parse(line, &guests[..]).map(|c| format!("{c:?}"));
                lines += 1;
            }
            Some(Event::Overflow { kept, dropped }) => {
                assert!(kept <= CAP && dropped > 0);
                overflows += 1;
            }
            Some(Event::Cancelled) => cancels += 1,
            None => {}
        }
        assert!(ed.len() <= CAP);
        assert!(ed.current().bytes().all(|b| (0x20..=0x7e).contains(&b)));
        // What the terminal shows is exactly what is stored.
        assert_eq!(
            term.visible(),
            ed.current().as_bytes(),
            "after byte {byte:#x}"
        );
    }
    (lines, overflows, cancels)
}

#[test]
fn hundred_thousand_random_bytes() {
    let (lines, _, cancels) = check_stream::<LINE_CAPACITY>(0x5eed_c0de, 100_000);
    // The stream really exercised lines and cancellations.
    assert!(
        lines > 1000 && cancels > 100,
        "{lines} lines, {cancels} cancels"
    );
    // Lines of 128 bytes are rare with this mix; a small editor overflows often.
    let (_, overflows, _) = check_stream::<8>(0xdead_beef, 100_000);
    assert!(overflows > 100, "{overflows} overflows");
}

#[test]
fn random_words_through_the_parser() {
    let guests = [GuestEntry {
        name: "linux",
        memory_size: 1 << 30,
    }];
    let words = [
        "ept",
        "linux",
        "0x",
        "0x1_0",
        "99999999999999999999",
        "log",
        "vcpu",
        "-",
        "_",
        "é",
    ];
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let n = (rng.next() % 5) as usize;
        let line: Vec<&str> = (0..n)
            .map(|_| words[(rng.next() % words.len() as u64) as usize])
            .collect();
        let line = line.join(" ");
        if let Err(e) = parse(&line, &guests[..]) {
            assert!(!e.to_string().is_empty());
        }
    }
}
