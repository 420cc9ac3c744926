//! Translation of a checked filter into parameterised SQL for each backend.
//!
//! The output is a list of SQL text pieces and parameters; the store pushes
//! them into an sqlx `QueryBuilder`, which numbers the placeholders for its
//! backend. Every value from the user — literals, JSON keys, patterns — is a
//! parameter; the SQL text pieces come only from this file.
//!
//! JSON fields are read with a type guard (`CASE WHEN json_type … END` in
//! SQLite, `CASE WHEN jsonb_typeof … END` in PostgreSQL), so a value of the
//! wrong type reads as null instead of failing the query or comparing across
//! types, and both backends give the same answers. Text ordering uses byte
//! order on both (`COLLATE "C"` in PostgreSQL), division by zero gives null,
//! and `INCLUDES`/`MATCH`/`IS TRUE` are two-valued.

use super::ast::{ArithOp, CmpOp, Column, Field, Lit, PathSeg, Pred, Scalar, Ty};
use crate::columns::{DbTime, Dialect};

/// A bind parameter of a compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A string.
    Text(String),
    /// A double-precision number.
    Number(f64),
    /// A 64-bit integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Time(DbTime),
}

/// A piece of a compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlPart {
    /// SQL text.
    Sql(String),
    /// A placeholder bound to this value.
    Param(Param),
}

/// A filter compiled for one backend: a boolean SQL expression over the
/// columns of the `events` table.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledFilter {
    /// The pieces, in order.
    pub parts: Vec<SqlPart>,
}

impl CompiledFilter {
    /// The SQL with `?` for each parameter, for logs and tests.
    pub fn sql_text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                SqlPart::Sql(s) => s.as_str(),
                SqlPart::Param(_) => "?",
            })
            .collect()
    }

    /// The parameters, in order.
    pub fn params(&self) -> Vec<&Param> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                SqlPart::Param(p) => Some(p),
                SqlPart::Sql(_) => None,
            })
            .collect()
    }
}

/// Compiles `pred` for `dialect`, evaluating `now()` as `now`.
pub fn compile(pred: &Pred, dialect: Dialect, now: DbTime) -> CompiledFilter {
    let mut c = Compiler {
        dialect,
        now,
        parts: Vec::new(),
        aliases: 0,
    };
    c.pred(pred);
    CompiledFilter { parts: c.parts }
}

struct Compiler {
    dialect: Dialect,
    now: DbTime,
    parts: Vec<SqlPart>,
    aliases: usize,
}

impl Compiler {
    fn sql(&mut self, text: &str) {
        match self.parts.last_mut() {
            Some(SqlPart::Sql(s)) => s.push_str(text),
            _ => self.parts.push(SqlPart::Sql(text.to_string())),
        }
    }

