//! USD amounts as integer nano-dollars (1e-9 USD). Accounting never touches floats:
//! a decimal written in config is parsed digit by digit.

/// Nano-dollars per US dollar.
pub const NANOS_PER_USD: u64 = 1_000_000_000;

/// Parses a non-negative decimal USD amount ("0.15", "20", "2.5e-1" is refused) into
/// nano-dollars. More than nine fractional digits is an error, not a silent rounding.
pub fn parse_usd(text: &str) -> Result<u64, String> {
    let text = text.trim().trim_start_matches('$');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = match (whole.is_empty(), frac.is_empty()) {
        (false, _) => digits(whole) && (frac.is_empty() || digits(frac)),
        (true, false) => digits(frac),
        (true, true) => false,
    };
    if !valid {
        return Err(format!(
            "`{text}` is not a USD amount (expected e.g. 0.15 or 20)"
        ));
    }
    if frac.len() > 9 {
        return Err(format!(
            "`{text}` has more than 9 decimals (nano-dollar precision)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?
    };
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().unwrap_or(0) * 10u64.pow(9 - frac.len() as u32)
    };
    whole
        .checked_mul(NANOS_PER_USD)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Nano-dollars as a float of USD, for display and JSON convenience only.
pub fn nanos_to_usd(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_USD as f64
}

/// Nano-dollars as an exact decimal string ("0.000150000" trimmed to "0.00015").
pub fn format_usd(nanos: u64) -> String {
    let whole = nanos / NANOS_PER_USD;
    let frac = nanos % NANOS_PER_USD;
    if frac == 0 {
        return format!("{whole}");
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_usd("0.15"), Ok(150_000_000));
        assert_eq!(parse_usd("20"), Ok(20 * NANOS_PER_USD));
        assert_eq!(parse_usd("0.075"), Ok(75_000_000));
        assert_eq!(parse_usd(".5"), Ok(500_000_000));
        assert_eq!(parse_usd("0.000000001"), Ok(1));
        assert!(parse_usd("0.0000000001").is_err());
        assert!(parse_usd("-1").is_err());
        assert!(parse_usd("abc").is_err());
        assert!(parse_usd("1.2.3").is_err());
        assert!(parse_usd("").is_err());
        assert!(parse_usd("99999999999999999999").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["0.15", "20", "0.000000001", "1234.5"] {
            assert_eq!(format_usd(parse_usd(s).unwrap()), s);
        }
    }
}
