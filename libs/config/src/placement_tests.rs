//! Tests of [`super`]: the builder's checks and the boot-time assignment, each refusal with the
//! key it must name.

use super::*;
use alloc::string::ToString;

fn err(r: Result<impl core::fmt::Debug, ConfigError>) -> (String, String) {
    let e = r.expect_err("must be refused");
    (e.key().unwrap_or_default().to_string(), e.to_string())
}

fn on(cpus: &[u16], dedicated: bool) -> Placement {
    Placement {
        cpus: cpus.to_vec(),
        dedicated,
    }
}

#[test]
fn keys_left_out_mean_the_default_shared_placement() {
    assert_eq!(check(0, None, None, 1).unwrap(), Placement::default());
    assert_eq!(
        check(0, None, Some(false), 1).unwrap(),
        Placement::default()
    );
}

#[test]
fn one_cpu_shared_or_dedicated() {
    assert_eq!(check(2, Some(&[3]), None, 1).unwrap(), on(&[3], false));
    assert_eq!(check(2, Some(&[1]), Some(true), 1).unwrap(), on(&[1], true));
    assert_eq!(check(0, Some(&[0]), None, 4).unwrap(), on(&[0], false));
    assert_eq!(
        check(0, Some(&[255]), None, 1).unwrap(),
        on(&[MAX_CPUS as u16 - 1], false)
    );
}

#[test]
fn bad_cpu_lists_are_refused_naming_cpus() {
    let (key, msg) = err(check(1, Some(&[2, 2]), None, 2));
    assert_eq!(key, "guest[1].cpus");
    assert!(msg.contains("CPU 2 is named twice"), "{msg}");
    let (key, msg) = err(check(0, Some(&[]), None, 1));
    assert_eq!(key, "guest[0].cpus");
    assert!(msg.contains("empty"), "{msg}");
    for bad in [-1, 256, 70_000] {
        let (key, msg) = err(check(0, Some(&[bad]), None, 1));
        assert_eq!(key, "guest[0].cpus");
        assert!(msg.contains(&format!("CPU {bad}")), "{msg}");
    }
    let (key, msg) = err(check(0, Some(&[0, 1, 2]), None, 2));
    assert_eq!(key, "guest[0].cpus");
    assert!(msg.contains("3 CPUs for 2 vCPU(s)"), "{msg}");
    let (_, msg) = err(check(0, Some(&[0, 1]), None, 1));
    assert!(msg.contains("2 CPUs for 1 vCPU(s)"), "{msg}");
}

#[test]
fn dedicated_needs_one_cpu_other_than_0_and_one_vcpu() {
    let (key, msg) = err(check(3, None, Some(true), 1));
    assert_eq!(key, "guest[3].dedicated");
    assert!(msg.contains("cpus = [N]"), "{msg}");
    let (key, msg) = err(check(0, Some(&[0]), Some(true), 1));
    assert_eq!(key, "guest[0].dedicated");
    assert!(msg.contains("CPU 0"), "{msg}");
    let (key, msg) = err(check(0, Some(&[1]), Some(true), 2));
    assert_eq!(key, "guest[0].dedicated");
    assert!(msg.contains("1 dedicated CPU(s) for 2 vCPUs"), "{msg}");
    let (key, msg) = err(check(0, Some(&[2, 0]), Some(true), 2));
    assert_eq!(key, "guest[0].dedicated");
    assert!(msg.contains("CPU 0"), "{msg}");
    let (key, msg) = err(check(0, Some(&[1, 2]), Some(true), 3));
    assert_eq!(key, "guest[0].dedicated");
    assert!(msg.contains("2 dedicated CPU(s) for 3 vCPUs"), "{msg}");
}

