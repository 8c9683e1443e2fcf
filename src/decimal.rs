//! Integers as decimal text, written straight into an output buffer.
//!
//! A record is mostly numbers: packet numbers, ports, address octets, counters. `itoa` writes
//! a number into a buffer of its own, from which the digits go out in a copy of their length,
//! unknown when compiling: a call to `memcpy` a number. Here up to eight digits are made at
//! once in a register (`digit_values`), stored in one eight-byte write, and the output cut
//! back to the digits: no call, and no store read back. With the profile-guided build
//! (`bench/pgo.sh`) on the benchmark's many-connection capture, one thread, this ran 1.5 %
//! fewer instructions than itoa did and took the JSON writing (with every `memmove`) from
//! about 24 % to about 23 % of the perf samples; in the plain build, 0.8 % fewer instructions
//! and about the same share.
//!
//! [`put_digits`] writes fixed-width fields (the parts of a date) two digits at a time.

/// "00" to "99", for two digits at a time.
const PAIRS: &[u8; 200] = b"\
      00010203040506070809101112131415161718192021222324\
      25262728293031323334353637383940414243444546474849\
      50515253545556575859606162636465666768697071727374\
      75767778798081828384858687888990919293949596979899";

/// Writes `value`'s last `digits` decimal digits at `buf[at..at + digits]`, with leading
/// zeros; nothing when that is not inside `buf`.
pub fn put_digits(buf: &mut [u8], at: usize, value: u64, digits: usize) {
    let Some(field) = buf.get_mut(at..at.saturating_add(digits)) else {
        return;
    };
    let mut v = value;
    let mut pairs = field.rchunks_exact_mut(2);
    for pair in &mut pairs {
        let i = (v % 100) as usize * 2;
        v /= 100;
        if let Some(from) = PAIRS.get(i..i + 2) {
            pair.copy_from_slice(from);
        }
    }
    if let Some(first) = pairs.into_remainder().first_mut() {
        *first = b'0' + (v % 10) as u8;
    }
}

/// Appends `n` in decimal, as `itoa` and serde_json write it.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    // Most counters of a record are 0 or a few: one digit, pushed without a copy or a call.
    // Nearly every other number is below 10^8 (packet numbers, ports, octets): one piece, in
    // a function of its own that the rarer longer numbers do not weigh down.
    if n < 10 {
        out.push(b'0' + n as u8);
    } else {
        push_digits(out, n);
    }
}

/// [`push_u64`] for `n` of two digits or more.
fn push_digits(out: &mut Vec<u8>, n: u64) {
    match u32::try_from(n) {
        Ok(short) if short < E8 => push_front(out, short),
        _ => push_long(out, n),
    }
}

const E8: u32 = 100_000_000;

/// [`push_u64`] for `n` of 10^8 or more, in pieces of eight digits: the front one as many
/// digits as it has, every later one all eight. Cold: kept out of [`push_digits`], whose
/// every call would otherwise set up the registers this takes.
#[cold]
fn push_long(out: &mut Vec<u8>, n: u64) {
    let e8 = u64::from(E8);
    // Each piece is below 10^8, so fits a `u32`.
    if n < e8 * e8 {
        push_front(out, (n / e8) as u32);
    } else {
        push_front(out, (n / e8 / e8) as u32);
        push_eight(out, (n / e8 % e8) as u32);
    }
    push_eight(out, (n % e8) as u32);
}

/// Appends `n` (below 10^8) with as many digits as it has: all eight are made, the leading
/// zeros shifted out, and the eight bytes copied and cut back.
fn push_front(out: &mut Vec<u8>, n: u32) {
    let values = digit_values(n);
    // The leading zeros are the low bytes that are zero; one digit stays when `n` is 0.
    let zeros = (values.trailing_zeros() / 8).min(7) as usize;
    let text = to_ascii(values) >> (8 * zeros);
    let keep = out.len() + 8 - zeros;
    out.extend_from_slice(&text.to_le_bytes());
    out.truncate(keep);
}

/// Appends `n` (below 10^8) as eight digits, with leading zeros.
fn push_eight(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&eight_digits(n));
}

/// `n` (below 10^8) as eight ASCII digits, with leading zeros.
pub fn eight_digits(n: u32) -> [u8; 8] {
    to_ascii(digit_values(n)).to_le_bytes()
}

