//! Column types that both backends store differently but read back equal,
//! and the [`Dialect`] that tells them apart: a leaf below the store and
//! the filter compiler, which both speak them (re-exported as
//! `store::{DbId, DbTime, Dialect}`).
//!
//! Identifiers ([`DbId`]) are native `uuid` in PostgreSQL and hyphenated text
//! in SQLite (sqlx would otherwise store 16-byte blobs there, unreadable to an
//! operator with the `sqlite3` shell).
//!
//! PostgreSQL keeps `created` as `timestamptz`. SQLite has no time type, so
//! timestamps are stored as fixed-width UTC text
//! (`2024-05-01T12:34:56.123456Z`): fixed width and a single time zone make
//! the lexicographic order of the text the chronological order, which is what
//! indexes, range scans and filter comparisons need. sqlx's own SQLite
//! encoding of `DateTime<Utc>` varies the number of fraction digits and so
//! does not sort; [`DbTime`] fixes the format for both directions.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

/// A UUID column: `uuid` in PostgreSQL, hyphenated lowercase text in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DbId(pub Uuid);

impl serde::Serialize for DbId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl From<DbId> for Uuid {
    fn from(value: DbId) -> Self {
        value.0
    }
}

impl From<Uuid> for DbId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl Type<Sqlite> for DbId {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbId {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbId {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Self(Uuid::parse_str(text)?))
    }
}

impl Type<Postgres> for DbId {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for DbId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbId {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<Uuid as Decode<'r, Postgres>>::decode(value)?))
    }
}

/// A UTC timestamp with microsecond precision that encodes identically
/// ordered values on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbTime(pub DateTime<Utc>);

impl DbTime {
    /// The current time, truncated to microseconds (the precision both
    /// backends keep), so a value read back equals the value written.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// The fixed-width text form used by SQLite and by the JSON API.
    pub fn to_text(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses RFC 3339 text with any offset into UTC, truncated to
    /// microseconds.
    pub fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| Self::from(t.with_timezone(&Utc)))
    }
}

impl From<DateTime<Utc>> for DbTime {
    fn from(value: DateTime<Utc>) -> Self {
        let micros = value.timestamp_micros();
        Self(Utc.timestamp_micros(micros).single().unwrap_or(value))
    }
}

impl std::fmt::Display for DbTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl serde::Serialize for DbTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_text())
    }
}

impl<'de> serde::Deserialize<'de> for DbTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DbTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.to_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Self::parse(text)?)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<DateTime<Utc> as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_is_fixed_width_and_sorts_chronologically() {
        let a = DbTime::parse("2024-05-01T12:00:00Z").unwrap();
        let b = DbTime::parse("2024-05-01T13:00:00.5+01:00").unwrap();
        let c = DbTime::parse("2024-05-01T12:00:00.000001Z").unwrap();
        assert_eq!(a.to_text(), "2024-05-01T12:00:00.000000Z");
        assert_eq!(b.to_text(), "2024-05-01T12:00:00.500000Z");
        assert!(a.to_text() < c.to_text() && c.to_text() < b.to_text());
        assert!(a < c && c < b);
    }

    #[test]
    fn truncates_to_microseconds() {
        let t = DbTime::parse("2024-05-01T12:00:00.123456789Z").unwrap();
        assert_eq!(t.to_text(), "2024-05-01T12:00:00.123456Z");
    }
}

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3 (bundled with sqlx).
    Sqlite,
    /// PostgreSQL 12 or later.
    Postgres,
}
