//! A guest's driver, scripted by the self-tests where no vCPU can run it (QEMU's TCG has no VMX):
//! its configuration accesses go through configuration mechanism #1 as the exit path decodes
//! them (`guest::devices::data_port_target`), its MSI-X table writes through the trapped table
//! page, both as requests to the control task; the events that come back go where the exit path
//! sends them (`guest::interrupts::on_msix_entry` for MSI-X entries).

use crate::control::{self, ControlError};
use crate::guest::devices::data_port_target;
use crate::guest::interrupts::{self, EntryChange, Routed};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_control_abi::{Op, Request};
use conduit_hw::memory::Memory;
use conduit_pci::Bdf;
use conduit_vpci::Event;

/// Message Control of the MSI-X capability (PCIe Base Spec r6.0 §7.7.2.2): MSI-X Enable.
const MSIX_ENABLE: u32 = 1 << 15;
/// Command register (PCI Local Bus Spec 3.0 §6.2.2): memory space and bus master enable.
const MEMORY_AND_BUS_MASTER: u32 = 0x0006;

/// The control task's error as text.
pub fn err(e: ControlError) -> String {
    format!("{e}")
}

/// One guest's side of configuration mechanism #1.
pub struct GuestView {
    /// The guest's index in the configuration (its topology in the control task).
    pub guest: u16,
    cf8: u32,
}

impl GuestView {
    pub fn new(guest: u16) -> Self {
        Self { guest, cf8: 0 }
    }

    fn select(&mut self, vbdf: Bdf, offset: u16) {
        self.cf8 = 0x8000_0000 | (u32::from(vbdf.routing_id()) << 8) | u32::from(offset & 0xfc);
    }

    /// A guest read; offsets beyond 0xff are out of mechanism #1's reach and are sent as an
    /// ECAM-window access would be (straight as a request).
    pub fn read(&mut self, vbdf: Bdf, offset: u16, size: u8) -> Result<u32, ControlError> {
        if offset >= 0x100 {
            return control::call(&Request::read(self.guest, vbdf, offset, size))
                .map(|a| a.value as u32);
        }
        self.select(vbdf, offset);
        let port = 0xcfc + (offset & 3);
        let Some((b, off)) = data_port_target(self.cf8, port) else {
            return Ok(u32::MAX);
        };
        control::call(&Request::read(self.guest, b, off, size)).map(|a| a.value as u32)
    }

    /// A guest write; returns the events the task answered with.
    pub fn write(
        &mut self,
        vbdf: Bdf,
        offset: u16,
        size: u8,
        value: u32,
    ) -> Result<Vec<Event>, ControlError> {
        self.select(vbdf, offset);
        let port = 0xcfc + (offset & 3);
        let Some((b, off)) = data_port_target(self.cf8, port) else {
            return Ok(Vec::new());
        };
        control::call(&Request::write(self.guest, b, off, size, value))
            .map(|a| a.events().copied().collect())
    }

    /// What a driver does before its function may interrupt: memory decode and bus mastering
    /// on, then MSI-X Enable in the capability at `cap` (its physical counterparts follow
    /// through the control task).
    pub fn enable_msix(&mut self, vbdf: Bdf, cap: u16) -> Result<(), String> {
        self.write(vbdf, 0x04, 2, MEMORY_AND_BUS_MASTER)
            .map_err(err)?;
        self.write(vbdf, cap + 2, 2, MSIX_ENABLE).map_err(err)?;
        Ok(())
    }

    /// MSI-X Enable, then decode and bus mastering off again.
    pub fn disable_msix(&mut self, vbdf: Bdf, cap: u16) -> Result<(), String> {
        self.write(vbdf, cap + 2, 2, 0).map_err(err)?;
        self.write(vbdf, 0x04, 2, 0).map_err(err)?;
        Ok(())
    }

    /// The driver writes MSI-X table entry `entry` of its function `vbdf` (physically `bdf`)
    /// with `address` and `data`, unmasked: one dword at a time through the trapped table, as
    /// the exit path forwards a guest's stores. Each `MsixEntryChanged` that comes back goes to
    /// `guest::interrupts::on_msix_entry` for this guest (called `name`), as the exit path does.
    /// Returns the route of the last change (`None`: the core did not route it).
    pub fn program_msix_entry(
        &mut self,
        name: &str,
        mem: &Memory,
        (vbdf, bdf): (Bdf, Bdf),
        entry: u16,
        address: u64,
        data: u32,
    ) -> Result<Option<Routed>, String> {
        let base = u64::from(entry) * 16;
        let mut routed = None;
        for (offset, value) in [
            (0, address & 0xffff_ffff),
            (4, address >> 32),
            (8, u64::from(data)),
            (12, 0),
        ] {
            let req = Request {
                offset: base + offset,
                size: 4,
                value,
                ..Request::new(Op::MsixWrite, self.guest, vbdf)
            };
            let a = control::call(&req).map_err(err)?;
            for e in a.events() {
                if let Event::MsixEntryChanged {
                    index,
                    address,
                    data,
                    masked,
                } = *e
                {
                    let change = EntryChange {
                        entry: index,
                        address,
                        data,
                        masked,
                    };
                    routed = interrupts::on_msix_entry(self.guest, name, mem, bdf, change);
                }
            }
        }
        Ok(routed)
    }
}

/// Where `guest`'s topology shows the physical function `bdf` (00:01.0, 00:02.0, ...).
pub fn virtual_bdf(guest: u16, bdf: Bdf) -> Option<Bdf> {
    (1..32u8)
        .filter_map(|dev| Bdf::new(0, dev, 0))
        .find(|v| control::assignment(guest, *v) == Some(bdf))
}
