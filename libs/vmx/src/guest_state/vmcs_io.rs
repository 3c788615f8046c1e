//! Moving a [`GuestState`] to and from the current VMCS through the typed VMREAD/VMWRITE traits,
//! so the kernel can write the canonical states and check what the VMCS really holds.

use super::{DescriptorTable, GuestState, SegReg, Segment};
use crate::fields::{Guest16, Guest32, Guest64, GuestNatural, VmcsRead, VmcsWrite};

/// The four fields of a segment register (selector, base, limit, access rights).
pub const fn segment_fields(r: SegReg) -> (Guest16, GuestNatural, Guest32, Guest32) {
    use {Guest16 as S, Guest32 as L, GuestNatural as B};
    match r {
        SegReg::Es => (S::EsSelector, B::EsBase, L::EsLimit, L::EsAccessRights),
        SegReg::Cs => (S::CsSelector, B::CsBase, L::CsLimit, L::CsAccessRights),
        SegReg::Ss => (S::SsSelector, B::SsBase, L::SsLimit, L::SsAccessRights),
        SegReg::Ds => (S::DsSelector, B::DsBase, L::DsLimit, L::DsAccessRights),
        SegReg::Fs => (S::FsSelector, B::FsBase, L::FsLimit, L::FsAccessRights),
        SegReg::Gs => (S::GsSelector, B::GsBase, L::GsLimit, L::GsAccessRights),
        SegReg::Ldtr => (
            S::LdtrSelector,
            B::LdtrBase,
            L::LdtrLimit,
            L::LdtrAccessRights,
        ),
        SegReg::Tr => (S::TrSelector, B::TrBase, L::TrLimit, L::TrAccessRights),
    }
}

const SEGMENTS: [SegReg; 8] = [
    SegReg::Es,
    SegReg::Cs,
    SegReg::Ss,
    SegReg::Ds,
    SegReg::Fs,
    SegReg::Gs,
    SegReg::Ldtr,
    SegReg::Tr,
];

impl GuestState {
    fn segment_mut(&mut self, r: SegReg) -> &mut Segment {
        match r {
            SegReg::Es => &mut self.es,
            SegReg::Cs => &mut self.cs,
            SegReg::Ss => &mut self.ss,
            SegReg::Ds => &mut self.ds,
            SegReg::Fs => &mut self.fs,
            SegReg::Gs => &mut self.gs,
            SegReg::Ldtr => &mut self.ldtr,
            SegReg::Tr => &mut self.tr,
        }
    }

    /// Writes every field of this state to the VMCS (the guest IA32_DEBUGCTL, IA32_PAT and
    /// IA32_EFER fields included: write them even when the matching entry control is 0).
    pub fn write_to<V: VmcsWrite>(&self, v: &mut V) -> Result<(), V::Error> {
        v.write(GuestNatural::Cr0, self.cr0)?;
        v.write(GuestNatural::Cr3, self.cr3)?;
        v.write(GuestNatural::Cr4, self.cr4)?;
        v.write(GuestNatural::Dr7, self.dr7)?;
        v.write(Guest64::Debugctl, self.debugctl)?;
        v.write(Guest64::Efer, self.efer)?;
        v.write(Guest64::Pat, self.pat)?;
        v.write(Guest32::SysenterCs, self.sysenter_cs)?;
        v.write(GuestNatural::SysenterEsp, self.sysenter_esp)?;
        v.write(GuestNatural::SysenterEip, self.sysenter_eip)?;
        v.write(GuestNatural::Rsp, self.rsp)?;
        v.write(GuestNatural::Rip, self.rip)?;
        v.write(GuestNatural::Rflags, self.rflags)?;
        for r in SEGMENTS {
            let seg = self.segment(r);
            let (sel, base, limit, ar) = segment_fields(r);
            v.write(sel, seg.selector)?;
            v.write(base, seg.base)?;
            v.write(limit, seg.limit)?;
            v.write(ar, seg.access_rights)?;
        }
        v.write(GuestNatural::GdtrBase, self.gdtr.base)?;
        v.write(Guest32::GdtrLimit, self.gdtr.limit)?;
        v.write(GuestNatural::IdtrBase, self.idtr.base)?;
        v.write(Guest32::IdtrLimit, self.idtr.limit)?;
        v.write(Guest32::ActivityState, self.activity_state)?;
        v.write(Guest32::InterruptibilityState, self.interruptibility)?;
        v.write(
            GuestNatural::PendingDebugExceptions,
            self.pending_debug_exceptions,
        )?;
        v.write(Guest64::VmcsLinkPointer, self.vmcs_link_pointer)
    }

    /// Reads the state from the VMCS, e.g. to run [`super::check_guest_state`] on what is really
    /// there before VMLAUNCH, or after an exit with reason 33.
    pub fn read_from<V: VmcsRead>(v: &mut V) -> Result<Self, V::Error> {
        let mut s = Self {
            cr0: v.read(GuestNatural::Cr0)?,
            cr3: v.read(GuestNatural::Cr3)?,
            cr4: v.read(GuestNatural::Cr4)?,
            dr7: v.read(GuestNatural::Dr7)?,
            debugctl: v.read(Guest64::Debugctl)?,
            efer: v.read(Guest64::Efer)?,
            pat: v.read(Guest64::Pat)?,
            sysenter_cs: v.read(Guest32::SysenterCs)?,
            sysenter_esp: v.read(GuestNatural::SysenterEsp)?,
            sysenter_eip: v.read(GuestNatural::SysenterEip)?,
            rsp: v.read(GuestNatural::Rsp)?,
            rip: v.read(GuestNatural::Rip)?,
            rflags: v.read(GuestNatural::Rflags)?,
            gdtr: DescriptorTable {
                base: v.read(GuestNatural::GdtrBase)?,
                limit: v.read(Guest32::GdtrLimit)?,
            },
            idtr: DescriptorTable {
                base: v.read(GuestNatural::IdtrBase)?,
                limit: v.read(Guest32::IdtrLimit)?,
            },
            activity_state: v.read(Guest32::ActivityState)?,
            interruptibility: v.read(Guest32::InterruptibilityState)?,
            pending_debug_exceptions: v.read(GuestNatural::PendingDebugExceptions)?,
            vmcs_link_pointer: v.read(Guest64::VmcsLinkPointer)?,
            ..Self::default()
        };
        for r in SEGMENTS {
            let (sel, base, limit, ar) = segment_fields(r);
            *s.segment_mut(r) = Segment {
                selector: v.read(sel)?,
                base: v.read(base)?,
                limit: v.read(limit)?,
                access_rights: v.read(ar)?,
            };
        }
        Ok(s)
    }
}
