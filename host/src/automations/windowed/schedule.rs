//! When a windowed alert is next evaluated: every
//! `evaluation_interval_seconds`, or at the next time of its cron
//! expression in its time zone (daylight saving included: `0 9 * * *` in
//! `Europe/Paris` is 09:00 Paris time all year).

use chrono::TimeDelta;

use super::super::windowed_config::{Schedule, parse_cron, parse_zone};
use crate::store::DbTime;

/// The first evaluation time strictly after `now`; `None` when the
/// schedule cannot fire (a config checked at write time always can).
pub fn next_after(schedule: &Schedule, now: DbTime) -> Option<DbTime> {
    match schedule {
        Schedule::Interval {
            evaluation_interval_seconds,
        } => Some(DbTime(
            now.0 + TimeDelta::seconds(*evaluation_interval_seconds as i64),
        )),
        Schedule::Cron {
            cron_expression,
            timezone,
        } => {
            let zone = parse_zone(timezone.as_deref()).ok()?;
            let cron = parse_cron(cron_expression).ok()?;
            let local = now.0.with_timezone(&zone);
            let next = cron.find_next_occurrence(&local, false).ok()?;
            Some(DbTime(next.with_timezone(&chrono::Utc)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DbTime {
        DbTime(
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&chrono::Utc),
        )
    }

    #[test]
    fn intervals_add_and_cron_follows_its_time_zone() {
        let every = Schedule::Interval {
            evaluation_interval_seconds: 60,
        };
        assert_eq!(
            next_after(&every, utc("2026-07-01T10:00:30Z")),
            Some(utc("2026-07-01T10:01:30Z"))
        );
        let nine_in_paris = Schedule::Cron {
            cron_expression: "0 9 * * *".into(),
            timezone: Some("Europe/Paris".into()),
        };
        // Summer: UTC+2; winter: UTC+1.
        assert_eq!(
            next_after(&nine_in_paris, utc("2026-07-01T06:00:00Z")),
            Some(utc("2026-07-01T07:00:00Z"))
        );
        assert_eq!(
            next_after(&nine_in_paris, utc("2026-12-01T08:30:00Z")),
            Some(utc("2026-12-02T08:00:00Z"))
        );
        let utc_default = Schedule::Cron {
            cron_expression: "*/15 * * * *".into(),
            timezone: None,
        };
        assert_eq!(
            next_after(&utc_default, utc("2026-07-01T10:15:00Z")),
            Some(utc("2026-07-01T10:30:00Z"))
        );
    }
}