#[test]
fn a_guest_spans_the_cpus_it_names() {
    assert_eq!(
        check(0, Some(&[0, 1]), None, 2).unwrap(),
        on(&[0, 1], false)
    );
    assert_eq!(
        check(0, Some(&[2, 1]), None, 4).unwrap(),
        on(&[2, 1], false)
    );
    assert_eq!(
        check(0, Some(&[1, 2]), Some(true), 2).unwrap(),
        on(&[1, 2], true)
    );
    // vCPU k on the (k mod n)-th CPU named.
    let homes: Vec<_> = (0..5).map(|k| vcpu_cpu(&[2, 1], k)).collect();
    assert_eq!(homes, [Some(2), Some(1), Some(2), Some(1), Some(2)]);
    assert_eq!(vcpu_cpu(&[], 0), None);
    // Every CPU named must be online; a spanning dedicated guest reserves each of them.
    let (a, b) = (on(&[1, 2], true), Placement::default());
    let r = assign(
        &[("a", &a), ("b", &b), ("c", &b)],
        &cpus(&[true, true, true]),
    );
    assert_eq!(r[0].as_ref().unwrap().cpus, [1, 2]);
    assert_eq!(r[0].as_ref().unwrap().first(), 1);
    assert_eq!(placed(&r), [Some(1), Some(0), Some(0)]);
    let r = assign(&[("a", &on(&[0, 3], false))], &cpus(&[true, true]));
    let (key, msg) = err(r.into_iter().next().unwrap());
    assert_eq!(key, "guest \"a\".cpus");
    assert!(msg.contains("CPU 3: this machine has 2 CPU(s)"), "{msg}");
}

#[test]
fn a_dedicated_cpu_named_by_another_guest_is_refused_naming_both() {
    let (a, b, c) = (on(&[1], true), on(&[1], false), on(&[2], false));
    let (key, msg) = err(check_exclusive(&[("a", &a), ("c", &c), ("b", &b)]));
    assert_eq!(key, "guest[2].cpus");
    assert!(
        msg.contains("\"a\" (guest[0])") && msg.contains("\"b\""),
        "{msg}"
    );
    let (key, msg) = err(check_exclusive(&[("b", &b), ("a", &a)]));
    assert_eq!(key, "guest[1].dedicated");
    assert!(
        msg.contains("\"b\" (guest[0])") && msg.contains("\"a\""),
        "{msg}"
    );
    let d = on(&[1], true);
    let (key, _) = err(check_exclusive(&[("a", &a), ("d", &d)]));
    assert_eq!(key, "guest[1].cpus");
    // Sharing a CPU, or dedicating different ones, is fine.
    let e = on(&[2], true);
    let (key, _) = err(check_exclusive(&[
        ("b", &b),
        ("b2", &b),
        ("c", &c),
        ("a", &a),
    ]));
    assert_eq!(key, "guest[3].dedicated");
    check_exclusive(&[("b", &b), ("b2", &b), ("e", &e)]).unwrap();
    check_exclusive(&[("a", &a), ("e", &e), ("x", &Placement::default())]).unwrap();
}

fn cpus(states: &[bool]) -> Vec<CpuUp> {
    states
        .iter()
        .map(|&up| {
            if up {
                CpuUp::Online
            } else {
                CpuUp::Down("did not start: no answer".to_string())
            }
        })
        .collect()
}

fn placed(r: &[Result<Assigned, ConfigError>]) -> Vec<Option<u16>> {
    r.iter()
        .map(|a| a.as_ref().ok().map(|a| a.first()))
        .collect()
}

#[test]
fn default_is_round_robin_over_online_cpus_in_configuration_order() {
    let d = Placement::default();
    let guests = [("a", &d), ("b", &d), ("c", &d), ("e", &d)];
    let r = assign(&guests, &cpus(&[true, true, true]));
    assert_eq!(placed(&r), [Some(0), Some(1), Some(2), Some(0)]);
    assert!(r.iter().all(|a| a.as_ref().is_ok_and(|a| a.by_default)));
    // An existing single-CPU configuration: everything on CPU 0, as before.
    let r = assign(&guests, &cpus(&[true]));
    assert_eq!(placed(&r), [Some(0); 4]);
    // CPUs that are down are skipped.
    let r = assign(&guests, &cpus(&[true, false, true]));
    assert_eq!(placed(&r), [Some(0), Some(2), Some(0), Some(2)]);
}

