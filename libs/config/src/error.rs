//! Configuration errors: every one names the key it is about, so a user can find the line to fix.

use alloc::string::{String, ToString};

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("conduit.toml is not valid TOML or has an unknown key: {0}")]
    Syntax(String),
    /// `key` is a dotted path: `hypervisor.log_level`, `guest[1].memory_mib` (0-based position of
    /// the `[[guest]]` table, for problems found before the name is known to be good), or
    /// `guest "hostile".image` (problems with a guest whose name is valid).
    #[error("`{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    /// The key at fault (`None` for syntax errors, whose message carries the position).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Syntax(_) => None,
            Self::Invalid { key, .. } => Some(key),
        }
    }
}

/// An [`ConfigError::Invalid`] for `key`.
pub(crate) fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}
