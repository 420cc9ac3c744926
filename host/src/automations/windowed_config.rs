//! A windowed threshold alert's config (beside the kind in [`super::windowed`], as
//! `export_config` is beside `export`), in Braintrust's `windowed` shape
//! field for field (its SDK's `WindowedAutomationConfig`), with Herald's
//! one extension, `max_groups`.
//!
//! ```json
//! {"event_type": "windowed",
//!  "window": {"window_seconds": 600, "evaluation_delay_seconds": 0,
//!             "schedule": {"type": "interval", "evaluation_interval_seconds": 60}},
//!  "threshold": {
//!    "calculation": {"type": "btql", "btql_query": "SELECT avg(…) AS error_rate FROM spans",
//!                    "output": {"type": "scalar", "value_column": "error_rate"}},
//!    "policy": {"condition": {"type": "threshold", "operator": "gt", "threshold": 0.05},
//!               "pending_seconds": 120, "no_data_behavior": "keep_last",
//!               "renotify_interval_seconds": 3600, "notify_on_recovery": true}},
//!  "actions": [{"type": "webhook", "url": "…"}, {"type": "pagerduty", …}]}
//! ```
//!
//! What Braintrust does with its Loop agent is refused at its field with a
//! message saying so: `loop`, `continuous: true`, and a window without a
//! `threshold` (a digest that only Loop writes).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::config_error::ConfigError;
use super::limits::{MAX_INTERVAL_SECONDS, check_interval};

/// The most actions one windowed alert may have.
pub const MAX_ACTIONS: usize = 10;
/// Groups one alert tracks unless `max_groups` says otherwise.
pub const DEFAULT_MAX_GROUPS: u32 = 100;
/// The most groups `max_groups` may allow.
pub const MAX_GROUPS_LIMIT: u32 = 1000;

/// A windowed alert: a calculation over a sliding window, held against a
/// threshold, with a lifecycle (see [`super::windowed::lifecycle`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowedConfig {
    /// Braintrust's product surface that made it (`patterns`, `dashboard`);
    /// kept and returned, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_origin: Option<String>,
    /// Braintrust's "check for new work between runs" for Loop; only
    /// `false` (or absent) is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<bool>,
    /// The calculation and the policy that gate delivery (required here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// What each evaluation covers and when evaluations happen.
    pub window: Window,
    /// Braintrust's Loop agent: refused unless absent or null.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_agent: Option<serde_json::Value>,
    /// Where notifications go: each is delivered and retried on its own.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// *Herald*: most groups tracked at once (default 100, at most 1000);
    /// groups past it are left out of the evaluation and counted in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_groups: Option<u32>,
}

/// What one evaluation covers and when evaluations happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// How much recent data each evaluation covers, seconds.
    #[serde(deserialize_with = "super::whole_number::deserialize")]
    pub window_seconds: u64,
    /// When evaluations happen.
    pub schedule: Schedule,
    /// How far behind the present each window ends, seconds (late spans).
    #[serde(default, deserialize_with = "super::whole_number::deserialize")]
    pub evaluation_delay_seconds: u64,
}

/// When evaluations happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Every so many seconds.
    Interval {
        /// Seconds between evaluations.
        #[serde(deserialize_with = "super::whole_number::deserialize")]
        evaluation_interval_seconds: u64,
    },
    /// At the times of a five-field cron expression, in a time zone.
    Cron {
        /// `minute hour day-of-month month day-of-week`.
        cron_expression: String,
        /// An IANA time zone (default UTC).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
    },
}

/// The calculation and the policy applied to its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The query evaluated for each window.
    pub calculation: Calculation,
    /// The lifecycle policy applied to each result.
    pub policy: Policy,
}

/// Braintrust's one calculation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalculationType {
    /// A query.
    Btql,
}

/// The query evaluated for each window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calculation {
    /// Always `btql`.
    #[serde(rename = "type")]
    pub kind: CalculationType,
    /// A project-scoped SQL query over `spans` (or `traces`), without time
    /// bounds: Herald shows it only the window's rows. Columns beside the
    /// value column are the groups.
    pub btql_query: String,
    /// Which column holds the value.
    pub output: Output,
}

/// Braintrust's one output type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// One number per row.
    Scalar,
}

