//! Emulated guest-physical memory: the guest's ECAM window and the trapped pages of its
//! functions' MSI-X tables. Both are left unmapped in EPT, so every access is an EPT violation
//! (Intel SDM Vol. 3C §29.3.3.2); the instruction is fetched through the guest's page tables,
//! decoded (`conduit-mmio`: the MOV forms drivers use), carried out here, and RIP advanced past
//! it. An instruction that does not decode, or disagrees with what EPT reported, stops the guest
//! with the reason: guessing would corrupt its state.
//!
//! - ECAM window ([`ECAM_GPA`], 1 MiB: bus 0, PCIe Base Spec r6.0 §7.2.2): offset → (virtual BDF,
//!   register), forwarded to the control task like a port access; reaches the whole 4 KiB of
//!   each function. 8-byte accesses are not configuration accesses: all ones / dropped.
//! - MSI-X table page: see [`trapped_access`].

use super::devices;
use super::exits::Outcome;
use super::{Guest, State};
use crate::control;
use alloc::format;
use alloc::string::String;
use conduit_control_abi::Request;
use conduit_mmio::{Mode, decode};
use conduit_pci::Bdf;
use conduit_vmx::exit::EptViolation;
use conduit_vmx::fields::{Guest32, Guest64, GuestNatural};
use conduit_vpci::Ecam;
use core::ops::Range;

use conduit_hw::vmx::vmcs::{Current, FieldError};

/// The guest's ECAM window (bus 0 only), between its BAR window and 4 GiB.
pub const ECAM_GPA: u64 = 0xe000_0000;
pub const ECAM_LEN: u64 = 1 << 20;

