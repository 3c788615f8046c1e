//! MSI (both formats), remappable I/O APIC entries and IRTA_REG against hand-computed values.

use conduit_irq::{
    ApicMode, CompatMsi, DecodedMsi, DecodedRte, DeliveryMode, Destination, DestinationMode,
    EoiMode, FormatError, IrtSize, Irta, IrteBuilder, MsiMessage, Polarity, RemappableMsi,
    RemappableRte, TriggerMode, rte_is_remappable,
};

fn msi(address: u32, data: u32) -> MsiMessage {
    MsiMessage { address, data }
}

#[test]
fn remappable_msi_single() {
    // Handle 0x1234: bits 19:5 = 0x1234 << 5 = 0x24680; format bit 4.
    let m = RemappableMsi::single(0x1234).encode();
    assert_eq!(m, msi(0xfee2_4690, 0));
    assert!(m.is_remappable());
    assert_eq!(
        m.decode(),
        Ok(DecodedMsi::Remappable(RemappableMsi::single(0x1234)))
    );
    assert_eq!(RemappableMsi::single(0x1234).interrupt_index(), 0x1234);
}

#[test]
fn remappable_msi_handle_bit_15_goes_to_address_bit_2() {
    let m = RemappableMsi::single(0x8001).encode();
    assert_eq!(m, msi(0xfee0_0034, 0));
    assert_eq!(
        m.decode(),
        Ok(DecodedMsi::Remappable(RemappableMsi::single(0x8001)))
    );
    let m = RemappableMsi::single(0xffff).encode();
    assert_eq!(m.address, 0xfeef_fff4);
    assert_eq!(
        m.decode(),
        Ok(DecodedMsi::Remappable(RemappableMsi::single(0xffff)))
    );
}

#[test]
fn remappable_msi_block_with_subhandle() {
    // Base 0x40: 0x40 << 5 = 0x800; format bit 4 and SHV bit 3.
    let block = RemappableMsi::block(0x40);
    let m = block.encode();
    assert_eq!(m, msi(0xfee0_0818, 0));
    // Message 3 of the block: the function writes 3 into the low data bits.
    let sent = msi(m.address, m.data | 3);
    let Ok(DecodedMsi::Remappable(r)) = sent.decode() else {
        panic!("{:?}", sent.decode())
    };
    assert_eq!(
        r,
        RemappableMsi {
            handle: 0x40,
            subhandle: Some(3)
        }
    );
    assert_eq!(r.interrupt_index(), 0x43);
    // handle + subhandle can exceed 16 bits.
    assert_eq!(
        RemappableMsi {
            handle: 0xffff,
            subhandle: Some(0xffff)
        }
        .interrupt_index(),
        0x1_fffe
    );
}

#[test]
fn remappable_msi_decode_errors_and_dont_care_bits() {
    assert_eq!(
        msi(0xfee0_0010, 1 << 16).decode(),
        Err(FormatError::ReservedBits {
            field: "remappable MSI data",
            bits: 1 << 16
        })
    );
    // Address bits 1:0 are don't care; without SHV the data's low half is ignored.
    assert_eq!(
        msi(0xfee0_0013, 0xbeef).decode(),
        Ok(DecodedMsi::Remappable(RemappableMsi::single(0)))
    );
    assert_eq!(
        msi(0xfed0_0010, 0).decode(),
        Err(FormatError::NotInterruptAddress(0xfed0_0010))
    );
    assert_eq!(
        msi(0x0ee0_0010, 0).decode(),
        Err(FormatError::NotInterruptAddress(0x0ee0_0010))
    );
}

#[test]
fn compatibility_msi() {
    let c = CompatMsi {
        destination: 0x12,
        destination_mode: DestinationMode::Physical,
        redirection_hint: false,
        vector: 0x41,
        delivery_mode: DeliveryMode::Fixed,
        trigger_mode: TriggerMode::Edge,
        level_assert: false,
    };
    assert_eq!(c.encode(), msi(0xfee1_2000, 0x0000_0041));
    assert_eq!(c.encode().decode(), Ok(DecodedMsi::Compatibility(c)));
    assert!(!c.encode().is_remappable());

    let c = CompatMsi {
        destination: 0xff,
        destination_mode: DestinationMode::Logical,
        redirection_hint: true,
        vector: 0x99,
        delivery_mode: DeliveryMode::LowestPriority,
        trigger_mode: TriggerMode::Level,
        level_assert: true,
    };
    // RH bit 3, DM bit 2; data: DLM 001 << 8, level bit 14, trigger bit 15.
    assert_eq!(c.encode(), msi(0xfeef_f00c, 0x0000_c199));
    assert_eq!(c.encode().decode(), Ok(DecodedMsi::Compatibility(c)));

    let nmi = CompatMsi {
        vector: 0,
        delivery_mode: DeliveryMode::Nmi,
        ..c
    };
    assert_eq!(nmi.encode().data, 0xc400);
}

