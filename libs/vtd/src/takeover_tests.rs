//! The takeover sequence against a fake unit that models what the spec says the registers do:
//! GSTS follows GCMD (one-shots latch or clear), FSTS's RW1C bits, PPF from the records' F bits,
//! F written 1 frees a record, PMEN.PRS follows EPM, IQH reset when QIE clears.

use super::*;

const NFR: u16 = 8;
/// CAP: FRO = 0x22 (records at 0x220), NFR = 7 (8 records), PLMR and PHMR.
const CAP: u64 = (0x22 << 24) | ((NFR as u64 - 1) << 40) | (1 << 5) | (1 << 6);

struct Fake {
    cap: Cap,
    gsts: u32,
    fsts: u32,
    records: [u64; NFR as usize],
    pmen: u32,
    plm: (u32, u32),
    phm: (u64, u64),
    iqh: u64,
    iqt: u64,
    iqa: u64,
    rtaddr: u64,
    /// GCMD values in write order.
    gcmd: Vec<u32>,
    /// Status bits that never follow their command (a broken unit).
    stuck: u32,
    /// PRS never clears.
    pmr_stuck: bool,
    /// Values written to FEDATA/FEADDR/FEUADDR.
    fe: (u32, u32, u32),
    /// Every write, in order.
    writes: Vec<Write>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    R32(Reg32),
    R64(Reg64),
}

impl Fake {
    /// What firmware leaves on a real machine: translation, queued invalidation and interrupt
    /// remapping on, a PMR covering low memory, three pending faults, every error bit of FSTS.
    fn firmware_left() -> Self {
        let mut records = [0; NFR as usize];
        records[0] = VALID | (0x06 << 32) | 0x00a0;
        records[3] = VALID | (0x05 << 32) | 0x0010;
        records[7] = VALID | (0x22 << 32) | 0x00f8;
        Self {
            cap: Cap(CAP),
            gsts: global::TE | global::QIE | global::IRE | (1 << 30) | (1 << 24),
            fsts: fsts::PFO | fsts::IQE | fsts::ICE | fsts::ITE | fsts::PPF,
            records,
            pmen: pmen::EPM | pmen::PRS,
            plm: (0x0, 0x7fe0_0000),
            phm: (0x1_0000_0000, 0x4_7fff_ffff),
            iqh: 0x40,
            iqt: 0x40,
            iqa: 0x7000_0000,
            rtaddr: 0x7100_0000,
            gcmd: Vec::new(),
            stuck: 0,
            pmr_stuck: false,
            fe: (0, 0, 0),
            writes: Vec::new(),
        }
    }

    fn pending(&self) -> bool {
        self.records.iter().any(|r| r & VALID != 0)
    }
}

impl Registers for Fake {
    fn read32(&mut self, reg: Reg32) -> u32 {
        match reg {
            Reg32::Gsts => self.gsts,
            Reg32::Fsts => (self.fsts & !fsts::PPF) | if self.pending() { fsts::PPF } else { 0 },
            Reg32::Pmen => self.pmen,
            Reg32::Plmbase => self.plm.0,
            Reg32::Plmlimit => self.plm.1,
            Reg32::Gcmd => 0,
            Reg32::Fectl | Reg32::Fedata | Reg32::Feaddr | Reg32::Feuaddr => 0,
        }
    }

    fn write32(&mut self, reg: Reg32, value: u32) {
        self.writes.push(Write::R32(reg));
        match reg {
            Reg32::Gcmd => {
                self.gcmd.push(value);
                let persistent = value & global::PERSISTENT;
                let mut next = (self.gsts & !global::PERSISTENT) | persistent;
                if value & global::SRTP != 0 {
                    next |= global::SRTP;
                }
                if value & global::SIRTP != 0 {
                    next |= global::SIRTP;
                }
                if persistent & global::QIE == 0 {
                    self.iqh = 0;
                }
                let stuck = self.stuck;
                self.gsts = (next & !stuck) | (self.gsts & stuck);
            }
            Reg32::Fsts => self.fsts &= !(value & fsts::ERRORS),
            Reg32::Pmen => {
                self.pmen = value & pmen::EPM;
                if value & pmen::EPM != 0 || self.pmr_stuck {
                    self.pmen |= pmen::PRS;
                }
            }
            Reg32::Fedata => self.fe.0 = value,
            Reg32::Feaddr => self.fe.1 = value,
            Reg32::Feuaddr => self.fe.2 = value,
            Reg32::Gsts | Reg32::Fectl | Reg32::Plmbase | Reg32::Plmlimit => {}
        }
    }