/// Which column holds the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Always `scalar`.
    #[serde(rename = "type")]
    pub kind: OutputType,
    /// The numeric result column.
    pub value_column: String,
}

/// The lifecycle policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// When a value is a breach.
    pub condition: Condition,
    /// How long a breach must last before the alert fires, seconds.
    #[serde(deserialize_with = "super::whole_number::deserialize")]
    pub pending_seconds: u64,
    /// What a window without data does.
    pub no_data_behavior: NoDataBehavior,
    /// Reminders while firing, every so many seconds (none if absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::whole_number::option"
    )]
    pub renotify_interval_seconds: Option<u64>,
    /// Whether a recovery is notified (default no).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_on_recovery: Option<bool>,
}

/// Braintrust's one condition type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionType {
    /// A comparison with a number.
    Threshold,
}

/// When a value is a breach: `value <operator> threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Always `threshold`.
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// The comparison.
    pub operator: Operator,
    /// The number compared with.
    pub threshold: f64,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `=`
    Eq,
    /// `≠`
    Neq,
}

impl Operator {
    /// Whether `value <self> threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::Lt => value < threshold,
            Operator::Lte => value <= threshold,
            Operator::Gt => value > threshold,
            Operator::Gte => value >= threshold,
            Operator::Eq => value == threshold,
            Operator::Neq => value != threshold,
        }
    }

    /// Braintrust's name (`gt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Eq => "eq",
            Operator::Neq => "neq",
        }
    }

    /// The symbol, for messages (`>`).
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Eq => "=",
            Operator::Neq => "!=",
        }
    }
}

/// What a window without data does to the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataBehavior {
    /// Nothing changes: the last state stands.
    KeepLast,
    /// It counts as no breach: a firing alert recovers.
    Resolve,
    /// It counts as a breach: the alert fires (state `no_data`).
    Alert,
}

const LOOP_REFUSED: &str = "needs Braintrust's Loop agent, which Herald does not have: remove \
     it (Herald delivers to `actions` itself)";

impl WindowedConfig {
    /// The threshold (checked present by [`WindowedConfig::check`]).
    pub fn threshold(&self) -> &Threshold {
        self.threshold
            .as_ref()
            .expect("a checked windowed config has a threshold")
    }

    /// Most groups tracked at once.
    pub fn max_groups(&self) -> usize {
        self.max_groups.unwrap_or(DEFAULT_MAX_GROUPS) as usize
    }

    /// The checks serde cannot make, each at its field's path under `at`.
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.loop_agent.as_ref().is_some_and(|l| !l.is_null()) {
            return Err(ConfigError::new(format!("{at}.loop"), LOOP_REFUSED));
        }
        if self.continuous == Some(true) {
            return Err(ConfigError::new(format!("{at}.continuous"), LOOP_REFUSED));
        }
        let Some(threshold) = &self.threshold else {
            return Err(ConfigError::new(
                format!("{at}.threshold"),
                "is required: Herald's windowed alerts hold a calculation against a threshold \
                 (a window without one is a digest for Braintrust's Loop agent)",
            ));
        };
        let window = format!("{at}.window");
        check_interval(
            self.window.window_seconds,
            &format!("{window}.window_seconds"),
        )?;
        if self.window.evaluation_delay_seconds > MAX_INTERVAL_SECONDS {
            return Err(ConfigError::new(
                format!("{window}.evaluation_delay_seconds"),
                format!("must be at most {MAX_INTERVAL_SECONDS} seconds (30 days)"),
            ));
        }
        self.window.schedule.check(&format!("{window}.schedule"))?;
        let calculation = format!("{at}.threshold.calculation");
        if threshold.calculation.btql_query.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{calculation}.btql_query"),
                "must be a query, e.g. SELECT count(*) AS n FROM spans",
            ));
        }
        if threshold.calculation.output.value_column.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{calculation}.output.value_column"),
                "must name the query's numeric result column",
            ));
        }
        let policy = format!("{at}.threshold.policy");
        if !threshold.policy.condition.threshold.is_finite() {
            return Err(ConfigError::new(
                format!("{policy}.condition.threshold"),
                "must be a finite number",
            ));
        }
        if threshold.policy.pending_seconds > MAX_INTERVAL_SECONDS {
            return Err(ConfigError::new(
                format!("{policy}.pending_seconds"),
                format!("must be at most {MAX_INTERVAL_SECONDS} seconds (30 days)"),
            ));
        }
        if let Some(seconds) = threshold.policy.renotify_interval_seconds {
            check_interval(seconds, &format!("{policy}.renotify_interval_seconds"))?;
        }
        if self.actions.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.actions"),
                "must name at least one destination, e.g. [{\"type\": \"webhook\", \"url\": …}]",
            ));
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(ConfigError::new(
                format!("{at}.actions"),
                format!("may hold at most {MAX_ACTIONS} destinations"),
            ));
        }
        if let Some(groups) = self.max_groups
            && !(1..=MAX_GROUPS_LIMIT).contains(&groups)
        {
            return Err(ConfigError::new(
                format!("{at}.max_groups"),
                format!("must be between 1 and {MAX_GROUPS_LIMIT}"),
            ));
        }
        Ok(())
    }
}

