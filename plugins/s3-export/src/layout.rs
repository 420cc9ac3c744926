//! Where objects go in the bucket, as plain functions so they are tested
//! natively (the store itself is only reachable inside the host).
//!
//! A batch is written to
//! `{prefix}/{shape}/date=YYYY-MM-DD/{automation_id}_{first:020}_{last:020}.{ext}`
//! (without `{prefix}/` when the prefix is empty). The date is the UTC day
//! the run started, a Hive-style partition that query engines prune on. The
//! sequences are zero-padded to 20 digits (every `u64` fits) so the keys of
//! one automation sort in ingest order.

use herald_plugin::export::Batch;

/// The longest prefix accepted, in bytes. S3 keys go up to 1,024 bytes and
/// the part after the prefix needs about 120 of them.
pub(crate) const MAX_PREFIX_BYTES: usize = 512;

/// The check object's key below the prefix.
const CHECK_OBJECT: &str = "_herald_check/destination-check.txt";

/// How a batch format is stored: the key's extension and the object's
/// content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    /// The key's extension, without the dot.
    pub(crate) extension: &'static str,
    /// The object's `Content-Type`.
    pub(crate) content_type: &'static str,
}

/// The encoding of batch format `format`, or `None` for an unknown one.
pub(crate) fn encoding(format: &str) -> Option<Encoding> {
    match format {
        "jsonl" => Some(Encoding {
            extension: "jsonl",
            content_type: "application/x-ndjson",
        }),
        "parquet" => Some(Encoding {
            extension: "parquet",
            content_type: "application/vnd.apache.parquet",
        }),
        _ => None,
    }
}

/// The key of `batch` below `prefix`. The same batch always gets the same
/// key, so a retry overwrites. Fails when a value from the batch could not
/// be one path segment of a key (a slash, a control character, empty).
pub(crate) fn batch_key(prefix: &str, batch: &Batch, encoding: Encoding) -> Result<String, String> {
    for (what, value) in [
        ("shape", &batch.shape),
        ("automation id", &batch.automation_id),
    ] {
        if !is_key_segment(value) {
            return Err(format!(
                "the batch's {what} `{}` cannot be part of an object key",
                value.escape_debug()
            ));
        }
    }
    let (year, month, day) = utc_date(batch.run_started_ms);
    Ok(with_prefix(
        prefix,
        &format!(
            "{shape}/date={year:04}-{month:02}-{day:02}/{id}_{first:020}_{last:020}.{ext}",
            shape = batch.shape,
            id = batch.automation_id,
            first = batch.first_sequence,
            last = batch.last_sequence,
            ext = encoding.extension,
        ),
    ))
}

/// The key of the destination check's test object below `prefix`.
pub(crate) fn check_key(prefix: &str) -> String {
    with_prefix(prefix, CHECK_OBJECT)
}

fn with_prefix(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// What is wrong with `prefix`, if anything. It may be empty; otherwise it
/// is one or more segments separated by single slashes, with no slash at
/// either end (the plugin adds the one before the rest of the key).
pub(crate) fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    if prefix.len() > MAX_PREFIX_BYTES {
        return Some(format!("must be at most {MAX_PREFIX_BYTES} bytes"));
    }
    if prefix.starts_with('/') || prefix.ends_with('/') {
        return Some("must not start or end with a slash".to_owned());
    }
    if prefix.split('/').any(|segment| !is_key_segment(segment)) {
        return Some(
            "must not contain empty, `.` or `..` segments or control characters".to_owned(),
        );
    }
    None
}

/// Whether `value` can be one segment of a key: not empty, not `.` or
/// `..` (which some clients collapse), no slash, no control character.
fn is_key_segment(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && !value.chars().any(|c| c == '/' || c.is_control())
}

/// The UTC calendar date `(year, month, day)` of `ms` Unix milliseconds.
pub(crate) fn utc_date(ms: i64) -> (i64, u32, u32) {
    civil_from_days(ms.div_euclid(86_400_000))
}

