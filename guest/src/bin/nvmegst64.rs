//! `nvmegst64`: the guest-side NVMe admin-queue driver, run inside a VMX guest given a VF of an
//! NVMe PF whose secondary controller the hypervisor brought online (`docs/sriov.md`, "NVMe
//! virtual functions"). It is the counterpart of the hypervisor's `nvme-vf` self-test, which runs the
//! same admin queue on guest A's behalf where no vCPU runs (QEMU TCG).
//!
//! 1. Enumerates its virtual bus 0 through configuration mechanism #1 (ports 0xCF8/0xCFC, PCI
//!    Local Bus Spec 3.0 §3.2.2.3.2), answered by Conduit's control task, and finds class
//!    01:08:02 (NVM Express, NVMe Base Spec 2.0 §3.1.2 / PCI Code and ID Assignment).
//! 2. Sizes BAR0 (64-bit: both halves), programs it at [`BAR_GPA`] in the hypervisor's BAR window,
//!    turns Memory Space and Bus Master Enable on; the hypervisor maps the VF's BAR there in EPT.
//! 3. Runs the admin queue with `conduit_nvme` (driver.rs): controller disabled, admin SQ/CQ in
//!    this guest's memory by guest-physical address (identity map: GPA = linear address; IOVA =
//!    GPA in its IOMMU domain), AQA/ASQ/ACQ, enabled, CSTS.RDY awaited by counted polls;
//!    Identify Controller (CNS 01h, §5.17.2.1) into a 4 KiB page of its memory, checked and
//!    printed with a checksum.
//! 4. Bad input: Identify with PRP1 = [`OUTSIDE_GPA`], never this guest's memory. The IOMMU must
//!    block the write (the hypervisor logs the DMA fault with the VF's BDF); the guest prints the
//!    completion status and checks that its sentinel pages, the data page and its queues'
//!    neighbours are unchanged, then that the VF still answers Identify.
//!
//! Exits with [`EXIT_OK`] on success; on any failure prints `self-check failed: ...` and exits
//! with [`EXIT_FAILED`].
#![no_std]
#![no_main]

#[path = "nvmegst64/driver.rs"]
mod driver;

use conduit_guest::{config_read, config_write, exit, println};
use conduit_nvme::{Cns, Command, IDENTIFY_BYTES, IdentifyController};
use core::fmt;
use driver::{Controller, PAGE, checksum, fill, gpa, page, read_page};

conduit_guest::entry!(main);

/// Exit code on success ('N').
const EXIT_OK: u64 = 0x4e;
/// Exit code on any failure.
const EXIT_FAILED: u64 = 0xee;
/// Where BAR0 goes: the start of the hypervisor's BAR window for guests (0xC000_0000-0xE000_0000).
const BAR_GPA: u64 = 0xc000_0000;
/// A data pointer that is never this guest's memory: guest RAM ends at 512 MiB at most (the
/// hypervisor's limit, below its BAR window), so 1 GiB lies far above any `memory_mib`; it is not
/// in the BAR window either. Nothing is mapped there in the guest's IOMMU domain.
const OUTSIDE_GPA: u64 = 0x4000_0000;
/// Class code 01:08:02: mass storage, non-volatile memory controller, NVM Express I/O controller.
const NVME_CLASS: u32 = 0x01_0802;
/// Command register bits (PCI Local Bus Spec 3.0 §6.2.2).
const MEMORY_SPACE: u32 = 1 << 1;
const BUS_MASTER: u32 = 1 << 2;
/// Offsets in the configuration header.
const ID: u8 = 0x00;
const COMMAND: u8 = 0x04;
const CLASS: u8 = 0x08;
const BAR0: u8 = 0x10;
const BAR1: u8 = 0x14;

