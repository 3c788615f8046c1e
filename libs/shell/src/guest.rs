//! Guest names on the shell: syntax, and resolution against the guests the kernel runs.

/// Longest guest name, in bytes.
pub const GUEST_NAME_MAX: usize = 32;

/// Why a word is not a guest name.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum GuestNameError {
    /// Empty.
    #[error("empty guest name")]
    Empty,
    /// More than [`GUEST_NAME_MAX`] bytes.
    #[error("guest name is {len} bytes long (at most 32)")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `[a-z0-9_-]`.
    #[error("guest names use a-z, 0-9, '_' and '-'; {ch:?} at offset {pos} is not allowed")]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
}

/// Checks the syntax of a guest name: 1..=32 bytes of `[a-z0-9_-]`.
pub fn validate_guest_name(name: &str) -> Result<(), GuestNameError> {
    if name.is_empty() {
        return Err(GuestNameError::Empty);
    }
    if let Some((pos, ch)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
    {
        return Err(GuestNameError::InvalidChar { ch, pos });
    }
    if name.len() > GUEST_NAME_MAX {
        return Err(GuestNameError::TooLong { len: name.len() });
    }
    Ok(())
}

/// The guests a command may name, as the kernel knows them.
pub trait GuestDirectory {
    /// How the kernel identifies a guest.
    type Id: Copy;

    /// The guest called `name` (already syntactically valid), if there is one.
    fn lookup(&self, name: &str) -> Option<Self::Id>;

    /// Exclusive upper bound of the guest-physical addresses a command may name for `guest`
    /// (its memory size).
    fn address_limit(&self, guest: Self::Id) -> u64;
}

/// One guest of a plain list: a name and a memory size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GuestEntry<'n> {
    /// Its name.
    pub name: &'n str,
    /// Its memory size in bytes: guest-physical addresses run from 0 below this.
    pub memory_size: u64,
}

/// A slice of entries is a directory; a guest is identified by its index.
impl GuestDirectory for [GuestEntry<'_>] {
    type Id = usize;

    fn lookup(&self, name: &str) -> Option<usize> {
        self.iter().position(|g| g.name == name)
    }

    fn address_limit(&self, guest: usize) -> u64 {
        self.get(guest).map_or(0, |g| g.memory_size)
    }
}
