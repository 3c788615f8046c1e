//! The figures of the `bochs-linux` boot scenario (issue 13, Must-show 1, 2 and 6), read from its
//! serial log after the expectations matched: arithmetic a regular expression cannot do.
//!
//! Checked (the run fails otherwise):
//! - the TSC rate Linux detected (`tsc: Detected X MHz TSC`, or `... MHz processor` when the kernel
//!   found both equal and printed only that one) is within 1 % of the rate Conduit measured (the
//!   `time:` line, read by [`crate::tsc::check`]);
//! - the local APIC timer count (`LOC:` of `/proc/interrupts`, read twice 2 s apart) rose;
//! - issue 14, Must-show 1: Linux's count of the assigned e1000's interrupts (its `eth0` line of
//!   `/proc/interrupts`, read after the ping) and Conduit's count of the device interrupts routed
//!   to the guest (`vms` right after) agree within [`INTX_SLACK`].
//!
//! Printed for the issue's note (`key=value`, also written to `figures.txt` in the scenario's
//! build directory), whatever the verdict:
//! - `linux_guest_to_init_instr`: Bochs TSC ticks (one per instruction) from `linux`'s first VM
//!   entry to its "Run /init as init process" line, as [`crate::linux_bare::conduit_figure`]
//!   reads them (the figure `scripts/bench --linux --conduit-log` compares with a bare boot); the
//!   other guests' share is included;
//! - `linux_boot_guest_ms`: the time `linux` spent in VMX non-root operation by `/init` (`vms`);
//! - `linux_boot_exits`: its exits by reason by `/init` (`vms` typed at "conduit-initramfs: ready");
//! - `linux_idle_exits_per_s`: exits per second of guest time while Linux sleeps at its prompt
//!   (two `vms` around `sleep 10`, timed by Linux's `/proc/uptime`; the issue's goal is at most 50).
//!
//! ```
//! let log = "[100] INFO  hw::time: time: TSC 50.001 MHz (measured)\n\
//!            [200] INFO  sched: guest \"linux\": first VM entry\n\
//!            [9000] INFO  conduit_kernel::guest::vuart: linux: [    0.10] tsc: Detected 50.000 MHz processor\n\
//!            [9100] INFO  conduit_kernel::guest::vuart: linux: [    1.00] Run /init as init process\n\
//!            LOC:        100   Local timer interrupts\n\
//!            LOC:        300   Local timer interrupts\n\
//!            [9200] INFO  conduit_kernel::guest::vuart: linux:  17:   40   IO-APIC  17-fasteoi   eth0\n\
//!            \x20   device interrupts routed to it: 41\n";
//! let checked = conduit_boot::linux_log::check(log);
//! assert_eq!(checked.problem, None);
//! assert!(checked.figures.iter().any(|f| f == "linux_guest_to_init_instr=8900"));
//! ```

use regex::Regex;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

/// The rate Linux detected: `(MHz, fraction, "TSC" or "processor")`.
static DETECTED: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\blinux: \[ *[0-9.]+\] tsc: Detected ([0-9]+)\.([0-9]{3}) MHz (TSC|processor)")
});
/// The local APIC timer's line of `/proc/interrupts` (one CPU).
static LOC: LazyLock<Regex> = LazyLock::new(|| re(r"^ *LOC: +([0-9]+) +Local timer interrupts$"));
/// `/proc/uptime` printed raw while attached, or logged under the guest's name while detached.
static UPTIME_RAW: LazyLock<Regex> = LazyLock::new(|| re(r"^([0-9]+)\.([0-9]{2}) [0-9.]+$"));
static UPTIME_LOGGED: LazyLock<Regex> =
    LazyLock::new(|| re(r"\blinux: (?:.*[^0-9.])?([0-9]+)\.([0-9]{2}) [0-9.]+$"));
