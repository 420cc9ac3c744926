//! Custom export queries: a read-only `SELECT` over the project's data,
//! parsed and confined before it reaches the database.
//!
//! The query may read two relations, both limited to the automation's
//! project and to the batch's range of ingest sequence numbers:
//!
//! * `spans`: one row per span, with the API's columns (`id`, `_xact_id`,
//!   `created`, `project_id`, `span_id`, `root_span_id`, `span_parents`,
//!   `is_root`, `input`, `output`, `expected`, `error`, `scores`, `metrics`,
//!   `metadata`, `tags`, `span_attributes`, `context`);
//! * `traces`: one row per trace with a span in the batch — the root span's
//!   columns plus `span_count`.
//!
//! Braintrust's form `FROM project_logs('<project id>', shape => 'spans')`
//! (or `'traces'`) is accepted too, for this project's id only.
//!
//! It is SQL in the database's own dialect (SQLite or PostgreSQL), so JSON
//! is reached with that dialect's operators. What is refused, each with a
//! message naming the problem: anything but one query; writes anywhere in
//! it (`INSERT`/`UPDATE`/`DELETE` in a CTE, `SELECT … INTO`, `FOR UPDATE`);
//! any other table, schema-qualified names or table functions; another
//! project's id; functions outside an allow-list (so no `pg_sleep`,
//! `set_config`, `load_extension`, `dblink`…); parameters. On PostgreSQL the
//! query also runs in a read-only transaction with a timeout, so a gap in
//! this list could still not write.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, ObjectNamePart, Query, Select, SetExpr, Statement,
    TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::{Dialect as SqlDialect, GenericDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Tokenizer;
use uuid::Uuid;

use crate::sql_budget::{QUERY_BUDGET, on_deep_stack};
use crate::store::Dialect;
use crate::store::confined_query::{QueryScope, ViewNames};

/// Functions a query may call: aggregates, string, math, date and JSON
/// functions of SQLite and PostgreSQL, none with side effects. The text
/// check holds every query to it, and SQLite's authorizer holds the engine
/// to it too, which is why it also names the functions behind SQLite's
/// operators (`->`, `->>`, `LIKE`, `GLOB`).
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    "->",
    "->>",
    "glob",
    "like",
    "abs",
    "avg",
    "bool_and",
    "bool_or",
    "ceil",
    "ceiling",
    "char_length",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "date",
    "date_part",
    "date_trunc",
    "datetime",
    "every",
    "exp",
    "floor",
    "greatest",
    "group_concat",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "json",
    "json_agg",
    "json_array",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_extract",
    "json_extract_path",
    "json_extract_path_text",
    "json_group_array",
    "json_group_object",
    "json_object",
    "json_type",
    "json_typeof",
    "jsonb_agg",
    "jsonb_array_length",
    "jsonb_build_object",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_typeof",
    "julianday",
    "least",
    "left",
    "length",
    "ln",
    "log",
    "lower",
    "ltrim",
    "max",
    "min",
    "mod",
    "now",
    "nullif",
    "percentile_cont",
    "power",
    "printf",
    "replace",
    "right",
    "round",
    "rtrim",
    "sign",
    "split_part",
    "sqrt",
    "stddev",
    "strftime",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "to_char",
    "to_json",
    "to_jsonb",
    "total",
    "trim",
    "trunc",
    "typeof",
    "unixepoch",
    "upper",
    "variance",
];

/// Why a custom query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

// `spans` and `traces` become views the database defines over one
// project's batch ([`SPANS_VIEW`], [`TRACES_VIEW`]); it refuses the query
// anything else (SQLite's authorizer, PostgreSQL's confined role), whatever
// this text check let through: see `crate::store::confined_query`.

