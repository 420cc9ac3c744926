//! Running a windowed alert's calculation over one window and reading its
//! result: one value per group.
//!
//! The query is the user's SQL, confined like a custom export query (see
//! [`crate::store::confined_query`]): it reads `spans` and `traces`, which
//! the database defines over the project's spans `created` in the window
//! `[end - window_seconds, end)`, so the query itself has no time bounds.
//! The value column must hold a number (or null: no data); every other
//! column names the group, so `SELECT model, avg(…) AS f … GROUP BY model`
//! gives a lifecycle per model. Groups past `max_groups` are dropped, the
//! first ones in the query's order kept (an `ORDER BY` chooses which), and
//! counted in the run.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::config_error::ConfigError;
use super::super::windowed_config::{Calculation, WindowedConfig};
use super::lifecycle::Observation;
use crate::export::query::{ALLOWED_FUNCTIONS, ConfinedQuery};
use crate::store::{
    ConfinedRange, ConfinedRun, DbTime, QueryLimits, QueryScope, Store, StoreError,
};

/// One window's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Calculated {
    /// Whether the query has group columns (known once it returned a row).
    pub grouped: bool,
    /// Each group (none: ungrouped) with its observation, in query order.
    pub groups: Vec<(Option<Map<String, Value>>, Observation)>,
    /// Groups left out past `max_groups`.
    pub dropped: usize,
}

/// Why a calculation could not be read: the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CalculationError(pub String, pub CalculationPart);

/// Which part of the calculation is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalculationPart {
    /// The query: refused, or failed in the database.
    Query,
    /// Its result: no value column, or not a number.
    Output,
}

impl CalculationError {
    fn output(message: String) -> Self {
        CalculationError(message, CalculationPart::Output)
    }

    /// The config error at the part's path under `at` (`config`).
    pub fn at(&self, at: &str) -> ConfigError {
        let field = match self.1 {
            CalculationPart::Query => "btql_query",
            CalculationPart::Output => "output.value_column",
        };
        ConfigError::new(
            format!("{at}.threshold.calculation.{field}"),
            self.0.clone(),
        )
    }
}

impl From<StoreError> for CalculationError {
    fn from(error: StoreError) -> Self {
        CalculationError(error.to_string(), CalculationPart::Query)
    }
}

/// Checks `config`'s calculation by running it once over the current
/// window: the database's own refusal, an unknown column, a missing value
/// column or a value that is not a number is a 400 at its path, before the
/// alert is saved. (A grouped query over an empty window shows no columns,
/// so its output is checked again at each evaluation.)
pub async fn check(
    store: &Store,
    project_id: Uuid,
    config: &WindowedConfig,
    at: &str,
) -> Result<(), ConfigError> {
    let (start, end) = super::window_at(config, DbTime::now());
    calculate(
        store,
        project_id,
        &config.threshold().calculation,
        config.max_groups(),
        start,
        end,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.at(at))
}

/// Runs `calculation` over the project's spans created in `[start, end)`.
pub async fn calculate(
    store: &Store,
    project_id: Uuid,
    calculation: &Calculation,
    max_groups: usize,
    start: DbTime,
    end: DbTime,
) -> Result<Calculated, CalculationError> {
    let query = ConfinedQuery::with_scope(
        &calculation.btql_query,
        store.dialect(),
        project_id,
        QueryScope::Window,
    )
    .map_err(|e| CalculationError(e.0, CalculationPart::Query))?;
    let rows = store
        .confined_query(ConfinedRun {
            sql: &query.sql,
            views: &query.views,
            project_id,
            range: ConfinedRange::Created { start, end },
            allowed_functions: ALLOWED_FUNCTIONS,
            limits: QueryLimits::CALCULATION,
        })
        .await?;
    read(
        &rows.columns,
        rows.rows,
        &calculation.output.value_column,
        max_groups,
    )
}

/// Reads the value and the groups out of a result.
pub fn read(
    columns: &[String],
    rows: Vec<Vec<Value>>,
    value_column: &str,
    max_groups: usize,
) -> Result<Calculated, CalculationError> {
    if rows.is_empty() {
        return Ok(Calculated {
            grouped: columns.len() > 1,
            groups: Vec::new(),
            dropped: 0,
        });
    }
    let Some(at) = columns.iter().position(|c| c == value_column) else {
        return Err(CalculationError::output(format!(
            "the query returns no column `{value_column}` (output.value_column); it returns {}",
            columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let grouped = columns.len() > 1;
    if !grouped && rows.len() > 1 {
        return Err(CalculationError::output(format!(
            "the query returned {} rows but no group column: an ungrouped calculation returns \
             one row (add the group's columns beside `{value_column}`, or aggregate)",
            rows.len()
        )));
    }
    let total = rows.len();
    let mut groups = Vec::with_capacity(total.min(max_groups));
    for row in rows.into_iter().take(max_groups) {
        let mut group = Map::new();
        let mut observation = Observation::NoData;
        for (i, value) in row.into_iter().enumerate() {
            if i == at {
                observation = number(value_column, value)?;
            } else {
                group.insert(columns[i].clone(), value);
            }
        }
        groups.push((grouped.then_some(group), observation));
    }
    Ok(Calculated {
        grouped,
        groups,
        dropped: total.saturating_sub(max_groups),
    })
}

/// A value as a number: JSON numbers, and text that reads as one (some
/// PostgreSQL numeric results); null is no data; anything else an error.
fn number(column: &str, value: Value) -> Result<Observation, CalculationError> {
    let parsed = match &value {
        Value::Null => return Ok(Observation::NoData),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(x) if x.is_finite() => Ok(Observation::Value(x)),
        _ => Err(CalculationError::output(format!(
            "the value column `{column}` must hold a number, and it holds {value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_one_value_or_one_per_group() {
        let one = read(&columns(&["n"]), vec![vec![json!(3)]], "n", 10).unwrap();
        assert_eq!(one.groups, [(None, Observation::Value(3.0))]);
        assert!(!one.grouped);
        let null = read(&columns(&["n"]), vec![vec![Value::Null]], "n", 10).unwrap();
        assert_eq!(null.groups, [(None, Observation::NoData)]);
        let rows = vec![
            vec![json!("a"), json!(0.5)],
            vec![json!("b"), json!("0.25")],
            vec![json!("c"), json!(1)],
        ];
        let grouped = read(&columns(&["model", "f"]), rows, "f", 2).unwrap();
        assert!(grouped.grouped);
        assert_eq!(grouped.dropped, 1);
        assert_eq!(
            grouped.groups[1],
            (
                Some([("model".to_string(), json!("b"))].into_iter().collect()),
                Observation::Value(0.25)
            )
        );
    }

    #[test]
    fn refuses_a_missing_column_a_non_number_and_rows_without_groups() {
        let missing = read(&columns(&["x"]), vec![vec![json!(1)]], "n", 10).unwrap_err();
        assert!(missing.0.contains("no column `n`"), "{missing}");
        let text = read(&columns(&["n"]), vec![vec![json!("lots")]], "n", 10).unwrap_err();
        assert!(text.0.contains("must hold a number"), "{text}");
        let many = read(
            &columns(&["n"]),
            vec![vec![json!(1)], vec![json!(2)]],
            "n",
            10,
        )
        .unwrap_err();
        assert!(many.0.contains("no group column"), "{many}");
    }
}
