//! `[[guest.device]]`: the PCI functions a guest gets. Syntax is checked at build time (and a
//! function given to two guests is refused); whether the function exists, and whether a VF index is
//! below the PF's TotalVFs, only the machine can tell: the kernel checks that at boot.

use crate::error::{ConfigError, invalid};
use crate::model::{DeviceAssignment, DeviceSel};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// Most functions one guest may be given.
pub const MAX_DEVICES_PER_GUEST: usize = 16;
/// Largest VF index (the SR-IOV capability's TotalVFs is a 16-bit field).
pub const MAX_VF_INDEX: i64 = 0xffff;

/// One `[[guest.device]]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// `"bb:dd.f"` (hex, segment 0), `"ssss:bb:dd.f"` (hex PCI segment first) or `"vvvv:dddd"`
    /// (hex vendor:device, the first such function).
    pub function: Option<String>,
    /// The index of one of that physical function's SR-IOV virtual functions.
    pub vf: Option<i64>,
}

fn hex<T: TryFrom<u32>>(s: &str, max_digits: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16)
        .ok()
        .and_then(|v| T::try_from(v).ok())
}

/// Parses `"bb:dd.f"` (segment 0), `"ssss:bb:dd.f"` or `"vvvv:dddd"`.
pub fn parse_function(s: &str) -> Option<DeviceSel> {
    let (left, right) = s.split_once(':')?;
    let (segment, left, right) = match right.split_once(':') {
        Some((bus, rest)) => (hex(left, 4)?, bus, rest),
        None => (0, left, right),
    };
    if let Some((dev, func)) = right.split_once('.') {
        let bus: u8 = hex(left, 2)?;
        let dev: u8 = hex(dev, 2).filter(|d| *d < 32)?;
        let func: u8 = hex(func, 1).filter(|f| *f < 8)?;
        return Some(DeviceSel::Bdf {
            segment,
            bus,
            dev,
            func,
        });
    }
    if s.matches(':').count() > 1 {
        return None;
    }
    if left.len() == 4 && right.len() == 4 {
        let vendor: u16 = hex(left, 4)?;
        let device: u16 = hex(right, 4)?;
        if vendor == 0xffff {
            return None;
        }
        return Some(DeviceSel::Id { vendor, device });
    }
    None
}

/// Checks guest `i`'s device tables.
pub fn check(i: usize, raws: &[RawDevice]) -> Result<Vec<DeviceAssignment>, ConfigError> {
    if raws.len() > MAX_DEVICES_PER_GUEST {
        return Err(invalid(
            &format!("guest[{i}].device"),
            format!(
                "{} functions: at most {MAX_DEVICES_PER_GUEST} per guest",
                raws.len()
            ),
        ));
    }
    let mut out: Vec<DeviceAssignment> = Vec::with_capacity(raws.len());
    for (j, raw) in raws.iter().enumerate() {
        let key = |k: &str| format!("guest[{i}].device[{j}].{k}");
        let text = raw.function.as_deref().ok_or_else(|| {
            invalid(
                &key("function"),
                "missing: \"bb:dd.f\", \"ssss:bb:dd.f\" or \"vvvv:dddd\"",
            )
        })?;
        let function = parse_function(text).ok_or_else(|| {
            invalid(
                &key("function"),
                format!("{text:?} is neither a [segment:]bus:device.function (\"01:00.0\", \"0001:02:00.0\") nor a vendor:device (\"8086:10c9\")"),
            )
        })?;
        let vf = match raw.vf {
            None => None,
            Some(v) => Some(
                u16::try_from(v)
                    .ok()
                    .filter(|_| (0..=MAX_VF_INDEX).contains(&v))
                    .ok_or_else(|| {
                        invalid(&key("vf"), format!("{v} is not a VF index (0-65535)"))
                    })?,
            ),
        };
        let assignment = DeviceAssignment { function, vf };
        if let Some(k) = out.iter().position(|d| *d == assignment) {
            return Err(invalid(
                &key("function"),
                format!("the same function as guest[{i}].device[{k}]"),
            ));
        }
        out.push(assignment);
    }
    Ok(out)
}

