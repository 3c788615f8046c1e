//! The receive tables the VFs of one PF share, as shadows of the registers: the VLAN pool filters
//! (VLVF, 32 entries: VLAN id, enable, one pool bit per VF) with the VLAN filter table (VFTA,
//! one bit per VLAN id), and the multicast table array (MTA, 4096 hash bits). Datasheet
//! chapter 8 register descriptions of VLVF 0x5D00, VFTA 0x5600, MTA 0x5200; the slot choice and
//! the order of updates follow Linux's igb (`igb_vfta_set`, `igb_find_vlvf_slot`, `igb_mta_set`).

/// VLVF entries.
pub const VLVF_ENTRIES: usize = 32;
/// VFTA dwords (4096 VLAN ids).
pub const VFTA_WORDS: usize = 128;
/// MTA dwords (4096 hash bits).
pub const MTA_WORDS: usize = 128;

/// VLVF: VLAN id (bits 11:0), pool select (bits 19:12, one per pool), VLAN id enable (bit 31).
pub const VLVF_VID_MASK: u32 = 0xfff;
pub const VLVF_POOLSEL_SHIFT: u32 = 12;
pub const VLVF_POOLSEL_MASK: u32 = 0xff << VLVF_POOLSEL_SHIFT;
pub const VLVF_ENABLE: u32 = 1 << 31;

/// One register write to a shared table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableWrite {
    Vlvf { index: u8, value: u32 },
    Vfta { index: u8, value: u32 },
}

/// Every VLVF entry is in use by other VLAN ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlvfFull;

/// The shadows of VLVF and VFTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanTable {
    vlvf: [u32; VLVF_ENTRIES],
    vfta: [u32; VFTA_WORDS],
}

impl Default for VlanTable {
    fn default() -> Self {
        Self {
            vlvf: [0; VLVF_ENTRIES],
            vfta: [0; VFTA_WORDS],
        }
    }
}

impl VlanTable {
    /// The entry that holds `vid`: entry 0 always for VLAN 0; otherwise the enabled entry with
    /// that id, or (when `allocate`) the highest free entry, as Linux's PF searches.
    fn slot(&self, vid: u16, allocate: bool) -> Result<Option<usize>, VlvfFull> {
        if vid == 0 {
            return Ok(Some(0));
        }
        let mut free = None;
        for i in (1..VLVF_ENTRIES).rev() {
            let e = self.vlvf[i];
            if e == 0 {
                free = free.or(Some(i));
            } else if e & VLVF_VID_MASK == u32::from(vid) && e & VLVF_ENABLE != 0 {
                return Ok(Some(i));
            }
        }
        match (allocate, free) {
            (false, _) => Ok(None),
            (true, Some(i)) => Ok(Some(i)),
            (true, None) => Err(VlvfFull),
        }
    }

    /// Pool `pool` joins (`on`) or leaves VLAN `vid`; returns the register writes, in the order
    /// they must be made (VFTA after VLVF when joining, before it when an entry is freed).
    pub fn set(
        &mut self,
        vid: u16,
        pool: u8,
        on: bool,
    ) -> Result<alloc::vec::Vec<TableWrite>, VlvfFull> {
        let mut out = alloc::vec::Vec::new();
        let Some(i) = self.slot(vid, on)? else {
            return Ok(out);
        };
        let bit = 1u32 << (VLVF_POOLSEL_SHIFT + u32::from(pool));
        let word = usize::from(vid / 32);
        let vbit = 1u32 << (vid % 32);
        let old = self.vlvf[i];
        let pools = if on {
            (old & VLVF_POOLSEL_MASK) | bit
        } else {
            old & VLVF_POOLSEL_MASK & !bit
        };
        if pools == 0 {
            if old != 0 || self.vfta[word] & vbit != 0 {
                self.vfta[word] &= !vbit;
                out.push(TableWrite::Vfta {
                    index: word as u8,
                    value: self.vfta[word],
                });
                self.vlvf[i] = 0;
                out.push(TableWrite::Vlvf {
                    index: i as u8,
                    value: 0,
                });
            }
            return Ok(out);
        }
        let new = pools | u32::from(vid) | VLVF_ENABLE;
        if new != old {
            self.vlvf[i] = new;
            out.push(TableWrite::Vlvf {
                index: i as u8,
                value: new,
            });
        }
        if self.vfta[word] & vbit == 0 {
            self.vfta[word] |= vbit;
            out.push(TableWrite::Vfta {
                index: word as u8,
                value: self.vfta[word],
            });
        }
        Ok(out)
    }

    /// The VLAN ids pool `pool` is a member of.
    pub fn of_pool(&self, pool: u8) -> alloc::vec::Vec<u16> {
        let bit = 1u32 << (VLVF_POOLSEL_SHIFT + u32::from(pool));
        self.vlvf
            .iter()
            .filter(|e| *e & VLVF_ENABLE != 0 && *e & bit != 0)
            .map(|e| (e & VLVF_VID_MASK) as u16)
            .collect()
    }
}

/// The MTA bit of a multicast hash: word `(hash >> 5) & 127`, bit `hash & 31`.
pub fn mta_bit(hash: u16) -> (usize, u32) {
    (usize::from(hash >> 5) & (MTA_WORDS - 1), 1 << (hash & 31))
}