impl Schedule {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        match self {
            Schedule::Interval {
                evaluation_interval_seconds,
            } => check_interval(
                *evaluation_interval_seconds,
                &format!("{at}.evaluation_interval_seconds"),
            ),
            Schedule::Cron {
                cron_expression,
                timezone,
            } => {
                let zone = parse_zone(timezone.as_deref())
                    .map_err(|m| ConfigError::new(format!("{at}.timezone"), m))?;
                let cron = parse_cron(cron_expression)
                    .map_err(|m| ConfigError::new(format!("{at}.cron_expression"), m))?;
                let now = chrono::Utc::now().with_timezone(&zone);
                cron.find_next_occurrence(&now, false).map_err(|_| {
                    ConfigError::new(
                        format!("{at}.cron_expression"),
                        format!("`{cron_expression}` never fires (no time matches it)"),
                    )
                })?;
                Ok(())
            }
        }
    }
}

/// Parses an IANA time zone name (`None`: UTC).
pub fn parse_zone(name: Option<&str>) -> Result<chrono_tz::Tz, String> {
    match name {
        None => Ok(chrono_tz::UTC),
        Some(name) => chrono_tz::Tz::from_str(name).map_err(|_| {
            format!("`{name}` is not an IANA time zone, e.g. \"UTC\" or \"Europe/Paris\"")
        }),
    }
}

/// Parses a standard five-field cron expression.
pub fn parse_cron(expression: &str) -> Result<croner::Cron, String> {
    let fields = expression.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "must have five fields (minute hour day-of-month month day-of-week), not {fields}"
        ));
    }
    croner::parser::CronParser::new()
        .parse(expression)
        .map_err(|e| format!("`{expression}` is not a cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_compare_as_named() {
        assert!(Operator::Gt.holds(2.0, 1.0) && !Operator::Gt.holds(1.0, 1.0));
        assert!(Operator::Gte.holds(1.0, 1.0) && !Operator::Gte.holds(0.5, 1.0));
        assert!(Operator::Lt.holds(0.5, 1.0) && !Operator::Lt.holds(1.0, 1.0));
        assert!(Operator::Lte.holds(1.0, 1.0) && !Operator::Lte.holds(1.5, 1.0));
        assert!(Operator::Eq.holds(1.0, 1.0) && !Operator::Eq.holds(1.5, 1.0));
        assert!(Operator::Neq.holds(1.5, 1.0) && !Operator::Neq.holds(1.0, 1.0));
    }

    #[test]
    fn cron_needs_five_fields_that_can_fire() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 9 * * MON-FRI").is_ok());
        assert!(
            parse_cron("* * * * * *")
                .unwrap_err()
                .contains("five fields")
        );
        assert!(parse_cron("61 * * * *").is_err());
        let never = Schedule::Cron {
            cron_expression: "0 0 30 2 *".into(),
            timezone: None,
        };
        let error = never.check("config.window.schedule").unwrap_err();
        assert_eq!(error.path, "config.window.schedule.cron_expression");
        assert!(error.message.contains("never fires"), "{error}");
        let zone = Schedule::Cron {
            cron_expression: "0 9 * * *".into(),
            timezone: Some("Mars/Olympus".into()),
        };
        assert_eq!(
            zone.check("config.window.schedule").unwrap_err().path,
            "config.window.schedule.timezone"
        );
    }
}
