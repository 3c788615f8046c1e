//! Line editor behaviour, byte by byte.

use conduit_shell::{Echo, Event, LINE_CAPACITY, LineEditor};

/// An event with the line copied out, so a whole input can be fed before looking.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Line(String),
    Overflow { kept: usize, dropped: usize },
    Cancelled,
}

/// Feeds `input`, returns everything echoed and every event.
fn run<const CAP: usize>(ed: &mut LineEditor<CAP>, input: &[u8]) -> (Vec<u8>, Vec<Ev>) {
    let mut echo = Vec::new();
    let mut events = Vec::new();
    for &b in input {
        let feed = ed.feed(b);
        echo.extend(feed.echo.bytes());
        match feed.event {
            Some(Event::Line(l)) => events.push(Ev::Line(l.to_owned())),
            Some(Event::Overflow { kept, dropped }) => events.push(Ev::Overflow { kept, dropped }),
            Some(Event::Cancelled) => events.push(Ev::Cancelled),
            None => {}
        }
    }
    (echo, events)
}

fn line(s: &str) -> Ev {
    Ev::Line(s.to_owned())
}

fn editor() -> LineEditor {
    LineEditor::new()
}

#[test]
fn printable_bytes_are_stored_and_echoed() {
    let mut ed = editor();
    let (echo, events) = run(&mut ed, b"vms ~!");
    assert_eq!(echo, b"vms ~!");
    assert!(events.is_empty());
    assert_eq!(ed.current(), "vms ~!");
    assert_eq!(ed.len(), 6);
}

#[test]
fn cr_and_lf_each_end_a_line() {
    let mut ed = editor();
    let (echo, events) = run(&mut ed, b"a\rb\n");
    assert_eq!(echo, b"a\r\nb\r\n");
    assert_eq!(events, [line("a"), line("b")]);
}

#[test]
fn crlf_ends_one_line_but_lfcr_and_crcr_end_two() {
    let mut ed = editor();
    assert_eq!(run(&mut ed, b"pci\r\n").1, [line("pci")]);
    assert_eq!(run(&mut ed, b"irq\n\r").1, [line("irq"), line("")]);
    assert_eq!(run(&mut ed, b"x\r\r").1, [line("x"), line("")]);
    // The LF swallowed after a CR echoes nothing.
    let (echo, _) = run(&mut ed, b"\r\n");
    assert_eq!(echo, b"\r\n");
}

#[test]
fn lf_long_after_cr_still_ends_a_line() {
    let mut ed = editor();
    assert_eq!(run(&mut ed, b"\rab\n").1, [line(""), line("ab")]);
}

#[test]
fn empty_line_is_reported() {
    let mut ed = editor();
    assert_eq!(run(&mut ed, b"\r").1, [line("")]);
}

#[test]
fn line_is_cleared_after_it_ends() {
    let mut ed = editor();
    run(&mut ed, b"abc\r");
    assert_eq!(ed.current(), "");
    assert!(ed.is_empty());
    assert_eq!(run(&mut ed, b"d\r").1, [line("d")]);
}

#[test]
fn backspace_and_del_erase_one_char() {
    for erase in [0x08u8, 0x7f] {
        let mut ed = editor();
        let (echo, events) = run(&mut ed, &[b'a', b'b', erase, b'c', b'\r']);
        assert_eq!(echo, b"ab\x08 \x08c\r\n");
        assert_eq!(events, [line("ac")]);
    }
}

#[test]
fn backspace_at_start_of_line_does_nothing() {
    let mut ed = editor();
    let (echo, _) = run(&mut ed, b"\x08\x7f\x08");
    assert!(echo.is_empty());
    assert_eq!(ed.current(), "");
    let (echo, events) = run(&mut ed, b"a\x08\x08\x08b\r");
    assert_eq!(echo, b"a\x08 \x08b\r\n");
    assert_eq!(events, [line("b")]);
}

#[test]
fn ctrl_c_discards_the_line() {
    let mut ed = editor();
    let (echo, events) = run(&mut ed, b"stop linux\x03");
    assert_eq!(&echo[echo.len() - 4..], b"^C\r\n");
    assert_eq!(events, [Ev::Cancelled]);
    assert_eq!(ed.current(), "");
    assert_eq!(run(&mut ed, b"vms\r").1, [line("vms")]);
}

