//! Fuzz target: the debug shell's line editor and command parser (`conduit_shell`), fed the
//! bytes a console user (or anything on the serial line) sends.
//!
//! Invariants:
//! - what the terminal shows is what the editor holds: applying every echo to a model screen
//!   (bytes, erasures, new lines, interrupts) gives `current()` after each byte, an erasure
//!   never erases more than is shown, and a finished line is exactly the screen's text;
//! - lines handed out are printable ASCII of at most `LINE_CAPACITY` bytes;
//! - a parsed command names guests of the directory by their names, `ept` addresses lie below
//!   the guest's memory size, a blank line is no command and an unknown command is reported
//!   with its first word;
//! - numbers parse exactly as a reference does (`0x` hex or decimal, `_` separators).
#![no_main]

use conduit_shell::{
    Command, Echo, Event, GuestEntry, LINE_CAPACITY, LineEditor, ParseError, parse, parse_u64,
};
use libfuzzer_sys::fuzz_target;

const GUESTS: [GuestEntry<'static>; 3] = [
    GuestEntry {
        name: "linux",
        memory_size: 1 << 30,
    },
    GuestEntry {
        name: "hello64",
        memory_size: 4 << 20,
    },
    GuestEntry {
        name: "empty",
        memory_size: 0,
    },
];

fn reference_number(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(rest) => (rest, 16),
        None => (text, 10),
    };
    if !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

fn check_parse(line: &str) {
    let guest_ok = |name: &str, id: usize| {
        assert_eq!(GUESTS[id].name, name, "the guest resolved is the one named");
    };
    match parse(line, &GUESTS[..]) {
        Ok(None) => assert!(line.split_ascii_whitespace().next().is_none(), "blank line"),
        Ok(Some(cmd)) => match cmd {
            Command::Ept { guest, gpa } => {
                guest_ok(guest.name, guest.id);
                assert!(
                    gpa < GUESTS[guest.id].memory_size,
                    "ept {gpa:#x} beyond memory"
                );
            }
            Command::Vcpu(g) | Command::Stop(g) | Command::Restart(g) | Command::Console(g) => {
                guest_ok(g.name, g.id);
            }
            _ => {}
        },
        Err(ParseError::UnknownCommand { name, .. }) => {
            assert_eq!(Some(name), line.split_ascii_whitespace().next());
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut editor: LineEditor = LineEditor::new();
    let mut screen: Vec<u8> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for &byte in data {
        let feed = editor.feed(byte);
        match feed.echo {
            Echo::Nothing => {}
            Echo::Byte(b) => screen.push(b),
            Echo::Erase(n) => {
                assert!(n <= screen.len(), "erased {n} of {} shown", screen.len());
                screen.truncate(screen.len() - n);
            }
            Echo::NewLine | Echo::Interrupt => {}
        }
        assert_eq!(feed.echo.bytes().len(), feed.echo.byte_len());
        match feed.event {
            Some(Event::Line(line)) => {
                assert_eq!(line.as_bytes(), &screen[..], "the line is what was shown");
                assert!(line.len() <= LINE_CAPACITY);
                assert!(
                    line.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                    "printable only"
                );
                assert_eq!(feed.echo, Echo::NewLine);
                lines.push(line.to_owned());
                screen.clear();
            }
            Some(Event::Overflow { kept, dropped }) => {
                assert_eq!(kept, screen.len(), "kept is what was shown");
                assert!(dropped > 0 && kept <= LINE_CAPACITY);
                screen.clear();
            }
            Some(Event::Cancelled) => {
                assert_eq!(feed.echo, Echo::Interrupt);
                screen.clear();
            }
            None => assert!(!matches!(feed.echo, Echo::NewLine | Echo::Interrupt)),
        }
        assert_eq!(
            editor.current().as_bytes(),
            &screen[..],
            "editor and screen agree"
        );
        assert!(editor.len() <= LINE_CAPACITY);
    }
    for line in &lines {
        check_parse(line);
    }
    if let Ok(text) = core::str::from_utf8(data) {
        check_parse(text);
        assert_eq!(
            parse_u64(text).ok(),
            reference_number(text),
            "number {text:?}"
        );
        for word in text.split_ascii_whitespace() {
            assert_eq!(
                parse_u64(word).ok(),
                reference_number(word),
                "number {word:?}"
            );
        }
    }
});
