//! `conduit.toml`: parsing and validation (host side).
//!
//! Every error names the key it is about, so a user can find the line to fix.

use crate::model::{BootConfig, ExitMethod, LogLevel, TestCase};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("conduit.toml is not valid TOML or has an unknown key: {0}")]
    Syntax(String),
    #[error("`{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    hypervisor: HypervisorSection,
    test: Option<TestSection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HypervisorSection {
    name: Option<String>,
    log_level: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSection {
    scenario: String,
}

/// Parses and validates `conduit.toml`. `exit` is the machine's way out, chosen by the runner.
pub fn parse(text: &str, exit: ExitMethod) -> Result<BootConfig, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let log_level = match file.hypervisor.log_level.as_deref() {
        None => LogLevel::Info,
        Some(name) => LogLevel::from_name(name).ok_or_else(|| {
            invalid(
                "hypervisor.log_level",
                alloc::format!(
                    "unknown level {name:?} (expected error, warn, info, debug or trace)"
                ),
            )
        })?,
    };
    let test = match file.test {
        None => None,
        Some(t) => Some(TestCase::from_name(&t.scenario).ok_or_else(|| {
            invalid(
                "test.scenario",
                alloc::format!("unknown scenario {:?}", t.scenario),
            )
        })?),
    };
    let name = file
        .hypervisor
        .name
        .unwrap_or_else(|| String::from("default"));
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "hypervisor.name",
            "must be 1-64 printable ASCII characters without spaces",
        ));
    }
    Ok(BootConfig {
        log_level,
        exit,
        test,
        name,
        guests: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: ExitMethod = ExitMethod::Halt;

    #[test]
    fn defaults() {
        let c = parse("", EXIT).unwrap();
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.test, None);
        assert_eq!(c.name, "default");
    }

    #[test]
    fn full() {
        let c = parse(
            "[hypervisor]\nname = \"ci\"\nlog_level = \"debug\"\n[test]\nscenario = \"page-fault\"\n",
            EXIT,
        )
        .unwrap();
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.test, Some(TestCase::PageFault));
        assert_eq!(c.name, "ci");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[hypervisor]\nlog_level = \"loud\"\n", EXIT).unwrap_err();
        assert!(e.to_string().starts_with("`hypervisor.log_level`"), "{e}");
        let e = parse("[test]\nscenario = \"melt\"\n", EXIT).unwrap_err();
        assert!(e.to_string().starts_with("`test.scenario`"), "{e}");
        let e = parse("[hypervisor]\nname = \"a b\"\n", EXIT).unwrap_err();
        assert!(e.to_string().starts_with("`hypervisor.name`"), "{e}");
        let e = parse("[hypervisor]\ncolour = 1\n", EXIT).unwrap_err();
        assert!(
            matches!(e, ConfigError::Syntax(ref m) if m.contains("colour")),
            "{e}"
        );
    }
}
