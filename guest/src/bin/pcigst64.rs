//! `pcigst64`: a guest's view of an assigned PCI function, through configuration mechanism #1
//! (ports 0xCF8/0xCFC, PCI Local Bus Spec 3.0 §3.2.2.3.2), answered by Conduit's control task.
//!
//! It scans bus 0, prints every function it sees, and for an Intel 82540EM (8086:100e, the
//! e1000 of Bochs) sizes BAR0, programs it at 0xC000_0000 (the hypervisor's BAR window for
//! guests), turns memory decoding on and reads device registers (STATUS, the receive address)
//! through the EPT mapping of the physical BAR, counting its VM exits around each read with
//! hypercall 4. Then bad input: writes to read-only registers, garbage in BARs, a BAR moved onto
//! its own RAM, a disabled CONFIG_ADDRESS, a hammer of reads. A guest that finds no function
//! reads GPA 0xC000_0008 instead, where another guest's device may be mapped: the hypervisor must
//! stop it (EPT violation), not show it that device.
#![no_std]
#![no_main]

use conduit_guest::abi::HC_EXIT_COUNT_ALL;
use conduit_guest::{
    config_address, config_read, config_write, exit, hc_exit_count, inl, outl, println,
};

conduit_guest::entry!(main);

const BAR_GPA: u32 = 0xc000_0000;
const E1000: u32 = 0x100e_8086;

/// Reads a 32-bit register of the BAR at `BAR_GPA + offset`, counting the exits it caused.
fn mmio_read(offset: u32) -> (u32, u64) {
    let before = hc_exit_count(HC_EXIT_COUNT_ALL);
    let p = (BAR_GPA + offset) as usize as *const u32;
    // SAFETY: the guest's identity map covers 4 GiB; the hypervisor mapped its assigned BAR at
    // BAR_GPA in EPT (else the access is an EPT violation and the hypervisor stops the guest).
    let value = unsafe { p.read_volatile() };
    let after = hc_exit_count(HC_EXIT_COUNT_ALL);
    // The second count includes its own exit.
    (value, after.saturating_sub(before + 1))
}

fn main() -> ! {
    println!("hello from pcigst64");
    let mut found = None;
    let mut seen = 0;
    for dev in 0..32u8 {
        let id = config_read(dev, 0x00);
        if id == u32::MAX {
            continue;
        }
        seen += 1;
        let class = config_read(dev, 0x08);
        println!(
            "pci 00:{dev:02x}.0 {:04x}:{:04x} class {:02x}:{:02x}:{:02x} revision {:#04x}",
            id & 0xffff,
            id >> 16,
            class >> 24,
            (class >> 16) & 0xff,
            (class >> 8) & 0xff,
            class & 0xff
        );
        if id == E1000 {
            found = Some(dev);
        }
    }
    println!("bus 0: {seen} function(s)");
    let Some(dev) = found else {
        let id = ecam_read::<u32>(0xe000_8000);
        println!("ECAM window: 00:01.0 reads {id:#x}");
        println!("no e1000 here: reading GPA 0xc0000008, which is not this guest's");
        let (v, _) = mmio_read(8);
        println!("self-check failed: read {v:#x} from another guest's BAR window");
        exit(0xe1);
    };
    e1000(dev);
}

