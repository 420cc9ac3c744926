//! The checked filter tree.
//!
//! [`super::check`] builds this from sqlparser's tree after the allow-list
//! and type checks, so every node here is something [`super::compile`] knows
//! how to translate for both backends: there is no "unsupported" case left.

use crate::columns::DbTime;

/// A top-level field of an event row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `id`
    Id,
    /// `span_id`
    SpanId,
    /// `root_span_id`
    RootSpanId,
    /// `is_root`
    IsRoot,
    /// `created`
    Created,
    /// `_xact_id`
    XactId,
    /// One of the JSON fields, by its column name.
    Json(&'static str),
}

impl Column {
    /// Every field name a filter may use, for error messages.
    pub const NAMES: [&'static str; 17] = [
        "id",
        "span_id",
        "root_span_id",
        "is_root",
        "created",
        "_xact_id",
        "span_parents",
        "input",
        "output",
        "expected",
        "error",
        "scores",
        "metrics",
        "metadata",
        "tags",
        "span_attributes",
        "context",
    ];

    /// Looks up a field by name (ASCII case-insensitive, like SQL).
    pub fn from_name(name: &str) -> Option<Column> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "id" => Column::Id,
            "span_id" => Column::SpanId,
            "root_span_id" => Column::RootSpanId,
            "is_root" => Column::IsRoot,
            "created" => Column::Created,
            "_xact_id" => Column::XactId,
            other => Column::Json(crate::event_fields::JsonField::from_name(other)?.name()),
        })
    }

    /// The SQL column name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::SpanId => "span_id",
            Column::RootSpanId => "root_span_id",
            Column::IsRoot => "is_root",
            Column::Created => "created",
            Column::XactId => "xact_id",
            Column::Json(name) => name,
        }
    }

    /// The type of a non-JSON column; `None` for JSON columns, whose type
    /// comes from the comparison they appear in.
    pub fn native_type(self) -> Option<Ty> {
        match self {
            Column::Id | Column::SpanId | Column::RootSpanId => Some(Ty::Text),
            Column::IsRoot => Some(Ty::Bool),
            Column::Created => Some(Ty::Time),
            Column::XactId => Some(Ty::Number),
            Column::Json(_) => None,
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// An object key.
    Key(String),
    /// An array index (0-based).
    Index(u32),
}

/// A field reference: a column and, for JSON columns, a path into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The column.
    pub column: Column,
    /// The path inside a JSON column; empty for the whole value.
    pub path: Vec<PathSeg>,
}

/// The scalar types of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Strings.
    Text,
    /// Numbers (double precision).
    Number,
    /// Booleans.
    Bool,
    /// Timestamps (only `created` and time expressions).
    Time,
}

impl Ty {
    /// How the type is named in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Text => "a string",
            Ty::Number => "a number",
            Ty::Bool => "a boolean",
            Ty::Time => "a timestamp",
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Time(DbTime),
}

/// A typed value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A non-JSON column.
    Column(Column),
    /// A JSON field read as `ty`: null when the value there has another type.
    Json(Field, Ty),
    /// A literal.
    Lit(Lit),
    /// `now()` shifted by a number of microseconds, evaluated when the filter
    /// is compiled for a query.
    Now {
        /// Microseconds added to the current time.
        offset_micros: i64,
    },
    /// Arithmetic on numbers.
    Arith(ArithOp, Box<Scalar>, Box<Scalar>),
    /// Numeric negation.
    Neg(Box<Scalar>),
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (division by zero gives null)
    Div,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// Both hold.
    And(Box<Pred>, Box<Pred>),
    /// Either holds.
    Or(Box<Pred>, Box<Pred>),
    /// Negation (SQL three-valued: NOT of unknown is unknown).
    Not(Box<Pred>),
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// A boolean-valued expression used as a predicate.
    Truthy(Scalar),
    /// `value IS [NOT] TRUE|FALSE`: never null.
    IsBool {
        /// The boolean value tested.
        value: Scalar,
        /// `TRUE` (or `FALSE`).
        truth: bool,
        /// `IS NOT`.
        negated: bool,
    },
    /// `field IS [NOT] NULL`: absent and JSON null both count as null.
    IsNull {
        /// The field.
        field: Field,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// A comparison of two values of the same type.
    Compare {
        /// Left operand.
        left: Scalar,
        /// Operator.
        op: CmpOp,
        /// Right operand.
        right: Scalar,
        /// Their common type.
        ty: Ty,
    },
    /// `value [NOT] IN (…)`.
    In {
        /// The tested value.
        value: Scalar,
        /// The candidates (literals of the value's type).
        list: Vec<Lit>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `value [NOT] LIKE|ILIKE pattern` (`%` and `_` wildcards, `\` escape).
    Like {
        /// The tested string.
        value: Scalar,
        /// The pattern.
        pattern: String,
        /// `ILIKE`.
        case_insensitive: bool,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `field INCLUDES item`: the field is an array holding `item`. Never
    /// null: false when the field is absent or not an array.
    Includes {
        /// The array field.
        field: Field,
        /// The element looked for.
        item: Lit,
    },
    /// `field MATCH 'text'`: some string inside the field contains `text`,
    /// ignoring case. Never null.
    Match {
        /// The searched field.
        field: Field,
        /// The text looked for.
        text: String,
    },
}
