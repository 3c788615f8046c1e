//! The boot configuration: decoded from the bundle the loader hands over as the ramdisk.

use conduit_config::{BootConfig, Bundle, ExitMethod, LogLevel, OnIdle};
use conduit_hw::console;
use conduit_hw::power;
use log::{LevelFilter, error, info};

/// Decodes the bundle and applies the settings the rest of boot depends on (log level, exit
/// method). A missing or malformed bundle is reported and the built-in defaults are used.
pub fn load(ramdisk: Option<&'static [u8]>) -> Bundle<'static> {
    let bundle = match ramdisk.map(Bundle::decode) {
        Some(Ok(bundle)) => {
            let task = bundle.image(conduit_config::CONTROL_TASK_IMAGE);
            info!(
                "bundle of {} bytes, {} guest(s), {} image(s){}",
                ramdisk.map_or(0, <[u8]>::len),
                bundle.config.guests.len(),
                bundle.images.len() - usize::from(task.is_some()),
                match task {
                    Some(t) => alloc::format!(", control task ({} KiB)", t.len() >> 10),
                    None => alloc::string::String::new(),
                }
            );
            bundle
        }
        Some(Err(e)) => {
            error!("the ramdisk is not a usable Conduit bundle: {e}; using defaults");
            Bundle {
                config: defaults(),
                images: alloc::vec::Vec::new(),
            }
        }
        None => {
            error!("no ramdisk: using defaults (no guests)");
            Bundle {
                config: defaults(),
                images: alloc::vec::Vec::new(),
            }
        }
    };
    let config = &bundle.config;
    power::set_method(config.exit);
    console::set_level(match config.log_level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    });
    #[cfg(not(feature = "selftest"))]
    refuse_test_settings(config);
    bundle
}

/// The production image (built without the `selftest` feature) has no self-tests and no
/// fault-injection hooks: a configuration that asks for them is refused, not half-obeyed.
#[cfg(not(feature = "selftest"))]
fn refuse_test_settings(config: &BootConfig) {
    if let Some(what) = config.test_only() {
        error!(
            "this is the production image: {what} needs the test image (the kernel and control \
             task built with `--features selftest`, as `scripts/test` does)"
        );
        power::fail(power::FailCode::Boot);
    }
}

fn defaults() -> BootConfig {
    BootConfig {
        log_level: LogLevel::Info,
        exit: ExitMethod::Halt,
        test: None,
        // Without a configuration nobody asked for an unattended run: stay at the shell.
        on_idle: OnIdle::Shell,
        name: alloc::string::String::from("built-in defaults"),
        guests: alloc::vec::Vec::new(),
        unsafe_no_iommu: false,
        console: conduit_config::ConsoleChoice::Auto,
        baud: conduit_uart::uart::DEFAULT_BAUD,
    }
}
