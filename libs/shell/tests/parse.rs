//! Command parsing: every command good and bad, numbers, guests, addresses, suggestions.

use conduit_shell::{
    COMMANDS, Command, GuestDirectory, GuestEntry, GuestNameError, GuestRef, LogLevel, NumberError,
    ParseError, USAGE_WIDTH, find_command, parse, parse_u64, suggest, validate_guest_name,
};

const GUESTS: [GuestEntry<'static>; 3] = [
    GuestEntry {
        name: "linux",
        memory_size: 0x4000_0000,
    },
    GuestEntry {
        name: "rtos-1",
        memory_size: 0x10_0000,
    },
    GuestEntry {
        name: "a_b",
        memory_size: 0,
    },
];

fn p(line: &str) -> Result<Option<Command<'_, usize>>, ParseError<'_>> {
    parse(line, &GUESTS[..])
}

fn ok(line: &str) -> Command<'_, usize> {
    match p(line) {
        Ok(Some(c)) => c,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn err(line: &str) -> ParseError<'_> {
    match p(line) {
        Err(e) => e,
        other => panic!("{line:?} parsed: {other:?}"),
    }
}

fn g(name: &str, id: usize) -> GuestRef<'_, usize> {
    GuestRef { name, id }
}

fn usage(command: &'static str) -> ParseError<'static> {
    let Some(info) = find_command(command) else {
        panic!("no command {command}")
    };
    ParseError::Usage {
        command,
        usage: info.usage,
    }
}

#[test]
fn blank_lines_are_nothing() {
    assert_eq!(p(""), Ok(None));
    assert_eq!(p("   \t "), Ok(None));
}

#[test]
fn commands_without_arguments() {
    assert_eq!(ok("help"), Command::Help);
    assert_eq!(ok("vms"), Command::Vms);
    assert_eq!(ok("cpus"), Command::Cpus);
    assert_eq!(ok("iommu"), Command::Iommu);
    assert_eq!(ok("pci"), Command::Pci);
    assert_eq!(ok("irq"), Command::Irq);
    assert_eq!(ok("  irq  "), Command::Irq);
    assert_eq!(
        ok("HELP"),
        Command::Help,
        "command words are case-insensitive"
    );
}

#[test]
fn commands_without_arguments_refuse_arguments() {
    for c in ["help", "vms", "cpus", "iommu", "pci", "irq"] {
        assert_eq!(err(&format!("{c} x")), usage(c));
    }
    assert_eq!(err("vms a b c d"), usage("vms"));
}

#[test]
fn guest_commands() {
    assert_eq!(ok("vcpu linux"), Command::Vcpu(g("linux", 0)));
    assert_eq!(ok("stop rtos-1"), Command::Stop(g("rtos-1", 1)));
    assert_eq!(ok("restart\ta_b"), Command::Restart(g("a_b", 2)));
}

#[test]
fn guest_commands_need_exactly_one_guest() {
    for c in ["vcpu", "stop", "restart"] {
        assert_eq!(err(c), usage(c));
        assert_eq!(err(&format!("{c} linux linux")), usage(c));
    }
}

#[test]
fn unknown_and_malformed_guests() {
    assert_eq!(err("vcpu windows"), ParseError::UnknownGuest("windows"));
    assert_eq!(err("stop rtos"), ParseError::UnknownGuest("rtos"));
    assert_eq!(
        err("restart Linux"),
        ParseError::InvalidGuestName {
            name: "Linux",
            reason: GuestNameError::InvalidChar { ch: 'L', pos: 0 }
        }
    );
    let long = "x".repeat(33);
    assert_eq!(
        err(&format!("vcpu {long}")),
        ParseError::InvalidGuestName {
            name: &long,
            reason: GuestNameError::TooLong { len: 33 }
        }
    );
    assert_eq!(
        err("ept lin.ux 0"),
        ParseError::InvalidGuestName {
            name: "lin.ux",
            reason: GuestNameError::InvalidChar { ch: '.', pos: 3 }
        }
    );
}

#[test]
fn guest_name_syntax() {
    assert_eq!(validate_guest_name("a"), Ok(()));
    assert_eq!(validate_guest_name("0-9_az"), Ok(()));
    assert_eq!(validate_guest_name(&"z".repeat(32)), Ok(()));
    assert_eq!(validate_guest_name(""), Err(GuestNameError::Empty));
    assert_eq!(
        validate_guest_name(&"z".repeat(33)),
        Err(GuestNameError::TooLong { len: 33 })
    );
    assert_eq!(
        validate_guest_name("aé"),
        Err(GuestNameError::InvalidChar { ch: 'é', pos: 1 })
    );
    assert_eq!(
        validate_guest_name("a b"),
        Err(GuestNameError::InvalidChar { ch: ' ', pos: 1 })
    );
}

#[test]
fn ept_parses_and_range_checks_the_address() {
    assert_eq!(
        ok("ept linux 0x1000"),
        Command::Ept {
            guest: g("linux", 0),
            gpa: 0x1000
        }
    );
    assert_eq!(
        ok("ept linux 4096"),
        Command::Ept {
            guest: g("linux", 0),
            gpa: 4096
        }
    );
    assert_eq!(
        ok("ept linux 0X3fff_FFFF"),
        Command::Ept {
            guest: g("linux", 0),
            gpa: 0x3fff_ffff
        }
    );
    assert_eq!(
        ok("ept rtos-1 0"),
        Command::Ept {
            guest: g("rtos-1", 1),
            gpa: 0
        }
    );
    assert_eq!(
        err("ept linux 0x4000_0000"),
        ParseError::AddressOutOfRange {
            addr: 0x4000_0000,
            limit: 0x4000_0000
        }
    );
    assert_eq!(
        err("ept rtos-1 0xffffffffffffffff"),
        ParseError::AddressOutOfRange {
            addr: u64::MAX,
            limit: 0x10_0000
        }
    );
    // A guest without memory has no valid address.
    assert_eq!(
        err("ept a_b 0"),
        ParseError::AddressOutOfRange { addr: 0, limit: 0 }
    );
}

#[test]
fn ept_errors_name_the_argument() {
    assert_eq!(err("ept"), usage("ept"));
    assert_eq!(err("ept linux"), usage("ept"));
    assert_eq!(err("ept linux 1 2"), usage("ept"));
    assert_eq!(err("ept nobody 0x10"), ParseError::UnknownGuest("nobody"));
    assert_eq!(
        err("ept linux 0x12g4"),
        ParseError::InvalidNumber {
            arg: "gpa",
            text: "0x12g4",
            reason: NumberError::InvalidDigit {
                ch: 'g',
                pos: 4,
                radix_name: "hex"
            }
        }
    );
    assert_eq!(
        err("ept linux 0x1_0000_0000_0000_0000"),
        ParseError::InvalidNumber {
            arg: "gpa",
            text: "0x1_0000_0000_0000_0000",
            reason: NumberError::Overflow
        }
    );
    let e = err("ept linux zz");
    assert!(e.to_string().contains("<gpa>"), "{e}");
}

#[test]
fn log_levels() {
    assert_eq!(ok("log error"), Command::Log(LogLevel::Error));
    assert_eq!(ok("log warn"), Command::Log(LogLevel::Warn));
    assert_eq!(ok("log info"), Command::Log(LogLevel::Info));
    assert_eq!(ok("log debug"), Command::Log(LogLevel::Debug));
    assert_eq!(ok("log TRACE"), Command::Log(LogLevel::Trace));
    assert_eq!(err("log verbose"), ParseError::UnknownLogLevel("verbose"));
    assert_eq!(err("log"), usage("log"));
    assert_eq!(err("log info debug"), usage("log"));
    for l in LogLevel::ALL {
        assert_eq!(LogLevel::from_name(l.name()), Some(l));
    }
    assert!(LogLevel::Error < LogLevel::Trace);
}

#[test]
fn unknown_commands_suggest_the_closest() {
    assert_eq!(
        err("hlep"),
        ParseError::UnknownCommand {
            name: "hlep",
            suggestion: Some("help")
        }
    );
    assert_eq!(
        err("vm"),
        ParseError::UnknownCommand {
            name: "vm",
            suggestion: Some("vms")
        }
    );
    assert_eq!(
        err("restrat linux"),
        ParseError::UnknownCommand {
            name: "restrat",
            suggestion: Some("restart")
        }
    );
    assert_eq!(
        err("iomu"),
        ParseError::UnknownCommand {
            name: "iomu",
            suggestion: Some("iommu")
        }
    );
    assert_eq!(
        err("eptt"),
        ParseError::UnknownCommand {
            name: "eptt",
            suggestion: Some("ept")
        }
    );
    assert_eq!(
        err("reboot"),
        ParseError::UnknownCommand {
            name: "reboot",
            suggestion: None
        }
    );
    assert_eq!(
        err("xyzzy-long-word"),
        ParseError::UnknownCommand {
            name: "xyzzy-long-word",
            suggestion: None
        }
    );
    let e = err("stpo");
    assert_eq!(
        e.to_string(),
        "unknown command `stpo`; did you mean `stop`?; type `help` for the list"
    );
    assert_eq!(
        err("zzzz").to_string(),
        "unknown command `zzzz`; type `help` for the list"
    );
}

#[test]
fn suggestion_distance_bounds_and_ties() {
    // Two edits away: suggested; three: not.
    assert_eq!(suggest("rstat"), Some("restart"));
    assert_eq!(suggest("rsta"), None);
    assert_eq!(suggest("resart"), Some("restart"));
    assert_eq!(suggest("reXXart"), Some("restart"));
    assert_eq!(suggest("reXXXrt"), None);
    // A transposition is one edit: "hlepp" is two from "help" (three by plain Levenshtein).
    assert_eq!(suggest("hlepp"), Some("help"));
    assert_eq!(suggest("hlpepp"), None);
    // "vc" is two edits from "vms", "vcpu" and "pci": ambiguous, no suggestion.
    assert_eq!(suggest("vc"), None);
    // "ir" is one edit from "irq", further from everything else.
    assert_eq!(suggest("ir"), Some("irq"));
    assert_eq!(suggest("IRQQ"), Some("irq"));
    assert_eq!(suggest(""), None);
    assert_eq!(suggest("é"), None);
}

#[test]
fn usage_message_names_the_command() {
    assert_eq!(err("ept linux").to_string(), "usage: ept <guest> <gpa>");
    assert_eq!(
        err("log").to_string(),
        "usage: log <error|warn|info|debug|trace>"
    );
}

#[test]
fn every_table_entry_parses_with_its_arity() {
    for c in &COMMANDS {
        let args = ["linux", "0x10"];
        let line = match (c.name, c.arity) {
            ("log", _) => "log info".to_owned(),
            (name, n) => [name]
                .into_iter()
                .chain(args[..n].iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
        };
        assert!(matches!(p(&line), Ok(Some(_))), "{line:?}: {:?}", p(&line));
        // The usage starts with the name, and has one <...> per argument.
        assert!(c.usage.starts_with(c.name));
        assert_eq!(c.usage.matches('<').count(), c.arity, "{c:?}");
        assert!(c.usage.len() <= USAGE_WIDTH);
        assert!(!c.summary.is_empty() && !c.summary.contains('\n'));
    }
    assert_eq!(USAGE_WIDTH, "log <error|warn|info|debug|trace>".len());
}

#[test]
fn numbers() {
    assert_eq!(parse_u64("0"), Ok(0));
    assert_eq!(parse_u64("1234"), Ok(1234));
    assert_eq!(parse_u64("1_048_576"), Ok(1 << 20));
    assert_eq!(parse_u64("0x0"), Ok(0));
    assert_eq!(parse_u64("0xfee0_0000"), Ok(0xfee0_0000));
    assert_eq!(parse_u64("0XABCdef"), Ok(0xabc_def));
    assert_eq!(parse_u64("0x_1"), Ok(1));
    assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(parse_u64("0xffff_ffff_ffff_ffff"), Ok(u64::MAX));
    assert_eq!(parse_u64("007"), Ok(7));
}

#[test]
fn bad_numbers() {
    assert_eq!(parse_u64(""), Err(NumberError::Empty));
    assert_eq!(parse_u64("0x"), Err(NumberError::NoDigits));
    assert_eq!(parse_u64("0x__"), Err(NumberError::NoDigits));
    assert_eq!(parse_u64("_"), Err(NumberError::NoDigits));
    assert_eq!(
        parse_u64("18446744073709551616"),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        parse_u64("0x1_0000_0000_0000_0000"),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        parse_u64("99999999999999999999999"),
        Err(NumberError::Overflow)
    );
    let digit = |ch, pos, radix_name| {
        Err(NumberError::InvalidDigit {
            ch,
            pos,
            radix_name,
        })
    };
    assert_eq!(parse_u64("12a"), digit('a', 2, "decimal"));
    assert_eq!(parse_u64("-1"), digit('-', 0, "decimal"));
    assert_eq!(parse_u64("+1"), digit('+', 0, "decimal"));
    assert_eq!(parse_u64("0b101"), digit('b', 1, "decimal"));
    assert_eq!(parse_u64("0xg"), digit('g', 2, "hex"));
    assert_eq!(parse_u64("0x0x1"), digit('x', 3, "hex"));
    assert_eq!(parse_u64("1 2"), digit(' ', 1, "decimal"));
    assert_eq!(
        parse_u64("١"),
        digit('١', 0, "decimal"),
        "only ASCII digits"
    );
}

/// A directory that is not a slice: a kernel-side table keyed by VM id.
struct Vms;

impl GuestDirectory for Vms {
    type Id = u16;

    fn lookup(&self, name: &str) -> Option<u16> {
        (name == "dom0").then_some(7)
    }

    fn address_limit(&self, guest: u16) -> u64 {
        if guest == 7 { 0x1000 } else { 0 }
    }
}

#[test]
fn custom_directory() {
    assert_eq!(
        parse("ept dom0 0xfff", &Vms),
        Ok(Some(Command::Ept {
            guest: GuestRef {
                name: "dom0",
                id: 7
            },
            gpa: 0xfff
        }))
    );
    assert_eq!(
        parse("ept dom0 0x1000", &Vms),
        Err(ParseError::AddressOutOfRange {
            addr: 0x1000,
            limit: 0x1000
        })
    );
    assert_eq!(
        parse("stop linux", &Vms),
        Err(ParseError::UnknownGuest("linux"))
    );
}

#[test]
fn error_messages_are_informative() {
    assert_eq!(
        err("vcpu ghost").to_string(),
        "unknown guest `ghost`; `vms` lists the guests"
    );
    assert_eq!(
        err("ept linux 0x40000000").to_string(),
        "address 0x40000000 is out of range (the guest's addresses end below 0x40000000)"
    );
    assert_eq!(
        err("ept linux 0xq").to_string(),
        "bad <gpa> `0xq`: invalid hex digit 'q' at offset 2"
    );
}

#[test]
fn quit_and_its_alias_exit_end_the_run() {
    assert_eq!(ok("quit"), Command::Quit);
    assert_eq!(ok("exit"), Command::Quit);
    assert_eq!(ok("  EXIT "), Command::Quit, "aliases are case-insensitive");
    assert_eq!(err("quit now"), usage("quit"));
    assert_eq!(
        err("exit 0"),
        usage("quit"),
        "an alias reports its command's usage"
    );
    let info = find_command("exit").expect("exit is an alias");
    assert_eq!((info.name, info.aliases), ("quit", &["exit"][..]));
    assert!(info.is_invoked_by("QUIT") && info.is_invoked_by("Exit"));
    assert!(!info.is_invoked_by("qui") && !info.is_invoked_by("exits"));
}

#[test]
fn suggestions_reach_aliases_but_name_the_command() {
    assert_eq!(suggest("quti"), Some("quit"));
    assert_eq!(suggest("exti"), Some("quit"));
    assert_eq!(suggest("exitt"), Some("quit"));
    // "ext" is one edit from both `exit` and `ept`: ambiguous.
    assert_eq!(suggest("ext"), None);
    assert_eq!(
        err("exitt").to_string(),
        "unknown command `exitt`; did you mean `quit`?; type `help` for the list"
    );
}

#[test]
fn no_alias_shadows_a_command_or_another_alias() {
    let mut words: Vec<&str> = Vec::new();
    for c in &COMMANDS {
        for w in std::iter::once(c.name).chain(c.aliases.iter().copied()) {
            assert!(!words.contains(&w), "`{w}` invokes two commands");
            assert_eq!(find_command(w).map(|i| i.name), Some(c.name));
            words.push(w);
        }
    }
}
