use super::*;

/// A calibration failure, as the kernel would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NoReference;

fn khz(k: u64) -> Rate {
    Rate::from_khz(k).expect("non-zero")
}

/// Leaf 0x15 of a Tiger Lake part (Bochs' `tigerlake` model): 38.4 MHz crystal × 126 / 2.
const TIGERLAKE_15: Leaf15 = Leaf15 {
    denominator: 2,
    numerator: 126,
    crystal_hz: 38_400_000,
};

const fn leaf16(mhz: u32) -> Leaf16 {
    Leaf16 { eax: mhz }
}

#[test]
fn leaf15_arithmetic() {
    assert_eq!(TIGERLAKE_15.rate(), Ok(khz(2_419_200)));
    // A 24 MHz crystal, ratio 188/2 (a Skylake client part): 2256 MHz.
    let skylake = Leaf15 {
        denominator: 2,
        numerator: 188,
        crystal_hz: 24_000_000,
    };
    assert_eq!(skylake.rate(), Ok(khz(2_256_000)));
    // Ratios that do not divide evenly are rounded to the nearest kHz: 25 MHz × 7 / 3.
    let odd = Leaf15 {
        denominator: 3,
        numerator: 7,
        crystal_hz: 25_000_000,
    };
    assert_eq!(odd.rate(), Ok(khz(58_333)));
    // The largest values the registers can hold do not overflow.
    let max = Leaf15 {
        denominator: 1,
        numerator: u32::MAX,
        crystal_hz: u32::MAX,
    };
    assert_eq!(
        max.rate().map(Rate::khz),
        // (2^32 - 1)^2 Hz = 18446744065119617025 Hz.
        Ok(18_446_744_065_119_617)
    );
}

#[test]
fn leaf15_zero_fields_mean_not_enumerated() {
    let no_numerator = Leaf15 {
        numerator: 0,
        ..TIGERLAKE_15
    };
    let no_denominator = Leaf15 {
        denominator: 0,
        ..TIGERLAKE_15
    };
    let no_crystal = Leaf15 {
        crystal_hz: 0,
        ..TIGERLAKE_15
    };
    assert_eq!(no_numerator.rate(), Err(Leaf15Gap::NoRatio));
    assert_eq!(no_denominator.rate(), Err(Leaf15Gap::NoRatio));
    assert_eq!(no_crystal.rate(), Err(Leaf15Gap::NoCrystal));
}

#[test]
fn leaf16_uses_the_low_16_bits() {
    assert_eq!(leaf16(2600).rate(), Some(khz(2_600_000)));
    // Bits 31:16 are reserved.
    assert_eq!(leaf16(0xabcd_0000 | 3000).rate(), Some(khz(3_000_000)));
    assert_eq!(leaf16(0).rate(), None);
    assert_eq!(leaf16(0xffff_0000).rate(), None);
}

#[test]
fn leaf15_present_and_right_agrees() {
    let cpuid = Cpuid {
        leaf15: Some(TIGERLAKE_15),
        leaf16: Some(leaf16(2400)),
    };
    // Measured 0.3 % below the claim.
    let s = select(Ok::<_, NoReference>(khz(2_412_000)), &cpuid);
    assert_eq!(
        s.chosen,
        Some(Choice {
            rate: khz(2_412_000),
            source: Source::Measured
        })
    );
    assert_eq!(s.disagreement(), None);
    assert_eq!(
        s.comparison().to_string(),
        "CPUID 0x15 claims 2419.200 MHz: agrees within 1 %"
    );
}

#[test]
fn leaf15_present_and_wrong_is_ignored() {
    // Bochs: the Tiger Lake model claims 2419.2 MHz; its TSC counts 50 M instructions a second.
    let cpuid = Cpuid {
        leaf15: Some(TIGERLAKE_15),
        leaf16: Some(leaf16(2400)),
    };
    let s = select(Ok::<_, NoReference>(khz(50_001)), &cpuid);
    assert_eq!(
        s.chosen,
        Some(Choice {
            rate: khz(50_001),
            source: Source::Measured
        })
    );
    let d = s
        .disagreement()
        .expect("a 48x difference is a disagreement");
    assert_eq!(d.measured, khz(50_001));
    assert_eq!(d.claim.source, Source::Leaf15);
    assert_eq!(d.claim.rate, khz(2_419_200));
    // (2419200 - 50001) / 50001 = 47.3830... = 4738.30 %.
    assert_eq!(d.off, 473_830);
    assert_eq!(
        s.comparison().to_string(),
        "CPUID 0x15 claims 2419.200 MHz: ignored (4738.30 % off)"
    );
}

