//! A guest's driver, scripted by the self-tests where no vCPU can run it (QEMU's TCG has no VMX).
//! Every access it makes is the instruction a driver executes, carried out on the guest's own
//! `Guest` (memory, EPT, boot page tables and functions, built as where vCPUs run) by the entry
//! points a running vCPU's exits reach:
//!
//! - configuration mechanism #1: `OUT`/`IN` on 0xCF8 and 0xCFC-0xCFF, the value in RAX and the
//!   port in DX, handed to [`exits::io_exit`] with the exit qualification the processor reports
//!   for that instruction (Intel SDM Vol. 3C §28.2.1, Table 28-5) and its length;
//! - the ECAM window (offsets from 0x100) and the trapped MSI-X table pages: a `MOV` between EAX
//!   (AX, AL, RAX) and `[RDX]`, encoded by [`mov`] (SDM Vol. 2B "MOV": opcodes 88/89/8A/8B with
//!   ModR/M 02h, operand-size prefix 66h, REX.W) and written at [`SCRATCH_GPA`] in the guest's
//!   memory; RIP points there, CR3 is the boot page tables the hypervisor wrote for the 64-bit
//!   guest (identity map of the first 4 GiB), and CR0, CR4, EFER and CS are those a 64-bit guest
//!   starts with (`GuestState::long_mode_flat`). [`mmio::ept_violation`] gets the GPA and the
//!   qualification of a data read or write (Table 28-7): it fetches the instruction through the
//!   guest's page tables, decodes it, carries it out (the control task's events through
//!   `guest::devices::apply`) and advances RIP.
//!
//! A Multiboot guest, which has no boot page tables, is driven in the state its kernel starts in
//! (32-bit protected mode, flat segments, paging off: accesses of 1, 2 or 4 bytes).
//!
//! Results come back in the guest's RAX. A step the exit path did not complete (the guest
//! stopped, RIP not advanced past the instruction) is an error naming the guest's state.

use crate::control;
use crate::guest::devices::BAR_WINDOW;
use crate::guest::interrupts::Routed;
use crate::guest::mmio::{self, ECAM_GPA};
use crate::guest::spec::Entry;
use crate::guest::{CpuState, Guest, Outcome, exits};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_hw::memory::{Memory, PhysWindow};
use conduit_irq::Owner;
use conduit_pci::{Bar, BarKind, Bdf};
use conduit_vmx::guest_state::{AccessRights, GuestState, Segment};
use core::convert::Infallible;

/// Message Control of the MSI-X capability (PCIe Base Spec r6.0 §7.7.2.2): MSI-X Enable.
const MSIX_ENABLE: u32 = 1 << 15;
/// Command register (PCI Local Bus Spec 3.0 §6.2.2): memory space and bus master enable.
const MEMORY_AND_BUS_MASTER: u32 = 0x0006;
/// The page of the guest's memory that holds the instruction of each scripted memory access:
/// above the boot structures the hypervisor writes (GDT at 0x800, page tables 0x1000-0x7fff),
/// below the image (from 1 MiB) and far from the stack (top of memory) and from the NVMe
/// self-test's queues (the middle of the memory).
pub const SCRATCH_GPA: u64 = 0x8000;
const RAX: usize = 0;
const RDX: usize = 2;
/// CR0.PE (Intel SDM Vol. 3A §2.5).
const CR0_PE: u64 = 1;
/// IA32_EFER.LMA: IA-32e mode active (Intel SDM Vol. 3A §2.2.1).
const LMA: u64 = 1 << 10;

/// An error as text (the control task's or the exit path's).
pub fn err(e: impl core::fmt::Display) -> String {
    format!("{e}")
}

/// The vCPU state the scripted instructions run in: what a 64-bit guest starts with.
#[derive(Debug, Clone, Copy)]
struct ScriptedCpu {
    rip: u64,
    /// Length of the instruction being carried out (the exit's instruction length).
    len: u32,
    state: GuestState,
}

