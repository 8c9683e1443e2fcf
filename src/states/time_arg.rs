//! `--at TIME`: RFC 3339, epoch seconds, or `+DURATION` after the capture's first packet.

use crate::cli::parse_duration;

/// An instant as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Nanoseconds since the Unix epoch.
    Absolute(i64),
    /// Nanoseconds after the capture's first packet.
    FromStart(i64),
}

impl TimeArg {
    /// The instant in nanoseconds since the epoch, given the capture's first packet.
    pub fn resolve(self, start_ns: i64) -> i64 {
        match self {
            TimeArg::Absolute(t) => t,
            TimeArg::FromStart(d) => start_ns.saturating_add(d),
        }
    }
}

const NS: i64 = 1_000_000_000;

/// Parses `2026-11-21T23:43:40.5Z` (any offset), `1795304620.5` or `+12.5s`.
pub fn parse_time(text: &str) -> Result<TimeArg, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('+') {
        return parse_duration(rest).map(TimeArg::FromStart);
    }
    if t.chars().any(|c| c.is_ascii_digit()) && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return epoch_seconds(t)
            .map(TimeArg::Absolute)
            .ok_or_else(|| format!("`{text}` is out of range"));
    }
    rfc3339(t).map(TimeArg::Absolute).ok_or_else(|| {
        format!(
            "`{text}` is not a time: use RFC 3339 (2026-11-21T23:43:40.5Z), epoch seconds \
             (1795304620.5) or an offset from the capture's first packet (+12.5s)"
        )
    })
}

/// `1795304620.123` → nanoseconds, exactly.
fn epoch_seconds(t: &str) -> Option<i64> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    secs.checked_mul(NS)?.checked_add(fraction_ns(frac)?)
}

/// The digits after a decimal point as nanoseconds (beyond nine digits truncated).
fn fraction_ns(digits: &str) -> Option<i64> {
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0;
    let mut scale = NS;
    for c in digits.chars().take(9) {
        scale /= 10;
        ns += i64::from(c.to_digit(10)?) * scale;
    }
    Some(ns)
}

/// A fixed-width run of digits at the front of `s`, and the rest.
fn digits(s: &str, n: usize) -> Option<(i64, &str)> {
    let head = s.get(..n)?;
    if !head.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, s.get(n..)?))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339(s: &str) -> Option<i64> {
    let (y, s) = digits(s, 4)?;
    let (mo, s) = digits(s.strip_prefix('-')?, 2)?;
    let (d, s) = digits(s.strip_prefix('-')?, 2)?;
    let s = s.strip_prefix(['T', 't', ' '])?;
    let (h, s) = digits(s, 2)?;
    let (mi, s) = digits(s.strip_prefix(':')?, 2)?;
    let (sec, s) = digits(s.strip_prefix(':')?, 2)?;
    let (frac, zone) = match s.strip_prefix('.') {
        Some(rest) => {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            (fraction_ns(rest.get(..end)?)?, rest.get(end..)?)
        }
        None => (0, s),
    };
    let valid = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && h < 24
        && mi < 60
        && sec <= 60;
    if !valid {
        return None;
    }
    let local = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
    let utc = local.checked_sub(zone_offset_s(zone)?)?;
    utc.checked_mul(NS)?.checked_add(frac)
}

/// `Z` or `±HH:MM` → seconds east of UTC.
fn zone_offset_s(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let (h, rest) = digits(zone.get(1..)?, 2)?;
    let (m, rest) = digits(rest.strip_prefix(':')?, 2)?;
    (rest.is_empty() && h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Rfc3339;

    #[test]
    fn three_ways_to_say_when() {
        let t = 1_795_304_620_500_000_000;
        assert_eq!(
            parse_time("2026-11-21T23:43:40.5Z"),
            Ok(TimeArg::Absolute(t))
        );
        assert_eq!(
            parse_time("2026-11-22T01:13:40.500+01:30"),
            Ok(TimeArg::Absolute(t))
        );
        assert_eq!(parse_time("1795304620.5"), Ok(TimeArg::Absolute(t)));
        assert_eq!(parse_time("+12.5s"), Ok(TimeArg::FromStart(12_500_000_000)));
        assert_eq!(parse_time("+250ms"), Ok(TimeArg::FromStart(250_000_000)));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-02-30T00:00:00Z").is_err());
        assert!(parse_time("2026-11-21T23:43:40").is_err());
        assert!(parse_time("+-3s").is_err());
    }

    #[test]
    fn round_trips_with_the_rfc3339_printer() {
        for ns in [0, 951_782_400_000_000_000, 1_700_000_000_123_456_789, -1] {
            let text = Rfc3339(ns).to_string();
            assert_eq!(parse_time(&text), Ok(TimeArg::Absolute(ns)), "{text}");
        }
    }
}
