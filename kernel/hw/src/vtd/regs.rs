//! The remapping unit's register blocks (VT-d spec §10.4 "Register Descriptions"; §11.4 in
//! revision 4 and later, same layout) as typed `volatile` blocks, and their bit fields.
//!
//! The fixed block covers offsets 0x00-0xbf. Two blocks sit at offsets the unit reports: the
//! IOTLB registers at ECAP.IRO × 16 (§10.4.8) and the fault-recording registers at CAP.FRO × 16
//! (§10.4.14), NFR + 1 of them.

use core::mem::{offset_of, size_of};

/// Registers at fixed offsets (§10.4.1-§10.4.29).
#[repr(C)]
pub struct Registers {
    /// 0x00 Version (§10.4.1): major in bits 7:4, minor in 3:0.
    pub ver: u32,
    _rsvd_04: u32,
    /// 0x08 Capability (§10.4.2).
    pub cap: u64,
    /// 0x10 Extended Capability (§10.4.3).
    pub ecap: u64,
    /// 0x18 Global Command (§10.4.4).
    pub gcmd: u32,
    /// 0x1c Global Status (§10.4.5).
    pub gsts: u32,
    /// 0x20 Root Table Address (§10.4.6).
    pub rtaddr: u64,
    /// 0x28 Context Command (§10.4.7).
    pub ccmd: u64,
    _rsvd_30: u32,
    /// 0x34 Fault Status (§10.4.9).
    pub fsts: u32,
    /// 0x38 Fault Event Control (§10.4.10).
    pub fectl: u32,
    /// 0x3c Fault Event Data (§10.4.11).
    pub fedata: u32,
    /// 0x40 Fault Event Address (§10.4.12).
    pub feaddr: u32,
    /// 0x44 Fault Event Upper Address (§10.4.13).
    pub feuaddr: u32,
    _rsvd_48: [u64; 2],
    /// 0x58 Advanced Fault Log (§10.4.15).
    pub aflog: u64,
    _rsvd_60: u32,
    /// 0x64 Protected Memory Enable (§10.4.16).
    pub pmen: u32,
    /// 0x68 Protected Low-Memory Base.
    pub plmbase: u32,
    /// 0x6c Protected Low-Memory Limit.
    pub plmlimit: u32,
    /// 0x70 Protected High-Memory Base.
    pub phmbase: u64,
    /// 0x78 Protected High-Memory Limit.
    pub phmlimit: u64,
    /// 0x80 Invalidation Queue Head (§10.4.22).
    pub iqh: u64,
    /// 0x88 Invalidation Queue Tail (§10.4.23).
    pub iqt: u64,
    /// 0x90 Invalidation Queue Address (§10.4.24).
    pub iqa: u64,
    _rsvd_98: u32,
    /// 0x9c Invalidation Completion Status (§10.4.25).
    pub ics: u32,
    /// 0xa0 Invalidation Event Control.
    pub iectl: u32,
    /// 0xa4 Invalidation Event Data.
    pub iedata: u32,
    /// 0xa8 Invalidation Event Address.
    pub ieaddr: u32,
    /// 0xac Invalidation Event Upper Address.
    pub ieuaddr: u32,
    /// 0xb0 Invalidation Queue Error Record.
    pub iqercd: u64,
    /// 0xb8 Interrupt Remapping Table Address (§10.4.29).
    pub irta: u64,
}

const _: () = {
    assert!(offset_of!(Registers, cap) == 0x08);
    assert!(offset_of!(Registers, ecap) == 0x10);
    assert!(offset_of!(Registers, gcmd) == 0x18);
    assert!(offset_of!(Registers, gsts) == 0x1c);
    assert!(offset_of!(Registers, rtaddr) == 0x20);
    assert!(offset_of!(Registers, ccmd) == 0x28);
    assert!(offset_of!(Registers, fsts) == 0x34);
    assert!(offset_of!(Registers, fectl) == 0x38);
    assert!(offset_of!(Registers, fedata) == 0x3c);
    assert!(offset_of!(Registers, feaddr) == 0x40);
    assert!(offset_of!(Registers, feuaddr) == 0x44);
    assert!(offset_of!(Registers, aflog) == 0x58);
    assert!(offset_of!(Registers, pmen) == 0x64);
    assert!(offset_of!(Registers, plmbase) == 0x68);
    assert!(offset_of!(Registers, plmlimit) == 0x6c);
    assert!(offset_of!(Registers, phmbase) == 0x70);
    assert!(offset_of!(Registers, phmlimit) == 0x78);
    assert!(offset_of!(Registers, iqh) == 0x80);
    assert!(offset_of!(Registers, iqt) == 0x88);
    assert!(offset_of!(Registers, iqa) == 0x90);
    assert!(offset_of!(Registers, ics) == 0x9c);
    assert!(offset_of!(Registers, iectl) == 0xa0);
    assert!(offset_of!(Registers, iqercd) == 0xb0);
    assert!(offset_of!(Registers, irta) == 0xb8);
    assert!(size_of::<Registers>() == 0xc0);
};

