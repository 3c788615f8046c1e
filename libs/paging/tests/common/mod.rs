//! Fake physical memory and frame allocator for the host tests.
//!
//! One shared state serves both traits. Besides storing entries it checks the contract the
//! library must keep with real hardware:
//! - every written entry is flushed before the operation ends (`assert_clean`);
//! - a freshly allocated frame counts as written (zeroed through the cache), so it must be
//!   flushed before anything links it;
//! - no entry is written that references a frame with unflushed entries (linked too early);
//! - no frame is freed twice, or while a live table still references it (outside `destroy`);
//! - the library never touches memory outside live table frames (that panics).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use conduit_paging::{
    ADDR_MASK, Config, ENTRIES, EntryFormat, Ept, FrameAllocator, Host, LargePages, PageTable,
    PagingLevels, PhysMemory, VtdSecondLevel,
};

/// Frames are handed out from here up; test data addresses stay below.
pub const FRAME_BASE: u64 = 0x40_0000_0000;

pub const KIB4: u64 = 0x1000;
pub const MIB2: u64 = 0x20_0000;
pub const GIB1: u64 = 0x4000_0000;

#[derive(Default)]
struct State {
    frames: HashMap<u64, Box<[u64; ENTRIES]>>,
    next: u64,
    free_list: Vec<u64>,
    limit: Option<usize>,
    bad_frame: Option<u64>,
    bad_outstanding: HashSet<u64>,
    bad_returned: Vec<u64>,
    allocations: usize,
    frees: usize,
    dirty: BTreeSet<u64>,
    /// target frame -> entry addresses referencing it
    refs: HashMap<u64, HashSet<u64>>,
    tearing_down: bool,
    violations: Vec<String>,
    flushes: Vec<(u64, u64)>,
    writes: Vec<(u64, u64)>,
}

/// Shared fake memory + allocator. Clone it to get both halves.
#[derive(Clone, Default)]
pub struct Fake(Rc<RefCell<State>>);

fn frame_of(addr: u64) -> u64 {
    addr & !0xfff
}

fn target(value: u64) -> u64 {
    value & ADDR_MASK
}

impl Fake {
    pub fn new() -> Self {
        let fake = Fake::default();
        fake.0.borrow_mut().next = FRAME_BASE;
        fake
    }

    /// Allow only `n` more allocations (`None`: unlimited).
    pub fn set_limit(&self, n: Option<usize>) {
        self.0.borrow_mut().limit = n;
    }

    /// The next allocation returns `frame` (without it becoming live).
    pub fn return_bad_frame(&self, frame: u64) {
        self.0.borrow_mut().bad_frame = Some(frame);
    }

    pub fn bad_frames_returned(&self) -> Vec<u64> {
        self.0.borrow().bad_returned.clone()
    }

    pub fn live_frames(&self) -> usize {
        self.0.borrow().frames.len()
    }

    pub fn allocations(&self) -> usize {
        self.0.borrow().allocations
    }

    pub fn frees(&self) -> usize {
        self.0.borrow().frees
    }

    pub fn is_live(&self, frame: u64) -> bool {
        self.0.borrow().frames.contains_key(&frame)
    }

    pub fn flushes(&self) -> Vec<(u64, u64)> {
        self.0.borrow().flushes.clone()
    }

    pub fn writes(&self) -> Vec<(u64, u64)> {
        self.0.borrow().writes.clone()
    }

    pub fn clear_logs(&self) {
        let mut s = self.0.borrow_mut();
        s.flushes.clear();
        s.writes.clear();
    }

    /// Raw entry, for assertions.
    pub fn entry(&self, table: u64, index: usize) -> u64 {
        self.read_entry(table + index as u64 * 8)
    }

    /// Every live frame with its contents.
    pub fn snapshot(&self) -> BTreeMap<u64, Vec<u64>> {
        self.0
            .borrow()
            .frames
            .iter()
            .map(|(frame, entries)| (*frame, entries.to_vec()))
            .collect()
    }

    /// No unflushed entry and no contract violation so far.
    pub fn assert_clean(&self) {
        let s = self.0.borrow();
        assert!(s.violations.is_empty(), "violations: {:#?}", s.violations);
        assert!(
            s.dirty.is_empty(),
            "unflushed entries: {:x?}",
            s.dirty.iter().take(8).collect::<Vec<_>>()
        );
    }

    fn violation(s: &mut State, what: String) {
        s.violations.push(what);
    }
}

impl PhysMemory for Fake {
    fn read_entry(&self, phys: u64) -> u64 {
        let s = self.0.borrow();
        assert_eq!(phys % 8, 0, "unaligned read {phys:#x}");
        let frame = s
            .frames
            .get(&frame_of(phys))
            .unwrap_or_else(|| panic!("read {phys:#x} outside a live table frame"));
        frame[((phys & 0xfff) / 8) as usize]
    }