const CR0_PG: u64 = 1 << 31;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Handles an EPT violation at `gpa` if it is emulated memory; `None` if it is not (the caller
/// reports it as before).
pub fn ept_violation(
    g: &mut Guest,
    v: &mut Current,
    gpa: u64,
    q: &EptViolation,
) -> Result<Option<Outcome>, FieldError> {
    let ecam = (ECAM_GPA..ECAM_GPA + ECAM_LEN).contains(&gpa);
    if !ecam && devices::trapped(g, gpa).is_none() {
        return Ok(None);
    }
    if q.fetch {
        return stop(
            g,
            v,
            format!("instruction fetch from emulated memory at {gpa:#x}"),
        );
    }
    let bytes = match fetch(g, v)? {
        Ok(b) => b,
        Err(why) => return stop(g, v, why),
    };
    let mode = if v.get(Guest32::CsAccessRights)? & (1 << 13) != 0 {
        Mode::Long64
    } else if v.get(Guest32::CsAccessRights)? & (1 << 14) != 0 {
        Mode::Protected32
    } else {
        return stop(g, v, format!("MMIO at {gpa:#x} from 16-bit code"));
    };
    let access = match decode(&bytes.0[..bytes.1], mode) {
        Ok(a) => a,
        Err(e) => return stop(g, v, format!("MMIO at {gpa:#x}: {e}")),
    };
    let store = access.store_value(&g.regs.gpr);
    if store.is_some() != q.write {
        return stop(
            g,
            v,
            format!("MMIO at {gpa:#x}: the instruction does not match the access EPT reported"),
        );
    }
    let read = if ecam {
        ecam_access(g, gpa - ECAM_GPA, access.size, store)
    } else {
        trapped_access(g, gpa, access.size, store)
    };
    if store.is_none() {
        access.load_into(&mut g.regs.gpr, read);
    }
    let rip = v.get(GuestNatural::Rip)?;
    v.set(GuestNatural::Rip, rip + u64::from(access.len))?;
    Ok(Some(if g.state == State::Runnable {
        Outcome::Resume
    } else {
        Outcome::Done
    }))
}

fn stop(g: &mut Guest, v: &mut Current, why: String) -> Result<Option<Outcome>, FieldError> {
    let rip = v.get(GuestNatural::Rip)?;
    g.stop(format!("{why} RIP {rip:#x}"));
    Ok(Some(Outcome::Done))
}

/// One configuration access through the ECAM window.
fn ecam_access(g: &mut Guest, offset: u64, size: u8, store: Option<u64>) -> u64 {
    let target = Ecam::new(0, 0).and_then(|e| e.decode(offset).ok());
    let Some((vbdf, reg)) = target.filter(|_| size <= 4) else {
        return u64::MAX;
    };
    let index = g.pci.index;
    match store {
        None => {
            let answer = control::call(&Request::read(index, vbdf, reg, size));
            devices::sync(g);
            answer.map_or(u64::MAX, |a| a.value)
        }
        Some(value) => {
            devices::config_write(g, vbdf, reg, size, value as u32);
            0
        }
    }
}

/// Up to 15 bytes at CS:RIP, through the guest's page tables. `Err` says why not.
#[allow(clippy::type_complexity)]
fn fetch(g: &Guest, v: &mut Current) -> Result<Result<([u8; 15], usize), String>, FieldError> {
    let linear = v
        .get(GuestNatural::CsBase)?
        .wrapping_add(v.get(GuestNatural::Rip)?);
    let cr0 = v.get(GuestNatural::Cr0)?;
    let efer = v.get(Guest64::Efer)?;
    let cr3 = v.get(GuestNatural::Cr3)?;
    let mut out = [0u8; 15];
    let mut n = 0;
    while n < out.len() {
        let la = linear.wrapping_add(n as u64);
        let gpa = if cr0 & CR0_PG == 0 {
            Some(la)
        } else if efer & EFER_LMA != 0 {
            walk(g, cr3, la)
        } else {
            return Ok(Err(String::from("MMIO from 32-bit paging is not emulated")));
        };
        let Some(gpa) = gpa else {
            if n == 0 {
                return Ok(Err(format!("RIP's linear address {la:#x} is not mapped")));
            }
            break;
        };
        let room = (0x1000 - (gpa & 0xfff)) as usize;
        let take = room.min(out.len() - n);
        match g.memory.bytes(gpa, take as u64) {
            Some(b) => out[n..n + take].copy_from_slice(b),
            None if n == 0 => {
                return Ok(Err(format!(
                    "instruction at GPA {gpa:#x} outside guest memory"
                )));
            }
            None => break,
        }
        n += take;
    }
    Ok(Ok((out, n)))
}

/// 4-level guest paging (SDM Vol. 3A §4.5): the GPA of `linear`, or `None`.
fn walk(g: &Guest, cr3: u64, linear: u64) -> Option<u64> {
    let mut table = cr3 & ADDR;
    for shift in [39u32, 30, 21, 12] {
        let at = table + ((linear >> shift) & 0x1ff) * 8;
        let e = u64::from_le_bytes(g.memory.bytes(at, 8)?.try_into().ok()?);
        if e & PRESENT == 0 {
            return None;
        }
        if shift != 12 && shift != 39 && e & PS != 0 {
            let page = 1u64 << shift;
            return Some((e & ADDR & !(page - 1)) | (linear & (page - 1)));
        }
        table = e & ADDR;
    }
    Some(table | (linear & 0xfff))
}

/// A trapped range of a mapped BAR (the page(s) holding its MSI-X table).
#[derive(Debug, Clone)]
pub struct Trap {
    pub vbdf: Bdf,
    /// GPA of the BAR.
    pub bar_gpa: u64,
    /// BAR-relative pages left unmapped.
    pub pages: Range<u64>,
    /// BAR-relative bytes of the table.
    pub table: Range<u64>,
    /// The kernel's uncached mapping of the physical pages.
    pub phys: Option<conduit_hw::memory::mmio::Mmio>,
}

/// An access of `size` bytes at `gpa` in a trapped MSI-X page: the table itself is the control
/// task's virtual table (PCIe Base Spec r6.0 §7.7.2: the guest programs virtual entries, whose
/// changes come back as events); the rest of the page (PBA, other registers) goes to the device
/// through the kernel's uncached mapping. Returns the value read (0 for a write).
pub fn trapped_access(g: &mut Guest, gpa: u64, size: u8, store: Option<u64>) -> u64 {
    let Some(t) = devices::trapped(g, gpa) else {
        return u64::MAX;
    };
    let off = gpa - t.bar_gpa;
    if t.table.contains(&off) {
        let req = Request {
            offset: off - t.table.start,
            size,
            value: store.unwrap_or(0),
            ..Request::new(
                if store.is_some() {
                    conduit_control_abi::Op::MsixWrite
                } else {
                    conduit_control_abi::Op::MsixRead
                },
                g.pci.index,
                t.vbdf,
            )
        };
        let answer = control::call(&req);
        devices::sync(g);
        return match answer {
            Ok(a) => {
                for e in a.events() {
                    devices::apply(g, t.vbdf, e);
                }
                a.value
            }
            Err(e) => {
                devices::note_error(g, &e);
                u64::MAX
            }
        };
    }
    let Some(phys) = t.phys else {
        return u64::MAX;
    };
    let within = off - t.pages.start;
    if !matches!(size, 1 | 2 | 4 | 8)
        || !within.is_multiple_of(u64::from(size))
        || within + u64::from(size) > t.pages.end - t.pages.start
    {
        return u64::MAX;
    }
    let p = phys.virt(within);
    // SAFETY: `p` lies in the kernel's uncached mapping of the trapped page(s) of a BAR of a
    // function assigned to this guest (checked above to be inside it and naturally aligned), so
    // the access reaches only that device's registers, as the guest's own access would have.
    unsafe {
        match (size, store) {
            (1, Some(v)) => (p as *mut u8).write_volatile(v as u8),
            (2, Some(v)) => (p as *mut u16).write_volatile(v as u16),
            (4, Some(v)) => (p as *mut u32).write_volatile(v as u32),
            (_, Some(v)) => (p as *mut u64).write_volatile(v),
            (1, None) => return u64::from((p as *const u8).read_volatile()),
            (2, None) => return u64::from((p as *const u16).read_volatile()),
            (4, None) => return u64::from((p as *const u32).read_volatile()),
            (_, None) => return (p as *const u64).read_volatile(),
        }
    }
    0
}