/// A custom query checked and rewritten to read only the views of one
/// project's batch. Run it with [`crate::store::Store::export_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfinedQuery {
    /// The SQL to run: the user's query with `spans`, `traces` and
    /// `project_logs(…)` replaced by the views of `views`.
    pub sql: String,
    /// The views it reads (fresh names on SQLite, see [`ViewNames`]).
    pub views: ViewNames,
}

impl ConfinedQuery {
    /// Parses `source` for `dialect`, checks it and confines it to
    /// `project_id`. Held to [`QUERY_BUDGET`] and run on a deep stack, so
    /// no text can overflow the caller's.
    pub fn new(source: &str, dialect: Dialect, project_id: Uuid) -> Result<Self, QueryError> {
        Self::with_scope(source, dialect, project_id, QueryScope::Batch)
    }

    /// [`ConfinedQuery::new`] for a query of `scope`: a windowed alert's
    /// calculation reads the window's views, an export the batch's.
    pub fn with_scope(
        source: &str,
        dialect: Dialect,
        project_id: Uuid,
        scope: QueryScope,
    ) -> Result<Self, QueryError> {
        on_deep_stack(|| Self::confine(source, dialect, project_id, scope))
    }

    fn confine(
        source: &str,
        dialect: Dialect,
        project_id: Uuid,
        scope: QueryScope,
    ) -> Result<Self, QueryError> {
        let budget = |e: crate::sql_budget::OverBudget| QueryError(e.0);
        QUERY_BUDGET.check_len(source).map_err(budget)?;
        let mut query = parse(source, dialect)?;
        QUERY_BUDGET.check_depth(&*query).map_err(budget)?;
        let mut confine = Confine {
            project_id,
            dialect,
            views: ViewNames::new(dialect, scope),
            scopes: Vec::new(),
            error: None,
        };
        if query.visit(&mut confine).is_break() {
            return Err(confine
                .error
                .unwrap_or_else(|| QueryError("the query was refused".into())));
        }
        Ok(ConfinedQuery {
            sql: query.to_string(),
            views: confine.views,
        })
    }
}

fn native_dialect(dialect: Dialect) -> &'static dyn SqlDialect {
    match dialect {
        Dialect::Sqlite => &SQLiteDialect {},
        Dialect::Postgres => &PostgreSqlDialect {},
    }
}

/// Parenthesised nesting the parser accepts (subqueries, parentheses).
const RECURSION_LIMIT: usize = 64;

fn parse(source: &str, dialect: Dialect) -> Result<Box<Query>, QueryError> {
    let native = native_dialect(dialect);
    let tokens = Tokenizer::new(native, source)
        .tokenize_with_location()
        .map_err(|e| QueryError(format!("not valid SQL: {e}")))?;
    QUERY_BUDGET
        .check_tokens(&tokens)
        .map_err(|e| QueryError(e.0))?;
    let statements = Parser::new(native)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .or_else(|native_error| {
            // The generic dialect tokenizes some text differently (SQLite
            // reads `[…]` as one identifier), so its tokens are counted too.
            let generic = Tokenizer::new(&GenericDialect {}, source)
                .tokenize_with_location()
                .map_err(|_| native_error.clone())?;
            if QUERY_BUDGET.check_tokens(&generic).is_err() {
                return Err(native_error);
            }
            Parser::new(&GenericDialect {})
                .with_recursion_limit(RECURSION_LIMIT)
                .with_tokens_with_locations(generic)
                .parse_statements()
                .map_err(|_| native_error)
        })
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => QueryError(format!(
                "the query is nested more than {RECURSION_LIMIT} levels deep"
            )),
            other => QueryError(format!("not valid SQL: {other}")),
        })?;
    let mut statements = statements.into_iter();
    match (statements.next(), statements.next()) {
        (Some(Statement::Query(query)), None) => Ok(query),
        (Some(_), None) => Err(QueryError(
            "only a read-only SELECT query is allowed".into(),
        )),
        (None, _) => Err(QueryError("the query is empty".into())),
        (Some(_), Some(_)) => Err(QueryError("only one statement is allowed".into())),
    }
}

