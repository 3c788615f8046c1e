//! `conduit-boot test`: runs the scenarios of [`crate::scenarios`] one after the other.
//!
//! Each scenario builds its image in `build/test/<name>/`, streams the serial log to
//! `build/logs/<name>.log` as it arrives, and is judged by [`crate::expect::verdict`].

use crate::cli::TestArgs;
use crate::expect::{Ending, Monitor, StatusCheck, TAIL_LINES, verdict};
use crate::image::{self, ConfigText, ImageSpec};
use crate::machine::{self, HostTools, MachineKind, MachineSpec, bochs};
use crate::paths::{KernelImage, Workspace};
use crate::scenarios::{self, Config, Scenario};
use crate::script::Script;
use crate::session::{Limits, Mode, Session, tail_of_file};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long an emulator may linger after the end marker before it is stopped.
const GRACE: Duration = Duration::from_secs(5);

/// The scenarios selected by the tier and the filter, in order, with the image each boots.
pub fn select<'a>(
    all: impl Iterator<Item = (&'a Scenario, KernelImage)>,
    args: &TestArgs,
) -> Vec<(&'a Scenario, KernelImage)> {
    all.filter(|(s, _)| args.tier.includes(s.machine.kind()))
        .filter(|(s, _)| args.filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect()
}

/// The kernel ELF of each image the chosen scenarios boot: `--kernel` replaces the test image's;
/// the production image's is always the production build.
fn kernels(
    ws: &Workspace,
    args: &TestArgs,
    chosen: &[(&Scenario, KernelImage)],
) -> Result<Vec<(KernelImage, PathBuf)>, crate::Error> {
    let mut out = Vec::new();
    for image in [KernelImage::Test, KernelImage::Production] {
        if chosen.iter().any(|(_, i)| *i == image) {
            let explicit = match image {
                KernelImage::Test => args.kernel.as_deref(),
                KernelImage::Production => None,
            };
            let kernel = ws.kernel(explicit, image)?;
            println!("{} image: {}", image.name(), kernel.display());
            out.push((image, kernel));
        }
    }
    Ok(out)
}

/// Why a scenario on a `kind` machine cannot run on this host, if it cannot: a `kvm` scenario
/// needs `/dev/kvm` and VMX. Such a scenario is listed as not run, neither passed nor failed.
pub fn not_runnable(kind: MachineKind, kvm_usable: bool) -> Option<&'static str> {
    (kind == MachineKind::Kvm && !kvm_usable)
        .then_some("no KVM (needs /dev/kvm and a CPU with VMX for nested VT-x)")
}

