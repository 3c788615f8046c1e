//! Conduit's serial debug shell, without I/O: the kernel feeds received bytes to a
//! [`LineEditor`], writes back its [`Echo`], and hands every finished line to [`parse`], which
//! returns a typed [`Command`] to execute against live state, or a [`ParseError`] naming the bad
//! argument.
//!
//! ```
//! use conduit_shell::{Command, Event, GuestEntry, LineEditor, parse};
//!
//! let guests = [GuestEntry { name: "linux", memory_size: 1 << 30 }];
//! let mut editor: LineEditor = LineEditor::new();
//! for &b in b"ept linux 0x1000" {
//!     editor.feed(b);
//! }
//! let feed = editor.feed(b'\r');
//! let Some(Event::Line(line)) = feed.event else { panic!() };
//! match parse(line, &guests[..]) {
//!     Ok(Some(Command::Ept { guest, gpa })) => assert_eq!((guest.id, gpa), (0, 0x1000)),
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! - [`editor`]: the byte-at-a-time line editor (fixed buffer, escape sequences swallowed,
//!   overflow counted).
//! - [`command`]: the command grammar and its errors; [`help`]: the command table `help` prints
//!   and "did you mean" suggestions; [`number`]: hex/decimal numbers; [`guest`]: guest names and
//!   the [`GuestDirectory`] they are resolved against.
//!
//! No `unsafe`, no allocation, no panics on any input.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod command;
pub mod editor;
pub mod guest;
pub mod help;
pub mod number;

pub use command::{Command, GuestRef, LogLevel, ParseError, parse, resolve};
pub use editor::{
    ERASE_SEQUENCE, Echo, EchoBytes, Event, Feed, INTERRUPT_SEQUENCE, LINE_CAPACITY, LineEditor,
    NEWLINE_SEQUENCE,
};
pub use guest::{GUEST_NAME_MAX, GuestDirectory, GuestEntry, GuestNameError, validate_guest_name};
pub use help::{COMMANDS, CommandInfo, USAGE_WIDTH, find_command, suggest};
pub use number::{NumberError, parse_u64};

/// The byte that ends `console <guest>` and returns to the shell: Ctrl-] (0x1d), as telnet and
/// virsh use it.
pub const CONSOLE_ESCAPE: u8 = 0x1d;
