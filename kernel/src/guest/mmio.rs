//! Emulated guest-physical memory: the guest's ECAM window and the trapped pages of its
//! functions' MSI-X tables. Both are left unmapped in EPT, so every access is an EPT violation
//! (Intel SDM Vol. 3C §29.3.3.2); the instruction is fetched through the guest's page tables
//! (`conduit-paging`'s read-only walk over the guest's memory: 4-level paging, or none; other
//! modes are refused with the reason), decoded (`conduit-mmio`: the MOV forms drivers use),
//! carried out here, and RIP advanced past it. An instruction that does not decode, or
//! disagrees with what EPT reported, stops the guest with the reason: guessing would corrupt its
//! state. [`ept_violation`] is the entry point; it takes the vCPU state through
//! [`super::CpuState`], so the QEMU self-tests' scripted drivers reach the same code.
//!
//! - ECAM window ([`ECAM_GPA`], 1 MiB: bus 0, PCIe Base Spec r6.0 §7.2.2): offset → (virtual BDF,
//!   register), forwarded to the control task like a port access; reaches the whole 4 KiB of
//!   each function. 8-byte accesses are not configuration accesses: all ones / dropped.
//! - MSI-X table page: see [`trapped_access`].

use super::cpu::CpuState;
use super::devices;
use super::exits::{Outcome, stop};
use super::vplatform_exits;
use super::{Guest, State};
use crate::control;
use alloc::format;
use alloc::string::String;
use conduit_control_abi::Request;
use conduit_mmio::{Mode, decode};
use conduit_paging::{GuestPaging, GuestRegisters, PhysRead};
use conduit_pci::Bdf;
use conduit_vmx::exit::EptViolation;
use conduit_vpci::Ecam;
use core::ops::Range;

/// The guest's ECAM window (bus 0 only), between its BAR window and 4 GiB.
pub const ECAM_GPA: u64 = 0xe000_0000;
pub const ECAM_LEN: u64 = 1 << 20;

/// Handles an EPT violation (Intel SDM Vol. 3C §28.2.1, Table 28-7) at `gpa` with its exit
/// qualification as the VMCS reports it: an access to emulated memory is carried out and RIP
/// advanced past it; anything else stops the guest with the reason.
pub fn ept_violation<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    gpa: u64,
    qualification: u64,
) -> Result<Outcome, C::Error> {
    let q = EptViolation::decode(qualification);
    // An access of the processor's own event delivery (IDT, stack): no instruction to emulate,
    // and nothing a trapped register should see.
    if let Some(e) = g.vcpu().events.interrupted_delivery() {
        return stop(
            g,
            cpu,
            format!(
                "EPT violation at GPA {gpa:#x} while delivering {} vector {:#x}",
                e.info.kind().name(),
                e.info.vector()
            ),
        );
    }
    let target = if (ECAM_GPA..ECAM_GPA + ECAM_LEN).contains(&gpa) {
        Some(Target::Ecam)
    } else if devices::trapped(g, gpa).is_some() {
        Some(Target::Trapped)
    } else {
        vplatform_exits::region(g, gpa).map(Target::Platform)
    };
    if let Some(target) = target {
        if q.fetch {
            return stop(
                g,
                cpu,
                format!("instruction fetch from emulated memory at {gpa:#x}"),
            );
        }
        return emulate(g, cpu, gpa, q.write, target);
    }
    let access = if q.write {
        "write"
    } else if q.fetch {
        "instruction fetch"
    } else {
        "read"
    };
    let mapped = if g.ept.translate(gpa).is_ok() {
        "mapped"
    } else {
        "outside the guest's memory"
    };
    stop(
        g,
        cpu,
        format!("EPT violation at GPA {gpa:#x} ({access}, {mapped})"),
    )
}

/// What an emulated access reaches.
#[derive(Debug, Clone, Copy)]
enum Target {
    Ecam,
    Trapped,
    Platform(vplatform_exits::Region),
}

/// An access to the local APIC's page that the CPU's APIC virtualization left to the hypervisor
/// (an APIC-access exit): carried out like any emulated MMIO.
pub(super) fn emulate_platform<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    region: vplatform_exits::Region,
    write: bool,
) -> Result<Outcome, C::Error> {
    let gpa = match region {
        vplatform_exits::Region::Lapic(off) => super::vplatform::LAPIC_GPA + off,
        vplatform_exits::Region::Ioapic(off) => super::vplatform::IOAPIC_GPA + off,
    };
    emulate(g, cpu, gpa, write, Target::Platform(region))
}