#[test]
fn compatibility_msi_decode_errors() {
    for bit in 5..12 {
        assert_eq!(
            msi(0xfee0_0000 | 1 << bit, 0x30).decode(),
            Err(FormatError::ReservedBits {
                field: "compatibility MSI address",
                bits: 1 << bit
            }),
            "address bit {bit}"
        );
    }
    for bit in [11, 12, 13, 16, 31] {
        assert_eq!(
            msi(0xfee0_0000, 0x30 | 1 << bit).decode(),
            Err(FormatError::ReservedBits {
                field: "compatibility MSI data",
                bits: 1 << bit
            }),
            "data bit {bit}"
        );
    }
    assert_eq!(
        msi(0xfee0_0000, 0x330).decode(),
        Err(FormatError::ReservedDeliveryMode(3))
    );
    assert_eq!(
        msi(0xfee0_0000, 0x630).decode(),
        Err(FormatError::ReservedDeliveryMode(6))
    );
}

#[test]
fn the_two_formats_side_by_side() {
    // Same destination/vector intent: compat carries them; remappable carries only an index.
    let compat = CompatMsi {
        destination: 1,
        destination_mode: DestinationMode::Physical,
        redirection_hint: false,
        vector: 0x50,
        delivery_mode: DeliveryMode::Fixed,
        trigger_mode: TriggerMode::Edge,
        level_assert: false,
    }
    .encode();
    let remap = RemappableMsi::single(7).encode();
    assert_eq!(compat.address & 0x10, 0);
    assert_eq!(remap.address & 0x10, 0x10);
    assert_eq!(compat.address & 0xfff0_0000, remap.address & 0xfff0_0000);
}

#[test]
fn remappable_rte_encodings() {
    let rte = RemappableRte {
        index: 0x1234,
        vector: 0x41,
        trigger_mode: TriggerMode::Level,
        polarity: Polarity::ActiveLow,
        masked: true,
    };
    // 0x1234 << 49 | format bit 48 | mask 16 | trigger 15 | polarity 13 | vector.
    assert_eq!(rte.encode(), 0x2469_0000_0001_a041);
    assert_eq!(
        RemappableRte::decode(rte.encode()),
        Ok(DecodedRte {
            rte,
            remote_irr: false,
            delivery_pending: false
        })
    );
    // Index bit 15 goes to bit 11.
    let rte = RemappableRte {
        index: 0x8000,
        vector: 0x30,
        trigger_mode: TriggerMode::Edge,
        polarity: Polarity::ActiveHigh,
        masked: false,
    };
    assert_eq!(rte.encode(), 0x0001_0000_0000_0830);
    assert_eq!(RemappableRte::decode(rte.encode()).map(|d| d.rte), Ok(rte));
    let rte = RemappableRte {
        index: 0xffff,
        ..rte
    };
    assert_eq!(rte.encode(), 0xffff_0000_0000_0830);
    assert_eq!(RemappableRte::decode(rte.encode()).map(|d| d.rte), Ok(rte));
    assert!(rte_is_remappable(rte.encode()));
}

#[test]
fn remappable_rte_status_bits_are_read_not_written() {
    let raw = 0x0001_0000_0000_0830 | 1 << 14 | 1 << 12;
    let d = RemappableRte::decode(raw).unwrap();
    assert!(d.remote_irr && d.delivery_pending);
    assert_eq!(d.rte.encode(), 0x0001_0000_0000_0830);
}

#[test]
fn remappable_rte_decode_errors() {
    assert_eq!(
        RemappableRte::decode(0x0000_0000_0000_0030),
        Err(FormatError::NotRemappable)
    );
    assert!(!rte_is_remappable(0x30));
    for bit in [8, 9, 10, 17, 32, 47] {
        assert_eq!(
            RemappableRte::decode(1 << 48 | 1 << bit),
            Err(FormatError::ReservedBits {
                field: "remappable RTE",
                bits: 1 << bit
            }),
            "bit {bit}"
        );
    }
}

