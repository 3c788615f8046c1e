//! Conduit: a bare-metal Type-1 micro-hypervisor.
//!
//! The loader (the `bootloader` crate's UEFI image) enters [`kernel_main`] with the memory map, a
//! mapping of all physical memory, the RSDP and the ramdisk (the boot bundle). Boot runs in one pass:
//! console, CPU tables and identification, memory, configuration, platform (ACPI), then the rest.
#![no_std]
#![no_main]

extern crate alloc;

mod config;
mod console;
mod control;
mod cpus;
mod guest;
mod igb;
mod iommu;
mod irq;
mod nvme;
mod pci;
mod platform;
mod sched;
#[cfg(feature = "selftest")]
mod selftest;
mod shell;

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::{BootInfo, entry_point};
use conduit_hw::{cpu, memory, power};
use log::{error, info};

/// The loader's contract: all physical memory mapped at a dynamic offset (for VMXON regions, VMCS,
/// EPT and device registers), and a kernel stack large enough for exit handling.
pub static LOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.kernel_stack_size = 256 * 1024;
    config
};

entry_point!(kernel_main, config = &LOADER_CONFIG);

/// The kernel's version and the git revision it was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_HASH: &str = env!("CONDUIT_GIT_HASH");

fn kernel_main(boot: &'static mut BootInfo) -> ! {
    conduit_hw::console::init();
    info!("Conduit v{VERSION} (git {GIT_HASH}) starting");
    conduit_hw::init_cpu_tables();
    // The policy the traps reach: the control task's faults and watchdog, interrupt dispatch.
    let handlers = conduit_hw::idt::Handlers {
        user_exception: control::user_exception,
        interrupt: irq::on_interrupt,
        user_tick: control::watchdog_tick,
    };
    if let Err(e) = conduit_hw::idt::set_handlers(handlers) {
        error!("idt: {e}");
        power::fail(power::FailCode::Boot);
    }

    let Some(phys_offset) = boot.physical_memory_offset.into_option() else {
        error!("the loader did not map physical memory; cannot continue");
        power::fail(power::FailCode::Boot);
    };
    let mem = match memory::init(phys_offset, &boot.memory_regions) {
        Ok(mem) => mem,
        Err(e) => {
            error!("memory: {e}");
            power::fail(power::FailCode::Boot);
        }
    };

    // The IOMMU keeps using the frame allocator for as long as the hypervisor runs.
    let mem: &'static memory::Memory = alloc::boxed::Box::leak(alloc::boxed::Box::new(mem));

    let ramdisk = boot.ramdisk_addr.into_option().map(|addr| {
        // SAFETY: the loader maps the ramdisk at `ramdisk_addr` for `ramdisk_len` bytes and never
        // reuses that memory (it is reported as a loader region, not usable memory).
        unsafe { core::slice::from_raw_parts(addr as *const u8, boot.ramdisk_len as usize) }
    });
    let bundle = config::load(ramdisk);
    let config = &bundle.config;
    // Before anything else allocates: the host ranges of identity-placed guests, then the APs'
    // start code below 1 MiB.
    guest::claim_identity(&config.guests, mem);
    let low = conduit_hw::smp::reserve_low_pages(mem);
    info!(
        "smp: start code pages below 1 MiB: {}",
        low.map_or_else(
            || alloc::string::String::from("none free (the APs cannot be started)"),
            |b| alloc::format!("{b:#x}")
        )
    );
    info!(
        "configuration \"{}\", log level {:?}",
        config.name, config.log_level
    );

    let cpu = cpu::identify();
    cpu.report();

    let platform = platform::discover(boot.rsdp_addr.into_option(), mem.phys_offset());
    // The one clock: the TSC's rate, measured here once (PM timer, else the 8254) before anything
    // waits or counts time; every later user takes it from `conduit_hw::time`.
    conduit_hw::time::init(platform.pm_timer);

    // SR-IOV only as configured: the VFs the guests' `[[guest.device]] ... vf = N` name. The
    // test image may enumerate with its clock frozen (`[test] scenario = "clock-stopped"`).
    let wanted = pci::sriov::wanted(config);
    #[cfg(feature = "selftest")]
    selftest::pci_init(&platform, mem, &wanted, config.test);
    #[cfg(not(feature = "selftest"))]
    pci::init(&platform, mem, &wanted);
    // The configured console, now that the SPCR and the PCI devices are known.
    console::choose(config, &platform, mem);
    // The test image may bring the IOMMU up from a corrupted DMAR or with forced register
    // invalidation (`[test] scenario`); the production image has no such path.
    #[cfg(feature = "selftest")]
    selftest::iommu_init(mem, config.test, platform.dmar);
    #[cfg(not(feature = "selftest"))]
    iommu::init(mem, platform.dmar);
    irq::init(mem, &platform);
    // Every other CPU, VMX on each when guests will run. The test image may add a MADT entry
    // for a processor that does not exist (`[test] scenario = "smp-ghost"`).
    #[cfg(feature = "selftest")]
    let ghosts = selftest::smp::extra_cpus(config.test);
    #[cfg(not(feature = "selftest"))]
    let ghosts = alloc::vec::Vec::new();
    cpus::start(
        &platform,
        &ghosts,
        mem,
        cpu.vmx.as_ref().filter(|_| !config.guests.is_empty()),
    );
    // Before the guests: the VFs they are given must be enabled and online first.
    nvme::init(&bundle, mem);
    igb::init(&bundle, mem);

    #[cfg(feature = "selftest")]
    if let Some(test) = config.test {
        selftest::run(test, mem, cpu.vmx.is_some());
    }
    control::init(&bundle, mem);
    let cpu_view = sched::cpus::boot_view();
    let guests = guest::boot::start_all(&bundle, cpu.vmx.as_ref(), mem, &cpu_view);
    control::seal(mem);
    #[cfg(feature = "selftest")]
    if let Some(test) = config.test {
        selftest::after_guests(test, mem, &mut guests.without_vcpu.lock());
    }
    let cpus = match platform.cpu_count() {
        0 => alloc::string::String::from("CPU count unknown (no MADT)"),
        n => alloc::format!("{n} CPU(s)"),
    };
    info!(
        "boot complete: {} MiB usable ({} frames free), {cpus}, VMX {}, DMAR {}, DMA remapping {}, \
         interrupt remapping {}; {} hypervisor ticks",
        mem.usable_mib(),
        mem.frames.lock().available_frames(),
        if cpu.vmx.is_some() {
            "available"
        } else {
            "not available"
        },
        if platform.has_dmar() {
            "present"
        } else {
            "absent"
        },
        if iommu::status().is_ok() { "on" } else { "off" },
        if iommu::interrupt_remapping().is_ok() {
            "on"
        } else {
            "off"
        },
        irq::dispatch::ticks()
    );
    sched::run(guests, &platform, config.on_idle);
    power::succeed();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    conduit_hw::console::emergency(format_args!("PANIC: {info}"));
    power::fail(power::FailCode::Panic);
}
