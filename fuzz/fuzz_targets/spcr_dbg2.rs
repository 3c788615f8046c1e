//! Fuzz target: the SPCR and DBG2 tables the kernel reads to find its console
//! (`conduit_uart::spcr`, `conduit_uart::dbg2`).
//!
//! Invariants beyond "no panic":
//! - a parsed SPCR's registers are a port below 0x10000 or MMIO with stride 1 or 4;
//! - `parse(encode(x)) == x` for every table `parse` accepts, up to what a revision 2 table
//!   can carry (the revision, and a precise baud rate that has no code);
//! - a DBG2 device found is one of the table's `count` devices.
#![no_main]

use conduit_uart::dbg2;
use conduit_uart::spcr::{self, Registers};
use libfuzzer_sys::fuzz_target;

fn check_registers(r: Registers) {
    if let Registers::Mmio { base, stride } = r {
        assert_ne!(base, 0, "address 0 is refused");
        assert!(stride == 1 || stride == 4, "stride {stride}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = spcr::parse(data) {
        assert!(table.revision >= 2);
        assert!(table.registers.is_some() || table.pci.is_some());
        if let Some(r) = table.registers {
            check_registers(r);
        }
        let encoded = spcr::encode(&table);
        let again = spcr::parse(&encoded).expect("an encoded table parses");
        let coded = matches!(table.baud, None | Some(9_600 | 19_200 | 57_600 | 115_200));
        let expected = spcr::Spcr {
            revision: spcr::REVISION,
            baud: if coded { table.baud } else { None },
            ..table
        };
        assert_eq!(again, expected);
    }
    if let Ok(uart) = dbg2::parse(data) {
        check_registers(uart.registers);
        let count = u32::from_le_bytes([data[40], data[41], data[42], data[43]]);
        assert!(uart.index < count, "device {} of {count}", uart.index);
    }
});