impl CpuState for ScriptedCpu {
    type Error = Infallible;

    fn rip(&mut self) -> Result<u64, Infallible> {
        Ok(self.rip)
    }

    fn set_rip(&mut self, rip: u64) -> Result<(), Infallible> {
        self.rip = rip;
        Ok(())
    }

    fn instruction_len(&mut self) -> Result<u32, Infallible> {
        Ok(self.len)
    }

    fn cs_base(&mut self) -> Result<u64, Infallible> {
        Ok(self.state.cs.base)
    }

    fn cs_access_rights(&mut self) -> Result<u32, Infallible> {
        Ok(self.state.cs.access_rights)
    }

    fn cr0(&mut self) -> Result<u64, Infallible> {
        Ok(self.state.cr0)
    }

    fn cr3(&mut self) -> Result<u64, Infallible> {
        Ok(self.state.cr3)
    }

    fn cr4(&mut self) -> Result<u64, Infallible> {
        Ok(self.state.cr4)
    }

    fn efer(&mut self) -> Result<u64, Infallible> {
        Ok(self.state.efer)
    }
}

/// The state a Multiboot kernel starts in (Multiboot 0.6.96 §3.2, as `guest::vcpu` enters it):
/// 32-bit protected mode, flat 4-GiB code and data segments, paging off, at [`SCRATCH_GPA`].
fn multiboot_flat() -> GuestState {
    let flat = AccessRights::S | AccessRights::P | AccessRights::DB | AccessRights::G;
    let data = Segment::new(0x10, 0, 0xffff_ffff, 0x3 | flat);
    let mut s = GuestState::real_mode(0, 0);
    s.cr0 |= CR0_PE;
    s.cs = Segment::new(0x08, 0, 0xffff_ffff, 0xb | flat);
    (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
    s.rip = SCRATCH_GPA;
    s
}

/// `MOV` between `[RDX]` and the accumulator of `size` bytes: a store of AL/AX/EAX/RAX (88h,
/// 89h) or a load into it (8Ah, 8Bh); ModR/M 02h = mod 00, reg 000 (accumulator), r/m 010
/// (`[RDX]`). Returns the bytes and their count.
fn mov(store: bool, size: u8) -> ([u8; 3], usize) {
    let (byte_op, op) = if store { (0x88, 0x89) } else { (0x8a, 0x8b) };
    match size {
        1 => ([byte_op, 0x02, 0], 2),
        2 => ([0x66, op, 0x02], 3),
        8 => ([0x48, op, 0x02], 3),
        _ => ([op, 0x02, 0], 2),
    }
}

/// One guest's driver.
pub struct GuestView<'a> {
    g: &'a mut Guest,
    cpu: ScriptedCpu,
    window: PhysWindow,
}

impl<'a> GuestView<'a> {
    /// The driver of the 64-bit guest `g` (its boot page tables map the scratch page), or of
    /// the Multiboot guest `g` (32-bit protected mode, paging off: the scratch page is at its
    /// physical address).
    pub fn new(g: &'a mut Guest, mem: &Memory) -> Result<Self, String> {
        if SCRATCH_GPA + 0x1000 > g.memory_size() {
            return Err(format!("guest \"{}\" is too small", g.name));
        }
        let state = match (g.boot_cr3(), g.spec().entry) {
            (Some(cr3), _) => GuestState::long_mode_flat(SCRATCH_GPA, g.memory_size(), cr3),
            (None, Entry::Multiboot { .. }) => multiboot_flat(),
            (None, _) => {
                return Err(format!(
                    "guest \"{}\" is neither a 64-bit nor a Multiboot guest: no state for its \
                     driver",
                    g.name
                ));
            }
        };
        Ok(Self {
            g,
            cpu: ScriptedCpu {
                rip: SCRATCH_GPA,
                len: 0,
                state,
            },
            window: PhysWindow::new(mem, true),
        })
    }

    /// The guest driven.
    pub fn guest(&self) -> &Guest {
        self.g
    }

