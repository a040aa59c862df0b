//! The one way the host writes JSON: [`JsonObject`], an object written member by member (a
//! streamed sync's decisions go out between its first and last members), each value through
//! [`Scrubbing`], a serde_json formatter that removes every secret from every string it writes
//! (object keys included), whatever type the string came from.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use crate::scrub::Scrubber;

/// A JSON object written to `out` as its members come: `{` on the first member, `}` at
/// [`JsonObject::close`]. Counts the bytes written.
pub struct JsonObject<W: Write> {
    out: W,
    scrub: Scrubber,
    /// Members written so far.
    members: usize,
    /// Elements of the array being written, if one is open.
    elements: Option<usize>,
    bytes: usize,
    /// One value's JSON, reused: the writer gets one call per value.
    scratch: Vec<u8>,
}

impl<W: Write> JsonObject<W> {
    /// An object to be written to `out`; nothing is written yet.
    pub fn new(out: W, scrub: Scrubber) -> Self {
        JsonObject { out, scrub, members: 0, elements: None, bytes: 0, scratch: Vec::new() }
    }

    /// Whether a member was written.
    pub fn started(&self) -> bool {
        self.members > 0
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Replaces the secrets removed from what is written next.
    pub fn scrub_with(&mut self, scrub: Scrubber) {
        self.scrub = scrub;
    }

    /// Writes the member `key: value`.
    pub fn member(&mut self, key: &str, value: &impl Serialize) -> io::Result<()> {
        self.key(key)?;
        self.value(value)
    }

    /// Opens the member `key: [`; its elements follow with [`JsonObject::element`].
    pub fn open_array(&mut self, key: &str) -> io::Result<()> {
        self.key(key)?;
        self.raw(b"[")?;
        self.elements = Some(0);
        Ok(())
    }

    /// Writes the next element of the open array.
    pub fn element(&mut self, value: &impl Serialize) -> io::Result<()> {
        let count = self.elements.as_mut().ok_or_else(|| io::Error::other("no array is open"))?;
        *count += 1;
        if *count > 1 {
            self.raw(b",")?;
        }
        self.value(value)
    }

    /// Closes the open array.
    pub fn close_array(&mut self) -> io::Result<()> {
        self.elements.take().ok_or_else(|| io::Error::other("no array is open"))?;
        self.raw(b"]")
    }

    /// Ends the object (an empty one if no member was written), with a newline, and flushes.
    pub fn close(mut self) -> io::Result<W> {
        if self.elements.is_some() {
            self.close_array()?;
        }
        self.raw(if self.members == 0 { b"{}\n" } else { b"}\n" })?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn key(&mut self, key: &str) -> io::Result<()> {
        if self.elements.is_some() {
            self.close_array()?;
        }
        self.raw(if self.members == 0 { b"{" } else { b"," })?;
        self.members += 1;
        self.value(&key)?;
        self.raw(b":")
    }

    fn value(&mut self, value: &impl Serialize) -> io::Result<()> {
        self.scratch.clear();
        let mut serializer = serde_json::Serializer::with_formatter(&mut self.scratch, Scrubbing::new(&self.scrub));
        value.serialize(&mut serializer).map_err(io::Error::other)?;
        self.bytes += self.scratch.len();
        self.out.write_all(&self.scratch)
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes += bytes.len();
        self.out.write_all(bytes)
    }
}

/// A compact serde_json formatter that collects each string (value or key) whole, removes the
/// scrubber's secrets from it, and only then writes it escaped: a secret split by an escape
/// (`"`, `\`, a control character) is found all the same.
pub struct Scrubbing<'a> {
    scrub: &'a Scrubber,
    /// The string being written, unescaped (reused from string to string).
    text: String,
    in_string: bool,
    /// Whether the string held a character JSON escapes.
    escaped: bool,
}

impl<'a> Scrubbing<'a> {
    pub fn new(scrub: &'a Scrubber) -> Self {
        Scrubbing { scrub, text: String::new(), in_string: false, escaped: false }
    }
}

/// Number and boolean map keys are written between `begin_string` and `end_string`: collected
/// like any other text of the string.
macro_rules! collected {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<W: ?Sized + Write>(&mut self, writer: &mut W, value: $ty) -> io::Result<()> {
            if self.in_string {
                self.text.push_str(&value.to_string());
                Ok(())
            } else {
                CompactFormatter.$method(writer, value)
            }
        }
    )*};
}

