//! Sizes in bytes, as people write them: `16MiB`, `512KiB`, `20MB` or a plain number of bytes.
//!
//! Hand-written rather than `bytesize`: its parser takes fractions (`1.5MiB`, truncated) and answers
//! "couldn't parse … into a known SI unit" where this one lists the units and their powers.

/// Units by name and size. `KB`, `MB`, `GB` are decimal (powers of 1000) and `KiB`, `MiB`, `GiB`
/// binary (powers of 1024), as their names say; `kB` is the SI spelling of `KB`.
const SIZE_UNITS: [(&str, u64); 8] = [
    ("B", 1),
    ("KB", 1_000),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

/// Parses a size: a whole number, optionally followed by one unit of [`SIZE_UNITS`]. The error
/// says what is wrong without naming the key: callers add that.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim_start();
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size: write a whole number of bytes or one with a unit, such as 16MiB"
        ));
    }
    let Some(&(_, scale)) = SIZE_UNITS
        .iter()
        .find(|(name, _)| *name == unit || unit.is_empty())
    else {
        return Err(format!(
            "{text:?} has an unknown unit {unit:?}: use B, KB, MB, GB (powers of 1000) or KiB, MiB, \
             GiB (powers of 1024)"
        ));
    };
    let scale = if unit.is_empty() { 1 } else { scale };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Writes a size in the largest binary unit that holds it exactly, else in bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("3kB"), Ok(3_000));
        assert_eq!(parse_size("3KB"), Ok(3_000));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
    }

    #[test]
    fn what_is_not_a_size_says_why() {
        assert!(parse_size("MiB").unwrap_err().contains("is not a size"));
        assert!(parse_size("").unwrap_err().contains("is not a size"));
        assert!(parse_size("-1MiB").unwrap_err().contains("is not a size"));
        assert!(
            parse_size("1.5MiB")
                .unwrap_err()
                .contains("unknown unit \".5MiB\"")
        );
        assert!(parse_size("16mib").unwrap_err().contains("unknown unit"));
        assert!(parse_size("16M").unwrap_err().contains("unknown unit"));
        assert!(
            parse_size("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(2048), "2KiB");
        assert_eq!(format_size(20_000_000), "20000000B");
        assert_eq!(format_size(1), "1B");
    }
}
