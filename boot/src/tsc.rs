//! A check that no boot log contradicts the kernel's one TSC rate, applied to every scenario's log
//! after its expectations (which cannot do arithmetic).
//!
//! The kernel states the rate once: `time: TSC 50.001 MHz (measured against ...; CPUID 0x15
//! claims 2419.200 MHz: ignored (...))`, or without a measurement `time: the TSC could not be
//! calibrated (...); TSC 2419.200 MHz as CPUID 0x15 states`. Then every figure derived from it must agree with it
//! within 1 %:
//! - `<n> ms = <t> TSC ticks` and `<n> us = <t> TSC ticks`, also with words between unit and `=`
//!   (watchdog budgets, time slices, the APIC timer's calibration window): `t` is `n` at the rate;
//! - `<t> TSC ticks per ms` (the virtual timer);
//! - every `TSC <r> MHz`, `TSC at <r> MHz` or `TSC ticks at <r> MHz`: `r` is the rate itself;
//! - a CPUID figure the kernel says `agrees within 1 %` does.
//!
//! A log without the `time:` line (a run that failed earlier) passes: its expectations fail it.

use regex::Regex;
use std::sync::LazyLock;

/// The kernel's statement of the rate.
static RATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\btime: .*?\bTSC ([0-9]+)\.([0-9]{3}) MHz").expect("valid pattern")
});
/// `<n> ms = <t> TSC ticks`, `<n> us = <t> TSC ticks`, `<n> ms per request = <t> TSC ticks`.
static SPAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]+) (ms|us)\b[a-z ]* = ([0-9]+) TSC ticks").expect("valid pattern")
});
/// `<t> TSC ticks per ms`.
static PER_MS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([0-9]+) TSC ticks per ms").expect("valid pattern"));
/// A rate quoted again.
static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"TSC (?:ticks )?(?:at )?([0-9]+)\.([0-9]{3}) MHz").expect("valid pattern")
});
/// A CPUID claim the kernel found in agreement.
static AGREES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"claims ([0-9]+)\.([0-9]{3}) MHz: agrees within 1 %").expect("valid pattern")
});

fn khz(mhz: &str, frac: &str) -> Option<u64> {
    Some(mhz.parse::<u64>().ok()? * 1000 + frac.parse::<u64>().ok()?)
}

/// Whether `actual` is within 1 % of `expected`.
fn within_1_percent(expected: u128, actual: u128) -> bool {
    expected.abs_diff(actual) * 100 <= expected
}

/// Checks `log` (a whole serial log); returns the rate in kHz if the log states one, or what
/// contradicts it.
pub fn check(log: &str) -> Result<Option<u64>, String> {
    let mut rate = None;
    for line in log.lines() {
        let Some(c) = RATE.captures(line) else {
            continue;
        };
        let k = khz(&c[1], &c[2]).ok_or_else(|| format!("unreadable rate in `{line}`"))?;
        match rate {
            Some(r) if r != k => return Err(format!("a second TSC rate: `{line}`")),
            _ => rate = Some(k),
        }
    }
    let Some(rate) = rate else {
        return Ok(None);
    };
    let rate128 = u128::from(rate);
    for line in log.lines() {
        for c in SPAN.captures_iter(line) {
            let (n, t) = (c[1].parse::<u128>(), c[3].parse::<u128>());
            let (Ok(n), Ok(t)) = (n, t) else {
                return Err(format!("unreadable figure in `{line}`"));
            };
            let expected = match &c[2] {
                "ms" => n * rate128,
                _ => n * rate128 / 1000,
            };
            if !within_1_percent(expected, t) {
                return Err(format!(
                    "`{}` is not {} {} at {rate} kHz (expected ~{expected} ticks): `{line}`",
                    &c[0], &c[1], &c[2]
                ));
            }
        }
        for c in PER_MS.captures_iter(line) {
            let t = c[1]
                .parse::<u128>()
                .map_err(|_| format!("unreadable figure in `{line}`"))?;
            if !within_1_percent(rate128, t) {
                return Err(format!("`{}` contradicts {rate} kHz: `{line}`", &c[0]));
            }
        }
        for c in QUOTED.captures_iter(line) {
            if khz(&c[1], &c[2]) != Some(rate) {
                return Err(format!(
                    "`{}` is not the rate ({rate} kHz): `{line}`",
                    &c[0]
                ));
            }
        }
        for c in AGREES.captures_iter(line) {
            let claimed = khz(&c[1], &c[2]).ok_or_else(|| format!("unreadable `{line}`"))?;
            if !within_1_percent(rate128, u128::from(claimed)) {
                return Err(format!("CPUID does not agree within 1 %: `{line}`"));
            }
        }
    }
    Ok(Some(rate))
}