/// `vms`: the guest's line, then its exits.
static VMS_LINUX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^  linux: [^;]+; [0-9]+ MiB at host 0x[0-9a-f]+, VPID [0-9]+, ([0-9]+)\.([0-9]{3}) ms in guest",
    )
});
static VMS_EXITS: LazyLock<Regex> = LazyLock::new(|| re(r"^    exits: ([0-9]+) \((.*)\)$"));
/// The e1000's line of `/proc/interrupts`, logged while detached.
static ETH0: LazyLock<Regex> =
    LazyLock::new(|| re(r"\blinux: +[0-9]+: +([0-9]+) +IO-APIC +[0-9]+-fasteoi +eth0$"));
/// `vms`: the device interrupts routed to the guest.
static ROUTED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^    device interrupts routed to it: ([0-9]+)$"));

/// How far Linux's and Conduit's counts of the e1000's interrupts may differ: the two are read a
/// moment apart, and the device may interrupt in between (its watchdog, a late packet).
pub const INTX_SLACK: u64 = 5;

/// Index of the first line at or after `from` containing `text`.
fn find(lines: &[&str], from: usize, text: &str) -> Option<usize> {
    lines[from.min(lines.len())..]
        .iter()
        .position(|l| l.contains(text))
        .map(|i| i + from)
}

/// `linux`'s `vms` figures at or after line `from`: (its line's index, ms in guest as µs, exits,
/// exits by reason).
fn vms_linux(lines: &[&str], from: usize) -> Option<(usize, u64, u64, String)> {
    let (i, c) = lines
        .iter()
        .enumerate()
        .skip(from)
        .find_map(|(i, l)| VMS_LINUX.captures(l).map(|c| (i, c)))?;
    let us = c[1].parse::<u64>().ok()? * 1000 + c[2].parse::<u64>().ok()?;
    let e = VMS_EXITS.captures(lines.get(i + 1)?)?;
    Some((i, us, e[1].parse().ok()?, e[2].to_string()))
}

/// Centiseconds of an uptime capture.
fn centis(c: &regex::Captures<'_>) -> Option<u64> {
    Some(c[1].parse::<u64>().ok()? * 100 + c[2].parse::<u64>().ok()?)
}

/// Whether `actual` is within 1 % of `expected`.
fn within_1_percent(expected: u64, actual: u64) -> bool {
    expected.abs_diff(actual) * 100 <= expected
}

/// What [`check`] found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `key=value` lines to print, whatever the verdict (those the log has the lines for).
    pub figures: Vec<String>,
    /// The first checked figure that is wrong or missing.
    pub problem: Option<String>,
}

/// Checks the log's figures; returns them with what is wrong, if anything.
pub fn check(log: &str) -> Checked {
    let lines: Vec<&str> = log.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut figures = Vec::new();
    let problem = checked(log, &lines, &mut figures).err();
    figures.extend(measured(&lines));
    Checked { figures, problem }
}

/// The figures that must hold (Linux's TSC rate, the timer count rising), pushed to `out` as
/// they are found.
fn checked(log: &str, lines: &[&str], out: &mut Vec<String>) -> Result<(), String> {
    // Must-show 1: Linux's TSC rate against Conduit's.
    let conduit = crate::tsc::check(log)?.ok_or("the log states no TSC rate of Conduit's")?;
    let detected: Vec<(u64, bool)> = lines
        .iter()
        .filter_map(|l| DETECTED.captures(l))
        .filter_map(|c| {
            let khz = c[1].parse::<u64>().ok()? * 1000 + c[2].parse::<u64>().ok()?;
            Some((khz, &c[3] == "TSC"))
        })
        .collect();
    let linux = detected
        .iter()
        .find(|(_, tsc)| *tsc)
        .or(detected.first())
        .map(|(khz, _)| *khz)
        .ok_or("linux never logged `tsc: Detected ... MHz`")?;
    if !within_1_percent(conduit, linux) {
        return Err(format!(
            "Linux detected a {linux} kHz TSC, Conduit measured {conduit} kHz: more than 1 % apart"
        ));
    }
    out.push(format!("linux_tsc_khz={linux} conduit_tsc_khz={conduit}"));

    // Must-show 2: the local APIC timer counts.
    let loc: Vec<u64> = lines
        .iter()
        .filter_map(|l| LOC.captures(l)?[1].parse().ok())
        .collect();
    let [first, second, ..] = loc[..] else {
        return Err(format!(
            "{} `LOC:` line(s) of /proc/interrupts, expected 2",
            loc.len()
        ));
    };
    if second <= first {
        return Err(format!(
            "the local APIC timer count did not rise across `sleep 2`: {first} then {second}"
        ));
    }
    out.push(format!("linux_local_timer_interrupts={first}->{second}"));

    // Issue 14, Must-show 1: the e1000's interrupts, Linux's count against Conduit's.
    let (at, linux) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| Some((i, ETH0.captures(l)?[1].parse::<u64>().ok()?)))
        .ok_or("linux's /proc/interrupts has no eth0 line")?;
    let conduit: u64 = lines[at..]
        .iter()
        .find_map(|l| ROUTED.captures(l)?[1].parse().ok())
        .ok_or("no `vms` count of the device interrupts routed to linux after its eth0 line")?;
    if linux.abs_diff(conduit) > INTX_SLACK {
        return Err(format!(
            "Linux counted {linux} e1000 interrupts, Conduit routed {conduit} to it: more than \
             {INTX_SLACK} apart"
        ));
    }
    out.push(format!(
        "linux_eth0_interrupts={linux} conduit_routed={conduit}"
    ));
    Ok(())
}

