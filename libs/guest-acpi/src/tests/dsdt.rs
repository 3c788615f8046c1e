//! The DSDT: its header and byte encodings, and its objects as the `aml` crate reads them.

use super::{BASE, LEN, config, dsdt_of, parse, sum, xsdt_entries};
use crate::{GuestAcpi, build};
use acpi::mcfg::Mcfg;

#[test]
fn dsdt_header_and_encodings() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let dsdt = dsdt_of(&t);
    assert_eq!(&dsdt[..4], b"DSDT");
    assert_eq!(dsdt[8], 2, "revision 2: 64-bit integers");
    assert_eq!(sum(dsdt), 0);
    let has = |needle: &[u8]| dsdt.windows(needle.len()).any(|w| w == needle);
    // NameOp "_HID" DWordPrefix EISAID("PNP0A08") = 0x080AD041 little-endian.
    assert!(has(&[
        0x08, b'_', b'H', b'I', b'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08
    ]));
    assert!(has(&[
        0x08, b'_', b'C', b'I', b'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03
    ]));
    assert!(has(&[0x0c, 0x41, 0xd0, 0x05, 0x01]), "PNP0501");
    assert!(has(b"_PRT"));
    // NameOp "\_S5_" PackageOp.
    assert!(has(&[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12]));
}

/// The `aml` crate's access to the machine: the DSDT has no operation regions or methods, so
/// parsing and reading its objects touches none of it.
struct NoHardware;

impl aml::Handler for NoHardware {
    fn read_u8(&self, a: usize) -> u8 {
        unreachable!("memory read at {a:#x}")
    }
    fn read_u16(&self, a: usize) -> u16 {
        unreachable!("memory read at {a:#x}")
    }
    fn read_u32(&self, a: usize) -> u32 {
        unreachable!("memory read at {a:#x}")
    }
    fn read_u64(&self, a: usize) -> u64 {
        unreachable!("memory read at {a:#x}")
    }
    fn write_u8(&mut self, a: usize, _: u8) {
        unreachable!("memory write at {a:#x}")
    }
    fn write_u16(&mut self, a: usize, _: u16) {
        unreachable!("memory write at {a:#x}")
    }
    fn write_u32(&mut self, a: usize, _: u32) {
        unreachable!("memory write at {a:#x}")
    }
    fn write_u64(&mut self, a: usize, _: u64) {
        unreachable!("memory write at {a:#x}")
    }
    fn read_io_u8(&self, p: u16) -> u8 {
        unreachable!("port read at {p:#x}")
    }
    fn read_io_u16(&self, p: u16) -> u16 {
        unreachable!("port read at {p:#x}")
    }
    fn read_io_u32(&self, p: u16) -> u32 {
        unreachable!("port read at {p:#x}")
    }
    fn write_io_u8(&self, p: u16, _: u8) {
        unreachable!("port write at {p:#x}")
    }
    fn write_io_u16(&self, p: u16, _: u16) {
        unreachable!("port write at {p:#x}")
    }
    fn write_io_u32(&self, p: u16, _: u32) {
        unreachable!("port write at {p:#x}")
    }
    fn read_pci_u8(&self, _: u16, _: u8, _: u8, _: u8, o: u16) -> u8 {
        unreachable!("config read at {o:#x}")
    }
    fn read_pci_u16(&self, _: u16, _: u8, _: u8, _: u8, o: u16) -> u16 {
        unreachable!("config read at {o:#x}")
    }
    fn read_pci_u32(&self, _: u16, _: u8, _: u8, _: u8, o: u16) -> u32 {
        unreachable!("config read at {o:#x}")
    }
    fn write_pci_u8(&self, _: u16, _: u8, _: u8, _: u8, o: u16, _: u8) {
        unreachable!("config write at {o:#x}")
    }
    fn write_pci_u16(&self, _: u16, _: u8, _: u8, _: u8, o: u16, _: u16) {
        unreachable!("config write at {o:#x}")
    }
    fn write_pci_u32(&self, _: u16, _: u8, _: u8, _: u8, o: u16, _: u32) {
        unreachable!("config write at {o:#x}")
    }
}

pub(super) fn aml_context(dsdt: &[u8]) -> aml::AmlContext {
    let mut ctx = aml::AmlContext::new(Box::new(NoHardware), aml::DebugVerbosity::None);
    ctx.parse_table(&dsdt[36..]).expect("the DSDT's AML parses");
    ctx
}

pub(super) fn name(path: &str) -> aml::AmlName {
    aml::AmlName::from_str(path).expect("valid path")
}

fn integer(ctx: &aml::AmlContext, path: &str) -> u64 {
    match ctx.namespace.get_by_path(&name(path)).expect(path) {
        aml::AmlValue::Integer(v) => *v,
        other => panic!("{path} is {other:?}"),
    }
}

fn resources(ctx: &aml::AmlContext, path: &str) -> Vec<aml::resource::Resource> {
    let crs = ctx.namespace.get_by_path(&name(path)).expect(path);
    aml::resource::resource_descriptor_list(crs).expect("resource template parses")
}