/// The common table expressions one query can see, as the database
/// resolves them: a CTE is visible in its query's body and in the CTEs
/// defined after it in the same `WITH`, not in itself or before it
/// (without `RECURSIVE`, PostgreSQL resolves such a name to a real table),
/// and never outside its query.
struct CteScope {
    /// The names visible in this query's body (outer scopes included).
    visible: Vec<String>,
    /// For each CTE of this query's `WITH`: its query's address and the
    /// names visible inside it.
    definitions: Vec<(usize, Vec<String>)>,
}

/// An identifier as the database compares it: PostgreSQL folds unquoted
/// names to lower case and keeps quoted ones exact (`"Events"` is not
/// `events`); SQLite ignores ASCII case either way. Only ASCII is folded,
/// as both engines do.
fn ident_key(ident: &Ident, dialect: Dialect) -> String {
    match (dialect, ident.quote_style) {
        (Dialect::Postgres, Some(_)) => ident.value.clone(),
        _ => ident.value.to_ascii_lowercase(),
    }
}

fn address(query: &Query) -> usize {
    std::ptr::from_ref(query) as usize
}

/// Checks every node and renames the allowed relations.
struct Confine {
    project_id: Uuid,
    dialect: Dialect,
    views: ViewNames,
    /// One scope per query being visited, innermost last.
    scopes: Vec<CteScope>,
    error: Option<QueryError>,
}

impl Confine {
    fn refuse(&mut self, message: String) -> ControlFlow<()> {
        self.error = Some(QueryError(message));
        ControlFlow::Break(())
    }

    /// `project_logs('<id>', shape => 'spans'|'traces')` → the relation.
    fn project_logs_shape(&self, args: &[FunctionArg]) -> Result<&'static str, String> {
        let mut shape = "spans";
        let mut project = None;
        for arg in args {
            match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) if project.is_none() => {
                    project = Some(string_literal(expr).ok_or(
                        "project_logs() takes the project id as a string literal".to_string(),
                    )?);
                }
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(expr),
                    ..
                } if name.value.eq_ignore_ascii_case("shape") => {
                    shape = shape_of(expr)?;
                }
                FunctionArg::ExprNamed {
                    name: Expr::Identifier(name),
                    arg: FunctionArgExpr::Expr(expr),
                    ..
                } if name.value.eq_ignore_ascii_case("shape") => {
                    shape = shape_of(expr)?;
                }
                other => return Err(format!("project_logs() does not take the argument {other}")),
            }
        }
        let project = project.ok_or("project_logs() needs the project id".to_string())?;
        match Uuid::parse_str(&project) {
            Ok(id) if id == self.project_id => Ok(shape),
            _ => Err(format!(
                "project_logs('{project}') names another project; an export reads only its own \
                 project ({})",
                self.project_id
            )),
        }
    }
}

fn shape_of(expr: &Expr) -> Result<&'static str, String> {
    match string_literal(expr).as_deref() {
        Some("spans") => Ok("spans"),
        Some("traces") => Ok("traces"),
        _ => Err("project_logs() shape must be 'spans' or 'traces'".into()),
    }
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

