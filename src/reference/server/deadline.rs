//! `grpc-timeout` (PROTOCOL-HTTP2.md: `TimeoutValue TimeoutUnit`, at most 8
//! ASCII digits and one unit of `H M S m u n`).
//!
//! A malformed value is refused with INTERNAL, as grpc-go does ("malformed
//! grpc-timeout"), rather than ignored as tonic does: a client that sends a
//! deadline it thinks is honoured must not get an unbounded call silently.

use std::time::Duration;

/// A `grpc-timeout` that does not follow the spec's grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed grpc-timeout {value:?}: expected 1 to 8 digits and a unit of H, M, S, m, u, n")]
pub struct MalformedTimeout {
    /// The value as received (lossy when not ASCII).
    pub value: String,
}

/// Parses a `grpc-timeout` value.
pub fn parse_grpc_timeout(raw: &[u8]) -> Result<Duration, MalformedTimeout> {
    let malformed = || MalformedTimeout {
        value: String::from_utf8_lossy(raw).into_owned(),
    };
    let (unit, digits) = raw.split_last().ok_or_else(malformed)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    // Eight digits always fit: the value is at most 99_999_999.
    let value: u64 = std::str::from_utf8(digits)
        .map_err(|_| malformed())?
        .parse()
        .map_err(|_| malformed())?;
    Ok(match unit {
        b'H' => Duration::from_secs(value * 3600),
        b'M' => Duration::from_secs(value * 60),
        b'S' => Duration::from_secs(value),
        b'm' => Duration::from_millis(value),
        b'u' => Duration::from_micros(value),
        b'n' => Duration::from_nanos(value),
        _ => return Err(malformed()),
    })
}

/// The Observer's `timeout_ms`: rounded up, so a sub-millisecond deadline
/// does not read as "no deadline" (0).
pub fn observer_millis(timeout: Duration) -> i64 {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    i64::try_from(millis).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit() {
        let cases: [(&str, Duration); 6] = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("4S", Duration::from_secs(4)),
            ("250m", Duration::from_millis(250)),
            ("99999999u", Duration::from_micros(99_999_999)),
            ("7n", Duration::from_nanos(7)),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_grpc_timeout(raw.as_bytes()), Ok(want), "{raw}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        for raw in [
            "",
            "m",
            "123456789m",
            "12x",
            "-5S",
            " 5S",
            "5 S",
            "1.5S",
            "5s",
        ] {
            assert!(parse_grpc_timeout(raw.as_bytes()).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn observer_millis_round_up() {
        assert_eq!(observer_millis(Duration::from_micros(1)), 1);
        assert_eq!(observer_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(observer_millis(Duration::ZERO), 0);
    }
}
