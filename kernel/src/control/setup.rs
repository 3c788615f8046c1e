//! Starting the task: its address space with the ECAM windows it is given (PCIe Base Spec r6.0
//! §7.2.2; at most [`layout::MAX_WINDOWS`], segment 0's first), Init, the watchdog, and the
//! hand-over of configuration space ([`seal`]).

use super::space::Space;
use super::{BUDGET_US, BUILD_BUDGET_US, GuestRecord, Task, entry};
use crate::pci::{self, Mechanism};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use conduit_clock::Rate;
use conduit_control_abi::shared::mode;
use conduit_control_abi::{ConfigWindows, EcamWindow, InitInfo, layout, task_windows};
use conduit_hw::memory::Memory;
use conduit_hw::{gdt, time};
use conduit_pci::PciAddress;
use log::{error, info, warn};

/// Loads and starts the task with access to physical configuration space. Runs once, before
/// guests are created (their VMCS take the host EFER with SCE set, and their functions are built
/// in the task); [`seal`] then takes the kernel's own access away. Failures are reported; guests
/// then see no functions.
pub fn init(bundle: &conduit_config::Bundle<'static>, mem: &'static Memory) {
    let records: Vec<GuestRecord> = bundle
        .config
        .guests
        .iter()
        .map(|g| GuestRecord {
            name: g.name.clone(),
            ..GuestRecord::default()
        })
        .collect();
    let guests = records.len();
    let Some(image) = bundle.image(conduit_config::CONTROL_TASK_IMAGE) else {
        error!(
            "no control task in the boot bundle (the image builder packs target/.../conduit-control): configuration space stays with the kernel and no function can be assigned"
        );
        return;
    };
    entry::init_syscall();
    let budget = watchdog();
    let Some(mechanism) = pci::mechanism() else {
        error!("control: PCI enumeration did not run: the task is not started");
        return;
    };
    let (windows, init) = match mechanism {
        Mechanism::Ecam(all) => {
            let windows = chosen_windows(&all);
            let mut init = InitInfo {
                mode: mode::ECAM,
                guests: guests as u32,
                window_count: windows.len() as u32,
                ..InitInfo::default()
            };
            for (slot, w) in init.windows.iter_mut().zip(&windows) {
                *slot = EcamWindow {
                    segment: u32::from(w.segment),
                    start_bus: u32::from(w.start_bus),
                    end_bus: u32::from(w.end_bus),
                    reserved: 0,
                };
            }
            (windows, init)
        }
        Mechanism::PortIo => (
            Vec::new(),
            InitInfo {
                mode: mode::PORT_IO,
                guests: guests as u32,
                ..InitInfo::default()
            },
        ),
    };
    let config: Vec<(u64, u64)> = windows.iter().map(|w| (w.phys, w.len)).collect();
    let space = match Space::build(mem, image, &config) {
        Ok(s) => s,
        Err(e) => {
            error!("control: the task's address space cannot be built: {e}");
            return;
        }
    };
    let sel = gdt::selectors();
    let (x, w) = space.image_pages();
    info!(
        "control: task image {} KiB ({x} R+X, {w} R+W pages) at {:#x}, entry {:#x}, CR3 {:#x}; ring 3 (CS {:#x}, SS {:#x}), {} KiB stack, configuration space through {}",
        space.image_bytes() >> 10,
        layout::IMAGE_BASE,
        space.entry,
        space.cr3(),
        sel.user_code.0,
        sel.user_data.0,
        layout::STACK_SIZE >> 10,
        describe_windows(&windows)
    );
    let mut task = Task {
        space,
        init,
        ports: windows.is_empty(),
        budget,
        alive: true,
        assignments: Vec::new(),
        guests: records,
        restarts: 0,
    };
    match task.start() {
        Ok(()) => info!("control: task started: {guests} guest topology(ies)"),
        Err(why) => {
            error!("control: the task did not start: {why}");
            task.alive = false;
        }
    }
    *super::task() = Some(task);
}

