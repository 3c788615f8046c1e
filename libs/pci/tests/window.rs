//! Bridge memory windows: register encoding and programming, on the root ports of the q35 model
//! with the windows OVMF leaves (measured: see `support::devices::ovmf_windows`).

mod support;

use conduit_pci::window::{
    self, WINDOW_GRANULE, decode_memory_window, decode_prefetchable_window, encode_memory_window,
    round_in, round_out,
};
use conduit_pci::{
    BridgeWindows, ConfigAccess, MmioWindow, PciError, WindowError, read_bridge_windows,
    write_memory_window,
};
use support::devices::{IGB_PF, RP0, RP1, ovmf_windows, q35};

fn w(base: u64, limit: u64) -> MmioWindow {
    MmioWindow { base, limit }
}

#[test]
fn measured_ovmf_windows_decode() {
    let cfg = ovmf_windows(q35());
    assert_eq!(
        read_bridge_windows(&cfg, RP0),
        Ok(BridgeWindows {
            memory: w(0xc120_0000, 0xc13f_ffff),
            prefetchable: w(0xe0_0000_0000, 0xe0_1fff_ffff),
            prefetchable_64bit: true,
        })
    );
    let rp1 = read_bridge_windows(&cfg, RP1).expect("bridge");
    assert_eq!(rp1.memory, w(0xc100_0000, 0xc11f_ffff));
    assert_eq!(rp1.prefetchable, w(0xe0_2000_0000, 0xe0_3fff_ffff));
    assert_eq!(rp1.memory.to_string(), "0xc1000000-0xc11fffff");
}

#[test]
fn decode_words() {
    assert_eq!(
        decode_memory_window(0xc120, 0xc130),
        w(0xc120_0000, 0xc13f_ffff)
    );
    // Low four bits of the words are read-only type bits, not address bits.
    assert_eq!(
        decode_memory_window(0xc12f, 0xc13f),
        w(0xc120_0000, 0xc13f_ffff)
    );
    let closed = decode_memory_window(0xfff0, 0x0000);
    assert!(closed.is_empty());
    assert_eq!(closed.to_string(), "closed");
    // 32-bit prefetchable window: the upper registers are ignored.
    assert_eq!(
        decode_prefetchable_window(0x8000, 0x8ff0, 0xe0, 0xe0),
        (w(0x8000_0000, 0x8fff_ffff), false)
    );
    assert_eq!(
        decode_prefetchable_window(0x1ff1 & 0xfff1, 0x1ff1, 0, 1),
        (w(0x1ff0_0000, 0x1_1fff_ffff), true)
    );
}

#[test]
fn encode_round_trips_and_refuses_bad_windows() {
    for win in [
        w(0xc120_0000, 0xc13f_ffff),
        w(0, WINDOW_GRANULE - 1),
        w(0xfff0_0000, 0xffff_ffff),
    ] {
        let (b, l) = encode_memory_window(win).expect("encodable");
        assert_eq!(decode_memory_window(b, l), win);
    }
    assert_eq!(encode_memory_window(w(1, 0)), Ok((0xfff0, 0)));
    let unaligned = w(0xc124_4000, 0xc13f_ffff);
    assert_eq!(
        encode_memory_window(unaligned),
        Err(WindowError::Unaligned { window: unaligned })
    );
    let short = w(0xc120_0000, 0xc13f_fffe);
    assert_eq!(
        encode_memory_window(short),
        Err(WindowError::Unaligned { window: short })
    );
    assert!(matches!(
        encode_memory_window(w(0x1_0000_0000, 0x1_000f_ffff)),
        Err(WindowError::Above4G { .. })
    ));
}

#[test]
fn rounding_to_blocks() {
    assert_eq!(
        round_out(w(0xc124_4000, 0xc128_3fff)),
        w(0xc120_0000, 0xc12f_ffff)
    );
    assert_eq!(round_out(w(1, 0)), w(1, 0));
    assert_eq!(
        round_in(w(0xc114_0000, 0xc13f_ffff)),
        Some(w(0xc120_0000, 0xc13f_ffff))
    );
    assert_eq!(round_in(w(0xc114_0000, 0xc11f_fffe)), None);
    assert_eq!(round_in(w(0, u64::MAX)), Some(w(0, u64::MAX)));
}

#[test]
fn write_memory_window_programs_one_dword_and_reads_back() {
    let mut cfg = ovmf_windows(q35());
    cfg.writes.clear();
    let grown = w(0xc120_0000, 0xc14f_ffff);
    assert_eq!(write_memory_window(&mut cfg, RP0, grown), Ok(()));
    assert_eq!(cfg.writes, vec![(RP0, 0x20, 0xc140_c120)]);
    assert_eq!(
        read_bridge_windows(&cfg, RP0).expect("bridge").memory,
        grown
    );
    // The prefetchable window is untouched.
    assert_eq!(cfg.read32(RP0, window::reg::PREF_BASE), 0x1ff1_0001);
}

#[test]
fn write_memory_window_errors() {
    let mut cfg = ovmf_windows(q35());
    assert_eq!(
        write_memory_window(&mut cfg, IGB_PF, w(0xc120_0000, 0xc13f_ffff)),
        Err(WindowError::Pci(PciError::NotABridge {
            bdf: IGB_PF,
            header_type: 0
        }))
    );
    assert!(matches!(
        read_bridge_windows(&cfg, IGB_PF),
        Err(PciError::NotABridge { .. })
    ));
    // A bridge whose memory window registers are read-only: the write does not take.
    cfg.func(RP1).wmask32(0x20, 0);
    let wanted = w(0xc100_0000, 0xc12f_ffff);
    assert_eq!(
        write_memory_window(&mut cfg, RP1, wanted),
        Err(WindowError::NotTaken {
            bdf: RP1,
            wrote: wanted,
            read: w(0xc100_0000, 0xc11f_ffff)
        })
    );
    let absent = conduit_pci::Bdf::new(0, 9, 0).expect("valid");
    assert_eq!(
        write_memory_window(&mut cfg, absent, wanted),
        Err(WindowError::Pci(PciError::NotPresent { bdf: absent }))
    );
}
