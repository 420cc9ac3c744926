//! The filter language of alerts and queries: Braintrust's SQL filter style.
//!
//! A filter is one SQL boolean expression over the fields of an event row,
//! for example
//!
//! ```text
//! error IS NOT NULL AND metadata.environment = 'production'
//! metadata.model IN ('gpt-4o', 'gpt-4.1') AND (error IS NOT NULL OR scores.accuracy < 0.8)
//! tags INCLUDES 'flagged' AND input MATCH 'refund'
//! created > now() - interval 1 hour
//! ```
//!
//! It is parsed with the `sqlparser` crate ([`parse`]), checked against an
//! allow-list and typed ([`check`]), and compiled to parameterised SQL for
//! SQLite or PostgreSQL ([`compile`]). No text from the filter is ever
//! spliced into SQL: literals and JSON keys become bind parameters.
//!
//! # Reference
//!
//! **Fields**: `id`, `span_id`, `root_span_id` (strings), `is_root`
//! (boolean), `created` (timestamp), `_xact_id` (number), and the JSON fields
//! `input`, `output`, `expected`, `error`, `scores`, `metrics`, `metadata`,
//! `tags`, `span_parents`, `span_attributes`, `context`. Paths go into JSON
//! fields with dots and brackets: `metadata.user.plan`, `metadata."odd key"`,
//! `metadata.items[0]`, `metadata['key']`. Top-level field names ignore case;
//! keys are case-sensitive (`scores.Factuality`).
//!
//! **Types**: a JSON value takes the type of what it is compared with:
//! `scores.accuracy < 0.8` reads `accuracy` as a number, `metadata.env =
//! 'prod'` as a string. A value of another type (or a missing one) reads as
//! null, so the comparison is not true. Two JSON values cannot be compared
//! with each other.
//!
//! **Operators**: `AND`, `OR`, `NOT`, parentheses (usual SQL precedence:
//! `NOT` > `AND` > `OR`); `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`; `IS [NOT]
//! NULL`; `IS [NOT] TRUE|FALSE`; `[NOT] IN (…)`; `[NOT] BETWEEN … AND …`;
//! `[NOT] LIKE` and `[NOT] ILIKE` (`%`, `_`, escape `\`); `+ - * /` on
//! numbers (division by zero is null); `field [NOT] INCLUDES value` (the
//! field is an array containing the value); `field [NOT] MATCH 'text'` (some
//! string inside the field contains the text, ignoring case).
//!
//! **Null semantics** are SQL's: comparisons with a missing value are
//! unknown, and `NOT unknown` is unknown, so `NOT (scores.x < 0.5)` does not
//! match rows without `scores.x`. `IS NULL` is true for missing values and
//! JSON nulls alike. `INCLUDES`, `MATCH`, `IS TRUE/FALSE` are never unknown.
//!
//! **Time**: `created` compares with `now()` (also `current_timestamp`),
//! `now() - interval 1 hour`, `now() - interval '30 minutes'` (units:
//! second, minute, hour, day, week, singular or plural), and timestamp
//! strings: RFC 3339 (`'2024-05-01T12:00:00Z'`), `'2024-05-01 12:00:00'` or
//! `'2024-05-01'` (UTC). `now()` is evaluated each time the filter runs.
//!
//! Everything else — other functions, subqueries, casts, comments, `;` — is
//! rejected with a [`FilterError`] that says what and where.

pub mod ast;
pub mod check;
pub mod compile;
pub mod parse;
#[cfg(test)]
mod tests;
pub mod time;

use sqlparser::tokenizer::Location;

pub use compile::{CompiledFilter, Param, SqlPart};

use crate::columns::{DbTime, Dialect};

/// A filter that failed to parse or check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at line {line}, column {column})")]
pub struct FilterError {
    /// What is wrong.
    pub message: String,
    /// 1-based line of the offending text.
    pub line: u64,
    /// 1-based column (in characters) of the offending text.
    pub column: u64,
}

impl FilterError {
    pub(crate) fn at(message: impl Into<String>, location: Location) -> Self {
        Self {
            message: message.into(),
            line: location.line.max(1),
            column: location.column.max(1),
        }
    }

    /// An error at where `expr` starts in the source (line 1, column 1
    /// when the parser kept no place for it).
    pub(crate) fn at_expr(expr: &sqlparser::ast::Expr, message: impl Into<String>) -> Self {
        use sqlparser::ast::Spanned;
        let start = expr.span().start;
        let location = if start.line == 0 {
            Location::new(1, 1)
        } else {
            start
        };
        Self::at(message, location)
    }

    /// The 0-based character offset of the error in `source`.
    pub fn offset_in(&self, source: &str) -> usize {
        let mut offset = 0;
        for (i, line) in source.split('\n').enumerate() {
            if i as u64 + 1 == self.line {
                return offset + (self.column as usize - 1).min(line.chars().count());
            }
            offset += line.chars().count() + 1;
        }
        offset
    }
}

/// A parsed and checked filter, ready to compile for either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    source: String,
    pred: ast::Pred,
}

impl Filter {
    /// Parses and checks `source`, within [`crate::sql_budget::FILTER_BUDGET`]:
    /// a filter that parses also runs on both backends. The work happens on
    /// a deep stack, so no filter text can overflow the caller's.
    pub fn parse(source: &str) -> Result<Filter, FilterError> {
        crate::sql_budget::on_deep_stack(|| {
            let expr = parse::parse_sql(source)?;
            let pred = check::check(&expr)?;
            Ok(Filter {
                source: source.to_string(),
                pred,
            })
        })
    }

    /// The text the filter was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The checked tree.
    pub fn predicate(&self) -> &ast::Pred {
        &self.pred
    }

    /// Compiles the filter for `dialect`, with `now()` evaluated as `now`.
    pub fn compile(&self, dialect: Dialect, now: DbTime) -> CompiledFilter {
        compile::compile(&self.pred, dialect, now)
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Filter::parse(&text).map_err(serde::de::Error::custom)
    }
}
