//! What the runtime needs to build a guest: decoded from the boot bundle's guest configuration.

use alloc::string::String;
use alloc::vec::Vec;

/// How the vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// 64-bit long mode with paging on (identity map of the first 4 GiB), at this RIP.
    Long64 { rip: u64 },
    /// Real mode (unrestricted guest) at CS:IP.
    Real16 { cs: u16, ip: u16 },
}

/// A deliberate corruption of the initial state (test configurations, feature `selftest` only):
/// the pre-entry guest-state check must refuse the guest and name the rule.
#[cfg(feature = "selftest")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    Cr0PgWithoutPe,
    RflagsReservedBitClear,
    TrUnusable,
}

/// One piece of the image to place in guest memory.
#[derive(Debug, Clone)]
pub struct LoadSegment {
    pub gpa: u64,
    pub bytes: &'static [u8],
    /// Bytes from `gpa` the segment occupies (the rest after `bytes` is zero).
    pub mem_len: u64,
}

/// A guest to create.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub name: String,
    pub memory_mib: u32,
    pub entry: Entry,
    pub segments: Vec<LoadSegment>,
    pub time_slice_us: u32,
    /// TEST ONLY (feature `selftest`): the guest state to corrupt before entry.
    #[cfg(feature = "selftest")]
    pub test_break: Option<Break>,
}

/// What a reset of the guest's processor (triple fault, 0xCF9, keyboard controller, ACPI
/// reset register) does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReset {
    /// The guest stops, reported with the reason.
    Stop,
    /// The guest is built again from its image.
    Restart,
}

impl GuestSpec {
    /// What a reset does.
    pub fn on_reset(&self) -> OnReset {
        OnReset::Stop
    }

    /// Whether the guest runs an operating system, which gets a virtual platform: local APIC,
    /// I/O APIC, the UART's interrupt (`vplatform.rs`).
    pub fn has_platform(&self) -> bool {
        false
    }
}

/// Turns a validated guest configuration and its image into a spec. The builder validated
/// everything already; this re-checks what would otherwise read outside the image, so a corrupt
/// bundle costs one guest, not the hypervisor.
pub fn from_config(
    c: &conduit_config::GuestConfig,
    image: Option<&'static [u8]>,
) -> Result<GuestSpec, String> {
    use conduit_config::EntryMode;
    let image =
        image.ok_or_else(|| alloc::format!("image {:?} is not in the boot bundle", c.image))?;
    let entry = match c.entry {
        EntryMode::Long64 => Entry::Long64 { rip: c.entry_point },
        EntryMode::Real16 => {
            let (cs, ip) = c.real_mode_cs_ip().ok_or_else(|| {
                alloc::format!("real-mode entry {:#x} is not below 1 MiB", c.entry_point)
            })?;
            Entry::Real16 { cs, ip }
        }
    };
    let mut segments = Vec::with_capacity(c.segments.len());
    for s in &c.segments {
        let bytes = usize::try_from(s.file_offset)
            .ok()
            .zip(usize::try_from(s.file_len).ok())
            .and_then(|(off, len)| image.get(off..off.checked_add(len)?))
            .ok_or_else(|| {
                alloc::format!(
                    "segment at GPA {:#x} reads beyond the {}-byte image",
                    s.gpa,
                    image.len()
                )
            })?;
        segments.push(LoadSegment {
            gpa: s.gpa,
            bytes,
            mem_len: s.mem_len,
        });
    }
    Ok(GuestSpec {
        name: c.name.clone(),
        memory_mib: c.memory_mib,
        entry,
        segments,
        time_slice_us: c.time_slice_us,
        #[cfg(feature = "selftest")]
        test_break: c.test_break.map(|b| match b {
            conduit_config::GuestBreak::Cr0PgWithoutPe => Break::Cr0PgWithoutPe,
            conduit_config::GuestBreak::RflagsReservedBitClear => Break::RflagsReservedBitClear,
            conduit_config::GuestBreak::TrUnusable => Break::TrUnusable,
        }),
    })
}
