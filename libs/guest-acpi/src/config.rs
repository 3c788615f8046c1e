//! What the tables describe: the guest's CPUs, interrupt controllers, PCI root, UART and the
//! ports of its power and reset registers, with the values Conduit uses by default.

use core::ops::{Range, RangeInclusive};

/// The machine one guest sees, as far as its ACPI tables tell it.
#[derive(Debug, Clone)]
pub struct GuestAcpi<'a> {
    /// The OEM identification written into every table header.
    pub oem: Oem,
    /// The local APIC ID of each vCPU, in processor-UID order (the first one boots).
    pub cpus: &'a [u32],
    /// The local APIC's guest-physical address (MADT "Local Interrupt Controller Address").
    pub lapic_addr: u32,
    /// The guest's one I/O APIC.
    pub ioapic: IoApic,
    /// ISA IRQs that do not reach the I/O APIC pin of the same number, or do not have the ISA
    /// bus's edge/active-high signalling (MADT Interrupt Source Override, ACPI 6.5 §5.2.12.5).
    pub isa_overrides: &'a [IsaOverride],
    /// The PCI host bridge with its ECAM window, or `None` for a guest without PCI.
    pub pci: Option<PciRoot<'a>>,
    /// The hardware-reduced sleep registers (power-off).
    pub sleep: SleepRegisters,
    /// The reset register.
    pub reset: ResetRegister,
    /// The 16550 UART described in the DSDT, if the guest has one.
    pub serial: Option<Serial>,
}

/// The OEM fields of the table headers (ACPI 6.5 §5.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oem {
    /// OEM ID, also in the RSDP.
    pub id: [u8; 6],
    /// OEM Table ID.
    pub table_id: [u8; 8],
    /// OEM Revision.
    pub revision: u32,
}

/// Conduit's OEM identification.
pub const DEFAULT_OEM: Oem = Oem {
    id: *b"CNDUIT",
    table_id: *b"CONDUIT ",
    revision: 1,
};

/// The architectural default local APIC base (Intel SDM Vol. 3A §11.4.1).
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// The customary I/O APIC base.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;

/// An I/O APIC (MADT I/O APIC structure, ACPI 6.5 §5.2.12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    /// Its I/O APIC ID (what its ID register reads).
    pub id: u8,
    /// Guest-physical address of its register window.
    pub addr: u32,
    /// The GSI of its pin 0.
    pub gsi_base: u32,
    /// Number of redirection entries (pins).
    pub pins: u8,
}

impl IoApic {
    /// ID 0 at [`IOAPIC_ADDR`], GSIs 0..24: the 82093AA's 24 pins.
    pub const DEFAULT: IoApic = IoApic {
        id: 0,
        addr: IOAPIC_ADDR,
        gsi_base: 0,
        pins: 24,
    };

    /// The GSIs this I/O APIC serves.
    pub fn gsis(&self) -> Range<u32> {
        self.gsi_base..self.gsi_base.saturating_add(u32::from(self.pins))
    }
}

/// Interrupt polarity in MPS INTI flags (ACPI 6.5 Table 5.26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// As the bus specifies (ISA: active high).
    ConformsToBus,
    /// Active high.
    ActiveHigh,
    /// Active low.
    ActiveLow,
}

/// Trigger mode in MPS INTI flags (ACPI 6.5 Table 5.26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// As the bus specifies (ISA: edge).
    ConformsToBus,
    /// Edge-triggered.
    Edge,
    /// Level-triggered.
    Level,
}

/// An ISA IRQ routed to a GSI (MADT Interrupt Source Override).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaOverride {
    /// The ISA IRQ (0..=15).
    pub isa_irq: u8,
    /// The GSI it reaches.
    pub gsi: u32,
    /// Its polarity.
    pub polarity: Polarity,
    /// Its trigger mode.
    pub trigger: Trigger,
}

impl IsaOverride {
    /// The 16-bit MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2.
    pub fn inti_flags(&self) -> u16 {
        let polarity = match self.polarity {
            Polarity::ConformsToBus => 0b00,
            Polarity::ActiveHigh => 0b01,
            Polarity::ActiveLow => 0b11,
        };
        let trigger = match self.trigger {
            Trigger::ConformsToBus => 0b00,
            Trigger::Edge => 0b01,
            Trigger::Level => 0b11,
        };
        polarity | (trigger << 2)
    }
}

/// The PCI host bridge (one segment, buses `0..=bus_end`).
#[derive(Debug, Clone)]
pub struct PciRoot<'a> {
    /// Guest-physical base of the ECAM window (bus 0), 1 MiB aligned (PCIe Base Spec r6.0
    /// §7.2.2), the window below 4 GiB.
    pub ecam_base: u64,
    /// The last bus number behind the bridge.
    pub bus_end: u8,
    /// The 32-bit memory window in which the guest's BARs lie (end exclusive).
    pub mmio32: Range<u64>,
    /// The I/O port windows forwarded to PCI.
    pub io: &'a [RangeInclusive<u16>],
    /// Static interrupt routing: each device's INTx pin to a GSI (`_PRT`, ACPI 6.5 §6.2.13).
    pub prt: &'a [PrtEntry],
}

