//! The task's ECAM windows, checked: which window (and where in it) a segment-qualified
//! configuration access lands.
//!
//! ECAM (PCIe Base Spec r6.0 §7.2.2) gives each function of bus `b`, device `d`, function `f`
//! 4 KiB at `(b - start_bus) << 20 | d << 15 | f << 12` from the base of the MCFG allocation that
//! decodes bus `b`; a machine with several PCI segment groups has at least one allocation per
//! segment (PCI Firmware Spec 3.3 §4.1.2), and bus numbers repeat from segment to segment. The
//! core describes every allocation in [`InitInfo`]; window `i` is mapped at
//! [`layout::config_va`]`(i)`. [`ConfigWindows::new`] refuses a description the task cannot
//! use safely, and [`ConfigWindows::locate`] turns (segment, BDF, offset) into an address inside
//! exactly one mapped window, or nothing.

use crate::layout;
use crate::shared::{EcamWindow, InitInfo, mode};
use conduit_pci::PciAddress;

/// Why an [`InitInfo`] does not describe usable ECAM windows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WindowError {
    /// The mode is neither ECAM nor port I/O.
    UnknownMode(u32),
    /// [`InitInfo::reserved`] is not 0 (it holds this value).
    ReservedSet(u32),
    /// More windows than [`layout::MAX_WINDOWS`], or none with [`mode::ECAM`], or some with
    /// [`mode::PORT_IO`].
    Count(u32),
    /// Window `index` names a segment above 0xFFFF, has reserved bits set, or its bus range is
    /// empty or beyond bus 255.
    Malformed {
        /// Which window.
        index: usize,
    },
    /// Window `index` decodes a bus of its segment that an earlier window `earlier` decodes too.
    Overlap {
        /// Which window.
        index: usize,
        /// The earlier window deciding the same buses.
        earlier: usize,
    },
}

impl core::fmt::Display for WindowError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownMode(m) => write!(f, "unknown configuration access mode {m}"),
            Self::ReservedSet(v) => write!(f, "the reserved field is {v:#x}, not 0"),
            Self::Count(n) => write!(
                f,
                "{n} ECAM window(s) do not fit the mode (1 to {} with ECAM, none with port I/O)",
                layout::MAX_WINDOWS
            ),
            Self::Malformed { index } => write!(f, "ECAM window {index} is malformed"),
            Self::Overlap { index, earlier } => write!(
                f,
                "ECAM window {index} decodes buses of window {earlier} on the same segment"
            ),
        }
    }
}

/// How the task reaches physical configuration space, checked: ECAM windows (the first `count`
/// of `windows`, valid and disjoint per segment, window `i` at [`layout::config_va`]`(i)`), or,
/// with no window, configuration mechanism #1 (segment 0, the first 256 bytes of each function).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConfigWindows {
    windows: [EcamWindow; layout::MAX_WINDOWS],
    count: usize,
}

/// Where a checked access lands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// The dword at this address of the task's address space (inside a mapped ECAM window).
    Ecam(u64),
    /// The value to write to port 0xCF8 (enable bit, routing ID, register).
    Port(u32),
}

impl ConfigWindows {
    /// Checks the description the core wrote.
    pub fn new(info: &InitInfo) -> Result<Self, WindowError> {
        if info.reserved != 0 {
            return Err(WindowError::ReservedSet(info.reserved));
        }
        let count = info.window_count as usize;
        match info.mode {
            mode::PORT_IO if count == 0 => {
                return Ok(Self {
                    windows: info.windows,
                    count: 0,
                });
            }
            mode::PORT_IO => return Err(WindowError::Count(info.window_count)),
            mode::ECAM if (1..=layout::MAX_WINDOWS).contains(&count) => {}
            mode::ECAM => return Err(WindowError::Count(info.window_count)),
            m => return Err(WindowError::UnknownMode(m)),
        }
        let windows = info.windows;
        for (index, w) in windows[..count].iter().enumerate() {
            if w.segment > 0xffff || w.reserved != 0 || w.start_bus > w.end_bus || w.end_bus > 0xff
            {
                return Err(WindowError::Malformed { index });
            }
            let clash = windows[..index].iter().position(|e| {
                e.segment == w.segment && e.start_bus <= w.end_bus && w.start_bus <= e.end_bus
            });
            if let Some(earlier) = clash {
                return Err(WindowError::Overlap { index, earlier });
            }
        }
        Ok(Self { windows, count })
    }