    /// The guest driven, for what the scheduler and its vCPU's entries would do between and at
    /// its slices (`devices::sync`, interrupt injection).
    pub fn guest_mut(&mut self) -> &mut Guest {
        self.g
    }

    /// The exit path's outcome must be "resume", with RIP past the `len`-byte instruction.
    fn completed(&self, outcome: Outcome, len: u32, what: &str) -> Result<(), String> {
        if outcome != Outcome::Resume || self.cpu.rip != SCRATCH_GPA + u64::from(len) {
            return Err(format!(
                "{what}: the exit path answered {outcome:?} with RIP {:#x} (guest \"{}\" {})",
                self.cpu.rip,
                self.g.name,
                self.g.state_text()
            ));
        }
        Ok(())
    }

    /// `OUT DX, AL/AX/EAX` (`Some(value)`) or `IN AL/AX/EAX, DX`: one I/O-instruction exit.
    fn port(&mut self, port: u16, size: u8, out: Option<u32>) -> Result<u32, String> {
        // EE/EF and EC/ED, with 66h for a word.
        let len = if size == 2 { 2 } else { 1 };
        // Table 28-5: bits 2:0 size - 1, bit 3 direction (1 = IN), bit 6 operand DX (0),
        // bits 31:16 the port.
        let qualification =
            u64::from(size - 1) | (u64::from(out.is_none()) << 3) | (u64::from(port) << 16);
        self.g.vcpu_mut().regs.gpr[RDX] = u64::from(port);
        if let Some(v) = out {
            self.g.vcpu_mut().regs.gpr[RAX] = u64::from(v);
        }
        self.cpu.rip = SCRATCH_GPA;
        self.cpu.len = len;
        let outcome =
            exits::io_exit(self.g, &mut self.cpu, qualification).unwrap_or_else(|e| match e {});
        let what = match out {
            Some(v) => format!("OUT {port:#x} ({size} bytes) of {v:#x}"),
            None => format!("IN {port:#x} ({size} bytes)"),
        };
        self.completed(outcome, len, &what)?;
        let mask = (1u64 << (u32::from(size) * 8)) - 1;
        Ok((self.g.vcpu().regs.gpr[RAX] & mask) as u32)
    }

