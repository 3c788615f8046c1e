//! MSI capability emulation (PCI Local Bus Spec 3.0 §6.8.1, PCIe Base Spec r6.0 §7.7.1).
//!
//! Layout after the ID/next bytes:
//!
//! | off (32-bit / 64-bit) | register                           | virtual access            |
//! |-----------------------|------------------------------------|---------------------------|
//! | 0x02                  | Message Control (§7.7.1.2)         | Enable, MME, Ext Data En  |
//! | 0x04                  | Message Address (§7.7.1.3)         | bits 31:2                 |
//! | — / 0x08              | Message Upper Address (§7.7.1.4)   | all bits                  |
//! | 0x08 / 0x0c           | Message Data (§7.7.1.5)            | 16 bits                   |
//! | 0x0a / 0x0e           | Extended Message Data (§7.7.1.6)   | if capable                |
//! | 0x0c / 0x10           | Mask Bits (§7.7.1.7)               | if per-vector masking     |
//! | 0x10 / 0x14           | Pending Bits (§7.7.1.8)            | read-only zero            |
//!
//! The capability starts disabled with address, data and mask zero (its reset state) whatever
//! the physical one holds; 64-bit, Per-Vector Masking and Extended Message Data Capable are
//! shown as on the device. Multiple Message Capable reads 0 (one vector) whatever the device
//! can do: the core routes one vector per function (one IRTE, whose handle the device's
//! message carries with no subhandle, so every message of a multi-vector block would arrive as
//! the same interrupt), and a function may always be given fewer vectors than it is capable of
//! (§7.7.1.2: software enables at most what Multiple Message Capable states; drivers such as
//! Linux's then fall back to one vector). A Multiple Message Enable above it is clamped to 0,
//! and Mask Bits has the one bit of vector 0. Every change is an [`Event::MsiChanged`]; the
//! physical capability is the core's business.

use crate::access::Event;
use crate::image::Image;

/// Register offsets within the capability (those that do not depend on the layout).
pub mod reg {
    /// Message Control.
    pub const CONTROL: u16 = 0x02;
    /// Message Address (lower 32 bits).
    pub const ADDRESS: u16 = 0x04;
    /// Message Upper Address (64-bit capability).
    pub const UPPER_ADDRESS: u16 = 0x08;
}

/// Message Control bits (§7.7.1.2).
pub mod control {
    /// MSI Enable.
    pub const ENABLE: u16 = 1 << 0;
    /// Multiple Message Capable, bits 3:1.
    pub const MMC_MASK: u16 = 0x7 << 1;
    /// Multiple Message Enable, bits 6:4.
    pub const MME_MASK: u16 = 0x7 << 4;
    /// 64-bit Address Capable.
    pub const ADDR64: u16 = 1 << 7;
    /// Per-Vector Masking Capable.
    pub const PER_VECTOR_MASK: u16 = 1 << 8;
    /// Extended Message Data Capable.
    pub const EXT_DATA_CAPABLE: u16 = 1 << 9;
    /// Extended Message Data Enable.
    pub const EXT_DATA_ENABLE: u16 = 1 << 10;
}

/// The shape of an MSI capability.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MsiInfo {
    /// Offset of the capability.
    pub offset: u16,
    /// 64-bit Address Capable.
    pub is_64bit: bool,
    /// Per-Vector Masking Capable.
    pub per_vector_mask: bool,
    /// Extended Message Data Capable.
    pub extended_data: bool,
    /// Log2 of the vectors the function can use (Multiple Message Capable; reserved encodings
    /// 6 and 7 are read as 5, i.e. 32 vectors).
    pub multiple_message_capable: u8,
}

impl MsiInfo {
    /// Decodes the Message Control register of the capability at `offset`.
    #[must_use]
    pub fn from_control(offset: u16, ctl: u16) -> Self {
        Self {
            offset,
            is_64bit: ctl & control::ADDR64 != 0,
            per_vector_mask: ctl & control::PER_VECTOR_MASK != 0,
            extended_data: ctl & control::EXT_DATA_CAPABLE != 0,
            multiple_message_capable: (((ctl & control::MMC_MASK) >> 1) as u8).min(5),
        }
    }

    /// Offset of Message Data within the capability.
    #[must_use]
    pub const fn data_offset(&self) -> u16 {
        if self.is_64bit { 0x0c } else { 0x08 }
    }

