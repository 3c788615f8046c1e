//! SDM Vol. 3C, "Checks on Guest Segment Registers", in the SDM's order: selectors, bases,
//! limits (virtual-8086), then access rights field by field (type, S, DPL, P, reserved 11:8, D/B,
//! G, reserved 31:17) for CS, SS, DS, ES, FS, GS, and finally TR and LDTR.

use super::{
    CheckContext, GuestState, GuestStateError, SegReg, Segment, SegmentRule as R, is_canonical,
    rflags,
};
use crate::cr::cr0;

fn fail(register: SegReg, rule: R) -> GuestStateError {
    GuestStateError::Segment { register, rule }
}

/// The G bit agrees with the limit: limit[11:0] not all ones needs G = 0, limit[31:20] not all
/// zeros needs G = 1.
fn granularity_ok(seg: Segment) -> bool {
    let g = seg.ar().granularity();
    !((seg.limit & 0xfff != 0xfff && g) || (seg.limit & 0xfff0_0000 != 0 && !g))
}

const DATA_SEGS: [SegReg; 4] = [SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs];
const V86_SEGS: [SegReg; 6] = [
    SegReg::Cs,
    SegReg::Ss,
    SegReg::Ds,
    SegReg::Es,
    SegReg::Fs,
    SegReg::Gs,
];
/// CS, SS, DS, ES, FS, GS: the order of the access-rights checks.
const CODE_DATA_SEGS: [SegReg; 6] = [
    SegReg::Cs,
    SegReg::Ss,
    SegReg::Ds,
    SegReg::Es,
    SegReg::Fs,
    SegReg::Gs,
];

pub(super) fn check(s: &GuestState, ctx: &CheckContext) -> Result<(), GuestStateError> {
    let v86 = s.rflags & rflags::VM != 0;
    let ug = ctx.unrestricted_guest();

    // Selector fields.
    if s.tr.ti() {
        return Err(fail(SegReg::Tr, R::TiFlagSet));
    }
    if s.ldtr.ar().usable() && s.ldtr.ti() {
        return Err(fail(SegReg::Ldtr, R::TiFlagSet));
    }
    if !v86 && !ug && s.ss.rpl() != s.cs.rpl() {
        return Err(fail(SegReg::Ss, R::RplMismatch));
    }

    // Base-address fields.
    if v86 {
        for r in V86_SEGS {
            let seg = s.segment(r);
            if seg.base != u64::from(seg.selector) << 4 {
                return Err(fail(r, R::V86Base));
            }
        }
    }
    let law = ctx.linear_address_width;
    for r in [SegReg::Tr, SegReg::Fs, SegReg::Gs] {
        if !is_canonical(s.segment(r).base, law) {
            return Err(fail(r, R::BaseNotCanonical));
        }
    }
    if s.ldtr.ar().usable() && !is_canonical(s.ldtr.base, law) {
        return Err(fail(SegReg::Ldtr, R::BaseNotCanonical));
    }
    if s.cs.base >> 32 != 0 {
        return Err(fail(SegReg::Cs, R::BaseHighBits));
    }
    for r in [SegReg::Ss, SegReg::Ds, SegReg::Es] {
        let seg = s.segment(r);
        if seg.ar().usable() && seg.base >> 32 != 0 {
            return Err(fail(r, R::BaseHighBits));
        }
    }

    if v86 {
        for r in V86_SEGS {
            if s.segment(r).limit != 0xffff {
                return Err(fail(r, R::V86Limit));
            }
        }
        for r in V86_SEGS {
            if s.segment(r).access_rights != 0xf3 {
                return Err(fail(r, R::V86AccessRights));
            }
        }
    } else {
        code_and_data_access_rights(s, ctx)?;
    }
    tr_access_rights(s, ctx)?;
    ldtr_access_rights(s)
}

