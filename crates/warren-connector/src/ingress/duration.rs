//! Durations in settings: Go-style text (`1m30s`) or whole seconds.

use std::time::Duration;

use serde_norway::Value;

use super::parse::untag;

/// Reads a duration setting: Go-style text (`1m30s`) or a number of
/// seconds. `Err(Some((value as written, reason)))` for a bad duration,
/// `Err(None)` for a value that is not a duration at all (a list, ...).
pub(super) fn duration_value(value: &Value) -> Result<Duration, Option<(String, String)>> {
    let bad = |value: String, reason: &str| Some((value, reason.to_string()));
    match untag(value) {
        Value::String(text) => {
            parse_duration(text).map_err(|reason| Some((text.clone(), reason.to_string())))
        }
        Value::Number(n) => {
            let shown = n.to_string();
            if let Some(secs) = n.as_u64() {
                if secs > MAX_SECS {
                    return Err(bad(shown, TOO_LARGE));
                }
                Ok(Duration::from_secs(secs))
            } else if n.as_i64().is_some() {
                Err(bad(shown, "it is negative"))
            } else {
                match n.as_f64() {
                    Some(secs) if secs.is_nan() => Err(bad(shown, "it is not a number")),
                    Some(secs) if secs < 0.0 => Err(bad(shown, "it is negative")),
                    Some(secs) if secs <= MAX_SECS as f64 => {
                        Duration::try_from_secs_f64(secs).map_err(|_| bad(shown, TOO_LARGE))
                    }
                    _ => Err(bad(shown, TOO_LARGE)),
                }
            }
        }
        Value::Bool(b) => Err(bad(b.to_string(), "it is not a duration")),
        _ => Err(None),
    }
}

/// Longest accepted duration: what fits in `u64` nanoseconds (about 584
/// years), so callers can convert without overflow surprises.
const MAX_SECS: u64 = u64::MAX / 1_000_000_000;
const MAX_NANOS: u128 = u64::MAX as u128;
const TOO_LARGE: &str = "it is too large";

/// Why a duration could not be read. Each text completes "... is not a
/// duration: <reason>".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("it is empty")]
    Empty,
    /// A minus sign.
    #[error("it is negative")]
    Negative,
    /// A sign and nothing else.
    #[error("it has no number")]
    NoNumber,
    /// Something other than a number where one must be.
    #[error("expected a number at \"{0}\"")]
    ExpectedNumber(String),
    /// A number without a unit.
    #[error("\"{0}\" has no unit (use ns, us, ms, s, m or h)")]
    NoUnit(String),
    /// A unit Warren does not know.
    #[error("unknown unit \"{0}\" (use ns, us, ms, s, m or h)")]
    UnknownUnit(String),
    /// More than about 584 years.
    #[error("it is too large")]
    TooLarge,
}

/// Parses a Go-style duration (`30s`, `1m30s`, `1.5h`, `500ms`, `250us`,
/// `10ns`), or a plain whole number of seconds (`30`).
///
/// Negative durations and those over about 584 years are rejected.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) if secs <= MAX_SECS => Ok(Duration::from_secs(secs)),
            _ => Err(DurationError::TooLarge),
        };
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(DurationError::NoNumber);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        let number = &rest[..rest.len() - after_number.len()];
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::ExpectedNumber(rest.to_owned()));
        }
        let unit_len: usize = after_number
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '.')
            .map(char::len_utf8)
            .sum();
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(DurationError::NoUnit(number.to_owned())),
            _ => return Err(DurationError::UnknownUnit(unit.to_owned())),
        };
        // At most 39 digits fit in u128; anything longer is too large anyway.
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationError::TooLarge)?
        };
        // Fractions finer than a nanosecond of an hour are irrelevant: keep
        // 18 digits, enough for any unit, and never overflow.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        let frac_value: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| DurationError::TooLarge)?
        };
        let frac_nanos = frac_value * unit_nanos / 10u128.pow(frac_digits.len() as u32);
        total = int_value
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or(DurationError::TooLarge)?;
        rest = after_unit;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::TooLarge)
}
