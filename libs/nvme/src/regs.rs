//! Controller registers in BAR0 (NVMe Base Spec 2.0 §3.1.3, Figure 35) and doorbells (§3.1.3.x,
//! "Submission Queue y Tail Doorbell" / "Completion Queue y Head Doorbell").
//!
//! Offsets are in bytes from the start of BAR0. 64-bit registers (CAP, ASQ, ACQ) may be accessed
//! as two 32-bit halves, low half first; the kernel uses 64-bit accesses where it can.

/// Register offsets (Figure 35).
pub mod offset {
    /// Controller Capabilities (64-bit).
    pub const CAP: u64 = 0x00;
    /// Version.
    pub const VS: u64 = 0x08;
    /// Interrupt Mask Set.
    pub const INTMS: u64 = 0x0c;
    /// Interrupt Mask Clear.
    pub const INTMC: u64 = 0x10;
    /// Controller Configuration.
    pub const CC: u64 = 0x14;
    /// Controller Status.
    pub const CSTS: u64 = 0x1c;
    /// NVM Subsystem Reset.
    pub const NSSR: u64 = 0x20;
    /// Admin Queue Attributes.
    pub const AQA: u64 = 0x24;
    /// Admin Submission Queue Base Address (64-bit).
    pub const ASQ: u64 = 0x28;
    /// Admin Completion Queue Base Address (64-bit).
    pub const ACQ: u64 = 0x30;
    /// The first doorbell (admin submission queue tail).
    pub const DOORBELLS: u64 = 0x1000;
}

fn bits(value: u64, lo: u32, width: u32) -> u64 {
    (value >> lo) & ((1u64 << width) - 1)
}

/// Controller Capabilities (§3.1.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum Queue Entries Supported, as a count (the field is 0's based): at least 2.
    pub fn max_queue_entries(self) -> u32 {
        bits(self.0, 0, 16) as u32 + 1
    }

    /// Contiguous Queues Required.
    pub fn contiguous_queues_required(self) -> bool {
        bits(self.0, 16, 1) != 0
    }

    /// Timeout (TO): worst-case time for CSTS.RDY to follow CC.EN, in 500 ms units.
    pub fn timeout_units(self) -> u8 {
        bits(self.0, 24, 8) as u8
    }

    /// The timeout in milliseconds.
    pub fn timeout_ms(self) -> u32 {
        u32::from(self.timeout_units()) * 500
    }

    /// Doorbell Stride (DSTRD): doorbells are `4 << DSTRD` bytes apart.
    pub fn doorbell_stride_field(self) -> u8 {
        bits(self.0, 32, 4) as u8
    }

    /// Bytes between two doorbells.
    pub fn doorbell_stride(self) -> u64 {
        4u64 << self.doorbell_stride_field()
    }

    /// NVM Subsystem Reset Supported.
    pub fn nssr_supported(self) -> bool {
        bits(self.0, 36, 1) != 0
    }

    /// Command Sets Supported (CSS, 8 bits): bit 0 NVM command set, bit 6 I/O command sets,
    /// bit 7 admin only.
    pub fn command_sets(self) -> u8 {
        bits(self.0, 37, 8) as u8
    }

    /// Memory Page Size Minimum in bytes (`2 ^ (12 + MPSMIN)`).
    pub fn min_page_size(self) -> u64 {
        1u64 << (12 + bits(self.0, 48, 4))
    }

    /// Memory Page Size Maximum in bytes (`2 ^ (12 + MPSMAX)`).
    pub fn max_page_size(self) -> u64 {
        1u64 << (12 + bits(self.0, 52, 4))
    }

    /// Whether a 4 KiB memory page size (CC.MPS = 0) is allowed.
    pub fn supports_4k_pages(self) -> bool {
        self.min_page_size() <= 4096 && self.max_page_size() >= 4096
    }

    /// Byte offset in BAR0 of submission queue `qid`'s tail doorbell.
    pub fn sq_tail_doorbell(self, qid: u16) -> u64 {
        offset::DOORBELLS + 2 * u64::from(qid) * self.doorbell_stride()
    }

    /// Byte offset in BAR0 of completion queue `qid`'s head doorbell.
    pub fn cq_head_doorbell(self, qid: u16) -> u64 {
        offset::DOORBELLS + (2 * u64::from(qid) + 1) * self.doorbell_stride()
    }
}