    /// Where the dword at `offset` (4-byte aligned, below 4 KiB; below 256 bytes through ports)
    /// of `at` lies; `None` when no window decodes `at`'s segment and bus, or the offset is not
    /// reachable. Never an address outside the window that decodes `at`.
    #[must_use]
    pub fn locate(&self, at: PciAddress, offset: u16) -> Option<Target> {
        if !offset.is_multiple_of(4) || offset >= 0x1000 {
            return None;
        }
        let bus = u32::from(at.bdf.bus());
        if self.count == 0 {
            return (at.segment == 0 && offset < 0x100).then(|| {
                Target::Port(
                    0x8000_0000 | (u32::from(at.bdf.routing_id()) << 8) | u32::from(offset),
                )
            });
        }
        let (index, w) = self.windows[..self.count]
            .iter()
            .enumerate()
            .find(|(_, w)| {
                w.segment == u32::from(at.segment) && (w.start_bus..=w.end_bus).contains(&bus)
            })?;
        let within = (u64::from(bus - w.start_bus) << 20)
            | (u64::from(at.bdf.devfn()) << 12)
            | u64::from(offset);
        Some(Target::Ecam(layout::config_va(index) + within))
    }

    /// Bytes of window `w` as the core maps it: its buses × 1 MiB.
    #[must_use]
    pub const fn window_bytes(w: &EcamWindow) -> u64 {
        (w.end_bus.saturating_sub(w.start_bus) as u64 + 1) << 20
    }
}