/// The proleptic Gregorian date of `days` since 1970-01-01, after Howard
/// Hinnant's `civil_from_days` (eras of 400 years, years starting in March
/// so the leap day comes last).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1; // [1, 31]
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1–12 and 1–31).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            automation_id: "0b7e2f1c-5d7a-4c1e-9d3b-2a6f8e4c1b90".to_owned(),
            project_id: "p1".to_owned(),
            shape: "spans".to_owned(),
            format: "jsonl".to_owned(),
            row_count: 3,
            first_sequence: 42,
            last_sequence: 18_446_744_073_709_551_615,
            run_started_ms: 951_782_400_000 + 3_600_000,
        }
    }

    #[test]
    fn dates_of_known_instants() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(utc_date(86_399_999), (1970, 1, 1));
        assert_eq!(utc_date(86_400_000), (1970, 1, 2));
        assert_eq!(utc_date(-1), (1969, 12, 31));
        assert_eq!(utc_date(951_782_400_000), (2000, 2, 29));
        assert_eq!(utc_date(951_868_800_000), (2000, 3, 1));
        assert_eq!(utc_date(1_767_225_599_999), (2025, 12, 31));
        assert_eq!(utc_date(1_767_225_600_000), (2026, 1, 1));
        assert_eq!(utc_date(4_107_542_400_000), (2100, 3, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    #[test]
    fn dates_advance_one_day_at_a_time() {
        let mut previous = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let date = civil_from_days(days);
            let (y, m, d) = previous;
            let next_day = (y, m, d + 1);
            let next_month = (y, m + 1, 1);
            let next_year = (y + 1, 1, 1);
            assert!(
                date == next_day || date == next_month || date == next_year,
                "{previous:?} -> {date:?} at day {days}"
            );
            assert!(date.2 <= 31);
            previous = date;
        }
    }

    #[test]
    fn batch_keys_are_partitioned_and_deterministic() {
        let jsonl = encoding("jsonl").unwrap();
        let key = batch_key("exports/herald", &batch(), jsonl).unwrap();
        assert_eq!(
            key,
            "exports/herald/spans/date=2000-02-29/0b7e2f1c-5d7a-4c1e-9d3b-2a6f8e4c1b90_00000000000000000042_18446744073709551615.jsonl"
        );
        assert_eq!(batch_key("exports/herald", &batch(), jsonl).unwrap(), key);

        let parquet = encoding("parquet").unwrap();
        let mut traces = batch();
        traces.shape = "traces".to_owned();
        traces.first_sequence = 0;
        traces.last_sequence = 7;
        assert_eq!(
            batch_key("", &traces, parquet).unwrap(),
            "traces/date=2000-02-29/0b7e2f1c-5d7a-4c1e-9d3b-2a6f8e4c1b90_00000000000000000000_00000000000000000007.parquet"
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(
            encoding("jsonl"),
            Some(Encoding {
                extension: "jsonl",
                content_type: "application/x-ndjson"
            })
        );
        assert_eq!(
            encoding("parquet").map(|e| e.content_type),
            Some("application/vnd.apache.parquet")
        );
        assert_eq!(encoding("csv"), None);
    }

    #[test]
    fn batch_values_that_would_break_the_key_are_refused() {
        let jsonl = encoding("jsonl").unwrap();
        for shape in ["", "a/b", "..", "sp\nans"] {
            let mut bad = batch();
            bad.shape = shape.to_owned();
            assert!(batch_key("", &bad, jsonl).is_err(), "{shape:?}");
        }
        let mut bad = batch();
        bad.automation_id = "../x".to_owned();
        assert!(batch_key("", &bad, jsonl).is_err());
    }

    #[test]
    fn check_keys() {
        assert_eq!(check_key(""), "_herald_check/destination-check.txt");
        assert_eq!(check_key("a/b"), "a/b/_herald_check/destination-check.txt");
    }

    #[test]
    fn prefixes() {
        for good in ["", "exports", "exports/herald", "a b/c-d_e.f"] {
            assert_eq!(prefix_problem(good), None, "{good:?}");
        }
        for bad in ["/exports", "exports/", "/", "a//b", "a/./b", "../a", "a\tb"] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
        assert!(prefix_problem(&"a".repeat(MAX_PREFIX_BYTES)).is_none());
        assert!(prefix_problem(&"a".repeat(MAX_PREFIX_BYTES + 1)).is_some());
    }
}