    /// Offset of Mask Bits within the capability (meaningful with per-vector masking).
    #[must_use]
    pub const fn mask_offset(&self) -> u16 {
        self.data_offset() + 4
    }

    /// Length of the capability in bytes.
    #[must_use]
    pub const fn byte_len(&self) -> u16 {
        if self.per_vector_mask {
            self.mask_offset() + 8
        } else if self.extended_data {
            self.data_offset() + 4
        } else {
            self.data_offset() + 2
        }
    }

    /// Number of vectors the function can use.
    #[must_use]
    pub const fn max_vectors(&self) -> u8 {
        1 << self.multiple_message_capable
    }

    /// Mask Bits implemented: one per capable vector.
    #[must_use]
    pub const fn mask_bits(&self) -> u32 {
        if !self.per_vector_mask {
            0
        } else if self.max_vectors() >= 32 {
            u32::MAX
        } else {
            (1u32 << self.max_vectors()) - 1
        }
    }

    /// The read-only capability bits of Message Control kept from the device (Multiple Message
    /// Capable reads 0: one vector, see the module documentation).
    const fn control_ro(&self) -> u16 {
        let mut v = 0;
        if self.is_64bit {
            v |= control::ADDR64;
        }
        if self.per_vector_mask {
            v |= control::PER_VECTOR_MASK;
        }
        if self.extended_data {
            v |= control::EXT_DATA_CAPABLE;
        }
        v
    }
}

/// Resets the virtual capability (after its bytes were copied) and sets its write masks.
pub(crate) fn setup(img: &mut Image, info: &MsiInfo) {
    let o = info.offset;
    for i in 2..info.byte_len() {
        img.set8(o + i, 0);
    }
    img.set16(o + reg::CONTROL, info.control_ro());
    let ext = if info.extended_data {
        control::EXT_DATA_ENABLE
    } else {
        0
    };
    img.set_wmask16(o + reg::CONTROL, control::ENABLE | control::MME_MASK | ext);
    img.set_wmask32(o + reg::ADDRESS, 0xffff_fffc);
    if info.is_64bit {
        img.set_wmask32(o + reg::UPPER_ADDRESS, u32::MAX);
    }
    img.set_wmask16(o + info.data_offset(), 0xffff);
    if info.extended_data {
        img.set_wmask16(o + info.data_offset() + 2, 0xffff);
    }
    if info.per_vector_mask {
        // The one vector the virtual capability offers.
        img.set_wmask32(o + info.mask_offset(), 1);
    }
}

/// Clamps Multiple Message Enable to the virtual Multiple Message Capable (0: one vector) after a
/// guest write.
pub(crate) fn fixup(img: &mut Image, info: &MsiInfo) {
    let at = info.offset + reg::CONTROL;
    let ctl = img.get16(at);
    if ctl & control::MME_MASK != 0 {
        img.set16(at, ctl & !control::MME_MASK);
    }
}

/// The guest-visible MSI state, as reported in [`Event::MsiChanged`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct MsiState {
    enabled: bool,
    address: u64,
    data: u32,
    mask: u32,
    vectors: u8,
}

impl MsiState {
    pub(crate) fn read(img: &Image, info: &MsiInfo) -> Self {
        let o = info.offset;
        let ctl = img.get16(o + reg::CONTROL);
        let mut address = u64::from(img.get32(o + reg::ADDRESS));
        if info.is_64bit {
            address |= u64::from(img.get32(o + reg::UPPER_ADDRESS)) << 32;
        }
        let mut data = u32::from(img.get16(o + info.data_offset()));
        if info.extended_data && ctl & control::EXT_DATA_ENABLE != 0 {
            data |= u32::from(img.get16(o + info.data_offset() + 2)) << 16;
        }
        let mask = if info.per_vector_mask {
            img.get32(o + info.mask_offset())
        } else {
            0
        };
        Self {
            enabled: ctl & control::ENABLE != 0,
            address,
            data,
            mask,
            vectors: 1 << ((ctl & control::MME_MASK) >> 4).min(5),
        }
    }

    pub(crate) const fn event(self) -> Event {
        Event::MsiChanged {
            enabled: self.enabled,
            address: self.address,
            data: self.data,
            mask: self.mask,
            vectors: self.vectors,
        }
    }
}
