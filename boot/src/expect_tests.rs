//! Tests of `expect`: expectations, forbidden patterns and the end marker.
use super::*;

fn monitor(expect: &[&str], forbid: &[&str], log: &str) -> Monitor {
    let mut m = Monitor::new(expect, forbid).expect("valid patterns");
    m.feed(log.as_bytes());
    m.finish();
    m
}

const OK_LOG: &str = "\x1b[2J\x1b[01;01HBdsDxe: loading\r\n\
    [12] INFO conduit: Conduit v0.1.0 (git 1a2b3c4d)\r\n\
    [13] INFO cpu: VMX: not available\n\
    [14] INFO conduit: CONDUIT EXIT: success\n";

#[test]
fn expectations_match_in_order_across_chunks() {
    let mut m =
        Monitor::new(&[r"Conduit v0\.1\.0 \(git [0-9a-f]{7,}", "VMX: not"], &[]).expect("valid");
    for chunk in OK_LOG.as_bytes().chunks(5) {
        m.feed(chunk);
    }
    assert!(m.all_matched());
    assert_eq!(m.marker(), Some(Marker::Success));
    assert_eq!(m.line_count(), 4);
    assert_eq!(
        verdict(
            &m,
            End::Success,
            Ending::Exited(Some(33)),
            StatusCheck::QemuDebugExit
        ),
        Ok(())
    );
}

#[test]
fn out_of_order_expectations_fail_and_name_the_missing_one() {
    let m = monitor(&["VMX: not", "Conduit v0"], &[], OK_LOG);
    assert!(!m.all_matched());
    let e = verdict(
        &m,
        End::Success,
        Ending::Exited(Some(33)),
        StatusCheck::QemuDebugExit,
    )
    .expect_err("order matters");
    assert!(
        e.contains("expectation 2/2 `Conduit v0` not found after line 3"),
        "{e}"
    );
    assert!(e.contains("VMX: not available"), "{e}");
}

#[test]
fn one_line_can_satisfy_consecutive_expectations() {
    let m = monitor(
        &["error code 0x0+ ", "CR2 +0x[0-9a-f]+", "RIP"],
        &[],
        "EXCEPTION #PF: error code 0x0000 CR2 0xdead RIP 0xffff\n",
    );
    assert!(m.all_matched());
}

/// Two guests' lines interleaved, between the kernel's.
const GUESTS_LOG: &str = "Conduit v0.1.0\n\
    INFO guest: a: hello from a\n\
    INFO guest: b: hello from b\n\
    INFO guest: b: done\n\
    INFO guest: a: done\n\
    guest \"a\" exited with code 0x1\n\
    CONDUIT EXIT: success\n";

