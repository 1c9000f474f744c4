//! Upper bounds on every fixture number that drives allocation, looping or
//! the wire, checked while the fixture is parsed so the error names the
//! file, line and field (docs/fixtures.md, "Limits"). A fixture is a script
//! a person reviews; these are far above what any conversation needs and
//! far below what would exhaust memory or outlive a fixture's timeout.

use serde::{de::Error, Deserialize, Deserializer};

/// `timeout_ms` of a fixture: 10 minutes.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Every other time in a fixture (pauses, lingers, intervals): 10 minutes.
pub const MAX_PAUSE_MS: u64 = 600_000;
/// `deadline_ms`: what `grpc-timeout` carries in milliseconds (at most 8
/// digits, PROTOCOL-HTTP2.md).
pub const MAX_DEADLINE_MS: u64 = 99_999_999;
/// `send_many.count`.
pub const MAX_SEND_MANY: u64 = 10_000;
/// `reset_many.count`.
pub const MAX_RESET_MANY: u64 = 10_000;
/// `ping_flood.max`.
pub const MAX_PING_FLOOD: u64 = 10_000;
/// `filler_bytes`: 1 MiB, far above any server's header list limit.
pub const MAX_FILLER_BYTES: u64 = 1024 * 1024;
/// `frame_bytes`: the largest frame payload every peer accepts.
pub const MAX_FRAME_BYTES: u64 = 16_384;
/// `extra_length`: keeps the claimed length within a 32-bit prefix.
pub const MAX_EXTRA_LENGTH: u64 = 0x7fff_ffff;
/// Stream ids: 31 bits (RFC 9113 5.1.1).
pub const MAX_STREAM_ID: u64 = 0x7fff_ffff;

/// A number no larger than `MAX`.
pub fn at_most<'de, D, T, const MAX: u64>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<u64>,
{
    let value = T::deserialize(deserializer)?;
    check::<D, T, MAX>(value)
}

/// An optional number no larger than `MAX`.
pub fn opt_at_most<'de, D, T, const MAX: u64>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<u64>,
{
    Option::<T>::deserialize(deserializer)?
        .map(check::<D, T, MAX>)
        .transpose()
}

/// A number between 1 and `MAX`.
pub fn opt_from_one_to<'de, D, T, const MAX: u64>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<u64>,
{
    let value = opt_at_most::<D, T, MAX>(deserializer)?;
    match value.map(|v| v.try_into().unwrap_or(u64::MAX)) {
        Some(0) => Err(D::Error::custom(format!("0 is not allowed: 1 to {MAX}"))),
        _ => Ok(value),
    }
}

fn check<'de, D: Deserializer<'de>, T: Copy + TryInto<u64>, const MAX: u64>(
    value: T,
) -> Result<T, D::Error> {
    match value.try_into() {
        Ok(v) if v <= MAX => Ok(value),
        Ok(v) => Err(D::Error::custom(format!(
            "{v} is more than the {MAX} allowed"
        ))),
        Err(_) => Err(D::Error::custom(format!("more than the {MAX} allowed"))),
    }
}