    /// A `MOV` of `size` bytes at `gpa` (emulated memory): a store of `store`, or a load.
    /// Returns what the load put into the accumulator.
    fn access(&mut self, gpa: u64, size: u8, store: Option<u64>) -> Result<u64, String> {
        if size == 8 && self.cpu.state.efer & LMA == 0 {
            return Err(format!(
                "an 8-byte MOV to GPA {gpa:#x} needs 64-bit mode; guest \"{}\" is in 32-bit mode",
                self.g.name
            ));
        }
        let (bytes, len) = mov(store.is_some(), size);
        let at = self.window.virt(self.g.memory_host() + SCRATCH_GPA);
        // SAFETY: the scratch page lies inside this guest's memory (checked in `new`), which the
        // hypervisor owns and no vCPU runs (no VMX); nothing else uses that page.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at, len) };
        self.g.vcpu_mut().regs.gpr[RDX] = gpa;
        if let Some(v) = store {
            self.g.vcpu_mut().regs.gpr[RAX] = v;
        }
        self.cpu.rip = SCRATCH_GPA;
        // Table 28-7: bit 0 data read or bit 1 data write; bits 3-5 clear (the GPA is not
        // mapped); bits 7 and 8: the access was to a translated linear address.
        let qualification = if store.is_some() { 1 << 1 } else { 1 << 0 } | (1 << 7) | (1 << 8);
        let outcome = mmio::ept_violation(self.g, &mut self.cpu, gpa, qualification)
            .unwrap_or_else(|e| match e {});
        let what = match store {
            Some(v) => format!("MOV of {v:#x} ({size} bytes) to GPA {gpa:#x}"),
            None => format!("MOV from GPA {gpa:#x} ({size} bytes)"),
        };
        self.completed(outcome, len as u32, &what)?;
        let mask = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (u32::from(size) * 8)) - 1
        };
        Ok(self.g.vcpu().regs.gpr[RAX] & mask)
    }

    /// A load of `size` bytes from emulated memory at `gpa`.
    pub fn mmio_read(&mut self, gpa: u64, size: u8) -> Result<u64, String> {
        self.access(gpa, size, None)
    }

    /// A store of `size` bytes to emulated memory at `gpa`.
    pub fn mmio_write(&mut self, gpa: u64, size: u8, value: u64) -> Result<(), String> {
        self.access(gpa, size, Some(value)).map(|_| ())
    }

    /// CONFIG_ADDRESS for (`vbdf`, `offset`) with Enable set (PCI Local Bus Spec 3.0 §3.2.2.3.2).
    fn select(&mut self, vbdf: Bdf, offset: u16) -> Result<u16, String> {
        let cf8 = 0x8000_0000 | (u32::from(vbdf.routing_id()) << 8) | u32::from(offset & 0xfc);
        self.port(0xcf8, 4, Some(cf8))?;
        Ok(0xcfc + (offset & 3))
    }

    /// GPA of (`vbdf`, `offset`) in the ECAM window (bus 0: PCIe Base Spec r6.0 §7.2.2).
    fn ecam(vbdf: Bdf, offset: u16) -> u64 {
        ECAM_GPA + (u64::from(vbdf.routing_id()) << 12) + u64::from(offset)
    }

    /// A configuration read: through CONFIG_ADDRESS/CONFIG_DATA below 0x100, through the ECAM
    /// window beyond (out of mechanism #1's reach).
    pub fn read(&mut self, vbdf: Bdf, offset: u16, size: u8) -> Result<u32, String> {
        if offset >= 0x100 {
            return self
                .mmio_read(Self::ecam(vbdf, offset), size)
                .map(|v| v as u32);
        }
        let port = self.select(vbdf, offset)?;
        self.port(port, size, None)
    }

    /// A configuration write (same paths as [`GuestView::read`]).
    pub fn write(&mut self, vbdf: Bdf, offset: u16, size: u8, value: u32) -> Result<(), String> {
        if offset >= 0x100 {
            return self.mmio_write(Self::ecam(vbdf, offset), size, u64::from(value));
        }
        let port = self.select(vbdf, offset)?;
        self.port(port, size, Some(value)).map(|_| ())
    }

    /// Reads the data port with `cf8` latched as it is (e.g. without Enable).
    pub fn read_with_address(&mut self, cf8: u32, port: u16) -> Result<u32, String> {
        self.port(0xcf8, 4, Some(cf8))?;
        self.port(port, 4, None)
    }

    /// Places the function's memory BARs one after the other in the guest's BAR window, each
    /// aligned to its size, as a driver (or firmware) assigns them. Decode stays as it is.
    /// Returns (BAR, GPA) of each.
    pub fn place_bars(
        &mut self,
        vbdf: Bdf,
        bars: impl IntoIterator<Item = Bar>,
    ) -> Result<Vec<(u8, u64)>, String> {
        let mut next = BAR_WINDOW.start;
        let mut placed = Vec::new();
        for bar in bars.into_iter().filter(|b| b.kind != BarKind::Io) {
            let gpa = next.next_multiple_of(bar.size.max(0x1000));
            let off = 0x10 + 4 * u16::from(bar.index);
            self.write(vbdf, off, 4, gpa as u32)?;
            if bar.kind == BarKind::Memory64 {
                self.write(vbdf, off + 4, 4, (gpa >> 32) as u32)?;
            }
            placed.push((bar.index, gpa));
            next = gpa + bar.size;
        }
        Ok(placed)
    }

    /// A guest driver's MSI set-up on function `vbdf` (physical `f`), through its virtual
    /// configuration space (PCIe Base Spec r6.0 §7.7.1): memory BARs placed, memory decode and bus
    /// mastering on, message address 0xFEE00000 (its local APIC 0), data `vector`, then MSI
    /// Enable.
    pub fn enable_msi(
        &mut self,
        vbdf: Bdf,
        f: &crate::pci::Function,
        vector: u8,
    ) -> Result<GuestMsi, String> {
        self.enable_msi_to(vbdf, f, vector, 0)
    }

    /// [`GuestView::enable_msi`] with the message addressed to the guest's local APIC ID
    /// `apic` (physical destination mode: address bits 19:12, Intel SDM Vol. 3A §11.11.1).
    pub fn enable_msi_to(
        &mut self,
        vbdf: Bdf,
        f: &crate::pci::Function,
        vector: u8,
        apic: u8,
    ) -> Result<GuestMsi, String> {
        let cap = f
            .caps
            .iter()
            .find(|c| c.id == conduit_pci::cap_id::MSI)
            .ok_or_else(|| format!("{vbdf} has no MSI capability"))?
            .offset;
        // The shape as the guest sees it (as on the device: 64-bit, masking, data width).
        let shape = self.read(vbdf, cap + 2, 2)?;
        let info = conduit_vpci::MsiInfo::from_control(cap, shape as u16);
        let bars = self.place_bars(vbdf, f.bars.iter().copied())?;
        self.write(vbdf, 0x04, 2, 0x0006)?;
        self.write(vbdf, cap + 4, 4, msi_address(apic))?;
        if info.is_64bit {
            self.write(vbdf, cap + 8, 4, 0)?;
        }
        self.write(vbdf, cap + info.data_offset(), 2, u32::from(vector))?;
        let ctl = self.read(vbdf, cap + 2, 2)?;
        self.write(vbdf, cap + 2, 2, ctl | 1)?;
        Ok(GuestMsi {
            cap,
            info,
            ctl,
            bars,
        })
    }

    /// Sets the BARs `placed` back to 0 (after decode was turned off).
    pub fn clear_bars(&mut self, vbdf: Bdf, placed: &[(u8, u64)]) -> Result<(), String> {
        for &(index, gpa) in placed {
            let off = 0x10 + 4 * u16::from(index);
            self.write(vbdf, off, 4, 0)?;
            if gpa >> 32 != 0 {
                self.write(vbdf, off + 4, 4, 0)?;
            }
        }
        Ok(())
    }

    /// What a driver does before its function may interrupt: memory decode and bus mastering
    /// on, then MSI-X Enable in the capability at `cap` (its physical counterparts follow
    /// through the control task).
    pub fn enable_msix(&mut self, vbdf: Bdf, cap: u16) -> Result<(), String> {
        self.write(vbdf, 0x04, 2, MEMORY_AND_BUS_MASTER)?;
        self.write(vbdf, cap + 2, 2, MSIX_ENABLE)
    }

    /// MSI-X Enable, then decode and bus mastering off again.
    pub fn disable_msix(&mut self, vbdf: Bdf, cap: u16) -> Result<(), String> {
        self.write(vbdf, cap + 2, 2, 0)?;
        self.write(vbdf, 0x04, 2, 0)
    }

    /// GPA of the MSI-X table of `vbdf` (capability at `cap`), as its driver finds it: the Table
    /// Offset/BIR register (PCIe Base Spec r6.0 §7.7.2.3) and the BAR placement `bars`.
    pub fn msix_table(&mut self, vbdf: Bdf, cap: u16, bars: &[(u8, u64)]) -> Result<u64, String> {
        let reg = self.read(vbdf, cap + 4, 4)?;
        let bir = (reg & 7) as u8;
        let base = bars
            .iter()
            .find(|(i, _)| *i == bir)
            .map(|(_, gpa)| *gpa)
            .ok_or_else(|| format!("{vbdf}: the MSI-X table is in BAR{bir}, not placed"))?;
        Ok(base + u64::from(reg & !7))
    }

    /// The driver writes MSI-X table entry `entry` (table at `table` GPA) with `address` and
    /// `data`, unmasked: one dword store at a time (PCIe Base Spec r6.0 §7.7.2: address, upper
    /// address, data, vector control).
    pub fn program_msix_entry(
        &mut self,
        table: u64,
        entry: u16,
        address: u64,
        data: u32,
    ) -> Result<(), String> {
        let at = table + u64::from(entry) * 16;
        for (offset, value) in [
            (0, address & 0xffff_ffff),
            (4, address >> 32),
            (8, u64::from(data)),
            (12, 0),
        ] {
            self.mmio_write(at + offset, 4, value)?;
        }
        Ok(())
    }
}