#[test]
fn the_one_percent_boundary() {
    let m = khz(100_000);
    assert!(m.agrees_with(khz(101_000)));
    assert!(m.agrees_with(khz(99_000)));
    assert!(!m.agrees_with(khz(101_001)));
    assert!(!m.agrees_with(khz(98_999)));
    let claim = |mhz: u32| Cpuid {
        leaf15: None,
        leaf16: Some(leaf16(mhz)),
    };
    assert_eq!(
        select(Ok::<_, NoReference>(m), &claim(101)).disagreement(),
        None
    );
    let d = select(Ok::<_, NoReference>(m), &claim(102)).disagreement();
    assert_eq!(
        d.map(|d| (d.claim.source, d.off)),
        Some((Source::Leaf16, 200))
    );
}

#[test]
fn leaf15_absent_measurement_alone() {
    // QEMU TCG: no leaf 0x15 or 0x16; ~2.6 GHz measured.
    let s = select(Ok::<_, NoReference>(khz(2_612_906)), &Cpuid::default());
    assert_eq!(
        s.chosen,
        Some(Choice {
            rate: khz(2_612_906),
            source: Source::Measured
        })
    );
    assert_eq!(s.claim, None);
    assert_eq!(s.disagreement(), None);
    assert_eq!(s.comparison().to_string(), "CPUID reports no TSC frequency");
}

#[test]
fn leaf15_without_crystal_falls_to_leaf16_and_says_why() {
    let cpuid = Cpuid {
        leaf15: Some(Leaf15 {
            crystal_hz: 0,
            ..TIGERLAKE_15
        }),
        leaf16: Some(leaf16(2400)),
    };
    assert_eq!(
        cpuid.claim(),
        Some(Choice {
            rate: khz(2_400_000),
            source: Source::Leaf16
        })
    );
    let s = select(Ok::<_, NoReference>(khz(2_400_500)), &cpuid);
    assert_eq!(s.leaf15_gap, Some(Leaf15Gap::NoCrystal));
    assert_eq!(
        s.comparison().to_string(),
        "CPUID 0x16 claims 2400.000 MHz: agrees within 1 %"
    );
    let nothing = Cpuid {
        leaf15: cpuid.leaf15,
        leaf16: None,
    };
    let s = select(Ok::<_, NoReference>(khz(2_400_500)), &nothing);
    assert_eq!(
        s.comparison().to_string(),
        "CPUID reports no TSC frequency (leaf 0x15 enumerates no crystal clock frequency)"
    );
}

#[test]
fn calibration_failed_falls_back_to_leaf15() {
    let cpuid = Cpuid {
        leaf15: Some(TIGERLAKE_15),
        leaf16: Some(leaf16(2400)),
    };
    let s = select(Err(NoReference), &cpuid);
    assert_eq!(
        s.chosen,
        Some(Choice {
            rate: khz(2_419_200),
            source: Source::Leaf15
        })
    );
    assert_eq!(s.measurement, Err(NoReference));
    // Nothing to disagree with.
    assert_eq!(s.disagreement(), None);
    assert_eq!(s.comparison().to_string(), "CPUID 0x15 claims 2419.200 MHz");
}

#[test]
fn calibration_failed_falls_back_to_leaf16_only() {
    let cpuid = Cpuid {
        leaf15: None,
        leaf16: Some(leaf16(3100)),
    };
    let s = select(Err(NoReference), &cpuid);
    assert_eq!(
        s.chosen,
        Some(Choice {
            rate: khz(3_100_000),
            source: Source::Leaf16
        })
    );
}

#[test]
fn calibration_failed_without_cpuid_gives_no_rate() {
    let s = select(Err(NoReference), &Cpuid::default());
    assert_eq!(s.chosen, None);
    // Leaves present but empty are no better.
    let empty = Cpuid {
        leaf15: Some(Leaf15 {
            denominator: 0,
            numerator: 0,
            crystal_hz: 0,
        }),
        leaf16: Some(leaf16(0)),
    };
    let s = select(Err(NoReference), &empty);
    assert_eq!(s.chosen, None);
    assert_eq!(s.leaf15_gap, Some(Leaf15Gap::NoRatio));
}

