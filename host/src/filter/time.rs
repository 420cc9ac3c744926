//! Time in filters: timestamp literals and intervals.
//!
//! `created` compares with RFC 3339 strings (`'2024-05-01T12:00:00Z'`),
//! `'2024-05-01 12:00:00'` and `'2024-05-01'` (both UTC), and with `now()`
//! shifted by `interval N unit` or `interval 'N unit'`, where the unit is
//! second, minute, hour, day or week (singular or plural). Months and years
//! have no fixed length and are rejected rather than guessed.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlparser::ast::{DateTimeField, Expr, Value};

use super::FilterError;
use crate::columns::DbTime;

type Result<T> = std::result::Result<T, FilterError>;

/// Parses the timestamp forms accepted in filters, all UTC unless an offset
/// is given: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` and `YYYY-MM-DD`.
pub fn parse_time(text: &str) -> Option<DbTime> {
    if let Ok(t) = DbTime::parse(text) {
        return Some(t);
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(DbTime::from(t.and_utc()));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(DbTime::from(DateTime::<Utc>::from_naive_utc_and_offset(
        date.and_hms_opt(0, 0, 0)?,
        Utc,
    )))
}

/// The length of `interval N unit` or `interval 'N unit'` in microseconds.
pub(super) fn interval_micros(expr: &Expr, interval: &sqlparser::ast::Interval) -> Result<i64> {
    let bad = || {
        FilterError::at_expr(
            expr,
            "expected an interval like `interval 1 hour` or `interval '30 minutes'` \
             (units: second, minute, hour, day, week)",
        )
    };
    if interval.last_field.is_some() {
        return Err(bad());
    }
    let (amount, unit) = match (interval.value.as_ref(), &interval.leading_field) {
        (Expr::Value(v), Some(field)) => {
            let amount = match &v.value {
                Value::Number(n, _) => n.clone(),
                Value::SingleQuotedString(s) => s.trim().to_string(),
                _ => return Err(bad()),
            };
            (amount, unit_name(field).ok_or_else(bad)?.to_string())
        }
        (Expr::Value(v), None) => match &v.value {
            Value::SingleQuotedString(s) => {
                let mut parts = s.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(u), None) => (a.to_string(), u.to_ascii_lowercase()),
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let amount: f64 = amount.parse().map_err(|_| bad())?;
    let unit_micros: f64 = match unit.trim_end_matches('s') {
        "second" | "sec" => 1e6,
        "minute" | "min" => 60e6,
        "hour" => 3600e6,
        "day" => 86_400e6,
        "week" => 604_800e6,
        _ => return Err(bad()),
    };
    let micros = amount * unit_micros;
    if !micros.is_finite() || micros.abs() > 3.2e17 {
        return Err(FilterError::at_expr(expr, "interval is out of range"));
    }
    Ok(micros as i64)
}

fn unit_name(field: &DateTimeField) -> Option<&'static str> {
    Some(match field {
        DateTimeField::Second | DateTimeField::Seconds => "second",
        DateTimeField::Minute | DateTimeField::Minutes => "minute",
        DateTimeField::Hour | DateTimeField::Hours => "hour",
        DateTimeField::Day | DateTimeField::Days => "day",
        DateTimeField::Week(_) | DateTimeField::Weeks => "week",
        _ => return None,
    })
}