#[test]
fn dsdt_parses_with_the_pci_root_routing_uart_and_s5() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let mut ctx = aml_context(dsdt_of(&t));

    assert_eq!(integer(&ctx, "\\_SB.PCI0._HID"), 0x080a_d041, "PNP0A08");
    assert_eq!(integer(&ctx, "\\_SB.PCI0._CID"), 0x030a_d041, "PNP0A03");
    assert_eq!(integer(&ctx, "\\_SB.PCI0._SEG"), 0);
    assert_eq!(integer(&ctx, "\\_SB.PCI0._BBN"), 0);
    assert_eq!(integer(&ctx, "\\_SB.PCI0._UID"), 0);
    assert_eq!(integer(&ctx, "\\_SB.COM1._HID"), 0x0105_d041, "PNP0501");

    let prt = aml::pci_routing::PciRoutingTable::from_prt_path(&name("\\_SB.PCI0._PRT"), &mut ctx)
        .expect("_PRT parses");
    use aml::pci_routing::Pin as P;
    for (device, function, pin, gsi) in [
        (1, 0, P::IntA, 16),
        (2, 7, P::IntB, 17),
        (31, 3, P::IntD, 23),
    ] {
        let irq = prt.route(device, function, pin, &mut ctx).expect("routed");
        assert_eq!(irq.irq, gsi, "device {device} {pin:?}");
    }
    assert!(
        prt.route(1, 0, P::IntB, &mut ctx).is_err(),
        "no entry for 1 INTB"
    );
    assert!(
        prt.route(3, 0, P::IntA, &mut ctx).is_err(),
        "no entry for device 3"
    );

    let crs: Vec<String> = resources(&ctx, "\\_SB.PCI0._CRS")
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    assert_eq!(crs.len(), 4, "{crs:#?}");
    assert!(crs[0].contains("BusNumberRange") && crs[0].contains("address_range: (0, 0)"));
    assert!(crs[1].contains("IORange") && crs[1].contains("address_range: (0, 3319)"));
    assert!(crs[2].contains("IORange") && crs[2].contains("address_range: (3328, 65535)"));
    assert!(crs[3].contains("MemoryRange"), "{}", crs[3]);
    assert!(crs[3].contains("address_range: (3221225472, 3758096383)"));
    assert!(crs[3].contains("length: 536870912"), "{}", crs[3]);

    assert_eq!(integer(&ctx, "\\_SB.ECAM._HID"), 0x020c_d041, "PNP0C02");
    assert_eq!(
        resources(&ctx, "\\_SB.ECAM._CRS"),
        [aml::resource::Resource::MemoryRange(
            aml::resource::MemoryRangeDescriptor::FixedLocation {
                is_writable: false,
                base_address: 0xe000_0000,
                range_length: 0x10_0000,
            }
        )]
    );

    let com1 = resources(&ctx, "\\_SB.COM1._CRS");
    assert_eq!(com1.len(), 2);
    let io = format!("{:?}", com1[0]);
    assert!(io.contains("memory_range: (1016, 1016)") && io.contains("range_length: 8"));
    let aml::resource::Resource::Irq(irq) = &com1[1] else {
        panic!("not an interrupt: {:?}", com1[1]);
    };
    assert_eq!(irq.irq, 4);
    assert_eq!(irq.trigger, aml::resource::InterruptTrigger::Edge);
    assert_eq!(irq.polarity, aml::resource::InterruptPolarity::ActiveHigh);
    assert!(irq.is_consumer && !irq.is_shared);

    let s5 = ctx.namespace.get_by_path(&name("\\_S5_")).expect("_S5_");
    let aml::AmlValue::Package(items) = s5 else {
        panic!("_S5_ is {s5:?}");
    };
    let values: Vec<&aml::AmlValue> = items.iter().collect();
    assert!(
        matches!(
            values[..],
            [
                aml::AmlValue::Integer(5),
                aml::AmlValue::Integer(5),
                aml::AmlValue::Integer(0),
                aml::AmlValue::Integer(0)
            ]
        ),
        "{values:?}"
    );
}

#[test]
fn a_guest_without_pci_or_uart_has_no_mcfg_pci_root_or_com1() {
    let cfg = GuestAcpi {
        pci: None,
        serial: None,
        isa_overrides: &[],
        cpus: &[7],
        ..config()
    };
    let t = build(&cfg, BASE, LEN).expect("builds");
    let sigs: Vec<[u8; 4]> = xsdt_entries(&t).iter().map(|(s, _)| *s).collect();
    assert_eq!(sigs, [*b"FACP", *b"APIC"]);
    let tables = parse(&t);
    assert!(tables.find_table::<Mcfg>().is_err());
    let info = tables.platform_info().expect("parses");
    let cpus = info.processor_info.expect("processors");
    assert_eq!(cpus.boot_processor.local_apic_id, 7);
    assert!(cpus.application_processors.is_empty());

    let ctx = aml_context(dsdt_of(&t));
    assert!(ctx.namespace.get_by_path(&name("\\_SB.PCI0._HID")).is_err());
    assert!(ctx.namespace.get_by_path(&name("\\_SB.COM1._HID")).is_err());
    assert!(ctx.namespace.get_by_path(&name("\\_SB.ECAM._HID")).is_err());
    assert!(ctx.namespace.get_by_path(&name("\\_S5_")).is_ok());
}