/// Version (§3.1.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(pub u32);

impl Version {
    /// Major version.
    pub fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// Minor version.
    pub fn minor(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Tertiary version.
    pub fn tertiary(self) -> u8 {
        self.0 as u8
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major(), self.minor(), self.tertiary())
    }
}

/// Controller Configuration (§3.1.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cc(pub u32);

impl Cc {
    /// Enable.
    pub const EN: u32 = 1 << 0;

    /// The configuration the drivers here use: NVM command set (CSS 000b), 4 KiB memory pages
    /// (MPS 0), round robin arbitration (AMS 000b), no shutdown notification, I/O submission
    /// queue entries of 64 bytes (IOSQES 6) and completion queue entries of 16 bytes (IOCQES 4),
    /// with `enable` as EN.
    pub const fn standard(enable: bool) -> Self {
        Self((6 << 16) | (4 << 20) | if enable { Self::EN } else { 0 })
    }

    /// EN.
    pub fn enabled(self) -> bool {
        self.0 & Self::EN != 0
    }

    /// The same configuration with EN set or clear.
    pub fn with_enable(self, enable: bool) -> Self {
        Self(if enable {
            self.0 | Self::EN
        } else {
            self.0 & !Self::EN
        })
    }

    /// Memory Page Size in bytes (`2 ^ (12 + MPS)`).
    pub fn page_size(self) -> u64 {
        1u64 << (12 + ((self.0 >> 7) & 0xf))
    }

    /// I/O Submission Queue Entry Size (log2 bytes).
    pub fn iosqes(self) -> u8 {
        ((self.0 >> 16) & 0xf) as u8
    }

    /// I/O Completion Queue Entry Size (log2 bytes).
    pub fn iocqes(self) -> u8 {
        ((self.0 >> 20) & 0xf) as u8
    }
}

/// Controller Status (§3.1.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csts(pub u32);

impl Csts {
    /// Ready.
    pub fn ready(self) -> bool {
        self.0 & 1 != 0
    }

    /// Controller Fatal Status.
    pub fn fatal(self) -> bool {
        self.0 & 2 != 0
    }

    /// Shutdown Status (SHST).
    pub fn shutdown_status(self) -> u8 {
        ((self.0 >> 2) & 3) as u8
    }

    /// Processing Paused.
    pub fn paused(self) -> bool {
        self.0 & (1 << 5) != 0
    }

    /// A read of all ones: the function did not answer (removed, or in reset).
    pub fn absent(self) -> bool {
        self.0 == u32::MAX
    }
}

/// Admin Queue Attributes (§3.1.3.8): admin queue sizes, each 2..=4096 entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aqa(pub u32);

impl Aqa {
    /// Largest admin queue (ASQS/ACQS are 12-bit 0's based fields).
    pub const MAX_ENTRIES: u16 = 4096;

    /// Encodes sizes in entries; `None` unless both are in 2..=4096.
    pub fn new(sq_entries: u16, cq_entries: u16) -> Option<Self> {
        let ok = |n: u16| (2..=Self::MAX_ENTRIES).contains(&n);
        (ok(sq_entries) && ok(cq_entries))
            .then(|| Self(u32::from(sq_entries - 1) | (u32::from(cq_entries - 1) << 16)))
    }

    /// Admin Submission Queue Size in entries.
    pub fn sq_entries(self) -> u16 {
        (self.0 & 0xfff) as u16 + 1
    }

