//! Placement of VF BAR windows into a 32-bit MMIO window.
//!
//! Each VF BAR needs one contiguous window of `per-VF size × NumVFs` bytes whose base is aligned
//! to the per-VF size (PCIe Base Spec r6.0 §9.3.3.14; the per-VF size is a power of two, PCI Local
//! Bus Spec 3.0 §6.2.5.1). On the QEMU q35 test machine the windows must lie below 4 GiB (the igb
//! VF model drops the upper BAR dword), so the planner takes an inclusive `[base, limit]` window
//! that must itself end below 4 GiB, e.g. a root port's memory window.
//!
//! Placement is first-fit in order of decreasing alignment. Since every window is a multiple of
//! its own alignment and alignments are powers of two, placing the most-aligned windows first
//! leaves no gaps after the first one: the plan needs at most `align_max - 1` bytes of padding in
//! front, so it fails only when the window is genuinely too small for that order.

use crate::bar::Bar;
use crate::bdf::Bdf;

/// An inclusive MMIO window `[base, limit]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MmioWindow {
    /// First byte.
    pub base: u64,
    /// Last byte (inclusive).
    pub limit: u64,
}

impl MmioWindow {
    /// Highest usable limit: the last byte below 4 GiB.
    pub const LIMIT_4G: u64 = 0xffff_ffff;

    /// Size in bytes (`limit - base + 1`), 0 if `limit < base`.
    #[must_use]
    pub const fn size(&self) -> u64 {
        if self.limit < self.base {
            0
        } else {
            self.limit - self.base + 1
        }
    }

    /// `[base, base + size - 1]`; `None` for size 0 or on overflow.
    #[must_use]
    pub const fn at(base: u64, size: u64) -> Option<Self> {
        if size == 0 {
            return None;
        }
        match base.checked_add(size - 1) {
            Some(limit) => Some(Self { base, limit }),
            None => None,
        }
    }

    /// `limit < base`: the window holds no byte (a closed bridge window, for instance).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.limit < self.base
    }

    /// Both windows hold a common byte (empty windows overlap nothing).
    #[must_use]
    pub const fn overlaps(&self, other: &Self) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && self.base <= other.limit
            && other.base <= self.limit
    }

    /// Every byte of `inner` is in `self` (an empty `inner` is contained in anything).
    #[must_use]
    pub const fn contains(&self, inner: &Self) -> bool {
        inner.is_empty() || (self.base <= inner.base && inner.limit <= self.limit)
    }

    /// The smallest window holding both (either may be empty).
    #[must_use]
    pub const fn hull(&self, other: &Self) -> Self {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Self {
            base: if self.base < other.base {
                self.base
            } else {
                other.base
            },
            limit: if self.limit > other.limit {
                self.limit
            } else {
                other.limit
            },
        }
    }
}

impl core::fmt::Display for MmioWindow {
    /// `0xc1200000-0xc13fffff`, or `closed` for an empty window.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            write!(f, "closed")
        } else {
            write!(f, "{:#x}-{:#x}", self.base, self.limit)
        }
    }
}

/// One VF BAR to place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VfBarRequest {
    /// The PF owning the SR-IOV capability.
    pub pf: Bdf,
    /// VF BAR index (0..=5).
    pub bar_index: u8,
    /// Per-VF size in bytes (a power of two), as sized through the SR-IOV capability.
    pub per_vf_size: u64,
    /// NumVFs the window must hold.
    pub num_vfs: u16,
}

impl VfBarRequest {
    /// The request for a VF BAR sized by [`crate::sriov::SriovCap::size_vf_bars`].
    #[must_use]
    pub const fn new(pf: Bdf, bar: &Bar, num_vfs: u16) -> Self {
        Self {
            pf,
            bar_index: bar.index,
            per_vf_size: bar.size,
            num_vfs,
        }
    }

    /// Window size `per_vf_size × num_vfs`; `None` on overflow.
    #[must_use]
    pub const fn window_size(&self) -> Option<u64> {
        self.per_vf_size.checked_mul(self.num_vfs as u64)
    }
}

/// Where one request went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VfBarPlacement {
    /// The request.
    pub request: VfBarRequest,
    /// Base of VF 0's aperture, to write into the VF BAR.
    pub base: u64,
    /// Window size in bytes.
    pub size: u64,
}

impl VfBarPlacement {
    /// Last byte of the window.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.base + (self.size - 1)
    }
}