    fn write_entry(&mut self, phys: u64, value: u64) {
        let mut s = self.0.borrow_mut();
        assert_eq!(phys % 8, 0, "unaligned write {phys:#x}");
        let index = ((phys & 0xfff) / 8) as usize;
        let old = match s.frames.get_mut(&frame_of(phys)) {
            Some(frame) => std::mem::replace(&mut frame[index], value),
            None => panic!("write {phys:#x} outside a live table frame"),
        };
        if let Some(set) = s.refs.get_mut(&target(old)) {
            set.remove(&phys);
        }
        let new_target = target(value);
        if value != 0 && s.frames.contains_key(&new_target) {
            if s.dirty
                .range(new_target..new_target + 0x1000)
                .next()
                .is_some()
            {
                Self::violation(
                    &mut s,
                    format!("{phys:#x} links frame {new_target:#x} before it was flushed"),
                );
            }
            s.refs.entry(new_target).or_default().insert(phys);
        }
        s.dirty.insert(phys);
        s.writes.push((phys, value));
    }

    fn flush(&mut self, phys: u64, len: u64) {
        let mut s = self.0.borrow_mut();
        if !phys.is_multiple_of(8)
            || !len.is_multiple_of(8)
            || len == 0
            || frame_of(phys) != frame_of(phys + len - 1)
        {
            Self::violation(&mut s, format!("bad flush range {phys:#x}+{len:#x}"));
        }
        let covered: Vec<u64> = s.dirty.range(phys..phys + len).copied().collect();
        for addr in covered {
            s.dirty.remove(&addr);
        }
        s.flushes.push((phys, len));
    }
}

impl FrameAllocator for Fake {
    fn allocate_frame(&mut self) -> Option<u64> {
        let mut s = self.0.borrow_mut();
        if let Some(limit) = s.limit {
            if limit == 0 {
                return None;
            }
            s.limit = Some(limit - 1);
        }
        if let Some(bad) = s.bad_frame.take() {
            s.bad_outstanding.insert(bad);
            return Some(bad);
        }
        let frame = match s.free_list.pop() {
            Some(frame) => frame,
            None => {
                let frame = s.next;
                s.next += 0x1000;
                frame
            }
        };
        s.frames.insert(frame, Box::new([0; ENTRIES]));
        // Zeroed through the cache: must be flushed before the hardware may read it.
        for index in 0..ENTRIES as u64 {
            s.dirty.insert(frame + index * 8);
        }
        s.allocations += 1;
        Some(frame)
    }

    fn free_frame(&mut self, frame: u64) {
        let mut s = self.0.borrow_mut();
        if s.bad_outstanding.remove(&frame) {
            s.bad_returned.push(frame);
            return;
        }
        let Some(entries) = s.frames.remove(&frame) else {
            Self::violation(
                &mut s,
                format!("free of {frame:#x}, which is not allocated"),
            );
            return;
        };
        // Its own outgoing references die with it.
        for (index, value) in entries.iter().enumerate() {
            let source = frame + index as u64 * 8;
            if let Some(set) = s.refs.get_mut(&target(*value)) {
                set.remove(&source);
            }
        }
        let referenced = s.refs.get(&frame).is_some_and(|set| !set.is_empty());
        if referenced && !s.tearing_down {
            Self::violation(&mut s, format!("{frame:#x} freed while still referenced"));
        }
        s.refs.remove(&frame);
        let stale: Vec<u64> = s.dirty.range(frame..frame + 0x1000).copied().collect();
        for addr in stale {
            s.dirty.remove(&addr);
        }
        s.free_list.push(frame);
        s.frees += 1;
    }
}

/// Destroys `table`, returning the count it reports; checks nothing is left.
pub fn destroy<F: EntryFormat>(table: PageTable<F, Fake>, fake: &Fake) -> usize {
    fake.0.borrow_mut().tearing_down = true;
    let mut alloc = fake.clone();
    let freed = table.destroy(&mut alloc);
    fake.0.borrow_mut().tearing_down = false;
    assert_eq!(fake.live_frames(), 0, "frames leaked by destroy");
    freed
}

pub fn all_large() -> LargePages {
    LargePages::SIZE_2M | LargePages::SIZE_1G
}

pub fn config(levels: PagingLevels, large: LargePages) -> Config {
    Config::new(levels).with_large_pages(large)
}

pub fn ept(large: LargePages) -> (PageTable<Ept, Fake>, Fake) {
    table(Ept::new(), config(PagingLevels::Four, large))
}

pub fn vtd(levels: PagingLevels, large: LargePages) -> (PageTable<VtdSecondLevel, Fake>, Fake) {
    table(VtdSecondLevel::new(), config(levels, large))
}

pub fn host(large: LargePages) -> (PageTable<Host, Fake>, Fake) {
    table(Host::new(), config(PagingLevels::Four, large))
}

pub fn table<F: EntryFormat>(format: F, config: Config) -> (PageTable<F, Fake>, Fake) {
    let fake = Fake::new();
    let mut alloc = fake.clone();
    let table = PageTable::new(format, fake.clone(), config, &mut alloc).expect("root frame");
    fake.assert_clean();
    (table, fake)
}
