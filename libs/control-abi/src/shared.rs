//! The shared page: what does not fit in registers.
//!
//! One 4 KiB page, mapped read-write in the task at [`crate::layout::SHARED_VA`] and owned by
//! the core. Every field is a plain integer, so every bit pattern is a valid value: the core
//! reads it with one volatile copy after the task has stopped and then validates what it got
//! ([`WireEvent::decode`] refuses unknown tags and kinds). The core writes [`InitInfo`] and
//! [`FunctionInfo`] before the corresponding request; the task writes the events of a write,
//! and a message (build errors, panics).

use conduit_pci::{Bar, BarKind, Bdf, PciAddress};
use conduit_vpci::{Event, access::MAX_EVENTS};

/// How the task reaches physical configuration space.
pub mod mode {
    /// ECAM windows mapped at [`crate::layout::config_va`] (PCIe Base Spec r6.0 §7.2.2).
    pub const ECAM: u32 = 1;
    /// Configuration mechanism #1 through ports 0xCF8/0xCFC (PCI Local Bus Spec 3.0
    /// §3.2.2.3.2), which the task's I/O permission bitmap allows: segment 0 only.
    pub const PORT_IO: u32 = 2;
}

/// One ECAM window: the buses `start_bus..=end_bus` of PCI segment `segment` (one MCFG
/// allocation, PCI Firmware Spec 3.3 §4.1.2). Window `i` of [`InitInfo::windows`] is mapped
/// at [`crate::layout::config_va`]`(i)`, bus `start_bus` first.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct EcamWindow {
    /// The PCI segment group (bits 15:0).
    pub segment: u32,
    /// First bus of the window.
    pub start_bus: u32,
    /// Last bus of the window.
    pub end_bus: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// Written by the core before [`crate::Op::Init`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct InitInfo {
    /// [`mode::ECAM`] or [`mode::PORT_IO`].
    pub mode: u32,
    /// Number of guests (indices `0..guests`).
    pub guests: u32,
    /// Valid entries of `windows` ([`mode::ECAM`]; 0 with [`mode::PORT_IO`]).
    pub window_count: u32,
    /// Must be 0.
    pub reserved: u32,
    /// The ECAM windows, of every segment the MCFG lists (checked by
    /// [`crate::windows::ConfigWindows::new`]).
    pub windows: [EcamWindow; crate::layout::MAX_WINDOWS],
}

/// One physical BAR, as enumeration sized it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct WireBar {
    /// BAR index.
    pub index: u32,
    /// 0 I/O, 1 32-bit memory, 2 64-bit memory.
    pub kind: u32,
    /// 1 if prefetchable.
    pub prefetchable: u32,
    /// The address the guest finds programmed in the virtual BAR at first, as firmware leaves
    /// it (below 4 GiB; for a 64-bit BAR the upper register reads 0); 0: unassigned, the guest
    /// programs it.
    pub guest_base: u32,
    /// Physical base address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The wire code of a BAR kind.
#[must_use]
pub const fn kind_code(kind: BarKind) -> u32 {
    match kind {
        BarKind::Io => 0,
        BarKind::Memory32 => 1,
        BarKind::Memory64 => 2,
    }
}

/// A BAR kind from its wire code.
#[must_use]
pub const fn kind_from_code(code: u32) -> Option<BarKind> {
    match code {
        0 => Some(BarKind::Io),
        1 => Some(BarKind::Memory32),
        2 => Some(BarKind::Memory64),
        _ => None,
    }
}

impl WireBar {
    /// The wire form of `bar`.
    #[must_use]
    pub const fn from_bar(bar: &Bar) -> Self {
        Self {
            index: bar.index as u32,
            kind: kind_code(bar.kind),
            prefetchable: bar.prefetchable as u32,
            guest_base: 0,
            address: bar.address,
            size: bar.size,
        }
    }

    /// [`WireBar::from_bar`] with the guest's initial address `guest_base` (see the field).
    #[must_use]
    pub const fn with_guest_base(bar: &Bar, guest_base: u32) -> Self {
        let mut w = Self::from_bar(bar);
        w.guest_base = guest_base;
        w
    }

