//! Every guest of the run: the ones created (which the scheduler runs and the shell inspects and
//! steers), the ones refused at boot, and the VMX host they share, if this machine has one.

use super::{Guest, State, VmxHost};
use alloc::string::String;
use alloc::vec::Vec;
use conduit_shell::GuestDirectory;

/// A configured guest that was never created, and why.
#[derive(Debug, Clone)]
pub struct Refused {
    pub name: String,
    pub reason: String,
}

/// The guests and what they run on.
#[derive(Debug, Default)]
pub struct Guests {
    /// VMX, when it is on: `None` on a machine without VMX (or where VMXON failed).
    pub host: Option<VmxHost>,
    /// Why `host` is `None`, in words.
    pub no_vmx: Option<String>,
    /// The guests created, in configuration order.
    pub list: Vec<Guest>,
    /// The guests configured but not created.
    pub refused: Vec<Refused>,
    /// The guests placed on a machine without VMX (also in `refused`, with the reason): memory,
    /// EPT and functions exist, no vCPU runs them. Held for the machine's life so that what they
    /// own stays theirs; only the self-tests act on them (through the exit-path entry points).
    #[cfg_attr(
        not(feature = "selftest"),
        expect(
            dead_code,
            reason = "owned for the machine's life; read by the self-tests only"
        )
    )]
    pub without_vcpu: Vec<Guest>,
}

impl Guests {
    /// No guest, no VMX, for this reason.
    pub fn without_vmx(reason: String) -> Self {
        Self {
            no_vmx: Some(reason),
            ..Self::default()
        }
    }

    /// Whether some guest can still run.
    pub fn any_runnable(&self) -> bool {
        self.list.iter().any(|g| g.state == State::Runnable)
    }

    /// The refusal of the configured guest `name`, if it was refused.
    pub fn refusal(&self, name: &str) -> Option<&Refused> {
        self.refused.iter().find(|r| r.name == name)
    }
}

/// The shell names created guests; a guest is identified by its index in [`Guests::list`].
impl GuestDirectory for Guests {
    type Id = usize;

    fn lookup(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|g| g.name == name)
    }

    fn address_limit(&self, guest: usize) -> u64 {
        self.list.get(guest).map_or(0, Guest::memory_end)
    }
}
