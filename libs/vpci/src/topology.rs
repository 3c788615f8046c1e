//! One guest's virtual PCI topology and the decoding of configuration addresses.
//!
//! [`VirtualTopology`] maps virtual BDFs (where the guest sees a function, e.g. `00:01.0`) to
//! [`VirtualFunction`]s. An access to a virtual BDF with no function reads all ones and its
//! writes are dropped, as for a master abort / Unsupported Request (PCI Local Bus Spec 3.0
//! §6.1, PCIe Base Spec r6.0 §7.2.2). Function 0 of a device gets the Multi-Function bit when
//! the device has other functions; functions other than 0 are only accepted next to a function
//! 0, since software scans a device's other functions only when function 0 exists (§6.2.1).
//!
//! Two address decoders feed it:
//! - [`Cf8Address`]: configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2): the dword
//!   written to `CONFIG_ADDRESS` (0xCF8) with Enable in bit 31, bus 23:16, device 15:11,
//!   function 10:8, register 7:2; bits 1:0 read as zero and are ignored; bits 30:24 are
//!   reserved, or in [`Cf8Mode::Extended`] bits 27:24 carry register bits 11:8 (the extended
//!   configuration-space extension of some AMD chipsets).
//! - [`Ecam`]: the memory-mapped mechanism (PCIe Base Spec r6.0 §7.2.2): bus 27:20, device
//!   19:15, function 14:12, register 11:0 of the offset from the ECAM base.

use alloc::vec::Vec;

use conduit_pci::Bdf;

use crate::access::{self, AccessError, Events};
use crate::function::VirtualFunction;

/// The `CONFIG_ADDRESS` port.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The first `CONFIG_DATA` port; 0xCFC..=0xCFF address the bytes of the selected dword.
pub const CONFIG_DATA: u16 = 0xcfc;

/// How bits 30:24 of `CONFIG_ADDRESS` are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cf8Mode {
    /// Reserved: must be zero, so only registers 0x00..=0xff are reachable.
    Standard,
    /// Bits 27:24 are register bits 11:8 (reaching the whole 4 KiB); bits 30:28 reserved.
    Extended,
}

/// Why a `CONFIG_ADDRESS` value or data port does not select a configuration register.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Cf8Error {
    /// Enable (bit 31) clear: the data port is not a configuration access.
    #[error("CONFIG_ADDRESS enable bit clear")]
    Disabled,
    /// Reserved bits set.
    #[error("CONFIG_ADDRESS {value:#010x} has reserved bits set")]
    ReservedBits {
        /// The value.
        value: u32,
    },
    /// The port is not one of 0xCFC..=0xCFF.
    #[error("port {port:#x} is not a CONFIG_DATA port")]
    NotDataPort {
        /// The port.
        port: u16,
    },
}

/// A decoded `CONFIG_ADDRESS`: the function and the dword-aligned register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cf8Address {
    /// Function addressed.
    pub bdf: Bdf,
    /// Dword-aligned register offset (0..=0xfc, or 0..=0xffc in extended mode).
    pub register: u16,
}

impl Cf8Address {
    /// Decodes the value the guest wrote to `CONFIG_ADDRESS`.
    pub fn decode(value: u32, mode: Cf8Mode) -> Result<Self, Cf8Error> {
        if value & (1 << 31) == 0 {
            return Err(Cf8Error::Disabled);
        }
        let reserved = match mode {
            Cf8Mode::Standard => 0x7f00_0000,
            Cf8Mode::Extended => 0x7000_0000,
        };
        if value & reserved != 0 {
            return Err(Cf8Error::ReservedBits { value });
        }
        let ext = match mode {
            Cf8Mode::Standard => 0,
            Cf8Mode::Extended => ((value >> 24) & 0xf) as u16,
        };
        Ok(Self {
            bdf: Bdf::from_devfn((value >> 16) as u8, (value >> 8) as u8),
            register: (ext << 8) | (value & 0xfc) as u16,
        })
    }

    /// The `CONFIG_ADDRESS` value selecting `bdf` and `register` (bits 1:0 dropped; bits 11:8
    /// of the register go to 27:24, which only [`Cf8Mode::Extended`] decodes).
    #[must_use]
    pub const fn encode(bdf: Bdf, register: u16) -> u32 {
        (1 << 31)
            | (((register as u32 >> 8) & 0xf) << 24)
            | ((bdf.routing_id() as u32) << 8)
            | (register as u32 & 0xfc)
    }

    /// The configuration offset a data-port access at `port` (0xCFC..=0xCFF) reaches. Size and
    /// alignment are checked by the function access.
    pub fn offset(&self, port: u16) -> Result<u16, Cf8Error> {
        match port.checked_sub(CONFIG_DATA) {
            Some(byte @ 0..=3) => Ok(self.register + byte),
            _ => Err(Cf8Error::NotDataPort { port }),
        }
    }
}

/// Why an ECAM offset does not address a function.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EcamError {
    /// Beyond the 256 MiB an ECAM region can span.
    #[error("ECAM offset {offset:#x} beyond 256 MiB")]
    OutOfWindow {
        /// The offset.
        offset: u64,
    },
    /// The bus is outside the region's bus range.
    #[error("bus {bus:#04x} outside the ECAM bus range")]
    BusOutOfRange {
        /// The bus.
        bus: u8,
    },
}

/// An ECAM region for buses `start_bus..=end_bus`. Offsets are taken from the region's base
/// address as ACPI MCFG gives it, which is the address of bus 0 even when `start_bus > 0`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ecam {
    start_bus: u8,
    end_bus: u8,
}

impl Ecam {
    /// A region; `None` if `start_bus > end_bus`.
    #[must_use]
    pub const fn new(start_bus: u8, end_bus: u8) -> Option<Self> {
        if start_bus > end_bus {
            None
        } else {
            Some(Self { start_bus, end_bus })
        }
    }