    /// The BAR, if the kind and index are valid.
    #[must_use]
    pub fn to_bar(&self) -> Option<Bar> {
        let index = u8::try_from(self.index).ok().filter(|i| *i < 6)?;
        Some(Bar {
            index,
            kind: kind_from_code(self.kind)?,
            prefetchable: self.prefetchable != 0,
            address: self.address,
            size: self.size,
        })
    }
}

/// [`FunctionInfo::flags`]: the guest may turn bus mastering on (the function's DMA is
/// confined to the guest's IOMMU domain, or the configuration allows assignment without one).
pub const FN_BUS_MASTER_ALLOWED: u32 = 1 << 0;
/// [`FunctionInfo::flags`]: answer Vendor ID and Device ID from [`FunctionInfo::id`] (an SR-IOV
/// VF reads 0xFFFF there, PCIe Base Spec r6.0 §9.3.4.1).
pub const FN_ID_OVERRIDE: u32 = 1 << 1;
/// [`FunctionInfo::flags`]: the function is being rebuilt in a restarted task while its guest
/// keeps using it: build the virtual function only and leave the device (Command, MSI, MSI-X
/// Enable) as it is; the core replays the guest's state next ([`crate::journal`]).
pub const FN_REBUILD: u32 = 1 << 2;
/// [`FunctionInfo::flags`]: the function's guest is quarantined: build it in its reset state and
/// leave the device quiet (decode only: bus mastering, MSI and MSI-X off), whatever it had.
pub const FN_QUIESCE: u32 = 1 << 3;

/// Written by the core before [`crate::Op::AddFunction`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct FunctionInfo {
    /// The physical function's routing ID.
    pub bdf: u32,
    /// The physical function's PCI segment (bits 15:0; the rest must be 0).
    pub segment: u32,
    /// [`FN_BUS_MASTER_ALLOWED`], [`FN_ID_OVERRIDE`], [`FN_REBUILD`], [`FN_QUIESCE`].
    pub flags: u32,
    /// Vendor ID (bits 15:0) and Device ID (31:16) with [`FN_ID_OVERRIDE`].
    pub id: u32,
    /// Valid entries of `bars`.
    pub bar_count: u32,
    /// The physical BARs (for a VF: this VF's apertures).
    pub bars: [WireBar; 6],
    /// Written by the task: the MSI-X table's BAR (bits 2:0) and offset in it (bits 31:3), as
    /// the virtual capability shows it, when [`FunctionInfo::msix_entries`] is not 0.
    pub msix_table: u32,
    /// Written by the task: MSI-X table entries (0: no MSI-X capability in the virtual list).
    pub msix_entries: u32,
    /// The virtual Interrupt Line (bits 7:0) the function starts with: the guest's interrupt
    /// input for its INTx pin, or 0xFF (none).
    pub interrupt_line: u32,
}

impl FunctionInfo {
    /// The physical function within its segment.
    #[must_use]
    pub const fn bdf(&self) -> Bdf {
        Bdf::from_routing_id(self.bdf as u16)
    }

    /// The physical function, segment-qualified; `None` when the routing ID or the segment has
    /// bits above 15 set (a malformed description).
    #[must_use]
    pub const fn address(&self) -> Option<PciAddress> {
        if self.bdf > 0xffff || self.segment > 0xffff {
            return None;
        }
        Some(PciAddress::new(self.segment as u16, self.bdf()))
    }

    /// The MSI-X table as the task reported it: (BAR, offset in the BAR, entries).
    #[must_use]
    pub const fn msix(&self) -> Option<(u8, u32, u32)> {
        if self.msix_entries == 0 {
            None
        } else {
            Some((
                (self.msix_table & 7) as u8,
                self.msix_table & !7,
                self.msix_entries,
            ))
        }
    }
}

