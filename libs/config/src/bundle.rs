//! The boot bundle: the kernel's ramdisk.
//!
//! Layout: the 8-byte magic `CONDUIT2`, the payload length (u64 LE), the FNV-1a 64 hash of the
//! payload (u64 LE), then the payload: a postcard-encoded [`Bundle`]. Decoding borrows the guest
//! images from the ramdisk, so the kernel copies nothing it does not need.

use crate::model::BootConfig;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The key under which the image builder packs the control task's ELF image (`conduit-control`,
/// see `control/`) next to the guest images. Guest images cannot use it: their keys are the
/// `image` paths of `conduit.toml`, and the builder refuses this one.
pub const CONTROL_TASK_IMAGE: &str = "@conduit-control";

/// Identifies a Conduit bundle (format version 2: the configuration gained the console and its
/// baud rate, so a bundle from an older builder is refused by its magic, not misread).
pub const MAGIC: [u8; 8] = *b"CONDUIT2";
const HEADER_LEN: usize = 24;

/// The configuration and the guest images, as packed by the image builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle<'a> {
    pub config: BootConfig,
    #[serde(borrow)]
    pub images: Vec<GuestImage<'a>>,
}

/// One guest image, by the name `conduit.toml` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestImage<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Why a ramdisk is not a usable bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is {0} bytes, shorter than its 24-byte header")]
    TooShort(usize),
    #[error("bundle magic is {0:02x?}, not \"CONDUIT2\"")]
    BadMagic([u8; 8]),
    #[error("bundle payload claims {claimed} bytes but only {available} follow the header")]
    Truncated { claimed: u64, available: usize },
    #[error("bundle checksum {stored:#018x} does not match its payload ({computed:#018x})")]
    Checksum { stored: u64, computed: u64 },
    #[error("bundle payload does not decode: {0}")]
    Decode(&'static str),
    #[error("bundle could not be encoded: {0}")]
    Encode(&'static str),
}

/// FNV-1a, 64-bit: a cheap integrity check against truncated or corrupted ramdisks.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn postcard_reason(e: postcard::Error) -> &'static str {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => "unexpected end of data",
        postcard::Error::DeserializeBadVarint => "bad varint",
        postcard::Error::DeserializeBadBool => "bad bool",
        postcard::Error::DeserializeBadUtf8 => "bad UTF-8 string",
        postcard::Error::DeserializeBadEnum => "unknown enum variant",
        postcard::Error::DeserializeBadOption => "bad option tag",
        postcard::Error::SerdeDeCustom => "invalid value",
        _ => "malformed postcard data",
    }
}

