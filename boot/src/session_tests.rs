//! Tests of [`super`]: sessions with stand-in emulators (`sh`, `bash`).

use super::*;

fn launch(program: &str, args: &[&str], serial: SerialOut) -> Launch {
    Launch {
        program: program.into(),
        args: args.iter().map(|s| (*s).to_string()).collect(),
        serial,
        lock_file: None,
        cwd: None,
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
    let ending = s
        .watch(&mut log, &mut m, &mut Script::empty(), limits)
        .expect("watched");
    assert_eq!(ending, Ending::Exited(Some(33)));
    assert_eq!(log, b"one\nx: CONDUIT EXIT: success\n");
    assert!(m.all_matched());
}

#[test]
fn a_script_types_into_stdin_when_its_line_appears() {
    // The "emulator" prompts, reads one line from the serial input and answers with it.
    let script = "echo ready; line=$(head -c 5 | od -An -c | tr -s ' '); printf 'got <%s>\\n' \"$line\"; echo 'CONDUIT EXIT: success'; exit 33";
    let l = launch("sh", &["-c", script], SerialOut::Stdout);
    let mut s = Session::start(&l, &temp("stdin.err"), Mode::Batch).expect("sh runs");
    let mut log = Vec::new();
    // Exactly the line and a carriage return reached the emulator.
    let mut m = Monitor::new(&[r"got < h e l p \\r>"], &[]).expect("valid");
    let mut typed = Script::new(&[crate::script::Step::line("^ready$", "help")]).expect("valid");
    let limits = Limits {
        timeout: Some(Duration::from_secs(20)),
        grace: Duration::from_secs(5),
    };
    let ending = s
        .watch(&mut log, &mut m, &mut typed, limits)
        .expect("watched");
    assert_eq!(ending, Ending::Exited(Some(33)));
    assert!(typed.done(), "{:?}", typed.problem());
    assert!(m.all_matched(), "{}", String::from_utf8_lossy(&log));
}

#[test]
fn a_socket_console_is_read_and_typed_into() {
    let socket = crate::machine::SerialSocket::bind_loopback().expect("loopback");
    // A fake Bochs: connects, prompts, echoes the line it reads, ends. bash has /dev/tcp.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{}; echo ready >&3; read -r -d $'\\r' line <&3; \
         echo \"got <$line>\" >&3; echo 'CONDUIT EXIT: success' >&3; sleep 30",
        socket.port()
    );
    let l = launch("bash", &["-c", &script], SerialOut::Socket(socket));
    let mut s = Session::start(&l, &temp("socket.out"), Mode::Batch).expect("bash runs");
    let mut m = Monitor::new(&["^got <vms>$"], &[]).expect("valid");
    let mut typed = Script::new(&[crate::script::Step::line("^ready$", "vms")]).expect("valid");
    let limits = Limits {
        timeout: Some(Duration::from_secs(20)),
        grace: Duration::from_millis(300),
    };
    let ending = s
        .watch(&mut std::io::sink(), &mut m, &mut typed, limits)
        .expect("watched");
    assert!(
        matches!(ending, Ending::StoppedAfterMarker(_)),
        "{ending:?}"
    );
    assert!(typed.done() && m.all_matched());
}

#[test]
fn an_emulator_that_dies_before_connecting_is_reported_by_its_exit() {
    let socket = crate::machine::SerialSocket::bind_loopback().expect("loopback");
    let l = launch("sh", &["-c", "exit 3"], SerialOut::Socket(socket));
    let mut s = Session::start(&l, &temp("dead.out"), Mode::Batch).expect("sh runs");
    let mut m = Monitor::new(&[], &[]).expect("valid");
    let limits = Limits {
        timeout: Some(Duration::from_secs(20)),
        grace: Duration::from_secs(5),
    };
    let ending = s
        .watch(&mut std::io::sink(), &mut m, &mut Script::empty(), limits)
        .expect("watched");
    assert_eq!(ending, Ending::Exited(Some(3)));
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
        .watch(&mut std::io::sink(), &mut m, &mut Script::empty(), limits)
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
        .watch(&mut std::io::sink(), &mut m, &mut Script::empty(), limits)
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

#[test]
fn a_forbidden_line_stops_the_run_at_once() {
    // The marker would come 30 s later: the forbidden line must end the watch first.
    let l = launch(
        "sh",
        &[
            "-c",
            "echo 'guest x stopped: oops'; sleep 30; echo 'CONDUIT EXIT: success'",
        ],
        SerialOut::Stdout,
    );
    let mut s = Session::start(&l, &temp("forbidden.err"), Mode::Batch).expect("sh runs");
    let mut m = Monitor::new(&[], &["stopped: oops"]).expect("valid");
    let limits = Limits {
        timeout: Some(Duration::from_secs(20)),
        grace: Duration::from_secs(5),
    };
    let t = Instant::now();
    let ending = s
        .watch(&mut std::io::sink(), &mut m, &mut Script::empty(), limits)
        .expect("watched");
    assert_eq!(ending, Ending::Forbidden);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    let v = crate::expect::verdict(
        &m,
        crate::expect::End::Success,
        ending,
        crate::expect::StatusCheck::QemuDebugExit,
    );
    assert!(v.expect_err("failed").contains("forbidden `stopped: oops`"));
}