/// One event in wire form: a tag and fields whose meaning depends on it.
///
/// | tag | event | fields |
/// |---|---|---|
/// | 1 | `FunctionReset` | — |
/// | 2 | `CommandChanged` | flags: bit 0 memory, 1 I/O, 2 bus master, 3 INTx disable |
/// | 3 | `BarMoved` | index, kind, a = guest address, flags bit 0 + b = old guest address, c = size, d = physical address |
/// | 4 | `BarUnmapped` | index, kind, a = guest address, c = size |
/// | 5 | `MsiChanged` | flags bit 0 enabled, a = address, b = data, c = mask, index = vectors |
/// | 6 | `MsixControlChanged` | flags: bit 0 enabled, bit 1 function mask |
/// | 7 | `MsixEntryChanged` | index, a = address, b = data, flags bit 0 masked |
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct WireEvent {
    /// Which event.
    pub tag: u32,
    /// BAR index, vector count or table entry.
    pub index: u32,
    /// Bits, per tag.
    pub flags: u32,
    /// BAR kind code.
    pub kind: u32,
    /// First value.
    pub a: u64,
    /// Second value.
    pub b: u64,
    /// Third value.
    pub c: u64,
    /// Fourth value.
    pub d: u64,
}

/// Why a [`WireEvent`] is not an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// Unknown tag.
    Tag(u32),
    /// Unknown BAR kind code.
    Kind(u32),
    /// An index or value out of its range.
    Range,
}

const fn bit(flags: u32, n: u32) -> bool {
    flags & (1 << n) != 0
}

impl WireEvent {
    /// The wire form of `event`.
    #[must_use]
    pub const fn encode(event: &Event) -> Self {
        let z = Self {
            tag: 0,
            index: 0,
            flags: 0,
            kind: 0,
            a: 0,
            b: 0,
            c: 0,
            d: 0,
        };
        match *event {
            Event::FunctionReset => Self { tag: 1, ..z },
            Event::CommandChanged {
                memory,
                io,
                bus_master,
                intx_disable,
            } => Self {
                tag: 2,
                flags: memory as u32
                    | (io as u32) << 1
                    | (bus_master as u32) << 2
                    | (intx_disable as u32) << 3,
                ..z
            },
            Event::BarMoved {
                index,
                kind,
                guest_addr,
                old_guest_addr,
                size,
                phys_addr,
            } => Self {
                tag: 3,
                index: index as u32,
                kind: kind_code(kind),
                flags: old_guest_addr.is_some() as u32,
                a: guest_addr,
                b: match old_guest_addr {
                    Some(a) => a,
                    None => 0,
                },
                c: size,
                d: phys_addr,
            },
            Event::BarUnmapped {
                index,
                kind,
                guest_addr,
                size,
            } => Self {
                tag: 4,
                index: index as u32,
                kind: kind_code(kind),
                a: guest_addr,
                c: size,
                ..z
            },
            Event::MsiChanged {
                enabled,
                address,
                data,
                mask,
                vectors,
            } => Self {
                tag: 5,
                index: vectors as u32,
                flags: enabled as u32,
                a: address,
                b: data as u64,
                c: mask as u64,
                ..z
            },
            Event::MsixControlChanged {
                enabled,
                function_mask,
            } => Self {
                tag: 6,
                flags: enabled as u32 | (function_mask as u32) << 1,
                ..z
            },
            Event::MsixEntryChanged {
                index,
                address,
                data,
                masked,
            } => Self {
                tag: 7,
                index: index as u32,
                flags: masked as u32,
                a: address,
                b: data as u64,
                ..z
            },
        }
    }

