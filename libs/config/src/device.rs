//! `[[guest.device]]`: the PCI functions a guest gets. Syntax is checked at build time (and a
//! function given to two guests is refused); whether the function exists, and whether a VF index is
//! below the PF's TotalVFs, only the machine can tell: the kernel checks that at boot.
//!
//! A VF may carry its network identity: `mac` (the address the PF's mailbox service gives it,
//! which the guest then may not change; without it the kernel derives a locally administered
//! default) and `vlans` (the VLAN ids the guest may join, none by default). See
//! `docs/igb-mailbox.md`.

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
    /// The VF's MAC address, `"xx:xx:xx:xx:xx:xx"` (hex).
    pub mac: Option<String>,
    /// VLAN ids (1-4094) the VF may join.
    pub vlans: Option<Vec<i64>>,
}

/// Most VLAN ids one VF may be given.
pub const MAX_VLANS: usize = 32;

/// Parses `"xx:xx:xx:xx:xx:xx"` (two hex digits per octet).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for o in &mut out {
        let p = parts.next().filter(|p| p.len() == 2)?;
        *o = hex(p, 2)?;
    }
    parts.next().is_none().then_some(out)
}

/// The VF's `mac` and `vlans` keys, checked.
fn net(
    raw: &RawDevice,
    vf: Option<u16>,
    key: &dyn Fn(&str) -> String,
) -> Result<(Option<[u8; 6]>, Vec<u16>), ConfigError> {
    let mac = match raw.mac.as_deref() {
        None => None,
        Some(_) if vf.is_none() => {
            return Err(invalid(
                &key("mac"),
                "only a VF's address is set here (give `vf` too)",
            ));
        }
        Some(text) => {
            let mac = parse_mac(text).ok_or_else(|| {
                invalid(
                    &key("mac"),
                    format!("{text:?} is not a MAC address (\"02:00:00:00:00:01\")"),
                )
            })?;
            if mac[0] & 1 != 0 {
                return Err(invalid(
                    &key("mac"),
                    format!("{text} is a multicast address (bit 0 of the first octet is set)"),
                ));
            }
            if mac == [0; 6] {
                return Err(invalid(&key("mac"), "the all-zero address"));
            }
            Some(mac)
        }
    };
    let mut vlans: Vec<u16> = Vec::new();
    if let Some(list) = raw.vlans.as_deref() {
        if vf.is_none() {
            return Err(invalid(
                &key("vlans"),
                "only a VF's VLANs are set here (give `vf` too)",
            ));
        }
        if list.len() > MAX_VLANS {
            return Err(invalid(
                &key("vlans"),
                format!("{} VLAN ids: at most {MAX_VLANS}", list.len()),
            ));
        }
        for &v in list {
            let vid = u16::try_from(v)
                .ok()
                .filter(|v| (1..=4094).contains(v))
                .ok_or_else(|| invalid(&key("vlans"), format!("{v} is not a VLAN id (1-4094)")))?;
            if vlans.contains(&vid) {
                return Err(invalid(
                    &key("vlans"),
                    format!("VLAN {vid} is listed twice"),
                ));
            }
            vlans.push(vid);
        }
    }
    Ok((mac, vlans))
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
        let (mac, vlans) = net(raw, vf, &key)?;
        let assignment = DeviceAssignment {
            function,
            vf,
            mac,
            vlans,
        };
        if let Some(k) = out.iter().position(|d| d.same_function(&assignment)) {
            return Err(invalid(
                &key("function"),
                format!("the same function as guest[{i}].device[{k}]"),
            ));
        }
        out.push(assignment);
    }
    Ok(out)
}