/// Why the guest failed.
enum Failure {
    /// No function of class 01:08:02 on bus 0.
    NoNvme {
        seen: u32,
    },
    /// BAR0 is not a memory BAR, or did not take the address.
    Bar(&'static str, u32),
    /// The Command register did not take Memory Space and Bus Master Enable.
    Command(u32),
    Driver(driver::Error),
    /// What the controller returned is not what it must be.
    Check(&'static str),
    /// A page changed that no transfer may touch.
    Isolation {
        gpa: u64,
        before: u64,
        after: u64,
    },
}

impl From<driver::Error> for Failure {
    fn from(e: driver::Error) -> Self {
        Self::Driver(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNvme { seen } => {
                write!(
                    f,
                    "no NVMe controller (class 01:08:02) among {seen} function(s) on bus 0"
                )
            }
            Self::Bar(what, v) => write!(f, "BAR0: {what} (reads {v:#010x})"),
            Self::Command(v) => write!(
                f,
                "Command register reads {v:#06x}: Memory Space and Bus Master Enable not both set"
            ),
            Self::Driver(e) => write!(f, "{e}"),
            Self::Check(what) => write!(f, "{what}"),
            Self::Isolation { gpa, before, after } => write!(
                f,
                "the page at GPA {gpa:#x} changed (checksum {before:#018x} -> {after:#018x})"
            ),
        }
    }
}

fn main() -> ! {
    println!("hello from nvmegst64");
    match run() {
        Ok(()) => {
            println!("nvmegst64: PASS");
            exit(EXIT_OK)
        }
        Err(e) => {
            println!("self-check failed: {e}");
            exit(EXIT_FAILED)
        }
    }
}

fn run() -> Result<(), Failure> {
    let dev = find_nvme()?;
    let vendor = (config_read(dev, ID) & 0xffff) as u16;
    let size = map_bar0(dev)?;
    let mut c = Controller::open(BAR_GPA, size)?;
    let cap = c.cap();
    println!(
        "nvmegst64: CAP {:#018x} (MQES {}, TO {} ms, DSTRD {}), version {}",
        cap.0,
        cap.max_queue_entries(),
        cap.timeout_ms(),
        cap.doorbell_stride_field(),
        c.version()
    );
    let (polls, cycles) = c.enable()?;
    println!(
        "nvmegst64: controller enabled: admin SQ at GPA {:#x}, CQ at GPA {:#x} ({} entries each); CSTS.RDY after {polls} poll(s), {cycles} TSC cycles",
        gpa(page::SQ),
        gpa(page::CQ),
        driver::SQ_ENTRIES
    );
    let result = script(&mut c, vendor);
    match c.disable() {
        Ok((polls, _)) => {
            println!("nvmegst64: controller disabled (CSTS.RDY clear after {polls} poll(s))")
        }
        Err(e) => println!("nvmegst64: disabling at the end: {e}"),
    }
    result
}

/// Scans bus 0; returns the device number of the first NVMe controller.
fn find_nvme() -> Result<u8, Failure> {
    let (mut found, mut seen) = (None, 0);
    for dev in 0..32u8 {
        let id = config_read(dev, ID);
        if id == u32::MAX {
            continue;
        }
        seen += 1;
        let class = config_read(dev, CLASS);
        println!(
            "nvmegst64: pci 00:{dev:02x}.0 {:04x}:{:04x} class {:02x}:{:02x}:{:02x}",
            id & 0xffff,
            id >> 16,
            class >> 24,
            (class >> 16) & 0xff,
            (class >> 8) & 0xff
        );
        if found.is_none() && class >> 8 == NVME_CLASS {
            found = Some(dev);
        }
    }
    let dev = found.ok_or(Failure::NoNvme { seen })?;
    println!("nvmegst64: NVMe controller at 00:{dev:02x}.0");
    Ok(dev)
}

/// Sizes BAR0 with decoding off (PCI Local Bus Spec 3.0 §6.2.5.1), programs it at [`BAR_GPA`]
/// and turns Memory Space and Bus Master Enable on. Returns the BAR's size.
fn map_bar0(dev: u8) -> Result<u64, Failure> {
    let cmd = config_read(dev, COMMAND) & 0xffff;
    config_write(dev, COMMAND, cmd & !(MEMORY_SPACE | BUS_MASTER | 1));
    config_write(dev, BAR0, u32::MAX);
    let lo = config_read(dev, BAR0);
    if lo & 1 != 0 {
        return Err(Failure::Bar("an I/O BAR, NVMe registers are memory", lo));
    }
    let wide = lo & 0x6 == 0x4;
    let hi = if wide {
        config_write(dev, BAR1, u32::MAX);
        config_read(dev, BAR1)
    } else {
        u32::MAX
    };
    let mask = (u64::from(hi) << 32) | u64::from(lo & !0xf);
    let size = (!mask).wrapping_add(1);
    if mask == 0 || !size.is_power_of_two() {
        return Err(Failure::Bar(
            "not implemented or not a power-of-two size",
            lo,
        ));
    }
    println!(
        "nvmegst64: BAR0: read {lo:#010x} after writing all ones: memory {}-bit, size {} KiB",
        if wide { 64 } else { 32 },
        size >> 10
    );
    config_write(dev, BAR0, BAR_GPA as u32);
    if wide {
        config_write(dev, BAR1, (BAR_GPA >> 32) as u32);
    }
    let bar = config_read(dev, BAR0);
    if u64::from(bar & !0xf) != BAR_GPA {
        return Err(Failure::Bar("did not take the address 0xc0000000", bar));
    }
    config_write(dev, COMMAND, cmd | MEMORY_SPACE | BUS_MASTER);
    let now = config_read(dev, COMMAND) & 0xffff;
    if now & (MEMORY_SPACE | BUS_MASTER) != MEMORY_SPACE | BUS_MASTER {
        return Err(Failure::Command(now));
    }
    println!(
        "nvmegst64: BAR0 programmed at {BAR_GPA:#010x}, memory decoding and bus mastering on (command {now:#06x})"
    );
    Ok(size)
}

/// Identify Controller with PRP1 = `prp1`: the completion's status, decoded, is an error.
fn identify(c: &mut Controller, prp1: u64, what: &'static str) -> Result<(), Failure> {
    let done = c.admin(Command::identify(Cns::Controller, 0, prp1), what)?;
    let status = done.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(driver::Error::Status { what, status }.into())
    }
}

/// Identify into the data page (filled with a pattern first, so the checks see the controller's
/// bytes, not what was there); parses it and checks it against the configuration space.
fn identify_here(c: &mut Controller, vendor: u16) -> Result<(IdentifyController, u64), Failure> {
    const PATTERN: u8 = 0xa5;
    fill(page::DATA, PATTERN);
    let before = checksum(page::DATA);
    identify(c, gpa(page::DATA), "Identify Controller (CNS 01h)")?;
    let sum = checksum(page::DATA);
    if sum == before {
        return Err(Failure::Check(
            "Identify completed but the data page still holds the pattern",
        ));
    }
    let mut data = [0u8; PAGE];
    read_page(page::DATA, &mut data);
    let id = IdentifyController::parse(&data[..IDENTIFY_BYTES]).map_err(driver::Error::Parse)?;
    if id.vid != vendor {
        return Err(Failure::Check(
            "Identify's PCI Vendor ID differs from the configuration space's",
        ));
    }
    if id.serial.as_str().is_none_or(str::is_empty) || id.model.as_str().is_none_or(str::is_empty) {
        return Err(Failure::Check(
            "Identify's serial or model number is empty or not printable ASCII",
        ));
    }
    Ok((id, sum))
}

fn script(c: &mut Controller, vendor: u16) -> Result<(), Failure> {
    let (id, sum) = identify_here(c, vendor)?;
    println!(
        "nvmegst64: identify: SN \"{}\" MN \"{}\" FR \"{}\" controller id {:#x}, VID {:#06x}; 4 KiB at GPA {:#x}, checksum {sum:#018x}",
        id.serial,
        id.model,
        id.firmware,
        id.cntlid,
        id.vid,
        gpa(page::DATA)
    );
    outside(c)?;
    let (again, _) = identify_here(c, vendor)?;
    if again.serial != id.serial || again.cntlid != id.cntlid {
        return Err(Failure::Check(
            "after the blocked transfer the VF reports another serial number or controller ID",
        ));
    }
    println!(
        "nvmegst64: the VF still answers after the blocked transfer: SN \"{}\", controller id {:#x}",
        again.serial, again.cntlid
    );
    Ok(())
}

/// Identify with PRP1 outside this guest's memory: whatever the status, no page of the guest may
/// change. The sentinels, the data page and the queues' neighbours get distinct patterns first.
fn outside(c: &mut Controller) -> Result<(), Failure> {
    const WATCHED: [(usize, u8); 3] = [
        (page::SENTINEL_LOW, 0x5a),
        (page::DATA, 0xc3),
        (page::SENTINEL_HIGH, 0x3c),
    ];
    let mut before = [0u64; WATCHED.len()];
    for (sum, (index, byte)) in before.iter_mut().zip(WATCHED) {
        fill(index, byte);
        *sum = checksum(index);
    }
    let done = c.admin(
        Command::identify(Cns::Controller, 0, OUTSIDE_GPA),
        "Identify with PRP1 outside the guest's memory",
    )?;
    for (sum, (index, _)) in before.iter().zip(WATCHED) {
        let after = checksum(index);
        if after != *sum {
            return Err(Failure::Isolation {
                gpa: gpa(index),
                before: *sum,
                after,
            });
        }
    }
    println!(
        "nvmegst64: identify with PRP1 = {OUTSIDE_GPA:#x} (outside this guest's memory): completed with NVMe status {}; sentinel pages at GPA {:#x}, {:#x} and the data page {:#x} unchanged",
        done.status(),
        gpa(page::SENTINEL_LOW),
        gpa(page::SENTINEL_HIGH),
        gpa(page::DATA)
    );
    Ok(())
}