    fn read64(&mut self, reg: Reg64) -> u64 {
        match reg {
            Reg64::Cap => self.cap.0,
            Reg64::Rtaddr => self.rtaddr,
            Reg64::Phmbase => self.phm.0,
            Reg64::Phmlimit => self.phm.1,
            Reg64::Iqh => self.iqh,
            Reg64::Iqt => self.iqt,
            Reg64::Iqa => self.iqa,
            Reg64::Irta => 0,
            Reg64::FaultHigh(n) => self.records[usize::from(n)],
        }
    }

    fn write64(&mut self, reg: Reg64, value: u64) {
        self.writes.push(Write::R64(reg));
        match reg {
            Reg64::Rtaddr => self.rtaddr = value,
            Reg64::Iqt => self.iqt = value,
            Reg64::Iqa => self.iqa = value,
            Reg64::FaultHigh(n) => {
                if value & VALID != 0 {
                    self.records[usize::from(n)] &= !VALID;
                }
            }
            Reg64::Cap | Reg64::Phmbase | Reg64::Phmlimit | Reg64::Iqh | Reg64::Irta => {}
        }
    }
}

/// A wait that gives up after 100 polls.
struct Bounded(u32);

impl Poll for Bounded {
    fn until(&mut self, done: &mut dyn FnMut() -> bool) -> bool {
        for _ in 0..100 {
            self.0 += 1;
            if done() {
                return true;
            }
        }
        false
    }
}

/// Every GCMD write changed exactly one command bit relative to the status before it.
fn assert_one_bit_at_a_time(before: u32, writes: &[u32], after_each: &[u32]) {
    let mut status = before;
    for (w, s) in writes.iter().zip(after_each) {
        let one_shots = w & (global::SRTP | global::SIRTP | global::WBF);
        let changed = (w ^ status) & global::PERSISTENT;
        assert_eq!(
            changed.count_ones() + one_shots.count_ones(),
            1,
            "GCMD {w:#010x} after GSTS {status:#010x} changes more or less than one bit"
        );
        status = *s;
    }
}

#[test]
fn offsets_follow_the_register_map() {
    assert_eq!(Reg32::Gcmd.offset(), 0x18);
    assert_eq!(Reg32::Fsts.offset(), 0x34);
    assert_eq!(Reg32::Feuaddr.offset(), 0x44);
    assert_eq!(Reg32::Pmen.offset(), 0x64);
    assert_eq!(Reg64::Iqa.offset(Cap(CAP)), 0x90);
    assert_eq!(Reg64::FaultHigh(0).offset(Cap(CAP)), 0x228);
    assert_eq!(Reg64::FaultHigh(7).offset(Cap(CAP)), 0x228 + 7 * 16);
}