/// The figures only printed (Must-show 6).
fn measured(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    // Instructions from the first VM entry to /init (the figure `scripts/bench --linux` reads).
    if let Some(n) = crate::linux_bare::conduit_figure(&lines.join("\n"), "linux") {
        out.push(format!("linux_guest_to_init_instr={n}"));
    }
    // The exits of the boot: `vms` typed at "conduit-initramfs: ready".
    if let Some(ready) = find(lines, 0, "linux: conduit-initramfs: ready")
        && let Some((_, us, exits, by_reason)) = vms_linux(lines, ready)
    {
        out.push(format!(
            "linux_boot_guest_ms={}.{:03}",
            us / 1000,
            us % 1000
        ));
        out.push(format!("linux_boot_exits={exits} ({by_reason})"));
    }
    // Idle: uptime (raw), `vms`, uptime (logged), `vms`.
    let idle = (|| {
        let (u1_at, u1) = lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| Some((i, centis(&UPTIME_RAW.captures(l)?)?)))?;
        let (a_at, _, a, _) = vms_linux(lines, u1_at)?;
        let (u2_at, u2) = lines
            .iter()
            .enumerate()
            .skip(a_at)
            .find_map(|(i, l)| Some((i, centis(&UPTIME_LOGGED.captures(l)?)?)))?;
        let (_, _, b, _) = vms_linux(lines, u2_at)?;
        Some((b.checked_sub(a)?, u2.checked_sub(u1)?))
    })();
    if let Some((exits, centis)) = idle {
        // Exits per second, two decimals, integer arithmetic.
        let per_s_x100 = exits * 10_000 / centis.max(1);
        out.push(format!(
            "linux_idle_exits_per_s={}.{:02} ({exits} exits in {}.{:02} s of guest time; goal: at most 50)",
            per_s_x100 / 100,
            per_s_x100 % 100,
            centis / 100,
            centis % 100
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::check;

    const LOG: &str = "\
[     100] INFO  hw::time: time: TSC 50.001 MHz (measured against the 8254's channel 2)
[     200] INFO  sched: guest \"linux\": first VM entry
[    9000] INFO  conduit_kernel::guest::vuart: linux: [    0.000000] tsc: Detected 50.000 MHz processor
[    9001] INFO  conduit_kernel::guest::vuart: linux: [    0.000000] tsc: Detected 50.001 MHz TSC
conduit> \x1b[K[  500200] INFO  conduit_kernel::guest::vuart: linux: [    9.100000] Run /init as init process
[  600000] INFO  conduit_kernel::guest::vuart: linux: conduit-initramfs: ready (6.1.0-57-amd64)
conduit> vms
3 guest(s), 2 runnable, 0 not created; TSC 50.001 MHz (measured)
  linux: running; 192 MiB at host 0x1000000, VPID 1, 9000.500 ms in guest
    exits: 4000 (HLT: 10, I/O instruction: 3990)
  LOC:        100   Local timer interrupts\r
LOC:        350   Local timer interrupts
[  700000] INFO  conduit_kernel::guest::vuart: linux:  17:         40   IO-APIC  17-fasteoi   eth0
    device interrupts routed to it: 42
20.50 19.00
console: detached from linux; back in the shell
conduit> vms
  linux: halted (in HLT until its next slice); 192 MiB at host 0x1000000, VPID 1, 9100.000 ms in guest
    exits: 5000 (HLT: 100)
[  900000] INFO  conduit_kernel::guest::vuart: linux: / # .[6n30.50 29.00
conduit> vms
  linux: halted (in HLT until its next slice); 192 MiB at host 0x1000000, VPID 1, 9200.000 ms in guest
    exits: 5400 (HLT: 300)
";

    /// The figures of a run that must pass.
    fn good(log: &str) -> Vec<String> {
        let c = check(log);
        assert_eq!(c.problem, None);
        c.figures
    }

    /// What is wrong with a run that must fail.
    fn bad(log: &str) -> String {
        check(log).problem.expect("a problem")
    }

    #[test]
    fn figures_of_a_good_run() {
        assert_eq!(
            good(LOG),
            [
                "linux_tsc_khz=50001 conduit_tsc_khz=50001",
                "linux_local_timer_interrupts=100->350",
                "linux_eth0_interrupts=40 conduit_routed=42",
                "linux_guest_to_init_instr=500000",
                "linux_boot_guest_ms=9000.500",
                "linux_boot_exits=4000 (HLT: 10, I/O instruction: 3990)",
                "linux_idle_exits_per_s=40.00 (400 exits in 10.00 s of guest time; goal: at most 50)",
            ]
        );
    }

    #[test]
    fn the_processor_rate_counts_when_no_tsc_rate_is_printed() {
        let log = LOG.replace("tsc: Detected 50.001 MHz TSC", "other");
        assert_eq!(good(&log)[0], "linux_tsc_khz=50000 conduit_tsc_khz=50001");
    }

    #[test]
    fn a_tsc_rate_off_by_more_than_1_percent_fails() {
        // CPUID 0x15 of Bochs' tigerlake model, if it reached Linux unfiltered.
        let log = LOG.replace("Detected 50.001 MHz TSC", "Detected 2419.200 MHz TSC");
        let e = bad(&log);
        assert!(e.contains("2419200 kHz"), "{e}");
        bad(&LOG.replace("Detected 50.001 MHz TSC", "Detected 50.600 MHz TSC"));
    }

    #[test]
    fn a_timer_count_that_does_not_rise_fails() {
        let log = LOG.replace("350   Local", "100   Local");
        assert!(bad(&log).contains("did not rise"));
        let log = LOG.replace("LOC:        350   Local timer interrupts\n", "");
        assert!(bad(&log).contains("1 `LOC:`"));
    }

    #[test]
    fn interrupt_counts_that_disagree_or_are_missing_fail() {
        let e = bad(&LOG.replace("routed to it: 42", "routed to it: 46"));
        assert!(e.contains("40 e1000 interrupts") && e.contains("46"), "{e}");
        assert!(good(&LOG.replace("routed to it: 42", "routed to it: 45")).len() == 7);
        assert!(bad(&LOG.replace("fasteoi   eth0", "fasteoi   eth1")).contains("no eth0 line"));
        assert!(bad(&LOG.replace("    device interrupts routed", "x")).contains("no `vms` count"));
    }

    #[test]
    fn missing_rates_fail_and_the_measured_figures_are_still_printed() {
        let c = check(&LOG.replace("tsc: Detected", "tsc: found"));
        assert!(c.problem.expect("no rate").contains("tsc: Detected"));
        assert_eq!(c.figures.len(), 4);
        assert!(c.figures[0].starts_with("linux_guest_to_init_instr="));
        bad(&LOG.replace("time: TSC", "time: no"));
    }

    #[test]
    fn figures_without_their_lines_are_left_out() {
        let log = LOG
            .replace("console: detached", "x")
            .replace("ms in guest", "ms");
        let f = good(&log);
        assert_eq!(f.len(), 4);
        assert!(f[3].starts_with("linux_guest_to_init_instr="));
    }
}