#[test]
fn rte_must_agree_with_its_irte() {
    let level = IrteBuilder::new(Destination::XApic(0), 0x41)
        .trigger_mode(TriggerMode::Level)
        .build()
        .unwrap();
    let good = RemappableRte::for_irte(9, &level, Polarity::ActiveLow, false);
    assert_eq!((good.vector, good.trigger_mode), (0x41, TriggerMode::Level));
    assert_eq!(good.check_against(&level, EoiMode::Broadcast), Ok(()));
    let pin_vector = RemappableRte { vector: 5, ..good };
    assert_eq!(
        pin_vector.check_against(&level, EoiMode::Broadcast),
        Err(FormatError::VectorMismatch { rte: 5, irte: 0x41 })
    );
    assert_eq!(pin_vector.check_against(&level, EoiMode::Directed), Ok(()));
    let edge_rte = RemappableRte {
        trigger_mode: TriggerMode::Edge,
        ..good
    };
    assert_eq!(
        edge_rte.check_against(&level, EoiMode::Directed),
        Err(FormatError::TriggerMismatch {
            rte: TriggerMode::Edge,
            irte: TriggerMode::Level
        })
    );
    // Edge-triggered interrupts see no EOI at the I/O APIC: the vector is free.
    let edge = IrteBuilder::new(Destination::XApic(0), 0x41)
        .build()
        .unwrap();
    let edge_rte = RemappableRte {
        vector: 0,
        ..edge_rte
    };
    assert_eq!(edge_rte.check_against(&edge, EoiMode::Broadcast), Ok(()));
}

#[test]
fn irt_sizes() {
    assert_eq!(IrtSize::from_field(0).unwrap().entries(), 2);
    assert_eq!(IrtSize::from_field(7).unwrap().entries(), 256);
    assert_eq!(IrtSize::MAX.entries(), 65536);
    assert_eq!(IrtSize::MAX.bytes(), 1 << 20);
    assert_eq!(IrtSize::from_field(16), None);
    assert_eq!(IrtSize::for_entries(0).map(IrtSize::field), Some(0));
    assert_eq!(IrtSize::for_entries(2).map(IrtSize::field), Some(0));
    assert_eq!(IrtSize::for_entries(3).map(IrtSize::field), Some(1));
    assert_eq!(IrtSize::for_entries(256).map(IrtSize::field), Some(7));
    assert_eq!(IrtSize::for_entries(257).map(IrtSize::field), Some(8));
    assert_eq!(IrtSize::for_entries(65536), Some(IrtSize::MAX));
    assert_eq!(IrtSize::for_entries(65537), None);
    // 256 entries are exactly 4 KiB; 512 need 8 KiB alignment.
    assert_eq!(IrtSize::from_field(7).unwrap().alignment(), 4096);
    assert_eq!(IrtSize::from_field(8).unwrap().alignment(), 8192);
    assert_eq!(IrtSize::from_field(0).unwrap().alignment(), 4096);
}

#[test]
fn irta_register() {
    let irta = Irta {
        table: 0x1_2345_6000,
        mode: ApicMode::X2Apic,
        size: IrtSize::from_field(7).unwrap(),
    };
    assert_eq!(irta.encode(), Ok(0x1_2345_6807));
    assert_eq!(Irta::decode(0x1_2345_6807), Ok(irta));
    let xapic = Irta {
        mode: ApicMode::XApic,
        ..irta
    };
    assert_eq!(xapic.encode(), Ok(0x1_2345_6007));
    assert_eq!(
        Irta {
            table: 0x1000_0800,
            ..irta
        }
        .encode(),
        Err(FormatError::MisalignedTable {
            addr: 0x1000_0800,
            align: 4096
        })
    );
    assert_eq!(
        Irta::decode(0x1000 | 1 << 4),
        Err(FormatError::ReservedBits {
            field: "IRTA_REG",
            bits: 0x10
        })
    );
    assert_eq!(
        Irta::decode(0x1000 | 1 << 10),
        Err(FormatError::ReservedBits {
            field: "IRTA_REG",
            bits: 0x400
        })
    );
    assert_eq!(Irta::decode(0xf).map(|i| i.size), Ok(IrtSize::MAX));
}

#[test]
fn destination_helpers() {
    assert_eq!(Destination::XApic(7).mode(), ApicMode::XApic);
    assert_eq!(Destination::X2Apic(7).mode(), ApicMode::X2Apic);
    assert_eq!(Destination::XApic(0xff).id(), 0xff);
    assert_eq!(Destination::X2Apic(0xffff_ffff).id(), 0xffff_ffff);
}
