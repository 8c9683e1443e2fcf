//! Compact JSON for records, byte for byte what `serde_json::to_writer` writes, faster.
//!
//! serde_json escapes every string it writes, the names of struct fields included, byte by
//! byte; a record has about two hundred of them. Field names here are Rust identifiers (or
//! plain renames) and are written as they are; other strings take a fast path when nothing in
//! them needs escaping. Floats go through serde_json itself, so that their digits are its own.
//! `tests::writes_what_serde_json_writes` compares the two on every kind of value, and the
//! fixture tests compare whole outputs.

use crate::decimal::Decimal;
use serde::ser::{self, Serialize};
use std::fmt;

/// Appends `value` as compact JSON to `out`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn integer(&mut self, n: impl Decimal) {
        n.push_to(self.out);
    }

    /// Wider than [`Decimal`] takes (no record has such a number).
    fn wide_integer(&mut self, n: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn string(&mut self, s: &str) {
        push_string(s, self.out);
    }

    /// A name that needs no escaping (a struct field or enum variant), quoted.
    fn name(&mut self, s: &str) {
        push_name(s, self.out);
    }

    /// `{"variant":` before an enum variant's content.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        self.name(variant);
        self.out.push(b':');
    }

    fn float<T: Serialize>(&mut self, v: T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(|e| Error(e.to_string()))
    }
}

/// What serde_json escapes: control characters, `"` and `\`.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether nothing in `bytes` needs escaping, looked at eight bytes at a time (a record's
/// strings are mostly timestamps and names, and this test ran a byte at a time was a tenth
/// of the encoding). A word holds a byte under 0x20 when subtracting 0x20 from every byte
/// borrows into a byte whose top bit was clear, and a byte equal to `c` when the word XOR
/// `c`s holds a zero byte: both are exact tests for "some byte", the classic bit tricks.
fn clean(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & TOPS;
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        // A chunk is always 8 bytes; were it not, zeros would only send it the slow way.
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let control = below(w, 0x20);
        let quote = below(w ^ (ONES * u64::from(b'"')), 1);
        let backslash = below(w ^ (ONES * u64::from(b'\\')), 1);
        if control | quote | backslash != 0 {
            return false;
        }
    }
    !rest.iter().any(|&b| needs_escape(b))
}

/// `s` as a JSON string: quoted, escaped as serde_json escapes.
pub(super) fn push_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    escape_into(s, out);
    out.push(b'"');
}

/// A name that needs no escaping (a field, a variant, a word of the program's own), quoted.
pub(super) fn push_name(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn escape_into(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if clean(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
            b => out.push(b),
        }
    }
}

/// A sequence, map or struct being written; `close` is what ends it (`]`, `}` or `}}` for one
/// inside an enum variant).
struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    close: &'static [u8],
}

/// `{"variant":` then a compound inside it, which `close` ends along with the variant.
fn variant_compound<'w, 'a>(
    w: &'w mut Writer<'a>,
    variant: &str,
    open: u8,
    close: &'static [u8],
) -> Compound<'w, 'a> {
    w.open_variant(variant);
    compound(w, open, close)
}

