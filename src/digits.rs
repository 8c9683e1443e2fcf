//! Fixed-width decimal fields (the parts of an RFC 3339 time), two digits at a time and
//! without `core::fmt`: a JSON line has a dozen and a half times.

/// "00" to "99", for two digits at a time.
const PAIRS: &[u8; 200] = b"\
      00010203040506070809101112131415161718192021222324\
      25262728293031323334353637383940414243444546474849\
      50515253545556575859606162636465666768697071727374\
      75767778798081828384858687888990919293949596979899";

/// Writes `value`'s last `digits` decimal digits at `buf[at..at + digits]`, with leading
/// zeros; nothing when that is not inside `buf`.
pub fn put_fixed(buf: &mut [u8], at: usize, value: u64, digits: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_pads_with_zeros_and_stays_inside() {
        let mut buf = *b"----------";
        put_fixed(&mut buf, 2, 7, 3);
        put_fixed(&mut buf, 6, 123_456, 4);
        assert_eq!(&buf, b"--007-3456");
        // 8..13 is not inside: nothing is written, nothing panics.
        put_fixed(&mut buf, 8, 99, 5);
        assert_eq!(&buf, b"--007-3456");
    }
}
