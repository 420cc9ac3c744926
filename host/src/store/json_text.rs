//! Event fields as compact JSON text, ready to bind.
//!
//! An event's JSON columns (`input`, `output`, `metadata`, …) are stored as
//! text in SQLite and as `jsonb` in PostgreSQL. The insert path used to
//! parse each field into a `serde_json::Value`, check it, and serialise it
//! again to bind it: most of the ingest path's time went to building,
//! walking and freeing those trees. [`JsonText`] is the field as it will be
//! stored, and [`compact`] gets it straight from the request's text: one
//! pass over the bytes that drops the whitespace between tokens (so stored
//! text is the same however the client formatted it, and never holds a
//! newline that would break a JSON Lines export) and notices what still
//! needs a real parse:
//!
//! - an escaped NUL (`\u0000`), which neither backend can store: the caller
//!   parses the field to report the exact path;
//! - an object with the same key twice, or a key written with escapes: a
//!   parser keeps the last of duplicate keys while SQLite's JSON functions
//!   read the first, so such a field is parsed and re-serialised, and
//!   filters, fetch and export all see the same value.
//!
//! The text handed to [`compact`] must already be valid JSON (it comes out
//! of serde_json's `RawValue`, which checked it); the scanner relies on that
//! and does not validate again.

use std::borrow::Cow;

use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};

/// A JSON value as compact text (no whitespace between tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// Serialises a parsed value.
    pub fn from_value(value: &Value) -> Self {
        // Serialising a `Value` cannot fail: its keys are strings and its
        // numbers finite. (`to_string` would go through `fmt`, a third
        // slower.)
        let text = serde_json::to_string(value).expect("a JSON value serialises");
        Self(text.into_boxed_str())
    }

    /// Wraps the output of [`compact`], which is compact, valid JSON.
    pub(super) fn from_compact(text: String) -> Self {
        Self(text.into_boxed_str())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text back into a value (for merges into a row written
    /// earlier in the same batch).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("JsonText holds valid JSON")
    }

    /// Whether this is the JSON `null`.
    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }
}

/// What [`compact`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Compacted<'a> {
    /// The compact text, ready to store.
    Text(Cow<'a, str>),
    /// A string holds an escaped NUL character.
    HasNul,
    /// Duplicate or escaped object keys, or a number a parser might not
    /// hold (an exponent, or more than 17 digits): parse and re-serialise.
    NeedsParse,
}

/// Compacts valid JSON text; see the [module docs](self).
pub fn compact(raw: &str) -> Compacted<'_> {
    let bytes = raw.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    // The key hashes of the object open at each depth, reused across objects.
    let mut keys: Vec<Vec<u64>> = Vec::new();
    // The open containers, `true` for an object.
    let mut open: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut digits = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            digits += 1;
            if digits > 17 {
                return Compacted::NeedsParse;
            }
        } else {
            digits = 0;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                if out.is_none() {
                    out = Some(bytes[..i].to_vec());
                }
                i += 1;
                continue;
            }
            b'"' => {
                let start = i;
                let (end, escaped) = match string_end(bytes, i + 1) {
                    Ok(found) => found,
                    Err(Nul) => return Compacted::HasNul,
                };
                if expect_key {
                    if escaped {
                        return Compacted::NeedsParse;
                    }
                    let depth = open.len();
                    keys[depth - 1].push(fnv1a(&bytes[start + 1..end - 1]));
                    expect_key = false;
                }
                if let Some(out) = &mut out {
                    out.extend_from_slice(&bytes[start..end]);
                }
                i = end;
                continue;
            }
            b'{' => {
                open.push(true);
                if keys.len() < open.len() {
                    keys.resize_with(open.len(), Vec::new);
                }
                keys[open.len() - 1].clear();
                expect_key = true;
            }
            b'[' => {
                open.push(false);
                expect_key = false;
            }
            b'}' => {
                let list = &mut keys[open.len() - 1];
                if list.len() > 1 {
                    list.sort_unstable();
                    if list.windows(2).any(|w| w[0] == w[1]) {
                        return Compacted::NeedsParse;
                    }
                }
                open.pop();
                expect_key = false;
            }
            b']' => {
                open.pop();
                expect_key = false;
            }
            b',' => expect_key = open.last() == Some(&true),
            // `true`, `false` and `null`, copied whole so that their `e` is
            // not taken for an exponent.
            b't' | b'f' | b'n' => {
                let end = (i + if b == b'f' { 5 } else { 4 }).min(bytes.len());
                if let Some(out) = &mut out {
                    out.extend_from_slice(&bytes[i..end]);
                }
                i = end;
                continue;
            }
            // Outside strings and literals, only numbers have an `e`.
            b'e' | b'E' => return Compacted::NeedsParse,
            _ => {}
        }
        if let Some(out) = &mut out {
            out.push(b);
        }
        i += 1;
    }
    match out {
        None => Compacted::Text(Cow::Borrowed(raw)),
        // Only ASCII whitespace outside strings was removed.
        Some(out) => Compacted::Text(Cow::Owned(
            String::from_utf8(out).expect("removing ASCII whitespace keeps UTF-8"),
        )),
    }
}