    /// The event, if the tag, kind and ranges are valid.
    pub fn decode(&self) -> Result<Event, WireError> {
        let index8 = || u8::try_from(self.index).map_err(|_| WireError::Range);
        let kind = || kind_from_code(self.kind).ok_or(WireError::Kind(self.kind));
        let u32_of = |v: u64| u32::try_from(v).map_err(|_| WireError::Range);
        Ok(match self.tag {
            1 => Event::FunctionReset,
            2 => Event::CommandChanged {
                memory: bit(self.flags, 0),
                io: bit(self.flags, 1),
                bus_master: bit(self.flags, 2),
                intx_disable: bit(self.flags, 3),
            },
            3 => Event::BarMoved {
                index: index8()?,
                kind: kind()?,
                guest_addr: self.a,
                old_guest_addr: bit(self.flags, 0).then_some(self.b),
                size: self.c,
                phys_addr: self.d,
            },
            4 => Event::BarUnmapped {
                index: index8()?,
                kind: kind()?,
                guest_addr: self.a,
                size: self.c,
            },
            5 => Event::MsiChanged {
                enabled: bit(self.flags, 0),
                address: self.a,
                data: u32_of(self.b)?,
                mask: u32_of(self.c)?,
                vectors: index8()?,
            },
            6 => Event::MsixControlChanged {
                enabled: bit(self.flags, 0),
                function_mask: bit(self.flags, 1),
            },
            7 => Event::MsixEntryChanged {
                index: u16::try_from(self.index).map_err(|_| WireError::Range)?,
                address: self.a,
                data: u32_of(self.b)?,
                masked: bit(self.flags, 0),
            },
            t => return Err(WireError::Tag(t)),
        })
    }
}

/// Bytes of [`SharedPage::message`].
pub const MESSAGE_LEN: usize = 1024;

/// The shared page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C)]
pub struct SharedPage {
    /// For [`crate::Op::Init`].
    pub init: InitInfo,
    /// For [`crate::Op::AddFunction`].
    pub function: FunctionInfo,
    /// Valid entries of `events` after a write (the core clamps it to [`MAX_EVENTS`]).
    pub event_count: u32,
    /// Valid bytes of `message` (clamped to [`MESSAGE_LEN`]).
    pub message_len: u32,
    /// The events of the last write, in order.
    pub events: [WireEvent; MAX_EVENTS],
    /// UTF-8 text: why a build failed, a panic message.
    pub message: [u8; MESSAGE_LEN],
}

const _: () = assert!(core::mem::size_of::<SharedPage>() <= 4096);

impl SharedPage {
    /// All zero.
    pub const ZERO: Self = Self {
        init: InitInfo {
            mode: 0,
            guests: 0,
            window_count: 0,
            reserved: 0,
            windows: [EcamWindow {
                segment: 0,
                start_bus: 0,
                end_bus: 0,
                reserved: 0,
            }; crate::layout::MAX_WINDOWS],
        },
        function: FunctionInfo {
            bdf: 0,
            segment: 0,
            flags: 0,
            id: 0,
            bar_count: 0,
            bars: [WireBar {
                index: 0,
                kind: 0,
                prefetchable: 0,
                guest_base: 0,
                address: 0,
                size: 0,
            }; 6],
            msix_table: 0,
            msix_entries: 0,
            interrupt_line: 0xff,
        },
        event_count: 0,
        message_len: 0,
        events: [WireEvent {
            tag: 0,
            index: 0,
            flags: 0,
            kind: 0,
            a: 0,
            b: 0,
            c: 0,
            d: 0,
        }; MAX_EVENTS],
        message: [0; MESSAGE_LEN],
    };

    /// The message as text (invalid UTF-8 ends it; the length is clamped).
    #[must_use]
    pub fn message(&self) -> &str {
        let len = (self.message_len as usize).min(MESSAGE_LEN);
        let bytes = &self.message[..len];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }

    /// Sets the message (truncated to [`MESSAGE_LEN`] bytes).
    pub fn set_message(&mut self, text: &str) {
        let n = text.len().min(MESSAGE_LEN);
        self.message[..n].copy_from_slice(&text.as_bytes()[..n]);
        self.message_len = n as u32;
    }

    /// The valid events, decoded; a malformed one is an error.
    pub fn events(&self) -> impl Iterator<Item = Result<Event, WireError>> + '_ {
        let n = (self.event_count as usize).min(MAX_EVENTS);
        self.events[..n].iter().map(WireEvent::decode)
    }
}