fn e1000(dev: u8) -> ! {
    // BAR0 sizing (decode off, as the spec asks): all ones in, the size mask out.
    let cmd = config_read(dev, 0x04) & 0xffff;
    config_write(dev, 0x04, cmd & !0x3);
    config_write(dev, 0x10, u32::MAX);
    let mask = config_read(dev, 0x10);
    let size = (!(mask & !0xf)).wrapping_add(1);
    println!(
        "BAR0: read {mask:#010x} after writing all ones: {} {}-bit, size {} KiB",
        if mask & 1 == 0 { "memory" } else { "I/O" },
        if mask & 0x6 == 0x4 { 64 } else { 32 },
        size >> 10
    );
    config_write(dev, 0x10, BAR_GPA);
    let bar = config_read(dev, 0x10);
    config_write(dev, 0x04, cmd | 0x2);
    println!(
        "BAR0 programmed at {bar:#010x}, memory decoding on (command {:#06x})",
        config_read(dev, 0x04) & 0xffff
    );
    let (status, exits) = mmio_read(0x08);
    println!("e1000 STATUS (BAR0+0x8) = {status:#010x}; VM exits during the read: {exits}");
    let (ctrl, exits_ctrl) = mmio_read(0x00);
    println!("e1000 CTRL (BAR0+0x0) = {ctrl:#010x}; VM exits during the read: {exits_ctrl}");
    let (mac, exits_mac) = eeprom_mac();
    match mac {
        Some(m) => println!(
            "e1000 EEPROM words 0-2 through EERD (BAR0+0x14): MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}; VM exits during the 3 writes and the reads: {exits_mac}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ),
        None => println!("self-check failed: EERD never reported done"),
    }
    ecam_window(dev);
    bad_input(dev);
    println!("done");
    exit(0);
}

/// Reads the MAC address from EEPROM words 0-2 through the EEPROM Read register (82540EM: EERD
/// at 0x14, Start bit 0, Done bit 4, address 15:8, data 31:16): MMIO writes and reads, all
/// through EPT. Returns the MAC and the exits counted around the whole sequence.
fn eeprom_mac() -> (Option<[u8; 6]>, u64) {
    let eerd = (BAR_GPA + 0x14) as usize as *mut u32;
    let before = hc_exit_count(HC_EXIT_COUNT_ALL);
    let mut mac = [0u8; 6];
    let mut ok = true;
    for word in 0..3u32 {
        // SAFETY: EERD lies in the BAR mapped at BAR_GPA (see `mmio_read`).
        unsafe { eerd.write_volatile((word << 8) | 1) };
        let mut value = None;
        for _ in 0..1000 {
            // SAFETY: as above.
            let v = unsafe { eerd.read_volatile() };
            if v & (1 << 4) != 0 {
                value = Some(v >> 16);
                break;
            }
        }
        match value {
            Some(v) => {
                mac[(word * 2) as usize] = v as u8;
                mac[(word * 2 + 1) as usize] = (v >> 8) as u8;
            }
            None => ok = false,
        }
    }
    let after = hc_exit_count(HC_EXIT_COUNT_ALL);
    (ok.then_some(mac), after.saturating_sub(before + 1))
}

/// The guest's ECAM window (0xE000_0000, bus 0): every access is an EPT violation that the
/// hypervisor emulates (decoding the MOV) and forwards to the control task.
fn ecam_window(dev: u8) {
    const ECAM: usize = 0xe000_0000;
    let at = |d: u8, off: usize| ECAM + (usize::from(d) << 15) + off;
    let ept_before = hc_exit_count(EXIT_EPT_VIOLATION);
    let id = ecam_read::<u32>(at(dev, 0));
    let vendor = ecam_read::<u16>(at(dev, 0));
    let class = ecam_read::<u8>(at(dev, 0x0b));
    let ext = ecam_read::<u32>(at(dev, 0x100));
    let qword = ecam_read::<u64>(at(dev, 0));
    let absent = ecam_read::<u32>(at(5, 0));
    // A read-only field written through the window stays as it was.
    // SAFETY: as in `ecam_read`.
    unsafe { (at(dev, 0) as *mut u16).write_volatile(0x1234) };
    let again = ecam_read::<u32>(at(dev, 0));
    let ept = hc_exit_count(EXIT_EPT_VIOLATION) - ept_before;
    println!(
        "ECAM window: 00:{dev:02x}.0 at {:#x} reads {:04x}:{:04x} (dword), vendor {vendor:04x} (word), class {class:#04x} (byte); 0x100 reads {ext:#x}",
        at(dev, 0),
        id & 0xffff,
        id >> 16
    );
    println!(
        "ECAM window: a qword reads {qword:#x}; 00:05.0 reads {absent:#x}; after a write to the vendor ID: {:04x}:{:04x}; {ept} EPT-violation exits for 8 accesses",
        again & 0xffff,
        again >> 16
    );
}

/// One read through the ECAM window (a single MOV of `T`'s width).
fn ecam_read<T: Copy>(addr: usize) -> T {
    // SAFETY: the identity map covers the window below 4 GiB and the hypervisor emulates every
    // access to it (or stops this guest); the address is aligned for `T`.
    unsafe { (addr as *const T).read_volatile() }
}

/// Basic exit reason 48: EPT violation (SDM Vol. 3C Appendix C).
const EXIT_EPT_VIOLATION: u64 = 48;

/// What the hypervisor must shrug off.
fn bad_input(dev: u8) {
    // Read-only identity: a write changes nothing.
    let id = config_read(dev, 0x00);
    let class = config_read(dev, 0x08);
    config_write(dev, 0x00, 0x1234_5678);
    config_write(dev, 0x08, 0xffff_ffff);
    let same = config_read(dev, 0x00) == id && config_read(dev, 0x08) == class;
    println!(
        "bad input: writes to vendor/device and class/revision: {}",
        if same {
            "ignored"
        } else {
            "self-check failed: they changed"
        }
    );
    // Garbage in the unimplemented BARs and the expansion ROM: they stay zero.
    for off in [0x18u8, 0x1c, 0x20, 0x24, 0x30] {
        config_write(dev, off, 0xdead_beef);
    }
    let rest: u32 = [0x18u8, 0x1c, 0x20, 0x24]
        .iter()
        .map(|o| config_read(dev, *o))
        .fold(0, |a, v| a | v);
    println!("bad input: garbage in BAR2-BAR5: they read {rest:#x}");
    // BAR0 moved onto the guest's own RAM with decoding on: not mapped there; RAM unchanged.
    let probe = 0x0010_0000 as *const u32;
    // SAFETY: the guest's image is loaded at 1 MiB; reading its first dword is reading RAM.
    let before = unsafe { probe.read_volatile() };
    config_write(dev, 0x10, 0x0010_0000);
    // SAFETY: as above.
    let after = unsafe { probe.read_volatile() };
    println!(
        "bad input: BAR0 moved to 0x100000 (guest RAM): RAM there {}",
        if before == after {
            "unchanged"
        } else {
            "self-check failed: changed"
        }
    );
    config_write(dev, 0x10, BAR_GPA);
    let (status, exits) = mmio_read(0x08);
    println!(
        "BAR0 back at {BAR_GPA:#x}: STATUS = {status:#010x}, VM exits during the read: {exits}"
    );
    // CONFIG_ADDRESS without Enable: the data port reads all ones, writes go nowhere.
    outl(0xcf8, config_address(dev, 0) & !0x8000_0000);
    let v = inl(0xcfc);
    outl(0xcfc, 0);
    println!("bad input: CONFIG_ADDRESS without Enable: data port reads {v:#x}");
    // Functions that are not the guest's read all ones, whatever the bus.
    outl(0xcf8, 0x8000_0000 | (5 << 16));
    let far = inl(0xcfc);
    println!("bad input: bus 5 device 0 reads {far:#x}");
    // A hammer of configuration reads: every answer the same.
    let mut wrong = 0;
    for _ in 0..2000 {
        if config_read(dev, 0x00) != id {
            wrong += 1;
        }
    }
    println!("bad input: 2000 configuration reads, {wrong} wrong");
}
