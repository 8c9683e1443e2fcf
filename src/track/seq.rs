//! TCP sequence numbers as 32-bit serial numbers (RFC 1982, RFC 9293 §3.4).
//!
//! Sequence space wraps at 2^32, so `a < b` on the raw integers is wrong about half the time a
//! connection crosses the wrap. [`SeqNumber`] deliberately has no `Ord`/`PartialOrd`: every
//! comparison is spelled out as a serial comparison, so a wraparound bug cannot be written by
//! accident.

use std::fmt;

/// A point in a 32-bit sequence space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqNumber(u32);

impl SeqNumber {
    pub const fn new(raw: u32) -> Self {
        SeqNumber(raw)
    }

    /// The number as it appears on the wire.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The point `len` octets further on, wrapping.
    #[must_use]
    pub const fn plus(self, len: u32) -> Self {
        SeqNumber(self.0.wrapping_add(len))
    }

    /// The point `len` octets earlier, wrapping.
    #[must_use]
    pub const fn minus(self, len: u32) -> Self {
        SeqNumber(self.0.wrapping_sub(len))
    }

    /// Signed distance from `earlier` to `self`: positive when `self` is after `earlier`.
    /// Meaningful only for points less than 2^31 apart, as RFC 1982 requires.
    pub const fn distance_from(self, earlier: SeqNumber) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Octets from `earlier` up to `self`, or 0 when `self` is not after `earlier`.
    pub const fn octets_since(self, earlier: SeqNumber) -> u32 {
        let d = self.distance_from(earlier);
        if d > 0 { d as u32 } else { 0 }
    }

    /// `self` comes strictly before `other` in serial order.
    pub const fn before(self, other: SeqNumber) -> bool {
        self.distance_from(other) < 0
    }

    /// `self` comes strictly after `other` in serial order.
    pub const fn after(self, other: SeqNumber) -> bool {
        self.distance_from(other) > 0
    }

    /// `self` is `other` or comes before it.
    pub const fn at_or_before(self, other: SeqNumber) -> bool {
        !self.after(other)
    }

    /// `self` is `other` or comes after it.
    pub const fn at_or_after(self, other: SeqNumber) -> bool {
        !self.before(other)
    }

    /// The later of two points in serial order.
    #[must_use]
    pub const fn latest(self, other: SeqNumber) -> Self {
        if other.after(self) { other } else { self }
    }

    /// `start <= self < start + len`, wrapping.
    pub const fn within(self, start: SeqNumber, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq({})", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comparisons_cross_the_wrap() {
        let near_end = SeqNumber::new(u32::MAX - 10);
        let wrapped = near_end.plus(20);
        assert_eq!(wrapped.raw(), 9);
        assert!(near_end.before(wrapped));
        assert!(wrapped.after(near_end));
        assert_eq!(wrapped.distance_from(near_end), 20);
        assert_eq!(near_end.distance_from(wrapped), -20);
        assert_eq!(wrapped.octets_since(near_end), 20);
        assert_eq!(near_end.octets_since(wrapped), 0);
        assert_eq!(near_end.latest(wrapped), wrapped);
        assert!(SeqNumber::new(3).within(near_end, 20));
        assert!(!SeqNumber::new(9).within(near_end, 20));
    }

    #[test]
    fn equal_points_are_neither_before_nor_after() {
        let a = SeqNumber::new(42);
        assert!(!a.before(a) && !a.after(a));
        assert!(a.at_or_before(a) && a.at_or_after(a));
    }

    proptest! {
        #[test]
        fn plus_then_distance_round_trips(start: u32, len in 0u32..(1 << 31)) {
            let a = SeqNumber::new(start);
            let b = a.plus(len);
            prop_assert_eq!(b.distance_from(a), len as i32);
            prop_assert_eq!(b.minus(len), a);
            prop_assert!(a.at_or_before(b));
            prop_assert_eq!(len > 0, a.before(b));
            prop_assert_eq!(len > 0, b.after(a));
        }

        #[test]
        fn order_is_antisymmetric(x: u32, y: u32) {
            let (a, b) = (SeqNumber::new(x), SeqNumber::new(y));
            prop_assume!(x.wrapping_sub(y) != 1 << 31);
            prop_assert_eq!(a.before(b), b.after(a));
            prop_assert!(!(a.before(b) && b.before(a)));
            prop_assert_eq!(a == b, !a.before(b) && !b.before(a));
        }

        #[test]
        fn within_matches_distance(x: u32, start: u32, len in 0u32..(1 << 31)) {
            let (a, s) = (SeqNumber::new(x), SeqNumber::new(start));
            let d = a.distance_from(s);
            prop_assert_eq!(a.within(s, len), d >= 0 && (d as u32) < len);
        }
    }
}