/// Why a plan failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PlanError {
    /// `limit` is above 4 GiB − 1.
    #[error("window limit {limit:#x} is not below 4 GiB")]
    WindowAbove4G {
        /// The limit given.
        limit: u64,
    },
    /// `limit < base`.
    #[error("empty window [{base:#x}, {limit:#x}]")]
    EmptyWindow {
        /// Base given.
        base: u64,
        /// Limit given.
        limit: u64,
    },
    /// A per-VF size that is 0 or not a power of two.
    #[error("request {index}: per-VF size {size:#x} is not a power of two")]
    BadSize {
        /// Index into the request slice.
        index: usize,
        /// The size.
        size: u64,
    },
    /// A request with NumVFs 0 (nothing to place) or a window size that overflows.
    #[error("request {index}: no VFs or window size overflows")]
    BadCount {
        /// Index into the request slice.
        index: usize,
    },
    /// The output slice is shorter than the request slice.
    #[error("output has room for {capacity} placements, {needed} needed")]
    OutputTooShort {
        /// Requests.
        needed: usize,
        /// Output length.
        capacity: usize,
    },
    /// The window cannot hold the requests.
    #[error(
        "request {index} ({size:#x} bytes aligned to {align:#x}) does not fit; {needed:#x} bytes needed in a {available:#x}-byte window"
    )]
    WindowTooSmall {
        /// Index of the first request that did not fit.
        index: usize,
        /// Its window size.
        size: u64,
        /// Its alignment.
        align: u64,
        /// Bytes the whole plan needs from `base`, including front padding (saturating).
        needed: u64,
        /// Window size.
        available: u64,
    },
}

/// Places every request into `window`. `out[i]` receives the placement of `requests[i]`; the
/// returned slice is `out[..requests.len()]`. Nothing is written to hardware: program the bases
/// with [`crate::sriov::SriovCap::write_vf_bar`].
pub fn plan_vf_bars<'o>(
    window: MmioWindow,
    requests: &[VfBarRequest],
    out: &'o mut [Option<VfBarPlacement>],
) -> Result<&'o [Option<VfBarPlacement>], PlanError> {
    if window.limit > MmioWindow::LIMIT_4G {
        return Err(PlanError::WindowAbove4G {
            limit: window.limit,
        });
    }
    if window.limit < window.base {
        return Err(PlanError::EmptyWindow {
            base: window.base,
            limit: window.limit,
        });
    }
    if out.len() < requests.len() {
        return Err(PlanError::OutputTooShort {
            needed: requests.len(),
            capacity: out.len(),
        });
    }
    for (index, r) in requests.iter().enumerate() {
        if !r.per_vf_size.is_power_of_two() {
            return Err(PlanError::BadSize {
                index,
                size: r.per_vf_size,
            });
        }
        if r.num_vfs == 0 || r.window_size().is_none() {
            return Err(PlanError::BadCount { index });
        }
    }
    let out = &mut out[..requests.len()];
    out.fill(None);

    let mut cursor = window.base;
    for _ in 0..requests.len() {
        // Next request: the unplaced one with the largest alignment, lowest index on ties.
        let mut pick: Option<(usize, &VfBarRequest)> = None;
        for (i, r) in requests.iter().enumerate() {
            if out[i].is_none() && pick.is_none_or(|(_, p)| r.per_vf_size > p.per_vf_size) {
                pick = Some((i, r));
            }
        }
        let Some((index, r)) = pick else { break };
        let align = r.per_vf_size;
        let size = r.window_size().unwrap_or(u64::MAX);
        let base = cursor.checked_add(align - 1).map(|v| v & !(align - 1));
        let end = base.and_then(|b| b.checked_add(size - 1));
        match (base, end) {
            (Some(base), Some(end)) if end <= window.limit => {
                out[index] = Some(VfBarPlacement {
                    request: *r,
                    base,
                    size,
                });
                cursor = end + 1;
            }
            _ => {
                return Err(PlanError::WindowTooSmall {
                    index,
                    size,
                    align,
                    needed: needed_bytes(window.base, requests),
                    available: window.size(),
                });
            }
        }
    }
    Ok(out)
}

/// What one contiguous range must offer to hold every request: `(size, alignment)`. A range of
/// `size` bytes whose base is aligned to `alignment` (the largest per-VF size) always holds the
/// plan [`plan_vf_bars`] makes, without padding: placed in order of decreasing alignment, each
/// window is a multiple of its own alignment, so every later base stays aligned.
pub fn plan_span(requests: &[VfBarRequest]) -> Result<(u64, u64), PlanError> {
    let mut size = 0u64;
    let mut align = 1u64;
    for (index, r) in requests.iter().enumerate() {
        if !r.per_vf_size.is_power_of_two() {
            return Err(PlanError::BadSize {
                index,
                size: r.per_vf_size,
            });
        }
        let window = match r.window_size() {
            Some(w) if r.num_vfs != 0 => w,
            _ => return Err(PlanError::BadCount { index }),
        };
        size = size
            .checked_add(window)
            .ok_or(PlanError::BadCount { index })?;
        align = align.max(r.per_vf_size);
    }
    Ok((size, align))
}

/// Bytes a plan starting at `base` needs: front padding to the largest alignment plus the sum
/// of all windows (saturating).
fn needed_bytes(base: u64, requests: &[VfBarRequest]) -> u64 {
    let max_align = requests.iter().map(|r| r.per_vf_size).max().unwrap_or(1);
    let pad = (max_align - (base % max_align)) % max_align;
    requests
        .iter()
        .map(|r| r.window_size().unwrap_or(u64::MAX))
        .fold(pad, u64::saturating_add)
}