    fn param(&mut self, p: Param) {
        self.parts.push(SqlPart::Param(p));
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    fn pred(&mut self, pred: &Pred) {
        match pred {
            Pred::And(a, b) | Pred::Or(a, b) => {
                let op = if matches!(pred, Pred::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                self.sql("(");
                self.pred(a);
                self.sql(op);
                self.pred(b);
                self.sql(")");
            }
            Pred::Not(p) => {
                self.sql("(NOT ");
                self.pred(p);
                self.sql(")");
            }
            Pred::Const(b) => self.sql(if *b { "(1 = 1)" } else { "(1 = 0)" }),
            Pred::Truthy(s) => {
                self.sql("(");
                self.scalar(s);
                self.sql(" = ");
                self.param(Param::Bool(true));
                self.sql(")");
            }
            Pred::IsBool {
                value,
                truth,
                negated,
            } => {
                self.sql("(");
                self.scalar(value);
                self.sql(match (negated, truth) {
                    (false, true) => " IS TRUE)",
                    (false, false) => " IS FALSE)",
                    (true, true) => " IS NOT TRUE)",
                    (true, false) => " IS NOT FALSE)",
                });
            }
            Pred::IsNull { field, negated } => {
                self.sql(if *negated { "(NOT " } else { "(" });
                self.is_null(field);
                self.sql(")");
            }
            Pred::Compare {
                left,
                op,
                right,
                ty,
            } => {
                self.sql("(");
                self.scalar(left);
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                if self.pg() && *ty == Ty::Text && ordered {
                    self.sql(" COLLATE \"C\"");
                }
                self.sql(&format!(" {} ", op.sql()));
                self.scalar(right);
                self.sql(")");
            }
            Pred::In {
                value,
                list,
                negated,
            } => {
                self.sql("(");
                self.scalar(value);
                self.sql(if *negated { " NOT IN (" } else { " IN (" });
                for (i, lit) in list.iter().enumerate() {
                    if i > 0 {
                        self.sql(", ");
                    }
                    self.lit(lit);
                }
                self.sql("))");
            }
            Pred::Like {
                value,
                pattern,
                case_insensitive,
                negated,
            } => self.like(value, pattern, *case_insensitive, *negated),
            Pred::Includes { field, item } => self.includes(field, item),
            Pred::Match { field, text } => self.text_match(field, text),
        }
    }

    fn lit(&mut self, lit: &Lit) {
        self.param(match lit {
            Lit::Text(s) => Param::Text(s.clone()),
            Lit::Number(x) => Param::Number(*x),
            Lit::Bool(b) => Param::Bool(*b),
            Lit::Time(t) => Param::Time(*t),
        });
    }

    fn scalar(&mut self, s: &Scalar) {
        match s {
            Scalar::Column(Column::XactId) if !self.pg() => self.sql("CAST(xact_id AS REAL)"),
            Scalar::Column(c) => self.sql(c.sql_name()),
            Scalar::Json(field, ty) => self.json_typed(field, *ty),
            Scalar::Lit(lit) => self.lit(lit),
            Scalar::Now { offset_micros } => {
                let t = self.now.0 + chrono::TimeDelta::microseconds(*offset_micros);
                self.param(Param::Time(DbTime::from(t)));
            }
            Scalar::Arith(op, a, b) => {
                self.sql("(");
                self.scalar(a);
                match op {
                    ArithOp::Add => self.sql(" + "),
                    ArithOp::Sub => self.sql(" - "),
                    ArithOp::Mul => self.sql(" * "),
                    ArithOp::Div => self.sql(" / NULLIF("),
                }
                self.scalar(b);
                self.sql(if *op == ArithOp::Div { ", 0))" } else { ")" });
            }
            Scalar::Neg(inner) => {
                self.sql("(-");
                self.scalar(inner);
                self.sql(")");
            }
        }
    }

    /// PostgreSQL: the jsonb value at `field` (`col -> $1 -> $2`).
    fn pg_ref(&mut self, field: &Field) {
        self.sql("(");
        self.sql(field.column.sql_name());
        for seg in &field.path {
            self.sql(" -> ");
            match seg {
                PathSeg::Key(k) => {
                    self.param(Param::Text(k.clone()));
                    self.sql("::text");
                }
                PathSeg::Index(i) => {
                    self.param(Param::Int(i64::from(*i)));
                    self.sql("::int");
                }
            }
        }
        self.sql(")");
    }

    /// SQLite: the column and JSON path parameter (`col, '$."a"[0]'`).
    fn sqlite_ref(&mut self, field: &Field) {
        let mut path = String::from("$");
        for seg in &field.path {
            match seg {
                PathSeg::Key(k) => path.push_str(&format!(".\"{k}\"")),
                PathSeg::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        self.sql(field.column.sql_name());
        self.sql(", ");
        self.param(Param::Text(path));
    }

    fn json_typed(&mut self, field: &Field, ty: Ty) {
        if self.pg() {
            let (tag, read) = match ty {
                Ty::Text => ("string", " #>> '{}'"),
                Ty::Number => ("number", "::float8"),
                _ => ("boolean", "::boolean"),
            };
            self.sql("(CASE WHEN jsonb_typeof");
            self.pg_ref(field);
            self.sql(&format!(" = '{tag}' THEN "));
            self.pg_ref(field);
            self.sql(read);
            self.sql(" END)");
        } else {
            match ty {
                Ty::Text | Ty::Number => {
                    self.sql("(CASE WHEN json_type(");
                    self.sqlite_ref(field);
                    if ty == Ty::Text {
                        self.sql(") = 'text' THEN json_extract(");
                        self.sqlite_ref(field);
                        self.sql(") END)");
                    } else {
                        self.sql(") IN ('integer', 'real') THEN CAST(json_extract(");
                        self.sqlite_ref(field);
                        self.sql(") AS REAL) END)");
                    }
                }
                _ => {
                    self.sql("(CASE json_type(");
                    self.sqlite_ref(field);
                    self.sql(") WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)");
                }
            }
        }
    }

    fn is_null(&mut self, field: &Field) {
        match field.column.native_type() {
            Some(_) => {
                self.sql(field.column.sql_name());
                self.sql(" IS NULL");
            }
            None if self.pg() => {
                self.sql("(");
                self.pg_ref(field);
                self.sql(" IS NULL OR jsonb_typeof");
                self.pg_ref(field);
                self.sql(" = 'null')");
            }
            None => {
                self.sql("(json_type(");
                self.sqlite_ref(field);
                self.sql(") IS NULL OR json_type(");
                self.sqlite_ref(field);
                self.sql(") = 'null')");
            }
        }
    }

    fn like(&mut self, value: &Scalar, pattern: &str, ci: bool, negated: bool) {
        self.sql("(");
        self.scalar(value);
        let not = if negated { " NOT" } else { "" };
        if !self.pg() && !ci {
            // SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive match.
            self.sql(&format!("{not} GLOB "));
            self.param(Param::Text(like_to_glob(pattern)));
            self.sql(")");
            return;
        }
        let op = if ci && self.pg() { "ILIKE" } else { "LIKE" };
        self.sql(&format!("{not} {op} "));
        self.param(Param::Text(pattern.to_string()));
        self.sql(" ESCAPE '\\')");
    }

    fn includes(&mut self, field: &Field, item: &Lit) {
        if self.pg() {
            self.sql("COALESCE(jsonb_typeof");
            self.pg_ref(field);
            self.sql(" = 'array' AND ");
            self.pg_ref(field);
            self.sql(" @> jsonb_build_array(");
            self.lit(item);
            self.sql(match item {
                Lit::Number(_) => "::float8), FALSE)",
                Lit::Bool(_) => "::boolean), FALSE)",
                _ => "::text), FALSE)",
            });
        } else {
            let a = self.alias("inc");
            self.sql("EXISTS (SELECT 1 FROM json_each(");
            self.sqlite_ref(field);
            self.sql(&format!(") AS {a} WHERE json_type("));
            self.sqlite_ref(field);
            self.sql(") = 'array' AND ");
            match item {
                Lit::Bool(b) => self.sql(&format!("{a}.type = '{b}'")),
                Lit::Number(_) => {
                    self.sql(&format!("{a}.type IN ('integer', 'real') AND {a}.value = "));
                    self.lit(item);
                }
                _ => {
                    self.sql(&format!("{a}.type = 'text' AND {a}.value = "));
                    self.lit(item);
                }
            }
            self.sql(")");
        }
    }

    fn text_match(&mut self, field: &Field, text: &str) {
        let needle = Param::Text(text.to_string());
        match (field.column.native_type(), self.pg()) {
            (Some(_), true) => {
                self.sql(&format!(
                    "COALESCE(strpos(lower({}), lower(",
                    field.column.sql_name()
                ));
                self.param(needle);
                self.sql(")) > 0, FALSE)");
            }
            (Some(_), false) => {
                self.sql(&format!(
                    "COALESCE(instr(lower({}), lower(",
                    field.column.sql_name()
                ));
                self.param(needle);
                self.sql(")) > 0, 0)");
            }
            (None, true) => {
                let a = self.alias("m");
                self.sql("EXISTS (SELECT 1 FROM jsonb_path_query");
                self.sql("(");
                self.pg_ref(field);
                self.sql(&format!(
                    ", 'strict $.**') AS {a}(v) WHERE jsonb_typeof({a}.v) = 'string' \
                     AND strpos(lower({a}.v #>> '{{}}'), lower("
                ));
                self.param(needle);
                self.sql(")) > 0)");
            }
            (None, false) => {
                let a = self.alias("m");
                self.sql("EXISTS (SELECT 1 FROM json_tree(");
                self.sqlite_ref(field);
                self.sql(&format!(
                    ") AS {a} WHERE {a}.type = 'text' AND instr(lower({a}.atom), lower("
                ));
                self.param(needle);
                self.sql(")) > 0)");
            }
        }
    }
}

/// Converts a LIKE pattern (`%`, `_`, `\` escapes) to an equivalent GLOB
/// pattern (`*`, `?`, bracketed literals).
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(lit) => push_glob_literal(&mut out, lit),
                None => push_glob_literal(&mut out, '\\'),
            },
            other => push_glob_literal(&mut out, other),
        }
    }
    out
}

fn push_glob_literal(out: &mut String, c: char) {
    match c {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        other => out.push(other),
    }
}