#[test]
fn ctrl_c_on_empty_line_still_cancels() {
    let mut ed = editor();
    assert_eq!(run(&mut ed, b"\x03").1, [Ev::Cancelled]);
}

#[test]
fn ctrl_u_clears_the_line_and_erases_it_on_screen() {
    let mut ed = editor();
    let (echo, events) = run(&mut ed, b"abc\x15");
    assert_eq!(echo, b"abc\x08 \x08\x08 \x08\x08 \x08");
    assert!(events.is_empty());
    assert_eq!(ed.current(), "");
    assert_eq!(run(&mut ed, b"x\r").1, [line("x")]);
    // Ctrl-U on an empty line echoes nothing.
    let (echo, _) = run(&mut ed, b"\x15");
    assert!(echo.is_empty());
}

#[test]
fn other_control_chars_are_ignored() {
    let mut ed = editor();
    let controls: Vec<u8> = (0u8..0x20)
        .filter(|b| ![0x03, 0x08, 0x0a, 0x0d, 0x15, 0x1b].contains(b))
        .collect();
    let mut input = b"a".to_vec();
    input.extend(&controls);
    input.extend(b"b\r");
    let (echo, events) = run(&mut ed, &input);
    assert_eq!(echo, b"ab\r\n");
    assert_eq!(events, [line("ab")]);
}

#[test]
fn bytes_from_0x80_are_ignored() {
    let mut ed = editor();
    let mut input = b"a".to_vec();
    input.extend(0x80u8..=0xff);
    input.extend("é€".as_bytes());
    input.extend(b"b\r");
    let (echo, events) = run(&mut ed, &input);
    assert_eq!(echo, b"ab\r\n");
    assert_eq!(events, [line("ab")]);
}

#[test]
fn csi_sequences_are_swallowed_whole() {
    let mut ed = editor();
    // Arrow keys, Delete (ESC [ 3 ~), a colour with parameters, an intermediate byte (ESC [ 1 SP q).
    let (echo, events) = run(
        &mut ed,
        b"a\x1b[A\x1b[D\x1b[3~b\x1b[1;31;42mc\x1b[1 qd\x1b[?25le\r",
    );
    assert_eq!(echo, b"abcde\r\n");
    assert_eq!(events, [line("abcde")]);
}

#[test]
fn ss3_and_two_byte_escapes_are_swallowed() {
    let mut ed = editor();
    // ESC O P (F1), ESC O A (application-mode up), ESC c (reset), ESC 7 (save cursor).
    let (echo, events) = run(&mut ed, b"a\x1bOPb\x1bOAc\x1bcd\x1b7e\r");
    assert_eq!(echo, b"abcde\r\n");
    assert_eq!(events, [line("abcde")]);
}

#[test]
fn control_char_aborts_an_escape_and_takes_effect() {
    let mut ed = editor();
    // Enter inside a CSI ends the line; the CSI's parameters were not stored.
    assert_eq!(run(&mut ed, b"ab\x1b[12\r").1, [line("ab")]);
    // Ctrl-C right after ESC cancels.
    assert_eq!(run(&mut ed, b"ab\x1b\x03").1, [Ev::Cancelled]);
    // Backspace inside SS3 erases.
    assert_eq!(run(&mut ed, b"ab\x1bO\x7fc\r").1, [line("ac")]);
    // ESC ESC [ A: the second ESC starts a new sequence.
    assert_eq!(run(&mut ed, b"x\x1b\x1b[Ay\r").1, [line("xy")]);
    // A byte >= 0x80 aborts the sequence and is itself ignored; what follows is text.
    assert_eq!(run(&mut ed, b"\x1b[\xffA\r").1, [line("A")]);
}

#[test]
fn an_open_escape_persists_between_feeds() {
    let mut ed = editor();
    run(&mut ed, b"\x1b[");
    // The sequence is still open: digits and the final byte are swallowed.
    assert_eq!(run(&mut ed, b"1;2Hok\r").1, [line("ok")]);
}