#[cfg(test)]
mod tests {
    use super::check;

    const BOCHS: &str = "\
[1] INFO hw::time: time: TSC 50.001 MHz (measured against the 8254's channel 2, median of 3 windows of 10 ms; CPUID 0x15 claims 2419.200 MHz: ignored (4738.30 % off))
[2] INFO conduit_kernel::irq: apic: timer: 3125 counts/ms (divide by 16, measured over 10 ms = 500010 TSC ticks at 50.001 MHz); hypervisor tick every 10 ms
[3] INFO conduit_kernel::guest: guest \"a\": 4 MiB, VPID 1, slice 1000 us = 50001 TSC ticks (50001 preemption-timer ticks), virtual timer 50001 TSC ticks per ms (TSC 50.001 MHz), entry X
[4] INFO conduit_kernel::control: control: watchdog 50 ms per request = 2500050 TSC ticks, 2000 ms to build a function = 100002000 TSC ticks (TSC 50.001 MHz, measured)
";

    #[test]
    fn consistent_figures_pass() {
        assert_eq!(check(BOCHS), Ok(Some(50_001)));
    }

    #[test]
    fn a_log_without_the_rate_passes_unchecked() {
        assert_eq!(check("hello\nworld\n"), Ok(None));
    }

    #[test]
    fn a_slice_off_by_two_percent_fails() {
        let log = BOCHS.replace("1000 us = 50001 TSC", "1000 us = 51001 TSC");
        let e = check(&log).expect_err("2 % off");
        assert!(e.contains("1000 us = 51001 TSC ticks"), "{e}");
    }

    #[test]
    fn a_watchdog_from_another_rate_fails() {
        // The old bug: the watchdog at CPUID's 2419 MHz while the TSC runs at 50 MHz.
        let log = BOCHS.replace(
            "50 ms per request = 2500050",
            "50 ms per request = 120960000",
        );
        assert!(check(&log).is_err());
    }

    #[test]
    fn a_second_rate_fails() {
        let log = BOCHS.replace("(TSC 50.001 MHz, measured)", "(TSC 2419.200 MHz, measured)");
        assert!(check(&log).is_err());
        let log = format!("{BOCHS}[5] INFO x: time: TSC 2419.200 MHz (as CPUID 0x15 states)\n");
        assert!(check(&log).is_err());
    }

    #[test]
    fn virtual_timer_per_ms_is_checked() {
        let log = BOCHS.replace("50001 TSC ticks per ms", "1000 TSC ticks per ms");
        assert!(check(&log).is_err());
    }

    #[test]
    fn a_rate_from_cpuid_is_checked_too() {
        let log = "time: the TSC could not be calibrated (no ACPI PM timer; the 8254's channel 2 output never rose (2^26 reads or 2^31 TSC ticks of port 0x61)); TSC 2419.200 MHz as CPUID 0x15 states (not verified)\nsriov: waited 100 ms after VF Enable (TSC at 2419.200 MHz, as CPUID 0x15 states)";
        assert_eq!(check(log), Ok(Some(2_419_200)));
        assert!(check(&log.replace("TSC at 2419", "TSC at 2519")).is_err());
    }

    #[test]
    fn an_agreeing_claim_must_agree() {
        let ok = "time: TSC 2600.000 MHz (measured against X; CPUID 0x16 claims 2610.000 MHz: agrees within 1 %)";
        assert_eq!(check(ok), Ok(Some(2_600_000)));
        let bad = ok.replace("2610.000", "2700.000");
        assert!(check(&bad).is_err());
    }
}