    /// Admin Completion Queue Size in entries.
    pub fn cq_entries(self) -> u16 {
        ((self.0 >> 16) & 0xfff) as u16 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CAP as QEMU 10.0.2's nvme PF and VFs report it (measured): MQES 0x7ff, CQR, TO 0xf,
    /// DSTRD 0, CSS NVM + I/O command sets, MPSMIN 0, MPSMAX 4.
    const QEMU_CAP: u64 = 0x0040_0820_0f01_07ff;

    #[test]
    fn cap_fields() {
        let cap = Cap(QEMU_CAP);
        assert_eq!(cap.max_queue_entries(), 0x800);
        assert!(cap.contiguous_queues_required());
        assert_eq!(cap.timeout_units(), 0x0f);
        assert_eq!(cap.timeout_ms(), 7500);
        assert_eq!(cap.doorbell_stride(), 4);
        assert_eq!(cap.min_page_size(), 4096);
        assert_eq!(cap.max_page_size(), 65536);
        assert!(cap.supports_4k_pages());
        assert!(!cap.nssr_supported());
        assert_eq!(cap.command_sets(), 0x41);
        assert_eq!(cap.sq_tail_doorbell(0), 0x1000);
        assert_eq!(cap.cq_head_doorbell(0), 0x1004);
        assert_eq!(cap.sq_tail_doorbell(1), 0x1008);
        assert_eq!(cap.cq_head_doorbell(1), 0x100c);
    }

    #[test]
    fn doorbells_follow_the_stride() {
        // DSTRD = 2: 16 bytes between doorbells.
        let cap = Cap(2 << 32);
        assert_eq!(cap.doorbell_stride(), 16);
        assert_eq!(cap.sq_tail_doorbell(0), 0x1000);
        assert_eq!(cap.cq_head_doorbell(0), 0x1010);
        assert_eq!(cap.sq_tail_doorbell(3), 0x1060);
        assert_eq!(cap.cq_head_doorbell(3), 0x1070);
        // The largest stride and queue ID do not overflow.
        let cap = Cap(0xf << 32);
        assert_eq!(cap.cq_head_doorbell(u16::MAX), 0x1000 + 131_071 * (4 << 15));
    }

    #[test]
    fn page_sizes_outside_4k() {
        // MPSMIN = 1 (8 KiB): 4 KiB pages are not allowed.
        assert!(!Cap(1 << 48).supports_4k_pages());
    }

    #[test]
    fn cc_standard() {
        let cc = Cc::standard(true);
        assert_eq!(cc.0, 0x0046_0001);
        assert!(cc.enabled());
        assert_eq!(cc.page_size(), 4096);
        assert_eq!(cc.iosqes(), 6);
        assert_eq!(cc.iocqes(), 4);
        assert_eq!(cc.with_enable(false), Cc::standard(false));
        assert_eq!(Cc::standard(false).with_enable(true), cc);
    }

    #[test]
    fn csts_bits() {
        assert!(Csts(1).ready());
        assert!(!Csts(1).fatal());
        assert!(Csts(2).fatal());
        assert_eq!(Csts(0b1000).shutdown_status(), 2);
        assert!(Csts(0x20).paused());
        assert!(Csts(u32::MAX).absent());
        assert!(!Csts(0).absent());
    }

    #[test]
    fn aqa_encoding() {
        let aqa = Aqa::new(32, 16).expect("valid sizes");
        assert_eq!(aqa.0, 0x000f_001f);
        assert_eq!(aqa.sq_entries(), 32);
        assert_eq!(aqa.cq_entries(), 16);
        assert_eq!(Aqa::new(4096, 4096).map(|a| a.0), Some(0x0fff_0fff));
        assert_eq!(Aqa::new(1, 16), None);
        assert_eq!(Aqa::new(16, 4097), None);
        assert_eq!(Aqa::new(0, 0), None);
    }

    #[test]
    fn version_display() {
        assert_eq!(Version(0x0001_0400).to_string(), "1.4.0");
        assert_eq!(Version(0x0002_0001).to_string(), "2.0.1");
    }
}
