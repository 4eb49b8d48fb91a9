//! Durations as Prometheus writes them, so values can be copied between the two configs.
//!
//! Hand-written rather than `humantime`: its grammar is not Prometheus's (it takes `1h 30m`, units in any
//! order and a 365.25-day year), and several of its errors give only a byte offset ("invalid character
//! at 2") where these quote the value and say what to write.

use std::time::Duration;

pub(super) const SECOND: u64 = 1_000;
pub(super) const MINUTE: u64 = 60 * SECOND;
pub(super) const HOUR: u64 = 60 * MINUTE;
pub(super) const DAY: u64 = 24 * HOUR;

/// Duration units in the order Prometheus requires them, with their size in milliseconds.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("y", 365 * DAY),
    ("w", 7 * DAY),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", 1),
];

/// Parses a duration the way Prometheus writes them (`500ms`, `30s`, `1h30m`, `7d`, `1w`, `1y`), so a
/// user can copy values between the two. Units go from largest to smallest, each at most once; `0` alone
/// means zero. The error says what is wrong without naming the key: callers add that.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration: write for example 30s, 5m or 1h30m".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!(
            "{text:?} is negative: a duration must be 0 or more"
        ));
    }
    if text.contains('.') {
        return Err(format!(
            "{text:?} has a fraction: use whole numbers of smaller units (1h30m rather than 1.5h)"
        ));
    }
    let mut total: u64 = 0;
    let mut previous_unit: Option<usize> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let (unit, next) = after.split_at(
            after
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(after.len()),
        );
        let unit_index = duration_unit(text, number, unit)?;
        if previous_unit.is_some_and(|previous| unit_index <= previous) {
            return Err(format!(
                "{text:?}: units must go from largest to smallest, each at most once (for example 1h30m)"
            ));
        }
        let too_large = || format!("{text:?} is too large");
        let count: u64 = number.parse().map_err(|_| too_large())?;
        total = count
            .checked_mul(DURATION_UNITS[unit_index].1)
            .and_then(|millis| total.checked_add(millis))
            .ok_or_else(too_large)?;
        previous_unit = Some(unit_index);
        rest = next;
    }
    Ok(Duration::from_millis(total))
}

/// Finds `unit` in [`DURATION_UNITS`], or explains what is wrong with one number-and-unit part.
fn duration_unit(text: &str, number: &str, unit: &str) -> Result<usize, String> {
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration: write for example 30s, 5m or 1h30m"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit: write for example {number}s or {number}m"
        ));
    }
    DURATION_UNITS
        .iter()
        .position(|(name, _)| *name == unit)
        .ok_or_else(|| {
            format!("{text:?} has an unknown unit {unit:?} (use ms, s, m, h, d, w or y)")
        })
}

/// Writes a duration so that [`parse_duration`] reads it back: `7d`, `1m30s`, `0s`. Days are the largest
/// unit, because "7d" reads better than "1w" in a config summary. Millisecond precision.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", SECOND),
        ("ms", 1),
    ] {
        let size = u128::from(size);
        let count = millis / size;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            millis -= count * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_prometheus() {
        let cases: [(&str, u64); 13] = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("30s", 30 * SECOND),
            ("10m", 10 * MINUTE),
            ("36h", 36 * HOUR),
            ("7d", 7 * DAY),
            ("1w", 7 * DAY),
            ("1y", 365 * DAY),
            ("1h30m", 90 * MINUTE),
            ("1m30s", 90 * SECOND),
            ("2d12h", 60 * HOUR),
            (
                "1y2w3d4h5m6s7ms",
                365 * DAY + 17 * DAY + 4 * HOUR + 5 * MINUTE + 6 * SECOND + 7,
            ),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_durations_say_why() {
        let cases = [
            ("", "empty duration: write for example 30s, 5m or 1h30m"),
            ("-1s", r#""-1s" is negative: a duration must be 0 or more"#),
            ("10", r#""10" has no unit: write for example 10s or 10m"#),
            (
                "5x",
                r#""5x" has an unknown unit "x" (use ms, s, m, h, d, w or y)"#,
            ),
            (
                "1.5h",
                r#""1.5h" has a fraction: use whole numbers of smaller units (1h30m rather than 1.5h)"#,
            ),
            (
                "s",
                r#""s" is not a duration: write for example 30s, 5m or 1h30m"#,
            ),
            (
                "30m1h",
                r#""30m1h": units must go from largest to smallest, each at most once (for example 1h30m)"#,
            ),
            (
                "1m1m",
                r#""1m1m": units must go from largest to smallest, each at most once (for example 1h30m)"#,
            ),
            (
                "99999999999999999999s",
                r#""99999999999999999999s" is too large"#,
            ),
            ("999999999999y", r#""999999999999y" is too large"#),
        ];
        for (text, message) in cases {
            assert_eq!(parse_duration(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn durations_format_with_days_as_the_largest_unit() {
        let cases: [(u64, &str); 8] = [
            (0, "0s"),
            (500, "500ms"),
            (90 * SECOND, "1m30s"),
            (5 * MINUTE, "5m"),
            (36 * HOUR, "1d12h"),
            (7 * DAY, "7d"),
            (365 * DAY, "365d"),
            (DAY + HOUR + MINUTE + SECOND + 1, "1d1h1m1s1ms"),
        ];
        for (millis, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(millis)), text);
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
    }

    #[test]
    fn formatted_durations_parse_back() {
        for millis in [
            0,
            1,
            999,
            1000,
            61_001,
            3_600_000,
            86_399_999,
            7 * DAY,
            400 * DAY + 1,
        ] {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        for text in ["0s", "500ms", "1m30s", "7d", "1d12h", "3d4h5m6s7ms"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(format_duration(duration), text);
        }
    }
}