/// The eight decimal digits of `n` (below 10^8), one a byte, the first in the lowest byte (so
/// that `to_le_bytes` gives them in order), made in one register: the digits were first made
/// in memory two at a time, and reading them back as one piece to copy them out stalled on
/// those stores (perf put a third of the writer's samples on that copy).
///
/// The number is split in halves of four digits, each half in pairs, each pair in digits,
/// every split done on all the parts at once: the parts sit in lanes of 32, then 16, then 8
/// bits, and a division is a multiplication by a scaled reciprocal and a shift, exact in this
/// range (`x * 10486 >> 20 == x / 100` for `x < 10,000`, `x * 103 >> 10 == x / 10` for
/// `x < 100`). No lane's product reaches the next lane up; what a shift brings down from the
/// lane above falls outside the mask.
fn digit_values(n: u32) -> u64 {
    let halves = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    let hundreds = ((halves * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let pairs = hundreds | ((halves - hundreds * 100) << 16);
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    tens | ((pairs - tens * 10) << 8)
}

/// Digit values (0 to 9, one a byte) as ASCII digits.
fn to_ascii(values: u64) -> u64 {
    values + 0x3030_3030_3030_3030
}

/// Appends `n` in decimal, a minus sign first when it is negative.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends an address as text: IPv4 as four decimal octets, IPv6 as the standard library
/// writes it (compressed by rules best left to it; rarer).
pub fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            push_u64(out, a.into());
            for octet in [b, c, d] {
                out.push(b'.');
                push_u64(out, octet.into());
            }
        }
        std::net::IpAddr::V6(v6) => out.extend_from_slice(v6.to_string().as_bytes()),
    }
}

/// Every primitive integer of 64 bits or fewer, written in decimal.
pub trait Decimal: Copy {
    /// Appends the number in decimal, as `itoa` and serde_json write it.
    fn push_to(self, out: &mut Vec<u8>);
}

macro_rules! decimal {
    ($via:ident: $($t:ty),*) => {$(
        impl Decimal for $t {
            #[inline]
            fn push_to(self, out: &mut Vec<u8>) {
                // Lossless: every such type fits the one written.
                $via(out, self as _);
            }
        }
    )*};
}

decimal!(push_u64: u8, u16, u32, u64, usize);
decimal!(push_i64: i8, i16, i32, i64, isize);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(n: impl Decimal) -> String {
        let mut out = b"x".to_vec();
        n.push_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_length_and_the_extremes_are_written_as_itoa_writes_them() {
        let mut unsigned = vec![0, u64::MAX, u64::MAX - 1];
        let mut power = 1u64;
        while let Some(next) = power.checked_mul(10) {
            unsigned.extend([power - 1, power, power + 1]);
            power = next;
        }
        for n in unsigned {
            assert_eq!(written(n), format!("x{n}"));
        }
        for n in [i64::MIN, i64::MIN + 1, -10, -9, -1, 0, 1, i64::MAX] {
            assert_eq!(written(n), format!("x{n}"));
        }
        assert_eq!(written(u8::MAX), "x255");
        assert_eq!(written(i8::MIN), "x-128");
        assert_eq!(written(u16::MAX), "x65535");
        assert_eq!(written(i32::MIN), "x-2147483648");
    }

    #[test]
    fn fixed_width_pads_with_zeros_and_stays_inside() {
        let mut buf = *b"----------";
        put_digits(&mut buf, 2, 7, 3);
        put_digits(&mut buf, 6, 123_456, 4);
        assert_eq!(&buf, b"--007-3456");
        // 8..13 is not inside: nothing is written, nothing panics.
        put_digits(&mut buf, 8, 99, 5);
        assert_eq!(&buf, b"--007-3456");
    }

    #[test]
    fn digits_are_right_for_every_small_number_and_at_every_length() {
        let mut numbers: Vec<u32> = (0..100_000).collect();
        let mut power = 10;
        while power <= 100_000_000 {
            numbers.extend([power - 1, power / 2, power / 10 * 9 + 1]);
            power *= 10;
        }
        for n in numbers {
            assert_eq!(eight_digits(n), *format!("{n:08}").as_bytes());
        }
    }

    proptest! {
        #[test]
        fn digits_of_any_number_below_ten_to_the_eight(n in 0..100_000_000u32) {
            prop_assert_eq!(eight_digits(n).to_vec(), format!("{n:08}").into_bytes());
        }

        #[test]
        fn any_integer_is_written_as_itoa_writes_it(u in any::<u64>(), i in any::<i64>()) {
            prop_assert_eq!(written(u), format!("x{}", itoa::Buffer::new().format(u)));
            prop_assert_eq!(written(i), format!("x{}", itoa::Buffer::new().format(i)));
        }
    }
}