#[test]
fn labelled_sequences_are_ordered_in_themselves_only() {
    let a: &[&str] = &["a: hello from a", "a: done", r#"guest "a" exited"#];
    let b: &[&str] = &["b: hello from b", "b: done"];
    let mut m = Monitor::with_sequences(&["Conduit", "CONDUIT EXIT"], &[("a", a), ("b", b)], &[])
        .expect("valid");
    m.feed(GUESTS_LOG.as_bytes());
    assert!(m.all_matched(), "{:?}", m.expectation_problem());
    assert_eq!(m.expectation_problem(), None);
    // b's own order still counts, and the report names the sequence.
    let b_reversed: &[&str] = &["b: done", "b: hello from b"];
    let m = {
        let mut m = Monitor::with_sequences(&["Conduit"], &[("a", a), ("b", b_reversed)], &[])
            .expect("valid");
        m.feed(GUESTS_LOG.as_bytes());
        m
    };
    assert!(!m.all_matched());
    let e = m.expectation_problem().expect("b is out of order");
    assert_eq!(
        e,
        "`b` expectation 2/2 `b: hello from b` not found after line 4 `INFO guest: b: done`"
    );
    // Every unfinished sequence is reported, the main one first.
    let m = monitor_with(&["nope"], &[("a", &["never"])], GUESTS_LOG);
    let e = m.expectation_problem().expect("two problems");
    assert!(
        e.starts_with("expectation 1/1 `nope` not found")
            && e.contains("; `a` expectation 1/1 `never`"),
        "{e}"
    );
    let verdict_text = verdict(
        &m,
        End::Success,
        Ending::Exited(Some(1)),
        StatusCheck::MarkerOnly,
    )
    .expect_err("unmatched");
    assert!(verdict_text.contains("`a` expectation"), "{verdict_text}");
}

fn monitor_with(expect: &[&str], sequences: &[(&str, &[&str])], log: &str) -> Monitor {
    let mut m = Monitor::with_sequences(expect, sequences, &[]).expect("valid patterns");
    m.feed(log.as_bytes());
    m.finish();
    m
}

#[test]
fn bad_patterns_in_labelled_sequences_are_errors() {
    let e = Monitor::with_sequences(&[], &[("g", &["(x"])], &[]).expect_err("bad regex");
    assert_eq!(e.pattern, "(x");
}

#[test]
fn nothing_matched_is_reported_as_such() {
    let m = monitor(&["never"], &[], "hello\n");
    let e = m.expectation_problem().expect("unmatched");
    assert!(e.contains("no expectation matched"), "{e}");
}

#[test]
fn forbidden_patterns_fail_a_run_with_a_good_end() {
    let log = "panicked at kernel/src/main.rs:3\nCONDUIT EXIT: success\n";
    let m = monitor(&[], &["panicked"], log);
    let e = verdict(
        &m,
        End::Success,
        Ending::Exited(Some(33)),
        StatusCheck::QemuDebugExit,
    )
    .expect_err("forbidden");
    assert!(e.contains("forbidden `panicked` matched line 1"), "{e}");
}

#[test]
fn markers_are_decoded_with_codes_and_escapes_removed() {
    let m = monitor(
        &[],
        &[],
        "\x1b[0m[9] ERROR x: CONDUIT EXIT: failure (code 3)\r\n",
    );
    assert_eq!(m.marker(), Some(Marker::Failure(Some(3))));
    assert_eq!(
        m.tail().last(),
        Some("[9] ERROR x: CONDUIT EXIT: failure (code 3)")
    );
    let hex = monitor(&[], &[], "CONDUIT EXIT: failure (code 0x100)\n");
    assert_eq!(hex.marker(), Some(Marker::Failure(Some(0x100))));
    assert_eq!(
        monitor(&[], &[], "CONDUIT EXIT: failure\n").marker(),
        Some(Marker::Failure(None))
    );
    assert_eq!(monitor(&[], &[], "CONDUIT EXIT: succ\n").marker(), None);
    // Only the first marker counts.
    let two = monitor(
        &[],
        &[],
        "CONDUIT EXIT: success\nCONDUIT EXIT: failure (code 1)\n",
    );
    assert_eq!(two.marker(), Some(Marker::Success));
    // A last line without a newline is still seen once the log is finished.
    let mut m = Monitor::new(&[], &[]).expect("valid");
    m.feed(b"CONDUIT EXIT: success");
    assert_eq!(m.marker(), None);
    m.finish();
    assert_eq!(m.marker(), Some(Marker::Success));
}

#[test]
fn wrong_end_and_wrong_status_are_reported() {
    let fail = monitor(&[], &[], "CONDUIT EXIT: failure (code 2)\n");
    let e = verdict(
        &fail,
        End::Success,
        Ending::Exited(Some(35)),
        StatusCheck::QemuDebugExit,
    )
    .expect_err("wrong end");
    assert!(
        e.contains("ended with `failure (code 2)`, expected success"),
        "{e}"
    );
    assert_eq!(
        verdict(
            &fail,
            End::Failure,
            Ending::Exited(Some(35)),
            StatusCheck::QemuDebugExit
        ),
        Ok(())
    );
    let e = verdict(
        &fail,
        End::Failure,
        Ending::Exited(Some(1)),
        StatusCheck::QemuDebugExit,
    )
    .expect_err("status must agree");
    assert!(e.contains("expected status 35"), "{e}");
    // Bochs: status 1 is normal, the marker decides.
    assert_eq!(
        verdict(
            &fail,
            End::Failure,
            Ending::Exited(Some(1)),
            StatusCheck::MarkerOnly
        ),
        Ok(())
    );
    let grace = Ending::StoppedAfterMarker(Duration::from_secs(5));
    assert_eq!(
        verdict(&fail, End::Failure, grace, StatusCheck::MarkerOnly),
        Ok(())
    );
    let e = verdict(&fail, End::Failure, grace, StatusCheck::QemuDebugExit).expect_err("no exit");
    assert!(e.contains("did not exit through isa-debug-exit"), "{e}");
}

#[test]
fn timeouts_and_silent_exits_are_failures() {
    let m = monitor(&["Conduit"], &[], "BdsDxe: nothing\n");
    let e = verdict(
        &m,
        End::Success,
        Ending::Timeout(Duration::from_secs(120)),
        StatusCheck::MarkerOnly,
    )
    .expect_err("timeout");
    assert!(
        e.starts_with("timeout after 120s without an end marker"),
        "{e}"
    );
    assert!(e.contains("`Conduit` not found"), "{e}");
    let e = verdict(
        &m,
        End::Success,
        Ending::Exited(Some(1)),
        StatusCheck::QemuDebugExit,
    )
    .expect_err("no marker");
    assert!(
        e.starts_with("emulator exited with status 1 without an end marker"),
        "{e}"
    );
    let silent = monitor(&["Conduit"], &[], "");
    let e = verdict(
        &silent,
        End::Success,
        Ending::Exited(Some(1)),
        StatusCheck::MarkerOnly,
    )
    .expect_err("no output");
    assert_eq!(e, "emulator exited with status 1 before any serial output");
}

#[test]
fn bad_patterns_are_errors_not_panics() {
    let e = Monitor::new(&["(unclosed"], &[]).expect_err("bad regex");
    assert_eq!(e.pattern, "(unclosed");
}

#[test]
fn qemu_status_encoding() {
    assert_eq!(qemu_status(QEMU_SUCCESS_CODE), 33);
    assert_eq!(qemu_status(QEMU_FAILURE_CODE), 35);
}
