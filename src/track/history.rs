//! Zeek's history letters, kept so that copying them costs no allocation.
//!
//! A connection's history is nearly always a handful of letters (`ShADadFf`): each letter is
//! written at its 1st, 10th, 100th ... occurrence, so even a long connection has a few dozen at
//! most. A record carries it twice (its own field and its Zeek row's), and the Zeek view makes
//! a row of it: as a `String` that was four allocations per connection. Here up to
//! [`INLINE`] letters (a `String`'s own size) live in place and are copied with the value; a
//! longer history spills to the heap.

use crate::inline::InlineVec;
use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// Bytes kept in place.
const INLINE: usize = 23;

/// Letters, copied in place while they fit in [`INLINE`] bytes.
#[derive(Clone, Default)]
pub struct History(InlineVec<u8, INLINE>);

impl History {
    /// Appends a letter. Zeek's letters are ASCII and printable; anything else is kept as `?`,
    /// so that the letters never need escaping in JSON or in conn.log.
    pub fn push(&mut self, letter: u8) {
        let letter = if letter.is_ascii_graphic() && letter != b'"' && letter != b'\\' {
            letter
        } else {
            b'?'
        };
        self.0.push(letter);
    }

    /// The letters, printable ASCII other than `"` and `\\` (see [`History::push`]).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    pub fn as_str(&self) -> &str {
        // ASCII only (see `push`), so this never fails.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl From<&str> for History {
    fn from(s: &str) -> Self {
        let mut h = History::default();
        for b in s.bytes() {
            h.push(b);
        }
        h
    }
}

impl Deref for History {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for History {}

impl PartialEq<&str> for History {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_stay_in_place_up_to_the_room_and_spill_after_it() {
        let mut h = History::default();
        let mut expected = String::new();
        for i in 0..3 * INLINE {
            let letter = b'A' + (i % 26) as u8;
            h.push(letter);
            expected.push(char::from(letter));
            assert_eq!(h.as_str(), expected);
            assert_eq!(h.0.is_inline(), i < INLINE);
            assert_eq!(h.clone(), History::from(expected.as_str()));
        }
    }

    #[test]
    fn what_is_not_a_printable_letter_is_kept_as_a_question_mark() {
        let h = History::from("Sh\"A\\D\né");
        assert_eq!(h.as_str(), "Sh?A?D???");
    }
}