impl Formatter for Scrubbing<'_> {
    collected!(
        write_bool: bool, write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64, write_i128: i128,
        write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64, write_u128: u128, write_f32: f32,
        write_f64: f64,
    );

    fn begin_string<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.text.clear();
        self.in_string = true;
        self.escaped = false;
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, _writer: &mut W, fragment: &str) -> io::Result<()> {
        self.text.push_str(fragment);
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, _writer: &mut W, escape: CharEscape) -> io::Result<()> {
        let c = match escape {
            CharEscape::Quote => '"',
            CharEscape::ReverseSolidus => '\\',
            CharEscape::Solidus => '/',
            CharEscape::Backspace => '\u{8}',
            CharEscape::FormFeed => '\u{c}',
            CharEscape::LineFeed => '\n',
            CharEscape::CarriageReturn => '\r',
            CharEscape::Tab => '\t',
            CharEscape::AsciiControl(byte) => char::from(byte),
        };
        self.text.push(c);
        self.escaped = true;
        Ok(())
    }

    fn end_string<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.in_string = false;
        match self.scrub.text(&self.text) {
            // Most strings: no secret and nothing to escape, so the text is written as it came.
            std::borrow::Cow::Borrowed(text) if !self.escaped => {
                writer.write_all(b"\"")?;
                writer.write_all(text.as_bytes())?;
                writer.write_all(b"\"")
            }
            // Quoted and escaped as serde_json writes any string.
            clean => serde_json::to_writer(writer, clean.as_ref()).map_err(io::Error::other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(scrub: &Scrubber, build: impl FnOnce(&mut JsonObject<&mut Vec<u8>>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        let mut object = JsonObject::new(&mut out, scrub.clone());
        build(&mut object).unwrap();
        object.close().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_string_is_scrubbed_whatever_escapes_split_it() {
        let secret = "to\"k\\en\n5e3a";
        let scrub = Scrubber::new([secret]);
        let text = written(&scrub, |o| {
            let map: std::collections::BTreeMap<String, String> =
                [(format!("key {secret}"), format!("value {secret}"))].into();
            o.member("map", &map)?;
            o.member(secret, &vec![secret.to_string()])?;
            o.open_array("list")?;
            o.element(&format!("x{secret}x"))?;
            o.element(&7u64)
        });
        assert!(!text.contains("5e3a"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["map"]["key [REDACTED]"], "value [REDACTED]");
        assert_eq!(v["[REDACTED]"][0], "[REDACTED]");
        assert_eq!(v["list"][0], "x[REDACTED]x");
        assert_eq!(v["list"][1], 7);
    }

    #[test]
    fn texts_without_secrets_keep_their_escapes_and_number_keys_stay_strings() {
        let scrub = Scrubber::new(["zzz-secret"]);
        let tricky = "quote \" backslash \\ tab \t bell \u{7} é 😀 </script>";
        let text = written(&scrub, |o| {
            let map: std::collections::BTreeMap<u64, &str> = [(42, tricky)].into();
            o.member("numbers", &map)?;
            o.member("n", &-1.5f64)?;
            o.member("b", &true)
        });
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["numbers"]["42"], tricky);
        assert_eq!(v["n"], -1.5);
        assert_eq!(v["b"], true);
    }

    #[test]
    fn an_object_without_members_is_empty_and_bytes_are_counted() {
        assert_eq!(written(&Scrubber::default(), |_| Ok(())), "{}\n");
        let mut out = Vec::new();
        let mut object = JsonObject::new(&mut out, Scrubber::default());
        object.member("a", &1).unwrap();
        let bytes = object.bytes();
        object.close().unwrap();
        assert_eq!(bytes + 2, out.len(), "{}", String::from_utf8_lossy(&out));
    }
}