/// Carries out the instruction at CS:RIP, whose access (`write` or read) to emulated memory at
/// `gpa` exited.
fn emulate<C: CpuState>(
    g: &mut Guest,
    cpu: &mut C,
    gpa: u64,
    write: bool,
    target: Target,
) -> Result<Outcome, C::Error> {
    let bytes = match fetch(g, cpu)? {
        Ok(b) => b,
        Err(why) => return stop(g, cpu, why),
    };
    let cs = cpu.cs_access_rights()?;
    let mode = if cs & (1 << 13) != 0 {
        Mode::Long64
    } else if cs & (1 << 14) != 0 {
        Mode::Protected32
    } else {
        return stop(g, cpu, format!("MMIO at {gpa:#x} from 16-bit code"));
    };
    let access = match decode(&bytes.0[..bytes.1], mode) {
        Ok(a) => a,
        Err(e) => return stop(g, cpu, format!("MMIO at {gpa:#x}: {e}")),
    };
    let store = access.store_value(&g.vcpu().regs.gpr);
    if store.is_some() != write {
        return stop(
            g,
            cpu,
            format!("MMIO at {gpa:#x}: the instruction does not match the access EPT reported"),
        );
    }
    let read = match target {
        Target::Ecam => ecam_access(g, gpa - ECAM_GPA, access.size, store),
        Target::Trapped => trapped_access(g, gpa, access.size, store),
        Target::Platform(r) => vplatform_exits::access(g, r, access.size, store),
    };
    if store.is_none() {
        access.load_into(&mut g.vcpu_mut().regs.gpr, read);
    }
    let rip = cpu.rip()?;
    cpu.set_rip(rip.wrapping_add(u64::from(access.len)))?;
    Ok(if g.state == State::Runnable {
        Outcome::Resume
    } else {
        Outcome::Done
    })
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

/// Up to 15 bytes at CS:RIP, through the guest's page tables (`conduit-paging`'s read-only walk
/// over the guest's memory). `Err` says why not.
#[allow(clippy::type_complexity)]
fn fetch<C: CpuState>(
    g: &Guest,
    cpu: &mut C,
) -> Result<Result<([u8; 15], usize), String>, C::Error> {
    let linear = cpu.cs_base()?.wrapping_add(cpu.rip()?);
    let regs = GuestRegisters {
        cr0: cpu.cr0()?,
        cr3: cpu.cr3()?,
        cr4: cpu.cr4()?,
        efer: cpu.efer()?,
    };
    let (phys_bits, page_1g) = guest_paging_features();
    let paging = match GuestPaging::new(regs, ReadOnly(&g.memory), phys_bits, page_1g) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("MMIO under {e}"))),
    };
    let mut out = [0u8; 15];
    let mut n = 0;
    while n < out.len() {
        let la = linear.wrapping_add(n as u64);
        let gpa = match paging.translate(la) {
            Ok(gpa) => gpa,
            Err(e) if n == 0 => {
                return Ok(Err(format!("RIP's linear address {la:#x}: {e}")));
            }
            Err(_) => break,
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

/// The guest's MAXPHYADDR and whether it may use 1 GiB pages: the processor's own (CPUID
/// 80000008H:EAX[7:0] and 80000001H:EDX bit 26, SDM Vol. 2A "CPUID"), which guests see
/// unchanged. Read once.
fn guest_paging_features() -> (u8, bool) {
    static FEATURES: spin::Once<(u8, bool)> = spin::Once::new();
    *FEATURES.call_once(paging_features_from_cpuid)
}

fn paging_features_from_cpuid() -> (u8, bool) {
    let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    let bits = if max >= 0x8000_0008 {
        core::arch::x86_64::__cpuid(0x8000_0008).eax as u8
    } else {
        36
    };
    let page_1g =
        max >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 26) != 0;
    (bits, page_1g)
}

/// The guest's memory as the page walker reads it: entries by guest-physical address, nothing
/// outside it.
struct ReadOnly<'a>(&'a super::layout::GuestMemory);

impl PhysRead for ReadOnly<'_> {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        let b = self.0.bytes(gpa, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
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