/// The platform's ECAM windows the task maps ([`task_windows`]: segment 0's first, at most
/// [`layout::MAX_WINDOWS`], window `i` at [`layout::config_va`]`(i)`); each one left out is
/// logged (its functions cannot be assigned: [`reaches`] refuses them).
fn chosen_windows(all: &[pci::EcamWindow]) -> Vec<pci::EcamWindow> {
    let segments: Vec<u16> = all.iter().map(|w| w.segment).collect();
    let chosen: Vec<usize> = task_windows(&segments).collect();
    for (i, w) in all.iter().enumerate().filter(|(i, _)| !chosen.contains(i)) {
        warn!(
            "control: MCFG window {i} (segment {:04x} buses {:02x}-{:02x}, ECAM {:#x}) is not \
             mapped in the task, which maps at most {} of the {} windows (segment 0's first): its \
             functions cannot be assigned",
            w.segment,
            w.start_bus,
            w.end_bus,
            w.phys,
            layout::MAX_WINDOWS,
            all.len()
        );
    }
    chosen.into_iter().map(|i| all[i]).collect()
}

/// Whether the task reaches the configuration space of the function `at`: one of its windows
/// decodes `at`'s segment and bus ([`ConfigWindows::locate`], as the task decides it), or,
/// through the ports, `at` is on segment 0. Else why not (the function cannot be assigned).
/// Without a task there is nothing to check here (building the function then fails on its own).
pub fn reaches(at: PciAddress) -> Result<(), String> {
    let guard = super::task();
    let Some(task) = guard.as_ref() else {
        return Ok(());
    };
    let windows = ConfigWindows::new(&task.init)
        .map_err(|e| format!("the control task's configuration windows: {e}"))?;
    if windows.locate(at, 0).is_some() {
        return Ok(());
    }
    Err(if task.init.mode == mode::PORT_IO {
        format!(
            "{at} is off segment 0, and the control task reaches configuration space through \
             ports 0xcf8-0xcff (segment 0 only)"
        )
    } else {
        format!(
            "no ECAM window of the control task decodes {at}: it maps at most {} windows, and \
             the one of segment {:04x} bus {:02x} was left out or does not exist (see the boot log)",
            layout::MAX_WINDOWS,
            at.segment,
            at.bdf.bus()
        )
    })
}

/// The task's windows for the log: `ECAM <phys> (<n> MiB) at <va>` per window (with its segment
/// off segment 0), or the ports.
fn describe_windows(windows: &[pci::EcamWindow]) -> String {
    if windows.is_empty() {
        return "ports 0xcf8-0xcff (TSS I/O permission bitmap)".to_string();
    }
    let list: Vec<String> = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let segment = if w.segment == 0 {
                String::new()
            } else {
                format!(
                    "segment {:04x} buses {:02x}-{:02x}: ",
                    w.segment, w.start_bus, w.end_bus
                )
            };
            format!(
                "{segment}ECAM {:#x} ({} MiB) at {:#x}",
                w.phys,
                w.len >> 20,
                layout::config_va(i)
            )
        })
        .collect();
    list.join("; ")
}

/// Boot is done with configuration space: the kernel gives its own access up
/// ([`pci::hand_over`]), so the task's mapping is the only one. Without a running task the
/// kernel keeps it (nothing else could reach configuration space then).
pub fn seal(mem: &Memory) {
    let running = super::task().as_ref().is_some_and(|t| t.alive);
    if running {
        pci::hand_over(mem);
    } else {
        warn!("control: no control task: the kernel keeps configuration space");
    }
}

/// The watchdog runs on the hypervisor's periodic tick (`crate::irq`), which interrupts the task
/// (interrupts are enabled at CPL 3, and the task cannot disable them).
fn watchdog() -> Option<Rate> {
    if !crate::irq::tick_running() {
        warn!("control: no hypervisor tick: the task's watchdog is off");
        return None;
    }
    let Some(rate) = time::rate() else {
        warn!("control: the TSC rate is unknown: the task's watchdog is off");
        return None;
    };
    info!(
        "control: watchdog {} ms per request = {} TSC ticks, {} ms to build a function = {} TSC ticks (TSC {}, {}; checked at the hypervisor tick, every {} ms)",
        BUDGET_US / 1000,
        rate.ticks_in_us(BUDGET_US),
        BUILD_BUDGET_US / 1000,
        rate.ticks_in_us(BUILD_BUDGET_US),
        rate,
        time::Origin,
        crate::irq::TICK_MS
    );
    Some(rate)
}
