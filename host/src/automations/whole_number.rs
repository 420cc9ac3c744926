//! Counts in configs (seconds, days, rows) as Braintrust's SDK types spell
//! them: `number`, so a client may send `600` or `600.0`. Both are read as
//! the integer; a fraction (`0.5`) or a negative number is refused with the
//! field's path, as any other wrong type.

use serde::{Deserialize, Deserializer};

fn whole(value: serde_json::Number) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// Deserializes a `u64` from an integer or an integral float.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    whole(number.clone()).ok_or_else(|| {
        serde::de::Error::custom(format!("must be a whole number ≥ 0, not {number}"))
    })
}

/// [`deserialize`] for an optional field (`null` is absent).
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(number) => whole(number.clone()).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("must be a whole number ≥ 0, not {number}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::deserialize")]
        seconds: u64,
        #[serde(default, deserialize_with = "super::option")]
        rows: Option<u64>,
    }

    #[test]
    fn integers_and_integral_floats_are_counts() {
        let read = |text: &str| serde_json::from_str::<Counts>(text).map(|c| (c.seconds, c.rows));
        assert_eq!(read(r#"{"seconds": 600}"#).unwrap(), (600, None));
        assert_eq!(
            read(r#"{"seconds": 600.0, "rows": 50.0}"#).unwrap(),
            (600, Some(50))
        );
        assert_eq!(read(r#"{"seconds": 1, "rows": null}"#).unwrap(), (1, None));
        assert!(read(r#"{"seconds": 0.5}"#).is_err());
        assert!(read(r#"{"seconds": -1}"#).is_err());
        assert!(read(r#"{"seconds": "600"}"#).is_err());
    }
}