/// A compatibility-format MSI address to local APIC ID `apic` in physical destination mode
/// (Intel SDM Vol. 3A §11.11.1: 0xFEE in bits 31:20, destination ID in bits 19:12).
pub fn msi_address(apic: u8) -> u32 {
    0xfee0_0000 | u32::from(apic) << 12
}

/// The IRTE a remappable-format MSI address selects: handle bits 14:0 in address bits 19:5,
/// bit 15 in address bit 2 (VT-d spec §5.1.2.2); `None` for a compatibility-format address
/// (bit 4 clear).
pub fn irte_of(address: u32) -> Option<u16> {
    (address & (1 << 4) != 0)
        .then_some(((address >> 5) & 0x7fff | ((address >> 2) & 1) << 15) as u16)
}

/// The route the core made for a message whose physical address is `address`: the IRTE it
/// selects, the host vector that IRTE delivers and the guest vector bound to that host vector.
pub fn route_of(address: u32) -> Result<Routed, String> {
    let index = irte_of(address)
        .ok_or_else(|| format!("address {address:#x} is not in remappable format"))?;
    let irte = crate::iommu::read_irte(index)
        .ok_or_else(|| format!("IRTE {index} cannot be read"))?
        .map_err(|e| format!("IRTE {index}: {e}"))?;
    let binding = crate::irq::dispatch::binding(irte.vector()).ok_or_else(|| {
        format!(
            "IRTE {index}'s vector {:#x} is bound to nobody",
            irte.vector()
        )
    })?;
    let guest_vector = binding
        .virtual_vector
        .ok_or_else(|| format!("vector {:#x} carries no guest vector", irte.vector()))?;
    Ok(Routed {
        index,
        vector: irte.vector(),
        guest_vector,
    })
}