/// Refuses one function given to two guests (same selector and VF index), and one MAC address
/// given to two VFs.
pub fn check_unique(guests: &[(String, Vec<DeviceAssignment>)]) -> Result<(), ConfigError> {
    let mut macs: Vec<([u8; 6], usize, usize)> = Vec::new();
    for (i, (_, devices)) in guests.iter().enumerate() {
        for (j, d) in devices.iter().enumerate() {
            let Some(mac) = d.mac else { continue };
            if let Some((_, gi, dj)) = macs.iter().find(|(m, _, _)| *m == mac) {
                return Err(invalid(
                    &format!("guest[{i}].device[{j}].mac"),
                    format!(
                        "{} is already the address of guest[{gi}].device[{dj}]",
                        crate::model::MacText(mac)
                    ),
                ));
            }
            macs.push((mac, i, j));
        }
    }
    for (i, (name, devices)) in guests.iter().enumerate() {
        for (j, d) in devices.iter().enumerate() {
            for (other, (other_name, other_devices)) in guests.iter().enumerate().take(i) {
                if other_devices.iter().any(|o| o.same_function(d)) {
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
            ..RawDevice::default()
        }
    }

    fn with_net(f: &str, vf: Option<i64>, mac: Option<&str>, vlans: Option<Vec<i64>>) -> RawDevice {
        RawDevice {
            function: Some(f.into()),
            vf,
            mac: mac.map(String::from),
            vlans,
        }
    }

    #[test]
    fn vf_mac_and_vlans() {
        let d = check(
            0,
            &[with_net(
                "01:00.0",
                Some(0),
                Some("02:0A:00:00:00:01"),
                Some(vec![100, 4094]),
            )],
        )
        .unwrap();
        assert_eq!(d[0].mac, Some([0x02, 0x0a, 0, 0, 0, 1]));
        assert_eq!(d[0].vlans, vec![100, 4094]);
        let d = check(0, &[raw("01:00.0", Some(0))]).unwrap();
        assert_eq!((d[0].mac, d[0].vlans.len()), (None, 0));
        let refused = [
            (
                with_net("01:00.0", Some(0), Some("03:00:00:00:00:01"), None),
                "mac",
                "multicast",
            ),
            (
                with_net("01:00.0", Some(0), Some("00:00:00:00:00:00"), None),
                "mac",
                "all-zero",
            ),
            (
                with_net("01:00.0", Some(0), Some("02:00:00:00:00"), None),
                "mac",
                "not a MAC",
            ),
            (
                with_net("01:00.0", Some(0), Some("02:00:00:00:00:001"), None),
                "mac",
                "not a MAC",
            ),
            (
                with_net("01:00.0", Some(0), Some("02-00-00-00-00-01"), None),
                "mac",
                "not a MAC",
            ),
            (
                with_net("01:00.0", None, Some("02:00:00:00:00:01"), None),
                "mac",
                "give `vf`",
            ),
            (
                with_net("01:00.0", Some(0), None, Some(vec![0])),
                "vlans",
                "not a VLAN id",
            ),
            (
                with_net("01:00.0", Some(0), None, Some(vec![4095])),
                "vlans",
                "not a VLAN id",
            ),
            (
                with_net("01:00.0", Some(0), None, Some(vec![5, 5])),
                "vlans",
                "twice",
            ),
            (
                with_net("01:00.0", Some(0), None, Some((1..=33).collect())),
                "vlans",
                "at most",
            ),
            (
                with_net("01:00.0", None, None, Some(vec![5])),
                "vlans",
                "give `vf`",
            ),
        ];
        for (d, k, why) in refused {
            let e = check(1, &[d]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("`guest[1].device[0].{k}`")), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_mac_given_twice_is_refused() {
        let a = check(
            0,
            &[with_net(
                "01:00.0",
                Some(0),
                Some("02:00:00:00:00:01"),
                None,
            )],
        )
        .unwrap();
        let b = check(
            1,
            &[with_net(
                "01:00.0",
                Some(1),
                Some("02:00:00:00:00:01"),
                None,
            )],
        )
        .unwrap();
        let e = check_unique(&[("a".into(), a.clone()), ("b".into(), b)])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`guest[1].device[0].mac`"), "{e}");
        assert!(
            e.contains("02:00:00:00:00:01 is already the address of guest[0].device[0]"),
            "{e}"
        );
        let c = check(
            1,
            &[with_net(
                "01:00.0",
                Some(1),
                Some("02:00:00:00:00:02"),
                None,
            )],
        )
        .unwrap();
        assert!(check_unique(&[("a".into(), a), ("c".into(), c)]).is_ok());
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
                    vf: None,
                    mac: None,
                    vlans: Vec::new(),
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
                ..RawDevice::default()
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
