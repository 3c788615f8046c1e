//! Configurations that describe no possible machine, blobs that do not fit, and the decoding
//! of the power registers.

use super::{BASE, ECAM, LEN, PRT, TIMER_OVERRIDE, config, pci};
use crate::power::SleepControl;
use crate::{
    AcpiError, GuestAcpi, IoApic, IsaOverride, PciRoot, Pin, PrtEntry, RESET, SLEEP, Serial, build,
};

#[test]
fn the_blob_fits_exactly_its_length_and_no_less() {
    let t = build(&config(), BASE, LEN).expect("builds");
    let need = t.bytes.len();
    let exact = build(&config(), BASE, need).expect("fits exactly");
    assert_eq!(exact, t);
    let short = build(&config(), BASE, need - 1).expect_err("does not fit");
    assert_eq!(
        short,
        AcpiError::TooLarge {
            need,
            len: need - 1
        }
    );
    assert_eq!(
        short.to_string(),
        format!("the tables need {need} bytes, {} available", need - 1)
    );
    // The same configuration elsewhere: the same sizes, other addresses.
    let high = build(&config(), 0x7fff_0000, LEN).expect("builds");
    assert_eq!(high.bytes.len(), need);
    assert_eq!(high.rsdp_gpa, 0x7fff_0000);
    assert_ne!(high.bytes, t.bytes);
}

#[test]
fn impossible_machines_are_refused() {
    let err = |cfg: GuestAcpi<'_>| build(&cfg, BASE, LEN).expect_err("refused");
    assert_eq!(
        err(GuestAcpi {
            cpus: &[],
            ..config()
        }),
        AcpiError::NoCpus
    );
    assert_eq!(
        err(GuestAcpi {
            cpus: &[0, 255],
            ..config()
        }),
        AcpiError::ApicIdTooLarge(255)
    );
    assert_eq!(
        err(GuestAcpi {
            cpus: &[1, 2, 1],
            ..config()
        }),
        AcpiError::DuplicateApicId(1)
    );
    let pins = |pins| GuestAcpi {
        ioapic: IoApic {
            pins,
            ..IoApic::DEFAULT
        },
        ..config()
    };
    assert_eq!(err(pins(0)), AcpiError::IoApicPins(0));
    assert_eq!(err(pins(241)), AcpiError::IoApicPins(241));
    // With 16 pins, the _PRT's GSI 16 no longer exists.
    assert_eq!(err(pins(16)), AcpiError::GsiOutOfRange(16));
    let irq16 = [IsaOverride {
        isa_irq: 16,
        ..TIMER_OVERRIDE
    }];
    assert_eq!(
        err(GuestAcpi {
            isa_overrides: &irq16,
            ..config()
        }),
        AcpiError::IsaIrq(16)
    );
    let twice = [TIMER_OVERRIDE, TIMER_OVERRIDE];
    assert_eq!(
        err(GuestAcpi {
            isa_overrides: &twice,
            ..config()
        }),
        AcpiError::IsaIrq(0)
    );
    let serial = Serial {
        port: 0x3f8,
        gsi: 24,
    };
    assert_eq!(
        err(GuestAcpi {
            serial: Some(serial),
            ..config()
        }),
        AcpiError::GsiOutOfRange(24)
    );
    assert_eq!(
        err(GuestAcpi {
            sleep: crate::SleepRegisters {
                s5_slp_typ: 8,
                ..SLEEP
            },
            ..config()
        }),
        AcpiError::SleepType(8)
    );
}