/// The route of MSI-X entry `entry` of the physical function `bdf` (its physical entry must be
/// unmasked, in remappable format, and its IRTE held by `owner`).
pub fn msix_route(mem: &Memory, bdf: Bdf, entry: u16, owner: Owner) -> Result<Routed, String> {
    let (address, _, masked) =
        crate::pci::msi::read_msix_entry(mem, conduit_pci::PciAddress::on_segment0(bdf), entry)
            .map_err(err)?;
    if masked {
        return Err(format!(
            "{bdf}'s physical MSI-X entry {entry} is masked: not routed"
        ));
    }
    let r = route_of(address)?;
    let held = crate::irq::irte_owner(r.index);
    if held != Some(owner) {
        return Err(format!(
            "IRTE {} is held by {held:?}, not {owner:?}",
            r.index
        ));
    }
    Ok(r)
}

/// Where `guest`'s topology shows the physical function `bdf` (00:01.0, 00:02.0, ...).
pub fn virtual_bdf(guest: u16, bdf: Bdf) -> Option<Bdf> {
    (1..32u8)
        .filter_map(|dev| Bdf::new(0, dev, 0))
        .find(|v| control::assignment(guest, *v) == Some(bdf))
}

/// What [`GuestView::enable_msi`] set up.
#[derive(Debug)]
pub struct GuestMsi {
    /// The MSI capability's offset.
    pub cap: u16,
    /// Its shape (64-bit, data offset).
    pub info: conduit_vpci::MsiInfo,
    /// Message Control as read before Enable was set.
    pub ctl: u32,
    /// The memory BARs placed, (BAR, GPA).
    pub bars: Vec<(u8, u64)>,
}
