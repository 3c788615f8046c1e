//! `[test] scenario = "dmar-corrupt"`: the kernel is fed a corrupted copy of the firmware's DMAR
//! (the first remapping structure's Length made larger than the table, checksum fixed so that the
//! structural check is what refuses it). DMA remapping must stay off, and assigning a device must
//! be refused with the reason rather than leave it unprotected.

use super::edu;
use crate::iommu::{self, GuestMemory, IommuError};
use crate::pci::{self, DeviceRef};
use alloc::borrow::Cow;
use alloc::string::String;
use conduit_config::TestCase;
use conduit_hw::memory::Memory;
use log::info;

/// Offset of the first remapping structure's Length (header 48 bytes, then Type, Length).
const FIRST_LENGTH: usize = 50;
/// The Length written there.
const BAD_LENGTH: u16 = 0x1000;

/// The DMAR bytes the IOMMU is brought up from: the firmware's table, or for `dmar-corrupt` a
/// corrupted copy.
pub fn dmar_for_boot(
    test: Option<TestCase>,
    dmar: Option<&'static [u8]>,
) -> Option<Cow<'static, [u8]>> {
    let bytes = dmar?;
    if test != Some(TestCase::DmarCorrupt) || bytes.len() < FIRST_LENGTH + 2 {
        return Some(Cow::Borrowed(bytes));
    }
    let mut copy = bytes.to_vec();
    copy[FIRST_LENGTH..FIRST_LENGTH + 2].copy_from_slice(&BAD_LENGTH.to_le_bytes());
    copy[9] = 0;
    let sum = copy.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    copy[9] = 0u8.wrapping_sub(sum);
    info!(
        "selftest: dmar-corrupt: parsing a copy of the DMAR whose first structure has Length \
         {BAD_LENGTH:#x} ({} bytes in the table; checksum fixed)",
        copy.len()
    );
    Some(Cow::Owned(copy))
}

pub fn run(mem: &Memory) -> Result<usize, String> {
    let why = match iommu::status() {
        Ok(()) => {
            return Err(String::from(
                "DMA remapping is on despite the malformed DMAR",
            ));
        }
        Err(why) => why,
    };
    info!("selftest: dmar-corrupt: DMA remapping is off: {why}");
    let pci = pci::get().ok_or("no PCI enumeration")?;
    let edu_ref = DeviceRef::Id {
        vendor: edu::VENDOR,
        device: edu::DEVICE,
    };
    let f = pci
        .resolve(edu_ref)
        .ok_or_else(|| alloc::format!("no {edu_ref} (edu) device on this machine"))?
        .bdf;
    let hpa = mem
        .frames
        .lock()
        .allocate_contiguous(16, 1)
        .ok_or("no memory for the test guest")?
        .0;
    let domain = iommu::create_domain(
        "A",
        &[GuestMemory {
            gpa: 0,
            hpa,
            len: 16 * 4096,
        }],
    )
    .map_err(|e| alloc::format!("{e}"))?;
    match iommu::assign_device(edu_ref, domain) {
        Err(IommuError::RemappingDisabled { .. }) => {
            info!(
                "selftest: dmar-corrupt: assignment of {f} ({edu_ref}) to domain {domain} \
                 refused; bus mastering stays off"
            );
        }
        Err(e) => return Err(alloc::format!("assignment refused for another reason: {e}")),
        Ok(_) => return Err(String::from("a device was assigned without DMA remapping")),
    }
    iommu::destroy_domain(domain).map_err(|e| alloc::format!("{e}"))?;
    Ok(2)
}