#[test]
fn impossible_pci_roots_are_refused() {
    let err = |pci: PciRoot<'_>| {
        build(
            &GuestAcpi {
                pci: Some(pci),
                ..config()
            },
            BASE,
            LEN,
        )
    };
    let device32 = [PrtEntry {
        device: 32,
        pin: Pin::IntA,
        gsi: 16,
    }];
    assert_eq!(
        err(PciRoot {
            prt: &device32,
            ..pci()
        }),
        Err(AcpiError::PrtEntry {
            device: 32,
            pin: Pin::IntA
        })
    );
    let twice = [PRT[0], PrtEntry { gsi: 18, ..PRT[0] }];
    assert_eq!(
        err(PciRoot {
            prt: &twice,
            ..pci()
        }),
        Err(AcpiError::PrtEntry {
            device: 1,
            pin: Pin::IntA
        })
    );
    assert_eq!(
        err(PciRoot {
            ecam_base: ECAM + 0x1000,
            ..pci()
        }),
        Err(AcpiError::EcamBase(ECAM + 0x1000))
    );
    assert_eq!(
        err(PciRoot {
            ecam_base: u64::MAX - 0xf_ffff,
            bus_end: 1,
            ..pci()
        }),
        Err(AcpiError::EcamBase(u64::MAX - 0xf_ffff))
    );
    // Two buses from 0xFFF0_0000 end past 4 GiB; one ends exactly there.
    let top = |bus_end| PciRoot {
        ecam_base: 0xfff0_0000,
        bus_end,
        ..pci()
    };
    assert_eq!(err(top(1)), Err(AcpiError::EcamBase(0xfff0_0000)));
    assert!(err(top(0)).is_ok());
    for mmio32 in [
        0xc000_0000..0xc000_0000,
        0xf000_0000..0x1_0000_1000,
        0xc000_0800..0xd000_0000,
    ] {
        assert_eq!(err(PciRoot { mmio32, ..pci() }), Err(AcpiError::MmioWindow));
    }
    assert_eq!(err(PciRoot { io: &[], ..pci() }), Err(AcpiError::IoWindow));
    // A window whose end lies below its start, next to a good one.
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = [0x1000..=0x1fff, 0x3000..=0x2fff];
    assert_eq!(
        err(PciRoot {
            io: &backwards,
            ..pci()
        }),
        Err(AcpiError::IoWindow)
    );
    // A window reaching 4 GiB exactly is fine.
    let top = PciRoot {
        mmio32: 0xf000_0000..0x1_0000_0000,
        ..pci()
    };
    assert!(err(top).is_ok());
}

#[test]
fn colliding_ports_and_bad_bases_are_refused() {
    let err = |cfg: GuestAcpi<'_>| build(&cfg, BASE, LEN);
    let sleep = |control_port, status_port| GuestAcpi {
        sleep: crate::SleepRegisters {
            control_port,
            status_port,
            s5_slp_typ: 5,
        },
        ..config()
    };
    assert_eq!(
        err(sleep(0x600, 0x600)),
        Err(AcpiError::PortCollision(0x600))
    );
    assert_eq!(
        err(sleep(0x3fc, 0x601)),
        Err(AcpiError::PortCollision(0x3fc))
    );
    assert_eq!(
        err(sleep(0x600, 0xcfc)),
        Err(AcpiError::PortCollision(0xcfc))
    );
    assert_eq!(
        err(sleep(0xcf9, 0x601)),
        Err(AcpiError::PortCollision(0xcf9))
    );
    let uart = |port| GuestAcpi {
        serial: Some(Serial { port, gsi: 4 }),
        ..config()
    };
    assert_eq!(err(uart(0xcfc)), Err(AcpiError::PortCollision(0xcfc)));
    assert_eq!(err(uart(0xfffa)), Err(AcpiError::PortCollision(0xfffa)));
    assert_eq!(err(uart(0x5fc)), Err(AcpiError::PortCollision(0x600)));
    assert!(err(uart(0x2f8)).is_ok());

    assert_eq!(
        build(&config(), BASE + 8, LEN),
        Err(AcpiError::Base(BASE + 8))
    );
    assert_eq!(
        build(&config(), 0xffff_f000, 0x2000),
        Err(AcpiError::Base(0xffff_f000))
    );
}

#[test]
fn sleep_control_and_reset_writes_decode() {
    // SLP_EN | SLP_TYP 5 << 2: what Linux writes to power off with these tables.
    assert_eq!(SLEEP.control_write(0x34), SleepControl::PowerOff);
    assert_eq!(SLEEP.control_write(0x14), SleepControl::Ignored);
    assert_eq!(
        SLEEP.control_write(0x20 | (3 << 2)),
        SleepControl::Unsupported(3)
    );
    assert_eq!(SLEEP.control_write(0x20), SleepControl::Unsupported(0));
    // Bits outside SLP_TYP and SLP_EN do not change the meaning.
    assert_eq!(SLEEP.control_write(0x34 | 0xc3), SleepControl::PowerOff);
    assert!(RESET.is_reset(0xcf9, 0x06));
    assert!(!RESET.is_reset(0xcf9, 0x02));
    assert!(!RESET.is_reset(0xcf8, 0x06));
}