#[test]
fn full_takeover_from_firmware_left_state() {
    let mut unit = Fake::firmware_left();
    let mut poll = Bounded(0);
    let start = unit.gsts;

    let cleared = clear_faults(&mut unit, Cap(CAP));
    assert_eq!(cleared.records, 3);
    assert_ne!(cleared.fsts & fsts::IQE, 0, "firmware's FSTS is reported");
    assert!(!unit.pending());
    assert_eq!(unit.read32(Reg32::Fsts) & (fsts::ERRORS | fsts::PPF), 0);

    let mut statuses = Vec::new();
    let off = disable_firmware_state(&mut unit, &mut poll).expect("takeover");
    assert_eq!(
        off,
        Disabled {
            translation: true,
            interrupt_remapping: true,
            queued_invalidation: true,
            queue_undrained: false,
        }
    );
    assert_eq!(unit.gsts & global::PERSISTENT, 0);
    // Order: TE, then IRE, then QIE.
    let order: Vec<u32> = unit
        .gcmd
        .iter()
        .scan(start, |s, w| {
            let changed = (*s ^ w) & global::PERSISTENT;
            *s = *w;
            Some(changed)
        })
        .collect();
    assert_eq!(order, [global::TE, global::IRE, global::QIE]);
    statuses.extend([
        start & !global::TE,
        start & !global::TE & !global::IRE,
        start & !(global::TE | global::IRE | global::QIE),
    ]);
    assert_eq!(
        unit.pmen & pmen::EPM,
        pmen::EPM,
        "PMR stays until translation is on"
    );

    let writes_before = unit.gcmd.len();
    set_root_table(&mut unit, &mut poll, 0x1234_5000).expect("SRTP");
    assert_eq!(unit.rtaddr, 0x1234_5000);
    let gsts = enable_queue(&mut unit, &mut poll, 0x5678_9000).expect("QIE");
    assert_ne!(gsts & global::QIE, 0);
    assert_eq!((unit.iqt, unit.iqa), (0, 0x5678_9000));
    command(&mut unit, &mut poll, Command::SetInterruptTable).expect("SIRTP");
    command(&mut unit, &mut poll, Command::InterruptRemapping(true)).expect("IRE");
    let gsts = command(&mut unit, &mut poll, Command::Translation(true)).expect("TE");
    assert_eq!(
        gsts & global::PERSISTENT,
        global::TE | global::QIE | global::IRE
    );
    for w in &unit.gcmd[writes_before..] {
        statuses.push(*w & global::PERSISTENT);
    }
    assert_one_bit_at_a_time(start, &unit.gcmd, &statuses);

    let pmr = disable_pmr(&mut unit, &mut poll, Cap(CAP)).expect("PMR off");
    assert_eq!(
        pmr,
        Pmr::Disabled {
            low: (0, 0x7fe0_0000),
            high: (0x1_0000_0000, 0x4_7fff_ffff)
        }
    );
    assert_eq!(unit.pmen & (pmen::EPM | pmen::PRS), 0);
    assert_eq!(unit.gsts & global::TE, global::TE, "translation stays on");
    assert_eq!(
        unit.fsts & fsts::IQE,
        0,
        "no stale IQE left for the first queued invalidation"
    );
}

#[test]
fn take_over_clears_faults_before_any_global_command() {
    let mut unit = Fake::firmware_left();
    let mut poll = Bounded(0);
    let done = take_over(&mut unit, &mut poll, Cap(CAP)).expect("takeover");
    assert_eq!(done.cleared.records, 3);
    assert!(done.disabled.translation && done.disabled.queued_invalidation);
    let first_gcmd = unit
        .writes
        .iter()
        .position(|w| *w == Write::R32(Reg32::Gcmd))
        .expect("commands written");
    let fsts_clear = unit
        .writes
        .iter()
        .position(|w| *w == Write::R32(Reg32::Fsts))
        .expect("FSTS cleared");
    let last_record = unit
        .writes
        .iter()
        .rposition(|w| matches!(w, Write::R64(Reg64::FaultHigh(_))))
        .expect("records freed");
    assert!(last_record < fsts_clear && fsts_clear < first_gcmd);
    assert_eq!(
        unit.writes[..3],
        [
            Write::R64(Reg64::FaultHigh(0)),
            Write::R64(Reg64::FaultHigh(3)),
            Write::R64(Reg64::FaultHigh(7))
        ],
        "only the valid records are written"
    );
}

#[test]
fn a_stuck_status_bit_ends_in_the_named_timeout() {
    let mut unit = Fake::firmware_left();
    unit.stuck = global::TE;
    let mut poll = Bounded(0);
    let err = disable_firmware_state(&mut unit, &mut poll).expect_err("TE never clears");
    assert_eq!(
        err,
        TakeoverError::CommandTimeout {
            command: Command::Translation(false),
            gsts: unit.gsts
        }
    );
    assert_eq!(poll.0, 100, "the wait is bounded");
    assert!(err.to_string().contains("translation disable (GSTS.TES)"));
}