impl<'a> Bundle<'a> {
    /// Encodes the bundle with its header.
    pub fn encode(&self) -> Result<Vec<u8>, BundleError> {
        let payload =
            postcard::to_allocvec(self).map_err(|_| BundleError::Encode("postcard failed"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Checks the header and decodes the payload, borrowing images from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(BundleError::TooShort(bytes.len()))?;
        let (magic, rest) = header.split_at(8);
        if magic != MAGIC {
            let mut m = [0; 8];
            m.copy_from_slice(magic);
            return Err(BundleError::BadMagic(m));
        }
        let word = |b: &[u8]| {
            let mut w = [0; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let claimed = word(&rest[..8]);
        let stored = word(&rest[8..16]);
        let body = &bytes[HEADER_LEN..];
        let payload = usize::try_from(claimed)
            .ok()
            .and_then(|n| body.get(..n))
            .ok_or(BundleError::Truncated {
                claimed,
                available: body.len(),
            })?;
        let computed = fnv1a64(payload);
        if computed != stored {
            return Err(BundleError::Checksum { stored, computed });
        }
        postcard::from_bytes(payload).map_err(|e| BundleError::Decode(postcard_reason(e)))
    }

    /// The image named `name`, if the bundle carries one.
    pub fn image(&self, name: &str) -> Option<&'a [u8]> {
        self.images.iter().find(|i| i.name == name).map(|i| i.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        EntryMode, ExitMethod, GuestBreak, GuestConfig, LogLevel, OnIdle, Segment, TestCase,
    };
    use alloc::string::String;

    fn sample() -> BootConfig {
        let guest = |name: &str, entry, entry_point, test_break| GuestConfig {
            name: String::from(name),
            memory_mib: 4,
            vcpus: 1,
            entry,
            entry_point,
            segments: vec![
                Segment {
                    gpa: 0x10_0000,
                    file_offset: 0x1000,
                    file_len: 60,
                    mem_len: 0x1000,
                },
                Segment {
                    gpa: 0x10_1000,
                    file_offset: 0,
                    file_len: 0,
                    mem_len: 0x2000,
                },
            ],
            image: String::from("hello"),
            time_slice_us: 1000,
            test_break,
            test_apic: None,
            devices: vec![crate::model::DeviceAssignment {
                function: crate::model::DeviceSel::Id {
                    vendor: 0x8086,
                    device: 0x10c9,
                },
                vf: Some(3),
                mac: Some([0x02, 0, 0, 0, 0, 7]),
                vlans: vec![10, 20],
            }],
            os: Some(crate::model::OsBoot::Linux {
                cmdline: String::from("console=ttyS0"),
                initrd: Some(String::from("initrd.img")),
            }),
            on_crash: crate::model::OnCrash::Restart { max_restarts: 3 },
            on_control_crash: crate::model::OnControlCrash::Stop,
            identity_ram_at: None,
            placement: crate::Placement::default(),
        };
        BootConfig {
            log_level: LogLevel::Debug,
            exit: ExitMethod::QemuDebugExit { port: 0xf4 },
            test: Some(TestCase::PageFault),
            on_idle: OnIdle::Exit,
            name: String::from("sample"),
            guests: vec![
                guest("hello64", EntryMode::Long64, 0x10_0000, None),
                guest(
                    "badstate",
                    EntryMode::Real16,
                    0x7c00,
                    Some(GuestBreak::RflagsReservedBitClear),
                ),
            ],
            unsafe_no_iommu: true,
            console: crate::model::ConsoleChoice::Com2,
            baud: 57_600,
        }
    }

    #[test]
    fn round_trip_borrows_images() {
        let img = [0x90u8; 100];
        let b = Bundle {
            config: sample(),
            images: vec![GuestImage {
                name: "hello",
                bytes: &img,
            }],
        };
        let enc = b.encode().unwrap();
        let dec = Bundle::decode(&enc).unwrap();
        assert_eq!(dec, b);
        assert_eq!(dec.image("hello").unwrap().len(), 100);
        assert!(dec.image("nope").is_none());
        // The guests survive with every field, and name their image.
        assert_eq!(dec.config.guests.len(), 2);
        assert_eq!(
            dec.config.guests[1].test_break,
            Some(GuestBreak::RflagsReservedBitClear)
        );
        assert_eq!(dec.config.guests[1].real_mode_cs_ip(), Some((0, 0x7c00)));
        assert!(dec.image(&dec.config.guests[0].image).is_some());
        // Images are borrowed from the ramdisk, not copied.
        let range = enc.as_ptr_range();
        assert!(range.contains(&dec.image("hello").unwrap().as_ptr()));
    }

    #[test]
    fn test_only_settings_are_found_scenario_first() {
        use crate::model::TestOnly;
        let mut c = sample();
        assert_eq!(c.test_only(), Some(TestOnly::Scenario(TestCase::PageFault)));
        assert_eq!(
            c.test_only().map(|t| t.to_string()).as_deref(),
            Some("[test] scenario \"page-fault\"")
        );
        c.test = None;
        let found = c.test_only();
        assert_eq!(
            found,
            Some(TestOnly::GuestBreak {
                guest: String::from("badstate"),
                value: GuestBreak::RflagsReservedBitClear
            })
        );
        assert_eq!(
            found.map(|t| t.to_string()).as_deref(),
            Some("guest \"badstate\" test_break = \"rflags-reserved-bit-clear\"")
        );
        c.guests[1].test_break = None;
        assert_eq!(c.test_only(), None);
        c.guests[1].test_apic = Some(crate::model::ApicTest::Software);
        assert_eq!(
            c.test_only().map(|t| t.to_string()).as_deref(),
            Some("guest \"badstate\" test_apic = \"software\"")
        );
    }

    #[test]
    fn truncating_a_bundle_with_guests_is_always_an_error() {
        let img = [0x90u8; 16];
        let b = Bundle {
            config: sample(),
            images: vec![GuestImage {
                name: "hello",
                bytes: &img,
            }],
        };
        let enc = b.encode().unwrap();
        for n in 0..enc.len() {
            assert!(Bundle::decode(&enc[..n]).is_err(), "prefix {n} accepted");
        }
    }

    #[test]
    fn refuses_short_bad_magic_truncated_and_corrupt() {
        let b = Bundle {
            config: sample(),
            images: Vec::new(),
        };
        let enc = b.encode().unwrap();
        assert_eq!(Bundle::decode(&enc[..10]), Err(BundleError::TooShort(10)));
        let mut bad = enc.clone();
        bad[0] = b'X';
        assert!(matches!(
            Bundle::decode(&bad),
            Err(BundleError::BadMagic(_))
        ));
        assert!(matches!(
            Bundle::decode(&enc[..enc.len() - 1]),
            Err(BundleError::Truncated { .. })
        ));
        let mut flip = enc.clone();
        *flip.last_mut().unwrap() ^= 1;
        assert!(matches!(
            Bundle::decode(&flip),
            Err(BundleError::Checksum { .. })
        ));
    }

    #[test]
    fn refuses_a_payload_with_a_valid_checksum_that_does_not_decode() {
        let payload = [0xffu8; 4];
        let mut enc = MAGIC.to_vec();
        enc.extend_from_slice(&4u64.to_le_bytes());
        enc.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
        enc.extend_from_slice(&payload);
        assert!(matches!(Bundle::decode(&enc), Err(BundleError::Decode(_))));
    }

    #[test]
    fn fnv_known_vector() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