impl PciRoot<'_> {
    /// Bytes of the ECAM window: 1 MiB per bus (PCIe Base Spec r6.0 §7.2.2).
    pub fn ecam_len(&self) -> u64 {
        (u64::from(self.bus_end) + 1) << 20
    }
}

/// The I/O windows of a PC host bridge: all ports but the configuration mechanism's
/// 0xCF8..=0xCFF (PCI Local Bus Spec 3.0 §3.2.2.3.2).
pub const PCI_IO_WINDOWS: [RangeInclusive<u16>; 2] = [0x0000..=0x0cf7, 0x0d00..=0xffff];

/// A PCI interrupt pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// INTA#.
    IntA,
    /// INTB#.
    IntB,
    /// INTC#.
    IntC,
    /// INTD#.
    IntD,
}

impl Pin {
    /// The pin as `_PRT` numbers it (0 = INTA#).
    pub fn prt_index(self) -> u8 {
        match self {
            Pin::IntA => 0,
            Pin::IntB => 1,
            Pin::IntC => 2,
            Pin::IntD => 3,
        }
    }

    /// The pin an Interrupt Pin register value names (PCI Local Bus Spec 3.0 §6.2.4: 1 = INTA#
    /// .. 4 = INTD#); `None` for 0 (no INTx) and the reserved values.
    pub fn from_register(value: u8) -> Option<Pin> {
        match value {
            1 => Some(Pin::IntA),
            2 => Some(Pin::IntB),
            3 => Some(Pin::IntC),
            4 => Some(Pin::IntD),
            _ => None,
        }
    }
}

/// The first GSI of the guest's I/O APIC that carries PCI interrupts: 0-15 are the ISA IRQs.
pub const PCI_GSI_BASE: u32 = 16;

/// The guest I/O APIC input of `pin` of a function at device number `device` on bus 0: the
/// eight inputs 16-23 taken in turn, `16 + ((device + pin - 1) mod 8)` with INTA# as pin 1, the
/// rotation of PCI-to-PCI bridges' interrupt swizzle (PCI-to-PCI Bridge Architecture Spec 1.2
/// §9.1) over eight lines, so neighbouring devices and a device's four pins land on different
/// inputs. The function's virtual Interrupt Line and the `_PRT` entry both come from here.
pub fn intx_gsi(device: u8, pin: Pin) -> u32 {
    PCI_GSI_BASE + (u32::from(device) + u32::from(pin.prt_index())) % 8
}

/// One `_PRT` entry: device `device` (all functions), pin `pin`, wired to `gsi` (level-triggered,
/// active low, as PCI interrupts are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrtEntry {
    /// The PCI device number on bus 0 (0..=31).
    pub device: u8,
    /// Its interrupt pin.
    pub pin: Pin,
    /// The GSI it raises.
    pub gsi: u32,
}

impl PrtEntry {
    /// The entry for `pin` of device `device` on its [`intx_gsi`] input.
    pub fn routed(device: u8, pin: Pin) -> PrtEntry {
        PrtEntry {
            device,
            pin,
            gsi: intx_gsi(device, pin),
        }
    }
}

/// The hardware-reduced sleep registers, both one byte at an I/O port (ACPI 6.5 §4.8.3.7,
/// §4.8.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepRegisters {
    /// `SLEEP_CONTROL_REG`: the OS writes `SLP_TYP << 2 | SLP_EN` (bit 5) to enter a sleep state.
    pub control_port: u16,
    /// `SLEEP_STATUS_REG`: `WAK_STS` (bit 7).
    pub status_port: u16,
    /// The `SLP_TYP` value `\_S5_` names: a control write with it and `SLP_EN` powers off.
    pub s5_slp_typ: u8,
}

/// Sleep control at 0x600, status at 0x601 (the PM block's customary place in virtual
/// machines; clear of the legacy ISA devices, the UARTs and PCI configuration), `SLP_TYP` 5.
pub const SLEEP: SleepRegisters = SleepRegisters {
    control_port: 0x600,
    status_port: 0x601,
    s5_slp_typ: 5,
};

/// The FADT reset register: a one-byte write of `value` to I/O port `port` (ACPI 6.5 §4.8.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetRegister {
    /// The I/O port.
    pub port: u16,
    /// The value the OS writes.
    pub value: u8,
}

/// The PC reset control register: port 0xCF9, value 0x06 (`SYS_RST` | `RST_CPU`: a hard reset).
/// A byte access at 0xCF9 is not the configuration address register, which is a dword at 0xCF8.
pub const RESET: ResetRegister = ResetRegister {
    port: 0xcf9,
    value: 0x06,
};

/// A 16550-compatible UART (`PNP0501`) at eight I/O ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    /// Its first port.
    pub port: u16,
    /// The GSI it raises (edge-triggered, active high, as ISA interrupts are).
    pub gsi: u32,
}

impl Serial {
    /// COM1: ports 0x3F8..=0x3FF, ISA IRQ 4 on GSI 4.
    pub const COM1: Serial = Serial {
        port: 0x3f8,
        gsi: 4,
    };
}