/// An escaped NUL was found inside a string.
struct Nul;

/// The index just past the string whose first content byte is at `i`, and
/// whether it holds escapes.
fn string_end(bytes: &[u8], mut i: usize) -> Result<(usize, bool), Nul> {
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000") {
                    return Err(Nul);
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok((bytes.len(), escaped))
}

/// FNV-1a: a collision only sends the field to the slower parse path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Type<Sqlite> for JsonText {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for &'q JsonText {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        buf.push(SqliteArgumentValue::Text(Cow::Borrowed(&self.0)));
        Ok(IsNull::No)
    }
}

impl rusqlite::ToSql for JsonText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Text(self.0.as_bytes()),
        ))
    }
}

impl Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }
}

impl Encode<'_, Postgres> for &JsonText {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // jsonb's binary format: a version byte, then the text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> String {
        match compact(raw) {
            Compacted::Text(t) => t.into_owned(),
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn drops_whitespace_between_tokens_only() {
        assert_eq!(
            text("{ \"a\" : [1, 2,\n 3], \"b c\": \"x  y\" }"),
            r#"{"a":[1,2,3],"b c":"x  y"}"#
        );
        assert!(matches!(
            compact(r#"{"a":1}"#),
            Compacted::Text(Cow::Borrowed(_))
        ));
        assert_eq!(text(r#" "say \"hi\" \\" "#), r#""say \"hi\" \\""#);
    }

    #[test]
    fn finds_escaped_nul_but_not_an_escaped_backslash() {
        assert_eq!(compact(r#"{"a":["ok","n\u0000l"]}"#), Compacted::HasNul);
        assert_eq!(text(r#"{"a":"\\u0000"}"#), r#"{"a":"\\u0000"}"#);
    }

    #[test]
    fn duplicate_and_escaped_keys_need_a_parse() {
        assert_eq!(
            compact(r#"{"a":1,"b":{"a":2},"a":3}"#),
            Compacted::NeedsParse
        );
        assert_eq!(compact(r#"{"\u0061":1}"#), Compacted::NeedsParse);
        // The same key in sibling or nested objects is not a duplicate.
        assert_eq!(
            text(r#"[{"a":1},{"a":2,"b":{"a":3}}]"#),
            r#"[{"a":1},{"a":2,"b":{"a":3}}]"#
        );
        // Numbers a parser might round or refuse are checked by one.
        assert_eq!(compact("[1e400]"), Compacted::NeedsParse);
        assert_eq!(compact("[123456789012345678.5]"), Compacted::NeedsParse);
        assert_eq!(
            text("[12345678901234567, 0.25]"),
            "[12345678901234567,0.25]"
        );
        assert_eq!(text("[true, false, null]"), "[true,false,null]");
        // Escapes in values are fine.
        assert_eq!(
            text(r#"{"a":"\n","b":"\"a\""}"#),
            r#"{"a":"\n","b":"\"a\""}"#
        );
    }

    #[test]
    fn compact_text_parses_to_the_same_value() {
        let raw = "{\"x\": [ {\"k\" : \"v , }\"} , null, true, -1.5 ], \"y\":{}}";
        let parsed: Value = serde_json::from_str(raw).unwrap();
        let again: Value = serde_json::from_str(&text(raw)).unwrap();
        assert_eq!(parsed, again);
    }
}
