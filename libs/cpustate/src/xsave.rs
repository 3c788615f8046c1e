//! The standard-format XSAVE area (SDM Vol. 1 §13.4 "XSAVE Area"): its size for a set of state
//! components, and the image whose XRSTOR gives the architectural initial state.

/// The legacy region (x87 and SSE, the FXSAVE layout) and the XSAVE header that follows it.
pub const LEGACY_SIZE: usize = 512;
pub const HEADER_SIZE: usize = 64;
/// XSAVE, XRSTOR and the area they use must be 64-byte aligned (SDM Vol. 1 §13.4).
pub const ALIGN: usize = 64;
/// MXCSR's offset in the legacy region (SDM Vol. 1 §10.5.1, Table 10-2).
pub const MXCSR_OFFSET: usize = 24;
/// MXCSR after reset and FNINIT-equivalent initialisation: all SIMD exceptions masked.
pub const MXCSR_INIT: u32 = 0x1f80;

/// Where a standard-format XSAVE of the components in `mask` ends: after the legacy region and
/// header, and after every extended component (bit ≥ 2) at its offset, which
/// CPUID.(EAX=0DH,ECX=i) reports as EBX (offset) and EAX (size). `cpuid(leaf, subleaf)` returns
/// `[eax, ebx, ecx, edx]`. Both the areas the hypervisor allocates ([`area_size`]) and the sizes
/// a guest's CPUID leaf 0xD states (`conduit-cpu-policy`) are this.
pub fn standard_end(mask: u64, cpuid: impl Fn(u32, u32) -> [u32; 4]) -> usize {
    (2..64u32)
        .filter(|&i| mask & (1 << i) != 0)
        .map(|i| {
            let [size, offset, _, _] = cpuid(0xd, i);
            offset as usize + size as usize
        })
        .fold(LEGACY_SIZE + HEADER_SIZE, usize::max)
}

/// The bytes a standard-format XSAVE of the components in `mask` needs: [`standard_end`] rounded
/// up to a multiple of [`ALIGN`].
pub fn area_size(mask: u64, cpuid: impl Fn(u32, u32) -> [u32; 4]) -> usize {
    standard_end(mask, cpuid).next_multiple_of(ALIGN)
}

/// Bytes to allocate for an area: [`area_size`] (`computed`) and what CPUID.(EAX=0DH,ECX=0):ECX
/// reports for every supported component (`reported`), whichever is larger, rounded up to whole
/// 4-KiB pages. The slack is deliberate: an emulator's leaf 0xD may under-report where its XSAVE
/// really writes (Bochs' `tigerlake` and `corei7_skylake_x` do, docs/cpu-state.md), and an area too
/// small for XSAVE would let it overwrite whatever follows.
pub fn allocation_size(computed: usize, reported: usize) -> usize {
    computed.max(reported).next_multiple_of(4096)
}

/// Writes into `area` (at least [`LEGACY_SIZE`] + [`HEADER_SIZE`] bytes) the image whose XRSTOR
/// puts every component into its initial configuration: the header's XSTATE_BV is 0, so XRSTOR
/// initialises each requested component (SDM Vol. 1 §13.8.1 "Standard Form of XRSTOR"); MXCSR is
/// loaded from the legacy region whenever SSE or AVX is requested, so it holds its reset value.
pub fn write_init_image(area: &mut [u8]) {
    area.fill(0);
    area[MXCSR_OFFSET..MXCSR_OFFSET + 4].copy_from_slice(&MXCSR_INIT.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bochs' and Skylake-X's layout: AVX 256@576, opmask 64@1088, ZMM_Hi256 512@1152,
    /// Hi16_ZMM 1024@1664, PKRU 8@2688.
    fn skylake(leaf: u32, sub: u32) -> [u32; 4] {
        assert_eq!(leaf, 0xd);
        match sub {
            2 => [256, 576, 0, 0],
            5 => [64, 1088, 0, 0],
            6 => [512, 1152, 0, 0],
            7 => [1024, 1664, 0, 0],
            9 => [8, 2688, 0, 0],
            _ => [0, 0, 0, 0],
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(area_size(0x3, skylake), 576);
        assert_eq!(area_size(0x7, skylake), 832);
        assert_eq!(area_size(0xe7, skylake), 2688);
        // PKRU's 8 bytes end at 2696: rounded up to the alignment.
        assert_eq!(area_size(0x2e7, skylake), 2752);
        assert_eq!(area_size(0x2e7, skylake) % ALIGN, 0);
    }

    #[test]
    fn allocation() {
        assert_eq!(allocation_size(2688, 2432), 4096);
        assert_eq!(allocation_size(832, 2696), 4096);
        assert_eq!(allocation_size(4096, 0), 4096);
        assert_eq!(allocation_size(4097, 0), 8192);
    }

    #[test]
    fn init_image() {
        let mut area = [0xaau8; 832];
        write_init_image(&mut area);
        assert_eq!(&area[24..28], &[0x80, 0x1f, 0, 0]);
        assert!(area[..24].iter().all(|&b| b == 0));
        assert!(area[28..].iter().all(|&b| b == 0));
    }
}