#[test]
fn overflow_keeps_capacity_and_counts_dropped_bytes() {
    let mut ed = editor();
    let input = vec![b'x'; LINE_CAPACITY + 37];
    let (echo, events) = run(&mut ed, &input);
    assert_eq!(echo.len(), LINE_CAPACITY, "dropped bytes are not echoed");
    assert!(events.is_empty());
    assert_eq!(ed.len(), LINE_CAPACITY);
    assert_eq!(ed.dropped(), 37);
    let (echo, events) = run(&mut ed, b"\r");
    assert_eq!(echo, b"\r\n");
    assert_eq!(
        events,
        [Ev::Overflow {
            kept: LINE_CAPACITY,
            dropped: 37
        }]
    );
    // The next line starts clean.
    assert_eq!(run(&mut ed, b"ok\r").1, [line("ok")]);
}

#[test]
fn exactly_capacity_is_no_overflow() {
    let mut ed = editor();
    let mut input = vec![b'y'; LINE_CAPACITY];
    input.push(b'\n');
    let (_, events) = run(&mut ed, &input);
    assert_eq!(events, [line(&"y".repeat(LINE_CAPACITY))]);
}

#[test]
fn only_printable_bytes_count_as_dropped() {
    let mut ed = LineEditor::<4>::new();
    // Control characters, high bytes and escape sequences past the limit are not "dropped text".
    let (_, events) = run(&mut ed, b"abcdEF\x01\x80\x1b[Ag\r");
    assert_eq!(
        events,
        [Ev::Overflow {
            kept: 4,
            dropped: 3
        }]
    );
}

#[test]
fn overflow_sticks_after_backspace_but_ctrl_u_forgets_it() {
    let mut ed = LineEditor::<4>::new();
    // Two bytes dropped; a backspace frees a slot and "z" is stored, but the line stays truncated.
    let (echo, events) = run(&mut ed, b"abcdef\x7fz\r");
    assert_eq!(echo, b"abcd\x08 \x08z\r\n");
    assert_eq!(
        events,
        [Ev::Overflow {
            kept: 4,
            dropped: 2
        }]
    );
    assert_eq!(run(&mut ed, b"abcdef\x15ok\r").1, [line("ok")]);
    assert_eq!(run(&mut ed, b"abcdef\x03").1, [Ev::Cancelled]);
    assert_eq!(run(&mut ed, b"ok\r").1, [line("ok")]);
}

#[test]
fn overflow_then_crlf_reports_once() {
    let mut ed = LineEditor::<2>::new();
    assert_eq!(
        run(&mut ed, b"abc\r\n").1,
        [Ev::Overflow {
            kept: 2,
            dropped: 1
        }]
    );
}

#[test]
fn zero_capacity_drops_everything() {
    let mut ed = LineEditor::<0>::new();
    assert_eq!(
        run(&mut ed, b"ab\r").1,
        [Ev::Overflow {
            kept: 0,
            dropped: 2
        }]
    );
    assert_eq!(run(&mut ed, b"\r").1, [line("")]);
}

#[test]
fn echo_bytes_match_their_length() {
    for echo in [
        Echo::Nothing,
        Echo::Byte(b'q'),
        Echo::Erase(3),
        Echo::NewLine,
        Echo::Interrupt,
    ] {
        let bytes: Vec<u8> = echo.bytes().collect();
        assert_eq!(bytes.len(), echo.byte_len(), "{echo:?}");
        assert_eq!(echo.bytes().len(), echo.byte_len(), "{echo:?}");
    }
    assert_eq!(
        Echo::Erase(2).bytes().collect::<Vec<_>>(),
        b"\x08 \x08\x08 \x08"
    );
    assert_eq!(Echo::Erase(usize::MAX).byte_len(), usize::MAX);
}

#[test]
fn reset_forgets_line_and_escape() {
    let mut ed = editor();
    run(&mut ed, b"abc\x1b[");
    ed.reset();
    assert_eq!(run(&mut ed, b"1A\r").1, [line("1A")]);
}