#[test]
fn measured_from_reference_ticks() {
    // 500,005 TSC ticks while the PM timer (3.579545 MHz) counted 35,795 ticks (10 ms): 50.001 MHz.
    assert_eq!(
        Rate::measured(500_005, 35_795, 3_579_545),
        Some(khz(50_001))
    );
    // 26,129,060 TSC ticks over 11,932 ticks of the 8254 (1.193182 MHz): 2612.867 MHz (rounded
    // from 2612866.58 kHz).
    assert_eq!(
        Rate::measured(26_129_060, 11_932, 1_193_182).map(Rate::khz),
        Some(2_612_867)
    );
    // A TSC that did not move, or a reference that did not, gives nothing.
    assert_eq!(Rate::measured(0, 35_795, 3_579_545), None);
    assert_eq!(Rate::measured(500_000, 0, 3_579_545), None);
    // Extremes do not overflow.
    assert_eq!(
        Rate::measured(u64::MAX, 1, u64::MAX).map(Rate::khz),
        Some(u64::MAX)
    );
}

#[test]
fn median_of_windows() {
    // One window stretched by the emulator being descheduled does not count.
    let mut w = [khz(50_001), khz(73_000), khz(49_998)];
    assert_eq!(median(&mut w), Some(khz(50_001)));
    assert_eq!(median(&mut []), None);
}

#[test]
fn conversions() {
    let bochs = khz(50_001);
    assert_eq!(bochs.ticks_in_us(1000), 50_001);
    assert_eq!(bochs.ticks_in_ms(50), 2_500_050);
    assert_eq!(bochs.us_in_ticks(50_001), 1000);
    assert_eq!(bochs.ticks_in_us(1), 50);
    let qemu = khz(2_612_906);
    assert_eq!(qemu.ticks_in_us(1000), 2_612_906);
    assert_eq!(qemu.ticks_in_us(1), 2612);
    assert_eq!(qemu.us_in_ticks(2_612_906 * 3), 3000);
    // An hour in ticks, and back.
    let hour_us = 3_600_000_000;
    assert_eq!(qemu.us_in_ticks(qemu.ticks_in_us(hour_us)), hour_us);
    // No overflow: saturates.
    assert_eq!(qemu.ticks_in_us(u64::MAX), u64::MAX);
    assert_eq!(qemu.ticks_in_ms(u64::MAX), u64::MAX);
    assert_eq!(khz(1).us_in_ticks(u64::MAX), u64::MAX);
    // Ten years of ticks at 10 GHz (3.2e18, near u64's 1.8e19) still convert exactly: the
    // products are taken in 128 bits.
    let ten_ghz = khz(10_000_000);
    let decade_us = 10 * 365 * 24 * 3600 * 1_000_000;
    assert_eq!(
        ten_ghz.us_in_ticks(ten_ghz.ticks_in_us(decade_us)),
        decade_us
    );
}

#[test]
fn display_keeps_khz() {
    assert_eq!(khz(50_001).to_string(), "50.001 MHz");
    assert_eq!(khz(2_612_906).to_string(), "2612.906 MHz");
    assert_eq!(khz(999).to_string(), "0.999 MHz");
    assert_eq!(Rate::from_hz(499), None);
    assert_eq!(Rate::from_hz(500), Some(khz(1)));
}

#[test]
fn guests_are_told_the_chosen_rate() {
    for k in [50_004, 2_598_831, 2_419_200, 1, 4_294_967_295] {
        let rate = khz(k);
        assert_eq!(guest_leaf15(rate).rate(), Ok(rate), "{k} kHz");
    }
    assert_eq!(guest_leaf16(khz(50_004)), [50, 0, 0]);
    assert_eq!(guest_leaf16(khz(2_598_831)), [2599, 0, 0]);
    assert_eq!(guest_leaf16(khz(400)), [1, 0, 0]);
    assert_eq!(guest_leaf16(khz(100_000_000)), [0xffff, 0, 0]);
    // Read back as the kernel reads a CPU's leaves: the guest's claim agrees with the rate.
    let seen = Cpuid {
        leaf15: Some(guest_leaf15(khz(50_004))),
        leaf16: Some(Leaf16 {
            eax: guest_leaf16(khz(50_004))[0],
        }),
    };
    let s = select(Ok::<_, NoReference>(khz(50_004)), &seen);
    assert_eq!(s.disagreement(), None);
}