/// Runs `conduit-boot test`; returns whether no selected scenario failed (scenarios this host
/// cannot run are listed as not run and counted apart).
pub fn run(ws: &Workspace, args: &TestArgs) -> Result<bool, crate::Error> {
    let chosen = select(scenarios::all(), args);
    if args.list {
        for (s, image) in &chosen {
            println!(
                "{:<30} {:<40} {:>4}s  {:<10} expects {}",
                s.name,
                s.machine.describe(),
                s.timeout_secs,
                image.name(),
                match s.end {
                    crate::expect::End::Success => "success",
                    crate::expect::End::Failure => "failure",
                }
            );
        }
        return Ok(true);
    }
    let kernels = kernels(ws, args, &chosen)?;
    let tools = HostTools::from_env();
    let kvm = machine::kvm_usable();
    let (mut passed, mut failed, mut not_run) = (0usize, 0usize, 0usize);
    for (s, image) in &chosen {
        let Some((_, kernel)) = kernels.iter().find(|(i, _)| i == image) else {
            return Err(crate::Error::Internal(format!("no kernel for {}", s.name)));
        };
        if let Some(why) = not_runnable(s.machine.kind(), kvm) {
            not_run += 1;
            println!("NOT RUN {} [{}]: {why}", s.name, s.machine.describe());
            continue;
        }
        println!("RUN  {} [{}]", s.name, s.machine.describe());
        let started = Instant::now();
        match run_one(ws, &tools, kernel, s) {
            Ok(()) => {
                passed += 1;
                println!("PASS {} ({}s)", s.name, started.elapsed().as_secs());
            }
            Err(failure) => {
                failed += 1;
                println!("FAIL {}: {}", s.name, failure.reason);
                if !failure.details.is_empty() {
                    for line in &failure.details {
                        println!("  | {line}");
                    }
                }
            }
        }
    }
    if chosen.is_empty() {
        println!("no scenario matches the tier and filter");
    }
    if not_run > 0 {
        println!("boot: {passed} passed, {failed} failed, {not_run} not run: no KVM");
    } else {
        println!("boot: {passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

/// Why a scenario failed, with the lines that show it.
struct Failure {
    reason: String,
    details: Vec<String>,
}

impl Failure {
    fn plain(reason: impl std::fmt::Display) -> Self {
        Self {
            reason: reason.to_string(),
            details: Vec::new(),
        }
    }
}

fn config_text(ws: &Workspace, config: Config) -> ConfigText {
    match config {
        Config::File(rel) => ConfigText::File(ws.root.join(rel)),
        Config::Inline(text) => ConfigText::Inline {
            text: text.to_string(),
            dir: ws.root.clone(),
        },
    }
}

fn run_one(ws: &Workspace, tools: &HostTools, kernel: &Path, s: &Scenario) -> Result<(), Failure> {
    let dir = ws.build_dir("test").join(s.name);
    let logs = ws.build_dir("logs");
    for d in [&dir, &logs] {
        std::fs::create_dir_all(d)
            .map_err(|e| Failure::plain(format!("cannot create {}: {e}", d.display())))?;
    }
    let spec = ImageSpec {
        kernel: kernel.to_path_buf(),
        config: config_text(ws, s.config),
        exit: s.machine.exit_method(),
        images: Vec::new(),
        out: dir.join("disk.img"),
    };
    let built = image::build(&spec).map_err(|e| Failure::plain(format!("image: {e}")))?;
    let launch =
        machine::prepare(&s.machine, tools, &dir, &built.disk, &[]).map_err(Failure::plain)?;
    let mut monitor =
        Monitor::with_sequences(s.expect, s.guests, s.forbid).map_err(Failure::plain)?;
    let mut script = Script::new(s.input).map_err(Failure::plain)?;
    let log_path = logs.join(format!("{}.log", s.name));
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| Failure::plain(format!("cannot create {}: {e}", log_path.display())))?;
    let own_output = dir.join(match s.machine {
        MachineSpec::Qemu(_) => "qemu.err",
        MachineSpec::Bochs(_) => "bochs.out",
    });
    let mut session = Session::start(&launch, &own_output, Mode::Batch).map_err(Failure::plain)?;
    let limits = Limits {
        timeout: Some(Duration::from_secs(s.timeout_secs)),
        grace: GRACE,
    };
    let ending = session
        .watch(&mut log, &mut monitor, &mut script, limits)
        .map_err(Failure::plain)?;
    let check = match s.machine.kind() {
        MachineKind::Qemu | MachineKind::Kvm => StatusCheck::QemuDebugExit,
        MachineKind::Bochs => StatusCheck::MarkerOnly,
    };
    let judged = match (verdict(&monitor, s.end, ending, check), script.problem()) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(input)) => Err(input),
        (Err(e), None) => Err(e),
        (Err(e), Some(input)) => Err(format!("{e}; {input}")),
    };
    // The TSC figures against the one rate, then the scenario's own figures (printed whatever
    // the verdict): arithmetic the expectations cannot do.
    let judged = match std::fs::read(&log_path) {
        Err(e) => Err(format!("cannot read {}: {e}", log_path.display())),
        Ok(bytes) => {
            let log = String::from_utf8_lossy(&bytes);
            let mut problems: Vec<String> = judged.err().into_iter().collect();
            if let Err(e) = crate::tsc::check(&log) {
                problems.push(format!("TSC figures: {e}"));
            }
            if let Some(check) = scenarios::log_check(s.name) {
                let checked = check(&log);
                for f in &checked.figures {
                    println!("  figure {}: {f}", s.name);
                }
                let path = dir.join("figures.txt");
                if let Err(e) = std::fs::write(&path, checked.figures.join("\n") + "\n") {
                    problems.push(format!("cannot write {}: {e}", path.display()));
                }
                problems.extend(checked.problem);
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        }
    };
    judged.map_err(|reason| {
        let mut details = Vec::new();
        if monitor.marker().is_none() && matches!(ending, Ending::Exited(_)) {
            let said = emulator_said(&s.machine, &own_output);
            if !said.is_empty() {
                details.push(format!("{} said:", launch.program));
                details.extend(said);
            }
        }
        if monitor.line_count() == 0 {
            details.push(format!("(the serial log {} is empty)", log_path.display()));
        } else {
            details.push(format!("last lines of {}:", log_path.display()));
            details.extend(monitor.tail().map(str::to_string));
        }
        Failure { reason, details }
    })
}

/// The emulator's own account of why it stopped: Bochs' exit message (or the end of its output),
/// QEMU's stderr.
fn emulator_said(machine: &MachineSpec, own_output: &PathBuf) -> Vec<String> {
    match machine {
        MachineSpec::Bochs(_) => {
            let text = std::fs::read(own_output)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match bochs::exit_message(&text) {
                Some(msg) => msg.lines().map(str::to_string).collect(),
                None => tail_of_file(own_output, 10),
            }
        }
        MachineSpec::Qemu(_) => tail_of_file(own_output, TAIL_LINES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Tier;

    fn args(tier: Tier, filter: Option<&str>) -> TestArgs {
        TestArgs {
            tier,
            filter: filter.map(String::from),
            kernel: None,
            list: false,
        }
    }

    #[test]
    fn tier_and_filter_select_scenarios() {
        let names = |a: &TestArgs| {
            select(scenarios::all(), a)
                .iter()
                .map(|(s, _)| s.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&args(Tier::All, None)).len(),
            scenarios::SCENARIOS.len() + scenarios::PRODUCTION_SCENARIOS.len()
        );
        let bochs = names(&args(Tier::Only(MachineKind::Bochs), None));
        assert!(bochs.contains(&"bochs-foundation") && !bochs.contains(&"qemu-foundation"));
        assert_eq!(
            names(&args(Tier::Only(MachineKind::Qemu), Some("page"))),
            ["qemu-page-fault"]
        );
        assert!(names(&args(Tier::All, Some("no-such-scenario"))).is_empty());
        assert_eq!(
            names(&args(Tier::Only(MachineKind::Kvm), Some("nvme"))),
            ["kvm-nvme-vf-guest", "kvm-linux-nvme-vf"]
        );
    }

    #[test]
    fn kvm_scenarios_run_only_where_kvm_is_usable() {
        assert!(not_runnable(MachineKind::Kvm, false).is_some());
        assert_eq!(not_runnable(MachineKind::Kvm, true), None);
        for kind in [MachineKind::Qemu, MachineKind::Bochs] {
            assert_eq!(not_runnable(kind, false), None);
            assert_eq!(not_runnable(kind, true), None);
        }
    }

    #[test]
    fn production_scenarios_boot_the_production_image_and_the_rest_the_test_image() {
        let chosen = select(scenarios::all(), &args(Tier::Only(MachineKind::Qemu), None));
        let image_of = |name: &str| chosen.iter().find(|(s, _)| s.name == name).map(|(_, i)| *i);
        assert_eq!(image_of("qemu-control"), Some(KernelImage::Test));
        assert_eq!(image_of("qemu-page-fault"), Some(KernelImage::Test));
        assert_eq!(image_of("qemu-production"), Some(KernelImage::Production));
        assert_eq!(
            image_of("qemu-production-refuses-test"),
            Some(KernelImage::Production)
        );
        // The production scenarios run after all the others.
        let first_production = chosen
            .iter()
            .position(|(_, i)| *i == KernelImage::Production)
            .expect("some");
        assert!(
            chosen[first_production..]
                .iter()
                .all(|(_, i)| *i == KernelImage::Production)
        );
    }
}