impl VisitorMut for Confine {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        self.refuse(format!(
            "only a read-only SELECT is allowed; found `{}`",
            first_words(&statement.to_string())
        ))
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // What this query sees: the names its parent lets a CTE definition
        // see, or, for any other subquery, everything its parent sees.
        let outer = match self.scopes.last() {
            Some(parent) => parent
                .definitions
                .iter()
                .find(|(at, _)| *at == address(query))
                .map(|(_, names)| names.clone())
                .unwrap_or_else(|| parent.visible.clone()),
            None => Vec::new(),
        };
        let mut visible = outer;
        let mut definitions = Vec::new();
        let mut refusal = None;
        if let Some(with) = &query.with {
            if with.recursive {
                refusal = Some(
                    "WITH RECURSIVE is not allowed in an export query: it can run without end"
                        .to_string(),
                );
            }
            for cte in &with.cte_tables {
                let name = ident_key(&cte.alias.name, self.dialect);
                if matches!(name.as_str(), "spans" | "traces") || name.starts_with("herald_") {
                    refusal.get_or_insert(format!(
                        "a WITH clause may not define `{name}`; choose another name"
                    ));
                }
                definitions.push((address(&cte.query), visible.clone()));
                visible.push(name);
            }
        }
        // Pushed even when refusing: post_visit_query pops it.
        self.scopes.push(CteScope {
            visible,
            definitions,
        });
        if let Some(message) = refusal {
            return self.refuse(message);
        }
        if !query.locks.is_empty() {
            return self.refuse("locking clauses (FOR UPDATE, FOR SHARE) are not allowed".into());
        }
        if let SetExpr::Table(table) = query.body.as_ref() {
            let name = table.table_name.as_ref().map(|n| n.value.clone());
            return self.refuse(format!(
                "TABLE {} is not allowed; SELECT from spans or traces",
                name.unwrap_or_default()
            ));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if select.into.is_some() {
            return self.refuse("SELECT … INTO writes a table and is not allowed".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name, args, alias, ..
            } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|part| match part {
                        ObjectNamePart::Identifier(ident) => ident_key(ident, self.dialect),
                        ObjectNamePart::Function(f) => ident_key(&f.name, self.dialect),
                    })
                    .collect();
                let [table] = parts.as_slice() else {
                    return self.refuse(format!(
                        "`{name}` is not available: a query reads only `spans` and `traces`"
                    ));
                };
                let relation = match (table.as_str(), args.as_ref()) {
                    ("spans", None) => "spans",
                    ("traces", None) => "traces",
                    ("project_logs", Some(function_args)) => {
                        match self.project_logs_shape(&function_args.args) {
                            Ok(shape) => shape,
                            Err(message) => return self.refuse(message),
                        }
                    }
                    (cte, None)
                        if self
                            .scopes
                            .last()
                            .is_some_and(|scope| scope.visible.iter().any(|c| c == cte)) =>
                    {
                        return ControlFlow::Continue(());
                    }
                    _ => {
                        return self.refuse(format!(
                            "`{name}` is not available: a query reads only `spans` and `traces` \
                             (or project_logs('{}', shape => 'spans'|'traces'))",
                            self.project_id
                        ));
                    }
                };
                if alias.is_none() {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: Ident::new(table.as_str()),
                        columns: Vec::new(),
                        at: None,
                    });
                }
                let view = if relation == "spans" {
                    &self.views.spans
                } else {
                    &self.views.traces
                };
                *name = vec![Ident::new(view.as_str())].into();
                *args = None;
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => self.refuse(format!(
                "`{}` is not allowed in FROM: read from spans or traces",
                first_words(&other.to_string())
            )),
        }
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(function) => {
                let name = function.name.to_string().to_lowercase();
                if function.name.0.len() != 1 || !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
                    return self.refuse(format!(
                        "function `{}` is not allowed in an export query",
                        function.name
                    ));
                }
                ControlFlow::Continue(())
            }
            Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => {
                self.refuse("parameters ($1, ?) are not allowed".into())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "6f1c0e2a-0b8e-4c59-9d51-3f0f6d7a1b11";

    fn confine(sql: &str) -> Result<ConfinedQuery, QueryError> {
        ConfinedQuery::new(sql, Dialect::Sqlite, Uuid::parse_str(PROJECT).unwrap())
    }

    #[test]
    fn reads_of_spans_and_traces_are_confined() {
        let q = confine("SELECT id, metadata FROM spans WHERE is_root").unwrap();
        let spans = format!("FROM {} AS spans", q.views.spans);
        assert!(q.sql.contains(&spans), "{}", q.sql);
        assert!(
            q.views.spans.len() > 40,
            "an unguessable name: {}",
            q.views.spans
        );
        assert_ne!(
            confine("SELECT id FROM spans").unwrap().views,
            q.views,
            "fresh for each query"
        );
        let q = confine(&format!(
            "SELECT count(*) AS n FROM project_logs('{PROJECT}', shape => 'traces') t"
        ))
        .unwrap();
        let traces = format!("FROM {} t", q.views.traces);
        assert!(q.sql.contains(&traces), "{}", q.sql);
        let q = confine("WITH x AS (SELECT id FROM spans) SELECT * FROM x").unwrap();
        assert!(
            q.sql.contains(&format!("FROM {} AS spans", q.views.spans)),
            "{}",
            q.sql
        );
        // A CTE is visible after its definition and inside later ones.
        confine("WITH a AS (SELECT id FROM spans), b AS (SELECT id FROM a) SELECT * FROM b")
            .unwrap();
    }

    #[test]
    fn other_projects_tables_writes_and_functions_are_refused() {
        let other = "00000000-0000-4000-8000-000000000000";
        let cases = [
            (
                format!("SELECT * FROM project_logs('{other}')"),
                "another project",
            ),
            ("SELECT * FROM events".into(), "`events` is not available"),
            ("SELECT * FROM main.spans".into(), "is not available"),
            ("DELETE FROM spans".into(), "only a read-only SELECT"),
            ("SELECT 1; SELECT 2".into(), "only one statement"),
            (
                "SELECT load_extension('x')".into(),
                "function `load_extension`",
            ),
            ("SELECT * INTO t FROM spans".into(), "INTO"),
            ("SELECT * FROM spans WHERE id = $1".into(), "parameters"),
            ("SELEC id".into(), "not valid SQL"),
            (
                "WITH spans AS (SELECT 1) SELECT * FROM spans".into(),
                "may not define `spans`",
            ),
            (
                "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"
                    .into(),
                "WITH RECURSIVE",
            ),
        ];
        for (sql, expected) in cases {
            let error = confine(&sql).unwrap_err().0;
            assert!(error.contains(expected), "{sql}: {error}");
        }
    }

    #[test]
    fn a_cte_name_is_visible_only_in_its_own_scope() {
        let cases = [
            // The name of a CTE nested in a subquery does not reach out.
            "SELECT a.config FROM automations a, \
             (WITH automations AS (SELECT 1 AS one) SELECT one FROM automations) AS x",
            // Nor a sibling subquery's, at any depth.
            "SELECT * FROM (SELECT * FROM (WITH events AS (SELECT 1) SELECT * FROM events) q), \
             events",
            // A CTE does not see itself (PostgreSQL would read the real table).
            "WITH automations AS (SELECT * FROM automations) SELECT * FROM automations",
            // Nor one defined after it.
            "WITH a AS (SELECT * FROM sqlite_master), sqlite_master AS (SELECT 1) SELECT * FROM a",
            "SELECT * FROM pragma_database_list",
        ];
        for sql in cases {
            let error = confine(sql).unwrap_err().0;
            assert!(error.contains("is not available"), "{sql}: {error}");
        }
    }

    #[test]
    fn huge_and_deep_queries_are_refused_not_fatal() {
        let long = format!("SELECT {} FROM spans", vec!["1"; 40_000].join("+"));
        let error = confine(&long).unwrap_err().0;
        assert!(error.contains("limit is"), "{error}");
        let chain = format!("SELECT {} AS n FROM spans", vec!["1"; 1_000].join("+"));
        let error = confine(&chain).unwrap_err().0;
        assert!(error.contains("nested"), "{error}");
        let nested = format!("SELECT {}1{} FROM spans", "(".repeat(500), ")".repeat(500));
        assert!(confine(&nested).is_err());
    }
}
