//! The virtual Type 0 header (PCI Local Bus Spec 3.0 §6.2, PCIe Base Spec r6.0 §7.5.1).
//!
//! | offset | register             | virtual behaviour                                          |
//! |--------|----------------------|------------------------------------------------------------|
//! | 0x00   | Vendor / Device ID   | passed through (a VF's come from the PF, §9.3.4.1)         |
//! | 0x04   | Command              | emulated: see [`command_write_mask`]                       |
//! | 0x06   | Status               | Capabilities List from the virtual list; [`STATUS_RW1C`]   |
//! | 0x08   | Revision, Class Code | passed through                                             |
//! | 0x0c   | Cache Line Size      | guest scratch (no effect on PCIe, §7.5.1.1)                |
//! | 0x0d   | Latency Timer, BIST  | read-only zero                                             |
//! | 0x0e   | Header Type          | 0x00, multi-function bit set by the topology               |
//! | 0x10   | BAR0..5              | virtual, see [`crate::bar`]                                |
//! | 0x28   | CardBus CIS          | read-only zero                                             |
//! | 0x2c   | Subsystem IDs        | passed through                                             |
//! | 0x30   | Expansion ROM BAR    | read-only zero: no ROM is exposed                          |
//! | 0x34   | Capabilities Pointer | the rebuilt list, see [`crate::caps`]                      |
//! | 0x3c   | Interrupt Line       | guest scratch (software-owned, §7.5.1.1)                   |
//! | 0x3d   | Interrupt Pin        | passed through (0 for a VF: VFs have no INTx, §9.3.4.1)    |
//! | 0x3e   | Min_Gnt, Max_Lat     | read-only zero (not used by PCIe)                          |
//!
//! Command (§6.2.2 / §7.5.1.1.3): Memory Space, Bus Master and Interrupt Disable follow the
//! guest's write, I/O Space only when the function has an I/O BAR; every other bit (Special
//! Cycles, Memory Write and Invalidate, VGA snoop, Parity Error Response, SERR# Enable, Fast
//! Back-to-Back) is read-only zero. A VF's physical Command has Memory Space read-only zero
//! (its decode is the PF's VF MSE, §9.3.4.1): the virtual bit is what the core maps by.

use conduit_pci::config::{command, reg, status};
use conduit_pci::{Bdf, ConfigAccess};

use crate::image::Image;

/// Status bits that are RW1C (PCI Local Bus Spec 3.0 §6.2.3): Master Data Parity Error (8),
/// Signaled Target Abort (11), Received Target Abort (12), Received Master Abort (13),
/// Signaled System Error (14), Detected Parity Error (15). The core may raise them with
/// [`crate::VirtualFunction::raise_status`]; the guest clears them by writing 1.
pub const STATUS_RW1C: u16 = 0xf900;

/// Interrupt Line register.
pub const INTERRUPT_LINE: u16 = 0x3c;
/// Interrupt Pin register.
pub const INTERRUPT_PIN: u16 = 0x3d;
/// Cache Line Size register.
pub const CACHE_LINE_SIZE: u16 = 0x0c;
/// Subsystem Vendor ID (Subsystem ID follows at 0x2e).
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
/// Multi-function bit of Header Type.
pub const MULTI_FUNCTION: u8 = 0x80;

/// The Command bits a guest may change: Memory Space, Bus Master, Interrupt Disable, and I/O
/// Space if `has_io_bar`.
#[must_use]
pub const fn command_write_mask(has_io_bar: bool) -> u16 {
    let base = command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE;
    if has_io_bar {
        base | command::IO_SPACE
    } else {
        base
    }
}

/// Fills the identity part of the header from `cfg` (the function's own configuration space,
/// or for a VF the [`crate::VfConfig`] overlay that supplies the PF's IDs) and sets the masks
/// of the emulated header registers. BARs and the capability pointer are done elsewhere.
pub(crate) fn build<C: ConfigAccess + ?Sized>(img: &mut Image, cfg: &C, bdf: Bdf, has_io: bool) {
    img.set32(reg::VENDOR_ID, cfg.read32(bdf, reg::VENDOR_ID));
    img.set32(reg::REVISION_ID, cfg.read32(bdf, reg::REVISION_ID));
    img.set32(SUBSYSTEM_VENDOR_ID, cfg.read32(bdf, SUBSYSTEM_VENDOR_ID));
    img.set8(INTERRUPT_PIN, cfg.read8(bdf, INTERRUPT_PIN));
    img.set8(reg::HEADER_TYPE, 0x00);
    img.set_wmask16(reg::COMMAND, command_write_mask(has_io));
    img.set_w1c16(reg::STATUS, STATUS_RW1C);
    img.set_wmask8(CACHE_LINE_SIZE, 0xff);
    img.set_wmask8(INTERRUPT_LINE, 0xff);
}

/// Sets or clears the Capabilities List bit of the virtual Status register.
pub(crate) fn set_cap_list(img: &mut Image, present: bool) {
    let st = img.get16(reg::STATUS) & !status::CAP_LIST;
    img.set16(
        reg::STATUS,
        if present { st | status::CAP_LIST } else { st },
    );
}

/// The emulated Command bits, as the core cares about them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct CommandState {
    pub(crate) memory: bool,
    pub(crate) io: bool,
    pub(crate) bus_master: bool,
    pub(crate) intx_disable: bool,
}

impl CommandState {
    pub(crate) fn read(img: &Image) -> Self {
        let c = img.get16(reg::COMMAND);
        Self {
            memory: c & command::MEMORY_SPACE != 0,
            io: c & command::IO_SPACE != 0,
            bus_master: c & command::BUS_MASTER != 0,
            intx_disable: c & command::INTX_DISABLE != 0,
        }
    }
}