// The offsets the host-tested takeover sequence (`conduit_vtd::takeover`) names its registers
// by are the ones `super::access::UnitAccess` reaches through this block.
const _: () = {
    use conduit_vtd::takeover::{Reg32, Reg64};
    assert!(offset_of!(Registers, gcmd) as u64 == Reg32::Gcmd.offset());
    assert!(offset_of!(Registers, gsts) as u64 == Reg32::Gsts.offset());
    assert!(offset_of!(Registers, fsts) as u64 == Reg32::Fsts.offset());
    assert!(offset_of!(Registers, fectl) as u64 == Reg32::Fectl.offset());
    assert!(offset_of!(Registers, fedata) as u64 == Reg32::Fedata.offset());
    assert!(offset_of!(Registers, feaddr) as u64 == Reg32::Feaddr.offset());
    assert!(offset_of!(Registers, feuaddr) as u64 == Reg32::Feuaddr.offset());
    assert!(offset_of!(Registers, pmen) as u64 == Reg32::Pmen.offset());
    assert!(offset_of!(Registers, plmbase) as u64 == Reg32::Plmbase.offset());
    assert!(offset_of!(Registers, plmlimit) as u64 == Reg32::Plmlimit.offset());
    let cap = conduit_vtd::Cap(0);
    assert!(offset_of!(Registers, cap) as u64 == Reg64::Cap.offset(cap));
    assert!(offset_of!(Registers, rtaddr) as u64 == Reg64::Rtaddr.offset(cap));
    assert!(offset_of!(Registers, phmbase) as u64 == Reg64::Phmbase.offset(cap));
    assert!(offset_of!(Registers, phmlimit) as u64 == Reg64::Phmlimit.offset(cap));
    assert!(offset_of!(Registers, iqh) as u64 == Reg64::Iqh.offset(cap));
    assert!(offset_of!(Registers, iqt) as u64 == Reg64::Iqt.offset(cap));
    assert!(offset_of!(Registers, iqa) as u64 == Reg64::Iqa.offset(cap));
    assert!(offset_of!(Registers, irta) as u64 == Reg64::Irta.offset(cap));
};

/// The IOTLB registers at ECAP.IRO × 16 (§10.4.8).
#[repr(C)]
pub struct IotlbRegisters {
    /// Invalidate Address (§10.4.8.2): ADDR 63:12, IH 6, AM 5:0.
    pub iva: u64,
    /// IOTLB Invalidate (§10.4.8.1).
    pub iotlb: u64,
}

const _: () = {
    assert!(offset_of!(IotlbRegisters, iotlb) == 0x08);
    assert!(size_of::<IotlbRegisters>() == 0x10);
};

/// One 128-bit fault-recording register (§10.4.14).
#[repr(C)]
pub struct FaultRecording {
    /// Bits 63:12 fault information (the page address of the request).
    pub lo: u64,
    /// Bits 127:64: F 127, T 126 (1 = read), AT 125:124, PASID 123:104, FR 103:96, PP 95,
    /// SID 79:64.
    pub hi: u64,
}

const _: () = {
    assert!(offset_of!(FaultRecording, hi) == 0x08);
    assert!(size_of::<FaultRecording>() == 0x10);
    // `Reg64::FaultHigh(n)` is the upper qword of record n: FRO × 16 + n × 16 + 8.
    let cap = conduit_vtd::Cap(0);
    assert!(
        conduit_vtd::takeover::Reg64::FaultHigh(1).offset(cap)
            == cap.fault_record_offset() + size_of::<FaultRecording>() as u64 + 0x08
    );
};

/// Global Command / Global Status bits (§10.4.4, §10.4.5), as the takeover sequence uses them.
pub use conduit_vtd::takeover::global;

/// Fault Status bits (§10.4.9).
pub mod fsts {
    /// Primary Fault Overflow (RW1C).
    pub const PFO: u32 = 1 << 0;
    /// Primary Pending Fault: some fault-recording register has F set (read only).
    pub const PPF: u32 = 1 << 1;
    /// Invalidation Queue Error (RW1C).
    pub const IQE: u32 = 1 << 4;
    /// Invalidation Completion Error (RW1C).
    pub const ICE: u32 = 1 << 5;
    /// Invalidation Time-out Error (RW1C).
    pub const ITE: u32 = 1 << 6;
    /// Fault Record Index: the first record hardware wrote.
    pub const fn fri(value: u32) -> u32 {
        (value >> 8) & 0xff
    }
    /// Every RW1C error bit of the invalidation queue.
    pub const QUEUE_ERRORS: u32 = IQE | ICE | ITE;
}

/// Fault Event Control bits (§10.4.10).
pub mod fectl {
    /// Interrupt Mask.
    pub const IM: u32 = 1 << 31;
}