/// Writes `open` and starts a compound that `close` will end.
fn compound<'w, 'a>(w: &'w mut Writer<'a>, open: u8, close: &'static [u8]) -> Compound<'w, 'a> {
    w.out.push(open);
    Compound {
        w,
        first: true,
        close,
    }
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.w)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.comma();
        self.w.name(key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Error> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.wide_integer(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.wide_integer(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.name(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        Ok(compound(self, b'[', b"]"))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        Ok(variant_compound(self, variant, b'[', b"]}"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        Ok(compound(self, b'{', b"}"))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        Ok(variant_compound(self, variant, b'{', b"}}"))
    }
}

/// The sequence-like traits: each element after a comma.
macro_rules! sequence {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    /// A key is written as a value would be, then checked: a string (a `char`, an enum's unit
    /// variant) stays, a number is quoted (as serde_json does), anything else is an error.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        let start = self.w.out.len();
        key.serialize(&mut *self.w)?;
        match self.w.out.get(start) {
            Some(b'"') => {}
            Some(b'-' | b'0'..=b'9') => {
                self.w.out.insert(start, b'"');
                self.w.out.push(b'"');
            }
            _ => {
                self.w.out.truncate(start);
                return Err(key_must_be_a_string());
            }
        }
        self.w.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

/// The struct-like traits: each field a name and a value.
macro_rules! structure {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Error> {
                Compound::end(self)
            }
        }
    )*};
}

structure!(SerializeStruct, SerializeStructVariant);

fn key_must_be_a_string() -> Error {
    Error("key must be a string".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Unit,
        Newtype(u8),
        Tuple(i32, String),
        Struct { a: Option<f64>, b: Vec<char> },
    }

    #[derive(Serialize)]
    struct Inner {
        x: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
    }

    #[derive(Serialize)]
    struct All {
        #[serde(rename = "type")]
        kind: &'static str,
        yes: bool,
        small: i8,
        big: u128,
        neg: i128,
        ratio: f64,
        nan: f64,
        tiny: f32,
        text: String,
        nothing: Option<u32>,
        unit: (),
        kinds: Vec<Kind>,
        tuple: (u16, &'static str),
        by_name: BTreeMap<&'static str, u64>,
        by_number: BTreeMap<u32, bool>,
        #[serde(flatten)]
        inner: Inner,
        bytes: &'static [u8],
    }

    #[test]
    fn clean_agrees_with_the_byte_by_byte_test_at_every_position() {
        // Every byte value, alone or at each place of strings long enough to fill one, two
        // and a part of a third word, among bytes that are clean and near the edges (0x20,
        // 0x21, 0x7f, 0xff).
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes: Vec<u8> =
                        (0..len).map(|i| [0x20, 0x21, 0x7f, 0xff][i % 4]).collect();
                    bytes[at] = b;
                    assert_eq!(
                        clean(&bytes),
                        !bytes.iter().any(|&b| needs_escape(b)),
                        "{bytes:?}"
                    );
                }
            }
        }
        // And strings of random bytes drawn mostly from around the special ones, where a
        // borrow from one byte could reach the next.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = usize::try_from(seed >> 60).unwrap_or(0) + 1;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = (seed >> (i * 3 % 48)) & 0xff;
                    [0x00, 0x1f, 0x20, 0x21, b'"', b'\\', 0x5b, 0x80, 0xff][pick as usize % 9]
                })
                .collect();
            assert_eq!(
                clean(&bytes),
                !bytes.iter().any(|&b| needs_escape(b)),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let all = All {
            kind: "connection",
            yes: true,
            small: -8,
            big: u128::MAX,
            neg: i128::MIN,
            ratio: 0.1 + 0.2,
            nan: f64::NAN,
            tiny: 1.5e-7,
            text: "quote \" backslash \\ tab \t newline \n bell \u{7} del \u{7f} é ✓".to_owned(),
            nothing: None,
            unit: (),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(7),
                Kind::Tuple(-1, "a\u{1f}b".to_owned()),
                Kind::Struct {
                    a: Some(2.5e300),
                    b: vec!['"', 'x', '\u{0}'],
                },
                Kind::Struct { a: None, b: vec![] },
            ],
            tuple: (80, "http"),
            by_name: [("a\"b", 1), ("", 2)].into_iter().collect(),
            by_number: [(443, true), (8080, false)].into_iter().collect(),
            inner: Inner {
                x: i64::MIN,
                skipped: None,
            },
            bytes: b"\x00\xff",
        };
        let mut ours = Vec::new();
        to_vec(&all, &mut ours).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }

    #[test]
    fn a_key_that_is_not_a_string_is_an_error() {
        let map: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        assert!(to_vec(&map, &mut Vec::new()).is_err());
        assert!(serde_json::to_string(&map).is_err());
    }
}