/// Which of the platform's ECAM windows the task is given, when there may be more than it maps:
/// `segments` lists each window's PCI segment in MCFG order; the result is the indices into it of
/// the windows to map, in the order they are mapped (the `i`-th becomes [`InitInfo`] window `i`):
/// segment 0's windows first, then the others in MCFG order, [`layout::MAX_WINDOWS`] at most.
/// The windows not named are left out (their functions cannot be reached by the task).
pub fn task_windows(segments: &[u16]) -> impl Iterator<Item = usize> + '_ {
    let on_segment0 = |wanted: bool| {
        segments
            .iter()
            .enumerate()
            .filter(move |(_, s)| (**s == 0) == wanted)
            .map(|(i, _)| i)
    };
    on_segment0(true)
        .chain(on_segment0(false))
        .take(layout::MAX_WINDOWS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conduit_pci::Bdf;

    fn window(segment: u32, start_bus: u32, end_bus: u32) -> EcamWindow {
        EcamWindow {
            segment,
            start_bus,
            end_bus,
            reserved: 0,
        }
    }

    fn ecam(list: &[EcamWindow]) -> InitInfo {
        let mut info = InitInfo {
            mode: mode::ECAM,
            guests: 1,
            window_count: list.len() as u32,
            ..InitInfo::default()
        };
        info.windows[..list.len()].copy_from_slice(list);
        info
    }

    fn at(segment: u16, bus: u8, dev: u8, func: u8) -> PciAddress {
        PciAddress::new(segment, Bdf::new(bus, dev, func).expect("valid"))
    }

    /// Two segments, each with bus 02: the same BDF lands in its own segment's window, in the
    /// window mapped for that segment and nowhere else.
    #[test]
    fn the_same_bdf_on_two_segments_lands_in_two_windows() {
        let w =
            ConfigWindows::new(&ecam(&[window(0, 0, 0xff), window(1, 0, 0x3f)])).expect("valid");
        let seg0 = w.locate(at(0, 2, 0, 0), 0x10);
        let seg1 = w.locate(at(1, 2, 0, 0), 0x10);
        assert_eq!(
            seg0,
            Some(Target::Ecam(layout::config_va(0) + (2 << 20) + 0x10))
        );
        assert_eq!(
            seg1,
            Some(Target::Ecam(layout::config_va(1) + (2 << 20) + 0x10))
        );
        assert_ne!(seg0, seg1);
        // Bus 0x40 is beyond segment 1's window; segment 2 has none.
        assert_eq!(w.locate(at(1, 0x40, 0, 0), 0), None);
        assert_eq!(w.locate(at(2, 2, 0, 0), 0), None);
    }

    /// A window starting above bus 0 maps its first bus at its start; the last dword of the
    /// last function of its last bus is the last dword of the window.
    #[test]
    fn offsets_count_from_the_first_bus_and_stay_inside() {
        let w =
            ConfigWindows::new(&ecam(&[window(0, 0, 0x7f), window(0, 0x80, 0x81)])).expect("valid");
        let last = w.locate(at(0, 0x81, 31, 7), 0xffc);
        let bytes = ConfigWindows::window_bytes(&window(0, 0x80, 0x81));
        assert_eq!(bytes, 2 << 20);
        assert_eq!(last, Some(Target::Ecam(layout::config_va(1) + bytes - 4)));
        assert_eq!(
            w.locate(at(0, 0x80, 0, 0), 0),
            Some(Target::Ecam(layout::config_va(1)))
        );
        assert_eq!(w.locate(at(0, 0x82, 0, 0), 0), None);
        assert_eq!(w.locate(at(0, 1, 0, 0), 0x1000), None, "past 4 KiB");
        assert_eq!(w.locate(at(0, 1, 0, 0), 0x12), None, "misaligned");
    }

    #[test]
    fn port_io_reaches_segment_0_and_256_bytes_only() {
        let info = InitInfo {
            mode: mode::PORT_IO,
            guests: 1,
            ..InitInfo::default()
        };
        let w = ConfigWindows::new(&info).expect("valid");
        assert_eq!(
            w.locate(at(0, 2, 1, 3), 0x40),
            Some(Target::Port(0x8000_0000 | (0x020b << 8) | 0x40))
        );
        assert_eq!(w.locate(at(1, 2, 1, 3), 0x40), None);
        assert_eq!(w.locate(at(0, 2, 1, 3), 0x100), None);
    }

    /// A machine whose MCFG lists more windows than the task maps: segment 0's come first
    /// (wherever the MCFG lists them), then the others in order, and no more than the task maps.
    #[test]
    fn more_windows_than_the_task_maps_keep_segment_0() {
        let mut segments: Vec<u16> = (1..=20).collect();
        segments.insert(17, 0);
        segments.push(0);
        let chosen: Vec<usize> = task_windows(&segments).collect();
        assert_eq!(chosen.len(), layout::MAX_WINDOWS);
        assert_eq!(&chosen[..2], &[17, 21], "segment 0's windows first");
        assert_eq!(&chosen[2..], &(0..14).collect::<Vec<_>>()[..]);
        // Segments 15 to 20 are left out.
        let left: Vec<u16> = (0..segments.len())
            .filter(|i| !chosen.contains(i))
            .map(|i| segments[i])
            .collect();
        assert_eq!(left, [15, 16, 17, 18, 19, 20]);
        // What is chosen is a description the task accepts (segment 0's two windows split its
        // buses).
        let list: Vec<EcamWindow> = chosen
            .iter()
            .map(|&i| match i {
                17 => window(0, 0, 0x7f),
                21 => window(0, 0x80, 0xff),
                _ => window(u32::from(segments[i]), 0, 0xff),
            })
            .collect();
        let checked = ConfigWindows::new(&ecam(&list)).map(|_| ());
        assert_eq!(checked, Ok(()));
        // Few windows: all of them, segment 0 first.
        assert_eq!(task_windows(&[2, 0, 1]).collect::<Vec<_>>(), [1, 0, 2]);
        assert_eq!(task_windows(&[]).count(), 0);
    }

    #[test]
    fn malformed_descriptions_are_refused() {
        assert_eq!(ConfigWindows::new(&ecam(&[])), Err(WindowError::Count(0)));
        let mut reserved = ecam(&[window(0, 0, 0xff)]);
        reserved.reserved = 0x10;
        assert_eq!(
            ConfigWindows::new(&reserved),
            Err(WindowError::ReservedSet(0x10))
        );
        let mut ports = InitInfo {
            mode: mode::PORT_IO,
            reserved: 1,
            ..InitInfo::default()
        };
        assert_eq!(ConfigWindows::new(&ports), Err(WindowError::ReservedSet(1)));
        ports.reserved = 0;
        assert!(ConfigWindows::new(&ports).is_ok());
        let mut too_many = ecam(&[window(0, 0, 0)]);
        too_many.window_count = layout::MAX_WINDOWS as u32 + 1;
        assert_eq!(
            ConfigWindows::new(&too_many),
            Err(WindowError::Count(layout::MAX_WINDOWS as u32 + 1))
        );
        let mut ports = ecam(&[window(0, 0, 0)]);
        ports.mode = mode::PORT_IO;
        assert_eq!(ConfigWindows::new(&ports), Err(WindowError::Count(1)));
        let mut odd = ecam(&[window(0, 0, 0)]);
        odd.mode = 7;
        assert_eq!(ConfigWindows::new(&odd), Err(WindowError::UnknownMode(7)));
        for bad in [
            window(0x1_0000, 0, 0),
            window(0, 5, 4),
            window(0, 0, 0x100),
            EcamWindow {
                reserved: 1,
                ..window(0, 0, 0)
            },
        ] {
            assert_eq!(
                ConfigWindows::new(&ecam(&[window(3, 0, 0xff), bad])),
                Err(WindowError::Malformed { index: 1 }),
                "{bad:?}"
            );
        }
        // Overlapping bus ranges of one segment are refused; the same buses on another segment
        // are not an overlap.
        assert_eq!(
            ConfigWindows::new(&ecam(&[
                window(1, 0, 0x3f),
                window(0, 0, 0xff),
                window(1, 0x3f, 0x40)
            ])),
            Err(WindowError::Overlap {
                index: 2,
                earlier: 0
            })
        );
        assert!(ConfigWindows::new(&ecam(&[window(1, 0, 0x3f), window(0, 0, 0x3f)])).is_ok());
    }
}
