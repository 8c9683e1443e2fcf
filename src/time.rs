//! Capture times for people: RFC 3339 in UTC with nanoseconds, computed without a calendar
//! library (Howard Hinnant's days-to-civil algorithm).

use crate::decimal::{eight_digits, push_i64, put_digits};
use serde::{Serialize, Serializer};
use std::fmt;

/// A time in nanoseconds since the Unix epoch that prints as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub i64);

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` is 30 bytes for years 0 to 9999...
const RFC3339_LEN: usize = 30;
/// ...of which the first 20 name the second.
const PREFIX_LEN: usize = 20;
const NANOS: i64 = 1_000_000_000;

/// Times from 2001-09-09 on (every capture's) have a second of ten decimal digits...
const SECOND_DIGITS: usize = 10;
/// ...and are this many digits as integer nanoseconds: the second's, then nine more.
const NS_DIGITS: usize = SECOND_DIGITS + 9;
const TEN_DIGIT_SECONDS: i64 = 1_000_000_000;

/// What JSON puts between a time's nanoseconds and its text (after `"time_ns":`).
const BETWEEN: &[u8; 8] = b",\"time\":";
/// `NS,"time":"TEXT"`: a time as JSON gives it both ways, for a ten-digit second...
const BOTH_LEN: usize = NS_DIGITS + BETWEEN.len() + 1 + RFC3339_LEN + 1;
/// ...where its nine digits below the second go twice, after the second's digits and after its
/// text's prefix.
const NS_FRACTION_AT: usize = SECOND_DIGITS;
const TEXT_AT: usize = NS_DIGITS + BETWEEN.len() + 1;
const TEXT_FRACTION_AT: usize = TEXT_AT + PREFIX_LEN;

/// A second's text: `NS,"time":"TEXT"` for every time in it but the nine digits below the
/// second (twice), which are left as zeros. The RFC 3339 prefix is its own part; the digits in
/// front are the second's when it has ten (not otherwise, and then they are not used).
#[derive(Clone, Copy)]
struct SecondText {
    second: i64,
    both: [u8; BOTH_LEN],
}

impl SecondText {
    fn new(second: i64) -> Option<SecondText> {
        let mut prefix = [0; PREFIX_LEN];
        Rfc3339(second.saturating_mul(NANOS)).write_prefix(&mut prefix)?;
        let mut text = SecondText {
            second,
            both: [b'0'; BOTH_LEN],
        };
        put_digits(&mut text.both, 0, second.unsigned_abs(), SECOND_DIGITS);
        put(&mut text.both, NS_DIGITS, BETWEEN);
        put(&mut text.both, TEXT_AT - 1, b"\"");
        put(&mut text.both, TEXT_AT, &prefix);
        put(&mut text.both, BOTH_LEN - 2, b"Z\"");
        Some(text)
    }

    fn prefix(&self) -> &[u8; PREFIX_LEN] {
        self.both
            .get(TEXT_AT..)
            .and_then(<[u8]>::first_chunk)
            .unwrap_or(&[0; PREFIX_LEN])
    }
}

thread_local! {
    /// The two seconds last written, the latest first, and their text: read in place (a copy
    /// would cost as much as the rest of writing a time). Two, because a record's times lie in
    /// two seconds: when it happened, and when its TIME-WAIT ends a minute later.
    static LAST_SECONDS: std::cell::RefCell<[SecondText; 2]> = const {
        std::cell::RefCell::new(
            [SecondText {
                second: i64::MIN,
                both: [0; BOTH_LEN],
            }; 2],
        )
    };
}

/// Copies `part` into `buf` at `at`; nothing when that is not inside `buf`.
fn put<const N: usize>(buf: &mut [u8], at: usize, part: &[u8; N]) {
    if let Some(to) = buf.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<N>) {
        *to = *part;
    }
}

/// The nine digits below a time's second, as two pieces that are copied as they are: put
/// together in one array first, they would be read back across the two stores that made them.
struct Fraction {
    first: [u8; 1],
    rest: [u8; 8],
}

impl Fraction {
    fn put(&self, buf: &mut [u8], at: usize) {
        put(buf, at, &self.first);
        put(buf, at + 1, &self.rest);
    }
}

impl Rfc3339 {
    /// Appends the time in double quotes, as JSON has it (no character of it needs escaping).
    /// The quotes and the text are one copy of constant length.
    pub fn push_quoted(self, out: &mut Vec<u8>) {
        let mut quoted = [b'"'; RFC3339_LEN + 2];
        let text = quoted.get_mut(1..).and_then(<[u8]>::first_chunk_mut);
        if text.is_some_and(|text| self.write_fast(text).is_some()) {
            out.extend_from_slice(&quoted);
        } else {
            out.extend_from_slice(format!("\"{self}\"").as_bytes());
        }
    }

    /// Appends `NS,"time":"TEXT"`: the time as integer nanoseconds,
    /// then as [`Rfc3339::push_quoted`] does after JSON's next field name; every time in a
    /// record is given both ways. The second's part of both is kept with its text, so what is
    /// left is the nine digits below it, written once and copied into their two places, and
    /// one copy of constant length.
    pub fn push_ns_and_time(self, out: &mut Vec<u8>) {
        let second = self.0.div_euclid(NANOS);
        let start = out.len();
        if second >= TEN_DIGIT_SECONDS
            && Self::with_second_text(second, |text| out.extend_from_slice(&text.both)).is_some()
        {
            let fraction = self.fraction();
            if let Some(both) = out.get_mut(start..) {
                fraction.put(both, NS_FRACTION_AT);
                fraction.put(both, TEXT_FRACTION_AT);
            }
            return;
        }
        push_i64(out, self.0);
        out.extend_from_slice(BETWEEN);
        self.push_quoted(out);
    }

    /// The nine digits below the second.
    fn fraction(self) -> Fraction {
        // Below 10^9: the first digit, then eight below 10^8.
        let ns = self.0.rem_euclid(NANOS) as u32;
        Fraction {
            first: [b'0' + (ns / 100_000_000) as u8],
            rest: eight_digits(ns % 100_000_000),
        }
    }

    /// Writes the time into `buf` without going through `core::fmt` (this is on the output
    /// path of every record, a dozen times or more); `None` outside years 0 to 9999 (never for
    /// an `i64` of nanoseconds, which spans 1677 to 2262), which `Display` handles. The text
    /// up to the seconds is kept per thread for the last two seconds written (a record's times
    /// lie in its own and in its TIME-WAIT's end), see [`Rfc3339::with_second_text`].
    fn write_fast(self, buf: &mut [u8; RFC3339_LEN]) -> Option<&[u8; RFC3339_LEN]> {
        Self::with_second_text(self.0.div_euclid(NANOS), |text| put(buf, 0, text.prefix()))?;
        self.fraction().put(buf, PREFIX_LEN);
        put(buf, RFC3339_LEN - 1, b"Z");
        Some(buf)
    }

    /// `use_text` with the text of a second, kept when it is one of the last two written, or
    /// made (and kept) now; `None` when the second has no RFC 3339 text (see `write_fast`).
    fn with_second_text<R>(second: i64, use_text: impl FnOnce(&SecondText) -> R) -> Option<R> {
        LAST_SECONDS.with_borrow_mut(|[latest, before]| {
            if latest.second != second {
                if before.second == second {
                    std::mem::swap(latest, before);
                } else {
                    *before = std::mem::replace(latest, SecondText::new(second)?);
                }
            }
            Some(use_text(latest))
        })
    }

    /// `YYYY-MM-DDTHH:MM:SS.`
    fn write_prefix(self, text: &mut [u8; PREFIX_LEN]) -> Option<()> {
        let (y, m, d, secs, _) = self.parts();
        if !(0..=9999).contains(&y) {
            return None;
        }
        put_digits(text, 0, y.unsigned_abs(), 4);
        put_digits(text, 5, u64::from(m), 2);
        put_digits(text, 8, u64::from(d), 2);
        put_digits(text, 11, (secs / 3600).unsigned_abs(), 2);
        put_digits(text, 14, (secs / 60 % 60).unsigned_abs(), 2);
        put_digits(text, 17, (secs % 60).unsigned_abs(), 2);
        for (at, sep) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ] {
            if let Some(b) = text.get_mut(at) {
                *b = sep;
            }
        }
        Some(())
    }

    /// Year, month, day, seconds into the day, nanoseconds into the second.
    fn parts(self) -> (i64, u32, u32, i64, i64) {
        const NS_PER_DAY: i64 = 86_400_000_000_000;
        let days = self.0.div_euclid(NS_PER_DAY);
        let in_day = self.0.rem_euclid(NS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, in_day / 1_000_000_000, in_day % 1_000_000_000)
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d, secs, nanos) = self.parts();
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; RFC3339_LEN];
        match self
            .write_fast(&mut buf)
            .map(|text| std::str::from_utf8(text))
        {
            Some(Ok(text)) => s.serialize_str(text),
            _ => s.collect_str(self),
        }
    }
}

/// Year, month, day of the day `z` days after 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration for people: "350 µs", "1.52 s", "2 m 05 s".
pub struct Human(pub i64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        let abs = ns.unsigned_abs();
        if abs < 1_000 {
            write!(f, "{ns} ns")
        } else if abs < 1_000_000 {
            write!(f, "{:.0} µs", ns as f64 / 1e3)
        } else if abs < 1_000_000_000 {
            write!(f, "{:.1} ms", ns as f64 / 1e6)
        } else if abs < 120_000_000_000 {
            write!(f, "{:.2} s", ns as f64 / 1e9)
        } else if abs < 7_200_000_000_000 {
            let s = ns / 1_000_000_000;
            write!(f, "{} m {:02} s", s / 60, s % 60)
        } else if abs < 172_800_000_000_000 {
            let m = ns / 60_000_000_000;
            write!(f, "{} h {:02} m", m / 60, m % 60)
        } else {
            let h = ns / 3_600_000_000_000;
            write!(f, "{} d {:02} h", h / 24, h % 24)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            Rfc3339(1_700_000_000_123_456_789).to_string(),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            Rfc3339(951_782_400_000_000_000).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn the_fast_path_agrees_with_display() {
        for ns in [
            0,
            1,
            999_999_999,
            1_700_000_000_123_456_789,
            951_782_400_000_000_000,
            -1,
            i64::MAX,
            i64::MIN,
            // Either side of the first instant with a ten-digit second, and a capture's time.
            999_999_999_999_999_999,
            1_000_000_000_000_000_000,
            1_796_351_912_901_956_000,
        ] {
            agrees_with_display(ns);
        }
    }

    /// The fast path, and the quoted form JSON gets, write what `Display` writes.
    fn agrees_with_display(ns: i64) {
        let t = Rfc3339(ns);
        let mut buf = [0u8; RFC3339_LEN];
        assert_eq!(
            t.write_fast(&mut buf).map(|b| b.as_slice()),
            Some(t.to_string().as_bytes()),
            "{ns}"
        );
        let mut quoted = Vec::new();
        t.push_quoted(&mut quoted);
        assert_eq!(quoted, format!("\"{t}\"").into_bytes(), "{ns}");
        let mut both = Vec::new();
        t.push_ns_and_time(&mut both);
        assert_eq!(both, format!("{ns},\"time\":\"{t}\"").into_bytes(), "{ns}");
    }

    #[test]
    fn the_second_kept_from_the_last_time_is_used_only_within_that_second() {
        // Back and forth across second, day and year boundaries, on both sides of the epoch.
        let edges = [-NANOS, 0, NANOS, 86_400 * NANOS, 1_704_067_200 * NANOS];
        for edge in edges {
            for step in [-NANOS - 1, -2, -1, 0, 1, 2, NANOS - 1, NANOS, 3, -3] {
                for ns in [edge, edge + step, edge - 1, edge + step / 2] {
                    agrees_with_display(ns);
                }
            }
        }
    }

    #[test]
    fn each_of_the_two_seconds_kept_keeps_its_own_text() {
        // A record's times, and its TIME-WAIT's end a minute on; then a third second, which
        // pushes out the one used least recently.
        let t = 1_796_351_912 * NANOS;
        let minute = 60 * NANOS;
        for ns in [
            t,
            t + minute,
            t + 5,
            t + minute + 7,
            t + 2 * minute,
            t + 9,
            t + minute,
        ] {
            agrees_with_display(ns);
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(Human(1_520_000_000).to_string(), "1.52 s");
        assert_eq!(Human(125_000_000_000).to_string(), "2 m 05 s");
        assert_eq!(Human(350_000).to_string(), "350 µs");
        assert_eq!(
            Human(3 * 3_600_000_000_000 + 60_000_000_000).to_string(),
            "3 h 01 m"
        );
        assert_eq!(Human(50 * 3_600_000_000_000).to_string(), "2 d 02 h");
    }
}