#[test]
fn default_skips_dedicated_cpus_even_when_the_dedicated_guest_comes_later() {
    let d = Placement::default();
    let pinned = on(&[1], true);
    let shared2 = on(&[2], false);
    let r = assign(
        &[
            ("a", &d),
            ("b", &d),
            ("p", &pinned),
            ("s", &shared2),
            ("c", &d),
        ],
        &cpus(&[true, true, true]),
    );
    assert_eq!(placed(&r), [Some(0), Some(2), Some(1), Some(2), Some(0)]);
    let p = r[2].as_ref().unwrap();
    assert!(p.dedicated && !p.by_default);
}

#[test]
fn a_cpu_the_machine_lacks_or_that_is_down_refuses_that_guest_only() {
    let d = Placement::default();
    let (three, one) = (on(&[3], false), on(&[1], true));
    let r = assign(
        &[("x", &three), ("y", &one), ("z", &d)],
        &cpus(&[true, false]),
    );
    let (key, msg) = err(r[0].clone());
    assert_eq!(key, "guest \"x\".cpus");
    assert!(
        msg.contains("CPU 3: this machine has 2 CPU(s) (0 to 1)"),
        "{msg}"
    );
    let (key, msg) = err(r[1].clone());
    assert_eq!(key, "guest \"y\".cpus");
    assert!(
        msg.contains("CPU 1 is not online (did not start: no answer)"),
        "{msg}"
    );
    assert_eq!(r[2].as_ref().unwrap().first(), 0);
    // A dedicated CPU is kept from the default placement; a refused guest keeps nothing.
    let r = assign(&[("y", &one), ("z", &d), ("w", &d)], &cpus(&[true, true]));
    assert_eq!(placed(&r), [Some(1), Some(0), Some(0)]);
    let r = assign(&[("y", &three), ("z", &d), ("w", &d)], &cpus(&[true, true]));
    assert_eq!(placed(&r), [None, Some(0), Some(1)]);
}

#[test]
fn without_an_online_cpu_a_default_guest_is_refused() {
    let d = Placement::default();
    let (key, msg) = err(assign(&[("a", &d)], &[]).remove(0));
    assert_eq!(key, "guest \"a\".cpus");
    assert!(msg.contains("no CPU is online"), "{msg}");
}

/// A Linux guest with `vcpus` vCPUs and the given placement keys, through the builder's checks.
fn os_guest(vcpus: i64, cpus: Option<&[i64]>, dedicated: Option<bool>) -> crate::guest::RawGuest {
    crate::guest::RawGuest {
        name: Some("l".to_string()),
        memory_mib: Some(64),
        kind: Some("linux".to_string()),
        kernel: Some("vmlinuz".to_string()),
        cmdline: Some("console=ttyS0".to_string()),
        vcpus: Some(vcpus),
        cpus: cpus.map(<[i64]>::to_vec),
        dedicated,
        ..crate::guest::RawGuest::default()
    }
}

#[test]
fn the_builder_checks_placement_against_the_vcpus_key() {
    use crate::guest::check_all;
    let (key, msg) = err(check_all(&[os_guest(2, Some(&[1]), Some(true))]));
    assert_eq!(key, "guest[0].dedicated");
    assert!(msg.contains("some vCPUs would take turns"), "{msg}");
    let (key, msg) = err(check_all(&[os_guest(2, Some(&[0, 1, 2]), None)]));
    assert_eq!(key, "guest[0].cpus");
    assert!(msg.contains("3 CPUs for 2 vCPU(s)"), "{msg}");
    let s = check_all(&[os_guest(2, Some(&[0, 1]), None)]).unwrap();
    assert_eq!(s[0].placement, on(&[0, 1], false));
    let (key, msg) = err(check_all(&[os_guest(3, Some(&[2, 2]), None)]));
    assert_eq!(key, "guest[0].cpus");
    assert!(msg.contains("named twice"), "{msg}");
    // Shared, the two vCPUs take turns on CPU 1; one vCPU may have CPU 1 to itself.
    let s = check_all(&[os_guest(2, Some(&[1]), None)]).unwrap();
    assert_eq!((s[0].vcpus, s[0].placement.clone()), (2, on(&[1], false)));
    let s = check_all(&[os_guest(1, Some(&[1]), Some(true))]).unwrap();
    assert_eq!(s[0].placement, on(&[1], true));
}
