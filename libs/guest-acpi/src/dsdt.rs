//! The DSDT (ACPI 6.5 §5.2.11.1): the PCI root bridge with its resources and static interrupt
//! routing, the UART, and the `\_S5_` sleep-type package, encoded as AML (§20) by
//! `acpi_tables::aml`.

use crate::config::{GuestAcpi, PciRoot, Serial};
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, Device, EISAName, IO, Interrupt, Memory32Fixed, Name,
    Package, Path, ResourceTemplate, Scope,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::{Aml, AmlSink};
use alloc::vec;
use alloc::vec::Vec;

/// DSDT revision 2: AML integers are 64 bits wide (§5.2.11.1).
const REVISION: u8 = 2;
/// A `_PRT` address with function 0xFFFF: every function of the device (§6.2.13).
const ALL_FUNCTIONS: u32 = 0xffff;

/// The DSDT for `cfg` (already validated).
pub(crate) fn build(cfg: &GuestAcpi<'_>) -> Vec<u8> {
    let mut aml = Vec::new();

    let pci0 = cfg.pci.as_ref().map(PciDevice);
    let ecam = cfg.pci.as_ref().map(EcamReservation);
    let com1 = cfg.serial.map(SerialDevice);
    let mut devices: Vec<&dyn Aml> = Vec::new();
    if let (Some(pci0), Some(ecam)) = (&pci0, &ecam) {
        devices.push(pci0);
        devices.push(ecam);
    }
    if let Some(com1) = &com1 {
        devices.push(com1);
    }
    if !devices.is_empty() {
        Scope::new(Path::new("\\_SB_"), devices).to_aml_bytes(&mut aml);
    }

    // `\_S5_` (§7.4.2): SLP_TYPa, SLP_TYPb, two reserved. Only SLP_TYPa matters on a
    // hardware-reduced platform, where it goes into the sleep control register.
    let typ = cfg.sleep.s5_slp_typ;
    let zero = 0u8;
    let s5 = Package::new(vec![&typ, &typ, &zero, &zero]);
    Name::new(Path::new("\\_S5_"), &s5).to_aml_bytes(&mut aml);

    let mut dsdt = Sdt::new(
        *b"DSDT",
        36,
        REVISION,
        cfg.oem.id,
        cfg.oem.table_id,
        cfg.oem.revision,
    );
    dsdt.append_slice(&aml);
    dsdt.as_slice().to_vec()
}

/// `Device (PCI0)`: a PCI Express root bridge (`PNP0A08`, compatible with `PNP0A03`), §6.1,
/// §6.2, §6.5.5 (`_BBN`), §6.5.6 (`_SEG`), with its `_CRS` and `_PRT`.
struct PciDevice<'a>(&'a PciRoot<'a>);

impl Aml for PciDevice<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let pci = self.0;
        let bus = AddressSpace::<u16>::new_bus_number(0, u16::from(pci.bus_end));
        let io: Vec<AddressSpace<u16>> = pci
            .io
            .iter()
            .map(|w| AddressSpace::new_io(*w.start(), *w.end(), None))
            .collect();
        // Validated: the window lies below 4 GiB and is not empty.
        let mmio = AddressSpace::<u32>::new_memory(
            AddressSpaceCacheable::NotCacheable,
            true,
            pci.mmio32.start as u32,
            (pci.mmio32.end - 1) as u32,
            None,
        );
        let mut resources: Vec<&dyn Aml> = vec![&bus];
        resources.extend(io.iter().map(|w| w as &dyn Aml));
        resources.push(&mmio);
        let crs = ResourceTemplate::new(resources);

        // Each entry: Package { Address, Pin, Source (0: a GSI, not a link device), Source
        // Index (the GSI) } (§6.2.13, Table 6.2).
        let entries: Vec<(u32, u8, u32)> = pci
            .prt
            .iter()
            .map(|e| {
                let address = (u32::from(e.device) << 16) | ALL_FUNCTIONS;
                (address, e.pin.prt_index(), e.gsi)
            })
            .collect();
        let zero = 0u8;
        let packages: Vec<Package<'_>> = entries
            .iter()
            .map(|(address, pin, gsi)| Package::new(vec![address, pin, &zero, gsi]))
            .collect();
        let prt = Package::new(packages.iter().map(|p| p as &dyn Aml).collect());

        let hid = EISAName::new("PNP0A08");
        let cid = EISAName::new("PNP0A03");
        Device::new(
            Path::new("PCI0"),
            vec![
                &Name::new(Path::new("_HID"), &hid),
                &Name::new(Path::new("_CID"), &cid),
                &Name::new(Path::new("_SEG"), &zero),
                &Name::new(Path::new("_BBN"), &zero),
                &Name::new(Path::new("_UID"), &zero),
                &Name::new(Path::new("_CRS"), &crs),
                &Name::new(Path::new("_PRT"), &prt),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `Device (ECAM)`: a motherboard resource (`PNP0C02`) claiming the ECAM window, as the PCI
/// Firmware Spec 3.3 §4.1.2 asks for the ranges MCFG names.
struct EcamReservation<'a>(&'a PciRoot<'a>);

impl Aml for EcamReservation<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        // Validated: the window ends below 4 GiB.
        let window = Memory32Fixed::new(false, self.0.ecam_base as u32, self.0.ecam_len() as u32);
        let crs = ResourceTemplate::new(vec![&window]);
        let hid = EISAName::new("PNP0C02");
        let uid = 1u8;
        Device::new(
            Path::new("ECAM"),
            vec![
                &Name::new(Path::new("_HID"), &hid),
                &Name::new(Path::new("_UID"), &uid),
                &Name::new(Path::new("_CRS"), &crs),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `Device (COM1)`: a 16550A-compatible UART (`PNP0501`) with its eight ports and its
/// interrupt, edge-triggered and active high like every ISA interrupt (§6.4.3.6).
struct SerialDevice(Serial);

impl Aml for SerialDevice {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let port = self.0.port;
        let io = IO::new(port, port, 1, 8);
        let irq = Interrupt::new(true, true, false, false, self.0.gsi);
        let crs = ResourceTemplate::new(vec![&io, &irq]);
        let hid = EISAName::new("PNP0501");
        let zero = 0u8;
        Device::new(
            Path::new("COM1"),
            vec![
                &Name::new(Path::new("_HID"), &hid),
                &Name::new(Path::new("_UID"), &zero),
                &Name::new(Path::new("_CRS"), &crs),
            ],
        )
        .to_aml_bytes(sink);
    }
}