#[test]
fn an_undrained_queue_is_reported_and_still_disabled() {
    let mut unit = Fake::firmware_left();
    unit.iqt = 0x80;
    let mut poll = Bounded(0);
    let off = disable_firmware_state(&mut unit, &mut poll).expect("takeover");
    assert!(off.queue_undrained && off.queued_invalidation);
    assert_eq!(unit.gsts & global::QIE, 0);
}

#[test]
fn clean_unit_needs_no_command() {
    let mut unit = Fake::firmware_left();
    unit.gsts = 0;
    unit.records = [0; NFR as usize];
    unit.fsts = 0;
    let mut poll = Bounded(0);
    assert_eq!(clear_faults(&mut unit, Cap(CAP)).records, 0);
    assert_eq!(
        disable_firmware_state(&mut unit, &mut poll),
        Ok(Disabled::default())
    );
    assert!(unit.gcmd.is_empty());
}

#[test]
fn pmr_absent_off_and_stuck() {
    let mut unit = Fake::firmware_left();
    let mut poll = Bounded(0);
    assert_eq!(disable_pmr(&mut unit, &mut poll, Cap(0)), Ok(Pmr::Absent));
    assert_eq!(
        unit.pmen & pmen::EPM,
        pmen::EPM,
        "no PMR capability: PMEN untouched"
    );
    unit.pmen = 0;
    assert_eq!(disable_pmr(&mut unit, &mut poll, Cap(CAP)), Ok(Pmr::Off));
    unit.pmen = pmen::EPM | pmen::PRS;
    unit.pmr_stuck = true;
    assert_eq!(
        disable_pmr(&mut unit, &mut poll, Cap(CAP)),
        Err(TakeoverError::PmrTimeout { pmen: pmen::PRS })
    );
}

#[test]
fn command_values_keep_the_other_enables() {
    let gsts = global::TE | global::QIE | global::SRTP;
    assert_eq!(
        Command::InterruptRemapping(true).value(gsts),
        global::TE | global::QIE | global::IRE
    );
    assert_eq!(Command::Translation(false).value(gsts), global::QIE);
    assert_eq!(
        Command::FlushWriteBuffer.value(gsts),
        global::TE | global::QIE | global::WBF
    );
    assert_eq!(Command::FlushWriteBuffer.bit(), (global::WBF, false));
}

#[test]
fn fault_event_msi_addresses_any_apic_id() {
    for (id, addr, upper) in [
        (0, 0xfee0_0000, 0),
        (0xff, 0xfeef_f000, 0),
        (0x100, 0xfee0_0000, 0x100),
        (0x1234, 0xfee3_4000, 0x1200),
        (0xffff_ffff, 0xfeef_f000, 0xffff_ff00),
    ] {
        let msi = FaultEventMsi::new(id, 0x31, true).expect("EIM addresses any ID");
        assert_eq!(
            (msi.data, msi.address, msi.upper_address),
            (0x31, addr, upper)
        );
        assert_eq!(msi.destination(), id);
    }
    let mut unit = Fake::firmware_left();
    FaultEventMsi::new(300, 0x31, true)
        .expect("EIM")
        .program(&mut unit);
    assert_eq!(unit.fe, (0x31, 0xfee2_c000, 0x100));
}

#[test]
fn fault_event_msi_without_eim_refuses_apic_ids_above_255() {
    let msi = FaultEventMsi::new(0xff, 0x31, false).expect("8-bit ID");
    assert_eq!(
        (msi.address, msi.upper_address, msi.destination()),
        (0xfeef_f000, 0, 0xff)
    );
    for id in [0x100, 300, 0xffff_ffff] {
        assert_eq!(
            FaultEventMsi::new(id, 0x31, false),
            Err(FaultEventError::DestinationNeedsEim { apic_id: id })
        );
    }
    assert!(
        FaultEventError::DestinationNeedsEim { apic_id: 300 }
            .to_string()
            .contains("ECAP.EIM = 0")
    );
}