    /// First bus.
    #[must_use]
    pub const fn start_bus(&self) -> u8 {
        self.start_bus
    }

    /// Last bus.
    #[must_use]
    pub const fn end_bus(&self) -> u8 {
        self.end_bus
    }

    /// Decodes an offset from the base into (function, register offset).
    pub fn decode(&self, offset: u64) -> Result<(Bdf, u16), EcamError> {
        if offset >= 1 << 28 {
            return Err(EcamError::OutOfWindow { offset });
        }
        let bus = (offset >> 20) as u8;
        if bus < self.start_bus || bus > self.end_bus {
            return Err(EcamError::BusOutOfRange { bus });
        }
        Ok((
            Bdf::from_devfn(bus, (offset >> 12) as u8),
            (offset & 0xfff) as u16,
        ))
    }
}

/// Why a topology change was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TopologyError {
    /// A function is already at that virtual BDF.
    #[error("{vbdf} is occupied")]
    Occupied {
        /// The virtual BDF.
        vbdf: Bdf,
    },
    /// A function other than 0 without function 0 of its device.
    #[error("{vbdf}: function 0 of the device is absent")]
    NoFunctionZero {
        /// The virtual BDF.
        vbdf: Bdf,
    },
    /// Function 0 cannot leave while other functions of the device remain.
    #[error("{vbdf}: other functions of the device remain")]
    FunctionsRemain {
        /// The virtual BDF.
        vbdf: Bdf,
    },
    /// Nothing at that virtual BDF.
    #[error("no function at {vbdf}")]
    NotFound {
        /// The virtual BDF.
        vbdf: Bdf,
    },
}

/// The functions one guest sees, by virtual BDF.
#[derive(Debug, Default)]
pub struct VirtualTopology {
    fns: Vec<(Bdf, VirtualFunction)>,
}

fn same_device(a: Bdf, b: Bdf) -> bool {
    a.bus() == b.bus() && a.device() == b.device()
}

impl VirtualTopology {
    /// An empty topology.
    #[must_use]
    pub const fn new() -> Self {
        Self { fns: Vec::new() }
    }

    fn position(&self, vbdf: Bdf) -> Result<usize, usize> {
        self.fns.binary_search_by_key(&vbdf, |(b, _)| *b)
    }

    fn function_zero(vbdf: Bdf) -> Bdf {
        Bdf::from_devfn(vbdf.bus(), vbdf.devfn() & !0x7)
    }

    fn update_multi_function(&mut self, vbdf: Bdf) {
        let zero = Self::function_zero(vbdf);
        let others = self
            .fns
            .iter()
            .any(|(b, _)| *b != zero && same_device(*b, zero));
        if let Some(f) = self.get_mut(zero) {
            f.set_multi_function(others);
        }
    }

    /// Places `function` at `vbdf`.
    pub fn insert(&mut self, vbdf: Bdf, function: VirtualFunction) -> Result<(), TopologyError> {
        let at = match self.position(vbdf) {
            Ok(_) => return Err(TopologyError::Occupied { vbdf }),
            Err(at) => at,
        };
        if vbdf.function() != 0 && self.get(Self::function_zero(vbdf)).is_none() {
            return Err(TopologyError::NoFunctionZero { vbdf });
        }
        self.fns.insert(at, (vbdf, function));
        self.update_multi_function(vbdf);
        Ok(())
    }

    /// Takes the function at `vbdf` out.
    pub fn remove(&mut self, vbdf: Bdf) -> Result<VirtualFunction, TopologyError> {
        let at = self
            .position(vbdf)
            .map_err(|_| TopologyError::NotFound { vbdf })?;
        if vbdf.function() == 0
            && self
                .fns
                .iter()
                .any(|(b, _)| *b != vbdf && same_device(*b, vbdf))
        {
            return Err(TopologyError::FunctionsRemain { vbdf });
        }
        let (_, f) = self.fns.remove(at);
        self.update_multi_function(vbdf);
        Ok(f)
    }

    /// The function at `vbdf`.
    #[must_use]
    pub fn get(&self, vbdf: Bdf) -> Option<&VirtualFunction> {
        self.position(vbdf)
            .ok()
            .and_then(|i| self.fns.get(i))
            .map(|(_, f)| f)
    }

    /// The function at `vbdf`, mutably (e.g. for its MSI-X table).
    pub fn get_mut(&mut self, vbdf: Bdf) -> Option<&mut VirtualFunction> {
        let i = self.position(vbdf).ok()?;
        self.fns.get_mut(i).map(|(_, f)| f)
    }

    /// Virtual BDFs and functions in BDF order.
    pub fn iter(&self) -> impl Iterator<Item = (Bdf, &VirtualFunction)> {
        self.fns.iter().map(|(b, f)| (*b, f))
    }

    /// Number of functions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fns.len()
    }

    /// No functions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty()
    }

    /// Guest read at `vbdf`: all ones where no function is.
    pub fn read(&self, vbdf: Bdf, offset: u16, size: u8) -> Result<u32, AccessError> {
        match self.get(vbdf) {
            Some(f) => f.read(offset, size),
            None => access::check_config(offset, size).map(|_| access::all_ones(size)),
        }
    }

    /// Guest write at `vbdf`: dropped where no function is.
    pub fn write(
        &mut self,
        vbdf: Bdf,
        offset: u16,
        size: u8,
        value: u32,
    ) -> Result<Events, AccessError> {
        match self.get_mut(vbdf) {
            Some(f) => f.write(offset, size, value),
            None => access::check_config(offset, size).map(|_| Events::new()),
        }
    }
}