/// Access rights of CS, SS, DS, ES, FS, GS outside virtual-8086 mode.
fn code_and_data_access_rights(s: &GuestState, ctx: &CheckContext) -> Result<(), GuestStateError> {
    let ug = ctx.unrestricted_guest();
    let cs = s.cs.ar();
    let ss = s.ss.ar();
    // A segment's checks apply when it is usable; CS's always apply.
    let applies = |r: SegReg| r == SegReg::Cs || s.segment(r).ar().usable();

    // Type.
    let cs_type = cs.seg_type();
    if !(matches!(cs_type, 9 | 11 | 13 | 15) || (ug && cs_type == 3)) {
        return Err(fail(SegReg::Cs, R::CsType));
    }
    if ss.usable() && !matches!(ss.seg_type(), 3 | 7) {
        return Err(fail(SegReg::Ss, R::SsType));
    }
    for r in DATA_SEGS {
        let ar = s.segment(r).ar();
        if !ar.usable() {
            continue;
        }
        let t = ar.seg_type();
        if t & 1 == 0 {
            return Err(fail(r, R::NotAccessed));
        }
        if t & 8 != 0 && t & 2 == 0 {
            return Err(fail(r, R::CodeNotReadable));
        }
    }

    // S.
    for r in CODE_DATA_SEGS {
        if applies(r) && !s.segment(r).ar().code_or_data() {
            return Err(fail(r, R::NotCodeOrData));
        }
    }

    // DPL.
    match cs_type {
        3 if cs.dpl() != 0 => return Err(fail(SegReg::Cs, R::CsDplNotZero)),
        9 | 11 if cs.dpl() != ss.dpl() => return Err(fail(SegReg::Cs, R::CsDplNotSsDpl)),
        13 | 15 if cs.dpl() > ss.dpl() => return Err(fail(SegReg::Cs, R::CsDplAboveSsDpl)),
        _ => {}
    }
    if !ug && ss.dpl() != s.ss.rpl() {
        return Err(fail(SegReg::Ss, R::SsDplNotRpl));
    }
    if (cs_type == 3 || s.cr0 & cr0::PE == 0) && ss.dpl() != 0 {
        return Err(fail(SegReg::Ss, R::SsDplNotZero));
    }
    if !ug {
        for r in DATA_SEGS {
            let seg = s.segment(r);
            let ar = seg.ar();
            if ar.usable() && ar.seg_type() <= 11 && ar.dpl() < seg.rpl() {
                return Err(fail(r, R::DplBelowRpl));
            }
        }
    }

    // P.
    for r in CODE_DATA_SEGS {
        if applies(r) && !s.segment(r).ar().present() {
            return Err(fail(r, R::NotPresent));
        }
    }
    // Reserved bits 11:8.
    for r in CODE_DATA_SEGS {
        if applies(r) && s.segment(r).access_rights & 0xf00 != 0 {
            return Err(fail(r, R::ReservedBits11To8));
        }
    }
    // D/B.
    if ctx.ia32e_mode_guest() && cs.long() && cs.default_big() {
        return Err(fail(SegReg::Cs, R::LongModeCsWithDb));
    }
    // G.
    for r in CODE_DATA_SEGS {
        if applies(r) && !granularity_ok(s.segment(r)) {
            return Err(fail(r, R::Granularity));
        }
    }
    // Reserved bits 31:17.
    for r in CODE_DATA_SEGS {
        if applies(r) && s.segment(r).access_rights >> 17 != 0 {
            return Err(fail(r, R::ReservedBits31To17));
        }
    }
    Ok(())
}

fn tr_access_rights(s: &GuestState, ctx: &CheckContext) -> Result<(), GuestStateError> {
    let tr = s.tr.ar();
    let t = tr.seg_type();
    if ctx.ia32e_mode_guest() {
        if t != 11 {
            return Err(fail(SegReg::Tr, R::TrTypeLongMode));
        }
    } else if t != 3 && t != 11 {
        return Err(fail(SegReg::Tr, R::TrType));
    }
    if tr.code_or_data() {
        return Err(fail(SegReg::Tr, R::NotSystem));
    }
    if !tr.present() {
        return Err(fail(SegReg::Tr, R::NotPresent));
    }
    if s.tr.access_rights & 0xf00 != 0 {
        return Err(fail(SegReg::Tr, R::ReservedBits11To8));
    }
    if !granularity_ok(s.tr) {
        return Err(fail(SegReg::Tr, R::Granularity));
    }
    if tr.unusable() {
        return Err(fail(SegReg::Tr, R::TrUnusable));
    }
    if s.tr.access_rights >> 17 != 0 {
        return Err(fail(SegReg::Tr, R::ReservedBits31To17));
    }
    Ok(())
}

fn ldtr_access_rights(s: &GuestState) -> Result<(), GuestStateError> {
    let ar = s.ldtr.ar();
    if ar.unusable() {
        return Ok(());
    }
    if ar.seg_type() != 2 {
        return Err(fail(SegReg::Ldtr, R::LdtrType));
    }
    if ar.code_or_data() {
        return Err(fail(SegReg::Ldtr, R::NotSystem));
    }
    if !ar.present() {
        return Err(fail(SegReg::Ldtr, R::NotPresent));
    }
    if s.ldtr.access_rights & 0xf00 != 0 {
        return Err(fail(SegReg::Ldtr, R::ReservedBits11To8));
    }
    if !granularity_ok(s.ldtr) {
        return Err(fail(SegReg::Ldtr, R::Granularity));
    }
    if s.ldtr.access_rights >> 17 != 0 {
        return Err(fail(SegReg::Ldtr, R::ReservedBits31To17));
    }
    Ok(())
}
