//! The XSAVE state components a guest may enable, and the sizes of its XSAVE area (SDM Vol. 1
//! §13.2 "Enumeration of CPU Support for XSAVE Instructions and XSAVE-Supported Features", §13.3
//! "Enabling the XSAVE Feature Set and XSAVE-Enabled Features", §13.4 "XSAVE Area").

/// XCR0 bit 0: x87 state (always set).
pub const XCR0_X87: u64 = 1 << 0;
/// XCR0 bit 1: SSE state (XMM registers, MXCSR).
pub const XCR0_SSE: u64 = 1 << 1;
/// XCR0 bit 2: AVX state (upper halves of YMM0-15).
pub const XCR0_AVX: u64 = 1 << 2;
/// XCR0 bit 5: AVX-512 opmask registers k0-k7.
pub const XCR0_OPMASK: u64 = 1 << 5;
/// XCR0 bit 6: AVX-512 upper halves of ZMM0-15.
pub const XCR0_ZMM_HI256: u64 = 1 << 6;
/// XCR0 bit 7: AVX-512 ZMM16-31.
pub const XCR0_HI16_ZMM: u64 = 1 << 7;
/// The three AVX-512 components, which XCR0 enables together or not at all (SDM Vol. 1 §13.3).
pub const XCR0_AVX512: u64 = XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;
/// XCR0 bit 9: the PKRU register (protection keys).
pub const XCR0_PKRU: u64 = 1 << 9;

/// Every component Conduit lets a guest enable, at most: user state that XSAVE/XRSTOR switch
/// as a whole. Not included: MPX (bits 3-4, deprecated), AMX (17-18, needs XFD), and every
/// supervisor component (they need XSAVES and IA32_XSS, which guests do not get).
pub const XCR0_GUEST_MAX: u64 = XCR0_X87 | XCR0_SSE | XCR0_AVX | XCR0_AVX512 | XCR0_PKRU;

/// The legacy region (512 bytes) plus the XSAVE header (64 bytes): the size of an XSAVE area
/// holding x87 and SSE state only, and the offset of the first extended component.
pub const LEGACY_AND_HEADER: u32 =
    (conduit_cpustate::xsave::LEGACY_SIZE + conduit_cpustate::xsave::HEADER_SIZE) as u32;

/// Where one extended state component lives (CPUID leaf 0xD subleaf `i`, i >= 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// EAX: its size in bytes.
    pub size: u32,
    /// EBX: its offset in the standard (non-compacted) format.
    pub offset: u32,
    /// ECX bit 1: 64-byte aligned in the compacted format.
    pub aligned: bool,
}

impl Component {
    /// From the registers of CPUID leaf 0xD subleaf `i`.
    pub fn from_leaf([eax, ebx, ecx, _]: [u32; 4]) -> Self {
        Self {
            size: eax,
            offset: ebx,
            aligned: ecx & 0b10 != 0,
        }
    }
}

/// The size of a standard-format XSAVE area holding the components of `xcr0`: the end of the
/// furthest enabled component, at least [`LEGACY_AND_HEADER`]. `component(i)` gives component `i`
/// (2..=63). Computed from the component layout, never taken from the host's leaf 0xD EBX/ECX,
/// which an emulator may get wrong.
pub fn standard_size(xcr0: u64, component: impl Fn(u32) -> Component) -> u32 {
    let end = conduit_cpustate::xsave::standard_end(xcr0, |_, i| {
        let c = component(i);
        [c.size, c.offset, 0, 0]
    });
    u32::try_from(end).unwrap_or(u32::MAX)
}

/// The size of a compacted-format XSAVE area (XSAVEC) holding the components of `xcr0` (SDM
/// Vol. 1 §13.4.3): the components in ascending order after the header, each 64-byte aligned if
/// its leaf says so.
pub fn compacted_size(xcr0: u64, component: impl Fn(u32) -> Component) -> u32 {
    (2..64)
        .filter(|&i| xcr0 & (1 << i) != 0)
        .fold(LEGACY_AND_HEADER, |end, i| {
            let c = component(i);
            let start = if c.aligned {
                end.saturating_add(63) & !63
            } else {
                end
            };
            start.saturating_add(c.size)
        })
}
