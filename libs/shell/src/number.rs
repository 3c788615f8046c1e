//! Numbers typed on the shell: `0x`-prefixed hexadecimal (prefix and digits case-insensitive) or
//! decimal, with `_` allowed between digits as a separator (`0xfee0_0000`, `1_048_576`).

/// Why a number did not parse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum NumberError {
    /// Nothing at all.
    #[error("empty number")]
    Empty,
    /// A prefix or separators without a digit (`0x`, `0x__`, `_`).
    #[error("no digits")]
    NoDigits,
    /// A character that is not a digit of the radix (`pos` is its byte offset in the text).
    #[error("invalid {radix_name} digit {ch:?} at offset {pos}")]
    InvalidDigit {
        /// The character.
        ch: char,
        /// Its byte offset in the text, prefix included.
        pos: usize,
        /// "hex" or "decimal".
        radix_name: &'static str,
    },
    /// The value does not fit in 64 bits.
    #[error("does not fit in 64 bits")]
    Overflow,
}

/// Parses a 64-bit unsigned number, hex with a `0x`/`0X` prefix, otherwise decimal.
pub fn parse_u64(text: &str) -> Result<u64, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    let (digits, radix, offset, radix_name) =
        match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(rest) => (rest, 16u32, 2usize, "hex"),
            None => (text, 10, 0, "decimal"),
        };
    let mut value: u64 = 0;
    let mut any_digit = false;
    for (i, ch) in digits.char_indices() {
        if ch == '_' {
            continue;
        }
        let digit = ch.to_digit(radix).ok_or(NumberError::InvalidDigit {
            ch,
            pos: offset + i,
            radix_name,
        })?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(NumberError::Overflow)?;
        any_digit = true;
    }
    if any_digit {
        Ok(value)
    } else {
        Err(NumberError::NoDigits)
    }
}