/// Refuses one function given to two guests (same selector and VF index).
pub fn check_unique(guests: &[(String, Vec<DeviceAssignment>)]) -> Result<(), ConfigError> {
    for (i, (name, devices)) in guests.iter().enumerate() {
        for (j, d) in devices.iter().enumerate() {
            for (other, (other_name, other_devices)) in guests.iter().enumerate().take(i) {
                if other_devices.contains(d) {
                    return Err(invalid(
                        &format!("guest[{i}].device[{j}].function"),
                        format!(
                            "{d} of guest {name:?} is already given to guest[{other}] {other_name:?}"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(f: &str, vf: Option<i64>) -> RawDevice {
        RawDevice {
            function: Some(f.into()),
            vf,
        }
    }

    #[test]
    fn parses_bdf_and_ids() {
        assert_eq!(
            parse_function("01:00.0"),
            Some(DeviceSel::Bdf {
                segment: 0,
                bus: 1,
                dev: 0,
                func: 0
            })
        );
        assert_eq!(
            parse_function("ff:1f.7"),
            Some(DeviceSel::Bdf {
                segment: 0,
                bus: 0xff,
                dev: 0x1f,
                func: 7
            })
        );
        assert_eq!(
            parse_function("0001:02:00.0"),
            Some(DeviceSel::Bdf {
                segment: 1,
                bus: 2,
                dev: 0,
                func: 0
            })
        );
        assert_eq!(
            parse_function("ffff:ff:1f.7").map(|s| format!(
                "{}",
                DeviceAssignment {
                    function: s,
                    vf: None
                }
            )),
            Some("ffff:ff:1f.7".to_string())
        );
        assert_eq!(
            parse_function("0000:02:00.0"),
            parse_function("02:00.0"),
            "segment 0 spelt out is segment 0"
        );
        assert_eq!(
            parse_function("8086:10c9"),
            Some(DeviceSel::Id {
                vendor: 0x8086,
                device: 0x10c9
            })
        );
        for bad in [
            "",
            "01:00",
            "01:20.0",
            "01:00.8",
            "1:2:3",
            "808:10c9",
            "ffff:0000",
            "0g:00.0",
            "01:00.00",
            "00001:02:00.0",
            "0001:8086:10c9",
            "0001:02:00",
            "0:1:02:00.0",
            ":02:00.0",
            "000g:02:00.0",
        ] {
            assert_eq!(parse_function(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = check(2, &[raw("01:00.0", None), raw("zz", None)]).unwrap_err();
        assert!(
            e.to_string().starts_with("`guest[2].device[1].function`"),
            "{e}"
        );
        let e = check(0, &[raw("01:00.0", Some(-1))]).unwrap_err();
        assert!(e.to_string().starts_with("`guest[0].device[0].vf`"), "{e}");
        let e = check(0, &[raw("01:00.0", Some(70_000))]).unwrap_err();
        assert!(e.to_string().starts_with("`guest[0].device[0].vf`"), "{e}");
        let e = check(
            0,
            &[RawDevice {
                function: None,
                vf: None,
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = check(0, &[raw("01:00.0", Some(1)), raw("01:00.0", Some(1))]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the same function as guest[0].device[0]"),
            "{e}"
        );
        let many: Vec<_> = (0..17)
            .map(|d| raw(&format!("00:{d:02x}.0"), None))
            .collect();
        assert!(check(0, &many).is_err());
    }

    #[test]
    fn a_vf_index_distinguishes_functions_but_not_across_guests() {
        let a = check(0, &[raw("01:00.0", Some(0)), raw("01:00.0", Some(1))]).unwrap();
        assert_eq!(a.len(), 2);
        let b = check(1, &[raw("01:00.0", Some(1))]).unwrap();
        let e = check_unique(&[("a".into(), a), ("b".into(), b)]).unwrap_err();
        assert!(
            e.to_string().starts_with("`guest[1].device[0].function`"),
            "{e}"
        );
        assert!(
            e.to_string().contains("already given to guest[0] \"a\""),
            "{e}"
        );
    }
}
